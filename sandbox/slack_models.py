"""Records of the sandbox workspace: ids, teams, users, channels, files, hooks, triggers and SlackError."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from typing import Any, Literal

Json = dict[str, Any]
ChannelKind = Literal["public", "private", "im"]

APP_ID = "A0IMAGINE"
DEFAULT_TEAM_ID = "T0001"
DEFAULT_BOT_TOKEN = "xoxb-T0001-sandbox"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"
GENERAL, RANDOM, PRIVATE = "C0GENERAL", "C0RANDOM", "G0PRIVATE"
ALICE_DM, BOB_DM = "D0ALICE", "D0BOB"
RESPONSE_URL_USES = 5  # Slack: a response_url may be used up to five times
_CHANNEL_TYPES = {"public": "channel", "private": "group", "im": "im"}


class SlackError(Exception):
    """A Web API failure: answered as `{"ok": false, "error": ...}` with `status` and extra fields."""

    def __init__(self, error: str, status: int = 200, **extra: Any) -> None:
        """Keep the Slack error code, HTTP status and any extra response fields."""
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra

    def body(self) -> Json:
        """The JSON body Slack would send."""
        return {"ok": False, "error": self.error, **self.extra}


@dataclass
class Team:
    """A workspace the app is installed in, with its bot token and bot identity."""

    id: str
    name: str
    domain: str
    bot_token: str
    bot_user_id: str
    bot_id: str
    scopes: tuple[str, ...] = ()


@dataclass
class User:
    """A member of a team (humans and the bot user)."""

    id: str
    team_id: str
    name: str
    real_name: str
    display_name: str = ""
    is_bot: bool = False

    def to_api(self) -> Json:
        """The `user` object of users.info."""
        image = f"https://avatars.sandbox.invalid/{self.id}"
        profile = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.display_name,
            "display_name_normalized": self.display_name,
            "team": self.team_id,
            "image_48": f"{image}_48.png",
            "image_72": f"{image}_72.png",
        }
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": False,
            "real_name": self.real_name,
            "tz": "Europe/London",
            "tz_offset": 0,
            "is_admin": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1700000000,
            "profile": profile,
        }


@dataclass
class Channel:
    """A conversation: public or private channel or an IM, with its members and every message (by ts)."""

    id: str
    team_id: str
    name: str
    kind: ChannelKind
    members: set[str]
    created: int
    im_user: str | None = None
    messages: list[Json] = field(default_factory=list)

    @property
    def channel_type(self) -> str:
        """The `channel_type` of message events: channel, group or im."""
        return _CHANNEL_TYPES[self.kind]

    def find(self, ts: str) -> Json | None:
        """The stored message with this ts, if any."""
        return next((m for m in self.messages if m["ts"] == ts), None)

    def to_api(self, viewer: str) -> Json:
        """The `channel` object of conversations.info as seen by `viewer`."""
        info: Json = {"id": self.id, "created": self.created, "is_archived": False, "is_org_shared": False}
        info["is_im"] = self.kind == "im"
        info["context_team_id"] = self.team_id
        if self.kind == "im":
            info.update(user=self.im_user, is_user_deleted=False, is_open=True)
            return info
        blank = {"value": "", "creator": "", "last_set": 0}
        info.update(
            name=self.name,
            name_normalized=self.name,
            is_channel=True,
            is_group=False,
            is_mpim=False,
            is_private=self.kind == "private",
            is_general=self.name == "general",
            is_shared=False,
            is_ext_shared=False,
            is_member=viewer in self.members,
            num_members=len(self.members),
            topic=dict(blank),
            purpose=dict(blank),
        )
        return info


@dataclass
class StoredFile:
    """A file created by files.getUploadURLExternal; `data` arrives with the upload POST."""

    id: str
    team_id: str
    user: str
    name: str
    length: int
    created: int
    alt_txt: str | None = None
    title: str = ""
    data: bytes | None = None
    completed: bool = False
    shares: dict[str, dict[str, list[Json]]] = field(default_factory=dict)

    def to_api(self, base_url: str, *, with_shares: bool = True) -> Json:
        """The `file` object of files.info / files.completeUploadExternal."""
        mimetype = mimetypes.guess_type(self.name)[0] or "application/octet-stream"
        filetype = self.name.rsplit(".", 1)[-1].lower() if "." in self.name else "binary"
        url = f"{base_url}files/{self.id}/{self.name}"
        shares = self.shares if with_shares else {}
        channels = sorted(shares.get("public", {}))
        private = sorted(shares.get("private", {}))
        return {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.name,
            "title": self.title or self.name,
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": filetype.upper(),
            "user": self.user,
            "user_team": self.team_id,
            "size": len(self.data) if self.data is not None else self.length,
            "mode": "hosted",
            "is_external": False,
            "is_public": bool(channels),
            "alt_txt": self.alt_txt,
            "url_private": url,
            "url_private_download": url,
            "permalink": f"https://sandbox.slack.invalid/files/{self.user}/{self.id}/{self.name}",
            "channels": channels,
            "groups": [c for c in private if not c.startswith("D")],
            "ims": [c for c in private if c.startswith("D")],
            "shares": {k: {ch: [dict(s) for s in v] for ch, v in by.items()} for k, by in shares.items()},
        }


@dataclass
class ResponseHook:
    """A response_url handed to the app with a slash command or an interaction."""

    id: str
    team_id: str
    channel: str
    user: str
    message_ts: str | None = None
    thread_ts: str | None = None
    uses: int = 0


@dataclass
class Trigger:
    """A trigger_id: valid for `ttl` seconds and exchangeable once (views.open / views.push)."""

    id: str
    team_id: str
    user: str
    issued: float
    used: bool = False
