"""Engine, sessions and programmatic alembic migrations (SQLite by default, Postgres by URL)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from storage.errors import URL_VARIABLE, StorageError, safe_url, translated

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000
RACE_RETRIES = 3  # attempts when a concurrent writer wins a unique-key race


def parse_url(url: str) -> URL:
    """Parse a database URL; bare postgres:// and postgresql:// mean the psycopg (v3) driver."""
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError:
        raise StorageError(f"{URL_VARIABLE}={safe_url(url)} is not a valid SQLAlchemy database URL") from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_file(parsed: URL) -> Path | None:
    """The SQLite database file of a URL, or None for in-memory and URI-style databases."""
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:") or parsed.query.get("uri"):
        return None
    return Path(database).expanduser()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL journal, a busy timeout and enforced foreign keys on every new SQLite connection."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def create_db_engine(url: str) -> Engine:
    """Build the process's engine for `url` (create it once and share it; dispose it at shutdown)."""
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            path = _sqlite_file(parsed)
            if path is not None:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as error:
                    raise StorageError(
                        f"cannot create {path.parent} for the SQLite database ({error.strerror}); "
                        f"check {URL_VARIABLE} or IMAGINE_DATA_DIR"
                    ) from None
            engine = create_engine(parsed)
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(parsed, pool_pre_ping=True)
    except sa_exc.NoSuchModuleError:
        raise StorageError(
            f"{URL_VARIABLE} names an unknown database dialect {parsed.drivername!r}"
        ) from None
    except ImportError as error:
        hint = " (pip install 'psycopg[binary]')" if backend == "postgresql" else ""
        raise StorageError(
            f"{URL_VARIABLE} needs the {parsed.drivername} driver, but module {error.name!r} "
            f"is not installed{hint}"
        ) from None
    except sa_exc.ArgumentError as error:
        raise StorageError(f"{URL_VARIABLE}={safe_url(url)} cannot be used: {error}") from None
    logger.debug("database engine created for %s", safe_url(url))
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to `engine`; loaded rows stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def bound_url(sessions: sessionmaker[Session]) -> str | None:
    """The URL of the engine a session factory is bound to, for error messages."""
    bind = sessions.kw.get("bind")
    return bind.url.render_as_string(hide_password=False) if isinstance(bind, Engine) else None


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic Config built in code (no alembic.ini needed), optionally on an open connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _run_command(target: Engine | str, action: str, revision: str) -> None:
    """Run alembic upgrade/downgrade on an engine or URL inside one transaction."""
    engine = target if isinstance(target, Engine) else create_db_engine(target)
    url = engine.url.render_as_string(hide_password=False)
    try:
        with translated(url), engine.begin() as connection:
            config = alembic_config(connection)
            if action == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
    finally:
        if engine is not target:
            engine.dispose()
    logger.info("database %s to %s done on %s", action, revision, safe_url(url))


def migrate(target: Engine | str, revision: str = "head") -> None:
    """Upgrade the schema of `target` (an engine or a URL) to `revision`, by default the newest."""
    _run_command(target, "upgrade", revision)


def downgrade(target: Engine | str, revision: str = "base") -> None:
    """Downgrade the schema of `target` to `revision` (base drops every table)."""
    _run_command(target, "downgrade", revision)


def head_revision() -> str:
    """The newest alembic revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise StorageError(f"no alembic revisions found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for a blank database."""
    with translated(engine.url.render_as_string(hide_password=False)), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
