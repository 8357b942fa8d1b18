"""Storage errors: every database failure surfaces as a StorageError with a one-line message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

URL_VARIABLE = "IMAGINE_DATABASE_URL"
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


@contextmanager
def translated(url: str | None = None) -> Iterator[None]:
    """Re-raise SQLAlchemy errors escaping the block as StorageError."""
    try:
        yield
    except sa_exc.SQLAlchemyError as error:
        raise describe(error, url) from error
