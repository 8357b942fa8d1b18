"""SqlJobJournal: which turns are in progress, their heartbeats, and the claim of interrupted ones."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.ports import JobRecord, ThreadRef
from storage.db import bound_url
from storage.errors import translated
from storage.models import Job, utcnow

logger = logging.getLogger(__name__)

RUNNING, DONE, FAILED, INTERRUPTED = "running", "done", "failed", "interrupted"


class SqlJobJournal:
    """Jobs are written when a turn starts and closed when its outcome is posted."""

    def __init__(self, sessions: sessionmaker[Session], worker: str) -> None:
        self._sessions = sessions
        self._url = bound_url(sessions)
        self.worker = worker

    def begin(self, ref: ThreadRef, user_id: str, retry: str | None) -> int:
        """Record a running job of this worker; return its id."""
        with translated(self._url), self._sessions.begin() as session:
            job = Job(
                team_id=ref.team_id,
                channel_id=ref.channel_id,
                thread_ts=ref.thread_ts,
                user_id=user_id,
                retry=retry,
                worker=self.worker,
                state=RUNNING,
            )
            session.add(job)
            session.flush()
            return job.id

    def finish(self, job_id: int, failed: bool = False) -> None:
        """Close a job (done, or failed with its error already posted)."""
        with translated(self._url), self._sessions.begin() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == RUNNING)
                .values(state=FAILED if failed else DONE)
            )

    def beat(self, job_ids: Sequence[int]) -> None:
        """Refresh the heartbeat of this worker's running jobs."""
        if not job_ids:
            return
        with translated(self._url), self._sessions.begin() as session:
            session.execute(
                update(Job)
                .where(Job.id.in_(list(job_ids)), Job.state == RUNNING)
                .values(heartbeat_utc=utcnow())
            )

    def stale(self, older_than: datetime, limit: int = 100) -> list[JobRecord]:
        """Running jobs whose heartbeat stopped before `older_than` (their process is gone)."""
        query = (
            select(Job)
            .where(Job.state == RUNNING, Job.heartbeat_utc < older_than)
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
                update(Job).where(Job.id == job_id, Job.state == RUNNING).values(state=INTERRUPTED)
            )
            return cast(CursorResult[Any], result).rowcount == 1
