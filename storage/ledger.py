"""Processed Slack events (idempotency) and per-user daily usage counters (quotas), scoped by team."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from storage.db import RACE_RETRIES, bound_url
from storage.db_errors import translated
from storage.models import ProcessedEvent, UsageCounter

logger = logging.getLogger(__name__)


class SqlEventLedger:
    """Which Slack events were already handled; the unique key makes `claim` atomic."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._url = bound_url(sessions)

    def claim(self, team_id: str, event_id: str, kind: str) -> bool:
        """True only for the first caller to claim this event (Slack retries and replicas get False)."""
        with translated(self._url):
            try:
                with self._sessions.begin() as session:
                    session.add(ProcessedEvent(team_id=team_id, event_id=event_id, kind=kind))
            except IntegrityError:
                logger.debug("event %s of team %s was already claimed", event_id, team_id)
                return False
        return True

    def release(self, team_id: str, event_id: str) -> bool:
        """Forget a claim (its work failed and may be asked for again); True when there was one."""
        with translated(self._url), self._sessions.begin() as session:
            result = session.execute(
                delete(ProcessedEvent).where(
                    ProcessedEvent.team_id == team_id, ProcessedEvent.event_id == event_id
                )
            )
            return cast(CursorResult[Any], result).rowcount > 0

    def is_claimed(self, team_id: str, event_id: str) -> bool:
        """Whether the event was already claimed."""
        with translated(self._url), self._sessions() as session:
            return session.get(ProcessedEvent, (team_id, event_id)) is not None

    def forget_before(self, team_id: str, cutoff: datetime) -> int:
        """Delete the team's claims older than `cutoff` (aware UTC); return how many went."""
        with translated(self._url), self._sessions.begin() as session:
            result = session.execute(
                delete(ProcessedEvent).where(
                    ProcessedEvent.team_id == team_id, ProcessedEvent.created_utc < cutoff
                )
            )
            return cast(CursorResult[Any], result).rowcount


class SqlUsageCounters:
    """Images generated per user and UTC day; increments are atomic under concurrency."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._url = bound_url(sessions)

    def increment(self, team_id: str, user_id: str, day: date, by: int = 1) -> int:
        """Add `by` images to the user's count for `day` and return the new count."""
        if by < 0:
            raise ValueError(f"usage can only grow, not by {by}")
        key = (
            UsageCounter.team_id == team_id,
            UsageCounter.user_id == user_id,
            UsageCounter.day == day,
        )
        with translated(self._url):
            for attempt in range(RACE_RETRIES):
                try:
                    with self._sessions.begin() as session:
                        updated = session.execute(
                            update(UsageCounter).where(*key).values(images=UsageCounter.images + by)
                        )
                        if cast(CursorResult[Any], updated).rowcount == 0:
                            session.add(UsageCounter(team_id=team_id, user_id=user_id, day=day, images=by))
                            session.flush()
                        count = session.scalar(select(UsageCounter.images).where(*key))
                    return int(count or 0)
                except IntegrityError:
                    if attempt == RACE_RETRIES - 1:
                        raise
                    logger.debug("usage row of %s on %s was created concurrently; retrying", user_id, day)
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, team_id: str, user_id: str, day: date) -> int:
        """The user's count for `day` (0 when nothing was counted)."""
        with translated(self._url), self._sessions() as session:
            row = session.get(UsageCounter, (team_id, user_id, day))
            return row.images if row is not None else 0
