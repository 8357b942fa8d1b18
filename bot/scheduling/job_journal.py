"""A journal row per turn (waiting or admitted) with a heartbeat, so a killed process's turns are reported."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from bot.engine.ports import JobRecord, ThreadRef
from bot.scheduling.fair_use import QueueFullError, QuotaReachedError

logger = logging.getLogger(__name__)
Outcome = Literal["done", "failed", "refused"]
JOB_RETENTION = timedelta(days=7)  # finished jobs are kept this long for operators, then purged


class JobJournal(Protocol):
    """Where jobs are recorded (storage.job_store.SqlJobJournal)."""

    worker: str

    def wait(self, ref: ThreadRef, user_id: str, retry: str | None) -> int:
        """Record a turn waiting behind another of its thread (never counted by fair use); return its id."""
        ...

    def enqueue(
        self, ref: ThreadRef, user_id: str, retry: str | None, images: int = 0, replaces: int | None = None
    ) -> int:
        """Record a queued job drawing `images`, deleting waiting row `replaces` in the same transaction.

        Return its id (a user's ids commit in order).
        """
        ...

    def stop_waiting(self, job_id: int) -> None:
        """Delete a waiting row whose turn ended before its go."""
        ...

    def start(self, job_id: int) -> bool:
        """Mark a queued job running; False when it was no longer queued."""
        ...

    def finish(self, job_id: int, outcome: Outcome = "done") -> None:
        """Close a queued or running job."""
        ...

    def beat(self, job_ids: Sequence[int]) -> None:
        """Refresh the heartbeat of waiting, queued and running jobs."""
        ...

    def stale(self, older_than: datetime, limit: int = 100) -> list[JobRecord]:
        """Waiting, queued or running jobs whose heartbeat stopped before `older_than`."""
        ...

    def claim_interrupted(self, job_id: int) -> bool:
        """Mark a stale job interrupted; True for the one caller that wins."""
        ...

    def purge(self, finished_before: datetime, limit: int = 1000) -> int:
        """Delete closed and interrupted jobs last seen before the cutoff; return how many."""
        ...


def worker_name() -> str:
    """This process: host, pid and a random suffix (pids are reused after restarts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class JobHandle:
    """A journaled job; set `failed` when its outcome was an error message."""

    id: int
    failed: bool = False


@dataclass
class WaitingHandle:
    """A turn's `waiting` row; `replaced` once track() swapped it for the turn's queued row."""

    id: int
    replaced: bool = False


class JobTracker:
    """Journals turns from admission to posted outcome, and beats their heartbeats from one thread."""

    def __init__(self, journal: JobJournal, heartbeat_s: float = 15.0, stale_after_s: float = 120.0) -> None:
        if heartbeat_s <= 0 or stale_after_s <= heartbeat_s:
            raise ValueError("the stale age must be longer than the heartbeat interval")
        self._journal = journal
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self._open: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None

    @contextmanager
    def waiting(self, ref: ThreadRef, user_id: str, retry: str | None) -> Iterator[WaitingHandle]:
        """Journal a turn waiting behind another turn of its thread, until track() replaces the row.

        The row is beaten and reported like a queued one when the process dies, but fair use never counts
        it: a turn in a thread's line is not admitted yet (20 replies in one thread must not hit the cap).
        Only a turn that really waits gets one (thread_order), so the common path writes nothing more.
        """
        handle = WaitingHandle(self._journal.wait(ref, user_id, retry))
        with self._lock:
            self._open.add(handle.id)
            self._ensure_beating()
        try:
            yield handle
        finally:
            with self._lock:
                self._open.discard(handle.id)
            if not handle.replaced:  # the turn ended before its go: it never ran, nothing to report
                try:
                    self._journal.stop_waiting(handle.id)
                except Exception:  # its heartbeat stops: reported as interrupted later, never lost
                    logger.exception("could not delete waiting job %s", handle.id)

    @contextmanager
    def track(
        self,
        ref: ThreadRef,
        user_id: str,
        retry: str | None,
        images: int = 0,
        replaces: WaitingHandle | None = None,
    ) -> Iterator[JobHandle]:
        """Journal a turn drawing `images`, queued until start(); refusals close it refused, errors failed.

        `replaces` is the turn's waiting row: swapped for the queued row in one transaction.
        """
        waited = replaces.id if replaces is not None and not replaces.replaced else None
        handle = JobHandle(self._journal.enqueue(ref, user_id, retry, images, waited))
        with self._lock:
            if replaces is not None and waited is not None:
                replaces.replaced = True
                self._open.discard(waited)
            self._open.add(handle.id)
            self._ensure_beating()
        outcome: Outcome = "done"
        try:
            yield handle
        except (QueueFullError, QuotaReachedError):
            outcome = "refused"
            raise
        except BaseException:
            handle.failed = True
            raise
        finally:
            with self._lock:
                self._open.discard(handle.id)
            if handle.failed:
                outcome = "failed"
            try:
                self._journal.finish(handle.id, outcome)
            except Exception:  # the turn's outcome is already posted; a stale row is reported later
                logger.exception("could not close job %s", handle.id)

    def start(self, handle: JobHandle) -> None:
        """Mark a queued job running: it holds a fair-use slot now."""
        if not self._journal.start(handle.id):  # its heartbeat stopped for longer than the stale age
            logger.warning("job %s was already reported as interrupted; it runs anyway", handle.id)

    def interrupted(self, now: datetime | None = None) -> list[JobRecord]:
        """Claim jobs whose process stopped beating; each is returned to exactly one replica."""
        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=self.stale_after_s)
        return [job for job in self._journal.stale(cutoff) if self._journal.claim_interrupted(job.id)]

    def purge_finished(self, now: datetime | None = None) -> int:
        """Forget jobs that finished more than JOB_RETENTION ago (the journal would otherwise only grow)."""
        return self._journal.purge((now or datetime.now(UTC)) - JOB_RETENTION)

    def close(self) -> None:
        """Stop the heartbeat thread."""
        self._stop.set()
        if self._beater is not None:
            self._beater.join(timeout=5)

    def _ensure_beating(self) -> None:
        """Start the heartbeat thread on first use (called with the lock held)."""
        if self._beater is None or not self._beater.is_alive():
            self._beater = threading.Thread(target=self._beat, name="imagine-job-heartbeat", daemon=True)
            self._beater.start()

    def _beat(self) -> None:
        """Refresh waiting, queued and running jobs every heartbeat_s until closed."""
        while not self._stop.wait(self.heartbeat_s):
            with self._lock:
                open_jobs = sorted(self._open)
            try:
                self._journal.beat(open_jobs)
            except Exception:
                logger.warning("could not refresh the heartbeat of %d job(s)", len(open_jobs), exc_info=True)
