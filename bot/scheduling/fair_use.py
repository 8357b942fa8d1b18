"""Fair use: a global limit on concurrent image jobs, a per-user queue cap, and a daily image quota."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from bot.engine.turn_errors import BotError


class UsageCounters(Protocol):
    """Images per user and day (storage.ledger.SqlUsageCounters)."""

    def increment(self, team_id: str, user_id: str, day: date, by: int = 1) -> int:
        """Add `by` and return the new count."""
        ...

    def get(self, team_id: str, user_id: str, day: date) -> int:
        """The count so far."""
        ...


class LiveJobs(Protocol):
    """Jobs queued or running in every replica over one database (storage.job_store.SqlJobJournal).

    A turn still waiting behind another turn of its thread is no job yet: live() never counts it.
    """

    def live(
        self, team_id: str, user_id: str, fresh_after: datetime, up_to: int | None = None
    ) -> tuple[int, int]:
        """The user's open jobs that beat since `fresh_after` (ids up to `up_to`) and their images (< it)."""
        ...

    def drawn(self, job_id: int) -> None:
        """The job's images are counted in the usage counters: it reserves none any more."""
        ...


class QueueFullError(BotError):
    """The user already has as many jobs waiting or running as the cap allows."""

    def __init__(self, cap: int) -> None:
        super().__init__(
            f"you already have {cap} image job{'s' if cap != 1 else ''} waiting or running; "
            "try again when one finishes"
        )
        self.cap = cap


class QuotaReachedError(BotError):
    """The user's daily image quota is used up."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"you have used today's {limit} images; the quota resets at midnight UTC")
        self.limit = limit


@dataclass(frozen=True)
class FairUseLimits:
    """Concurrent jobs (all users), jobs per user waiting or running, and images per user and day (0 = ∞)."""

    max_concurrent_jobs: int = 2
    per_user_queue: int = 3
    daily_images: int = 0


def utc_today() -> date:
    """Today in UTC (quota days)."""
    return datetime.now(UTC).date()


class FairUse:
    """Admits, queues (FIFO) and counts image jobs; one instance per process.

    The global slots belong to this process. When `jobs` is given (and slot() gets the job's id), the
    per-user cap counts the user's journaled jobs in the shared database, and the daily quota the images
    their rows reserve, so replicas over one database admit at most the cap and the quota together;
    otherwise both count this process's jobs only.
    """

    def __init__(
        self,
        limits: FairUseLimits,
        counters: UsageCounters | None = None,
        today: Callable[[], date] = utc_today,
        jobs: LiveJobs | None = None,
        stale_after_s: float = 120.0,
    ) -> None:
        if limits.max_concurrent_jobs < 1 or limits.per_user_queue < 1 or limits.daily_images < 0:
            raise ValueError(f"fair-use limits out of range: {limits}")
        if stale_after_s <= 0:
            raise ValueError("the stale age of a job must be positive")
        self.limits = limits
        self._counters = counters
        self._today = today
        self._jobs = jobs
        self._stale_after = timedelta(seconds=stale_after_s)
        self._lock = threading.Condition()
        self._running = 0
        self._waiting: deque[object] = deque()
        self._per_user: dict[tuple[str, str], int] = {}
        self._reserved: dict[tuple[str, str], int] = {}

    def check_quota(self, team_id: str, user_id: str, images: int) -> None:
        """Raise QuotaReachedError when `images` more would pass the user's daily quota."""
        live = self._live(team_id, user_id, None)  # a database read: no lock held
        with self._lock:
            self._check_quota_locked(team_id, user_id, images, live)

    def _check_quota_locked(
        self, team_id: str, user_id: str, images: int, live: tuple[int, int] | None
    ) -> None:
        """The quota check; the caller holds the lock, so admission and reservation are one step."""
        limit = self.limits.daily_images
        if not limit or self._counters is None:
            return
        reserved = live[1] if live is not None else self._reserved.get((team_id, user_id), 0)
        # read after the rows (`live`): count() adds to the counter before it zeroes the job's row, so a
        # job's images are seen in the row, the counter or (briefly) both, never in neither
        used = self._counters.get(team_id, user_id, self._today())
        if used + reserved + images > limit:
            raise QuotaReachedError(limit)

    def check_admission(self, team_id: str, user_id: str, images: int) -> None:
        """Raise QueueFullError or QuotaReachedError now when a job would be refused (slot() re-checks)."""
        live = self._live(team_id, user_id, None)  # a database read: no lock held
        with self._lock:
            jobs = live[0] if live is not None else self._per_user.get((team_id, user_id), 0)
            if jobs >= self.limits.per_user_queue:
                raise QueueFullError(self.limits.per_user_queue)
            self._check_quota_locked(team_id, user_id, images, live)

    def count(self, team_id: str, user_id: str, images: int, job_id: int | None = None) -> None:
        """Charge images that were generated to the user's day; then job `job_id` reserves none."""
        if self._counters is not None and images > 0:
            self._counters.increment(team_id, user_id, self._today(), images)
        if job_id is not None and self._jobs is not None:  # only after the increment (see the check)
            self._jobs.drawn(job_id)

    @contextmanager
    def slot(
        self,
        team_id: str,
        user_id: str,
        images: int,
        on_queued: Callable[[int], None] = lambda _: None,
        job_id: int | None = None,
    ) -> Iterator[None]:
        """Hold one of the global job slots; waits in FIFO order, calling `on_queued(position)` once.

        `job_id` is the job's journal row, already written: the cap then counts the user's live jobs
        with ids up to it in every replica, and the quota the images of those before it (insert, then
        count, so racing admissions never exceed either).
        """
        key, ticket = (team_id, user_id), object()
        live = self._live(team_id, user_id, job_id) if job_id is not None else None  # no lock held
        with self._lock:
            ahead = live[0] - 1 if live is not None else self._per_user.get(key, 0)  # jobs before this one
            if ahead >= self.limits.per_user_queue:
                raise QueueFullError(self.limits.per_user_queue)
            self._check_quota_locked(team_id, user_id, images, live)
            self._per_user[key] = self._per_user.get(key, 0) + 1
            self._reserved[key] = self._reserved.get(key, 0) + images
            self._waiting.append(ticket)
            position = self._position(ticket)
        try:
            if position:
                on_queued(position)
            with self._lock:
                self._lock.wait_for(lambda: self._may_start(ticket))
                self._waiting.remove(ticket)
                self._running += 1
                self._lock.notify_all()  # the next in line may fit in another free slot
            try:
                yield
            finally:
                with self._lock:
                    self._running -= 1
                    self._lock.notify_all()
        finally:
            with self._lock:
                self._per_user[key] -= 1
                self._reserved[key] -= images
                if not self._per_user[key]:
                    del self._per_user[key], self._reserved[key]
                if ticket in self._waiting:  # on_queued raised before the wait
                    self._waiting.remove(ticket)
                    self._lock.notify_all()

    def _live(self, team_id: str, user_id: str, up_to: int | None) -> tuple[int, int] | None:
        """The user's jobs with a fresh heartbeat in every replica, and their images; None without one."""
        if self._jobs is None:
            return None
        return self._jobs.live(team_id, user_id, datetime.now(UTC) - self._stale_after, up_to)

    def _may_start(self, ticket: object) -> bool:
        """First in line and a slot free."""
        return self._running < self.limits.max_concurrent_jobs and self._waiting[0] is ticket

    def _position(self, ticket: object) -> int:
        """0 when the job can start now, else its place in the queue (1 = next)."""
        free = self.limits.max_concurrent_jobs - self._running
        index = self._waiting.index(ticket)
        return 0 if index < free else index - free + 1

    @property
    def running(self) -> int:
        """Jobs holding a slot now."""
        with self._lock:
            return self._running

    @property
    def waiting(self) -> int:
        """Jobs waiting for a slot."""
        with self._lock:
            return len(self._waiting)
