"""Alembic migrations: a blank database goes to head with exactly the expected schema, and back."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, inspect, text

from bot.slack.oauth import oauth_metadata
from storage.db import create_db_engine, current_revision, downgrade, head_revision, migrate
from storage.models import Base
from tests.storage.expected_schema import EXPECTED, NOT_NULL, SLACK_OAUTH_TABLES, schema_of
from tests.storage.storage_fixtures import db_url, engine, postgres_admin_url  # noqa: F401

REPO = Path(__file__).resolve().parents[2]


def test_blank_database_migrates_to_exactly_the_expected_schema(engine: Engine) -> None:  # noqa: F811
    assert current_revision(engine) == head_revision() == "0004"
    assert schema_of(engine) == EXPECTED


def test_models_match_the_migrated_schema(engine: Engine) -> None:  # noqa: F811
    expected = MetaData()
    for table in (*Base.metadata.tables.values(), *oauth_metadata().tables.values()):
        table.to_metadata(expected)  # our models and the OAuth stores' own table builders
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, expected) == []


def test_every_table_but_workspaces_is_indexed_by_team_first() -> None:
    for table, shape in EXPECTED.items():
        if table in ("alembic_version", "workspaces", *SLACK_OAUTH_TABLES):
            continue
        leading = [
            shape["primary_key"],
            *shape["unique"].values(),
            *(c for c, _ in shape["indexes"].values()),
        ]
        assert "team_id" in shape["columns"] and shape["columns"]["team_id"][1] is NOT_NULL, table
        assert any(columns[0] == "team_id" for columns in leading), table


def test_downgrade_to_base_and_upgrade_again(engine: Engine) -> None:  # noqa: F811
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    migrate(engine)
    assert schema_of(engine) == EXPECTED
    migrate(engine)  # at head already: a no-op
    assert current_revision(engine) == "0004"


def test_jobs_already_there_reserve_no_images_and_keep_their_rows_on_downgrade(
    engine: Engine,  # noqa: F811
) -> None:
    downgrade(engine, "0003")
    assert "images" not in {c["name"] for c in inspect(engine).get_columns("jobs")}
    row = "'T1', 'C1', '1.2', 'U1', 'w', 'running', '2026-11-27 10:00:00', '2026-11-27 10:00:00'"
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO jobs (team_id, channel_id, thread_ts, user_id, worker, state, started_utc,"
                f" heartbeat_utc) VALUES ({row})"
            )
        )
    migrate(engine)  # 0004 adds jobs.images: 0 for the job already there
    with engine.connect() as connection:
        assert connection.execute(text("SELECT user_id, images FROM jobs")).all() == [("U1", 0)]
    downgrade(engine, "0003")  # and back: the column and its index go, the row stays
    assert "ix_jobs_team_id_user_id_state" not in {i["name"] for i in inspect(engine).get_indexes("jobs")}
    assert "ix_jobs_state_heartbeat_utc" in {i["name"] for i in inspect(engine).get_indexes("jobs")}
    with engine.connect() as connection:
        assert connection.execute(text("SELECT user_id, state FROM jobs")).all() == [("U1", "running")]
    migrate(engine)
    assert schema_of(engine) == EXPECTED


def test_migrate_accepts_a_url(db_url: str) -> None:  # noqa: F811
    migrate(db_url)
    checked = create_db_engine(db_url)
    try:
        assert current_revision(checked) == "0004"
    finally:
        checked.dispose()


def test_alembic_cli_config_reads_the_bot_database_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGINE_DATA_DIR", str(tmp_path / "state"))
    touched = [logging.getLogger(name) for name in ("", "alembic", "sqlalchemy.engine")]
    saved = [(list(logger.handlers), logger.level) for logger in touched]
    try:
        command.upgrade(Config(str(REPO / "alembic.ini")), "head")  # alembic.ini configures logging
    finally:
        for logger, (handlers, level) in zip(touched, saved, strict=True):
            logger.handlers[:] = handlers
            logger.setLevel(level)
    migrated = create_db_engine(f"sqlite:///{tmp_path / 'state' / 'imagine.db'}")
    try:
        assert current_revision(migrated) == "0004"
    finally:
        migrated.dispose()
