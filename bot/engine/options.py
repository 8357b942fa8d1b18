"""Parsing `/imagine` text: the idea plus Midjourney-style options (--ar, --seed, --no, --style, --n...).

The text is what Slack sends, so it is cleaned first: Slack's three HTML entities (`&amp;` `&lt;` `&gt;`)
are unescaped, control and invisible characters removed (line breaks and tabs become spaces), and an
autocorrected dash before a option name (`—ar 3:2`, `–seed 7`) counts as `--`. Idea words are kept as typed
(quotes and apostrophes included); a option value may be quoted to span words (`--style "oil painting"`).
An idea longer than MAX_IDEA_CHARS keeps its first MAX_IDEA_CHARS characters (cut at a word boundary):
a long paste still gets a picture rather than an error, and the thread root shows what was used.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bot.config import PROVIDERS_IMAGE, ConfigError, split_provider
from bot.engine.ports import ASPECT_RATIOS
from bot.engine.turn_errors import BotError
from bot.engine.turns import TurnOptions

MAX_SEED = 4_294_967_294
MAX_IMAGES = 4
AVATAR_DEFAULT = 6
MAX_CANDIDATES = 9
MAX_IDEA_CHARS = 2000
OPTION_NAMES = (
    "--ar",
    "--aspect",
    "--seed",
    "--no",
    "--style",
    "--n",
    "--avatar",
    "--model",
    "--defaults",
    "--settings",
    "--help",
)
SWITCHES = ("--avatar", "--defaults", "--settings", "--help")  # --settings: the old name of --defaults
# Short names for --model; anything else must be 'provider:model-id' with an image provider.
MODEL_ALIASES = {
    "offline": "offline",
    "sd3.5": "bedrock:stability.sd3-5-large-v1:0",
    "core": "bedrock:stability.stable-image-core-v1:1",
    "ultra": "bedrock:stability.stable-image-ultra-v1:1",
    "nova": "bedrock:amazon.nova-canvas-v1:0",
}

_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_SPACING_CONTROL = re.compile(r"[\t\n\v\f\r\x1c-\x1f\x85]")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
# Zero-width spaces, soft hyphen, word joiner, BOM, direction marks and bidi embeddings/overrides/isolates.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
# ZWJ/ZWNJ are kept inside words (emoji sequences, Persian, Indic scripts) but not at a word's edge.
_EDGE_JOINER = re.compile(r"(?<!\S)[\u200c\u200d]+|[\u200c\u200d]+(?!\S)")
_OPTION_WORDS = "|".join(name[2:] for name in OPTION_NAMES)
_DASHES = "\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_SMART_DASH = re.compile(
    rf"(?<!\S)(?:[{_DASHES}]-?|-[{_DASHES}])(?=(?:{_OPTION_WORDS})(?:=|\s|$))", re.IGNORECASE
)
_OPTION = re.compile(r"(--[^\W\d_][\w-]*)(?:=(.*))?", re.DOTALL)
_QUOTES = {'"': '"\u201d', "\u201c": "\u201d\u201c\"", "\u201e": "\u201c\u201d\"", "'": "'\u2019",
           "\u2018": "\u2019'"}  # fmt: skip
_QUOTE_CHARS = "\"'\u201c\u201d\u201e\u2018\u2019"


class OptionError(BotError):
    """A option is unknown or has a bad value; the message names the option."""


@dataclass(frozen=True)
class ImagineCommand:
    """A parsed `/imagine` text (`model`: a validated 'provider:model-id' or 'offline')."""

    idea: str
    options: TurnOptions
    avatar: bool = False
    model: str | None = None
    defaults: bool = False  # --defaults: open this channel's defaults instead of drawing
    help: bool = False


def escape_slack(text: str) -> str:
    """Text as Slack would send it (`&`, `<`, `>` escaped), so parse_imagine gives the same text back."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clean_text(text: str) -> str:
    """Slack text made plain: entities unescaped, control/invisible characters gone, spaces folded."""
    text = _ENTITY.sub(lambda match: _ENTITIES[match.group(1)], str(text))
    text = _CONTROL.sub("", _SPACING_CONTROL.sub(" ", text))
    text = _EDGE_JOINER.sub("", _INVISIBLE.sub("", text))
    return " ".join(_SMART_DASH.sub("--", " ".join(text.split())).split())


def normalize_aspect_ratio(value: str, option: str = "--ar") -> str:
    """A supported aspect ratio ('3:2', '16x9', '1.5' → nearest), else OptionError naming `option`."""
    text = unicodedata.normalize("NFKC", value).strip().lower()
    text = text.replace("x", ":").replace("\u00d7", ":").replace("/", ":")
    if text in ASPECT_RATIOS:
        return text
    match = re.fullmatch(r"([0-9]{1,6}(?:\.[0-9]{1,6})?)(?::([0-9]{1,6}(?:\.[0-9]{1,6})?))?", text)
    if not match:
        raise OptionError(f"{option} {_shown(value)} is not an aspect ratio: use W:H, e.g. {option} 3:2")
    width, height = float(match.group(1)), float(match.group(2) or 1)
    if width <= 0 or height <= 0 or not 0.2 <= width / height <= 5:
        raise OptionError(f"{option} {_shown(value)} is out of range: use one of {', '.join(ASPECT_RATIOS)}")
    target = width / height
    return min(ASPECT_RATIOS, key=lambda r: abs(_ratio(r) - target))


def normalize_model(value: str, option: str = "--model") -> str:
    """A short model name or 'provider:model-id' for an image provider, else OptionError naming `option`."""
    text = unicodedata.normalize("NFKC", value).strip()
    text = MODEL_ALIASES.get(text.lower(), text)
    try:
        split_provider(text, option, PROVIDERS_IMAGE)
    except ConfigError as exc:
        raise OptionError(
            f"{option} {_shown(value)} is not an image model: use a short name "
            f"({', '.join(MODEL_ALIASES)}) or provider:model-id with provider one of "
            f"{', '.join(PROVIDERS_IMAGE)}, e.g. {option} {MODEL_ALIASES['sd3.5']}"
        ) from exc
    return text


def _ratio(value: str) -> float:
    """W:H as a float."""
    width, height = value.split(":")
    return int(width) / int(height)


def _shown(value: str, limit: int = 40) -> str:
    """A user's value quoted for an error message, clipped."""
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


def _option_of(token: str) -> tuple[str, str | None] | None:
    """(option name in lower case, inline `=value` or None) when the token is a option, else None."""
    match = _OPTION.fullmatch(unicodedata.normalize("NFKC", token))
    return (match.group(1).lower(), match.group(2)) if match else None


def _take_value(tokens: list[str], index: int, option: str, inline: str | None) -> tuple[str, int]:
    """The value of the option at `index` and the index after it; a quoted value may span tokens."""
    if inline is not None:
        value, after = inline, index + 1
    elif index + 1 >= len(tokens) or _option_of(tokens[index + 1]):
        raise OptionError(f"{option} needs a value")
    else:
        value, after = tokens[index + 1], index + 2
    closers = _QUOTES.get(value[:1])
    if closers and inline is None:
        for end in range(index + 1, len(tokens)):
            token = tokens[end][1:] if end == index + 1 else tokens[end]
            if token[-1:] in closers:
                value, after = " ".join(tokens[index + 1 : end + 1]), end + 1
                break
    value = value.strip(_QUOTE_CHARS).strip()
    if not value:
        raise OptionError(f"{option} needs a value")
    return value, after


def _shorten(idea: str) -> str:
    """The idea cut to MAX_IDEA_CHARS, at the last space when one is near the end."""
    if len(idea) <= MAX_IDEA_CHARS:
        return idea
    cut = idea[: MAX_IDEA_CHARS + 1]
    space = cut.rfind(" ", MAX_IDEA_CHARS - 200)
    return (cut[:space] if space > 0 else cut[:MAX_IDEA_CHARS]).rstrip()


def _has_content(idea: str) -> bool:
    """False for an idea of punctuation alone (a stray `--` or `...`): there is nothing to draw."""
    return any(unicodedata.category(char)[0] not in "PZ" for char in idea)


def parse_imagine(text: str, avatar: bool = False) -> ImagineCommand:
    """Split `/imagine` text (as Slack sends it) into the idea and its options; OptionError names the bad one.

    `avatar` (the /avatar command) or an `--avatar` switch make `--n` the number of candidates (2-9).
    """
    tokens = clean_text(text).split()
    words: list[str] = []
    negative: list[str] = []
    found: dict[str, str] = {}
    switches: set[str] = set()
    index = 0
    while index < len(tokens):
        parsed = _option_of(tokens[index])
        if parsed is None:
            words.append(tokens[index])
            index += 1
            continue
        option, inline = parsed
        if option not in OPTION_NAMES:
            raise OptionError(
                f"unknown option {_shown(tokens[index])}: use --ar, --seed, --no, --style, --n, --model, "
                "--avatar or --defaults"
            )
        if option in SWITCHES:
            switches.add(option)
            index += 1
            continue
        value, index = _take_value(tokens, index, option, inline)
        if option == "--no":
            while index < len(tokens) and not _option_of(tokens[index]):
                value += " " + tokens[index]
                index += 1
            parts = (part.strip().strip(_QUOTE_CHARS).strip() for part in value.split(","))
            negative.extend(part for part in parts if part)
        else:
            found[option] = value
    idea = " ".join(words)
    idea = _shorten(idea) if _has_content(idea) else ""
    avatar = avatar or "--avatar" in switches
    options = TurnOptions(
        aspect_ratio=_aspect(found),
        seed=_seed(found.get("--seed")),
        negative=tuple(negative),
        style=found.get("--style"),
        count=_candidates(found.get("--n")) if avatar else _count(found.get("--n")),
    )
    model = normalize_model(found["--model"]) if "--model" in found else None
    defaults = bool(switches & {"--defaults", "--settings"})
    return ImagineCommand(idea, options, avatar, model, defaults, "--help" in switches)


def _aspect(found: dict[str, str]) -> str | None:
    """The --ar (or --aspect) value, normalized."""
    for option in ("--ar", "--aspect"):
        if option in found:
            return normalize_aspect_ratio(found[option], option)
    return None


def _whole(value: str, option: str, low: int, high: int) -> int:
    """A whole number in [low, high], else OptionError naming `option`."""
    text = unicodedata.normalize("NFKC", value).strip()
    if not (text.isdecimal() and len(text) <= len(str(high))) or not (low <= int(text) <= high):
        raise OptionError(f"{option} {_shown(value)} must be a whole number from {low} to {high}")
    return int(text)


def _seed(value: str | None) -> int | None:
    """The --seed value as an int in range."""
    return None if value is None else _whole(value, "--seed", 0, MAX_SEED)


def _count(value: str | None) -> int:
    """The --n value (1..4)."""
    return 1 if value is None else _whole(value, "--n", 1, MAX_IMAGES)


def _candidates(value: str | None) -> int:
    """The --n value of an avatar brainstorm (2..9 candidates, 6 when not given)."""
    return AVATAR_DEFAULT if value is None else _whole(value, "--n", 2, MAX_CANDIDATES)
