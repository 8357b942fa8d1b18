"""Engine, sessions and programmatic alembic migrations (SQLite by default, Postgres by URL)."""

from __future__ import annotations

import logging
from collections.abc import Callable
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

from storage.db_errors import URL_VARIABLE, StorageError, retry_busy, safe_url, translated

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000  # how long a statement waits for another writer's lock (SQLite retries inside)
LOCK_TIMEOUT_MS = SQLITE_BUSY_TIMEOUT_MS  # the same bound on Postgres (lock_timeout), so no write hangs
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


def _sqlite_pragmas(busy_timeout_ms: int) -> Callable[[Any, Any], None]:
    """A connect hook: busy timeout (first, so the other pragmas wait too), WAL journal, foreign keys.

    While another connection holds the write lock, SQLite's busy handler retries the statement with a
    growing sleep (1, 2, 5, 10 … 100 ms) until `busy_timeout_ms` has passed, then it fails with
    "database is locked", which `translated` raises as DatabaseBusyError.
    """

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    return on_connect


def create_db_engine(url: str, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Engine:
    """Build the process's engine for `url` (create it once and share it; dispose it at shutdown).

    `busy_timeout_ms` bounds how long a statement waits for a lock another writer holds: SQLite's
    busy_timeout, Postgres's lock_timeout (unless the URL sets its own `options`).
    """
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    wait_ms = max(1, int(busy_timeout_ms))  # 0 would mean "never wait" on SQLite but "forever" on Postgres
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
            # the driver's own wait (sqlite3's `timeout`) matches, for statements before the pragma
            connect_args: dict[str, Any] = {} if "timeout" in parsed.query else {"timeout": wait_ms / 1000}
            engine = create_engine(parsed, connect_args=connect_args)
            event.listen(engine, "connect", _sqlite_pragmas(wait_ms))
        else:
            connect_args = {}
            if backend == "postgresql" and "options" not in parsed.query:
                connect_args["options"] = f"-c lock_timeout={wait_ms}"
            engine = create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
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

    def run() -> None:
        with translated(url), engine.begin() as connection:
            config = alembic_config(connection)
            if action == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)

    try:
        retry_busy(run)  # two processes starting at once: one migrates, the other waits and finds head
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
