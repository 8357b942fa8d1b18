"""SQLAlchemy 2 typed models of every table; each row but a workspace's carries its Slack team id."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID_LENGTH = 64  # Slack team, channel, user and file ids (and CLI pseudo-ids)
TS_LENGTH = 32  # Slack message timestamps such as "1712345678.123456"
SETTING_LENGTH = 255

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every dialect (SQLite stores it naive and gets the zone back on read)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Reject naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable names for alembic batch mode)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _created() -> Mapped[datetime]:
    """A created_utc column filled in by Python."""
    return mapped_column(UTCDateTime(), default=utcnow)


class Workspace(Base):
    """A Slack workspace (team) the bot has seen."""

    __tablename__ = "workspaces"

    team_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(SETTING_LENGTH))
    created_utc: Mapped[datetime] = _created()


class Thread(Base):
    """A conversation thread: Slack coordinates, owner, mode (imagine, avatar ...) and the idea."""

    __tablename__ = "threads"
    __table_args__ = (
        UniqueConstraint(
            "team_id", "channel_id", "thread_ts", name="uq_threads_team_id_channel_id_thread_ts"
        ),
        UniqueConstraint("team_id", "id", name="uq_threads_team_id_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    channel_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    thread_ts: Mapped[str] = mapped_column(String(TS_LENGTH))
    owner_user_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    mode: Mapped[str] = mapped_column(String(32))
    idea: Mapped[str] = mapped_column(Text)
    created_utc: Mapped[datetime] = _created()


class Turn(Base):
    """One step of a thread: what was asked, what was retrieved and composed, and its cost."""

    __tablename__ = "turns"
    __table_args__ = (
        ForeignKeyConstraint(
            ["team_id", "thread_id"],
            ["threads.team_id", "threads.id"],
            name="fk_turns_team_id_thread_id",
            ondelete="CASCADE",
        ),
        UniqueConstraint("team_id", "id", name="uq_turns_team_id_id"),
        Index("ix_turns_team_id_thread_id", "team_id", "thread_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    thread_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    hits_json: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    prompt: Mapped[str | None] = mapped_column(Text)
    negative_prompt: Mapped[str | None] = mapped_column(Text)
    params_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    chat_model: Mapped[str | None] = mapped_column(String(SETTING_LENGTH))
    image_model: Mapped[str | None] = mapped_column(String(SETTING_LENGTH))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    created_utc: Mapped[datetime] = _created()


class Image(Base):
    """A generated image, content-addressed by sha256 and stored once per team."""

    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("team_id", "sha256", name="uq_images_team_id_sha256"),
        UniqueConstraint("team_id", "id", name="uq_images_team_id_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    sha256: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(BigInteger)
    model_id: Mapped[str] = mapped_column(String(SETTING_LENGTH))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    slack_file_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    created_utc: Mapped[datetime] = _created()


class TurnImage(Base):
    """Which images a turn produced, in order (the same image may appear at two positions)."""

    __tablename__ = "turn_images"
    __table_args__ = (
        ForeignKeyConstraint(
            ["team_id", "turn_id"],
            ["turns.team_id", "turns.id"],
            name="fk_turn_images_team_id_turn_id",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["team_id", "image_id"], ["images.team_id", "images.id"], name="fk_turn_images_team_id_image_id"
        ),
        Index("ix_turn_images_team_id_image_id", "team_id", "image_id"),
    )

    turn_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    image_id: Mapped[int] = mapped_column(Integer)


class Feedback(Base):
    """A user's +1/-1 on a turn's prompt (image_id NULL) or on one of its images; one per user and target."""

    __tablename__ = "feedback"
    __table_args__ = (
        ForeignKeyConstraint(
            ["team_id", "turn_id"],
            ["turns.team_id", "turns.id"],
            name="fk_feedback_team_id_turn_id",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["team_id", "image_id"], ["images.team_id", "images.id"], name="fk_feedback_team_id_image_id"
        ),
        CheckConstraint("value IN (-1, 1)", name="value"),
        UniqueConstraint("team_id", "user_id", "image_id", name="uq_feedback_team_id_user_id_image_id"),
        Index(
            "uq_feedback_team_id_user_id_turn_id",
            "team_id",
            "user_id",
            "turn_id",
            unique=True,
            sqlite_where=text("image_id IS NULL"),
            postgresql_where=text("image_id IS NULL"),
        ),
        Index("ix_feedback_team_id_turn_id", "team_id", "turn_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    turn_id: Mapped[int] = mapped_column(Integer)
    image_id: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    value: Mapped[int] = mapped_column(SmallInteger)
    created_utc: Mapped[datetime] = _created()


class Vote(Base):
    """A user's vote for candidate #number of a thread (avatar brainstorm); one per user and number."""

    __tablename__ = "votes"
    __table_args__ = (
        ForeignKeyConstraint(
            ["team_id", "thread_id"],
            ["threads.team_id", "threads.id"],
            name="fk_votes_team_id_thread_id",
            ondelete="CASCADE",
        ),
        CheckConstraint("number >= 1", name="number"),
        UniqueConstraint(
            "team_id", "thread_id", "user_id", "number", name="uq_votes_team_id_thread_id_user_id_number"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    thread_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    number: Mapped[int] = mapped_column(Integer)
    created_utc: Mapped[datetime] = _created()


class SavedPrompt(Base):
    """A prompt a user kept for later, with its negative prompt and parameters."""

    __tablename__ = "saved_prompts"
    __table_args__ = (Index("ix_saved_prompts_team_id_user_id", "team_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    prompt: Mapped[str] = mapped_column(Text)
    negative_prompt: Mapped[str] = mapped_column(Text, default="")
    params_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_utc: Mapped[datetime] = _created()


class UserSettings(Base):
    """A user's defaults within a workspace."""

    __tablename__ = "user_settings"

    team_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    aspect_ratio: Mapped[str | None] = mapped_column(String(8))
    style: Mapped[str | None] = mapped_column(String(SETTING_LENGTH))
    negative_prompt: Mapped[str | None] = mapped_column(Text)
    image_model: Mapped[str | None] = mapped_column(String(SETTING_LENGTH))
    updated_utc: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ChannelSettings(Base):
    """A channel's defaults within a workspace (a user's own settings win)."""

    __tablename__ = "channel_settings"

    team_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    aspect_ratio: Mapped[str | None] = mapped_column(String(8))
    style: Mapped[str | None] = mapped_column(String(SETTING_LENGTH))
    negative_prompt: Mapped[str | None] = mapped_column(Text)
    image_model: Mapped[str | None] = mapped_column(String(SETTING_LENGTH))
    updated_utc: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ProcessedEvent(Base):
    """A Slack event id already handled (idempotency against Slack's retries)."""

    __tablename__ = "processed_events"
    __table_args__ = (Index("ix_processed_events_team_id_created_utc", "team_id", "created_utc"),)

    team_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(SETTING_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    created_utc: Mapped[datetime] = _created()


class UsageCounter(Base):
    """Images a user generated on one UTC day (for quotas)."""

    __tablename__ = "usage_counters"
    __table_args__ = (CheckConstraint("images >= 0", name="images"),)

    team_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    images: Mapped[int] = mapped_column(Integer, default=0)


class Job(Base):
    """A turn waiting behind its thread, admitted (queued), running until closed: a kill leaves a trace."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_state_heartbeat_utc", "state", "heartbeat_utc"),
        Index("ix_jobs_team_id_user_id_state", "team_id", "user_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    channel_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    thread_ts: Mapped[str] = mapped_column(String(TS_LENGTH))
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    retry: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str] = mapped_column(String(SETTING_LENGTH))
    # waiting (behind another turn of its thread), queued, running; done, failed, refused, interrupted
    state: Mapped[str] = mapped_column(String(16))
    started_utc: Mapped[datetime] = _created()
    heartbeat_utc: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # images the job will draw, reserved against the user's daily quota until they are counted
    images: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
