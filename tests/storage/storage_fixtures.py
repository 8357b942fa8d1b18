"""Database fixtures for the storage tests: a SQLite file always, Postgres when a server is given.

Import the fixtures into a test module
(`from tests.storage.storage_fixtures import db_url, engine, sessions`); set IMAGINE_TEST_POSTGRES_URL
(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres, a role that may CREATE DATABASE) to run every
parametrized test on a scratch Postgres database as well.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from storage.db import create_db_engine, migrate, parse_url, session_factory

POSTGRES_ENV = "IMAGINE_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgres")

logger = logging.getLogger(__name__)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str | None:
    """The Postgres server to test against, read before the per-test environment scrub."""
    return os.environ.get(POSTGRES_ENV) or None


def _scratch_postgres(admin_url: str) -> Iterator[str]:
    """Create a throw-away database on the server, yield its URL, then drop it."""
    name = f"imagine_test_{uuid.uuid4().hex[:12]}"
    admin = create_db_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield parse_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_admin_url: str | None) -> Iterator[str]:
    """A blank database URL: a SQLite file under tmp_path, or a scratch database on Postgres."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'imagine.db'}"
        return
    if not postgres_admin_url:
        pytest.skip(f"Postgres not tested: set {POSTGRES_ENV} to a server URL to run this case")
    yield from _scratch_postgres(postgres_admin_url)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to head, disposed after the test."""
    created = create_db_engine(db_url)
    migrate(created)
    try:
        yield created
    finally:
        created.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """A session factory on the migrated database."""
    return session_factory(engine)
