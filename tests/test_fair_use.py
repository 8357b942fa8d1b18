"""Fair use: global job slots in FIFO order, the per-user queue cap, and the daily quota on real storage."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import pytest

from bot.fair_use import FairUse, FairUseLimits, QueueFullError, QuotaReachedError
from storage.db import create_db_engine, migrate, session_factory
from storage.ledger import SqlUsageCounters

DAY = date(2026, 11, 25)


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


def test_the_daily_quota_counts_generated_images_on_real_storage(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'quota.db'}")
    migrate(engine)
    counters = SqlUsageCounters(session_factory(engine))
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
    engine.dispose()


def test_unlimited_quota_and_bad_limits() -> None:
    FairUse(FairUseLimits(daily_images=0)).check_quota("T1", "U1", 10_000)
    with pytest.raises(ValueError, match="out of range"):
        FairUse(FairUseLimits(max_concurrent_jobs=0))
