"""Storage errors: every database failure surfaces as a StorageError with a one-line message."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)
T = TypeVar("T")

URL_VARIABLE = "IMAGINE_DATABASE_URL"
BUSY_RETRIES = 3  # attempts of a whole transaction by `retry_busy` (on top of the driver's lock wait)
BUSY_BACKOFF_S = 0.25  # first pause of `retry_busy`, doubled after each busy attempt
# driver messages of a lock that was not granted in time: SQLite's SQLITE_BUSY / SQLITE_LOCKED, and
# Postgres's lock_timeout, deadlock and serialization failures (SQLSTATE 55P03, 40P01, 40001)
BUSY_HINTS = (
    "database is locked",
    "database is busy",
    "database table is locked",
    "lock timeout",
    "could not obtain lock",
    "deadlock detected",
    "could not serialize access",
)
BUSY_SQLSTATES = ("55P03", "40P01", "40001")
CONNECTION_HINTS = (
    "connect",
    "authentication",
    "password",
    "host",
    "unable to open database",
    "server closed",
    "no route",
    "ssl",
)


class StorageError(Exception):
    """A database operation failed; str(error) is one line that says what to check."""


class NotFoundError(StorageError):
    """The thread, turn or image does not exist for this team."""


class DatabaseBusyError(StorageError):
    """Another writer held a lock longer than the lock wait (SQLite busy_timeout, Postgres lock_timeout)."""


def safe_url(url: str) -> str:
    """The URL with its password masked, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "<unparseable URL>"


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's text (drivers love multi-line messages)."""
    original = getattr(error, "orig", None) or error
    for line in str(original).splitlines():
        if line.strip():
            return line.strip()
    return type(original).__name__


def describe(error: sa_exc.SQLAlchemyError, url: str | None = None) -> StorageError:
    """Turn a SQLAlchemy error into a StorageError with an actionable one-line message."""
    detail = first_line(error)
    where = f" at {safe_url(url)}" if url else ""
    lowered = detail.lower()
    if is_busy(error):
        return DatabaseBusyError(
            f"the database{where} is busy: another writer held its lock longer than the bot waits "
            f"({detail}); try again in a moment"
        )
    if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
        return StorageError(
            f"database schema is missing or outdated{where}: run the migrations "
            f"(storage.db.migrate or `alembic upgrade head`) ({detail})"
        )
    if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError) and _is_connection(lowered):
        return StorageError(f"cannot connect to the database{where}; check {URL_VARIABLE} ({detail})")
    if isinstance(error, sa_exc.IntegrityError):
        return StorageError(f"database rejected the write{where} ({detail})")
    return StorageError(f"database error{where} ({detail})")


def _is_connection(lowered: str) -> bool:
    """True when a driver message is about reaching or logging in to the server (not locks or SQL)."""
    if "database is locked" in lowered or "deadlock" in lowered:
        return False
    return any(hint in lowered for hint in CONNECTION_HINTS)


def is_busy(error: BaseException) -> bool:
    """True when a driver error (wrapped by SQLAlchemy or not) says a lock was not granted in time."""
    original = getattr(error, "orig", None) or error
    if str(getattr(original, "sqlstate", "") or "") in BUSY_SQLSTATES:
        return True
    lowered = first_line(error).lower()
    return any(hint in lowered for hint in BUSY_HINTS)


def retry_busy(
    operation: Callable[[], T],
    *,
    attempts: int = BUSY_RETRIES,
    backoff_s: float = BUSY_BACKOFF_S,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `operation` (one whole transaction) again, after a growing pause, while the database is busy.

    The driver already waits for a lock (busy_timeout / lock_timeout); this is for the writer that still
    lost, e.g. a Postgres deadlock victim. A busy failure of the last attempt is raised as it came.
    """
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except (sa_exc.DBAPIError, DatabaseBusyError) as error:
            busy = isinstance(error, DatabaseBusyError) or is_busy(error)
            if not busy or attempt == attempts:
                raise
            pause = backoff_s * 2 ** (attempt - 1)
            logger.info(
                "database busy (%s): attempt %d of %d in %.2f s",
                first_line(error),
                attempt + 1,
                attempts,
                pause,
            )
            sleep(pause)
    raise ValueError(f"attempts must be >= 1, got {attempts}")


@contextmanager
def translated(url: str | None = None) -> Iterator[None]:
    """Re-raise SQLAlchemy errors escaping the block as StorageError."""
    try:
        yield
    except sa_exc.SQLAlchemyError as error:
        raise describe(error, url) from error
