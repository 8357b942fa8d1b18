"""SqlJobJournal: turns waiting, queued or running, their heartbeats, per-user jobs and images, claims."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, case, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.engine.ports import JobRecord, ThreadRef
from storage.db import bound_url
from storage.db_errors import translated
from storage.models import Job, utcnow

logger = logging.getLogger(__name__)

WAITING, QUEUED, RUNNING, DONE, FAILED, REFUSED, INTERRUPTED = (
    "waiting",
    "queued",
    "running",
    "done",
    "failed",
    "refused",
    "interrupted",
)
OPEN = (QUEUED, RUNNING)  # a job waiting for a slot or holding one: counted by fair use
# heart-beaten and recoverable: the open jobs and the turns waiting behind another turn of their thread
# (those are not admitted yet, so the cap and the quota never count them)
WATCHED = (WAITING, *OPEN)
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
    """Jobs are written when a turn is admitted, marked running with a slot, closed once posted.

    A turn that must wait behind another turn of its thread is written before that as a `waiting` row
    (see wait()); enqueue() replaces it with a fresh `queued` row when the turn's go comes.
    """

    def __init__(self, sessions: sessionmaker[Session], worker: str) -> None:
        self._sessions = sessions
        self._url = bound_url(sessions)
        self.worker = worker

    def wait(self, ref: ThreadRef, user_id: str, retry: str | None) -> int:
        """Record a turn of this worker waiting behind another turn of its thread; return its row's id.

        The row reserves no images and live() never counts it, so its id needs no commit order.
        """
        with translated(self._url), self._sessions.begin() as session:
            return _insert(session, self.worker, ref, user_id, retry, WAITING, 0)

    def enqueue(
        self, ref: ThreadRef, user_id: str, retry: str | None, images: int = 0, replaces: int | None = None
    ) -> int:
        """Record a queued job of this worker that will draw `images`; return its id (in commit order).

        `replaces` is the turn's `waiting` row: deleted in the same transaction, so a kill leaves exactly
        one of the two rows. The queued row is always a new one (never the waiting row promoted): its id
        must be newer than every job of the user admitted while it waited, or live(up_to=id) would miss
        them and let racing admissions pass the cap.
        """
        if images < 0:
            raise ValueError(f"a job cannot draw {images} images")
        with translated(self._url), self._sessions.begin() as session:
            _lock_user(session, ref.team_id, user_id)
            if replaces is not None and not _delete_waiting(session, replaces):
                logger.warning("waiting job %s was already reported as interrupted; it runs anyway", replaces)
            return _insert(session, self.worker, ref, user_id, retry, QUEUED, images)

    def stop_waiting(self, job_id: int) -> None:
        """Delete a waiting row whose turn ended before its go (nothing to report: it never ran)."""
        with translated(self._url), self._sessions.begin() as session:
            _delete_waiting(session, job_id)

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
        """Refresh the heartbeat of this worker's waiting, queued and running jobs."""
        if not job_ids:
            return
        with translated(self._url), self._sessions.begin() as session:
            session.execute(
                update(Job)
                .where(Job.id.in_(list(job_ids)), Job.state.in_(WATCHED))
                .values(heartbeat_utc=utcnow())
            )

    def stale(self, older_than: datetime, limit: int = 100) -> list[JobRecord]:
        """Waiting, queued or running jobs whose heartbeat stopped before `older_than` (process gone)."""
        query = (
            select(Job)
            .where(Job.state.in_(WATCHED), Job.heartbeat_utc < older_than)
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
                    waiting=job.state == WAITING,
                )
                for job in session.scalars(query)
            ]

    def claim_interrupted(self, job_id: int) -> bool:
        """Mark a stale job (waiting too) interrupted; True only for the one replica that wins the claim."""
        with translated(self._url), self._sessions.begin() as session:
            result = session.execute(
                update(Job).where(Job.id == job_id, Job.state.in_(WATCHED)).values(state=INTERRUPTED)
            )
            return cast(CursorResult[Any], result).rowcount == 1

    def purge(self, finished_before: datetime, limit: int = 1000) -> int:
        """Delete up to `limit` closed or interrupted jobs whose last heartbeat is older than the cutoff.

        A waiting row is deleted when its turn gets its go or ends; one left by a killed process is
        claimed as interrupted and purged with the rest.
        """
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


def _insert(
    session: Session, worker: str, ref: ThreadRef, user_id: str, retry: str | None, state: str, images: int
) -> int:
    """Add one job row in `state`; return its id."""
    job = Job(
        team_id=ref.team_id,
        channel_id=ref.channel_id,
        thread_ts=ref.thread_ts,
        user_id=user_id,
        retry=retry,
        worker=worker,
        state=state,
        images=images,
    )
    session.add(job)
    session.flush()
    return job.id


def _delete_waiting(session: Session, job_id: int) -> bool:
    """Delete a row still waiting; False when it is not (a replica claimed it as interrupted)."""
    result = session.execute(delete(Job).where(Job.id == job_id, Job.state == WAITING))
    return cast(CursorResult[Any], result).rowcount == 1
