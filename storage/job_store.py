"""SqlJobJournal: jobs waiting or running, their heartbeats, per-user jobs and images, interrupted claims."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, case, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.ports import JobRecord, ThreadRef
from storage.db import bound_url
from storage.errors import translated
from storage.models import Job, utcnow

logger = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, REFUSED, INTERRUPTED = (
    "queued",
    "running",
    "done",
    "failed",
    "refused",
    "interrupted",
)
OPEN = (QUEUED, RUNNING)  # a job waiting for a slot or holding one: heart-beaten, counted, recoverable
CLOSED = (DONE, FAILED, REFUSED)


def _user_lock_key(team_id: str, user_id: str) -> int:
    """A signed 64-bit key for Postgres's advisory lock on one user's admissions."""
    digest = hashlib.blake2b(f"imagine-jobs\x00{team_id}\x00{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _lock_user(session: Session, team_id: str, user_id: str) -> None:
    """Serialize one user's job inserts until commit, so their ids are committed in id order.

    SQLite has one writer at a time, which already gives that order; Postgres hands out ids from a
    sequence before commit, so concurrent inserts could otherwise commit out of order.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_user_lock_key(team_id, user_id))))


class SqlJobJournal:
    """Jobs are written when a turn is admitted, marked running with a slot, closed once posted."""

    def __init__(self, sessions: sessionmaker[Session], worker: str) -> None:
        self._sessions = sessions
        self._url = bound_url(sessions)
        self.worker = worker

    def enqueue(self, ref: ThreadRef, user_id: str, retry: str | None, images: int = 0) -> int:
        """Record a queued job of this worker that will draw `images`; return its id (in commit order)."""
        if images < 0:
            raise ValueError(f"a job cannot draw {images} images")
        with translated(self._url), self._sessions.begin() as session:
            _lock_user(session, ref.team_id, user_id)
            job = Job(
                team_id=ref.team_id,
                channel_id=ref.channel_id,
                thread_ts=ref.thread_ts,
                user_id=user_id,
                retry=retry,
                worker=self.worker,
                state=QUEUED,
                images=images,
            )
            session.add(job)
            session.flush()
            return job.id

    def live(
        self, team_id: str, user_id: str, fresh_after: datetime, up_to: int | None = None
    ) -> tuple[int, int]:
        """The user's open jobs in every replica that beat since `fresh_after`, and the images they reserve.

        With `up_to`, only jobs with an id up to it (those admitted before it, and itself), and only the
        images of those before it.
        """
        images = Job.images if up_to is None else case((Job.id < up_to, Job.images), else_=0)
        query = (
            select(func.count(), func.coalesce(func.sum(images), 0))
            .select_from(Job)
            .where(
                Job.state.in_(OPEN),
                Job.heartbeat_utc >= fresh_after,
                Job.team_id == team_id,
                Job.user_id == user_id,
            )
        )
        if up_to is not None:
            query = query.where(Job.id <= up_to)
        with translated(self._url), self._sessions() as session:
            jobs, reserved = session.execute(query).one()
            return int(jobs), int(reserved)

    def drawn(self, job_id: int) -> None:
        """The job's images are counted in the user's usage: its row reserves none any more."""
        with translated(self._url), self._sessions.begin() as session:
            session.execute(update(Job).where(Job.id == job_id).values(images=0))

    def start(self, job_id: int) -> bool:
        """Mark a queued job running; False when it is no longer queued (a replica claimed it)."""
        with translated(self._url), self._sessions.begin() as session:
            result = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == QUEUED)
                .values(state=RUNNING, heartbeat_utc=utcnow())
            )
            return cast(CursorResult[Any], result).rowcount == 1

    def finish(self, job_id: int, outcome: str = DONE) -> None:
        """Close a queued or running job as done, failed (its error already posted) or refused."""
        if outcome not in CLOSED:
            raise ValueError(f"a job cannot be closed as {outcome!r}")
        with translated(self._url), self._sessions.begin() as session:
            session.execute(update(Job).where(Job.id == job_id, Job.state.in_(OPEN)).values(state=outcome))

    def beat(self, job_ids: Sequence[int]) -> None:
        """Refresh the heartbeat of this worker's queued and running jobs."""
        if not job_ids:
            return
        with translated(self._url), self._sessions.begin() as session:
            session.execute(
                update(Job)
                .where(Job.id.in_(list(job_ids)), Job.state.in_(OPEN))
                .values(heartbeat_utc=utcnow())
            )

    def stale(self, older_than: datetime, limit: int = 100) -> list[JobRecord]:
        """Queued or running jobs whose heartbeat stopped before `older_than` (their process is gone)."""
        query = (
            select(Job)
            .where(Job.state.in_(OPEN), Job.heartbeat_utc < older_than)
            .order_by(Job.id)
            .limit(limit)
        )
        with translated(self._url), self._sessions() as session:
            return [
                JobRecord(
                    id=job.id,
                    ref=ThreadRef(job.team_id, job.channel_id, job.thread_ts),
                    user_id=job.user_id,
                    retry=job.retry,
                    worker=job.worker,
                    started_utc=job.started_utc,
                )
                for job in session.scalars(query)
            ]

    def claim_interrupted(self, job_id: int) -> bool:
        """Mark a stale job interrupted; True only for the one replica that wins the claim."""
        with translated(self._url), self._sessions.begin() as session:
            result = session.execute(
                update(Job).where(Job.id == job_id, Job.state.in_(OPEN)).values(state=INTERRUPTED)
            )
            return cast(CursorResult[Any], result).rowcount == 1

    def purge(self, finished_before: datetime, limit: int = 1000) -> int:
        """Delete up to `limit` closed or interrupted jobs whose last heartbeat is older than the cutoff."""
        finished = (*CLOSED, INTERRUPTED)
        oldest = (
            select(Job.id)
            .where(Job.state.in_(finished), Job.heartbeat_utc < finished_before)
            .order_by(Job.id)
            .limit(limit)
        )
        with translated(self._url), self._sessions.begin() as session:
            ids = list(session.scalars(oldest))
            if ids:
                session.execute(delete(Job).where(Job.id.in_(ids)))
            return len(ids)
