"""Initial schema: workspaces, threads, turns, images, feedback, votes, prompts, settings, events, usage.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(64)
SETTING = sa.String(255)


def _utc() -> sa.DateTime:
    """A timezone-aware timestamp column type (naive UTC text on SQLite)."""
    return sa.DateTime(timezone=True)


def _settings_columns() -> list[sa.Column[object]]:
    """The default columns shared by user_settings and channel_settings."""
    return [
        sa.Column("aspect_ratio", sa.String(8), nullable=True),
        sa.Column("style", SETTING, nullable=True),
        sa.Column("negative_prompt", sa.Text(), nullable=True),
        sa.Column("image_model", SETTING, nullable=True),
        sa.Column("updated_utc", _utc(), nullable=False),
    ]


def upgrade() -> None:
    """Create every table of the initial schema."""
    op.create_table(
        "workspaces",
        sa.Column("team_id", ID, nullable=False),
        sa.Column("name", SETTING, nullable=True),
        sa.Column("created_utc", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", name="pk_workspaces"),
    )
    op.create_table(
        "threads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", ID, nullable=False),
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("thread_ts", sa.String(32), nullable=False),
        sa.Column("owner_user_id", ID, nullable=False),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("idea", sa.Text(), nullable=False),
        sa.Column("created_utc", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_threads"),
        sa.UniqueConstraint(
            "team_id", "channel_id", "thread_ts", name="uq_threads_team_id_channel_id_thread_ts"
        ),
        sa.UniqueConstraint("team_id", "id", name="uq_threads_team_id_id"),
    )
    op.create_table(
        "turns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", ID, nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("hits_json", sa.JSON(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("negative_prompt", sa.Text(), nullable=True),
        sa.Column("params_json", sa.JSON(), nullable=False),
        sa.Column("chat_model", SETTING, nullable=True),
        sa.Column("image_model", SETTING, nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("created_utc", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_turns"),
        sa.ForeignKeyConstraint(
            ["team_id", "thread_id"],
            ["threads.team_id", "threads.id"],
            name="fk_turns_team_id_thread_id",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("team_id", "id", name="uq_turns_team_id_id"),
    )
    op.create_index("ix_turns_team_id_thread_id", "turns", ["team_id", "thread_id"])
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", ID, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("model_id", SETTING, nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("slack_file_id", ID, nullable=True),
        sa.Column("created_utc", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_images"),
        sa.UniqueConstraint("team_id", "sha256", name="uq_images_team_id_sha256"),
        sa.UniqueConstraint("team_id", "id", name="uq_images_team_id_id"),
    )
    op.create_table(
        "turn_images",
        sa.Column("turn_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("team_id", ID, nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("turn_id", "position", name="pk_turn_images"),
        sa.ForeignKeyConstraint(
            ["team_id", "turn_id"],
            ["turns.team_id", "turns.id"],
            name="fk_turn_images_team_id_turn_id",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id", "image_id"], ["images.team_id", "images.id"], name="fk_turn_images_team_id_image_id"
        ),
    )
    op.create_index("ix_turn_images_team_id_image_id", "turn_images", ["team_id", "image_id"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", ID, nullable=False),
        sa.Column("turn_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=True),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("value", sa.SmallInteger(), nullable=False),
        sa.Column("created_utc", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.ForeignKeyConstraint(
            ["team_id", "turn_id"],
            ["turns.team_id", "turns.id"],
            name="fk_feedback_team_id_turn_id",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id", "image_id"], ["images.team_id", "images.id"], name="fk_feedback_team_id_image_id"
        ),
        sa.CheckConstraint("value IN (-1, 1)", name=op.f("ck_feedback_value")),
        sa.UniqueConstraint("team_id", "user_id", "image_id", name="uq_feedback_team_id_user_id_image_id"),
    )
    op.create_index(
        "uq_feedback_team_id_user_id_turn_id",
        "feedback",
        ["team_id", "user_id", "turn_id"],
        unique=True,
        sqlite_where=sa.text("image_id IS NULL"),
        postgresql_where=sa.text("image_id IS NULL"),
    )
    op.create_index("ix_feedback_team_id_turn_id", "feedback", ["team_id", "turn_id"])
    op.create_table(
        "votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", ID, nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("created_utc", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_votes"),
        sa.ForeignKeyConstraint(
            ["team_id", "thread_id"],
            ["threads.team_id", "threads.id"],
            name="fk_votes_team_id_thread_id",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("number >= 1", name=op.f("ck_votes_number")),
        sa.UniqueConstraint(
            "team_id", "thread_id", "user_id", "number", name="uq_votes_team_id_thread_id_user_id_number"
        ),
    )
    op.create_table(
        "saved_prompts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("negative_prompt", sa.Text(), nullable=False),
        sa.Column("params_json", sa.JSON(), nullable=False),
        sa.Column("created_utc", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_saved_prompts"),
    )
    op.create_index("ix_saved_prompts_team_id_user_id", "saved_prompts", ["team_id", "user_id"])
    op.create_table(
        "user_settings",
        sa.Column("team_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        *_settings_columns(),
        sa.PrimaryKeyConstraint("team_id", "user_id", name="pk_user_settings"),
    )
    op.create_table(
        "channel_settings",
        sa.Column("team_id", ID, nullable=False),
        sa.Column("channel_id", ID, nullable=False),
        *_settings_columns(),
        sa.PrimaryKeyConstraint("team_id", "channel_id", name="pk_channel_settings"),
    )
    op.create_table(
        "processed_events",
        sa.Column("team_id", ID, nullable=False),
        sa.Column("event_id", SETTING, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("created_utc", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "event_id", name="pk_processed_events"),
    )
    op.create_index("ix_processed_events_team_id_created_utc", "processed_events", ["team_id", "created_utc"])
    op.create_table(
        "usage_counters",
        sa.Column("team_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "user_id", "day", name="pk_usage_counters"),
        sa.CheckConstraint("images >= 0", name=op.f("ck_usage_counters_images")),
    )


def downgrade() -> None:
    """Drop every table (children first)."""
    for index, table in (
        ("ix_processed_events_team_id_created_utc", "processed_events"),
        ("ix_saved_prompts_team_id_user_id", "saved_prompts"),
        ("ix_feedback_team_id_turn_id", "feedback"),
        ("uq_feedback_team_id_user_id_turn_id", "feedback"),
        ("ix_turn_images_team_id_image_id", "turn_images"),
        ("ix_turns_team_id_thread_id", "turns"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "usage_counters",
        "processed_events",
        "channel_settings",
        "user_settings",
        "saved_prompts",
        "votes",
        "feedback",
        "turn_images",
        "images",
        "turns",
        "threads",
        "workspaces",
    ):
        op.drop_table(table)
