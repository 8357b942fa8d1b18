"""Slack OAuth: slack_sdk's SQLAlchemy installation store (installations, bots) and state store tables.

Written out by hand to match SQLAlchemyInstallationStore.build_installations_table / build_bots_table and
SQLAlchemyOAuthStateStore.build_oauth_states_table (slack_sdk 3.x), so this revision never changes when the
library does; tests/storage/test_storage_migrations.py checks the stores' metadata against the migrated
schema.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(32)
NAME = sa.String(200)
SCOPES = sa.String(1000)


def _bot_columns() -> list[sa.Column[object]]:
    """The bot-token columns shared by slack_installations and slack_bots."""
    return [
        sa.Column("bot_token", NAME, nullable=True),
        sa.Column("bot_id", ID, nullable=True),
        sa.Column("bot_user_id", ID, nullable=True),
        sa.Column("bot_scopes", SCOPES, nullable=True),
        sa.Column("bot_refresh_token", NAME, nullable=True),
        sa.Column("bot_token_expires_at", sa.DateTime(), nullable=True),
    ]


def upgrade() -> None:
    """Create the installation, bot and OAuth state tables."""
    op.create_table(
        "slack_installations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("app_id", ID, nullable=False),
        sa.Column("enterprise_id", ID, nullable=True),
        sa.Column("enterprise_name", NAME, nullable=True),
        sa.Column("enterprise_url", NAME, nullable=True),
        sa.Column("team_id", ID, nullable=True),
        sa.Column("team_name", NAME, nullable=True),
        *_bot_columns(),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("user_token", NAME, nullable=True),
        sa.Column("user_scopes", SCOPES, nullable=True),
        sa.Column("user_refresh_token", NAME, nullable=True),
        sa.Column("user_token_expires_at", sa.DateTime(), nullable=True),
        sa.Column("incoming_webhook_url", NAME, nullable=True),
        sa.Column("incoming_webhook_channel", NAME, nullable=True),
        sa.Column("incoming_webhook_channel_id", NAME, nullable=True),
        sa.Column("incoming_webhook_configuration_url", NAME, nullable=True),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("token_type", ID, nullable=True),
        sa.Column("installed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_slack_installations"),
    )
    op.create_index(
        "slack_installations_idx",
        "slack_installations",
        ["client_id", "enterprise_id", "team_id", "user_id", "installed_at"],
    )
    op.create_table(
        "slack_bots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("app_id", ID, nullable=False),
        sa.Column("enterprise_id", ID, nullable=True),
        sa.Column("enterprise_name", NAME, nullable=True),
        sa.Column("team_id", ID, nullable=True),
        sa.Column("team_name", NAME, nullable=True),
        *_bot_columns(),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("installed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_slack_bots"),
    )
    op.create_index("slack_bots_idx", "slack_bots", ["client_id", "enterprise_id", "team_id", "installed_at"])
    op.create_table(
        "slack_oauth_states",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("state", NAME, nullable=False),
        sa.Column("expire_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_slack_oauth_states"),
    )


def downgrade() -> None:
    """Drop the OAuth tables."""
    op.drop_table("slack_oauth_states")
    op.drop_index("slack_bots_idx", table_name="slack_bots")
    op.drop_table("slack_bots")
    op.drop_index("slack_installations_idx", table_name="slack_installations")
    op.drop_table("slack_installations")
