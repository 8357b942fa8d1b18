"""The Web API methods of the sandbox: each takes the workspace, the caller's team and the request params."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

from sandbox.slack_blocks import check_blocks, check_view, with_block_ids
from sandbox.slack_models import APP_ID, Json, SlackError, StoredFile, Team
from sandbox.slack_workspace import Workspace

Method = Callable[[Workspace, Team, Json], Json]
MAX_TEXT = 40_000
_JSON_FIELDS = ("blocks", "attachments", "metadata", "files", "view", "prompts", "loading_messages")


def normalise(params: Json) -> Json:
    """Decode JSON-in-form fields (blocks, view, files, ...) the way Slack accepts both encodings."""
    out = dict(params)
    for name in _JSON_FIELDS:
        value = out.get(name)
        if isinstance(value, str) and value[:1] in "[{":
            try:
                out[name] = json.loads(value)
            except ValueError as error:
                raise SlackError(
                    f"invalid_{name}_format" if name != "view" else "invalid_arguments"
                ) from error
    return out


def _required(p: Json, name: str) -> str:
    """A required string argument, or invalid_arguments naming it."""
    value = p.get(name)
    if value in (None, ""):
        messages = [f"[ERROR] missing required field: {name}"]
        raise SlackError("invalid_arguments", response_metadata={"messages": messages})
    return str(value)


def _flag(p: Json, name: str) -> bool:
    """A boolean argument sent as true/false/1/0."""
    return str(p.get(name, "")).lower() in ("1", "true")


def _page(items: list[Any], p: Json, default_limit: int) -> Json:
    """Cursor pagination: `limit` items from the cursor offset plus response_metadata.next_cursor."""
    limit = int(p.get("limit") or default_limit)
    cursor = str(p.get("cursor") or "")
    start = int(base64.b64decode(cursor).decode().split(":")[1]) if cursor else 0
    chunk = items[start : start + limit]
    more = start + limit < len(items)
    next_cursor = base64.b64encode(f"next:{start + limit}".encode()).decode() if more else ""
    return {"messages": chunk, "has_more": more, "response_metadata": {"next_cursor": next_cursor}}


def _content(p: Json, *, required: bool = True) -> Json:
    """text / blocks / attachments / metadata of a message, checked like Slack (no_text, msg_too_long)."""
    text, blocks, attachments = p.get("text"), p.get("blocks"), p.get("attachments")
    if required and not text and not blocks and not attachments:
        raise SlackError("no_text")
    if text is not None and len(str(text)) > MAX_TEXT:
        raise SlackError("msg_too_long")
    fields: Json = {"text": None if text is None else str(text), "attachments": attachments}
    fields["blocks"] = check_blocks(blocks) if blocks is not None else None
    fields["metadata"] = p.get("metadata")
    return {k: v for k, v in fields.items() if v is not None}


def _own(team: Team, message: Json, error: str) -> None:
    """Bots may only edit or delete their own messages."""
    if message.get("bot_id") != team.bot_id:
        raise SlackError(error)


def auth_test(ws: Workspace, team: Team, p: Json) -> Json:
    """auth.test: who the token is."""
    return {
        "ok": True,
        "url": f"https://{team.domain}.slack.invalid/",
        "team": team.name,
        "user": ws.users[team.bot_user_id].name,
        "team_id": team.id,
        "user_id": team.bot_user_id,
        "bot_id": team.bot_id,
        "is_enterprise_install": False,
    }


def chat_post_message(ws: Workspace, team: Team, p: Json) -> Json:
    """chat.postMessage: store a bot message (in a thread when thread_ts is given)."""
    channel = ws.channel(team, p.get("channel"))
    message = ws.bot_message(team, _content(p))
    thread_ts = str(p.get("thread_ts") or "") or None
    if thread_ts and _flag(p, "reply_broadcast"):
        message["subtype"] = "thread_broadcast"
    stored = ws.store(channel, message, thread_ts)
    return {"ok": True, "channel": channel.id, "ts": stored["ts"], "message": copy.deepcopy(stored)}


def chat_update(ws: Workspace, team: Team, p: Json) -> Json:
    """chat.update: replace the given parts of the bot's own message (omitted parts are kept)."""
    channel = ws.channel(team, p.get("channel"))
    message = ws.message(channel, p.get("ts"))
    _own(team, message, "cant_update_message")
    message.update(_content(p))
    message["edited"] = {"user": team.bot_user_id, "ts": ws.next_ts()}
    return {
        "ok": True,
        "channel": channel.id,
        "ts": message["ts"],
        "text": message.get("text", ""),
        "message": copy.deepcopy(message),
    }


def chat_delete(ws: Workspace, team: Team, p: Json) -> Json:
    """chat.delete: remove the bot's own message (a thread parent becomes a tombstone)."""
    channel = ws.channel(team, p.get("channel"), member=False)
    message = ws.message(channel, p.get("ts"))
    _own(team, message, "cant_delete_message")
    ws.delete(channel, message["ts"])
    return {"ok": True, "channel": channel.id, "ts": message["ts"]}


def chat_post_ephemeral(ws: Workspace, team: Team, p: Json) -> Json:
    """chat.postEphemeral: a message only `user` sees (kept out of the channel history)."""
    channel = ws.channel(team, p.get("channel"))
    user = ws.user(team, p.get("user")).id
    if user not in channel.members:
        raise SlackError("user_not_in_channel")
    ts = ws.next_ts()
    record = {"channel": channel.id, "user": user, "message_ts": ts, "source": "chat.postEphemeral"}
    record.update(_content(p))
    if p.get("thread_ts"):
        record["thread_ts"] = str(p["thread_ts"])
    ws.ephemerals.append(record)
    return {"ok": True, "message_ts": ts}


def chat_get_permalink(ws: Workspace, team: Team, p: Json) -> Json:
    """chat.getPermalink: a link to a stored message."""
    channel = ws.channel(team, p.get("channel"), member=False)
    message = ws.message(channel, p.get("message_ts"))
    link = f"https://{team.domain}.slack.invalid/archives/{channel.id}/p{message['ts'].replace('.', '')}"
    if message.get("thread_ts") not in (None, message["ts"]):
        link += f"?thread_ts={message['thread_ts']}&cid={channel.id}"
    return {"ok": True, "channel": channel.id, "permalink": link}


def _visible(messages: list[Json], p: Json) -> list[Json]:
    """Copies for reading; message metadata only with include_all_metadata, like Slack."""
    out = copy.deepcopy(messages)
    if not _flag(p, "include_all_metadata"):
        for message in out:
            message.pop("metadata", None)
    return out


def conversations_replies(ws: Workspace, team: Team, p: Json) -> Json:
    """conversations.replies: the parent and its replies, oldest first."""
    channel = ws.channel(team, p.get("channel"))
    thread = ws.thread(channel, _required(p, "ts"))
    return {"ok": True, **_page(_visible(thread, p), p, 1000)}


def conversations_history(ws: Workspace, team: Team, p: Json) -> Json:
    """conversations.history: top-level messages, newest first."""
    channel = ws.channel(team, p.get("channel"))
    return {"ok": True, **_page(_visible(ws.history(channel), p), p, 100)}


def conversations_info(ws: Workspace, team: Team, p: Json) -> Json:
    """conversations.info: the channel object (public channels are visible without membership)."""
    channel = ws.channel(team, p.get("channel"), member=False)
    return {"ok": True, "channel": channel.to_api(team.bot_user_id)}


def conversations_members(ws: Workspace, team: Team, p: Json) -> Json:
    """conversations.members: member ids, paginated (public channels are readable without membership)."""
    channel = ws.channel(team, p.get("channel"), member=False)
    page = _page(sorted(channel.members), p, 100)
    return {"ok": True, "members": page["messages"], "response_metadata": page["response_metadata"]}


def conversations_open(ws: Workspace, team: Team, p: Json) -> Json:
    """conversations.open: the IM with one user."""
    user = ws.user(team, _required(p, "users").split(",")[0])
    return {"ok": True, "channel": {"id": ws.im_for(team, user.id).id}}


def users_info(ws: Workspace, team: Team, p: Json) -> Json:
    """users.info: a member's profile."""
    return {"ok": True, "user": ws.user(team, p.get("user")).to_api()}


def reactions_add(ws: Workspace, team: Team, p: Json) -> Json:
    """reactions.add: the bot reacts to a message."""
    channel = ws.channel(team, p.get("channel"))
    ws.react(channel, p.get("timestamp"), p.get("name"), team.bot_user_id, add=True)
    return {"ok": True}


def reactions_remove(ws: Workspace, team: Team, p: Json) -> Json:
    """reactions.remove: the bot takes its reaction back."""
    channel = ws.channel(team, p.get("channel"))
    ws.react(channel, p.get("timestamp"), p.get("name"), team.bot_user_id, add=False)
    return {"ok": True}


def reactions_get(ws: Workspace, team: Team, p: Json) -> Json:
    """reactions.get: the message with its reactions."""
    channel = ws.channel(team, p.get("channel"))
    message = ws.message(channel, p.get("timestamp"))
    return {"ok": True, "type": "message", "channel": channel.id, "message": copy.deepcopy(message)}


def files_get_upload_url(ws: Workspace, team: Team, p: Json) -> Json:
    """files.getUploadURLExternal: reserve a file id and an upload URL on this server."""
    name = _required(p, "filename")
    length = str(p.get("length") or "")
    if not length.isdigit() or int(length) <= 0:
        raise SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] invalid length"]})
    file = StoredFile(
        ws.new_id("F"), team.id, team.bot_user_id, name, int(length), ws.now(), p.get("alt_txt")
    )
    ws.files[file.id] = file
    return {"ok": True, "upload_url": f"{ws.base_url}upload/{file.id}", "file_id": file.id}


def files_complete_upload(ws: Workspace, team: Team, p: Json) -> Json:
    """files.completeUploadExternal: finish uploads and share them (with a file message) in a channel."""
    items = p.get("files")
    if not isinstance(items, list) or not items:
        raise SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing files"]})
    files: list[StoredFile] = []
    for item in items:
        file = ws.files.get(str(item.get("id") if isinstance(item, dict) else ""))
        if file is None or file.team_id != team.id or file.data is None:
            raise SlackError("file_not_found")
        file.title = str(item.get("title") or file.name)
        file.completed = True
        files.append(file)
    channel_ref = p.get("channel_id") or str(p.get("channels") or "").split(",")[0]
    if channel_ref:
        channel = ws.channel(team, channel_ref)
        thread_ts = str(p.get("thread_ts") or "") or None
        fields: Json = {"text": str(p.get("initial_comment") or ""), "upload": True, "display_as_bot": False}
        if not p.get("initial_comment") and isinstance(p.get("blocks"), list):
            fields["blocks"] = with_block_ids(p["blocks"])
        fields["files"] = [f.to_api(ws.base_url, with_shares=False) for f in files]
        stored = ws.store(channel, ws.bot_message(team, fields), thread_ts)
        kind = "public" if channel.kind == "public" else "private"
        share: Json = {"ts": stored["ts"], "channel_name": channel.name, "team_id": team.id}
        share.update(share_user_id=team.bot_user_id, source="UNKNOWN", reply_count=0)
        if "thread_ts" in stored:
            share["thread_ts"] = stored["thread_ts"]
        for file in files:
            file.shares.setdefault(kind, {}).setdefault(channel.id, []).append(dict(share))
    visible = ws.upload_shares_visible
    return {"ok": True, "files": [f.to_api(ws.base_url, with_shares=visible) for f in files]}


def files_info(ws: Workspace, team: Team, p: Json) -> Json:
    """files.info: a file with its shares."""
    file = ws.files.get(str(p.get("file") or ""))
    if file is None or file.team_id != team.id or not file.completed:
        raise SlackError("file_not_found")
    body = {"ok": True, "file": file.to_api(ws.base_url), "comments": []}
    return {**body, "response_metadata": {"next_cursor": ""}}


def _store_view(ws: Workspace, team: Team, view: Json, user: str, view_id: str | None = None) -> Json:
    """Keep a view with the fields Slack adds (id, hash, state, app ids) and return a copy."""
    view_id = view_id or ws.new_id("V")
    stored = copy.deepcopy(view)
    stored["blocks"] = with_block_ids(stored.get("blocks") or [])
    digest = hashlib.sha1(json.dumps(stored, sort_keys=True).encode()).hexdigest()[:20]
    previous = ws.views.get(view_id, {})
    stored.update(id=view_id, team_id=team.id, app_id=APP_ID, bot_id=team.bot_id, hash=f"{ws.now()}.{digest}")
    stored.setdefault("private_metadata", "")
    stored.setdefault("callback_id", "")
    stored.setdefault("external_id", "")
    stored["state"] = previous.get("state", {"values": {}})
    stored["root_view_id"] = previous.get("root_view_id", view_id)
    stored["previous_view_id"] = None
    ws.views[view_id] = stored
    ws.view_owner[view_id] = (team.id, user)
    return copy.deepcopy(stored)


def views_open(ws: Workspace, team: Team, p: Json) -> Json:
    """views.open (and views.push): exchange a fresh trigger_id for a modal."""
    trigger = ws.exchange_trigger(team, p.get("trigger_id"))
    return {"ok": True, "view": _store_view(ws, team, check_view(p.get("view")), trigger.user)}


def views_update(ws: Workspace, team: Team, p: Json) -> Json:
    """views.update: replace a modal by view_id or external_id, honouring `hash`."""
    view_id = p.get("view_id") or next(
        (k for k, v in ws.views.items() if p.get("external_id") and v.get("external_id") == p["external_id"]),
        None,
    )
    current = ws.views.get(str(view_id or ""))
    if current is None or current["team_id"] != team.id:
        raise SlackError("not_found")
    if p.get("hash") and p["hash"] != current["hash"]:
        raise SlackError("hash_conflict")
    view = check_view(p.get("view"), home=current.get("type") == "home")
    return {"ok": True, "view": _store_view(ws, team, view, ws.view_owner[current["id"]][1], current["id"])}


def views_publish(ws: Workspace, team: Team, p: Json) -> Json:
    """views.publish: set a user's App Home tab."""
    user = ws.user(team, p.get("user_id")).id
    view = check_view(p.get("view"), home=True)
    current = ws.home_views.get((team.id, user))
    if current and p.get("hash") and p["hash"] != ws.views[current]["hash"]:
        raise SlackError("hash_conflict")
    stored = _store_view(ws, team, view, user, current)
    ws.home_views[(team.id, user)] = stored["id"]
    return {"ok": True, "view": stored}


def _assistant_state(ws: Workspace, team: Team, p: Json) -> Json:
    """The per-thread assistant state (status, prompts, title) for channel_id + thread_ts."""
    channel = ws.channel(team, _required(p, "channel_id"))
    return ws.assistant.setdefault((channel.id, _required(p, "thread_ts")), {})


def assistant_set_status(ws: Workspace, team: Team, p: Json) -> Json:
    """assistant.threads.setStatus: an empty status clears it."""
    state = _assistant_state(ws, team, p)
    status = str(p.get("status") or "")
    if status:
        state.update(status=status, loading_messages=p.get("loading_messages"))
    else:
        state.pop("status", None)
        state.pop("loading_messages", None)
    return {"ok": True}


def assistant_set_prompts(ws: Workspace, team: Team, p: Json) -> Json:
    """assistant.threads.setSuggestedPrompts: 1-4 prompts, each with title and message."""
    prompts = p.get("prompts")
    ok = isinstance(prompts, list) and 1 <= len(prompts) <= 4
    if not ok or not all(isinstance(x, dict) and x.get("title") and x.get("message") for x in prompts or []):
        messages = ["[ERROR] prompts must be 1-4 objects with title and message"]
        raise SlackError("invalid_arguments", response_metadata={"messages": messages})
    _assistant_state(ws, team, p).update(prompts=prompts, prompts_title=p.get("title"))
    return {"ok": True}


def assistant_set_title(ws: Workspace, team: Team, p: Json) -> Json:
    """assistant.threads.setTitle."""
    _assistant_state(ws, team, p)["title"] = _required(p, "title")
    return {"ok": True}


DEFAULT_APP_TOKEN = "xapp-1-A0IMAGINE-1-sandbox"  # the sandbox app's app-level token (connections:write)


def apps_connections_open(
    ws: Workspace, app_tokens: set[str], authorization: str, p: Json, issue_url: Callable[[], str] | None
) -> Json:
    """apps.connections.open: a one-time Socket Mode URL, for an app-level token sent as a Bearer header."""
    token = authorization[7:] if authorization.startswith("Bearer ") else ""
    if not token:  # Slack refuses an app token sent as a form field here (python-slack-sdk#1877)
        raise SlackError("invalid_auth" if p.get("token") else "not_authed")
    if not token.startswith("xapp-"):
        raise SlackError("not_allowed_token_type")
    if token in ws.revoked:
        raise SlackError("token_revoked")
    if token not in app_tokens:
        raise SlackError("invalid_auth")
    if issue_url is None:
        raise RuntimeError("no Socket Mode stand-in is attached (FakeSlackApi.attach_socket_mode)")
    return {"ok": True, "url": issue_url()}


METHODS: dict[str, Method] = {
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.delete": chat_delete,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.getPermalink": chat_get_permalink,
    "conversations.replies": conversations_replies,
    "conversations.history": conversations_history,
    "conversations.info": conversations_info,
    "conversations.members": conversations_members,
    "conversations.open": conversations_open,
    "users.info": users_info,
    "reactions.add": reactions_add,
    "reactions.remove": reactions_remove,
    "reactions.get": reactions_get,
    "files.getUploadURLExternal": files_get_upload_url,
    "files.completeUploadExternal": files_complete_upload,
    "files.info": files_info,
    "views.open": views_open,
    "views.push": views_open,
    "views.update": views_update,
    "views.publish": views_publish,
    "assistant.threads.setStatus": assistant_set_status,
    "assistant.threads.setSuggestedPrompts": assistant_set_prompts,
    "assistant.threads.setTitle": assistant_set_title,
}
