"""Fair use: global job slots in FIFO order, the per-user queue cap and the daily quota's in-flight
images (both shared by replicas over one database), and the daily quota on real storage."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.engine.ports import ThreadRef
from bot.scheduling.fair_use import FairUse, FairUseLimits, QueueFullError, QuotaReachedError
from bot.scheduling.job_journal import JobHandle, JobTracker, worker_name
from storage.job_store import SqlJobJournal
from storage.ledger import SqlUsageCounters
from storage.models import Job
from tests.storage.storage_fixtures import db_url, engine, postgres_admin_url, sessions  # noqa: F401

DAY = date(2026, 11, 25)
REF = ThreadRef("T1", "C1", "1700000000.000100")


def test_jobs_beyond_the_slots_wait_in_order_and_learn_their_position() -> None:
    gate = FairUse(FairUseLimits(max_concurrent_jobs=1, per_user_queue=2))
    release = threading.Event()
    started: list[str] = []
    positions: dict[str, int] = {}
    entered = threading.Event()

    def job(user: str) -> None:
        def queued(position: int) -> None:
            positions[user] = position

        with gate.slot("T1", user, 1, queued):
            started.append(user)
            entered.set()
            release.wait(5)

    first = threading.Thread(target=job, args=("U1",))
    first.start()
    assert entered.wait(5)
    waiting = [threading.Thread(target=job, args=(user,)) for user in ("U2", "U3")]
    for thread in waiting:
        thread.start()
        while gate.waiting < waiting.index(thread) + 1:
            threading.Event().wait(0.01)
    assert gate.running == 1 and gate.waiting == 2 and positions == {"U2": 1, "U3": 2}
    release.set()
    for thread in (first, *waiting):
        thread.join(5)
    assert started == ["U1", "U2", "U3"] and gate.running == 0 and gate.waiting == 0


def test_a_user_over_the_queue_cap_is_refused_and_others_are_not() -> None:
    gate = FairUse(FairUseLimits(max_concurrent_jobs=4, per_user_queue=1))
    with gate.slot("T1", "U1", 1):
        with pytest.raises(QueueFullError, match="1 image job waiting or running"), gate.slot("T1", "U1", 1):
            pass
        with gate.slot("T1", "U2", 1):  # another user is not affected
            assert gate.running == 2
    with gate.slot("T1", "U1", 1):  # the cap frees when a job ends
        assert gate.running == 1


def test_the_daily_quota_counts_generated_images_on_real_storage(sessions: sessionmaker[Session]) -> None:  # noqa: F811
    counters = SqlUsageCounters(sessions)
    gate = FairUse(FairUseLimits(daily_images=3), counters, today=lambda: DAY)
    with gate.slot("T1", "U1", 2):
        with pytest.raises(QuotaReachedError, match="today's 3 images"):
            gate.check_quota("T1", "U1", 2)  # 2 reserved by the running job + 2 > 3
        gate.count("T1", "U1", 2)
    gate.check_quota("T1", "U1", 1)
    with pytest.raises(QuotaReachedError):
        gate.check_quota("T1", "U1", 2)
    gate.check_quota("T2", "U1", 3)  # another team's user of the same id has their own quota
    assert counters.get("T1", "U1", DAY) == 2


def test_unlimited_quota_and_bad_limits() -> None:
    FairUse(FairUseLimits(daily_images=0)).check_quota("T1", "U1", 10_000)
    with pytest.raises(ValueError, match="out of range"):
        FairUse(FairUseLimits(max_concurrent_jobs=0))


@dataclass
class Replica:
    """One serve process over the shared database: its fair use and its job journal."""

    gate: FairUse
    tracker: JobTracker


def replica(
    sessions: sessionmaker[Session],  # noqa: F811
    cap: int = 2,
    stale_after_s: float = 120.0,
    daily_images: int = 0,
) -> Replica:
    """A replica whose fair use counts the user's jobs in the database, as bot.wiring builds it."""
    journal = SqlJobJournal(sessions, worker_name())
    limits = FairUseLimits(max_concurrent_jobs=8, per_user_queue=cap, daily_images=daily_images)
    gate = FairUse(
        limits, SqlUsageCounters(sessions), today=lambda: DAY, jobs=journal, stale_after_s=stale_after_s
    )
    return Replica(gate, JobTracker(journal, stale_after_s / 8, stale_after_s))


@contextmanager
def admitted(replica: Replica, user: str, images: int = 1) -> Iterator[JobHandle]:
    """One of `user`'s jobs journaled, admitted and running in `replica` (as run_turn does it)."""
    with (
        replica.tracker.track(REF, user, None, images) as job,
        replica.gate.slot("T1", user, images, job_id=job.id),
    ):
        replica.tracker.start(job)
        yield job


def states(sessions: sessionmaker[Session]) -> Counter[str]:  # noqa: F811
    """How many jobs are in each state."""
    with sessions() as session:
        return Counter(session.scalars(select(Job.state)))


def test_two_replicas_together_admit_at_most_the_cap_for_a_user(sessions: sessionmaker[Session]) -> None:  # noqa: F811
    a, b = replica(sessions), replica(sessions)
    with ExitStack() as held:
        for _ in range(2):
            held.enter_context(admitted(a, "U1"))
        with pytest.raises(QueueFullError, match="2 image jobs waiting or running"):
            b.gate.check_admission("T1", "U1", 1)  # the early check in /imagine sees replica A's jobs
        with pytest.raises(QueueFullError), admitted(b, "U1"):
            pytest.fail("a third job of U1 was admitted")
        with admitted(b, "U2"):  # another user is not affected
            assert (a.gate.running, b.gate.running) == (2, 1)
        assert states(sessions) == Counter(running=2, refused=1, done=1)
    with admitted(b, "U1"), admitted(b, "U1"):  # A's jobs finished: B admits U1 again, up to the cap
        b.gate.check_admission("T1", "U2", 1)
        with pytest.raises(QueueFullError):
            a.gate.check_admission("T1", "U1", 1)
    assert states(sessions) == Counter(done=5, refused=1)
    for each in (a, b):
        each.tracker.close()


@pytest.mark.parametrize(
    ("cap", "daily_images", "refusal", "limit"),
    [(2, 0, QueueFullError, 2), (8, 4, QuotaReachedError, 4)],
    ids=["cap-2-jobs", "quota-4-images"],
)
def test_racing_admissions_over_two_replicas_let_exactly_the_limit_in(
    sessions: sessionmaker[Session],  # noqa: F811
    cap: int,
    daily_images: int,
    refusal: type[Exception],
    limit: int,
) -> None:
    a, b = (replica(sessions, cap=cap, daily_images=daily_images) for _ in range(2))
    attempts = 8
    start = threading.Barrier(attempts)
    release = threading.Event()
    outcomes: list[str] = []

    def attempt(side: Replica) -> None:
        start.wait(5)
        try:
            with admitted(side, "U1"):
                outcomes.append("admitted")
                release.wait(10)  # hold the job until every attempt has its answer
        except refusal:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt, args=((a, b)[n % 2],)) for n in range(attempts)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(outcomes) < attempts and time.monotonic() < deadline:
        time.sleep(0.01)
    admitted_now = a.gate.running + b.gate.running
    release.set()
    for thread in threads:
        thread.join(10)
    # insert, then count the user's live jobs (or their images) before mine: the first in the database
    # get in, up to the limit, none more
    assert Counter(outcomes) == Counter(admitted=limit, refused=attempts - limit) and admitted_now == limit
    assert states(sessions) == Counter(done=limit, refused=attempts - limit)
    for each in (a, b):
        each.tracker.close()


def test_a_dead_replicas_jobs_stop_counting_once_their_heartbeat_is_stale(
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    dead = SqlJobJournal(sessions, "host:1:dead")  # a process killed with one job waiting, one running
    dead.enqueue(REF, "U1", None)
    assert dead.start(dead.enqueue(REF, "U1", None))
    alive = replica(sessions, cap=2, stale_after_s=0.5)
    with pytest.raises(QueueFullError):
        alive.gate.check_admission("T1", "U1", 1)
    with pytest.raises(QueueFullError), admitted(alive, "U1"):
        pytest.fail("admitted while the dead replica's jobs were still fresh")
    time.sleep(0.6)  # longer than the stale age: nobody beats the dead replica's jobs
    with admitted(alive, "U1"), admitted(alive, "U1"):
        time.sleep(0.6)  # this replica's heartbeat keeps its own jobs counting past the stale age
        with pytest.raises(QueueFullError):
            alive.gate.check_admission("T1", "U1", 1)
    assert [job.user_id for job in alive.tracker.interrupted()] == ["U1", "U1"]  # reported, queued or not
    alive.tracker.close()


def reserved(sessions: sessionmaker[Session], job_id: int) -> int:  # noqa: F811
    """The images a job's row reserves."""
    with sessions() as session:
        return session.get_one(Job, job_id).images


def test_two_replicas_share_the_daily_quotas_in_flight_images(sessions: sessionmaker[Session]) -> None:  # noqa: F811
    a, b = (replica(sessions, cap=3, daily_images=4) for _ in range(2))
    with admitted(a, "U1", images=3) as drawing:  # 3 images reserved in replica A, none counted yet
        with pytest.raises(QuotaReachedError, match="today's 4 images"):
            b.gate.check_admission("T1", "U1", 2)  # the early check sees A's reservation: 3 + 2 > 4
        with pytest.raises(QuotaReachedError), admitted(b, "U1", images=2):
            pytest.fail("2 more images admitted over A's 3 in flight")
        b.gate.check_admission("T2", "U1", 4)  # the same user id in another team has their own quota
        with admitted(b, "U1", images=1) as one:  # 3 + 1 fits
            with pytest.raises(QuotaReachedError):
                a.gate.check_admission("T1", "U1", 1)  # A sees B's reservation too: 3 + 1 + 1 > 4
            b.gate.count("T1", "U1", 1, one.id)
        a.gate.count("T1", "U1", 3, drawing.id)  # A's images are drawn and counted; A still uploads
        assert reserved(sessions, drawing.id) == 0  # counted once: in the usage counters, not its row
        for gate in (a.gate, b.gate):
            with pytest.raises(QuotaReachedError):
                gate.check_admission("T1", "U1", 1)
    for gate in (a.gate, b.gate):  # every job closed: the total of 4 drawn is still enforced
        with pytest.raises(QuotaReachedError):
            gate.check_admission("T1", "U1", 1)
    with pytest.raises(QuotaReachedError), admitted(a, "U1", images=1):
        pytest.fail("a fifth image admitted")
    assert SqlUsageCounters(sessions).get("T1", "U1", DAY) == 4
    assert states(sessions) == Counter(done=2, refused=2)
    for each in (a, b):
        each.tracker.close()


def test_a_job_counted_while_it_still_runs_is_not_counted_twice(sessions: sessionmaker[Session]) -> None:  # noqa: F811
    a, b = (replica(sessions, cap=3, daily_images=4) for _ in range(2))
    with admitted(a, "U1", images=3) as drawing:
        a.gate.count("T1", "U1", 3, drawing.id)  # drawn and counted; the job is still posting them
        with admitted(b, "U1", images=1):  # 3 used + 0 reserved + 1 = 4: admitted (3 + 3 + 1 would not be)
            pass
    for each in (a, b):
        each.tracker.close()


def test_a_dead_replicas_reservation_lapses_once_its_heartbeat_is_stale(
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    dead = SqlJobJournal(sessions, "host:1:dead")  # a process killed while a 3-image job waited
    dead.enqueue(REF, "U1", None, 3)
    alive = replica(sessions, cap=3, stale_after_s=0.5, daily_images=4)
    with pytest.raises(QuotaReachedError):
        alive.gate.check_admission("T1", "U1", 2)
    with pytest.raises(QuotaReachedError), admitted(alive, "U1", images=2):
        pytest.fail("admitted while the dead replica's reservation was still fresh")
    time.sleep(0.6)  # longer than the stale age: nobody beats the dead replica's job
    with admitted(alive, "U1", images=2):
        time.sleep(0.6)  # this replica's heartbeat keeps its own reservation past the stale age
        with pytest.raises(QuotaReachedError):
            alive.gate.check_admission("T1", "U1", 3)
        alive.gate.check_admission("T1", "U1", 2)
    [interrupted] = alive.tracker.interrupted()
    assert interrupted.worker == "host:1:dead"
    alive.tracker.close()


def test_turns_waiting_in_a_thread_count_toward_neither_the_cap_nor_the_quota(
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    a, b = (replica(sessions, cap=1, daily_images=1) for _ in range(2))
    with ExitStack() as line:  # five of U1's turns wait behind another turn of their thread in replica A
        waiting = [line.enter_context(a.tracker.waiting(REF, "U1", None)) for _ in range(5)]
        for gate in (a.gate, b.gate):
            gate.check_admission("T1", "U1", 1)  # not admitted yet: no job, no image reserved
        with admitted(b, "U1", images=1), pytest.raises(QueueFullError):  # cap 1, quota 1: still room
            a.gate.check_admission("T1", "U1", 1)
        # the first one's go: a queued row replaces its waiting row and counts from then on
        with (
            a.tracker.track(REF, "U1", None, 1, replaces=waiting[0]) as job,
            a.gate.slot("T1", "U1", 1, job_id=job.id),
        ):
            a.tracker.start(job)
            assert states(sessions) == Counter(waiting=4, running=1, done=1)
            with pytest.raises(QueueFullError):
                b.gate.check_admission("T1", "U1", 1)
            a.gate.count("T1", "U1", 1, job.id)
        second = a.tracker.track(REF, "U1", None, 1, replaces=waiting[1])
        with pytest.raises(QuotaReachedError), second as job, a.gate.slot("T1", "U1", 1, job_id=job.id):
            pytest.fail("admitted past the quota")  # the quota's one image is drawn
    assert states(sessions) == Counter(done=2, refused=1)  # the other waiting rows left with their turns
    for each in (a, b):
        each.tracker.close()
