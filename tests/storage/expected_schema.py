"""The schema a blank database must have at migration head, and a dialect-neutral reflection to compare.

Shared by the migration tests (tests/storage/test_storage_migrations.py); every table, column, key, constraint
and index is spelled out here so a migration that changes any of them fails loudly.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, inspect

S64, S255 = "str(64)", "str(255)"
NOT_NULL, NULL = False, True
S32, S200 = "str(32)", "str(200)"
BOT_COLUMNS = {
    "bot_token": (S200, NULL),
    "bot_id": (S32, NULL),
    "bot_user_id": (S32, NULL),
    "bot_scopes": ("str(1000)", NULL),
    "bot_refresh_token": (S200, NULL),
    "bot_token_expires_at": ("datetime", NULL),
}
SLACK_OAUTH_TABLES = ("slack_installations", "slack_bots", "slack_oauth_states")
SETTINGS_COLUMNS = {
    "aspect_ratio": ("str(8)", NULL),
    "style": (S255, NULL),
    "negative_prompt": ("text", NULL),
    "image_model": (S255, NULL),
    "updated_utc": ("datetime", NOT_NULL),
}


def _table(
    columns: dict[str, tuple[str, bool]],
    primary_key: tuple[str, ...] = ("id",),
    unique: dict[str, tuple[str, ...]] | None = None,
    indexes: dict[str, tuple[tuple[str, ...], bool]] | None = None,
    foreign_keys: dict[str, tuple[tuple[str, ...], str, tuple[str, ...], str | None]] | None = None,
    checks: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One table's expected shape."""
    return {
        "columns": columns,
        "primary_key": primary_key,
        "unique": unique or {},
        "indexes": indexes or {},
        "foreign_keys": foreign_keys or {},
        "checks": sorted(checks),
    }


def _fk(columns: tuple[str, str], table: str, ondelete: str | None = None) -> tuple[Any, ...]:
    """A tenancy-preserving composite foreign key (team_id, x) -> table(team_id, id)."""
    return (columns, table, ("team_id", "id"), ondelete)


EXPECTED: dict[str, dict[str, Any]] = {
    "alembic_version": _table({"version_num": ("str(32)", NOT_NULL)}, primary_key=("version_num",)),
    "workspaces": _table(
        {"team_id": (S64, NOT_NULL), "name": (S255, NULL), "created_utc": ("datetime", NOT_NULL)},
        primary_key=("team_id",),
    ),
    "threads": _table(
        {
            "id": ("int", NOT_NULL),
            "team_id": (S64, NOT_NULL),
            "channel_id": (S64, NOT_NULL),
            "thread_ts": ("str(32)", NOT_NULL),
            "owner_user_id": (S64, NOT_NULL),
            "mode": ("str(32)", NOT_NULL),
            "idea": ("text", NOT_NULL),
            "created_utc": ("datetime", NOT_NULL),
        },
        unique={
            "uq_threads_team_id_channel_id_thread_ts": ("team_id", "channel_id", "thread_ts"),
            "uq_threads_team_id_id": ("team_id", "id"),
        },
    ),
    "turns": _table(
        {
            "id": ("int", NOT_NULL),
            "team_id": (S64, NOT_NULL),
            "thread_id": ("int", NOT_NULL),
            "kind": ("str(16)", NOT_NULL),
            "role": ("str(16)", NOT_NULL),
            "text": ("text", NOT_NULL),
            "hits_json": ("json", NOT_NULL),
            "prompt": ("text", NULL),
            "negative_prompt": ("text", NULL),
            "params_json": ("json", NOT_NULL),
            "chat_model": (S255, NULL),
            "image_model": (S255, NULL),
            "input_tokens": ("int", NOT_NULL),
            "output_tokens": ("int", NOT_NULL),
            "duration_ms": ("int", NOT_NULL),
            "created_utc": ("datetime", NOT_NULL),
        },
        unique={"uq_turns_team_id_id": ("team_id", "id")},
        indexes={"ix_turns_team_id_thread_id": (("team_id", "thread_id"), False)},
        foreign_keys={"fk_turns_team_id_thread_id": _fk(("team_id", "thread_id"), "threads", "CASCADE")},
    ),
    "images": _table(
        {
            "id": ("int", NOT_NULL),
            "team_id": (S64, NOT_NULL),
            "sha256": (S64, NOT_NULL),
            "seed": ("bigint", NOT_NULL),
            "model_id": (S255, NOT_NULL),
            "width": ("int", NOT_NULL),
            "height": ("int", NOT_NULL),
            "path": ("text", NOT_NULL),
            "slack_file_id": (S64, NULL),
            "created_utc": ("datetime", NOT_NULL),
        },
        unique={"uq_images_team_id_sha256": ("team_id", "sha256"), "uq_images_team_id_id": ("team_id", "id")},
    ),
    "turn_images": _table(
        {
            "turn_id": ("int", NOT_NULL),
            "position": ("int", NOT_NULL),
            "team_id": (S64, NOT_NULL),
            "image_id": ("int", NOT_NULL),
        },
        primary_key=("turn_id", "position"),
        indexes={"ix_turn_images_team_id_image_id": (("team_id", "image_id"), False)},
        foreign_keys={
            "fk_turn_images_team_id_turn_id": _fk(("team_id", "turn_id"), "turns", "CASCADE"),
            "fk_turn_images_team_id_image_id": _fk(("team_id", "image_id"), "images"),
        },
    ),
    "feedback": _table(
        {
            "id": ("int", NOT_NULL),
            "team_id": (S64, NOT_NULL),
            "turn_id": ("int", NOT_NULL),
            "image_id": ("int", NULL),
            "user_id": (S64, NOT_NULL),
            "value": ("smallint", NOT_NULL),
            "created_utc": ("datetime", NOT_NULL),
        },
        unique={"uq_feedback_team_id_user_id_image_id": ("team_id", "user_id", "image_id")},
        indexes={
            "ix_feedback_team_id_turn_id": (("team_id", "turn_id"), False),
            "uq_feedback_team_id_user_id_turn_id": (("team_id", "user_id", "turn_id"), True),
        },
        foreign_keys={
            "fk_feedback_team_id_turn_id": _fk(("team_id", "turn_id"), "turns", "CASCADE"),
            "fk_feedback_team_id_image_id": _fk(("team_id", "image_id"), "images"),
        },
        checks=("ck_feedback_value",),
    ),
    "votes": _table(
        {
            "id": ("int", NOT_NULL),
            "team_id": (S64, NOT_NULL),
            "thread_id": ("int", NOT_NULL),
            "user_id": (S64, NOT_NULL),
            "number": ("int", NOT_NULL),
            "created_utc": ("datetime", NOT_NULL),
        },
        unique={"uq_votes_team_id_thread_id_user_id_number": ("team_id", "thread_id", "user_id", "number")},
        foreign_keys={"fk_votes_team_id_thread_id": _fk(("team_id", "thread_id"), "threads", "CASCADE")},
        checks=("ck_votes_number",),
    ),
    "saved_prompts": _table(
        {
            "id": ("int", NOT_NULL),
            "team_id": (S64, NOT_NULL),
            "user_id": (S64, NOT_NULL),
            "prompt": ("text", NOT_NULL),
            "negative_prompt": ("text", NOT_NULL),
            "params_json": ("json", NOT_NULL),
            "created_utc": ("datetime", NOT_NULL),
        },
        indexes={"ix_saved_prompts_team_id_user_id": (("team_id", "user_id"), False)},
    ),
    "user_settings": _table(
        {"team_id": (S64, NOT_NULL), "user_id": (S64, NOT_NULL), **SETTINGS_COLUMNS},
        primary_key=("team_id", "user_id"),
    ),
    "channel_settings": _table(
        {"team_id": (S64, NOT_NULL), "channel_id": (S64, NOT_NULL), **SETTINGS_COLUMNS},
        primary_key=("team_id", "channel_id"),
    ),
    "processed_events": _table(
        {
            "team_id": (S64, NOT_NULL),
            "event_id": (S255, NOT_NULL),
            "kind": ("str(64)", NOT_NULL),
            "created_utc": ("datetime", NOT_NULL),
        },
        primary_key=("team_id", "event_id"),
        indexes={"ix_processed_events_team_id_created_utc": (("team_id", "created_utc"), False)},
    ),
    # turns in progress; the recovery scan reads them by state and heartbeat across teams, admission
    # counts a user's open jobs and the images they reserve
    "jobs": _table(
        {
            "id": ("int", NOT_NULL),
            "team_id": (S64, NOT_NULL),
            "channel_id": (S64, NOT_NULL),
            "thread_ts": ("str(32)", NOT_NULL),
            "user_id": (S64, NOT_NULL),
            "retry": ("text", NULL),
            "worker": (S255, NOT_NULL),
            "state": ("str(16)", NOT_NULL),
            "started_utc": ("datetime", NOT_NULL),
            "heartbeat_utc": ("datetime", NOT_NULL),
            "images": ("int", NOT_NULL),
        },
        primary_key=("id",),
        indexes={
            "ix_jobs_state_heartbeat_utc": (("state", "heartbeat_utc"), False),
            "ix_jobs_team_id_user_id_state": (("team_id", "user_id", "state"), False),
        },
    ),
    # slack_sdk's SQLAlchemy installation and state stores (OAuth installs), keyed by client_id, not team
    "slack_installations": _table(
        {
            "id": ("int", NOT_NULL),
            "client_id": (S32, NOT_NULL),
            "app_id": (S32, NOT_NULL),
            "enterprise_id": (S32, NULL),
            "enterprise_name": (S200, NULL),
            "enterprise_url": (S200, NULL),
            "team_id": (S32, NULL),
            "team_name": (S200, NULL),
            **BOT_COLUMNS,
            "user_id": (S32, NOT_NULL),
            "user_token": (S200, NULL),
            "user_scopes": ("str(1000)", NULL),
            "user_refresh_token": (S200, NULL),
            "user_token_expires_at": ("datetime", NULL),
            "incoming_webhook_url": (S200, NULL),
            "incoming_webhook_channel": (S200, NULL),
            "incoming_webhook_channel_id": (S200, NULL),
            "incoming_webhook_configuration_url": (S200, NULL),
            "is_enterprise_install": ("boolean", NOT_NULL),
            "token_type": (S32, NULL),
            "installed_at": ("datetime", NOT_NULL),
        },
        indexes={
            "slack_installations_idx": (
                ("client_id", "enterprise_id", "team_id", "user_id", "installed_at"),
                False,
            )
        },
    ),
    "slack_bots": _table(
        {
            "id": ("int", NOT_NULL),
            "client_id": (S32, NOT_NULL),
            "app_id": (S32, NOT_NULL),
            "enterprise_id": (S32, NULL),
            "enterprise_name": (S200, NULL),
            "team_id": (S32, NULL),
            "team_name": (S200, NULL),
            **BOT_COLUMNS,
            "is_enterprise_install": ("boolean", NOT_NULL),
            "installed_at": ("datetime", NOT_NULL),
        },
        indexes={"slack_bots_idx": (("client_id", "enterprise_id", "team_id", "installed_at"), False)},
    ),
    "slack_oauth_states": _table(
        {"id": ("int", NOT_NULL), "state": (S200, NOT_NULL), "expire_at": ("datetime", NOT_NULL)}
    ),
    "usage_counters": _table(
        {
            "team_id": (S64, NOT_NULL),
            "user_id": (S64, NOT_NULL),
            "day": ("date", NOT_NULL),
            "images": ("int", NOT_NULL),
        },
        primary_key=("team_id", "user_id", "day"),
        checks=("ck_usage_counters_images",),
    ),
}


def _type_name(column_type: sa.types.TypeEngine[Any]) -> str:
    """A dialect-neutral name for a reflected column type."""
    for kind, name in (
        (sa.JSON, "json"),
        (sa.DateTime, "datetime"),
        (sa.Date, "date"),
        (sa.BigInteger, "bigint"),
        (sa.SmallInteger, "smallint"),
        (sa.Integer, "int"),
    ):
        if isinstance(column_type, kind):
            return name
    if isinstance(column_type, sa.String):
        return f"str({column_type.length})" if column_type.length else "text"
    return type(column_type).__name__.lower()


def schema_of(bind: Engine) -> dict[str, dict[str, Any]]:
    """Tables, columns, keys, constraints and indexes of a database, in dialect-neutral form."""
    inspector = inspect(bind)
    schema: dict[str, dict[str, Any]] = {}
    for table in inspector.get_table_names():
        schema[table] = _table(
            {c["name"]: (_type_name(c["type"]), c["nullable"]) for c in inspector.get_columns(table)},
            primary_key=tuple(inspector.get_pk_constraint(table)["constrained_columns"]),
            unique={
                str(u["name"]): tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            },
            indexes={
                str(i["name"]): (tuple(c for c in i["column_names"] if c), bool(i["unique"]))
                for i in inspector.get_indexes(table)
                if not i.get("duplicates_constraint")
            },
            foreign_keys={
                str(f["name"]): (
                    tuple(f["constrained_columns"]),
                    f["referred_table"],
                    tuple(f["referred_columns"]),
                    f["options"].get("ondelete"),
                )
                for f in inspector.get_foreign_keys(table)
            },
            checks=tuple(str(c["name"]) for c in inspector.get_check_constraints(table)),
        )
    return schema
