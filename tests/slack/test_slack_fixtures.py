"""Slack's own request bodies (from its SDKs' test suites) replayed against the served app.

`../shared/data/slack-fixtures/requests.json` holds real bodies Slack sends; each is replayed with its ids
rewritten into our sandbox workspace (team, users, channel, and a thread the bot started), signed like
Slack signs (the unsigned `ssl_check` as Slack sends it). The expected status is what Bolt itself answers:
a bare Bolt app with the same signing secret and no-op listeners for every command, event, action and view
our app registers, dispatching the same bytes. The sandbox answers `auth.test` and the file upload in the
shape of the recorded real answers (`responses.json`), which are leaner than the sandbox's.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from slack_bolt import App, BoltRequest
from slack_bolt.authorization import AuthorizeResult

from bot.slack.handlers import register_listeners
from bot.slack.services import Services
from retrieval.search import Retriever
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_driver import sign
from sandbox.slack_models import ALICE, BOB, BOT_USER_ID, GENERAL
from tests.conftest import SHARED_DATA
from tests.slack.slack_rig import SECRET, TEAM, Rig, block_ids, imagine, results, serve, wait_for

FIXTURES = SHARED_DATA / "slack-fixtures"
PARTNER_ORG = "T0PARTNER"  # a Slack Connect partner: events from its users carry its team_id
Json = dict[str, Any]


def _load(name: str) -> Any:
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"{path} is missing (the shared data sits beside the repo)")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def fixtures() -> dict[str, Json]:
    """The recorded requests by name."""
    return {entry["name"]: entry for entry in _load("requests.json")}


@pytest.fixture
def shaped(fake: FakeSlackApi) -> FakeSlackApi:
    """The sandbox answering auth.test and the upload steps like the recorded real answers."""
    answers = _load("responses.json")
    fake.answer_like(
        {
            "auth.test": answers["auth.test"]["body"],
            "files.getUploadURLExternal": answers["files.getUploadURLExternal"]["body"],
            "files.completeUploadExternal": answers["files.completeUploadExternal"]["body"],
            "upload": answers["upload"]["body"],
        }
    )
    return fake


@pytest.fixture
def replay_rig(shaped: FakeSlackApi, retriever: Retriever, tmp_path: Path) -> Iterator[Rig]:
    """The served app (guard + Bolt) over the shaped sandbox."""
    with serve(shaped, retriever, tmp_path) as rig:
        yield rig


# --- rewriting ids into our workspace -----------------------------------------------------------------
def rewrite(value: Any, ids: dict[str, str]) -> Any:
    """A deep copy with every string equal to a key of `ids` (or holding one, as in mentions) replaced."""
    if isinstance(value, dict):
        return {k: rewrite(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [rewrite(v, ids) for v in value]
    if isinstance(value, str):
        if value in ids:
            return ids[value]
        for old, new in ids.items():
            value = value.replace(f"<@{old}>", f"<@{new}>")
        return value
    return value


def id_map(thread_ts: str, message_ts: str) -> dict[str, str]:
    """The fixtures' ids -> ours: every installed team is ours, users are Alice and Bob, one channel."""
    teams = {t: TEAM for t in ("T111", "T_INSTALLED", "T-auth", "T123456", "T0G9PQBBK")}
    return {
        **teams,
        "T_SOURCE": PARTNER_ORG,
        "T222": PARTNER_ORG,
        "W111": BOT_USER_ID,  # the fixtures' installed bot user (authorizations, mentions)
        "W222": ALICE,
        "U111": ALICE,
        "U222": BOB,
        "W23456789": BOB,
        "C111": GENERAL,
        "C222": GENERAL,
        "C0G9QF9GZ": GENERAL,
        "1726133698.626339": thread_ts,  # message_thread_reply's thread
        "1633663824.000500": thread_ts,  # message_thread_broadcast's thread
        "1599529504.000400": message_ts,  # the reacted-to message
    }


def body_of(entry: Json, ids: dict[str, str]) -> tuple[bytes, str]:
    """The request body (rewritten) and its content type, as Slack would send it."""
    body = entry["body"]
    if entry["kind"] == "form":
        fields = [(k, ids.get(v, v)) for k, v in parse_qsl(body, keep_blank_values=True)]
        return urlencode(fields).encode(), "application/x-www-form-urlencoded"
    if entry["kind"] == "payload":
        return urlencode(
            {"payload": json.dumps(rewrite(body, ids))}
        ).encode(), "application/x-www-form-urlencoded"
    if isinstance(body, dict) and "envelope" in body:  # an event its source test wraps in an envelope
        body = {**body["envelope"], "event": body["event"]}
    return json.dumps(rewrite(body, ids)).encode(), "application/json"


def headers_for(body: bytes, content_type: str, signed: bool) -> dict[str, str]:
    """Slack's headers for `body`: content type, and the v0 signature unless it is the unsigned probe."""
    headers = {"Content-Type": content_type}
    if signed:
        stamp = int(time.time())
        headers |= {"X-Slack-Request-Timestamp": str(stamp), "X-Slack-Signature": sign(SECRET, body, stamp)}
    return headers


# --- what Bolt itself answers -------------------------------------------------------------------------
def bare_app() -> App:
    """A Bolt app with no guard and no network (authorize answers locally)."""
    return App(
        signing_secret=SECRET,
        authorize=lambda **_: AuthorizeResult(enterprise_id=None, team_id=TEAM, bot_token="xoxb-ref"),
        process_before_response=True,
    )


def reference_app(services: Services) -> App:
    """A bare Bolt app with every command, event, action and view our app registers, as no-op listeners."""
    registered = register_listeners(bare_app(), services)
    app = bare_app()

    def noop(ack: Callable[[], None]) -> None:
        ack()

    for name in registered.commands:
        app.command(name)(noop)
    for name in registered.events:
        app.event(name)(noop)
    for name in registered.actions:
        app.action(name)(noop)
    for name in registered.views:
        app.view(name)(noop)
    return app


def bolt_status(app: App, body: bytes, headers: dict[str, str]) -> int:
    """The status Bolt answers for these bytes."""
    request = BoltRequest(body=body.decode(), headers={k.lower(): [v] for k, v in headers.items()})
    return app.dispatch(request).status


# --- the replay ---------------------------------------------------------------------------------------
def test_every_recorded_request_gets_what_bolt_answers(
    fixtures: dict[str, Json], shaped: FakeSlackApi, replay_rig: Rig
) -> None:
    root_ts = imagine(shaped, replay_rig, "a lighthouse in a storm")
    ids = id_map(root_ts, results(shaped, root_ts)[0]["ts"])
    reference = reference_app(replay_rig.services)
    answered = {}
    for name, entry in fixtures.items():
        body, content_type = body_of(entry, ids)
        headers = headers_for(body, content_type, signed=name != "ssl_check_unsigned")
        status = replay_rig.driver.post_raw(body, content_type, signed=False, headers=headers).status
        answered[name] = (status, bolt_status(reference, body, headers))
    assert len(answered) == 31
    assert {name: pair for name, pair in answered.items() if pair[0] != pair[1]} == {}
    assert answered["ssl_check_unsigned"][0] == 200 and answered["interactive_message"][0] == 404
    assert all(status < 500 for status, _ in answered.values())


def test_recorded_replies_refine_also_when_sent_to_the_channel_or_from_a_partner_org(
    fixtures: dict[str, Json], shaped: FakeSlackApi, replay_rig: Rig
) -> None:
    root_ts = imagine(shaped, replay_rig, "a red fox in the snow")
    ids = id_map(root_ts, results(shaped, root_ts)[0]["ts"])
    sends: list[tuple[str, Callable[[Json], Json]]] = [
        ("message_thread_broadcast", lambda body: body),  # "Also send to channel"
        ("message_thread_reply", lambda body: body),
        ("message_thread_reply", slack_connect),  # a Slack Connect channel: the envelope is the partner's
    ]
    for turn, (name, variant) in enumerate(sends, start=2):
        entry = copy.deepcopy(fixtures[name])
        body, content_type = body_of(entry, ids)
        sent = variant(json.loads(body))
        sent["event"] |= {"text": f"make it watercolor {turn}", "ts": shaped_ts(shaped), "user": ALICE}
        sent["event_id"] = f"EvReplay{turn}"
        raw = json.dumps(sent).encode()
        headers = headers_for(raw, content_type, signed=True)
        assert replay_rig.driver.post_raw(raw, content_type, signed=False, headers=headers).status == 200
        wait_for(lambda turn=turn: len(results(shaped, root_ts)) == turn)  # type: ignore[misc]
    record = replay_rig.services.threads.find_thread_by_ref(thread_ref(root_ts))
    assert record is not None
    _, turns = replay_rig.services.conversation.history(TEAM, record.id)
    assert [t.kind for t in turns] == ["start", "refine", "refine", "refine"]


def test_one_already_reacted_does_not_stop_the_other_vote_emoji(
    shaped: FakeSlackApi, replay_rig: Rig
) -> None:
    shaped.fail_next("reactions.add", error="already_reacted", status=200, times=1)
    assert replay_rig.driver.slash_command("/avatar", "friendly robots --n 4", ALICE, GENERAL).status == 200
    roots = wait_for(lambda: [m for m in shaped.messages(GENERAL) if "imagined" in m.get("text", "")])
    root_ts = str(roots[-1]["ts"])
    sheets = wait_for(
        lambda: [m for m in shaped.messages(GENERAL, root_ts) if "brainstorm_actions" in block_ids(m)]
    )
    wait_for(lambda: len(shaped.calls_to("reactions.add")) == 4)
    message = shaped.message(GENERAL, sheets[0]["ts"]) or {}
    assert [r["name"] for r in message.get("reactions", [])] == ["two", "three", "four"]


def test_the_image_posts_with_slacks_lean_upload_answers(shaped: FakeSlackApi, replay_rig: Rig) -> None:
    """files.completeUploadExternal answers only id/name/permalink and the upload URL an empty body."""
    root_ts = imagine(shaped, replay_rig, "a cozy cabin in the woods")
    completed = shaped.calls_to("files.completeUploadExternal")
    assert completed and set(completed[-1].response["files"][0]) == {"id", "name", "permalink"}
    assert shaped.calls_to("upload")[-1].response is None  # an empty body, as Slack's upload URL answers
    assert len(results(shaped, root_ts)) == 1 and len(shaped.uploads()) == 1


def slack_connect(body: Json) -> Json:
    """The same reply as a Slack Connect partner's user sends it: the envelope's team is the partner's."""
    body = copy.deepcopy(body)
    body["team_id"] = PARTNER_ORG
    body["event"] |= {"team": PARTNER_ORG, "user_team": PARTNER_ORG, "source_team": PARTNER_ORG}
    body["authorizations"] = [{"team_id": TEAM, "user_id": BOT_USER_ID, "is_bot": True}]
    return body


def shaped_ts(fake: FakeSlackApi) -> str:
    """A fresh message ts from the sandbox clock."""
    with fake.state() as ws:
        return ws.next_ts()


def thread_ref(root_ts: str) -> Any:
    """Our thread in the sandbox's general channel."""
    from bot.engine.ports import ThreadRef

    return ThreadRef(TEAM, GENERAL, root_ts)
