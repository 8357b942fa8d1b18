"""SqlFeedbackStore: +1/-1 feedback on turns and images, and votes on numbered candidates."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from storage.db import RACE_RETRIES, bound_url
from storage.db_errors import NotFoundError, translated
from storage.models import Feedback, Image, Thread, Turn, Vote

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedbackTally:
    """Thumbs up and down on one turn or image."""

    up: int = 0
    down: int = 0


class SqlFeedbackStore:
    """Feedback and votes; every call is scoped by team id and checks its thread, turn or image."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._url = bound_url(sessions)

    def record_feedback(
        self, team_id: str, turn_id: int, user_id: str, value: int, image_sha256: str | None = None
    ) -> None:
        """Record a user's +1 or -1 on a turn (or one of its images); a later value replaces theirs."""
        if value not in (-1, 1):
            raise ValueError(f"feedback value must be +1 or -1, not {value}")
        with translated(self._url):
            for attempt in range(RACE_RETRIES):
                try:
                    with self._sessions.begin() as session:
                        self._upsert_feedback(session, team_id, turn_id, user_id, value, image_sha256)
                    return
                except IntegrityError:
                    if attempt == RACE_RETRIES - 1:
                        raise
                    logger.debug("feedback of %s was recorded concurrently; updating it", user_id)

    def _upsert_feedback(
        self, session: Session, team_id: str, turn_id: int, user_id: str, value: int, image_sha256: str | None
    ) -> None:
        """Insert or update the user's feedback row for the target."""
        if session.scalar(select(Turn.id).where(Turn.team_id == team_id, Turn.id == turn_id)) is None:
            raise NotFoundError(f"turn {turn_id} does not exist in team {team_id}")
        image_id = self._image_id(session, team_id, image_sha256) if image_sha256 else None
        query = select(Feedback).where(Feedback.team_id == team_id, Feedback.user_id == user_id)
        if image_id is None:
            query = query.where(Feedback.turn_id == turn_id, Feedback.image_id.is_(None))
        else:
            query = query.where(Feedback.image_id == image_id)
        row = session.scalar(query)
        if row is None:
            session.add(
                Feedback(team_id=team_id, turn_id=turn_id, image_id=image_id, user_id=user_id, value=value)
            )
        else:
            row.turn_id = turn_id
            row.value = value
        session.flush()

    @staticmethod
    def _image_id(session: Session, team_id: str, sha256: str) -> int:
        """The id of the team's image with this hash, or NotFoundError."""
        image_id = session.scalar(select(Image.id).where(Image.team_id == team_id, Image.sha256 == sha256))
        if image_id is None:
            raise NotFoundError(f"image {sha256[:12]} does not exist in team {team_id}")
        return image_id

    def feedback_tally(self, team_id: str, turn_id: int, image_sha256: str | None = None) -> FeedbackTally:
        """Thumbs up and down on a turn's prompt (image_sha256 None) or on one image."""
        with translated(self._url), self._sessions() as session:
            query = select(Feedback.value, func.count()).where(Feedback.team_id == team_id)
            if image_sha256 is None:
                query = query.where(Feedback.turn_id == turn_id, Feedback.image_id.is_(None))
            else:
                image_id = session.scalar(
                    select(Image.id).where(Image.team_id == team_id, Image.sha256 == image_sha256)
                )
                if image_id is None:
                    return FeedbackTally()
                query = query.where(Feedback.image_id == image_id)
            counts = {value: count for value, count in session.execute(query.group_by(Feedback.value))}
        return FeedbackTally(up=counts.get(1, 0), down=counts.get(-1, 0))

    def vote(self, team_id: str, thread_id: int, user_id: str, number: int) -> bool:
        """Vote for candidate #number; True when new, False when the user had already voted for it."""
        if number < 1:
            raise ValueError(f"candidate numbers start at 1, not {number}")
        with translated(self._url):
            try:
                with self._sessions.begin() as session:
                    owner = session.scalar(
                        select(Thread.id).where(Thread.team_id == team_id, Thread.id == thread_id)
                    )
                    if owner is None:
                        raise NotFoundError(f"thread {thread_id} does not exist in team {team_id}")
                    session.add(Vote(team_id=team_id, thread_id=thread_id, user_id=user_id, number=number))
                return True
            except IntegrityError:
                return False

    def unvote(self, team_id: str, thread_id: int, user_id: str, number: int) -> bool:
        """Withdraw a vote; False when there was none."""
        with translated(self._url), self._sessions.begin() as session:
            result = session.execute(
                delete(Vote).where(
                    Vote.team_id == team_id,
                    Vote.thread_id == thread_id,
                    Vote.user_id == user_id,
                    Vote.number == number,
                )
            )
            return cast(CursorResult[Any], result).rowcount > 0

    def tally(self, team_id: str, thread_id: int) -> dict[int, int]:
        """Votes per candidate number of a thread (numbers without votes are absent)."""
        with translated(self._url), self._sessions() as session:
            rows = session.execute(
                select(Vote.number, func.count())
                .where(Vote.team_id == team_id, Vote.thread_id == thread_id)
                .group_by(Vote.number)
                .order_by(Vote.number)
            )
            return {number: count for number, count in rows}
