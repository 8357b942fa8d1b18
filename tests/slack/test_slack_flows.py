"""Slack flows beyond the first image: edit, save, feedback, votes and winner, DMs, retries, fair use."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from urllib.parse import urlencode

from bot.drawing.bedrock_images import BedrockImageModel
from bot.engine.ports import ThreadRef, UserDefaults
from bot.scheduling.fair_use import FairUseLimits
from bot.slack.ids import (
    ACTION_EDIT_PROMPT,
    ACTION_FEEDBACK_DOWN,
    ACTION_FEEDBACK_UP,
    ACTION_PICK_WINNER,
    ACTION_REROLL,
    ACTION_RETRY,
    ACTION_SAVE_PROMPT,
    ACTION_VOTE,
    COMMAND_AVATAR,
    COMMAND_IMAGINE,
    VIEW_EDIT_PROMPT,
)
from bot.slack.reply.modal_views import NEGATIVE_BLOCK, NEGATIVE_INPUT, PROMPT_BLOCK, PROMPT_INPUT
from retrieval.search import Retriever
from sandbox.bedrock_image_models import install_image_handlers, stability_v2
from sandbox.bedrock_runtime import FakeBedrockRuntime, FakeResponse, RecordedRequest
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_models import ALICE, BOB, GENERAL
from tests.reliability_record import ReliabilityRecord
from tests.slack.slack_rig import (
    TEAM,
    Json,
    Rig,
    block_ids,
    button_value,
    imagine,
    results,
    serve,
    settle,
    wait_for,
)

SD35 = "stability.sd3-5-large-v1:0"


def thread_id_of(rig: Rig, root_ts: str, channel: str = GENERAL) -> int:
    """The stored thread id of a Slack thread."""
    record = rig.services.threads.find_thread_by_ref(ThreadRef(TEAM, channel, root_ts))
    assert record is not None
    return record.id


def kinds(rig: Rig, root_ts: str, channel: str = GENERAL) -> list[str]:
    """The kinds of the stored turns of a thread."""
    _, turns = rig.services.conversation.history(TEAM, thread_id_of(rig, root_ts, channel))
    return [turn.kind for turn in turns]


def ephemeral_texts(fake: FakeSlackApi, user: str) -> list[str]:
    """Everything the user was told privately, as text."""
    return [json.dumps(e.get("blocks") or e.get("text")) for e in fake.ephemerals(user)]


def brainstorm(fake: FakeSlackApi, rig: Rig, theme: str) -> tuple[str, Json]:
    """Run /avatar in #general and return the thread root ts and the candidates message."""
    assert rig.driver.slash_command(COMMAND_AVATAR, theme, ALICE, GENERAL).status == 200
    roots = wait_for(lambda: [m for m in fake.messages(GENERAL) if theme in json.dumps(m.get("blocks"))])
    root_ts = str(roots[-1]["ts"])
    [candidates] = wait_for(
        lambda: [m for m in fake.messages(GENERAL, root_ts) if "brainstorm_actions" in block_ids(m)]
    )
    return root_ts, candidates


def test_edit_prompt_opens_a_prefilled_modal_and_draws_the_edit(fake: FakeSlackApi, rig: Rig) -> None:
    root_ts = imagine(fake, rig, "a cartoon of a little dog")
    [result] = results(fake, root_ts)
    value = button_value(result, ACTION_EDIT_PROMPT)
    rig.driver.block_action(ACTION_EDIT_PROMPT, value, ALICE, GENERAL, result["ts"])
    [modal] = wait_for(lambda: [v for v in fake.views(ALICE) if v.get("callback_id") == VIEW_EDIT_PROMPT])
    _, turns = rig.services.conversation.history(TEAM, thread_id_of(rig, root_ts))
    prefilled = modal["blocks"][0]["element"]["initial_value"]
    assert prefilled == turns[0].prompt

    empty = {PROMPT_BLOCK: {PROMPT_INPUT: {"type": "plain_text_input", "value": "  "}}}
    refused = rig.driver.view_submission(VIEW_EDIT_PROMPT, empty)
    assert refused.status == 200 and refused.json()["response_action"] == "errors"
    values = {
        PROMPT_BLOCK: {PROMPT_INPUT: {"type": "plain_text_input", "value": "a corgi astronaut, ink sketch"}},
        NEGATIVE_BLOCK: {NEGATIVE_INPUT: {"type": "plain_text_input", "value": "text, watermark"}},
    }
    assert rig.driver.view_submission(VIEW_EDIT_PROMPT, values).status == 200
    edited = wait_for(lambda: results(fake, root_ts)[1:])
    assert "corgi astronaut" in edited[-1]["text"] and "watermark" in json.dumps(edited[-1]["blocks"])
    assert kinds(rig, root_ts) == ["start", "edit"]

    again = rig.driver.deliveries[-1].payload  # the same submission (same trigger_id) delivered twice
    assert again["type"] == "view_submission"
    body = urlencode({"payload": json.dumps(again)})
    form = "application/x-www-form-urlencoded"
    assert rig.driver.post("view_submission", again, body, form, {}).status == 200
    settle(fake)
    assert kinds(rig, root_ts) == ["start", "edit"] and len(results(fake, root_ts)) == 2


def test_save_and_feedback_buttons_answer_privately_and_store(fake: FakeSlackApi, rig: Rig) -> None:
    root_ts = imagine(fake, rig, "a lighthouse at dusk")
    [result] = results(fake, root_ts)
    value = button_value(result, ACTION_SAVE_PROMPT)
    rig.driver.block_action(ACTION_SAVE_PROMPT, value, BOB, GENERAL, result["ts"])
    wait_for(lambda: any("Saved to your library" in t for t in ephemeral_texts(fake, BOB)))
    [saved] = rig.services.defaults.saved_prompts(TEAM, BOB)
    _, turns = rig.services.conversation.history(TEAM, thread_id_of(rig, root_ts))
    assert saved.prompt == turns[0].prompt and rig.services.defaults.saved_prompts(TEAM, ALICE) == []

    rig.driver.block_action(ACTION_FEEDBACK_UP, value, ALICE, GENERAL, result["ts"])
    rig.driver.block_action(ACTION_FEEDBACK_DOWN, value, BOB, GENERAL, result["ts"])
    wait_for(lambda: any("glad" in t for t in ephemeral_texts(fake, ALICE)))
    wait_for(lambda: any("what to change" in t for t in ephemeral_texts(fake, BOB)))
    assert fake.messages(GENERAL, root_ts)[-1]["ts"] == result["ts"]  # nothing public was added


def test_votes_by_reaction_and_button_then_the_owner_picks_the_winner(fake: FakeSlackApi, rig: Rig) -> None:
    root_ts, candidates = brainstorm(fake, rig, "friendly robots for the data team")
    thread_id = thread_id_of(rig, root_ts)
    rig.driver.user_reacts(GENERAL, candidates["ts"], "three", ALICE)
    rig.driver.user_reacts(GENERAL, root_ts, "three", BOB)  # on the thread root counts too
    rig.driver.user_reacts(GENERAL, candidates["ts"], "thumbsup", BOB)  # not a number: ignored
    wait_for(lambda: rig.services.feedback.tally(TEAM, thread_id).get(3) == 2)
    rig.driver.block_action(ACTION_VOTE, f"{thread_id}:5", BOB, GENERAL, candidates["ts"])
    wait_for(lambda: rig.services.feedback.tally(TEAM, thread_id).get(5) == 1)
    removed: Json = {"type": "reaction_removed", "user": BOB, "reaction": "three"}
    removed["item"] = {"type": "message", "channel": GENERAL, "ts": root_ts}
    rig.driver.event({**removed, "event_ts": "1.0"})
    wait_for(lambda: rig.services.feedback.tally(TEAM, thread_id).get(3) == 1)

    pick = button_value(candidates, ACTION_PICK_WINNER)
    rig.driver.block_action(ACTION_PICK_WINNER, pick, BOB, GENERAL, candidates["ts"])
    wait_for(lambda: any("can pick the winner" in t for t in ephemeral_texts(fake, BOB)))
    assert kinds(rig, root_ts) == ["brainstorm"]
    rig.driver.block_action(ACTION_PICK_WINNER, pick, ALICE, GENERAL, candidates["ts"])
    refined = wait_for(lambda: results(fake, root_ts))
    texts = [json.dumps(m.get("blocks")) for m in fake.messages(GENERAL, root_ts)]
    assert any("#3 wins" in text or "*#3 wins*" in text for text in texts)  # 1 vote each: the lowest wins
    assert refined and kinds(rig, root_ts)[:2] == ["brainstorm", "pick"]
    wait_for(lambda: kinds(rig, root_ts) == ["brainstorm", "pick", "upscale", "icon"])  # then the icon


def test_a_direct_message_starts_a_thread_like_imagine(fake: FakeSlackApi, rig: Rig) -> None:
    with fake.state() as ws:
        dm = ws.im_for(ws.teams[TEAM], ALICE).id
    message = rig.driver.user_posts(dm, "a paper boat on a puddle --ar 3:2", ALICE)
    wait_for(lambda: [m for m in fake.messages(dm, str(message["ts"])) if "result_actions" in block_ids(m)])
    assert [m for m in fake.messages(dm, str(message["ts"])) if "hit_1" in block_ids(m)]
    assert kinds(rig, str(message["ts"]), dm) == ["start"]
    rig.driver.user_posts(dm, "help", ALICE)
    wait_for(
        lambda: any(
            "How to use" in m.get("text", "")
            for m in fake.messages(dm)
            + [r for root in fake.messages(dm) for r in fake.messages(dm, str(root["ts"]))]
        )
    )


def test_slack_retries_and_double_clicks_make_one_turn(
    fake: FakeSlackApi, rig: Rig, reliability: ReliabilityRecord
) -> None:
    root_ts = imagine(fake, rig, "a cozy cabin in the woods")
    message = fake.post_as_user(GENERAL, "make it snowy", ALICE, root_ts)
    event = rig.driver.message_event(message, GENERAL)
    retries = (None, 1, 2)
    for retry in retries:
        assert rig.driver.event(event, event_id="Ev0RETRIED", retry_num=retry).status == 200
    wait_for(lambda: len(results(fake, root_ts)) == 2)
    latest = results(fake, root_ts)[-1]
    value = button_value(latest, ACTION_REROLL)
    clicks = 3
    for _ in range(clicks):
        rig.driver.block_action(ACTION_REROLL, value, ALICE, GENERAL, latest["ts"])
    wait_for(lambda: len(results(fake, root_ts)) == 3)
    rig.driver.user_posts(GENERAL, "now at night", ALICE, thread_ts=root_ts)  # a later turn still works
    wait_for(lambda: len(results(fake, root_ts)) == 4)
    stored = kinds(rig, root_ts)
    assert stored == ["start", "refine", "reroll", "refine"]
    reliability("retries.deliveries", len(retries))
    reliability("retries.refine_turns", stored[:2].count("refine"))
    reliability("retries.clicks", clicks)
    reliability("retries.reroll_turns", stored.count("reroll"))
    reliability("retries.images", len(fake.uploads()))


def test_defaults_and_model_flag_shape_the_turn(fake: FakeSlackApi, rig: Rig) -> None:
    rig.services.defaults.set_user_defaults(
        TEAM, ALICE, UserDefaults(aspect_ratio="16:9", style="watercolor")
    )
    root_ts = imagine(fake, rig, "a red fox in the snow --model offline")
    [result] = results(fake, root_ts)
    details = json.dumps(result["blocks"])
    assert "16:9" in details and "watercolor" in details
    root = next(m for m in fake.messages(GENERAL) if m["ts"] == root_ts)
    assert "--model offline" in json.dumps(root["blocks"])
    bad = rig.driver.slash_command(COMMAND_IMAGINE, "a fox --model dalle", ALICE, GENERAL).json()
    assert bad["response_type"] == "ephemeral" and "--model" in json.dumps(bad["blocks"])


def test_the_daily_quota_stops_the_next_image_with_a_clear_note(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path
) -> None:
    with serve(fake, retriever, tmp_path, FairUseLimits(daily_images=1)) as rig:
        imagine(fake, rig, "a cartoon of a little dog")
        assert rig.driver.slash_command(COMMAND_IMAGINE, "a second dog", ALICE, GENERAL).status == 200
        [note] = wait_for(lambda: fake.responses())
        payload = note["payload"]
        assert payload["response_type"] == "ephemeral" and "today's" in json.dumps(payload["blocks"])
        assert not [m for m in fake.messages(GENERAL) if "second dog" in json.dumps(m.get("blocks"))]
        assert rig.driver.slash_command(COMMAND_IMAGINE, "a cat", BOB, GENERAL).status == 200
        cat = wait_for(lambda: [m for m in fake.messages(GENERAL) if "a cat" in json.dumps(m["blocks"])])
        wait_for(lambda: results(fake, str(cat[0]["ts"])))  # Bob has his own quota


def test_a_busy_image_model_gets_a_retry_button_that_finishes_the_turn(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path, aws_test_credentials: None
) -> None:
    with FakeBedrockRuntime() as bedrock:
        install_image_handlers(bedrock)
        model = BedrockImageModel(SD35, "us-east-1", endpoint_url=bedrock.url, max_attempts=1)
        with serve(fake, retriever, tmp_path, images=model) as rig:
            bedrock.fail_next(429, "ThrottlingException", times=1)
            rig.driver.slash_command(COMMAND_IMAGINE, "a lighthouse at dusk --ar 3:2", ALICE, GENERAL)
            roots = wait_for(lambda: [m for m in fake.messages(GENERAL) if "lighthouse" in json.dumps(m)])
            root_ts = str(roots[0]["ts"])
            [failed] = wait_for(
                lambda: [m for m in fake.messages(GENERAL, root_ts) if "error_actions" in block_ids(m)]
            )
            assert "busy" in json.dumps(failed["blocks"]).lower() and not results(fake, root_ts)
            retry = button_value(failed, ACTION_RETRY)
            for _ in range(2):  # a double click retries once
                rig.driver.block_action(ACTION_RETRY, retry, BOB, GENERAL, failed["ts"])
            [result] = wait_for(lambda: results(fake, root_ts))
            assert "3:2" in json.dumps(result["blocks"]) and fake.message(GENERAL, failed["ts"]) is None
            assert kinds(rig, root_ts) == ["start"]
            assert (
                rig.driver.block_action(ACTION_RETRY, "{not json", BOB, GENERAL, result["ts"]).status == 200
            )


def test_a_busy_bot_queues_with_a_visible_position_and_caps_each_user(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path, aws_test_credentials: None
) -> None:
    gate = threading.Event()

    def slow_stability(request: RecordedRequest) -> FakeResponse:
        gate.wait(30)  # the image model is busy until the test opens the gate
        return stability_v2(request)

    limits = FairUseLimits(max_concurrent_jobs=1, per_user_queue=1)
    with FakeBedrockRuntime() as bedrock:
        bedrock.register("invoke", "stability.sd3", slow_stability)
        model = BedrockImageModel(SD35, "us-east-1", endpoint_url=bedrock.url)
        with serve(fake, retriever, tmp_path, limits, images=model) as rig:

            def root_of(idea: str) -> str:
                found = wait_for(lambda: [m for m in fake.messages(GENERAL) if idea in json.dumps(m)])
                return str(found[0]["ts"])

            rig.driver.slash_command(COMMAND_IMAGINE, "a red fox", ALICE, GENERAL)
            fox = root_of("a red fox")
            wait_for(lambda: rig.services.fair_use.running == 1)
            rig.driver.slash_command(COMMAND_IMAGINE, "a blue whale", BOB, GENERAL)
            whale = root_of("a blue whale")
            queued = wait_for(lambda: [m for m in fake.messages(GENERAL, whale) if "queue" in m["text"]])
            assert "next in the queue" in json.dumps(queued[0]["blocks"])
            capped = rig.driver.slash_command(COMMAND_IMAGINE, "a green frog", ALICE, GENERAL)
            assert capped.status == 200
            [note] = wait_for(lambda: fake.responses())
            assert "1 image job waiting or running" in json.dumps(note["payload"]["blocks"])
            assert not [m for m in fake.messages(GENERAL) if "green frog" in json.dumps(m)]
            gate.set()
            wait_for(lambda: results(fake, fox) and results(fake, whale), timeout=30)
            assert not [m for m in fake.messages(GENERAL, whale) if "queue" in m["text"]]  # cleaned up
            wait_for(lambda: rig.services.fair_use.running == 0 and rig.services.fair_use.waiting == 0)


def test_refused_ideas_are_answered_privately_and_never_posted(fake: FakeSlackApi, rig: Rig) -> None:
    for idea in ("a rival corp logo on a mug", "a naked child"):
        assert rig.driver.slash_command(COMMAND_IMAGINE, idea, ALICE, GENERAL).status == 200
    notes = wait_for(lambda: len(fake.ephemerals(ALICE)) == 2 and fake.ephemerals(ALICE))
    assert all("can't" in json.dumps(n).lower() or "cannot" in json.dumps(n).lower() for n in notes), notes
    assert fake.messages(GENERAL) == [] and fake.uploads() == []  # nothing public, nothing drawn
    root_ts = imagine(fake, rig, "a coffee mug on a desk")
    rig.driver.user_posts(GENERAL, "put the rival corp logo on it", BOB, thread_ts=root_ts)
    wait_for(lambda: [m for m in fake.messages(GENERAL, root_ts) if "asked me to avoid" in json.dumps(m)])
    assert len(results(fake, root_ts)) == 1 and kinds(rig, root_ts) == ["start"]


def test_avatar_n_sets_the_number_of_candidates(fake: FakeSlackApi, rig: Rig) -> None:
    assert rig.driver.slash_command(COMMAND_AVATAR, "team mascots --n 9", ALICE, GENERAL).status == 200
    [root] = wait_for(lambda: fake.messages(GENERAL))
    assert "--n 9" in json.dumps(root["blocks"])
    [candidates] = wait_for(
        lambda: [m for m in fake.messages(GENERAL, root["ts"]) if "brainstorm_actions" in block_ids(m)]
    )
    assert "candidate_9" in block_ids(candidates) and "candidate_10" not in block_ids(candidates)
    assert len(fake.uploads()) == 10  # the sheet and nine candidates, in one message
    bad = rig.driver.slash_command(COMMAND_AVATAR, "team mascots --n 12", ALICE, GENERAL).json()
    assert bad["response_type"] == "ephemeral" and "2 to 9" in json.dumps(bad["blocks"])
