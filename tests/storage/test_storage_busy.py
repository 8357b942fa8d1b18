"""A busy database: writers wait for another writer's lock (SQLite busy handler), then fail clearly."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from bot.engine.ports import ThreadRef
from storage.db import create_db_engine, migrate, session_factory
from storage.db_errors import DatabaseBusyError, StorageError, describe, is_busy, retry_busy
from storage.ledger import SqlEventLedger
from storage.thread_store import SqlThreadStore
from tests.reliability_record import figures

TEAM = "TBUSY"
HOLD_S = 1.0


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    """A migrated SQLite file."""
    path = tmp_path / "busy.db"
    engine = create_db_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@contextmanager
def engine_on(path: Path, busy_timeout_ms: int | None = None) -> Iterator[Engine]:
    """An engine on the file (the default lock wait unless one is given), disposed afterwards."""
    url = f"sqlite:///{path}"
    engine = (
        create_db_engine(url)
        if busy_timeout_ms is None
        else create_db_engine(url, busy_timeout_ms=busy_timeout_ms)
    )
    try:
        yield engine
    finally:
        engine.dispose()


class Locker:
    """Another process's writer: BEGIN IMMEDIATE on its own connection, held until released."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.locked = threading.Event()
        self.release = threading.Event()
        self.released_at = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        try:
            connection.execute("BEGIN IMMEDIATE")  # takes the write lock at once
            self.locked.set()
            self.release.wait(30)
            connection.execute("COMMIT")
            self.released_at = time.monotonic()
        finally:
            connection.close()

    def __enter__(self) -> Locker:
        self.thread.start()
        assert self.locked.wait(5), "the locker never got the write lock"
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(10)


def release_after(locker: Locker, seconds: float) -> threading.Timer:
    """Release the lock `seconds` from now."""
    timer = threading.Timer(seconds, locker.release.set)
    timer.start()
    return timer


def test_a_write_waits_for_another_writers_lock_and_then_succeeds(db_file: Path) -> None:
    with engine_on(db_file) as engine, Locker(db_file) as locker:
        store = SqlThreadStore(session_factory(engine))
        started = time.monotonic()
        release_after(locker, HOLD_S)
        record = store.open_thread(ThreadRef(TEAM, "C1", "1.000100"), "U1", "imagine", "a fox")
        finished = time.monotonic()
    assert record.id > 0
    assert finished - started >= HOLD_S * 0.9  # it waited for the lock ...
    assert finished >= locker.released_at  # ... and wrote only after the other writer committed
    figures("busy.one_write", held_s=HOLD_S, waited_s=round(finished - started, 2))
    assert store.find_thread_by_ref(ThreadRef(TEAM, "C1", "1.000100")) == record


def test_concurrent_writers_all_land(db_file: Path) -> None:
    writers, each = 6, 10
    with engine_on(db_file) as engine, Locker(db_file) as locker:
        store = SqlThreadStore(session_factory(engine))
        ledger = SqlEventLedger(session_factory(engine))
        release_after(locker, 0.3)  # everyone starts against a held lock

        def write(worker: int) -> int:
            for n in range(each):
                store.open_thread(ThreadRef(TEAM, f"C{worker}", f"{n}.0001"), "U1", "imagine", "idea")
                assert ledger.claim(TEAM, f"event-{worker}-{n}", "event")
            return each

        with ThreadPoolExecutor(writers) as pool:
            written = sum(pool.map(write, range(writers)))
        assert written == writers * each
        figures("busy.writers", writers=writers, each=each, writes=2 * written)  # a thread and a claim each
        for worker in range(writers):
            for n in range(each):
                assert store.find_thread_by_ref(ThreadRef(TEAM, f"C{worker}", f"{n}.0001")) is not None


def test_a_lock_held_past_the_wait_is_a_clear_storage_error_not_a_hang(db_file: Path) -> None:
    with engine_on(db_file, busy_timeout_ms=300) as engine:
        store = SqlThreadStore(session_factory(engine))
        with Locker(db_file):
            started = time.monotonic()
            with pytest.raises(DatabaseBusyError) as caught:
                store.open_thread(ThreadRef(TEAM, "C1", "2.000100"), "U1", "imagine", "a fox")
            waited = time.monotonic() - started
        assert 0.25 <= waited < 3.0
        figures("busy.past_budget", budget_s=0.3, waited_s=round(waited, 2))
        message = str(caught.value)
        assert isinstance(caught.value, StorageError)
        assert "busy" in message and "database is locked" in message and "try again" in message
        assert "\n" not in message
        # once the lock is gone the same engine writes again
        assert store.open_thread(ThreadRef(TEAM, "C1", "2.000100"), "U1", "imagine", "a fox").id > 0


def _locked() -> sa_exc.OperationalError:
    return sa_exc.OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))


def test_retry_busy_runs_the_transaction_again_with_a_growing_pause() -> None:
    calls: list[int] = []
    pauses: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _locked()
        return "written"

    assert retry_busy(flaky, attempts=3, backoff_s=0.1, sleep=pauses.append) == "written"
    assert len(calls) == 3 and pauses == [0.1, 0.2]

    def always_locked() -> None:
        calls.append(1)
        raise _locked()

    calls.clear()
    with pytest.raises(sa_exc.OperationalError):
        retry_busy(always_locked, attempts=3, sleep=pauses.append)
    assert len(calls) == 3  # the last busy failure is raised as it came

    def broken() -> None:
        calls.append(1)
        raise sa_exc.OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: threads"))

    calls.clear()
    with pytest.raises(sa_exc.OperationalError):
        retry_busy(broken, sleep=pauses.append)
    assert len(calls) == 1  # not busy: no retry


class _PgError(Exception):
    sqlstate = "40P01"


def test_busy_errors_are_recognised_on_both_backends() -> None:
    assert isinstance(describe(_locked(), "sqlite:///x.db"), DatabaseBusyError)
    timeout = sa_exc.OperationalError("UPDATE", {}, Exception("canceling statement due to lock timeout"))
    assert is_busy(timeout) and isinstance(describe(timeout), DatabaseBusyError)
    deadlock = sa_exc.OperationalError("UPDATE", {}, _PgError("deadlock"))
    assert is_busy(deadlock)
    missing = sa_exc.OperationalError("SELECT", {}, Exception("no such table: threads"))
    assert not is_busy(missing) and not isinstance(describe(missing), DatabaseBusyError)
