"""Craft of a library prompt: its borrowable phrases beyond the subject, broken-text signals and a prior.

One definition, shared by ingest (the `craft` payload field), the ranking (score boosting by that field),
the exemplar phrases shown to users and `bench/bench_retrieval.py` (the craft share of a top 5):

* the prompt's first comma-separated phrase is its subject; every later phrase, and every "by <artist>"
  anywhere, that the modifier rules of `retrieval.modifiers` classify (medium, style, artist, lighting,
  camera/composition, color, quality, site) is a *craft phrase*;
* a prompt is *broken* when it is a fragment (under four words), repeats itself ("mr clean mr clean mr
  clean"), is mostly not letters, or carries stray one-letter/number phrases;
* a prompt is *crafted* when it has three or more craft phrases and is not broken;
* the *prior* in [0, 1] grows with the craft phrases (saturating at five) and is 0 for a broken prompt.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from retrieval.modifiers import CATEGORIES, classify_modifier, modifier_sized, split_artists, split_segments

CRAFT_FIELD = "craft"  # payload field holding the prior (ingest writes it, ranking boosts by it)
CRAFT_VERSION_FIELD = "craft_version"
# 2: a passive participle before "by" ("surrounded by wolves") no longer reads as an artist.
CRAFT_VERSION = 2  # bump when the definition changes: `retrieval.reprior` then rewrites stored priors
CRAFTED_MIN_PHRASES = 3
_SATURATION = 5
CRAFTED_MIN_PRIOR = CRAFTED_MIN_PHRASES / _SATURATION  # the prior of every crafted prompt is at least this
_MIN_WORDS = 4
_WORD_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_LETTER_RE = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class Craft:
    """What a prompt offers to borrow: (phrase, category) pairs beyond its subject, and why it is broken."""

    phrases: tuple[tuple[str, str], ...]
    broken: tuple[str, ...]

    @property
    def crafted(self) -> bool:
        """Three or more craft phrases and no broken-text signal."""
        return len(self.phrases) >= CRAFTED_MIN_PHRASES and not self.broken

    @property
    def prior(self) -> float:
        """Quality prior in [0, 1]: craft phrases saturating at five, 0 when broken."""
        if self.broken:
            return 0.0
        return round(min(len(self.phrases), _SATURATION) / _SATURATION, 3)

    def by_category(self) -> dict[str, list[str]]:
        """The craft phrases grouped by category, in the order they appear."""
        grouped: dict[str, list[str]] = {}
        for phrase, category in self.phrases:
            grouped.setdefault(category, []).append(phrase)
        return grouped


def assess_craft(prompt: str) -> Craft:
    """The craft phrases and broken-text signals of one prompt (pure function of its text)."""
    phrases: list[tuple[str, str]] = []
    seen: set[str] = set()
    segments = split_segments(prompt)
    for position, segment in enumerate(segments):
        head, artists = split_artists(segment)
        pieces = [(artist, "artist") for artist in artists]
        if position > 0 and head:
            category = classify_modifier(head)
            if category != "other":
                pieces.append((head, category))
        for phrase, category in pieces:
            if phrase not in seen:
                seen.add(phrase)
                phrases.append((phrase, category))
    return Craft(tuple(phrases), _broken(prompt, segments))


def _broken(prompt: str, segments: list[str]) -> tuple[str, ...]:
    """Reasons the text is a fragment or broken English (empty when it reads fine)."""
    words = [w.lower() for w in _WORD_RE.findall(prompt)]
    reasons: list[str] = []
    if len(words) < _MIN_WORDS:
        reasons.append("fragment")
    if _repeats(words):
        reasons.append("repeated")
    visible = [c for c in prompt if not c.isspace()]
    if visible and sum(1 for c in visible if _LETTER_RE.match(c)) < 0.6 * len(visible):
        reasons.append("not letters")
    if sum(1 for s in segments if len(s) <= 1 or not _LETTER_RE.search(s)) >= 2:
        reasons.append("stray pieces")
    return tuple(reasons)


def _repeats(words: list[str]) -> bool:
    """A word or a pair of words said three times in a row."""
    for size in (1, 2):
        for start in range(len(words) - 3 * size + 1):
            chunk = words[start : start + size]
            if chunk == words[start + size : start + 2 * size] == words[start + 2 * size : start + 3 * size]:
                return True
    return False


def craft_payload(prompt: str) -> dict[str, Any]:
    """The payload fields ingest stores for a prompt's craft (the prior and its definition version)."""
    return {CRAFT_FIELD: assess_craft(prompt).prior, CRAFT_VERSION_FIELD: CRAFT_VERSION}


def stored_prior(payload: Mapping[str, Any]) -> float | None:
    """The craft prior stored in a payload by this definition, or None (missing or outdated)."""
    value = payload.get(CRAFT_FIELD)
    if payload.get(CRAFT_VERSION_FIELD) != CRAFT_VERSION or not isinstance(value, int | float):
        return None
    return float(value)


def borrowable_phrases(prompt: str, limit: int = 6) -> dict[str, list[str]]:
    """A hit's phrases worth borrowing, by category in `CATEGORIES` order, at most `limit` in all.

    Only modifier-sized phrases: a long one that mentions a light or a color ("short wavy light brown hair
    sitting on top of a stack of books") describes the picture's content, which is not the hit's to lend."""
    grouped = assess_craft(prompt).by_category()
    chosen: dict[str, list[str]] = {}
    left = limit
    for category in CATEGORIES:
        phrases = [p for p in grouped.get(category, []) if modifier_sized(p)][: max(0, left)]
        if phrases:
            chosen[category] = phrases
            left -= len(phrases)
    return chosen


def borrowable_line(prompt: str, limit: int = 4) -> str:
    """The phrases worth borrowing as one short line ("watercolor, soft light, by beatrix potter")."""
    return ", ".join(p for phrases in borrowable_phrases(prompt, limit).values() for p in phrases)
