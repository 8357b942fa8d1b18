"""Workspace state behind FakeSlackApi: who is where, messages and threads, reactions, triggers (no I/O)."""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable, Iterable
from typing import Any

from sandbox.slack_models import (
    ALICE,
    ALICE_DM,
    APP_ID,
    BOB,
    BOB_DM,
    BOT_ID,
    BOT_USER_ID,
    CAROL,
    DEFAULT_BOT_TOKEN,
    DEFAULT_TEAM_ID,
    GENERAL,
    PRIVATE,
    RANDOM,
    Channel,
    ChannelKind,
    Json,
    ResponseHook,
    SlackError,
    StoredFile,
    Team,
    Trigger,
    User,
)


class Workspace:
    """Every piece of state the fake keeps; callers hold FakeSlackApi's lock around any use."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        trigger_ttl: float = 3.0,
    ) -> None:
        """Empty state; `seed()` adds the default team, users and channels."""
        self.clock = clock
        self.monotonic = monotonic
        self.trigger_ttl = trigger_ttl
        self.base_url = "http://127.0.0.1/"
        self.teams: dict[str, Team] = {}
        self.tokens: dict[str, str] = {}
        self.revoked: set[str] = set()
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.files: dict[str, StoredFile] = {}
        self.views: dict[str, Json] = {}
        self.view_owner: dict[str, tuple[str, str]] = {}
        self.home_views: dict[tuple[str, str], str] = {}
        self.triggers: dict[str, Trigger] = {}
        self.hooks: dict[str, ResponseHook] = {}
        self.hook_posts: list[Json] = []
        self.ephemerals: list[Json] = []
        self.assistant: dict[tuple[str, str], Json] = {}
        self.oauth_clients: dict[str, str] = {}
        self.oauth_codes: dict[str, tuple[str, str, tuple[str, ...]]] = {}
        self.upload_shares_visible = True  # real Slack often answers completeUploadExternal with empty shares
        self._ids = itertools.count(1)
        self._last_us = 0

    # ids and time -----------------------------------------------------------------------------------------
    def new_id(self, prefix: str) -> str:
        """A fresh Slack-looking id such as F00000007."""
        return f"{prefix}{next(self._ids):08d}"

    def next_ts(self) -> str:
        """A monotonic message ts in Slack's "seconds.micros" format."""
        now_us = int(self.clock() * 1_000_000)
        self._last_us = max(now_us, self._last_us + 100)
        return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def now(self) -> int:
        """Unix seconds by the workspace clock."""
        return int(self.clock())

    # population -------------------------------------------------------------------------------------------
    def add_team(
        self,
        team_id: str,
        name: str | None = None,
        *,
        token: str | None = None,
        bot_user_id: str | None = None,
        bot_id: str | None = None,
        scopes: Iterable[str] = (),
    ) -> Team:
        """Install the app in a team: a bot token mapped to the team, and the bot user."""
        team = Team(
            id=team_id,
            name=name or f"Sandbox {team_id}",
            domain=(name or f"sandbox-{team_id}").lower().replace(" ", "-"),
            bot_token=token or f"xoxb-{team_id}-sandbox",
            bot_user_id=bot_user_id or f"U{team_id}BOT",
            bot_id=bot_id or f"B{team_id}BOT",
            scopes=tuple(scopes),
        )
        self.teams[team_id] = team
        self.tokens[team.bot_token] = team_id
        self.users[team.bot_user_id] = User(team.bot_user_id, team_id, "imagine", "Imagine", "Imagine", True)
        return team

    def add_user(
        self,
        user_id: str,
        name: str,
        real_name: str | None = None,
        display_name: str = "",
        *,
        team_id: str = DEFAULT_TEAM_ID,
    ) -> User:
        """Add a human member of a team."""
        user = User(user_id, team_id, name, real_name or name.title(), display_name)
        self.users[user_id] = user
        return user

    def add_channel(
        self,
        channel_id: str,
        name: str = "",
        kind: ChannelKind = "public",
        members: Iterable[str] = (),
        *,
        bot: bool = True,
        team_id: str = DEFAULT_TEAM_ID,
    ) -> Channel:
        """Add a conversation; the team's bot user is a member when `bot` (always in an IM)."""
        people = set(members)
        team = self.teams[team_id]
        if bot or kind == "im":
            people.add(team.bot_user_id)
        im_user = next((m for m in sorted(people) if m != team.bot_user_id), None) if kind == "im" else None
        channel = Channel(channel_id, team_id, name, kind, people, self.now(), im_user)
        self.channels[channel_id] = channel
        return channel

    def seed(self) -> None:
        """Team T0001 with three people, #general, #random (bot absent), a private channel and two IMs."""
        self.add_team(
            DEFAULT_TEAM_ID, "Sandbox", token=DEFAULT_BOT_TOKEN, bot_user_id=BOT_USER_ID, bot_id=BOT_ID
        )
        self.add_user(ALICE, "alice", "Alice Liddell", "Alice")
        self.add_user(BOB, "bob", "Bob Ross", "bob")
        self.add_user(CAROL, "carol", "Carol Danvers", "")
        people = (ALICE, BOB, CAROL)
        self.add_channel(GENERAL, "general", "public", people)
        self.add_channel(RANDOM, "random", "public", people, bot=False)
        self.add_channel(PRIVATE, "design-private", "private", (ALICE, BOB))
        self.add_channel(ALICE_DM, "", "im", (ALICE,))
        self.add_channel(BOB_DM, "", "im", (BOB,))

    # lookups ----------------------------------------------------------------------------------------------
    def team_for_token(self, token: str | None) -> Team:
        """The team a bot token belongs to, or not_authed / invalid_auth / token_revoked."""
        if not token:
            raise SlackError("not_authed")
        if token in self.revoked:
            raise SlackError("token_revoked")
        team_id = self.tokens.get(token)
        if team_id is None:
            raise SlackError("invalid_auth")
        return self.teams[team_id]

    def user(self, team: Team, user_id: Any) -> User:
        """A user of the caller's team, or user_not_found."""
        user = self.users.get(str(user_id or ""))
        if user is None or user.team_id != team.id:
            raise SlackError("user_not_found")
        return user

    def channel(self, team: Team, ref: Any, *, member: bool = True) -> Channel:
        """Resolve a channel id, `#name` or user id (its IM) the bot can see; `member` requires membership."""
        ref = str(ref or "")
        if ref in self.users and self.users[ref].team_id == team.id:
            found: Channel | None = self.im_for(team, ref)
        elif ref.startswith("#") or ref not in self.channels:
            name = ref.lstrip("#")
            found = next((c for c in self.channels.values() if c.team_id == team.id and c.name == name), None)
        else:
            found = self.channels[ref]
        if found is None or found.team_id != team.id:
            raise SlackError("channel_not_found")
        is_member = team.bot_user_id in found.members
        if found.kind != "public" and not is_member:
            raise SlackError("channel_not_found")
        if member and not is_member:
            raise SlackError("not_in_channel")
        return found

    def im_for(self, team: Team, user_id: str) -> Channel:
        """The IM between the bot and a user, opened on first use."""
        for channel in self.channels.values():
            if channel.kind == "im" and channel.team_id == team.id and channel.im_user == user_id:
                return channel
        return self.add_channel(self.new_id("D"), "", "im", (user_id,), team_id=team.id)

    def message(self, channel: Channel, ts: Any) -> Json:
        """A stored message, or message_not_found."""
        found = channel.find(str(ts or ""))
        if found is None:
            raise SlackError("message_not_found")
        return found

    def thread_root(self, channel: Channel, thread_ts: str) -> Json:
        """The parent of a thread (a reply's ts resolves to its parent), or thread_not_found."""
        found = channel.find(thread_ts)
        if found is None or (found.get("subtype") == "tombstone" and not found.get("reply_count")):
            raise SlackError("thread_not_found")
        parent_ts = found.get("thread_ts")
        if parent_ts and parent_ts != found["ts"]:
            return self.message(channel, parent_ts)
        return found

    # messages ---------------------------------------------------------------------------------------------
    def bot_message(self, team: Team, fields: Json) -> Json:
        """A message authored by the team's bot (shape of chat.postMessage's `message`)."""
        message: Json = {"user": team.bot_user_id, "type": "message", "bot_id": team.bot_id, "app_id": APP_ID}
        message["bot_profile"] = {"id": team.bot_id, "app_id": APP_ID, "name": "imagine", "team_id": team.id}
        message.update({k: v for k, v in fields.items() if v is not None})
        return message

    def store(self, channel: Channel, message: Json, thread_ts: str | None = None) -> Json:
        """Give a message its ts and team, file it in the channel and keep the thread's counters."""
        message["ts"] = self.next_ts()
        message["team"] = channel.team_id
        if thread_ts:
            root = self.thread_root(channel, thread_ts)
            message["thread_ts"] = root["ts"]
            message["parent_user_id"] = root.get("user")
            root["thread_ts"] = root["ts"]
            root["reply_count"] = root.get("reply_count", 0) + 1
            users = [*root.get("reply_users", []), message.get("user")]
            root["reply_users"] = list(dict.fromkeys(u for u in users if u))
            root["reply_users_count"] = len(root["reply_users"])
            root["latest_reply"] = message["ts"]
            state = self.assistant.get((channel.id, root["ts"]))
            if state is not None and message.get("bot_id"):  # the app's reply clears its status
                state.pop("status", None)
                state.pop("loading_messages", None)
        channel.messages.append(message)
        return message

    def delete(self, channel: Channel, ts: str) -> None:
        """Remove a message; a parent with replies becomes a tombstone, as in Slack."""
        message = self.message(channel, ts)
        if message.get("reply_count") and message.get("thread_ts") == ts:
            for key in ("blocks", "attachments", "files", "bot_id", "app_id", "bot_profile", "reactions"):
                message.pop(key, None)
            message.update(subtype="tombstone", text="This message was deleted.", user="USLACKBOT")
            return
        channel.messages.remove(message)
        parent_ts = message.get("thread_ts")
        root = channel.find(parent_ts) if parent_ts and parent_ts != ts else None
        if root is not None:
            root["reply_count"] = max(0, root.get("reply_count", 1) - 1)

    def thread(self, channel: Channel, thread_ts: str) -> list[Json]:
        """Parent then replies of a thread, oldest first."""
        root = self.thread_root(channel, thread_ts)
        replies = [m for m in channel.messages if m.get("thread_ts") == root["ts"] and m is not root]
        return [root, *replies]

    def history(self, channel: Channel) -> list[Json]:
        """Top-level messages and broadcast replies, newest first (conversations.history order)."""
        top = [
            m
            for m in channel.messages
            if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"
        ]
        return top[::-1]

    def react(self, channel: Channel, ts: Any, name: Any, user: str, *, add: bool) -> Json:
        """Add or remove `user`'s reaction; already_reacted / no_reaction / invalid_name like Slack."""
        name = str(name or "")
        if not name or ":" in name or any(c.isspace() for c in name):
            raise SlackError("invalid_name")
        message = self.message(channel, ts)
        reactions: list[Json] = message.setdefault("reactions", [])
        entry = next((r for r in reactions if r["name"] == name), None)
        if add:
            if entry is not None and user in entry["users"]:
                raise SlackError("already_reacted")
            if entry is None:
                entry = {"name": name, "users": [], "count": 0}
                reactions.append(entry)
            entry["users"].append(user)
        else:
            if entry is None or user not in entry["users"]:
                raise SlackError("no_reaction")
            entry["users"].remove(user)
            if not entry["users"]:
                reactions.remove(entry)
        if entry is not None:
            entry["count"] = len(entry["users"])
        if not reactions:
            message.pop("reactions")
        return message

    # triggers and response urls ---------------------------------------------------------------------------
    def issue_trigger(self, team_id: str, user: str) -> str:
        """A fresh trigger_id for an interaction by `user`."""
        n = next(self._ids)
        digest = hashlib.sha1(f"{team_id}:{user}:{n}".encode()).hexdigest()
        trigger_id = f"{self.now()}{n:03d}.{team_id}.{digest}"
        self.triggers[trigger_id] = Trigger(trigger_id, team_id, user, self.monotonic())
        return trigger_id

    def exchange_trigger(self, team: Team, trigger_id: Any) -> Trigger:
        """Use a trigger_id once: invalid_trigger_id, expired_trigger_id or exchanged_trigger_id otherwise."""
        trigger = self.triggers.get(str(trigger_id or ""))
        if trigger is None or trigger.team_id != team.id:
            raise SlackError("invalid_trigger_id")
        if trigger.used:
            raise SlackError("exchanged_trigger_id")
        if self.monotonic() - trigger.issued > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        trigger.used = True
        return trigger

    def new_hook(
        self,
        team_id: str,
        channel: str,
        user: str,
        message_ts: str | None = None,
        thread_ts: str | None = None,
    ) -> str:
        """Register a response_url and return it."""
        hook = ResponseHook(self.new_id("R"), team_id, channel, user, message_ts, thread_ts)
        self.hooks[hook.id] = hook
        return f"{self.base_url}response/{hook.id}"
