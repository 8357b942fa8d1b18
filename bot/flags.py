"""Parsing `/imagine` text: the idea plus Midjourney-style flags (--ar, --seed, --no, --style, --n)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from bot.errors import BotError
from bot.ports import ASPECT_RATIOS
from bot.turns import TurnOptions

MAX_SEED = 4_294_967_294
MAX_IMAGES = 4
MAX_IDEA_CHARS = 1500
FLAG_NAMES = (
    "--ar",
    "--aspect",
    "--seed",
    "--no",
    "--style",
    "--n",
    "--avatar",
    "--model",
    "--settings",
    "--help",
)


class FlagError(BotError):
    """A flag is unknown or has a bad value; the message names the flag."""


@dataclass(frozen=True)
class ImagineCommand:
    """A parsed `/imagine` text."""

    idea: str
    options: TurnOptions
    avatar: bool = False
    model: str | None = None
    settings: bool = False
    help: bool = False


def normalize_aspect_ratio(value: str, flag: str = "--ar") -> str:
    """A supported aspect ratio ('3:2', '16x9', '1.5' → nearest supported), else FlagError naming `flag`."""
    text = value.strip().lower().replace("x", ":").replace("/", ":")
    if text in ASPECT_RATIOS:
        return text
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(?::(\d+(?:\.\d+)?))?", text)
    if not match:
        raise FlagError(f"{flag} {value!r} is not an aspect ratio: use W:H, e.g. {flag} 3:2")
    width, height = float(match.group(1)), float(match.group(2) or 1)
    if width <= 0 or height <= 0 or not 0.2 <= width / height <= 5:
        raise FlagError(f"{flag} {value!r} is out of range: use one of {', '.join(ASPECT_RATIOS)}")
    target = width / height
    return min(ASPECT_RATIOS, key=lambda r: abs(_ratio(r) - target))


def _ratio(value: str) -> float:
    """W:H as a float."""
    width, height = value.split(":")
    return int(width) / int(height)


def _value(tokens: list[str], index: int, flag: str) -> str:
    """The value after a flag, or FlagError naming it."""
    if index + 1 >= len(tokens) or tokens[index + 1].startswith("--"):
        raise FlagError(f"{flag} needs a value")
    return tokens[index + 1]


def _split(text: str) -> list[str]:
    """Tokens of the text, respecting quotes where they balance."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def parse_imagine(text: str) -> ImagineCommand:
    """Split `/imagine` text into the idea and its options; raise FlagError naming a bad flag."""
    tokens = _split(" ".join(str(text).replace("\u2014", "--").replace("\u2013", "--").split()))
    words: list[str] = []
    negative: list[str] = []
    found: dict[str, str] = {}
    flags: set[str] = set()
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if not token.startswith("--") or token == "--":
            words.append(token)
            index += 1
            continue
        flag = token.lower()
        if flag not in FLAG_NAMES:
            raise FlagError(f"unknown flag {token}: use --ar, --seed, --no, --style, --n or --avatar")
        if flag in ("--avatar", "--settings", "--help"):
            flags.add(flag)
            index += 1
            continue
        value = _value(tokens, index, flag)
        index += 2
        if flag == "--no":
            while index < len(tokens) and not tokens[index].startswith("--"):
                value += " " + tokens[index]
                index += 1
            negative.extend(part.strip() for part in value.split(",") if part.strip())
        else:
            found[flag] = value
    idea = " ".join(words).strip()
    if len(idea) > MAX_IDEA_CHARS:
        raise FlagError(f"the idea is too long ({len(idea)} characters; at most {MAX_IDEA_CHARS})")
    options = TurnOptions(
        aspect_ratio=_aspect(found),
        seed=_seed(found.get("--seed")),
        negative=tuple(negative),
        style=found.get("--style"),
        count=_count(found.get("--n")),
    )
    return ImagineCommand(
        idea, options, "--avatar" in flags, found.get("--model"), "--settings" in flags, "--help" in flags
    )


def _aspect(found: dict[str, str]) -> str | None:
    """The --ar (or --aspect) value, normalized."""
    for flag in ("--ar", "--aspect"):
        if flag in found:
            return normalize_aspect_ratio(found[flag], flag)
    return None


def _seed(value: str | None) -> int | None:
    """The --seed value as an int in range."""
    if value is None:
        return None
    if not value.isdigit() or int(value) > MAX_SEED:
        raise FlagError(f"--seed {value!r} must be a whole number from 0 to {MAX_SEED}")
    return int(value)


def _count(value: str | None) -> int:
    """The --n value (1..4)."""
    if value is None:
        return 1
    if not value.isdigit() or not 1 <= int(value) <= MAX_IMAGES:
        raise FlagError(f"--n {value!r} must be a whole number from 1 to {MAX_IMAGES}")
    return int(value)
