"""Load through the real app: bursts of slash commands from many users and of replies in one thread."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bot.fair_use import FairUseLimits
from bot.ports import ThreadRef
from bot.sandbox.slack_api import FakeSlackApi
from bot.sandbox.slack_models import GENERAL
from bot.slack_ids import COMMAND_IMAGINE
from retrieval.search import Retriever
from tests.slack_rig import TEAM, Rig, results, serve, wait_for

USERS = [f"U0LOAD{n:02d}" for n in range(10)]
COMMANDS_PER_USER = 5
LIMITS = FairUseLimits(max_concurrent_jobs=2, per_user_queue=3, daily_images=4)


def add_users(fake: FakeSlackApi) -> None:
    """Ten more members of #general."""
    for user in USERS:
        fake.add_user(user, user.lower())
        fake.set_member(GENERAL, user)


def images_of(fake: FakeSlackApi, user: str) -> int:
    """Threads the user started that ended with an image."""
    roots = [m for m in fake.messages(GENERAL) if f"<@{user}>" in json.dumps(m.get("blocks"))]
    return sum(1 for root in roots if results(fake, str(root["ts"])))


def refusals_of(fake: FakeSlackApi, user: str) -> int:
    """Private notes the user got: a refused command (via response_url) or a refused job (in its thread)."""
    notes = fake.ephemerals(user)  # the sandbox keeps response_url ephemerals here too
    return sum(
        1 for note in notes if "waiting or running" in json.dumps(note) or "today's" in json.dumps(note)
    )


def test_fifty_concurrent_commands_from_ten_users_are_acked_and_accounted_for(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path
) -> None:
    add_users(fake)
    jobs = [(user, f"idea {user[-2:]}-{n} a lighthouse") for user in USERS for n in range(COMMANDS_PER_USER)]
    with serve(fake, retriever, tmp_path, LIMITS) as rig:

        def send(job: tuple[str, str]) -> tuple[int, float]:
            started = time.monotonic()
            status, _ = rig.driver.slash_command(COMMAND_IMAGINE, job[1], job[0], GENERAL)
            return status, time.monotonic() - started

        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            acks = list(pool.map(send, jobs))
        assert all(status == 200 for status, _ in acks)
        assert max(seconds for _, seconds in acks) < 3.0, sorted(seconds for _, seconds in acks)[-5:]
        wait_for(lambda: rig.services.fair_use.running == 0 and rig.services.fair_use.waiting == 0, 120)

        def accounted() -> bool:
            return all(images_of(fake, u) + refusals_of(fake, u) == COMMANDS_PER_USER for u in USERS)

        wait_for(accounted, 60)  # every command ended in an image or a note saying why, none twice
        images = {user: images_of(fake, user) for user in USERS}
        assert all(1 <= count <= LIMITS.daily_images for count in images.values()), images
        assert not [m for m in fake.messages(GENERAL) if "status" in json.dumps(m.get("blocks"))]


def test_twenty_concurrent_replies_in_one_thread_are_each_applied_once_in_turn(
    fake: FakeSlackApi, rig: Rig
) -> None:
    from tests.slack_rig import imagine

    root_ts = imagine(fake, rig, "a picnic in a park")
    things = [f"item{n:02d}" for n in range(20)]
    messages = [fake.post_as_user(GENERAL, f"add a {thing}", "U0ALICE", root_ts) for thing in things]
    events = [rig.driver.message_event(message, GENERAL) for message in messages]
    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        statuses = list(pool.map(lambda event: rig.driver.event(event).status, events))
    assert statuses == [200] * len(events)
    record = rig.services.threads.find_thread_by_ref(ThreadRef(TEAM, GENERAL, root_ts))
    assert record is not None

    def turns() -> list[str]:
        return [turn.text for turn in rig.services.threads.turns(TEAM, record.id)]

    wait_for(lambda: len(turns()) == 1 + len(things), 120)
    stored = turns()[1:]
    assert sorted(stored) == sorted(f"add a {thing}" for thing in things)  # each once, none lost
    last = rig.services.threads.turns(TEAM, record.id)[-1]
    assert all(thing in (last.prompt or "") for thing in things), last.prompt  # each built on the one before
    wait_for(lambda: len(results(fake, root_ts)) == 1 + len(things), 60)
