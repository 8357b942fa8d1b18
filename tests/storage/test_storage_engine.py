"""Opening a database: SQLite connection setup, and one-line StorageErrors when it cannot be used.

A bad or unreachable URL, a SQLite directory that cannot be made, or a database never migrated.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.db import create_db_engine, migrate, session_factory
from storage.db_errors import StorageError
from storage.thread_store import SqlThreadStore


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    sqlite = create_db_engine(f"sqlite:///{tmp_path / 'deep' / 'er' / 'imagine.db'}")
    try:
        with sqlite.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 5000
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert (tmp_path / "deep" / "er" / "imagine.db").exists()
    finally:
        sqlite.dispose()


def _closed_port() -> int:
    """A local TCP port nobody listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_postgres_is_one_line_naming_the_variable() -> None:
    url = f"postgresql+psycopg://bot:s3cret@127.0.0.1:{_closed_port()}/imagine?connect_timeout=2"
    with pytest.raises(StorageError) as caught:
        migrate(url)
    message = str(caught.value)
    assert "IMAGINE_DATABASE_URL" in message
    assert "s3cret" not in message
    assert "\n" not in message


@pytest.mark.parametrize("url", ["not a url", "nosuchdialect://x/y"], ids=["unparseable", "unknown-dialect"])
def test_bad_urls_are_storage_errors(url: str) -> None:
    with pytest.raises(StorageError, match="IMAGINE_DATABASE_URL"):
        create_db_engine(url)


def test_sqlite_directory_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StorageError, match="cannot create"):
        create_db_engine(f"sqlite:///{tmp_path / 'file' / 'imagine.db'}")


def test_unmigrated_database_says_to_run_the_migrations(tmp_path: Path) -> None:
    blank = create_db_engine(f"sqlite:///{tmp_path / 'blank.db'}")
    try:
        with pytest.raises(StorageError, match="run the migrations"):
            SqlThreadStore(session_factory(blank)).find_thread("T1", 1)
    finally:
        blank.dispose()
