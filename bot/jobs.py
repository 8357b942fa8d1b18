"""Jobs in progress: a journal row per turn with a heartbeat, so a killed process's turns are reported."""

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
from typing import Protocol

from bot.ports import JobRecord, ThreadRef

logger = logging.getLogger(__name__)


class JobJournal(Protocol):
    """Where jobs are recorded (storage.job_store.SqlJobJournal)."""

    worker: str

    def begin(self, ref: ThreadRef, user_id: str, retry: str | None) -> int:
        """Record a running job; return its id."""
        ...

    def finish(self, job_id: int, failed: bool = False) -> None:
        """Close a job."""
        ...

    def beat(self, job_ids: Sequence[int]) -> None:
        """Refresh the heartbeat of running jobs."""
        ...

    def stale(self, older_than: datetime, limit: int = 100) -> list[JobRecord]:
        """Running jobs whose heartbeat stopped before `older_than`."""
        ...

    def claim_interrupted(self, job_id: int) -> bool:
        """Mark a stale job interrupted; True for the one caller that wins."""
        ...


def worker_name() -> str:
    """This process: host, pid and a random suffix (pids are reused after restarts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class JobHandle:
    """A running job; set `failed` when its outcome was an error message."""

    id: int
    failed: bool = False


class JobTracker:
    """Begins and finishes journal rows around turns, and beats their heartbeats from one thread."""

    def __init__(self, journal: JobJournal, heartbeat_s: float = 15.0, stale_after_s: float = 120.0) -> None:
        if heartbeat_s <= 0 or stale_after_s <= heartbeat_s:
            raise ValueError("the stale age must be longer than the heartbeat interval")
        self._journal = journal
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self._running: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None

    @contextmanager
    def track(self, ref: ThreadRef, user_id: str, retry: str | None) -> Iterator[JobHandle]:
        """Journal one turn from start to posted outcome (an exception marks it failed)."""
        handle = JobHandle(self._journal.begin(ref, user_id, retry))
        with self._lock:
            self._running.add(handle.id)
            self._ensure_beating()
        try:
            yield handle
        except BaseException:
            handle.failed = True
            raise
        finally:
            with self._lock:
                self._running.discard(handle.id)
            try:
                self._journal.finish(handle.id, handle.failed)
            except Exception:  # the turn's outcome is already posted; a stale row is reported later
                logger.exception("could not close job %s", handle.id)

    def interrupted(self, now: datetime | None = None) -> list[JobRecord]:
        """Claim jobs whose process stopped beating; each is returned to exactly one replica."""
        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=self.stale_after_s)
        return [job for job in self._journal.stale(cutoff) if self._journal.claim_interrupted(job.id)]

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
        """Refresh running jobs every heartbeat_s until closed."""
        while not self._stop.wait(self.heartbeat_s):
            with self._lock:
                running = sorted(self._running)
            try:
                self._journal.beat(running)
            except Exception:
                logger.warning("could not refresh the heartbeat of %d job(s)", len(running), exc_info=True)
