"""The job journal on SQLite and Postgres, the tracker's heartbeat and claims, and per-thread ordering."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.engine.ports import ThreadRef
from bot.scheduling.fair_use import QueueFullError
from bot.scheduling.job_journal import JobTracker, worker_name
from bot.scheduling.thread_order import ThreadSequencer
from storage.job_store import SqlJobJournal
from storage.models import Job
from tests.storage.storage_fixtures import db_url, engine, postgres_admin_url, sessions  # noqa: F401

REF = ThreadRef("T1", "C1", "1700000000.000100")


def test_a_job_runs_then_finishes_and_is_never_reported(sessions: sessionmaker[Session]) -> None:  # noqa: F811
    tracker = JobTracker(SqlJobJournal(sessions, worker_name()), heartbeat_s=0.05, stale_after_s=0.2)
    with tracker.track(REF, "U1", '{"op":"refine","text":"no text"}') as handle:
        assert handle.id > 0
    later = datetime.now(UTC) + timedelta(hours=1)
    assert tracker.interrupted(later) == []  # done jobs are not interrupted ones
    tracker.close()


def test_a_job_whose_process_died_is_claimed_once(sessions: sessionmaker[Session]) -> None:  # noqa: F811
    dead = SqlJobJournal(sessions, "host:1:dead")
    job_id = dead.enqueue(REF, "U1", '{"op":"start","text":"a red fox"}')  # never finished: the process died
    first = JobTracker(SqlJobJournal(sessions, worker_name()), heartbeat_s=1, stale_after_s=5)
    second = JobTracker(SqlJobJournal(sessions, worker_name()), heartbeat_s=1, stale_after_s=5)
    assert first.interrupted() == []  # its heartbeat is still fresh
    later = datetime.now(UTC) + timedelta(seconds=10)
    [job] = first.interrupted(later)
    assert job.id == job_id and job.ref == REF and job.user_id == "U1" and "a red fox" in (job.retry or "")
    assert second.interrupted(later) == []  # another replica does not report it again


def test_finished_jobs_are_purged_after_the_retention_and_open_ones_never(
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    journal = SqlJobJournal(sessions, worker_name())
    tracker = JobTracker(journal, heartbeat_s=1, stale_after_s=5)
    with tracker.track(REF, "U1", None):
        pass  # done
    open_id = journal.enqueue(REF, "U2", None)
    dead_id = SqlJobJournal(sessions, "host:1:dead").enqueue(REF, "U3", None)
    assert journal.claim_interrupted(dead_id)  # as recovery does once its heartbeat is stale
    assert tracker.purge_finished() == 0  # nothing is older than the retention yet
    later = datetime.now(UTC) + timedelta(seconds=10)
    assert journal.purge(later) == 2  # the done job and the interrupted one
    with sessions() as session:
        assert [job.id for job in session.query(Job).order_by(Job.id)] == [open_id]  # open: never purged
    tracker.close()


def test_the_heartbeat_keeps_a_long_job_alive(sessions: sessionmaker[Session]) -> None:  # noqa: F811
    tracker = JobTracker(SqlJobJournal(sessions, worker_name()), heartbeat_s=0.05, stale_after_s=0.5)
    watcher = JobTracker(SqlJobJournal(sessions, worker_name()), heartbeat_s=0.05, stale_after_s=0.5)
    with tracker.track(REF, "U1", None):
        time.sleep(0.8)  # longer than the stale age: only the heartbeat keeps it running
        assert watcher.interrupted() == []
    tracker.close()


def test_a_failed_turn_is_closed_as_failed(sessions: sessionmaker[Session]) -> None:  # noqa: F811
    tracker = JobTracker(SqlJobJournal(sessions, worker_name()), heartbeat_s=1, stale_after_s=2)
    with pytest.raises(RuntimeError), tracker.track(REF, "U1", None):
        raise RuntimeError("boom")
    assert tracker.interrupted(datetime.now(UTC) + timedelta(hours=1)) == []
    with pytest.raises(ValueError, match="stale age"):
        JobTracker(SqlJobJournal(sessions, "w"), heartbeat_s=5, stale_after_s=5)


def test_a_job_is_queued_until_it_starts_and_a_refusal_closes_it_as_refused(
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    tracker = JobTracker(SqlJobJournal(sessions, worker_name()), heartbeat_s=1, stale_after_s=5)

    def state(job_id: int) -> str:
        with sessions() as session:
            return session.get_one(Job, job_id).state

    with tracker.track(REF, "U1", None) as job:
        assert state(job.id) == "queued"  # admitted, waiting for a fair-use slot
        tracker.start(job)
        assert state(job.id) == "running"
    assert state(job.id) == "done"
    with pytest.raises(QueueFullError), tracker.track(REF, "U1", None) as refused:
        raise QueueFullError(1)
    assert state(refused.id) == "refused"
    assert tracker.interrupted(datetime.now(UTC) + timedelta(hours=1)) == []
    tracker.close()


def test_a_queued_job_whose_process_died_is_claimed_like_a_running_one(
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    dead = SqlJobJournal(sessions, "host:1:dead")
    queued = dead.enqueue(REF, "U1", '{"op":"refine","text":"at night"}')  # never got a slot
    running = dead.enqueue(REF, "U2", None)
    assert dead.start(running)
    tracker = JobTracker(SqlJobJournal(sessions, worker_name()), heartbeat_s=1, stale_after_s=5)
    claimed = tracker.interrupted(datetime.now(UTC) + timedelta(seconds=10))
    assert [(job.id, job.user_id, job.retry) for job in claimed] == [
        (queued, "U1", '{"op":"refine","text":"at night"}'),
        (running, "U2", None),
    ]
    assert not dead.start(queued)  # too late to start: it was reported as interrupted


def test_the_journal_counts_a_users_open_fresh_jobs_and_the_images_they_reserve(
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    journal = SqlJobJournal(sessions, worker_name())
    tracker = JobTracker(journal, heartbeat_s=1, stale_after_s=5)
    fresh = datetime.now(UTC) - timedelta(seconds=5)
    with tracker.track(REF, "U1", None, 1):  # closed as done: neither counted nor reserving
        pass
    first, second = journal.enqueue(REF, "U1", None, 3), journal.enqueue(REF, "U1", None, 2)
    journal.enqueue(REF, "U2", None, 4)  # another user
    journal.enqueue(ThreadRef("T2", "C1", "1.2"), "U1", None, 4)  # the same user id in another team
    assert journal.live("T1", "U1", fresh) == (2, 5)
    assert journal.live("T1", "U1", fresh, up_to=second) == (2, 3)  # itself counted, its images not
    assert journal.live("T1", "U1", fresh, up_to=first) == (1, 0)
    assert journal.live("T1", "U1", datetime.now(UTC) + timedelta(seconds=1)) == (0, 0)  # none fresh
    journal.drawn(first)  # its images are counted in the usage counters: it still runs, reserving none
    assert journal.live("T1", "U1", fresh) == (2, 2)
    journal.finish(second)
    assert journal.live("T1", "U1", fresh) == (1, 0)
    with pytest.raises(ValueError, match="cannot draw -1 images"):
        journal.enqueue(REF, "U1", None, -1)
    tracker.close()


def test_turns_of_one_thread_run_one_at_a_time_in_arrival_order() -> None:
    sequencer = ThreadSequencer()
    order: list[int] = []
    inside = 0
    most = 0
    lock = threading.Lock()

    def turn(number: int) -> None:
        nonlocal inside, most
        with sequencer.turn("thread-1"):
            with lock:
                inside += 1
                most = max(most, inside)
                order.append(number)
            time.sleep(0.01)
            with lock:
                inside -= 1

    with sequencer.turn("thread-1"):  # hold the thread so the others queue up in a known order
        workers = []
        for number in range(10):
            worker = threading.Thread(target=turn, args=(number,))
            worker.start()
            workers.append(worker)
            while sequencer.waiting("thread-1") < number + 2:
                time.sleep(0.001)
        with sequencer.turn("thread-2"):  # another thread is not blocked by thread-1's queue
            assert sequencer.waiting("thread-2") == 1
    for worker in workers:
        worker.join(5)
    assert order == list(range(10)) and most == 1 and sequencer.waiting("thread-1") == 0


def rows(sessions: sessionmaker[Session]) -> list[tuple[int, str, int]]:  # noqa: F811
    """(id, state, images) of every job row, by id."""
    with sessions() as session:
        return [(job.id, job.state, job.images) for job in session.query(Job).order_by(Job.id)]


def test_a_turn_waiting_in_its_thread_is_beaten_never_counted_then_replaced_by_a_new_queued_row(
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    journal = SqlJobJournal(sessions, worker_name())
    tracker = JobTracker(journal, heartbeat_s=0.05, stale_after_s=0.5)
    watcher = JobTracker(SqlJobJournal(sessions, worker_name()), heartbeat_s=0.05, stale_after_s=0.5)
    fresh = datetime.now(UTC) - timedelta(seconds=5)
    retry = '{"op":"refine","text":"at night"}'
    with tracker.waiting(REF, "U1", retry) as waiting:
        assert rows(sessions) == [(waiting.id, "waiting", 0)]
        assert journal.live("T1", "U1", fresh) == (0, 0)  # not admitted yet: neither a job nor images
        time.sleep(0.8)  # longer than the stale age: only the heartbeat keeps it from being reported
        assert watcher.interrupted() == []
        other = journal.enqueue(REF, "U1", None, 1)  # the user's job elsewhere, admitted while it waits
        with tracker.track(REF, "U1", retry, 2, replaces=waiting) as job:
            assert waiting.replaced and job.id > other  # a fresh id: newer than every job admitted meanwhile
            assert rows(sessions) == [(other, "queued", 1), (job.id, "queued", 2)]  # one transaction
            assert journal.live("T1", "U1", fresh, up_to=job.id) == (2, 1)
            tracker.start(job)
    assert rows(sessions) == [(other, "queued", 1), (job.id, "done", 2)]
    with tracker.waiting(REF, "U1", retry):  # the turn ended before its go (a refused or failed wait)
        pass
    assert rows(sessions) == [(other, "queued", 1), (job.id, "done", 2)]  # its row is gone, not reported
    tracker.close()
    watcher.close()


def test_a_waiting_turn_whose_process_died_is_claimed_once_and_purged_after_the_retention(
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    dead = SqlJobJournal(sessions, "host:1:dead")
    running = dead.enqueue(REF, "U1", '{"op":"start","text":"a red fox"}')
    assert dead.start(running)
    waiting = dead.wait(REF, "U2", '{"op":"refine","text":"add a moon"}')  # behind it when the kill came
    first = JobTracker(SqlJobJournal(sessions, worker_name()), heartbeat_s=1, stale_after_s=5)
    second = JobTracker(SqlJobJournal(sessions, worker_name()), heartbeat_s=1, stale_after_s=5)
    assert first.interrupted() == []  # their heartbeats are still fresh
    later = datetime.now(UTC) + timedelta(seconds=10)
    claimed = first.interrupted(later)
    assert [(job.id, job.user_id, job.retry) for job in claimed] == [
        (running, "U1", '{"op":"start","text":"a red fox"}'),
        (waiting, "U2", '{"op":"refine","text":"add a moon"}'),  # reported in arrival order, with Retry
    ]
    assert second.interrupted(later) == []  # another replica does not report them again
    journal = SqlJobJournal(sessions, worker_name())
    still_waiting = journal.wait(REF, "U3", None)
    assert first.purge_finished() == 0  # nothing is older than the retention yet
    assert journal.purge(later) == 2  # both interrupted rows, the waiting turn's included
    assert rows(sessions) == [(still_waiting, "waiting", 0)]  # a waiting row is never purged


def test_a_waiting_row_claimed_meanwhile_stays_interrupted_and_its_turn_still_runs(
    sessions: sessionmaker[Session],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal = SqlJobJournal(sessions, worker_name())
    waiting = journal.wait(REF, "U1", None)
    assert journal.claim_interrupted(waiting)  # the process stalled past the stale age; a replica reported it
    queued = journal.enqueue(REF, "U1", None, 1, replaces=waiting)
    assert rows(sessions) == [(waiting, "interrupted", 0), (queued, "queued", 1)]
    assert f"waiting job {waiting} was already reported as interrupted" in caplog.text
    journal.stop_waiting(queued)  # only a waiting row is ever deleted that way
    assert rows(sessions) == [(waiting, "interrupted", 0), (queued, "queued", 1)]


def test_only_a_turn_that_waits_enters_on_wait_outside_the_lock_and_a_failing_one_leaves_the_line() -> None:
    sequencer = ThreadSequencer()
    entered: list[str] = []

    def lock_is_free() -> bool:
        """True when another thread can take the sequencer's lock (its own thread could re-enter it)."""
        probe = threading.Thread(target=sequencer.waiting, args=("thread-1",))
        probe.start()
        probe.join(1)
        return not probe.is_alive()

    @contextmanager
    def on_wait(name: str) -> Iterator[str]:
        assert lock_is_free() and sequencer.waiting("thread-1") >= 2  # in line, no lock held while journaling
        entered.append(name)
        yield f"row of {name}"
        entered.append(f"{name} left")

    def broken() -> AbstractContextManager[str]:
        raise RuntimeError("the database is down")

    got: dict[str, str | None] = {}

    def turn(name: str) -> None:
        with sequencer.turn("thread-1", lambda: on_wait(name)) as waited:
            got[name] = waited

    with sequencer.turn("thread-1", lambda: on_wait("first")) as first:
        assert first is None and entered == []  # nobody ahead: no journal row, the common path
        second = threading.Thread(target=turn, args=("second",))
        second.start()
        deadline = time.monotonic() + 5
        while "second" not in entered and time.monotonic() < deadline:
            time.sleep(0.001)
        assert entered == ["second"], "the waiting turn never journaled its wait without the lock"
        with pytest.raises(RuntimeError, match="database is down"), sequencer.turn("thread-1", broken):
            pytest.fail("a turn whose wait could not be journaled ran")
        assert sequencer.waiting("thread-1") == 2  # the failed one left the line; the second still waits
    second.join(5)
    assert got == {"second": "row of second"} and entered == ["second", "second left"]
    assert sequencer.waiting("thread-1") == 0
