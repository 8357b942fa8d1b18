"""HTTP plumbing of the sandbox and its non-Web-API routes: upload URLs, response_urls, url_private, OAuth."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from contextlib import suppress
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sandbox.slack_models import APP_ID, RESPONSE_URL_USES, Json, ResponseHook, SlackError
from sandbox.slack_workspace import Workspace

logger = logging.getLogger(__name__)

Reply = tuple[int, dict[str, str], bytes]
Handle = Callable[[str, str, dict[str, str], bytes], Reply]


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    """A JSON response like Slack's."""
    content = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    return status, content, json.dumps(body).encode()


def text_reply(text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Reply:
    """A plain-text (or HTML) response."""
    return status, {"Content-Type": content_type}, text.encode()


def loads(raw: bytes) -> Any:
    """Parsed JSON, or None."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def request_params(target: str, headers: dict[str, str], raw: bytes) -> Json:
    """Query-string and body params: form-encoded or JSON, as Slack accepts both."""
    params: Json = dict(parse_qsl(urlsplit(target).query, keep_blank_values=True))
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if not raw:
        return params
    if content_type == "application/json":
        body = loads(raw)
        if not isinstance(body, dict):
            raise SlackError("invalid_json")
        body.pop("token", None)  # Slack ignores a token inside a JSON body
        params.update(body)
    elif content_type in ("", "application/x-www-form-urlencoded"):
        params.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    else:
        raise SlackError("invalid_form_data")
    return params


def upload(ws: Workspace, file_id: str, raw: bytes) -> Reply:
    """The raw POST of a file's bytes to its upload_url."""
    file = ws.files.get(file_id)
    if file is None or file.data is not None:
        return text_reply("invalid upload url", 404)
    file.data = raw
    return text_reply(f"OK - {len(raw)}")


def respond(ws: Workspace, hook_id: str, payload: Any) -> Reply:
    """A post to a response_url: ephemeral, in_channel, replace_original or delete_original."""
    hook = ws.hooks.get(hook_id)
    if hook is None:
        return text_reply("no_active_hooks", 404)
    hook.uses += 1
    if hook.uses > RESPONSE_URL_USES:
        return text_reply("used_url", 404)
    if not isinstance(payload, dict):
        return text_reply("invalid_payload", 400)
    ws.hook_posts.append({"hook": hook.id, "channel": hook.channel, "user": hook.user, "payload": payload})
    try:
        _apply_response(ws, hook, payload)
    except SlackError as error:
        return text_reply(error.error, 400 if error.error == "no_text" else 404)
    return text_reply("ok")


def download(ws: Workspace, file_id: str, headers: dict[str, str]) -> Reply:
    """url_private: the bytes with a valid bot token; Slack's sign-in page (HTML, 200) otherwise."""
    auth = headers.get("authorization", "")
    file = ws.files.get(file_id)
    team_id = ws.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
    if file is None or file.data is None or team_id != file.team_id:
        return text_reply("<!DOCTYPE html><html><title>Slack</title>sign in</html>", 200, "text/html")
    return 200, {"Content-Type": "application/octet-stream"}, file.data


def oauth_v2_access(ws: Workspace, p: Json, headers: dict[str, str]) -> Json:
    """oauth.v2.access: exchange a one-time code (FakeSlackApi.oauth_code) for the team's bot token."""
    client_id, client_secret = str(p.get("client_id", "")), str(p.get("client_secret", ""))
    auth = headers.get("authorization", "")
    if auth.startswith("Basic "):  # how slack_sdk sends the app credentials
        with suppress(binascii.Error, UnicodeDecodeError):
            client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
    if client_id not in ws.oauth_clients:
        raise SlackError("invalid_client_id")
    if ws.oauth_clients[client_id] != client_secret:
        raise SlackError("bad_client_secret")
    grant = ws.oauth_codes.pop(str(p.get("code") or ""), None)
    if grant is None:
        raise SlackError("invalid_code")
    team_id, user, scopes = grant
    team = ws.teams[team_id]
    return {
        "ok": True,
        "access_token": team.bot_token,
        "token_type": "bot",
        "scope": ",".join(scopes or team.scopes),
        "bot_user_id": team.bot_user_id,
        "app_id": APP_ID,
        "team": {"id": team.id, "name": team.name},
        "enterprise": None,
        "is_enterprise_install": False,
        "authed_user": {"id": user},
    }


def _apply_response(ws: Workspace, hook: ResponseHook, payload: Json) -> None:
    """What Slack does with a response_url payload."""
    team = ws.teams[hook.team_id]
    channel = ws.channels[hook.channel]
    content = {k: payload[k] for k in ("text", "blocks", "attachments") if payload.get(k)}
    if payload.get("delete_original"):
        if hook.message_ts:
            ws.delete(channel, hook.message_ts)
        return
    if not content:
        raise SlackError("no_text")
    if payload.get("replace_original") and hook.message_ts:
        ws.message(channel, hook.message_ts).update(content)
    elif payload.get("response_type") == "in_channel":
        thread_ts = payload.get("thread_ts") or hook.thread_ts
        ws.store(channel, ws.bot_message(team, content), str(thread_ts) if thread_ts else None)
    else:
        record = {
            "channel": channel.id,
            "user": hook.user,
            "message_ts": ws.next_ts(),
            "source": "response_url",
        }
        ws.ephemerals.append({**record, **content, "replace_original": bool(payload.get("replace_original"))})


def rich_text(text: str) -> Json:
    """The rich_text block Slack attaches to a typed message."""
    element = {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
    return {"type": "rich_text", "block_id": "usr0", "elements": [element]}
