"""Job images: what a queued or running job reserves of its user's daily quota, shared by every replica.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add jobs.images (0 for the jobs already there) and the index of a user's open jobs."""
    # a plain ADD COLUMN on every dialect (SQLite too, thanks to the default): works with --sql as well
    op.add_column("jobs", sa.Column("images", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.create_index("ix_jobs_team_id_user_id_state", "jobs", ["team_id", "user_id", "state"])


def downgrade() -> None:
    """Drop the index and the column (SQLite copies the table: a live database, not --sql)."""
    op.drop_index("ix_jobs_team_id_user_id_state", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("images")
