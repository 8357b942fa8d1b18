"""The job journal on SQLite and Postgres, the tracker's heartbeat and claims, and per-thread ordering."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.fair_use import QueueFullError
from bot.jobs import JobTracker, worker_name
from bot.ports import ThreadRef
from bot.thread_order import ThreadSequencer
from storage.job_store import SqlJobJournal
from storage.models import Job
from tests.storage_fixtures import db_url, engine, postgres_admin_url, sessions  # noqa: F401

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
