"""Jobs: turns in progress, so a process killed mid-turn is reported as interrupted after a restart.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(64)


def upgrade() -> None:
    """Create the jobs table and its index for the recovery scan."""
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", ID, nullable=False),
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("thread_ts", sa.String(32), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("retry", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_utc", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    op.create_index("ix_jobs_state_heartbeat_utc", "jobs", ["state", "heartbeat_utc"])


def downgrade() -> None:
    """Drop the jobs table."""
    op.drop_index("ix_jobs_state_heartbeat_utc", table_name="jobs")
    op.drop_table("jobs")
