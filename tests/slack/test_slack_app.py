"""The real Bolt app over HTTP on 127.0.0.1 against FakeSlackApi, with the engine over offline models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.config import ConfigError
from bot.engine.ports import ThreadRef
from bot.slack.credentials import load_slack_credentials
from bot.slack.ids import ACTION_REROLL, ACTION_USE_HIT, COMMAND_IMAGINE
from retrieval.search import Retriever
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_models import ALICE, BOB, GENERAL, RANDOM
from tests.slack.slack_rig import (
    PNG_MAGIC,
    TEAM,
    Rig,
    block_ids,
    button_value,
    hits_of,
    imagine,
    next_ts,
    results,
    serve,
    wait_for,
)


# tests ---------------------------------------------------------------------------------------------------
def test_imagine_posts_root_hits_image_and_result(fake: FakeSlackApi, rig: Rig) -> None:
    root_ts = imagine(fake, rig, "a cartoon of a little dog --ar 3:2")
    [root] = [m for m in fake.messages(GENERAL) if m["ts"] == root_ts]
    assert f"<@{ALICE}>" in json.dumps(root["blocks"]) and "little dog" in json.dumps(root["blocks"])
    assert "--ar 3:2" in json.dumps(root["blocks"])
    thread = fake.messages(GENERAL, root_ts)[1:]
    [hits] = hits_of(fake, root_ts)
    uses = [
        b["accessory"] for b in hits["blocks"] if b.get("accessory", {}).get("action_id") == ACTION_USE_HIT
    ]
    assert len(uses) == 5 and [u["text"]["text"] for u in uses] == [f"Use #{n}" for n in range(1, 6)]
    [file_message] = [m for m in thread if m.get("files")]
    [result] = results(fake, root_ts)
    order = [m["ts"] for m in thread]
    assert order.index(hits["ts"]) < order.index(file_message["ts"]) < order.index(result["ts"])
    assert not [m for m in thread if "status" in block_ids(m)]  # the status line is gone when done
    [upload] = fake.uploads()
    assert upload["data"].startswith(PNG_MAGIC) and upload["mimetype"] == "image/png"
    assert fake.calls_to("files.completeUploadExternal")[0].params.get("thread_ts") == root_ts
    assert "dog" in result["text"].lower() and "offline" in json.dumps(result["blocks"]).lower()
    assert "details" in block_ids(result)
    assert fake.calls_to("chat.delete")  # the status line was posted, then removed


def test_help_and_bad_flags_are_ephemeral_acks(fake: FakeSlackApi, rig: Rig) -> None:
    empty = rig.driver.slash_command(COMMAND_IMAGINE, "", ALICE, GENERAL)
    assert empty.status == 200
    assert empty.json()["response_type"] == "ephemeral" and "--ar" in json.dumps(empty.json()["blocks"])
    helped = rig.driver.slash_command(COMMAND_IMAGINE, "help", ALICE, GENERAL).json()
    assert "How to use /imagine" in helped["text"]
    bad = rig.driver.slash_command(COMMAND_IMAGINE, "dog --zoom 2", ALICE, GENERAL)
    assert bad.status == 200 and bad.json()["response_type"] == "ephemeral"
    assert "--zoom" in json.dumps(bad.json()["blocks"])
    # the lazy halves post nothing for these: a later command's root is the channel's only message
    imagine(fake, rig, "a lighthouse at night")
    assert len(fake.messages(GENERAL)) == 1


def test_not_in_channel_tells_the_requester_to_invite(fake: FakeSlackApi, rig: Rig) -> None:
    status, _ = rig.driver.slash_command(COMMAND_IMAGINE, "a red fox", ALICE, RANDOM)
    assert status == 200
    [ephemeral] = wait_for(lambda: fake.ephemerals(ALICE))
    assert "/invite @imagine" in json.dumps(ephemeral.get("blocks")) and ephemeral["channel"] == RANDOM
    assert fake.messages(RANDOM) == [] and fake.uploads() == []


def test_human_reply_refines_and_other_messages_are_ignored(fake: FakeSlackApi, rig: Rig) -> None:
    root_ts = imagine(fake, rig, "a cartoon of a little dog")
    base = {"type": "message", "channel": GENERAL, "channel_type": "channel", "thread_ts": root_ts}
    other_bot = {**base, "user": "U0OTHERBOT", "bot_id": "B0OTHER", "text": "make it neon"}
    ts = next_ts(fake)
    assert rig.driver.event({**other_bot, "ts": ts, "event_ts": ts}).status == 200
    ts = next_ts(fake)
    edited = {**base, "subtype": "message_changed", "hidden": True, "ts": ts, "event_ts": ts}
    edited["message"] = {"type": "message", "user": BOB, "text": "make it neon", "ts": root_ts}
    assert rig.driver.event(edited).status == 200
    ts = next_ts(fake)
    joined = {**base, "subtype": "channel_join", "user": BOB, "text": "joined", "ts": ts, "event_ts": ts}
    assert rig.driver.event(joined).status == 200

    rig.driver.user_posts(GENERAL, "make it watercolor", BOB, thread_ts=root_ts)
    refined = wait_for(lambda: results(fake, root_ts)[1:])
    assert "watercolor" in refined[-1]["text"].lower()
    assert len([m for m in fake.messages(GENERAL, root_ts) if m.get("files")]) == 2
    record = rig.services.threads.find_thread_by_ref(_ref(root_ts))
    assert record is not None
    _, turns = rig.services.conversation.history(TEAM, record.id)
    assert [t.kind for t in turns] == ["start", "refine"]
    assert "neon" not in json.dumps(fake.messages(GENERAL, root_ts)[-1])
    # the refinement searched its new direction: one line of references numbered after the hits shown
    [line] = [b for b in refined[-1]["blocks"] if b.get("block_id") == "new_references"]
    assert line["elements"][0]["text"].startswith(":mag: New references: *#6* ")
    assert [h["number"] for h in turns[1].hits][:6] == [1, 2, 3, 4, 5, 6]
    assert len(hits_of(fake, root_ts)) == 1  # no second hits message: the line is all the thread gets


def test_use_hit_and_reroll_buttons_post_new_results(fake: FakeSlackApi, rig: Rig) -> None:
    root_ts = imagine(fake, rig, "a cozy cabin in the woods")
    [hits] = hits_of(fake, root_ts)
    value = button_value(hits, ACTION_USE_HIT, "hit_2")
    assert value.endswith(":2")
    assert rig.driver.block_action(ACTION_USE_HIT, value, ALICE, GENERAL, hits["ts"]).status == 200
    wait_for(lambda: len(results(fake, root_ts)) == 2)
    latest = results(fake, root_ts)[-1]
    reroll = button_value(latest, ACTION_REROLL)
    assert rig.driver.block_action(ACTION_REROLL, reroll, ALICE, GENERAL, latest["ts"]).status == 200
    wait_for(lambda: len(results(fake, root_ts)) == 3)
    record = rig.services.threads.find_thread_by_ref(_ref(root_ts))
    assert record is not None
    _, turns = rig.services.conversation.history(TEAM, record.id)
    assert [t.kind for t in turns] == ["start", "use_hit", "reroll"]
    assert turns[2].prompt == turns[1].prompt and len(fake.uploads()) == 3


def test_a_reply_after_a_restart_still_refines(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path
) -> None:
    with serve(fake, retriever, tmp_path) as first:
        root_ts = imagine(fake, first, "a cartoon of a little dog")
    with serve(fake, retriever, tmp_path) as second:
        second.driver.user_posts(GENERAL, "make it watercolor", ALICE, thread_ts=root_ts)
        refined = wait_for(lambda: results(fake, root_ts)[1:])
        assert "watercolor" in refined[-1]["text"].lower() and "dog" in refined[-1]["text"].lower()


def _ref(root_ts: str) -> ThreadRef:
    """The engine's reference of a #general thread."""
    return ThreadRef(TEAM, GENERAL, root_ts)


def test_a_mention_outside_a_thread_starts_one(fake: FakeSlackApi, rig: Rig) -> None:
    mention = rig.driver.user_mentions_bot(GENERAL, "a castle at dusk --ar 16:9", ALICE)
    wait_for(lambda: results(fake, str(mention["ts"])))
    record = rig.services.threads.find_thread_by_ref(_ref(str(mention["ts"])))
    assert record is not None and record.idea == "a castle at dusk"
    assert len(hits_of(fake, str(mention["ts"]))) == 1


def test_slack_settings_fail_fast_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN is not set"):
        load_slack_credentials()
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_API_URL", "ftp://nope")
    with pytest.raises(ConfigError, match="SLACK_API_URL"):
        load_slack_credentials()
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api")
    loaded = load_slack_credentials()
    assert loaded.base_url == "http://127.0.0.1:9/api/" and "xoxb-1" not in repr(loaded)


def test_avatar_posts_a_contact_sheet_and_candidates(fake: FakeSlackApi, rig: Rig) -> None:
    assert rig.driver.slash_command("/avatar", "friendly robots", ALICE, GENERAL).status == 200
    roots = wait_for(lambda: [m for m in fake.messages(GENERAL) if "imagined" in m.get("text", "")])
    root_ts = str(roots[-1]["ts"])
    sheets = wait_for(
        lambda: [m for m in fake.messages(GENERAL, root_ts) if "brainstorm_actions" in block_ids(m)]
    )
    assert "candidate_1" in block_ids(sheets[0])
    uploads = fake.uploads()  # the numbered contact sheet first, then each of the six candidates
    assert len(uploads) == 7 and uploads[0]["name"].startswith("sheet-")
    assert all(upload["data"].startswith(PNG_MAGIC) for upload in uploads)
    [file_message] = [m for m in fake.messages(GENERAL, root_ts) if m.get("files")]
    assert len(file_message["files"]) == 7  # one message, not seven

    def reactions() -> list[str]:
        message = fake.message(GENERAL, sheets[0]["ts"]) or {}
        return [r["name"] for r in message.get("reactions", [])]

    wait_for(lambda: len(reactions()) == 6)
    assert reactions() == ["one", "two", "three", "four", "five", "six"]  # a vote is one click
