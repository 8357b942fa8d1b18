"""FakeSlackApi: a loopback stand-in of the Slack Web API that keeps workspace state and records calls."""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sandbox import slack_routes as routes
from sandbox.loopback import LoopbackServer
from sandbox.slack_methods import DEFAULT_APP_TOKEN, METHODS, apps_connections_open, normalise
from sandbox.slack_models import (
    ALICE,
    DEFAULT_TEAM_ID,
    ChannelKind,
    Json,
    SlackError,
    StoredFile,
    Team,
)
from sandbox.slack_workspace import Workspace

logger = logging.getLogger(__name__)

Reply = routes.Reply


@dataclass(frozen=True)
class SlackCall:
    """One request: the Web API method, or "upload" / "response_url" / "file_download" for other routes."""

    method: str
    params: Json
    headers: dict[str, str]
    status: int
    response: Any
    team_id: str | None = None


@dataclass
class _Fault:
    """A scripted failure for the next `times` calls of `method` (None: any method)."""

    method: str | None
    error: str
    status: int
    retry_after: int | None
    times: int


class FakeSlackApi(LoopbackServer):
    """Slack Web API on 127.0.0.1:<free port>: seeded workspace, token checks, faults, recorded calls."""

    def __init__(
        self, host: str = "127.0.0.1", *, clock: Callable[[], float] = time.time, trigger_ttl: float = 3.0
    ) -> None:
        """Build the server (not started) over a workspace seeded with team T0001 (see slack_models)."""
        super().__init__(host, "fake-slack")
        self._lock = threading.RLock()
        self._ws = Workspace(clock=clock, trigger_ttl=trigger_ttl)
        self._ws.seed()
        self._calls: list[SlackCall] = []
        self._faults: list[_Fault] = []
        self._app_tokens = {DEFAULT_APP_TOKEN}
        self._socket_url: Callable[[], str] | None = None
        self._shapes: dict[str, Any] = {}

    # lifecycle -------------------------------------------------------------------------------------------
    def _started(self) -> None:
        """Let the workspace build URLs (files, response_url) on the bound port."""
        with self._lock:
            self._ws.base_url = self.url

    def serve_http(
        self, verb: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one HTTP request."""
        return self.handle(verb, target, headers, raw)

    @property
    def url(self) -> str:
        """Server root, e.g. http://127.0.0.1:PORT/."""
        return self.root + "/"

    @property
    def api_url(self) -> str:
        """Base URL for `WebClient(base_url=...)`."""
        return self.url + "api/"

    # workspace set-up ------------------------------------------------------------------------------------
    @contextmanager
    def state(self) -> Iterator[Workspace]:
        """The live workspace under the fake's lock (for set-ups the helpers below do not cover)."""
        with self._lock:
            yield self._ws

    def team(self, team_id: str = DEFAULT_TEAM_ID) -> Team:
        """A copy of a team's record (bot token, bot user id, bot id)."""
        with self._lock:
            return copy.copy(self._ws.teams[team_id])

    def bot_token(self, team_id: str = DEFAULT_TEAM_ID) -> str:
        """The bot token of a team."""
        return self.team(team_id).bot_token

    def app_env(self, data_dir: Path, signing_secret: str, **extra: str) -> dict[str, str]:
        """The environment of an app process served against this sandbox: nothing IMAGINE_, AWS_ or SLACK_
        from the caller's shell, the app's data dir, this workspace's token and API URL, then `extra`."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGINE_", "AWS_", "SLACK_"))}
        env.update(
            IMAGINE_DATA_DIR=str(data_dir),
            SLACK_BOT_TOKEN=self.bot_token(),
            SLACK_SIGNING_SECRET=signing_secret,
            SLACK_API_URL=self.api_url,
            **extra,
        )
        return env

    def add_team(self, team_id: str, name: str | None = None, **options: Any) -> Team:
        """Install the app in another team (token, bot_user_id, bot_id, scopes may be given)."""
        with self._lock:
            return copy.copy(self._ws.add_team(team_id, name, **options))

    def add_user(
        self, user_id: str, name: str, real_name: str | None = None, display_name: str = "", **kw: Any
    ) -> None:
        """Add a person (team_id= to put them in another team)."""
        with self._lock:
            self._ws.add_user(user_id, name, real_name, display_name, **kw)

    def add_channel(
        self,
        channel_id: str,
        name: str = "",
        kind: ChannelKind = "public",
        members: Iterable[str] = (),
        **kw: Any,
    ) -> None:
        """Add a conversation (bot=False leaves the bot out; team_id= for another team)."""
        with self._lock:
            self._ws.add_channel(channel_id, name, kind, members, **kw)

    def set_member(self, channel: str, user: str, present: bool = True) -> None:
        """Add or remove a member (the bot user included) of a channel."""
        with self._lock:
            members = self._ws.channels[channel].members
            if present:
                members.add(user)
            else:
                members.discard(user)

    def app_token(self) -> str:
        """The app-level token (xapp-) that apps.connections.open accepts."""
        return DEFAULT_APP_TOKEN

    def attach_socket_mode(self, issue_url: Callable[[], str]) -> None:
        """Answer apps.connections.open with `issue_url()` (e.g. FakeSlackSocket.issue_url)."""
        with self._lock:
            self._socket_url = issue_url

    def revoke(self, token: str) -> None:
        """Make a token answer token_revoked from now on."""
        with self._lock:
            self._ws.revoked.add(token)

    def register_oauth_client(self, client_id: str, client_secret: str) -> None:
        """Accept these app credentials at oauth.v2.access."""
        with self._lock:
            self._ws.oauth_clients[client_id] = client_secret

    def oauth_code(self, team_id: str, user: str = ALICE, scopes: Iterable[str] = ()) -> str:
        """A one-time code as Slack would append to the redirect URL after `user` approves the install."""
        granted = tuple(scopes)
        with self._lock:
            if team_id not in self._ws.teams:  # installing into a new workspace creates the install
                self._ws.add_team(team_id, scopes=granted)
            code = self._ws.new_id("code-")
            self._ws.oauth_codes[code] = (team_id, user, granted)
            return code

    def set_upload_shares_visible(self, visible: bool) -> None:
        """False: completeUploadExternal answers with empty `shares`, as real Slack often does."""
        with self._lock:
            self._ws.upload_shares_visible = visible

    # what people do --------------------------------------------------------------------------------------
    def post_as_user(self, channel: str, text: str, user: str, thread_ts: str | None = None) -> Json:
        """Store a message a person posted (no event is sent: SlackDriver.user_posts does both)."""
        with self._lock:
            ws = self._ws
            found = ws.channels[channel]
            message: Json = {
                "type": "message",
                "user": user,
                "text": text,
                "client_msg_id": ws.new_id("msg-"),
            }
            message["blocks"] = [routes.rich_text(text)]
            return copy.deepcopy(ws.store(found, message, thread_ts))

    def post_file_as_user(
        self, channel: str, name: str, data: bytes, user: str, text: str = "", thread_ts: str | None = None
    ) -> Json:
        """Store a message in which a person shares a file, as Slack does (subtype file_share)."""
        with self._lock:
            ws = self._ws
            found = ws.channels[channel]
            file = StoredFile(ws.new_id("F"), found.team_id, user, name, len(data), ws.now(), title=name)
            file.data, file.completed = data, True
            ws.files[file.id] = file
            message: Json = {"type": "message", "subtype": "file_share", "user": user, "text": text}
            message.update(upload=True, display_as_bot=False, client_msg_id=ws.new_id("msg-"))
            message["files"] = [file.to_api(ws.base_url, with_shares=False)]
            if text:
                message["blocks"] = [routes.rich_text(text)]
            stored = ws.store(found, message, thread_ts)
            kind = "public" if found.kind == "public" else "private"
            share: Json = {"ts": stored["ts"], "channel_name": found.name, "team_id": found.team_id}
            file.shares.setdefault(kind, {}).setdefault(found.id, []).append(share)
            return copy.deepcopy(stored)

    def react_as_user(self, channel: str, ts: str, name: str, user: str) -> Json:
        """A person adds a reaction; returns the reacted message."""
        with self._lock:
            found = self._ws.channels[channel]
            return copy.deepcopy(self._ws.react(found, ts, name, user, add=True))

    def issue_trigger(self, user: str, team_id: str = DEFAULT_TEAM_ID) -> str:
        """A trigger_id valid for trigger_ttl seconds (what Slack puts in interactions)."""
        with self._lock:
            return self._ws.issue_trigger(team_id, user)

    def new_response_url(
        self,
        channel: str,
        user: str,
        message_ts: str | None = None,
        thread_ts: str | None = None,
        team_id: str = DEFAULT_TEAM_ID,
    ) -> str:
        """A response_url bound to a channel, a user and optionally the message an action came from."""
        with self._lock:
            return self._ws.new_hook(team_id, channel, user, message_ts, thread_ts)

    # faults ----------------------------------------------------------------------------------------------
    def fail_next(
        self,
        method: str | None = None,
        error: str = "ratelimited",
        status: int = 429,
        retry_after: int | None = 1,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method` with {"ok": false, "error": error} (429: Retry-After)."""
        with self._lock:
            self._faults.append(_Fault(method, error, status, retry_after if status == 429 else None, times))

    def _take_fault(self, method: str) -> _Fault | None:
        """Pop one use of the first fault matching the method (lock held)."""
        for fault in self._faults:
            if fault.method in (None, method):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def answer_like(self, shapes: dict[str, Any]) -> None:
        """Answer these methods ("upload" for the upload URL) in the shape of real recorded answers.

        The workspace still does the work (ids, state); only the fields a recorded answer of that method
        carries are sent back (lists keep their elements, each cut to the recorded element's fields), and
        a recorded text body (the upload URL's, empty) replaces ours: so the app is tested against what
        Slack really sends, not our richer stand-in answers.
        """
        with self._lock:
            self._shapes.update(shapes)

    def _shaped(self, method: str, reply: Reply) -> Reply:
        """The reply cut to the recorded shape of its method, if one is set (lock held)."""
        shape = self._shapes.get(method)
        if shape is None or reply[0] >= 300:
            return reply
        if isinstance(shape, str):
            return routes.text_reply(shape, reply[0])
        body = routes.loads(reply[2])
        return routes.json_reply(_cut(body, shape) if body.get("ok") else body, reply[0])

    # recorded state --------------------------------------------------------------------------------------
    @property
    def calls(self) -> list[SlackCall]:
        """Every request so far, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[SlackCall]:
        """Requests of one method (or "upload", "response_url", "file_download")."""
        return [c for c in self.calls if c.method == method]

    def wait_until_quiet(self, quiet: float = 0.3, timeout: float = 15.0) -> bool:
        """Wait until no call came for `quiet` seconds (the app's work is done); False on `timeout`."""
        deadline = time.monotonic() + timeout
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = len(self.calls)
            if count != seen:
                seen, since = count, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return True
            time.sleep(0.02)
        return False

    def clear_calls(self) -> None:
        """Forget recorded calls and pending faults (workspace state stays)."""
        with self._lock:
            self._calls.clear()
            self._faults.clear()

    def messages(
        self, channel: str, thread_ts: str | None = None, *, include_replies: bool = False
    ) -> list[Json]:
        """A thread (parent, replies), or top-level messages oldest first (all with include_replies)."""
        with self._lock:
            found = self._ws.channels[channel]
            if thread_ts is not None:
                return copy.deepcopy(self._ws.thread(found, thread_ts))
            top = found.messages if include_replies else self._ws.history(found)[::-1]
            return copy.deepcopy(top)

    def message(self, channel: str, ts: str) -> Json | None:
        """One stored message, if it exists."""
        with self._lock:
            return copy.deepcopy(self._ws.channels[channel].find(ts))

    def ephemerals(self, user: str | None = None) -> list[Json]:
        """Ephemeral messages (chat.postEphemeral and ephemeral response_url posts), for one user or all."""
        with self._lock:
            return [copy.deepcopy(e) for e in self._ws.ephemerals if user in (None, e["user"])]

    def uploads(self) -> list[Json]:
        """Completed files with their bytes: files.info's `file` plus `data`."""
        with self._lock:
            files = [f for f in self._ws.files.values() if f.completed]
            return [{**f.to_api(self._ws.base_url), "data": f.data} for f in files]

    def views(self, user: str | None = None) -> list[Json]:
        """Modals and home tabs, for one user or all, in creation order."""
        with self._lock:
            owners = self._ws.view_owner
            return [copy.deepcopy(v) for k, v in self._ws.views.items() if user in (None, owners[k][1])]

    def home_view(self, user: str, team_id: str = DEFAULT_TEAM_ID) -> Json | None:
        """The App Home view last published for a user."""
        with self._lock:
            view_id = self._ws.home_views.get((team_id, user))
            return copy.deepcopy(self._ws.views[view_id]) if view_id else None

    def assistant_state(self, channel: str, thread_ts: str) -> Json:
        """status / loading_messages / prompts / title from assistant.threads.* (a reply clears status)."""
        with self._lock:
            return copy.deepcopy(self._ws.assistant.get((channel, thread_ts), {}))

    def responses(self, url_or_id: str | None = None) -> list[Json]:
        """Posts to response_urls: {"hook", "channel", "user", "payload"}."""
        hook = url_or_id.rstrip("/").rsplit("/", 1)[-1] if url_or_id else None
        with self._lock:
            return [copy.deepcopy(r) for r in self._ws.hook_posts if hook in (None, r["hook"])]

    # HTTP ------------------------------------------------------------------------------------------------
    def handle(self, verb: str, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        """Answer one HTTP request (also usable without the server)."""
        path = urlsplit(target).path
        lowered = {k.lower(): v for k, v in headers.items()}
        kept = {k: v for k, v in lowered.items() if k != "authorization"}
        route, _, rest = path.lstrip("/").partition("/")
        with self._lock:
            if route == "api":
                method, params, team_id = rest, {}, None
                try:
                    params = normalise(routes.request_params(target, lowered, raw))
                    reply, team_id = self._api(rest, params, lowered)
                except SlackError as error:
                    reply = routes.json_reply(error.body(), error.status)
                except Exception:  # a bug in the fake or a set-up mistake: answer like Slack's 500
                    logger.exception("fake slack: %s failed", rest)
                    reply = routes.json_reply({"ok": False, "error": "fatal_error"}, 500)
            elif route == "upload" and verb == "POST":
                method, params, team_id = "upload", {"file_id": rest, "size": len(raw)}, None
                reply = self._fault_reply(method) or routes.upload(self._ws, rest, raw)
            elif route == "response" and verb == "POST":
                method, params, team_id = "response_url", routes.loads(raw), None
                reply = self._fault_reply(method) or routes.respond(self._ws, rest, params)
            elif route == "files":
                method, params, team_id = "file_download", {"file_id": rest.split("/")[0]}, None
                reply = routes.download(self._ws, rest.split("/")[0], lowered)
            else:
                method, params, team_id, reply = (
                    verb + " " + path,
                    {},
                    None,
                    routes.text_reply("Not Found", 404),
                )
            reply = self._shaped(method, reply)
            status = reply[0]
            body: Any = (
                routes.loads(reply[2]) if reply[1]["Content-Type"].startswith("application/json") else None
            )
            self._calls.append(SlackCall(method, params, kept, status, body, team_id))
        logger.debug("fake slack: %s %s -> %s", verb, method, status)
        return reply

    def _fault_reply(self, method: str) -> Reply | None:
        """The scripted failure for this call, if one is pending (lock held)."""
        fault = self._take_fault(method)
        if fault is None:
            return None
        extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        return routes.json_reply({"ok": False, "error": fault.error}, fault.status, extra)

    def _api(self, method: str, params: Json, headers: dict[str, str]) -> tuple[Reply, str | None]:
        """A Web API method call: fault, then auth, then the method (lock held)."""
        fault = self._fault_reply(method)
        if fault is not None:
            return fault, None
        if method == "oauth.v2.access":
            return routes.json_reply(routes.oauth_v2_access(self._ws, params, headers)), None
        auth = headers.get("authorization", "")
        if method == "apps.connections.open":  # app-level token, not a team's bot token
            body = apps_connections_open(self._ws, self._app_tokens, auth, params, self._socket_url)
            return routes.json_reply(body), None
        handler = METHODS.get(method)
        if handler is None:
            return routes.json_reply({"ok": False, "error": "unknown_method"}, 404), None
        token = auth[7:] if auth.startswith("Bearer ") else params.pop("token", None)
        team = self._ws.team_for_token(token)
        try:
            return routes.json_reply(handler(self._ws, team, params)), team.id
        except SlackError as error:
            return routes.json_reply(error.body(), error.status), team.id


def _cut(value: Any, shape: Any) -> Any:
    """`value` keeping only what `shape` has: dict keys in both, list elements cut like shape's first."""
    if isinstance(value, dict) and isinstance(shape, dict):
        return {k: _cut(v, shape[k]) for k, v in value.items() if k in shape}
    if isinstance(value, list) and isinstance(shape, list) and shape:
        return [_cut(item, shape[0]) for item in value]
    return value
