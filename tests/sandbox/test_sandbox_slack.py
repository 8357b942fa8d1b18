"""The Slack sandbox: FakeSlackApi behind the real slack_sdk WebClient; SlackDriver against real Bolt."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from slack_bolt import Ack, App, Respond, Say
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from bot.slack.ids import ACTION_REROLL, COMMAND_IMAGINE, VIEW_EDIT_PROMPT
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_driver import SlackDriver, sign
from sandbox.slack_models import ALICE, ALICE_DM, BOB, BOT_USER_ID, CAROL, GENERAL, PRIVATE, RANDOM

SECRET = "sandbox-signing-secret"
TS = re.compile(r"^\d{10}\.\d{6}$")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3
T = TypeVar("T")


def wait_for(probe: Callable[[], T], timeout: float = 5.0) -> T:
    """Poll until `probe` returns something truthy (Bolt runs listeners after the ack)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            assert result, "timed out waiting"
            return result
        time.sleep(0.01)


@pytest.fixture
def fake() -> Iterator[FakeSlackApi]:
    """A started sandbox workspace."""
    with FakeSlackApi() as api:
        yield api


@pytest.fixture
def client(fake: FakeSlackApi) -> WebClient:
    """The real slack_sdk client pointed at the sandbox with the default team's bot token."""
    return WebClient(token=fake.bot_token(), base_url=fake.api_url)


def _error(call: Callable[[], Any]) -> SlackApiError:
    """The SlackApiError a client call raises."""
    with pytest.raises(SlackApiError) as caught:
        call()
    return caught.value


def _code(call: Callable[[], Any]) -> str:
    """The Slack error code a client call fails with."""
    return str(_error(call).response["error"])


# Web API through the real WebClient ----------------------------------------------------------------------
def test_post_message_into_a_thread_shows_in_conversations_replies(
    fake: FakeSlackApi, client: WebClient
) -> None:
    parent = client.chat_postMessage(channel=GENERAL, text="Imagining *a red fox*")
    assert parent["ok"] and parent["channel"] == GENERAL and TS.match(parent["ts"])
    assert parent["message"]["bot_id"] == "B0BOT" and parent["message"]["user"] == BOT_USER_ID
    reply = client.chat_postMessage(channel=GENERAL, text="here it is", thread_ts=parent["ts"])
    assert float(reply["ts"]) > float(parent["ts"])
    assert reply["message"]["thread_ts"] == parent["ts"]

    thread = client.conversations_replies(channel=GENERAL, ts=parent["ts"])["messages"]
    assert [m["text"] for m in thread] == ["Imagining *a red fox*", "here it is"]
    assert thread[0]["reply_count"] == 1 and thread[0]["latest_reply"] == reply["ts"]
    # a reply's ts also finds the thread; a human reply joins it
    fake.post_as_user(GENERAL, "make it snowy", ALICE, thread_ts=reply["ts"])
    assert [m["text"] for m in fake.messages(GENERAL, parent["ts"])][-1] == "make it snowy"
    assert [m["text"] for m in fake.messages(GENERAL)] == ["Imagining *a red fox*"]
    assert _code(lambda: client.conversations_replies(channel=GENERAL, ts="1.000001")) == "thread_not_found"


def test_update_and_delete_edit_the_stored_messages(fake: FakeSlackApi, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=GENERAL, text="working…", blocks=[_section("working…")])
    reply = client.chat_postMessage(channel=GENERAL, text="draft", thread_ts=parent["ts"])
    updated = client.chat_update(channel=GENERAL, ts=reply["ts"], text="final prompt")
    assert updated["text"] == "final prompt" and updated["ts"] == reply["ts"]
    stored = fake.message(GENERAL, reply["ts"])
    assert stored is not None and stored["text"] == "final prompt" and "edited" in stored

    client.chat_update(channel=GENERAL, ts=parent["ts"], text="done")  # omitted blocks are kept
    parent_now = fake.message(GENERAL, parent["ts"])
    assert parent_now is not None and parent_now["blocks"][0]["text"]["text"] == "working…"

    human = fake.post_as_user(GENERAL, "hi", ALICE)
    assert (
        _code(lambda: client.chat_update(channel=GENERAL, ts=human["ts"], text="x")) == "cant_update_message"
    )
    assert _code(lambda: client.chat_delete(channel=GENERAL, ts="1.000001")) == "message_not_found"
    client.chat_delete(channel=GENERAL, ts=reply["ts"])
    assert fake.message(GENERAL, reply["ts"]) is None
    client.chat_postMessage(channel=GENERAL, text="another", thread_ts=parent["ts"])
    client.chat_delete(channel=GENERAL, ts=parent["ts"])  # a parent with replies leaves a tombstone
    tomb = fake.messages(GENERAL, parent["ts"])[0]
    assert tomb["subtype"] == "tombstone" and tomb["reply_count"] == 1


def test_post_ephemeral_is_per_user_and_not_in_history(fake: FakeSlackApi, client: WebClient) -> None:
    answer = client.chat_postEphemeral(channel=GENERAL, user=ALICE, text="only you can see this")
    assert TS.match(answer["message_ts"])
    assert [e["text"] for e in fake.ephemerals(ALICE)] == ["only you can see this"]
    assert fake.ephemerals(BOB) == [] and fake.messages(GENERAL) == []
    assert _code(lambda: client.chat_postEphemeral(channel=PRIVATE, user=CAROL, text="x")) == (
        "user_not_in_channel"
    )


def test_channels_the_bot_is_not_in(fake: FakeSlackApi, client: WebClient) -> None:
    assert _code(lambda: client.chat_postMessage(channel=RANDOM, text="x")) == "not_in_channel"
    info = client.conversations_info(channel=RANDOM)["channel"]
    assert info["is_member"] is False and info["name"] == "random"
    fake.set_member(PRIVATE, BOT_USER_ID, present=False)
    assert _code(lambda: client.chat_postMessage(channel=PRIVATE, text="x")) == "channel_not_found"
    fake.set_member(RANDOM, BOT_USER_ID)
    assert client.chat_postMessage(channel=RANDOM, text="now I can")["ok"]
    dm = client.chat_postMessage(channel=ALICE, text="posting to a user id opens the IM")
    assert dm["channel"] == ALICE_DM


def test_files_upload_v2_into_a_thread_end_to_end(fake: FakeSlackApi, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=GENERAL, text="a red fox")
    response = client.files_upload_v2(
        channel=GENERAL,
        thread_ts=parent["ts"],
        content=PNG,
        filename="fox.png",
        title="a red fox",
        alt_txt="a red fox in snow",
        initial_comment="Here is your image",
    )
    assert [c.method for c in fake.calls[-3:]] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    assert fake.calls_to("upload")[0].params["size"] == len(PNG)
    assert fake.calls_to("upload")[0].headers.get("authorization") is None
    file = response["file"]
    assert file["name"] == "fox.png" and file["title"] == "a red fox" and file["size"] == len(PNG)
    share = file["shares"]["public"][GENERAL][0]
    assert share["thread_ts"] == parent["ts"]

    thread = fake.messages(GENERAL, parent["ts"])
    assert thread[-1]["ts"] == share["ts"] and thread[-1]["text"] == "Here is your image"
    assert thread[-1]["files"][0]["id"] == file["id"]
    assert client.files_info(file=file["id"])["file"]["alt_txt"] == "a red fox in snow"
    [upload] = fake.uploads()
    assert upload["data"] == PNG and upload["mimetype"] == "image/png"

    authed = urllib.request.Request(file["url_private"], headers={"Authorization": f"Bearer {client.token}"})
    with urllib.request.urlopen(authed, timeout=5) as got:
        assert got.read() == PNG
    with urllib.request.urlopen(file["url_private"], timeout=5) as got:  # no token: Slack's HTML login page
        assert got.headers.get_content_type() == "text/html"


def test_a_person_shares_a_file_in_a_thread(fake: FakeSlackApi, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=GENERAL, text="a red fox")
    shared = fake.post_file_as_user(GENERAL, "sketch.png", PNG, ALICE, "my sketch", str(parent["ts"]))
    assert (shared["subtype"], shared["user"], shared["thread_ts"]) == ("file_share", ALICE, parent["ts"])
    [file] = shared["files"]
    assert (file["name"], file["mimetype"], file["size"], file["user"]) == (
        "sketch.png",
        "image/png",
        len(PNG),
        ALICE,
    )
    assert client.files_info(file=file["id"])["file"]["shares"]["public"][GENERAL][0]["ts"] == shared["ts"]
    assert fake.messages(GENERAL, str(parent["ts"]))[-1]["files"][0]["id"] == file["id"]
    authed = urllib.request.Request(
        file["url_private_download"], headers={"Authorization": f"Bearer {client.token}"}
    )
    with urllib.request.urlopen(authed, timeout=5) as got:
        assert got.read() == PNG
    fake.add_team("T0OTHER")
    other = urllib.request.Request(
        file["url_private"], headers={"Authorization": f"Bearer {fake.bot_token('T0OTHER')}"}
    )
    with urllib.request.urlopen(other, timeout=5) as got:  # another workspace's token: the sign-in page
        assert got.headers.get_content_type() == "text/html"
    assert [c.status for c in fake.calls_to("file_download")] == [200, 200]


def test_upload_response_without_shares_like_real_slack(fake: FakeSlackApi, client: WebClient) -> None:
    fake.set_upload_shares_visible(False)
    response = client.files_upload_v2(channel=GENERAL, content=PNG, filename="fox.png")
    assert response["file"]["shares"] == {}
    assert GENERAL in client.files_info(file=response["file"]["id"])["file"]["shares"]["public"]


def test_reactions_add_get_remove(fake: FakeSlackApi, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=GENERAL, text="vote")["ts"]
    client.reactions_add(channel=GENERAL, timestamp=ts, name="hourglass_flowing_sand")
    assert (
        _code(lambda: client.reactions_add(channel=GENERAL, timestamp=ts, name="hourglass_flowing_sand"))
        == "already_reacted"
    )
    fake.react_as_user(GENERAL, ts, "hourglass_flowing_sand", ALICE)
    got = client.reactions_get(channel=GENERAL, timestamp=ts)["message"]["reactions"]
    assert got == [{"name": "hourglass_flowing_sand", "users": [BOT_USER_ID, ALICE], "count": 2}]
    client.reactions_remove(channel=GENERAL, timestamp=ts, name="hourglass_flowing_sand")
    assert _code(lambda: client.reactions_remove(channel=GENERAL, timestamp=ts, name="x")) == "no_reaction"
    assert _code(lambda: client.reactions_add(channel=GENERAL, timestamp=ts, name=":+1:")) == "invalid_name"


def test_views_open_update_publish(fake: FakeSlackApi, client: WebClient) -> None:
    trigger = fake.issue_trigger(ALICE)
    modal = _modal("Edit prompt")
    opened = client.views_open(trigger_id=trigger, view=modal)["view"]
    assert opened["id"].startswith("V") and opened["callback_id"] == VIEW_EDIT_PROMPT and opened["hash"]
    assert _code(lambda: client.views_open(trigger_id=trigger, view=modal)) == "exchanged_trigger_id"
    assert _code(lambda: client.views_open(trigger_id="123.456.abc", view=modal)) == "invalid_trigger_id"
    with fake.state() as ws:
        ws.trigger_ttl = -1.0  # every trigger is now older than its lifetime
    assert (
        _code(lambda: client.views_open(trigger_id=fake.issue_trigger(ALICE), view=modal))
        == "expired_trigger_id"
    )

    updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view=_modal("Saved"))["view"]
    assert updated["id"] == opened["id"] and updated["title"]["text"] == "Saved"
    stale = lambda: client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal)  # noqa: E731
    assert _code(stale) == "hash_conflict"
    too_long = _error(lambda: client.views_update(view_id=opened["id"], view=_modal("x" * 25)))
    assert too_long.response["error"] == "invalid_arguments"
    assert "json-pointer:/view/title/text" in too_long.response["response_metadata"]["messages"][0]

    home = {"type": "home", "blocks": [_section("Your recent prompts")]}
    client.views_publish(user_id=ALICE, view=home)
    published = fake.home_view(ALICE)
    assert published is not None and published["blocks"][0]["text"]["text"] == "Your recent prompts"


def test_assistant_threads_calls_are_recorded(fake: FakeSlackApi, client: WebClient) -> None:
    ts = fake.post_as_user(ALICE_DM, "a castle at dusk", ALICE)["ts"]
    client.assistant_threads_setStatus(
        channel_id=ALICE_DM, thread_ts=ts, status="is imagining…", loading_messages=["Searching prompts…"]
    )
    prompts = [{"title": "Make it moody", "message": "darker, moody lighting"}]
    client.assistant_threads_setSuggestedPrompts(channel_id=ALICE_DM, thread_ts=ts, prompts=prompts)
    client.assistant_threads_setTitle(channel_id=ALICE_DM, thread_ts=ts, title="Castle at dusk")
    state = fake.assistant_state(ALICE_DM, ts)
    assert state["status"] == "is imagining…" and state["loading_messages"] == ["Searching prompts…"]
    assert state["prompts"] == prompts and state["title"] == "Castle at dusk"
    assert fake.calls_to("assistant.threads.setStatus")[0].params["thread_ts"] == ts

    client.chat_postMessage(channel=ALICE_DM, thread_ts=ts, text="here is a prompt")
    assert "status" not in fake.assistant_state(ALICE_DM, ts)  # the app's reply clears the status
    five = prompts * 5
    error = _error(
        lambda: client.assistant_threads_setSuggestedPrompts(channel_id=ALICE_DM, thread_ts=ts, prompts=five)
    )
    assert error.response["error"] == "invalid_arguments"


def test_tokens_are_checked_per_team(fake: FakeSlackApi) -> None:
    wrong = WebClient(token="xoxb-not-a-token", base_url=fake.api_url)
    assert _code(wrong.auth_test) == "invalid_auth"
    assert _code(WebClient(base_url=fake.api_url).auth_test) == "not_authed"
    other = fake.add_team("T0002", "Other Co")
    other_client = WebClient(token=other.bot_token, base_url=fake.api_url)
    assert other_client.auth_test()["team_id"] == "T0002"
    assert _code(lambda: other_client.chat_postMessage(channel=GENERAL, text="x")) == "channel_not_found"
    assert fake.calls_to("auth.test")[-1].team_id == "T0002"
    fake.revoke(other.bot_token)
    assert _code(other_client.auth_test) == "token_revoked"
    assert all("authorization" not in c.headers for c in fake.calls)


def test_ratelimited_call_is_retried_after_retry_after(fake: FakeSlackApi) -> None:
    fake.fail_next("chat.postMessage", retry_after=1)
    bare = WebClient(token=fake.bot_token(), base_url=fake.api_url)
    error = _error(lambda: bare.chat_postMessage(channel=GENERAL, text="x"))
    assert error.response.status_code == 429 and error.response["error"] == "ratelimited"
    assert error.response.headers["Retry-After"] == "1"

    fake.fail_next("chat.postMessage", retry_after=1)
    patient = WebClient(
        token=fake.bot_token(),
        base_url=fake.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    started = time.monotonic()
    assert patient.chat_postMessage(channel=GENERAL, text="after the wait")["ok"]
    assert time.monotonic() - started >= 1.0
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 429, 200]


def test_scripted_error_faults(fake: FakeSlackApi, client: WebClient) -> None:
    fake.fail_next("chat.postMessage", error="channel_not_found", status=200, times=2)
    for _ in range(2):
        assert _code(lambda: client.chat_postMessage(channel=GENERAL, text="x")) == "channel_not_found"
    assert client.chat_postMessage(channel=GENERAL, text="x")["ok"]


def test_users_info_has_display_names(client: WebClient) -> None:
    alice = client.users_info(user=ALICE)["user"]
    assert alice["profile"]["display_name"] == "Alice" and alice["real_name"] == "Alice Liddell"
    carol = client.users_info(user=CAROL)["user"]
    assert carol["profile"]["display_name"] == "" and carol["profile"]["real_name"] == "Carol Danvers"
    assert client.users_info(user=BOT_USER_ID)["user"]["is_bot"] is True
    assert _code(lambda: client.users_info(user="U0NOBODY")) == "user_not_found"


def test_invalid_blocks_are_refused_with_slack_wording(client: WebClient) -> None:
    image = {"type": "image", "image_url": "https://example.invalid/fox.png"}
    error = _error(lambda: client.chat_postMessage(channel=GENERAL, text="x", blocks=[image]))
    assert error.response["error"] == "invalid_blocks"
    assert error.response["errors"] == ["missing required field: alt_text [json-pointer:/blocks/0]"]
    with pytest.warns(UserWarning, match="`text` argument is missing"):
        assert _code(lambda: client.chat_postMessage(channel=GENERAL)) == "no_text"


def test_form_and_json_bodies_and_form_token(fake: FakeSlackApi) -> None:
    blocks = json.dumps([_section("from a form")])
    form = urlencode({"token": fake.bot_token(), "channel": GENERAL, "text": "t", "blocks": blocks}).encode()
    with urllib.request.urlopen(fake.api_url + "chat.postMessage", data=form, timeout=5) as got:
        answer = json.loads(got.read())
    assert answer["ok"] and answer["message"]["blocks"][0]["text"]["text"] == "from a form"
    assert "token" not in fake.calls_to("chat.postMessage")[0].params
    body = json.dumps({"token": fake.bot_token(), "channel": GENERAL, "text": "t"}).encode()
    request = urllib.request.Request(
        fake.api_url + "chat.postMessage", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as got:  # Slack ignores a token inside JSON
        assert json.loads(got.read())["error"] == "not_authed"


def test_response_url_posts(fake: FakeSlackApi) -> None:
    url = fake.new_response_url(RANDOM, ALICE)  # works where the bot is not a member
    hook = WebhookClient(url)
    assert hook.send(text="only for you").body == "ok"
    assert hook.send(text="for everyone", response_type="in_channel").status_code == 200
    assert [e["text"] for e in fake.ephemerals(ALICE)] == ["only for you"]
    assert [m["text"] for m in fake.messages(RANDOM)] == ["for everyone"]
    assert [r["payload"]["text"] for r in fake.responses(url)] == ["only for you", "for everyone"]
    for _ in range(3):
        hook.send(text="again")
    assert hook.send(text="sixth").status_code == 404  # five uses per response_url


def test_oauth_v2_access(fake: FakeSlackApi) -> None:
    team = fake.add_team("T0003", "Installer Co")
    fake.register_oauth_client("111.222", "shh")
    code = fake.oauth_code("T0003", ALICE, ["commands", "chat:write"])
    anonymous = WebClient(base_url=fake.api_url)
    granted = anonymous.oauth_v2_access(client_id="111.222", client_secret="shh", code=code)
    assert granted["access_token"] == team.bot_token and granted["team"]["id"] == "T0003"
    assert granted["scope"] == "commands,chat:write" and granted["authed_user"]["id"] == ALICE
    again = lambda: anonymous.oauth_v2_access(client_id="111.222", client_secret="shh", code=code)  # noqa: E731
    assert _code(again) == "invalid_code"
    bad = lambda: anonymous.oauth_v2_access(client_id="111.222", client_secret="no", code="x")  # noqa: E731
    assert _code(bad) == "bad_client_secret"


# the driver against a real Bolt app -----------------------------------------------------------------------
class _QuietWSGIHandler(WSGIRequestHandler):
    """wsgiref request handler that does not log to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class BoltRig:
    """A Bolt app on wsgiref, its driver and what its listeners saw."""

    app: App
    driver: SlackDriver
    seen: list[tuple[str, Any]] = field(default_factory=list)

    def saw(self, kind: str) -> list[Any]:
        """What listeners of one kind recorded."""
        return [v for k, v in list(self.seen) if k == kind]


def _bolt_app(fake: FakeSlackApi, seen: list[tuple[str, Any]]) -> App:
    """A small Bolt app with one listener per kind of request the driver sends."""
    app = App(signing_secret=SECRET, client=WebClient(token=fake.bot_token(), base_url=fake.api_url))

    @app.command(COMMAND_IMAGINE)
    def imagine(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        ack(f"Imagining *{command['text']}*…")
        seen.append(("command", command))
        client.chat_postMessage(channel=command["channel_id"], text=f"idea: {command['text']}")

    @app.action(ACTION_REROLL)
    def reroll(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        seen.append(("action", body))
        respond(text="rerolling…", replace_original=False)
        client.views_open(trigger_id=body["trigger_id"], view=_modal("Edit prompt"))

    @app.view(VIEW_EDIT_PROMPT)
    def edited(ack: Ack, view: dict[str, Any]) -> None:
        ack()
        seen.append(("view", view))

    @app.event("message")
    def message(event: dict[str, Any], say: Say) -> None:
        seen.append(("message", event))
        say(text=f"noted: {event['text']}", thread_ts=event.get("thread_ts") or event["ts"])

    @app.event("app_mention")
    def mention(event: dict[str, Any]) -> None:
        seen.append(("app_mention", event))

    @app.event("reaction_added")
    def reaction(event: dict[str, Any]) -> None:
        seen.append(("reaction", event))

    @app.event("app_home_opened")
    def home(event: dict[str, Any], client: WebClient) -> None:
        seen.append(("home", event))
        client.views_publish(user_id=event["user"], view={"type": "home", "blocks": [_section("hi")]})

    return app


@pytest.fixture
def rig(fake: FakeSlackApi) -> Iterator[BoltRig]:
    """A real Bolt app served over HTTP on 127.0.0.1 with a driver pointed at it."""
    seen: list[tuple[str, Any]] = []
    app = _bolt_app(fake, seen)
    server: WSGIServer = make_server(
        "127.0.0.1", 0, SlackRequestHandler(app), handler_class=_QuietWSGIHandler
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        yield BoltRig(app, SlackDriver(url, SECRET, fake), seen)
    finally:
        server.shutdown()
        server.server_close()


def test_signed_slash_command_is_acked_and_its_post_reaches_the_fake(
    fake: FakeSlackApi, rig: BoltRig
) -> None:
    status, body = rig.driver.slash_command(COMMAND_IMAGINE, "a red fox in snow", ALICE, RANDOM)
    assert status == 200 and "a red fox in snow" in body
    [command] = wait_for(lambda: rig.saw("command"))
    assert command["response_url"].startswith(fake.url + "response/") and command["trigger_id"]
    assert command["channel_name"] == "random" and command["user_name"] == "alice"
    # the listener posts into #random, where the bot is not a member: Slack says not_in_channel
    post = wait_for(lambda: fake.calls_to("chat.postMessage"))[0]
    assert post.response == {"ok": False, "error": "not_in_channel"}
    rig.driver.slash_command(COMMAND_IMAGINE, "a castle", ALICE, GENERAL)
    wait_for(lambda: [m for m in fake.messages(GENERAL) if m["text"] == "idea: a castle"])


def test_forged_signature_and_stale_timestamp_get_401(rig: BoltRig) -> None:
    assert rig.driver.forged().slash_command(COMMAND_IMAGINE, "x").status == 401
    assert rig.driver.stale(600).slash_command(COMMAND_IMAGINE, "x").status == 401
    assert rig.driver.stale(60).slash_command(COMMAND_IMAGINE, "fresh enough").status == 200
    assert [d.status for d in rig.driver.deliveries] == [401, 401, 200]
    assert sign("s", "body", 1) == sign("s", "body", 1) != sign("s", "body", 2)


def test_block_action_and_view_submission_reach_their_listeners(fake: FakeSlackApi, rig: BoltRig) -> None:
    client = WebClient(token=fake.bot_token(), base_url=fake.api_url)
    actions = {"type": "actions", "elements": [_button("Reroll", ACTION_REROLL, "t1:2")]}
    parent = client.chat_postMessage(channel=GENERAL, text="prompt", blocks=[_section("prompt"), actions])
    status, _ = rig.driver.block_action(ACTION_REROLL, "t1:2", ALICE, GENERAL, parent["ts"])
    assert status == 200
    [body] = wait_for(lambda: rig.saw("action"))
    assert body["actions"][0]["value"] == "t1:2" and body["actions"][0]["block_id"] == "sbx01"
    assert body["message"]["ts"] == parent["ts"] and body["container"]["channel_id"] == GENERAL
    wait_for(lambda: fake.ephemerals(ALICE))
    assert fake.ephemerals(ALICE)[0]["text"] == "rerolling…"
    [modal] = wait_for(lambda: fake.views(ALICE))  # the trigger_id from the action opened a modal

    values = {"prompt": {"prompt_input": {"type": "plain_text_input", "value": "a fox, watercolor"}}}
    assert rig.driver.view_submission(VIEW_EDIT_PROMPT, values, "t1", ALICE).status == 200
    [view] = wait_for(lambda: rig.saw("view"))
    assert view["id"] == modal["id"] and view["private_metadata"] == "t1"
    assert view["state"]["values"]["prompt"]["prompt_input"]["value"] == "a fox, watercolor"


def test_events_reach_their_listeners(fake: FakeSlackApi, rig: BoltRig) -> None:
    assert rig.driver.url_verification("abc").json() == {"challenge": "abc"}
    parent = fake.post_as_user(GENERAL, "a lighthouse", ALICE)
    reply = rig.driver.user_posts(GENERAL, "more fog please", BOB, thread_ts=parent["ts"])
    [event] = wait_for(lambda: rig.saw("message"))
    assert event["thread_ts"] == parent["ts"] and event["channel_type"] == "channel"
    assert event["ts"] == reply["ts"] and event["user"] == BOB
    wait_for(lambda: len(fake.messages(GENERAL, parent["ts"])) == 3)
    assert fake.messages(GENERAL, parent["ts"])[-1]["text"] == "noted: more fog please"

    rig.driver.user_mentions_bot(GENERAL, "a cat in a hat", ALICE)
    [mention] = wait_for(lambda: rig.saw("app_mention"))
    assert mention["text"] == f"<@{BOT_USER_ID}> a cat in a hat"
    assert [d.kind for d in rig.driver.deliveries][-2:] == ["event:app_mention", "event:message"]

    assert rig.driver.user_reacts(GENERAL, parent["ts"], "thumbsup", ALICE).status == 200
    [reaction] = wait_for(lambda: rig.saw("reaction"))
    assert reaction["item"] == {"type": "message", "channel": GENERAL, "ts": parent["ts"]}
    assert fake.message(GENERAL, parent["ts"])["reactions"][0]["users"] == [ALICE]  # type: ignore[index]

    assert rig.driver.user_opens_home(ALICE).status == 200
    wait_for(lambda: fake.home_view(ALICE))

    before = len(rig.driver.deliveries)
    rig.driver.user_posts(RANDOM, "nobody hears this", ALICE)  # the bot is not in #random: no event
    assert len(rig.driver.deliveries) == before
    retried = rig.driver.event(
        rig.driver.reaction_added_event(GENERAL, parent["ts"], "eyes", BOB), retry_num=1
    )
    assert retried.status == 200


# helpers -------------------------------------------------------------------------------------------------
def _section(text: str) -> dict[str, Any]:
    """A mrkdwn section block."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _button(text: str, action_id: str, value: str) -> dict[str, Any]:
    """A button element."""
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }


def _modal(title: str) -> dict[str, Any]:
    """The edit-prompt modal with one input block."""
    element = {"type": "plain_text_input", "action_id": "prompt_input"}
    block = {"type": "input", "block_id": "prompt", "label": {"type": "plain_text", "text": "Prompt"}}
    return {
        "type": "modal",
        "callback_id": VIEW_EDIT_PROMPT,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Save"},
        "blocks": [{**block, "element": element}],
    }
