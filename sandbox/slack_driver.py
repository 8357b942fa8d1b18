"""SlackDriver: plays Slack towards the app's HTTP endpoint with signed commands, events and actions."""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

from sandbox.slack_api import FakeSlackApi
from sandbox.slack_models import ALICE, APP_ID, DEFAULT_TEAM_ID, GENERAL, Json

logger = logging.getLogger(__name__)

VERIFICATION_TOKEN = "sandbox-verification-token"  # legacy field Slack still sends; Bolt ignores it


class DriverResponse(NamedTuple):
    """The app's HTTP answer to one request."""

    status: int
    body: str

    def json(self) -> Any:
        """The body parsed as JSON (None when empty or not JSON)."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


@dataclass(frozen=True)
class Delivery:
    """One request the driver sent: its kind (e.g. "event:message"), payload and the app's answer."""

    kind: str
    payload: Json
    status: int
    body: str


def sign(secret: str, body: str | bytes, timestamp: int) -> str:
    """Slack's v0 request signature: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")."""
    data = body.encode() if isinstance(body, str) else body
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + data, hashlib.sha256).hexdigest()
    return f"v0={digest}"


class SlackDriver:
    """Sends what Slack sends to `{app_url}/slack/events`, signed; mirrors people's actions in the fake."""

    def __init__(
        self,
        app_url: str,
        signing_secret: str,
        api: FakeSlackApi,
        team_id: str = DEFAULT_TEAM_ID,
        *,
        path: str = "/slack/events",
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Target `app_url` (its path is used as given when it has one, else `path` is appended)."""
        has_path = urlsplit(app_url).path not in ("", "/")
        self.events_url = app_url if has_path else app_url.rstrip("/") + path
        self.api = api
        self.team_id = team_id
        self.timeout = timeout
        self._secret = signing_secret
        self._clock = clock
        self._skew = 0
        self._ids = itertools.count(1)
        self._run = secrets.token_hex(3).upper()  # event ids stay unique across drivers, like Slack's
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []

    # signing variants ------------------------------------------------------------------------------------
    def forged(self) -> SlackDriver:
        """A driver that signs with the wrong secret (shares recordings with this one)."""
        twin = copy.copy(self)
        twin._secret = self._secret + "-forged"
        return twin

    def stale(self, seconds: int = 600) -> SlackDriver:
        """A driver whose request timestamps are `seconds` old (Bolt rejects anything over 5 minutes)."""
        twin = copy.copy(self)
        twin._skew = seconds
        return twin

    @property
    def deliveries(self) -> list[Delivery]:
        """Every request sent so far, oldest first."""
        with self._lock:
            return list(self._deliveries)

    # transport -------------------------------------------------------------------------------------------
    def post(
        self, kind: str, payload: Json, body: str, content_type: str, extra: dict[str, str]
    ) -> DriverResponse:
        """POST a signed body to the app and record the delivery."""
        return self._send(kind, payload, body.encode(), content_type, extra, signed=True)

    def post_raw(
        self,
        body: str | bytes,
        content_type: str = "application/json",
        *,
        signed: bool = True,
        headers: dict[str, str] | None = None,
        kind: str = "raw",
    ) -> DriverResponse:
        """POST any body, malformed or not: signed as Slack would, or with no signature headers at all."""
        data = body.encode() if isinstance(body, str) else body
        return self._send(
            kind, {"raw": data.decode("utf-8", "replace")}, data, content_type, headers or {}, signed=signed
        )

    def _send(
        self, kind: str, payload: Json, data: bytes, content_type: str, extra: dict[str, str], *, signed: bool
    ) -> DriverResponse:
        """POST bytes (signed unless told otherwise) and record the delivery."""
        headers = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
        if signed:
            timestamp = int(self._clock()) - self._skew
            headers["X-Slack-Request-Timestamp"] = str(timestamp)
            headers["X-Slack-Signature"] = sign(self._secret, data, timestamp)
        headers.update(extra)
        request = urllib.request.Request(self.events_url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                response = DriverResponse(reply.status, reply.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as error:
            response = DriverResponse(error.code, error.read().decode("utf-8", "replace"))
        with self._lock:
            self._deliveries.append(Delivery(kind, payload, response.status, response.body))
        logger.debug("driver: %s -> %s", kind, response.status)
        return response

    def _form(self, kind: str, fields: Json) -> DriverResponse:
        """POST form-encoded fields (slash commands)."""
        return self.post(kind, fields, urlencode(fields), "application/x-www-form-urlencoded", {})

    def _interaction(self, payload: Json) -> DriverResponse:
        """POST an interactivity payload as the `payload` form field."""
        body = urlencode({"payload": json.dumps(payload)})
        return self.post(str(payload["type"]), payload, body, "application/x-www-form-urlencoded", {})

    # shared pieces ---------------------------------------------------------------------------------------
    def _team(self) -> Json:
        """The `team` object of interaction payloads."""
        return {"id": self.team_id, "domain": self.api.team(self.team_id).domain}

    def _user(self, user: str) -> Json:
        """The `user` object of interaction payloads."""
        with self.api.state() as ws:
            name = ws.users[user].name if user in ws.users else user.lower()
        return {"id": user, "username": name, "name": name, "team_id": self.team_id}

    def _channel_info(self, channel: str) -> tuple[str, str, bool]:
        """(name as slash commands report it, channel_type for events, whether the bot is a member)."""
        bot = self.api.team(self.team_id).bot_user_id
        with self.api.state() as ws:
            found = ws.channels[channel]
            name = found.name or "directmessage"
            return name, found.channel_type, bot in found.members

    def _event_ts(self) -> str:
        """An event_ts for events that are not messages."""
        with self.api.state() as ws:
            return ws.next_ts()

    # slash commands and events ---------------------------------------------------------------------------
    def slash_command(
        self, command: str, text: str = "", user: str = ALICE, channel: str = GENERAL
    ) -> DriverResponse:
        """A slash command as Slack posts it (form-encoded, response_url on the fake, a fresh trigger_id)."""
        name, _, _ = self._channel_info(channel)
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "team_domain": self._team()["domain"],
            "channel_id": channel,
            "channel_name": name,
            "user_id": user,
            "user_name": self._user(user)["name"],
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": self.api.new_response_url(channel, user, team_id=self.team_id),
            "trigger_id": self.api.issue_trigger(user, self.team_id),
        }
        return self._form(f"command:{command}", fields)

    def event(
        self,
        event: Json,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> DriverResponse:
        """An Events API delivery (event_callback envelope); retry_num adds Slack's retry headers."""
        bot = self.api.team(self.team_id).bot_user_id
        envelope = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{self._run}{next(self._ids):06d}",
            "event_time": int(self._clock()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": bot,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        extra = {}
        if retry_num is not None:
            extra = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        body = json.dumps(envelope)
        return self.post(f"event:{event.get('type')}", envelope, body, "application/json", extra)

    def url_verification(self, challenge: str = "sandbox-challenge") -> DriverResponse:
        """The handshake Slack sends when the Request URL is saved."""
        payload = {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
        return self.post("url_verification", payload, json.dumps(payload), "application/json", {})

    # event builders --------------------------------------------------------------------------------------
    def message_event(self, message: Json, channel: str) -> Json:
        """The `message` event of a stored message."""
        _, channel_type, _ = self._channel_info(channel)
        event = {k: v for k, v in message.items() if k not in ("reply_count", "reply_users", "latest_reply")}
        event.pop("reply_users_count", None)
        return {
            **event,
            "type": "message",
            "channel": channel,
            "event_ts": message["ts"],
            "channel_type": channel_type,
        }

    def app_mention_event(self, message: Json, channel: str) -> Json:
        """The `app_mention` event of a stored message."""
        event = self.message_event(message, channel)
        event.pop("channel_type", None)
        return {**event, "type": "app_mention"}

    def reaction_added_event(self, channel: str, ts: str, name: str, user: str) -> Json:
        """A `reaction_added` event for a message."""
        target = self.api.message(channel, ts) or {}
        item = {"type": "message", "channel": channel, "ts": ts}
        event = {"type": "reaction_added", "user": user, "reaction": name, "item": item}
        return {**event, "item_user": target.get("user"), "event_ts": self._event_ts()}

    def app_home_opened_event(self, user: str, tab: str = "home") -> Json:
        """An `app_home_opened` event (with the published view when there is one)."""
        with self.api.state() as ws:
            channel = ws.im_for(ws.teams[self.team_id], user).id
        event: Json = {"type": "app_home_opened", "user": user, "channel": channel, "tab": tab}
        view = self.api.home_view(user, self.team_id)
        if view is not None and tab == "home":
            event["view"] = view
        return {**event, "event_ts": self._event_ts()}

    # what people do --------------------------------------------------------------------------------------
    def user_posts(self, channel: str, text: str, user: str = ALICE, thread_ts: str | None = None) -> Json:
        """A person posts: stored in the fake, then `message` (and `app_mention` when the bot is @-ed)."""
        message = self.api.post_as_user(channel, text, user, thread_ts)
        _, channel_type, bot_present = self._channel_info(channel)
        bot = self.api.team(self.team_id).bot_user_id
        if not bot_present:
            return message  # Slack sends nothing from channels the app is not in
        if f"<@{bot}>" in text and channel_type != "im":
            self.event(self.app_mention_event(message, channel))
        self.event(self.message_event(message, channel))
        return message

    def user_posts_file(
        self,
        channel: str,
        name: str,
        data: bytes,
        user: str = ALICE,
        text: str = "",
        thread_ts: str | None = None,
    ) -> Json:
        """A person shares a file (a picture, a sketch): stored in the fake, then its `message` event."""
        message = self.api.post_file_as_user(channel, name, data, user, text, thread_ts)
        _, _, bot_present = self._channel_info(channel)
        if bot_present:
            self.event(self.message_event(message, channel))
        return message

    def user_mentions_bot(
        self, channel: str, text: str, user: str = ALICE, thread_ts: str | None = None
    ) -> Json:
        """A person writes `@imagine <text>` (both app_mention and message events are sent)."""
        bot = self.api.team(self.team_id).bot_user_id
        return self.user_posts(channel, f"<@{bot}> {text}", user, thread_ts)

    def user_reacts(self, channel: str, ts: str, name: str, user: str = ALICE) -> DriverResponse:
        """A person adds a reaction: stored in the fake, then `reaction_added` is sent."""
        self.api.react_as_user(channel, ts, name, user)
        return self.event(self.reaction_added_event(channel, ts, name, user))

    def user_opens_home(self, user: str = ALICE) -> DriverResponse:
        """A person opens the app's Home tab."""
        return self.event(self.app_home_opened_event(user))

    def block_action(
        self,
        action_id: str,
        value: str = "",
        user: str = ALICE,
        channel: str = GENERAL,
        message_ts: str | None = None,
        thread_ts: str | None = None,
        trigger_id: str | None = None,
        *,
        view_id: str | None = None,
    ) -> DriverResponse:
        """A click on a button in a message (or in a view with `view_id`), as a block_actions payload."""
        message = self.api.message(channel, message_ts) if message_ts else None
        blocks = (message or {}).get("blocks") or []
        view = next((v for v in self.api.views() if v["id"] == view_id), None) if view_id else None
        if view is not None:
            blocks = view.get("blocks") or []
        block_id, element = _find_action(blocks, action_id)
        action = {"action_id": action_id, "block_id": block_id, "type": element.get("type", "button")}
        action.update(value=value, action_ts=f"{self._clock():.6f}")
        if "text" in element:
            action["text"] = element["text"]
        payload: Json = {
            "type": "block_actions",
            "user": self._user(user),
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "trigger_id": trigger_id or self.api.issue_trigger(user, self.team_id),
            "team": self._team(),
            "enterprise": None,
            "is_enterprise_install": False,
            "state": {"values": {}},
            "actions": [action],
        }
        if view is not None:
            payload.update(container={"type": "view", "view_id": view_id}, view=view)
            return self._interaction(payload)
        name, _, _ = self._channel_info(channel)
        thread_ts = thread_ts or (message or {}).get("thread_ts")
        container: Json = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        }
        if thread_ts:
            container["thread_ts"] = thread_ts
        payload.update(container=container, channel={"id": channel, "name": name}, message=message)
        payload["response_url"] = self.api.new_response_url(
            channel, user, message_ts, thread_ts, self.team_id
        )
        return self._interaction(payload)

    def view_submission(
        self, callback_id: str, values: Json, private_metadata: str | None = None, user: str = ALICE
    ) -> DriverResponse:
        """Submit the user's latest modal with this callback_id (`values`: block_id -> action_id -> state)."""
        views = [
            v for v in self.api.views(user) if v.get("callback_id") == callback_id and v["type"] == "modal"
        ]
        view: Json = views[-1] if views else {"id": "V0UNOPENED", "type": "modal", "callback_id": callback_id}
        view = {**view, "state": {"values": values}, "team_id": self.team_id, "app_id": APP_ID}
        if private_metadata is not None:
            view["private_metadata"] = private_metadata
        view.setdefault("private_metadata", "")
        payload: Json = {
            "type": "view_submission",
            "team": self._team(),
            "user": self._user(user),
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "trigger_id": self.api.issue_trigger(user, self.team_id),
            "view": view,
            "response_urls": [],
            "enterprise": None,
            "is_enterprise_install": False,
        }
        return self._interaction(payload)


def _find_action(blocks: list[Json], action_id: str) -> tuple[str, Json]:
    """The block_id and element of an action in blocks (a made-up block id when absent)."""
    for block in blocks:
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        for element in elements:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(block.get("block_id", "sbx")), element
    return "sbx-actions", {}
