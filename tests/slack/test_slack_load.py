"""Load through the real app: bursts of slash commands from many users and of replies in one thread,
and two replicas over one database sharing each user's queue cap."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import select

from bot.drawing.offline_images import OfflinePreviewImageModel
from bot.engine.ports import GeneratedImage, ImageRequest, ThreadRef
from bot.scheduling.fair_use import FairUseLimits
from bot.slack.ids import COMMAND_IMAGINE
from retrieval.search import Retriever
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_models import ALICE, BOB, CAROL, GENERAL
from storage.db import create_db_engine, session_factory
from storage.models import Job
from tests.reliability_record import ReliabilityRecord
from tests.slack.slack_rig import TEAM, Rig, hits_of, results, serve, wait_for

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
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path, reliability: ReliabilityRecord
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
        seconds = sorted(s for _, s in acks)
        reliability("load.commands", len(jobs))
        reliability("load.users", len(USERS))
        reliability("load.ack_p50_s", round(seconds[len(seconds) // 2], 3))
        reliability("load.ack_max_s", round(seconds[-1], 3))
        reliability("load.images", sum(images.values()))
        reliability("load.notes", sum(refusals_of(fake, u) for u in USERS))
        reliability("load.max_images_per_user", max(images.values()))


def test_twenty_concurrent_replies_in_one_thread_are_each_applied_once_in_turn(
    fake: FakeSlackApi, rig: Rig, reliability: ReliabilityRecord
) -> None:
    from tests.slack.slack_rig import imagine

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
    reliability("replies.sent", len(things))
    reliability("replies.turns", len(turns()))


class GatedImages:
    """The offline image model held at a gate until the test opens it: a busy image service."""

    def __init__(self) -> None:
        self._offline = OfflinePreviewImageModel()
        self.gate = threading.Event()

    @property
    def model_id(self) -> str:
        """The offline model's id."""
        return self._offline.model_id

    @property
    def is_offline(self) -> bool:
        """True: the pictures are offline previews."""
        return self._offline.is_offline

    def generate(self, request: ImageRequest) -> list[GeneratedImage]:
        """Wait for the gate (at most 30 s), then draw offline."""
        self.gate.wait(30)
        return self._offline.generate(request)


def start(fake: FakeSlackApi, rig: Rig, idea: str, user: str) -> str:
    """Run /imagine through `rig` and return the ts of the thread root it posts."""
    assert rig.driver.slash_command(COMMAND_IMAGINE, idea, user, GENERAL).status == 200
    roots = wait_for(lambda: [m for m in fake.messages(GENERAL) if idea in json.dumps(m.get("blocks"))])
    return str(roots[0]["ts"])


def cap_notes(fake: FakeSlackApi, user: str) -> list[dict[str, object]]:
    """The user's private 'you already have N image jobs waiting or running' notes."""
    return [note for note in fake.ephemerals(user) if "waiting or running" in json.dumps(note)]


def check_two_replicas_share_each_users_cap(
    fake: FakeSlackApi, retriever: Retriever, folder: Path, db_url: str
) -> None:
    """Two rigs over one database act as two replicas: one user's jobs in both count against one cap."""
    images = GatedImages()
    limits = FairUseLimits(max_concurrent_jobs=1, per_user_queue=1)
    with (
        serve(fake, retriever, folder / "a", limits, images=images, db_url=db_url) as a,
        serve(fake, retriever, folder / "b", limits, images=images, db_url=db_url) as b,
    ):
        try:
            fox = start(fake, a, "a red fox", ALICE)  # running in replica A, held at the gate
            wait_for(lambda: a.services.fair_use.running == 1 and hits_of(fake, fox))
            assert b.driver.slash_command(COMMAND_IMAGINE, "a blue whale", ALICE, GENERAL).status == 200
            wait_for(lambda: len(cap_notes(fake, ALICE)) == 1)  # B's early check counted A's job
            frog = start(fake, b, "a green frog", BOB)  # another user is admitted by B
            wait_for(lambda: b.services.fair_use.running == 1)
            kite = start(fake, b, "a yellow kite", CAROL)  # B's one slot is busy: Carol waits in line
            queued = wait_for(lambda: [m for m in fake.messages(GENERAL, kite) if "queue" in m["text"]])
            assert "next in the queue" in json.dumps(queued[0]["blocks"])
            b.driver.user_posts(GENERAL, "make it snowy", ALICE, thread_ts=fox)  # no early check for replies
            [_, in_thread] = wait_for(lambda: len(cap_notes(fake, ALICE)) == 2 and cap_notes(fake, ALICE))
            assert in_thread.get("thread_ts") == fox and "1 image job" in json.dumps(in_thread)
            assert a.services.fair_use.running + b.services.fair_use.running == 2
        finally:
            images.gate.set()
        wait_for(lambda: all(results(fake, root) for root in (fox, frog, kite)), 30)
        whale = start(fake, b, "a blue whale", ALICE)  # A's job is done: B admits Alice again
        wait_for(lambda: results(fake, whale))
        assert not [m for m in fake.messages(GENERAL, kite) if "queue" in m["text"]]  # cleaned up
        assert not [m for m in fake.messages(GENERAL) if "blue whale" in json.dumps(m) and m["ts"] != whale]
    engine = create_db_engine(db_url)
    with session_factory(engine)() as session:
        states = Counter(session.scalars(select(Job.state)))
    engine.dispose()
    assert states == Counter(done=4, refused=1)  # fox, frog, kite, whale; the reply refused in B


def test_two_replicas_over_one_database_share_each_users_queue_cap(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path
) -> None:
    check_two_replicas_share_each_users_cap(fake, retriever, tmp_path, f"sqlite:///{tmp_path / 'shared.db'}")
