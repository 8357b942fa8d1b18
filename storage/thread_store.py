"""SqlThreadStore: threads, turns and images in SQL; satisfies bot.engine.ports.ThreadStore structurally."""

from __future__ import annotations

import logging

from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.engine.ports import ImageRecord, RecentImage, ThreadRecord, ThreadRef, TurnRecord
from storage.db import RACE_RETRIES, bound_url
from storage.db_errors import NotFoundError, translated
from storage.models import Image, Thread, Turn, TurnImage, Workspace

logger = logging.getLogger(__name__)


def _thread_record(row: Thread) -> ThreadRecord:
    """A Thread row as the port's record."""
    ref = ThreadRef(team_id=row.team_id, channel_id=row.channel_id, thread_ts=row.thread_ts)
    return ThreadRecord(
        id=row.id,
        ref=ref,
        owner_user_id=row.owner_user_id,
        mode=row.mode,
        idea=row.idea,
        created_utc=row.created_utc,
    )


def _image_record(row: Image) -> ImageRecord:
    """An Image row as the port's record."""
    return ImageRecord(
        sha256=row.sha256,
        seed=row.seed,
        model_id=row.model_id,
        width=row.width,
        height=row.height,
        path=row.path,
        slack_file_id=row.slack_file_id,
    )


def _turn_record(row: Turn, images: tuple[ImageRecord, ...]) -> TurnRecord:
    """A Turn row and its images as the port's record."""
    return TurnRecord(
        thread_id=row.thread_id,
        kind=row.kind,
        role=row.role,
        text=row.text,
        hits=list(row.hits_json),
        prompt=row.prompt,
        negative_prompt=row.negative_prompt,
        params=dict(row.params_json),
        chat_model=row.chat_model,
        image_model=row.image_model,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        duration_ms=row.duration_ms,
        images=images,
        id=row.id,
        created_utc=row.created_utc,
    )


def ensure_workspace(session: Session, team_id: str) -> None:
    """Register the team in `workspaces` when it is new (inside the caller's transaction)."""
    if session.get(Workspace, team_id) is None:
        session.add(Workspace(team_id=team_id))
        session.flush()


class SqlThreadStore:
    """Thread memory in SQL; every query is filtered by the Slack team id."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._url = bound_url(sessions)

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory, shared with the other stores of the same database."""
        return self._sessions

    def open_thread(self, ref: ThreadRef, owner_user_id: str, mode: str, idea: str) -> ThreadRecord:
        """Create the thread, or return it when it already exists (concurrent callers get the same one)."""
        with translated(self._url):
            for attempt in range(RACE_RETRIES):
                existing = self._thread_by_ref(ref)
                if existing is not None:
                    return existing
                try:
                    with self._sessions.begin() as session:
                        ensure_workspace(session, ref.team_id)
                        row = Thread(
                            team_id=ref.team_id,
                            channel_id=ref.channel_id,
                            thread_ts=ref.thread_ts,
                            owner_user_id=owner_user_id,
                            mode=mode,
                            idea=idea,
                        )
                        session.add(row)
                        session.flush()
                        record = _thread_record(row)
                    logger.info("opened thread %s for team %s", record.id, ref.team_id)
                    return record
                except IntegrityError:
                    if attempt == RACE_RETRIES - 1:
                        raise
                    logger.debug("thread %s was opened concurrently; reading it back", ref)
        raise AssertionError("unreachable")  # pragma: no cover

    def find_thread(self, team_id: str, thread_id: int) -> ThreadRecord | None:
        """A thread of this team by id, or None (also for another team's id)."""
        with translated(self._url), self._sessions() as session:
            row = session.scalar(select(Thread).where(Thread.team_id == team_id, Thread.id == thread_id))
            return _thread_record(row) if row is not None else None

    def find_thread_by_ref(self, ref: ThreadRef) -> ThreadRecord | None:
        """A thread by its Slack coordinates, or None."""
        with translated(self._url):
            return self._thread_by_ref(ref)

    def _thread_by_ref(self, ref: ThreadRef) -> ThreadRecord | None:
        """find_thread_by_ref without error translation."""
        with self._sessions() as session:
            row = session.scalar(
                select(Thread).where(
                    Thread.team_id == ref.team_id,
                    Thread.channel_id == ref.channel_id,
                    Thread.thread_ts == ref.thread_ts,
                )
            )
            return _thread_record(row) if row is not None else None

    def add_turn(self, team_id: str, turn: TurnRecord) -> TurnRecord:
        """Store a turn and its images in one transaction; return it with id and timestamp."""
        with translated(self._url):
            for attempt in range(RACE_RETRIES):
                try:
                    with self._sessions.begin() as session:
                        return self._insert_turn(session, team_id, turn)
                except IntegrityError:
                    if attempt == RACE_RETRIES - 1:
                        raise
                    logger.debug("an image of the turn was stored concurrently; retrying the turn")
        raise AssertionError("unreachable")  # pragma: no cover

    def _insert_turn(self, session: Session, team_id: str, turn: TurnRecord) -> TurnRecord:
        """Insert the turn, its (deduplicated) images and their links."""
        owner = session.scalar(
            select(Thread.id).where(Thread.team_id == team_id, Thread.id == turn.thread_id)
        )
        if owner is None:
            raise NotFoundError(f"thread {turn.thread_id} does not exist in team {team_id}")
        row = Turn(
            team_id=team_id,
            thread_id=turn.thread_id,
            kind=turn.kind,
            role=turn.role,
            text=turn.text,
            hits_json=list(turn.hits),
            prompt=turn.prompt,
            negative_prompt=turn.negative_prompt,
            params_json=dict(turn.params),
            chat_model=turn.chat_model,
            image_model=turn.image_model,
            input_tokens=turn.input_tokens,
            output_tokens=turn.output_tokens,
            duration_ms=turn.duration_ms,
        )
        session.add(row)
        session.flush()
        images = [self._image_row(session, team_id, image) for image in turn.images]
        for position, image in enumerate(images):
            session.add(TurnImage(turn_id=row.id, position=position, team_id=team_id, image_id=image.id))
        session.flush()
        return _turn_record(row, tuple(_image_record(image) for image in images))

    @staticmethod
    def _image_row(session: Session, team_id: str, image: ImageRecord) -> Image:
        """The team's row for this sha256, inserted when new (a later Slack file id is kept)."""
        row = session.scalar(select(Image).where(Image.team_id == team_id, Image.sha256 == image.sha256))
        if row is None:
            row = Image(
                team_id=team_id,
                sha256=image.sha256,
                seed=image.seed,
                model_id=image.model_id,
                width=image.width,
                height=image.height,
                path=image.path,
                slack_file_id=image.slack_file_id,
            )
            session.add(row)
            session.flush()
        elif image.slack_file_id and not row.slack_file_id:
            row.slack_file_id = image.slack_file_id
        return row

    def turns(self, team_id: str, thread_id: int) -> list[TurnRecord]:
        """The thread's turns in order, with their images (empty for another team's thread)."""
        with translated(self._url), self._sessions() as session:
            rows = session.scalars(
                select(Turn).where(Turn.team_id == team_id, Turn.thread_id == thread_id).order_by(Turn.id)
            ).all()
            links = session.execute(
                select(TurnImage.turn_id, Image)
                .join(Image, and_(Image.team_id == TurnImage.team_id, Image.id == TurnImage.image_id))
                .join(Turn, and_(Turn.team_id == TurnImage.team_id, Turn.id == TurnImage.turn_id))
                .where(Turn.team_id == team_id, Turn.thread_id == thread_id)
                .order_by(TurnImage.turn_id, TurnImage.position)
            ).all()
        images: dict[int, list[ImageRecord]] = {}
        for turn_id, image in links:
            images.setdefault(turn_id, []).append(_image_record(image))
        return [_turn_record(row, tuple(images.get(row.id, ()))) for row in rows]

    def find_turn(self, team_id: str, turn_id: int) -> TurnRecord | None:
        """One turn of this team by id, with its images, or None."""
        with translated(self._url), self._sessions() as session:
            row = session.scalar(select(Turn).where(Turn.team_id == team_id, Turn.id == turn_id))
            if row is None:
                return None
            images = session.scalars(
                select(Image)
                .join(TurnImage, and_(Image.team_id == TurnImage.team_id, Image.id == TurnImage.image_id))
                .where(TurnImage.team_id == team_id, TurnImage.turn_id == turn_id)
                .order_by(TurnImage.position)
            ).all()
            return _turn_record(row, tuple(_image_record(image) for image in images))

    def find_image(self, team_id: str, sha256: str) -> ImageRecord | None:
        """The team's image with this content hash, or None."""
        with translated(self._url), self._sessions() as session:
            row = session.scalar(select(Image).where(Image.team_id == team_id, Image.sha256 == sha256))
            return _image_record(row) if row is not None else None

    def set_slack_file_id(self, team_id: str, sha256: str, slack_file_id: str) -> None:
        """Remember the Slack file id an image was posted as."""
        with translated(self._url), self._sessions.begin() as session:
            row = session.scalar(select(Image).where(Image.team_id == team_id, Image.sha256 == sha256))
            if row is None:
                raise NotFoundError(f"image {sha256[:12]} does not exist in team {team_id}")
            row.slack_file_id = slack_file_id

    def recent_images(self, team_id: str, user_id: str, limit: int = 10) -> list[RecentImage]:
        """The newest images of threads the user started in this team, with their prompts (not pictures
        people posted into them)."""
        query = (
            select(Image, Turn, Thread)
            .join(TurnImage, and_(TurnImage.team_id == Image.team_id, TurnImage.image_id == Image.id))
            .join(Turn, and_(Turn.team_id == TurnImage.team_id, Turn.id == TurnImage.turn_id))
            .join(Thread, and_(Thread.team_id == Turn.team_id, Thread.id == Turn.thread_id))
            .where(Image.team_id == team_id, Thread.owner_user_id == user_id, Turn.kind != "picture")
            .order_by(Turn.id.desc(), TurnImage.position)
            .limit(max(0, limit))
        )
        with translated(self._url), self._sessions() as session:
            return [
                RecentImage(
                    prompt=turn.prompt or thread.idea,
                    seed=image.seed,
                    model_id=image.model_id,
                    ref=ThreadRef(thread.team_id, thread.channel_id, thread.thread_ts),
                    created_utc=image.created_utc,
                )
                for image, turn, thread in session.execute(query)
            ]
