"""The demo's transcript: a channel's messages, threads, ephemerals and people's actions as plain text."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

Json = dict[str, Any]

WIDTH = 100
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
BOT_NAME = "imagine"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EMOJI = {
    "frame_with_picture": "🖼️",
    "books": "📚",
    "warning": "⚠️",
    "game_die": "🎲",
    "twisted_rightwards_arrows": "🔀",
    "pencil2": "✏️",
    "floppy_disk": "💾",
    "busts_in_silhouette": "👥",
    "trophy": "🏆",
    "ballot_box_with_ballot": "🗳️",
    "x": "❌",
    "repeat": "🔁",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "mag": "🔍",
    "writing_hand": "✍️",
    "art": "🎨",
    "outbox_tray": "📤",
    "no_entry_sign": "🚫",
    "wave": "👋",
    "seedling": "🌱",
    "scissors": "✂️",
    "arrow_up_small": "🔼",
    "white_check_mark": "✅",
    "sparkles": "✨",
    "+1": "👍",
    "thumbsup": "👍",
    "-1": "👎",
    "thumbsdown": "👎",
    **{name: f"{digit}\ufe0f\u20e3" for digit, name in enumerate(DIGITS)},
}
_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<!\w)_(?=\S)([^\n]+?)(?<=\S)_(?!\w)")
_BUTTON = re.compile(r"\[[^\[\]\n]{1,80}\]")
_GLUE = "\x1f"
_SHORTCODE = re.compile(r":([a-z0-9_+\-]+):")
_LEADING_SHORTCODES = re.compile(r"^(?::[a-z0-9_+\-]+:\s*)+")
_LEADING_SYMBOLS = re.compile(r"^[^\w@#(\[]+")


@dataclass(frozen=True)
class Action:
    """Something a person did that leaves no message of its own: a slash command, a click, a reaction."""

    ts: str
    thread_ts: str | None
    text: str


@dataclass(frozen=True)
class SavedImage:
    """An uploaded file written to the output folder."""

    path: Path
    size: tuple[int, int] | None
    kind: str


@dataclass(frozen=True)
class ChannelLog:
    """What a channel holds at the end: top-level messages, thread replies, ephemerals and actions."""

    name: str
    messages: Sequence[Json]
    replies: Mapping[str, Sequence[Json]]
    ephemerals: Sequence[Json]
    actions: Sequence[Action]


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk, or None for anything else."""
    if not data.startswith(PNG_MAGIC) or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def shown_path(path: Path) -> str:
    """A path relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def emojize(text: str) -> str:
    """Known :shortcodes: as emoji (unknown ones stay as written)."""
    return _SHORTCODE.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)


class Renderer:
    """Turns Slack messages into the lines a person would read in the channel."""

    def __init__(
        self, names: Mapping[str, str], bot_user: str, images: Mapping[str, SavedImage], width: int = WIDTH
    ) -> None:
        """`names`: user and channel id -> name; `images`: file id -> where the demo saved it."""
        self.names = names
        self.bot_user = bot_user
        self.images = images
        self.width = width

    # text ------------------------------------------------------------------------------------------------
    def mrkdwn(self, text: str) -> str:
        """Slack mrkdwn as readable text: mentions by name, links, no emphasis marks, quotes, emoji."""
        text = _LINK.sub(self._link, text)
        text = _BOLD.sub(r"\1", text)
        text = _ITALIC.sub(r"\1", text)
        lines = [("┃ " + line[1:].lstrip()) if line.startswith(">") else line for line in text.split("\n")]
        text = "\n".join(lines).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        return emojize(text)

    def _link(self, match: re.Match[str]) -> str:
        """One <…> of mrkdwn: a user, channel, special mention or URL."""
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):
            return "@" + self.names.get(target[1:], label or target[1:])
        if target.startswith("#"):
            return "#" + (label or self.names.get(target[1:], target[1:]))
        if target.startswith("!"):
            return "@" + (label or target[1:].split("^")[0])
        return f"{label} ({target})" if label else target

    def one_line(self, message: Json) -> str:
        """A message's visible text folded onto one line (for error reports)."""
        lines = [line for block in message.get("blocks") or [] for line in self.block(block)]
        text = " ".join(lines) if lines else self.mrkdwn(str(message.get("text") or ""))
        return " ".join(_LEADING_SYMBOLS.sub("", text).split())

    # blocks ----------------------------------------------------------------------------------------------
    def block(self, block: Json) -> list[str]:
        """The lines of one Block Kit block."""
        kind = block.get("type")
        if kind in ("section", "header"):
            lines = self._text(block.get("text")).split("\n")
            lines += [self._text(field) for field in block.get("fields") or []]
            accessory = block.get("accessory")
            if isinstance(accessory, dict):  # a list item (hit, candidate): later lines hang under it
                lines = [f"{lines[0]}   {self._element(accessory)}".strip(), *("    " + x for x in lines[1:])]
            return lines
        if kind == "context":
            return [self._element(element) for element in block.get("elements") or []]
        if kind == "actions":
            return [" ".join(self._element(element) for element in block.get("elements") or [])]
        if kind == "image":
            return [f"[image: {block.get('alt_text', '')}]"]
        if kind == "rich_text":
            return "".join(self._rich(element) for element in block.get("elements") or []).split("\n")
        return []

    def _text(self, obj: Any) -> str:
        """A text object (mrkdwn or plain_text)."""
        if not isinstance(obj, dict):
            return ""
        text = str(obj.get("text") or "")
        return self.mrkdwn(text) if obj.get("type") == "mrkdwn" else emojize(text)

    def _element(self, element: Json) -> str:
        """A context element or an interactive element."""
        kind = element.get("type")
        if kind in ("mrkdwn", "plain_text"):
            return self._text(element)
        if kind == "image":
            return f"[image: {element.get('alt_text', '')}]"
        text = element.get("text") if isinstance(element.get("text"), dict) else {}
        label = _LEADING_SHORTCODES.sub("", str((text or {}).get("text") or "").strip()).strip()
        return f"[{emojize(label or str(kind))}]"

    def _rich(self, element: Json) -> str:
        """The text of a rich_text element (what people type)."""
        kind = element.get("type")
        if kind == "text":
            return str(element.get("text") or "")
        if kind == "user":
            return "@" + self.names.get(str(element.get("user_id")), str(element.get("user_id")))
        if kind == "emoji":
            return emojize(f":{element.get('name')}:")
        if kind == "link":
            return str(element.get("text") or element.get("url") or "")
        return "".join(self._rich(child) for child in element.get("elements") or [])

    # messages --------------------------------------------------------------------------------------------
    def author(self, message: Json) -> str:
        """Who posted a message: the app's display name or the person's name."""
        if message.get("bot_id") or message.get("user") == self.bot_user:
            return str((message.get("bot_profile") or {}).get("name") or BOT_NAME)
        return self.names.get(str(message.get("user")), str(message.get("user") or "someone"))

    def message(self, message: Json, only_for: str | None = None) -> list[str]:
        """A message: author and time, then its text, files and reactions (ephemerals come from the app)."""
        author = BOT_NAME if only_for else self.author(message)
        heading = f"{author}  {clock(str(message.get('ts') or message.get('message_ts') or '0'))}"
        if only_for:
            heading += f"  (only visible to @{self.names.get(only_for, only_for)})"
        body = [line for block in message.get("blocks") or [] for line in self.block(block)]
        if not body and message.get("text"):
            body = self.mrkdwn(str(message["text"])).split("\n")
        body += self._files(message.get("files") or [])
        reactions = [f":{r['name']}: {len(r.get('users') or [])}" for r in message.get("reactions") or []]
        if reactions:
            body.append(emojize("   ".join(reactions)))
        return [heading, *self._wrap(body, "  ")]

    def _files(self, files: Sequence[Json]) -> list[str]:
        """Uploaded files: 📎 title (W×H PNG) → where the demo saved it; one title line for several."""
        if not files:
            return []
        title = str(files[0].get("title") or files[0].get("name") or "file")
        if len(files) == 1:
            return [f"📎 {title} {self._saved(files[0])}"]
        return [f"📎 {len(files)} images: {title}", *(f"   {self._saved(file)}" for file in files)]

    def _saved(self, file: Json) -> str:
        """(W×H PNG) → path of a file the demo saved, or its Slack name."""
        saved = self.images.get(str(file.get("id")))
        if saved is None:
            return f"({file.get('name', 'not saved')})"
        size = f"{saved.size[0]}×{saved.size[1]} " if saved.size else ""
        return f"({size}{saved.kind}) → {shown_path(saved.path)}"

    def _wrap(self, lines: Iterable[str], indent: str) -> list[str]:
        """Lines wrapped to the width with a hanging indent."""
        wrapped: list[str] = []
        for line in lines:
            if not line.strip():
                continue
            kept = _BUTTON.sub(lambda m: m.group(0).replace(" ", _GLUE), line)  # never split [Use #2]
            hang = "┃ " if kept.startswith("┃ ") else " " * (len(kept) - len(kept.lstrip(" ")) + 4)
            parts = textwrap.wrap(
                kept,
                self.width,
                initial_indent=indent,
                subsequent_indent=indent + hang,
                break_on_hyphens=False,
            )
            wrapped += [part.replace(_GLUE, " ") for part in parts]
        return wrapped

    # the channel -----------------------------------------------------------------------------------------
    def channel(self, log: ChannelLog) -> list[str]:
        """Every top-level item in time order, each thread indented under its root."""
        lines = [f"#{log.name}", "─" * (len(log.name) + 1)]
        items: list[tuple[str, str, Any]] = [(str(m["ts"]), "message", m) for m in log.messages]
        items += [(a.ts, "action", a) for a in log.actions if a.thread_ts is None]
        items += [(str(e["message_ts"]), "ephemeral", e) for e in log.ephemerals if not e.get("thread_ts")]
        for ts, kind, item in sorted(items, key=lambda entry: float(entry[0])):
            lines.append("")
            lines += self._item(kind, item)
            if kind == "message" and ts in log.replies:
                lines += self._thread(log, ts)
        return lines

    def _thread(self, log: ChannelLog, root_ts: str) -> list[str]:
        """A thread's replies, actions and ephemerals, indented under the root."""
        replies = log.replies[root_ts]
        count = len(replies)
        lines = [f"  💬 {count} repl{'y' if count == 1 else 'ies'}"]
        items: list[tuple[str, str, Any]] = [(str(m["ts"]), "message", m) for m in replies]
        items += [(a.ts, "action", a) for a in log.actions if a.thread_ts == root_ts]
        items += [
            (str(e["message_ts"]), "ephemeral", e) for e in log.ephemerals if e.get("thread_ts") == root_ts
        ]
        for _, kind, item in sorted(items, key=lambda entry: float(entry[0])):
            lines.append("  │")
            lines += ["  │ " + line for line in self._item(kind, item)]
        return lines

    def _item(self, kind: str, item: Any) -> list[str]:
        """One message, ephemeral or action."""
        if kind == "action":
            return [f"> {item.text}"]
        if kind == "ephemeral":
            return self.message(item, only_for=str(item.get("user")))
        return self.message(item)


def clock(ts: str) -> str:
    """A Slack ts as local wall-clock time."""
    try:
        return datetime.fromtimestamp(float(ts)).strftime("%H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return "--:--:--"
