"""What a turn holds of fair use, through the real app: a reply waiting its turn in a thread is no job yet
(the per-user cap never counts it), and every job reserves the images it will draw (a follow-up: one)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from slack_sdk import WebClient
from sqlalchemy import select

from bot.engine.ports import ThreadRef
from bot.engine.turns import FOLLOW_UP_IMAGES
from bot.scheduling.fair_use import FairUseLimits, utc_today
from bot.slack.handlers.thread_start import retry_value
from bot.slack.ids import (
    ACTION_EDIT_PROMPT,
    ACTION_REROLL,
    ACTION_RETRY,
    ACTION_USE_HIT,
    ACTION_VARY,
    COMMAND_IMAGINE,
    VIEW_EDIT_PROMPT,
)
from bot.slack.reply import message_blocks as blocks
from bot.slack.reply.modal_views import PROMPT_BLOCK, PROMPT_INPUT
from retrieval.search import Retriever
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_models import ALICE, GENERAL
from storage.db import create_db_engine, session_factory
from storage.ledger import SqlUsageCounters
from storage.models import Job
from tests.slack.slack_rig import (
    TEAM,
    Json,
    Rig,
    button_value,
    hits_of,
    imagine,
    results,
    serve,
    settle,
    wait_for,
)
from tests.slack.test_slack_load import GatedImages, cap_notes, start


def journal(folder: Path) -> list[tuple[str, int]]:
    """(state, images reserved) of every job row of the rig over `folder`, in id order."""
    engine = create_db_engine(f"sqlite:///{folder / 'imagine.db'}")
    try:
        with session_factory(engine)() as session:
            return [(state, images) for state, images in session.execute(select(Job.state, Job.images))]
    finally:
        engine.dispose()


def used_today(folder: Path) -> int:
    """Images Alice was charged today."""
    engine = create_db_engine(f"sqlite:///{folder / 'imagine.db'}")
    try:
        return SqlUsageCounters(session_factory(engine)).get(TEAM, ALICE, utc_today())
    finally:
        engine.dispose()


def quota_notes(fake: FakeSlackApi) -> list[Json]:
    """Alice's private "you've used today's images" notes."""
    return [note for note in fake.ephemerals(ALICE) if "today's" in json.dumps(note)]


def test_replies_waiting_their_turn_in_a_thread_do_not_count_toward_the_users_cap(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path
) -> None:
    images = GatedImages()
    limits = FairUseLimits(max_concurrent_jobs=2, per_user_queue=2)
    with serve(fake, retriever, tmp_path, limits, images=images) as rig:
        try:
            picnic = start(fake, rig, "a picnic in a park", ALICE)  # held at the image model
            wait_for(lambda: rig.services.fair_use.running == 1 and hits_of(fake, picnic))
            additions = ("a kite", "a dog", "a red blanket")
            for waiting, thing in enumerate(additions, start=1):  # each in line before the next is sent
                rig.driver.user_posts(GENERAL, f"add {thing}", ALICE, thread_ts=picnic)
                in_line = Counter(running=1, waiting=waiting)
                wait_for(lambda: Counter(s for s, _ in journal(tmp_path)) == in_line)  # noqa: B023
            rig.services.fair_use.check_admission(TEAM, ALICE, 1)  # 1 job of her 2: the 3 in line are none
            kite = start(fake, rig, "a kite over the dunes", ALICE)  # admitted as her second job
            wait_for(lambda: rig.services.fair_use.running == 2)
            assert rig.driver.slash_command(COMMAND_IMAGINE, "a third idea", ALICE, GENERAL).status == 200
            [refused] = wait_for(lambda: cap_notes(fake, ALICE))  # the cap still counts her 2 jobs
            assert "2 image jobs waiting or running" in json.dumps(refused)
        finally:
            images.gate.set()
        wait_for(lambda: len(results(fake, picnic)) == 1 + len(additions) and results(fake, kite), 30)
        settle(fake)
        assert len(cap_notes(fake, ALICE)) == 1  # none of the replies was refused when its turn came
        record = rig.services.threads.find_thread_by_ref(ThreadRef(TEAM, GENERAL, picnic))
        assert record is not None
        texts = [turn.text for turn in rig.services.threads.turns(TEAM, record.id)]
        assert texts[1:] == [f"add {thing}" for thing in additions]  # each once, in arrival order
    assert journal(tmp_path) == [("done", 0)] * 5  # 2 starts, 3 replies; no waiting row left behind


def test_at_the_quotas_margin_a_four_image_job_is_refused_up_front_and_a_one_image_one_passes(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path
) -> None:
    with serve(fake, retriever, tmp_path, FairUseLimits(daily_images=5)) as rig:
        root_ts = imagine(fake, rig, "a red fox in the snow --n 4")
        assert used_today(tmp_path) == 4 and len(fake.uploads()) == 4  # room for 1 image more, not 4
        [drawn] = results(fake, root_ts)

        # Retry of the `--n 4` start (the button a failed one gets) draws 4: refused before anything runs
        client = WebClient(token=fake.bot_token(), base_url=fake.api_url)
        failed = blocks.error_message("busy", retry_value("start", text="a red fox in the snow --n 4"))
        posted = client.chat_postMessage(channel=GENERAL, thread_ts=root_ts, **failed)
        rig.driver.block_action(
            ACTION_RETRY, button_value(failed, ACTION_RETRY), ALICE, GENERAL, posted["ts"]
        )
        [note] = wait_for(lambda: quota_notes(fake))
        assert note.get("thread_ts") == root_ts and "5" in json.dumps(note)
        settle(fake)
        assert len(results(fake, root_ts)) == 1 and len(fake.uploads()) == 4 and used_today(tmp_path) == 4

        # Variations draws one image whatever the thread's --n: it fits the one left, and uses it up exactly
        rig.driver.block_action(ACTION_VARY, button_value(drawn, ACTION_VARY), ALICE, GENERAL, drawn["ts"])
        wait_for(lambda: len(results(fake, root_ts)) == 2)
        assert len(fake.uploads()) == 4 + FOLLOW_UP_IMAGES and used_today(tmp_path) == 5

        rig.driver.user_posts(GENERAL, "make it night", ALICE, thread_ts=root_ts)  # no room left: refused
        wait_for(lambda: len(quota_notes(fake)) == 2)
        settle(fake)
        assert len(results(fake, root_ts)) == 2 and len(fake.uploads()) == 5 and used_today(tmp_path) == 5
    # what each job reserved: a refused row keeps its reservation, a drawn one hands it to the counter
    assert journal(tmp_path) == [("done", 0), ("refused", 4), ("done", 0), ("refused", FOLLOW_UP_IMAGES)]


def test_every_follow_up_in_a_four_image_thread_draws_what_it_reserves(
    fake: FakeSlackApi, rig: Rig, tmp_path: Path
) -> None:
    root_ts = imagine(fake, rig, "a lighthouse at dusk --n 4")
    [hits] = hits_of(fake, root_ts)
    used = [len(fake.uploads())]

    def drew(turns: int) -> int:
        """Wait for the thread's `turns`-th result; the images the latest follow-up uploaded."""
        wait_for(lambda: len(results(fake, root_ts)) == turns)
        used.append(len(fake.uploads()))
        return used[-1] - used[-2]

    def latest(action_id: str) -> None:
        message = results(fake, root_ts)[-1]
        rig.driver.block_action(action_id, button_value(message, action_id), ALICE, GENERAL, message["ts"])

    assert used == [4]
    rig.driver.user_posts(GENERAL, "make it stormy", ALICE, thread_ts=root_ts)
    drawn = [drew(2)]
    latest(ACTION_VARY)
    drawn.append(drew(3))
    latest(ACTION_REROLL)
    drawn.append(drew(4))
    use_first = button_value(hits, ACTION_USE_HIT, "hit_1")
    rig.driver.block_action(ACTION_USE_HIT, use_first, ALICE, GENERAL, hits["ts"])
    drawn.append(drew(5))
    edit = {PROMPT_BLOCK: {PROMPT_INPUT: {"type": "plain_text_input", "value": "a lighthouse, ink sketch"}}}
    latest(ACTION_EDIT_PROMPT)
    wait_for(lambda: [v for v in fake.views(ALICE) if v.get("callback_id") == VIEW_EDIT_PROMPT])
    assert rig.driver.view_submission(VIEW_EDIT_PROMPT, edit).status == 200
    drawn.append(drew(6))
    assert drawn == [FOLLOW_UP_IMAGES] * 5  # refine, vary, re-roll, use #1, edit: what their jobs reserve
    wait_for(lambda: journal(tmp_path) == [("done", 0)] * 6)  # each drew what it reserved, then was counted
