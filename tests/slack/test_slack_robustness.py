"""The real Bolt app under odd input: bad signatures get 401, nothing else gets a 5xx or a crash."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.slack.ids import (
    ACTION_FEEDBACK_UP,
    ACTION_REROLL,
    ACTION_USE_HIT,
    ACTION_VOTE,
    COMMAND_AVATAR,
    COMMAND_IMAGINE,
    VIEW_EDIT_PROMPT,
)
from retrieval.search import Retriever
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_driver import SlackDriver
from sandbox.slack_models import ALICE, APP_ID, BOB, GENERAL
from tests.slack.slack_rig import TEAM, Rig, block_ids, imagine, next_ts, results, serve, settle, wait_for

Json = dict[str, Any]
FORM = "application/x-www-form-urlencoded"
APP_LOGGERS = ("test.slack_app", "slack_bolt", "bot")
CONTROL = "a red\x00 fox\x07 in\x1b[31m the\x7f snow\x0b"


class AppLogs:
    """Warnings and errors the app logged during a test; an error or a traceback fails it."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    def problems(self) -> list[str]:
        """ERROR records and any record carrying a traceback, formatted with it."""
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        return [
            formatter.format(record)
            for record in self.caplog.records
            if record.levelno >= logging.ERROR or record.exc_info
        ]

    def assert_clean(self) -> None:
        """No error and no traceback so far."""
        problems = self.problems()
        assert problems == [], "\n\n".join(problems)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[AppLogs]:
    """The app's logs (any logger) at WARNING and above."""
    caplog.set_level(logging.WARNING)
    for name in APP_LOGGERS:
        caplog.set_level(logging.WARNING, logger=name)
    captured = AppLogs(caplog)
    yield captured


@pytest.fixture(scope="module")
def shared(
    retriever: Retriever, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FakeSlackApi, Rig]]:
    """One app for the many malformed-input cases (they leave no state behind), in a clean environment."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("IMAGINE_", "AWS_", "SLACK_")):
                patch.delenv(name)
        with FakeSlackApi() as fake, serve(fake, retriever, tmp_path_factory.mktemp("robust")) as rig:
            yield fake, rig


def roots(fake: FakeSlackApi) -> list[Json]:
    """Top-level messages the bot posted in #general (thread roots)."""
    return [m for m in fake.messages(GENERAL) if "imagined" in m.get("text", "")]


def replies_done(fake: FakeSlackApi, root_ts: str) -> list[Json]:
    """Results or error messages in a thread (a turn has finished one way or the other)."""
    return [
        m
        for m in fake.messages(GENERAL, root_ts)[1:]
        if "result_actions" in block_ids(m) or ":x:" in _text(m)
    ]


def _text(message: Json) -> str:
    """A message's text and blocks as one string."""
    return str(message.get("text", "")) + json.dumps(message.get("blocks") or [], ensure_ascii=False)


def raw_event(driver: SlackDriver, envelope: Any) -> int:
    """POST a signed JSON body as an Events API delivery; the HTTP status."""
    return driver.post_raw(json.dumps(envelope), "application/json", kind="event:raw").status


def raw_interaction(driver: SlackDriver, payload: Any) -> int:
    """POST a signed `payload` form field (JSON-encoded unless already a string); the HTTP status."""
    field = payload if isinstance(payload, str) else json.dumps(payload)
    return driver.post_raw(urlencode({"payload": field}), FORM, kind="interaction:raw").status


def envelope(event: Any, **fields: Any) -> Json:
    """An event_callback envelope around `event`."""
    return {
        "token": "sandbox-verification-token",
        "team_id": TEAM,
        "api_app_id": APP_ID,
        "type": "event_callback",
        "event_id": f"EvRobust{time.monotonic_ns()}",
        "event_time": int(time.time()),
        "event": event,
        **fields,
    }


# signatures ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["forged", "stale", "future"])
def test_bad_signatures_get_401_and_do_nothing(
    fake: FakeSlackApi, rig: Rig, logs: AppLogs, variant: str
) -> None:
    driver = {
        "forged": rig.driver.forged(),
        "stale": rig.driver.stale(),
        "future": rig.driver.stale(-600),
    }[variant]
    ts = next_ts(fake)
    message = {"type": "message", "user": ALICE, "text": "hi", "channel": GENERAL, "ts": ts}
    assert driver.slash_command(COMMAND_IMAGINE, "a red fox", ALICE, GENERAL).status == 401
    assert driver.event({**message, "channel_type": "channel", "event_ts": ts}).status == 401
    assert driver.block_action(ACTION_REROLL, "1", ALICE, GENERAL, ts).status == 401
    assert driver.view_submission(VIEW_EDIT_PROMPT, {}).status == 401
    assert driver.url_verification("forged-challenge").status == 401
    settle(fake)
    assert fake.messages(GENERAL) == [] and fake.ephemerals() == [] and fake.responses() == []
    assert not [call for call in fake.calls if call.method.startswith(("chat.", "files.", "views."))]
    logs.assert_clean()


def test_missing_or_garbled_signature_headers_get_401(fake: FakeSlackApi, rig: Rig, logs: AppLogs) -> None:
    body = urlencode({"command": COMMAND_IMAGINE, "text": "a red fox", "team_id": TEAM, "user_id": ALICE})
    now = str(int(time.time()))
    driver = rig.driver
    assert driver.post_raw(body, FORM, signed=False).status == 401
    assert driver.post_raw(body, FORM, signed=False, headers={"X-Slack-Request-Timestamp": now}).status == 401
    assert driver.post_raw(body, FORM, signed=False, headers={"X-Slack-Signature": "v0=00"}).status == 401
    garbled = {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v0=" + "0" * 64}
    assert driver.post_raw(body, FORM, signed=False, headers=garbled).status == 401
    assert driver.post_raw(body, FORM, headers={"X-Slack-Signature": "not-a-signature"}).status == 401
    settle(fake)
    assert fake.messages(GENERAL) == [] and fake.ephemerals() == []
    logs.assert_clean()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param("payload=not-json", FORM, id="payload-not-json"),
        pytest.param("{not json", "application/json", id="json-broken"),
        pytest.param("[]", "application/json", id="json-list"),
        pytest.param(b"\xff\xfe", "application/json", id="not-utf8"),
    ],
)
@pytest.mark.parametrize("with_timestamp", [False, True], ids=["no-headers", "fresh-timestamp-bad-signature"])
def test_unsigned_garbage_gets_401(
    fake: FakeSlackApi,
    rig: Rig,
    logs: AppLogs,
    body: str | bytes,
    content_type: str,
    with_timestamp: bool,
) -> None:
    headers = {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64}
    answer = rig.driver.post_raw(
        body, content_type, signed=False, headers=headers if with_timestamp else None
    )
    assert answer.status == 401
    logs.assert_clean()


@pytest.mark.parametrize(
    "timestamp",
    [
        "yesterday",
        "",
        "1e9",
        "-1",
        "9" * 40,
    ],
)
def test_a_timestamp_that_is_not_a_number_gets_401(
    fake: FakeSlackApi, rig: Rig, logs: AppLogs, timestamp: str
) -> None:
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": "v0=" + "0" * 64}
    status = rig.driver.post_raw(json.dumps(envelope({"type": "app_mention"})), signed=False, headers=headers)
    assert status.status == 401
    logs.assert_clean()


def test_url_verification_answers_the_challenge(rig: Rig, logs: AppLogs) -> None:
    answer = rig.driver.url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
    assert answer.status == 200
    assert answer.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    logs.assert_clean()


# odd /imagine text -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "shows"),
    [
        ("", "How to use /imagine"),
        ("   \t  ", "How to use /imagine"),
        ("--", "How to use /imagine"),
        ("\x00\x01\x1f\x7f", "How to use /imagine"),
        ("\u200b\u200b", "How to use /imagine"),
        ("HELP", "How to use /imagine"),
        ("a fox --seed banana", "--seed"),
        ("a fox \u2014n 9", "--n"),
        ("a fox --zoom 2", "--zoom"),
        ("a fox --model dall-e", "--model"),
        ("a fox --" + "z" * 5000, "unknown option"),
    ],
)
def test_odd_imagine_text_gets_an_ephemeral_that_names_the_problem(
    fake: FakeSlackApi, rig: Rig, logs: AppLogs, text: str, shows: str
) -> None:
    answer = rig.driver.slash_command(COMMAND_IMAGINE, text, ALICE, GENERAL)
    assert answer.status == 200
    reply = answer.json()
    assert reply["response_type"] == "ephemeral" and shows in _text(reply)
    assert len(json.dumps(reply)) < 12_000  # Slack rejects oversized ack bodies
    settle(fake)
    assert fake.messages(GENERAL) == []  # the lazy half does not start a thread as well
    logs.assert_clean()


def start(fake: FakeSlackApi, rig: Rig, text: str, command: str = COMMAND_IMAGINE) -> Json:
    """Run a slash command that starts a thread; the root once a result or an error is in the thread."""
    before = len(roots(fake))
    answer = rig.driver.slash_command(command, text, ALICE, GENERAL)
    assert answer.status == 200 and not answer.body, answer.body
    root = wait_for(lambda: roots(fake)[before:])[0]
    wait_for(lambda: replies_done(fake, str(root["ts"])), timeout=20)
    return root


def test_odd_ideas_start_threads_that_read_sensibly(fake: FakeSlackApi, rig: Rig, logs: AppLogs) -> None:
    script = start(fake, rig, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; a cat")
    shown = _text(script)
    assert "&lt;script&gt;" in shown and "<script>" not in shown and "&amp;amp;" not in shown

    emoji = start(fake, rig, "\U0001f431\U0001f680\U0001f308")
    assert "\U0001f431\U0001f680\U0001f308" in _text(emoji)

    control = start(fake, rig, CONTROL)
    assert "a red fox in[31m the snow" in _text(control)
    assert not any(ord(char) < 32 and char != "\n" for char in _text(control))

    rtl = start(fake, rig, "\u0642\u0637\u0629 \u0641\u064a \u0627\u0644\u062b\u0644\u062c \u2014ar 3:2")
    assert "\u0642\u0637\u0629" in _text(rtl) and "--ar 3:2" in _text(rtl)

    long = start(fake, rig, " ".join(["lighthouse"] * 900) + " --seed 7")  # ~10,000 characters
    assert len(_text(long)) < 12_000 and "--seed 7" in _text(long)
    [result] = results(fake, str(long["ts"]))
    assert "lighthouse" in result["text"]

    # the app is still serving a plain request (and still answers the help ack)
    imagine(fake, rig, "a lighthouse at night")
    assert rig.driver.slash_command(COMMAND_AVATAR, "", ALICE, GENERAL).status == 200
    settle(fake)
    logs.assert_clean()


def test_huge_slash_command_text_is_answered(fake: FakeSlackApi, rig: Rig, logs: AppLogs) -> None:
    root = start(fake, rig, "x" * 10_000)
    assert len(_text(root)) < 12_000
    settle(fake)
    logs.assert_clean()


# odd thread replies ----------------------------------------------------------------------------------------
def test_odd_thread_replies_refine_or_are_ignored(fake: FakeSlackApi, rig: Rig, logs: AppLogs) -> None:
    root_ts = imagine(fake, rig, "a cozy cabin in the woods")
    settle(fake)
    before = len(fake.messages(GENERAL, root_ts))
    ignored = ("", "   ", "<@U0NOBODY>")  # nothing to do: no reply, no error
    for text in ignored:
        rig.driver.user_posts(GENERAL, text, BOB, thread_ts=root_ts)
    settle(fake)
    assert len(fake.messages(GENERAL, root_ts)) == before + len(ignored)
    done = len(replies_done(fake, root_ts))
    for text in (
        "make it \U0001f327\ufe0f\u26a1",
        "&lt;b&gt;bold&lt;/b&gt; &amp; brighter",
        "\u05d1\u05dc\u05d9\u05dc\u05d4",
        CONTROL,
        "--",
        "more fog " * 1200,  # ~10,000 characters
    ):
        rig.driver.user_posts(GENERAL, text, BOB, thread_ts=root_ts)
        done += 1
        wait_for(lambda: len(replies_done(fake, root_ts)) >= done, timeout=20)  # noqa: B023
    assert len(results(fake, root_ts)) == 7
    for message in fake.messages(GENERAL, root_ts)[1:]:
        assert "<b>" not in _text(message)
    settle(fake)
    logs.assert_clean()


def test_a_reply_of_control_characters_is_ignored(fake: FakeSlackApi, rig: Rig, logs: AppLogs) -> None:
    root_ts = imagine(fake, rig, "a cozy cabin in the woods")
    settle(fake)
    before = len(fake.messages(GENERAL, root_ts))
    rig.driver.user_posts(GENERAL, "\x00\x07\x1b", BOB, thread_ts=root_ts)
    settle(fake)
    assert len(fake.messages(GENERAL, root_ts)) == before + 1 and len(results(fake, root_ts)) == 1
    logs.assert_clean()


def test_odd_mentions_and_dms_get_a_reply(fake: FakeSlackApi, rig: Rig, logs: AppLogs) -> None:
    for text in ("", "--", "--seed banana", "\x00"):
        message = rig.driver.user_mentions_bot(GENERAL, text, ALICE)
        reply = wait_for(lambda: fake.messages(GENERAL, str(message["ts"]))[1:])  # noqa: B023
        shown = _text(reply[0])
        assert ("--seed" in shown) if "seed" in text else ("How to use /imagine" in shown), shown
    settle(fake)
    logs.assert_clean()


# malformed interactions and events ----------------------------------------------------------------------
def interaction(**fields: Any) -> Json:
    """A block_actions payload from Alice with `fields` replacing the usual ones."""
    payload: Json = {
        "type": "block_actions",
        "user": {"id": ALICE, "username": "alice", "team_id": TEAM},
        "api_app_id": APP_ID,
        "token": "sandbox-verification-token",
        "trigger_id": "1.2.3",
        "team": {"id": TEAM, "domain": "sandbox"},
        "container": {"type": "message", "message_ts": "1.000001", "channel_id": GENERAL},
        "channel": {"id": GENERAL, "name": "general"},
        "actions": [{"action_id": ACTION_REROLL, "block_id": "b", "type": "button", "value": "1"}],
    }
    payload.update(fields)
    return payload


def test_unknown_and_malformed_actions_never_fail(fake: FakeSlackApi, rig: Rig, logs: AppLogs) -> None:
    driver = rig.driver
    root_ts = imagine(fake, rig, "a cozy cabin in the woods")
    [result] = results(fake, root_ts)
    result_ts = str(result["ts"])
    statuses = [
        driver.block_action("no_such_action", "1:1", ALICE, GENERAL, result_ts).status,
        driver.block_action(ACTION_REROLL, "not-a-thread", ALICE, GENERAL, result_ts).status,
        driver.block_action(ACTION_REROLL, "", ALICE, GENERAL, result_ts).status,
        driver.block_action(ACTION_USE_HIT, "1:" + "9" * 100_000, ALICE, GENERAL, result_ts).status,
        driver.block_action(ACTION_VOTE, "-1:-1", ALICE, GENERAL, result_ts).status,
        driver.block_action(ACTION_FEEDBACK_UP, "1:99999999", ALICE, GENERAL, result_ts).status,
        driver.block_action(ACTION_REROLL, "1", ALICE, GENERAL, None).status,  # no message at all
    ]
    assert all(status < 500 for status in statuses), statuses
    settle(fake)
    assert len(results(fake, root_ts)) == 1  # nothing ran a turn
    notes = [e for e in fake.ephemerals(ALICE) if "out of date" in _text(e)]
    assert notes, "a stale or malformed button tells the clicker what to do"
    logs.assert_clean()


def test_a_button_value_with_a_huge_thread_id_is_out_of_date(
    fake: FakeSlackApi, rig: Rig, logs: AppLogs
) -> None:
    root_ts = imagine(fake, rig, "a cozy cabin in the woods")
    [result] = results(fake, root_ts)
    answer = rig.driver.block_action(ACTION_REROLL, "9" * 40 + ":1", ALICE, GENERAL, str(result["ts"]))
    assert answer.status == 200
    settle(fake)
    assert [e for e in fake.ephemerals(ALICE) if "out of date" in _text(e)]
    logs.assert_clean()


P = pytest.param
MSG = {"type": "message", "user": ALICE, "channel": GENERAL, "ts": "1.1"}


@pytest.mark.parametrize(
    "payload",
    [
        P(interaction(actions=None), id="actions-null"),
        P(interaction(actions=[]), id="actions-empty"),
        P(interaction(actions="reroll"), id="actions-string"),
        P(interaction(actions=[None]), id="action-null"),
        P(interaction(actions=[{"action_id": 5, "value": 7}]), id="action-id-int"),
        P(interaction(actions=[{"action_id": ACTION_REROLL, "value": {"thread": 1}}]), id="value-object"),
        P(interaction(actions=[{"action_id": ACTION_REROLL, "value": ["1"]}]), id="value-list"),
        P(interaction(actions=[{"action_id": ACTION_USE_HIT}]), id="value-missing"),
        P(interaction(container="nope", channel=None, message=[]), id="container-string"),
        P(interaction(user=None), id="user-null"),
        P(interaction(user="U0ALICE", team="T0001"), id="user-string"),
        P(interaction(team=None), id="team-null"),
        P({"type": "block_actions"}, id="block-actions-bare"),
        P({"type": "no_such_type", "actions": []}, id="unknown-type"),
        P(
            {"type": "view_submission", "view": {"callback_id": "no_such_view", "state": {"values": {}}}},
            id="view-unknown-callback-no-type",
        ),
        P(
            {"type": "view_submission", "view": {"type": "modal", "callback_id": "no_such_view"}},
            id="view-unknown-callback",
        ),
        P(
            {"type": "view_submission", "view": {"callback_id": VIEW_EDIT_PROMPT}},
            id="view-no-type",
        ),
        P(
            {"type": "view_submission", "view": {"type": "modal", "callback_id": VIEW_EDIT_PROMPT}},
            id="view-no-state",
        ),
        P({"type": "view_submission", "view": None}, id="view-null"),
        P({"type": "view_closed", "view": {"type": "modal", "callback_id": VIEW_EDIT_PROMPT}}, id="closed"),
        P({"type": "shortcut", "callback_id": "no_such_shortcut"}, id="shortcut"),
        P({"type": "block_suggestion", "action_id": "nothing", "value": "x"}, id="suggestion"),
        P([], id="list"),
        P("just a string", id="not-json"),
        P(None, id="null"),
        P(17, id="number"),
    ],
)
def test_malformed_interaction_payloads_never_5xx(
    shared: tuple[FakeSlackApi, Rig], logs: AppLogs, payload: Any
) -> None:
    fake, rig = shared
    assert raw_interaction(rig.driver, payload) < 500
    settle(fake, quiet=0.15)
    logs.assert_clean()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        P("payload=not-json", FORM, id="payload-not-json"),
        P("payload=%7B", FORM, id="payload-brace"),
        P("payload=", FORM, id="payload-empty"),
        P("nothing=here", FORM, id="form-no-payload"),
        P("", FORM, id="form-empty"),
        P("{not json", "application/json", id="json-broken"),
        P("", "application/json", id="json-empty"),
        P("[]", "application/json", id="json-list"),
        P('"text"', "application/json", id="json-string"),
        P("null", "application/json", id="json-null"),
        P(b"\xff\xfe\x00garbage", "application/json", id="not-utf8"),
        P(b"payload=%FF%FE", FORM, id="payload-not-utf8"),
        P("<xml/>", "text/xml", id="xml"),
    ],
)
def test_bodies_that_are_not_slack_payloads_never_5xx(
    shared: tuple[FakeSlackApi, Rig], logs: AppLogs, body: str | bytes, content_type: str
) -> None:
    fake, rig = shared
    assert rig.driver.post_raw(body, content_type).status < 500
    settle(fake, quiet=0.15)
    logs.assert_clean()


@pytest.mark.parametrize(
    "body",
    [
        P({"type": "event_callback"}, id="no-event"),
        P({"type": "event_callback", "event": None}, id="event-null"),
        P({"type": "event_callback", "event": "message"}, id="event-string"),
        P({"type": "event_callback", "event": []}, id="event-list"),
        P(envelope({}), id="event-empty"),
        P(envelope({"type": None}), id="type-null"),
        P(envelope({"type": 5}), id="type-number"),
        P(envelope({"type": "pin_added", "user": ALICE}), id="unknown-event"),
        P(envelope({"type": "message"}), id="message-bare"),
        P(envelope({**MSG, "channel": None, "thread_ts": "1.0"}), id="reply-no-channel"),
        P(envelope({**MSG, "thread_ts": "1.0"}), id="reply-unknown-thread"),
        P(envelope({**MSG, "channel_type": "im"}), id="dm-no-text"),
        P(envelope({**MSG, "ts": 5, "thread_ts": 4, "text": 3}), id="message-numbers"),
        P(envelope({**MSG, "ts": "1.1", "text": "x" * 10_000, "channel_type": "im"}), id="dm-10k"),
        P(envelope({**MSG, "user": {"id": ALICE}, "channel": [GENERAL]}), id="message-objects"),
        P(envelope({"type": "app_mention", "user": ALICE}), id="mention-bare"),
        P(envelope({**MSG, "type": "app_mention", "text": None}), id="mention-text-null"),
        P(envelope({"type": "reaction_added", "reaction": "one"}), id="reaction-bare"),
        P(envelope({"type": "reaction_added", "reaction": "one", "user": ALICE, "item": "x"}), id="item-str"),
        P(
            envelope({"type": "reaction_added", "reaction": 1, "user": ALICE, "item": {"type": "message"}}),
            id="reaction-number",
        ),
        P(envelope({"type": "reaction_removed", "reaction": None, "user": None, "item": None}), id="nulls"),
        P(envelope({"type": "app_home_opened"}), id="home-bare"),
        P(envelope({"type": "app_home_opened", "user": ALICE, "tab": "nonsense"}), id="home-odd-tab"),
        P(
            envelope({"type": "app_home_opened", "user": 17, "tab": "home"}),
            id="home-user-number",
        ),
        P(envelope(MSG, team_id=None), id="team-null"),
        P(envelope(MSG, event_id=None), id="event-id-null"),
        P({"type": "no_such_envelope"}, id="unknown-envelope"),
        P(
            {"type": "app_rate_limited", "team_id": TEAM, "minute_rate_limited": 1518467820},
            id="rate-limited",
        ),
    ],
)
def test_malformed_and_unknown_events_never_5xx(
    shared: tuple[FakeSlackApi, Rig], logs: AppLogs, body: Json
) -> None:
    fake, rig = shared
    assert raw_event(rig.driver, body) < 500
    settle(fake, quiet=0.15)
    logs.assert_clean()


def test_the_app_keeps_serving_after_malformed_input(fake: FakeSlackApi, rig: Rig) -> None:
    driver = rig.driver
    raw_interaction(driver, "not json")
    raw_event(driver, {"type": "event_callback", "event": None})
    driver.post_raw(b"\xff", "application/json")
    driver.post_raw("payload=not-json", FORM, signed=False)
    driver.block_action("no_such_action", "x")
    root_ts = imagine(fake, rig, "a lighthouse at night")
    assert results(fake, root_ts)
