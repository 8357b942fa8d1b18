"""The look a prompt borrows from library hits: which of their phrases, chosen how.

Candidates are the hits' craft phrases (`retrieval.craft`: every classified phrase after a prompt's
subject, and every "by <artist>") plus the known modifiers of `retrieval.modifiers` found inside their
phrases ("a watercolor painting of a fox" holds "watercolor painting"). A candidate's score grows with the
hits that hold it, the better ranked the more. The choice then takes, for an idea:

* phrases the hits share (two or more hold them) or that the *best hit* holds (the best-ranked hit with
  two or more usable phrases); if that gives fewer than MIN_PHRASES, any hit's phrases;
* first the core of a look (medium, style, lighting, composition), then the strongest of the rest, at
  most MAX_PHRASES and a quota per category; an artist only where two hits agree;
* never a phrase that repeats the idea, names what the user said no to, contradicts the idea, the user's
  style or a phrase already chosen (`bot.writing.clashes`: one medium family, one era, ...), a second
  medium when the idea or the user's style names one, or an SD 1.x incantation the user did not ask for.

For "Use #n" (the *manner* of one hit) only that hit's phrases count, artists included, with roomier
quotas, so the prompt carries its medium, style, lighting and composition.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.engine.ports import HitForPrompt
from bot.writing.clashes import clash, facets, idea_clash
from bot.writing.dialect import is_incantation
from bot.writing.grounding import occurs
from retrieval.craft import assess_craft
from retrieval.modifiers import CATEGORIES, ModifierStats, split_segments

__all__ = ["MAX_PHRASES", "MIN_PHRASES", "Candidate", "Limits", "candidates", "pick_look"]

MIN_PHRASES = 3
MAX_PHRASES = 6
QUOTAS: Mapping[str, int] = dict(medium=1, style=2, artist=1, lighting=1, color=1, camera=1, quality=1)
MANNER_QUOTAS: Mapping[str, int] = dict(medium=1, style=2, artist=2, lighting=2, color=1, camera=2, quality=1)
CORE = ("medium", "style", "lighting", "camera")
_RANK_DECAY = 0.3  # weight of the hit at rank r (0-based): 1 / (1 + 0.3 r)
_SHARED_BONUS = 0.25
_MAX_WORDS = 5
_MAX_CHARS = 40
_UNKNOWN_MAX_WORDS = 3  # a longer phrase must be a modifier the library uses often (in the statistics)
_ORDER = {c: i for i, c in enumerate(CATEGORIES)}
_WORD_RE = re.compile(r"[^\W\d_]{4,}")
_BACKDROP_RE = re.compile(
    r"\b(?:plain |simple |solid )?(?:white|black|pink|blue|red|green|yellow|grey|gray|dark|light|pastel|"
    r"orange|purple|brown|beige|neutral|gradient|transparent|plain|simple|solid|minimal|studio) background\b"
)
_DIGITS_OK = re.compile(r"^(?:\d+ ?mm|\d{4}s|\d0s|3d|2d|\d+-bit)$")
_SKIP_WORDS = frozenset(["with", "from", "that", "this", "into", "over", "under", "their", "there", "where"])
_FILLER = frozenset(["by", "a", "an", "the", "of", "in", "style", "art", "and"])
_DANGLING = frozenset(["taken", "made", "created", "done", "generated"])
_GENERIC_STEMS = frozenset(["style", "styled", "color", "colors", "colour", "colours", "artwork"])
_EDGE_WORDS = frozenset(["of", "in", "on", "at", "with", "and", "or", "for", "to", "the", "a", "an", "by"])


@dataclass(frozen=True)
class Candidate:
    """A phrase of the hits: its category, the hits that hold it (by number) and its score."""

    phrase: str
    category: str
    hits: tuple[int, ...]
    score: float


@dataclass(frozen=True)
class Limits:
    """What the chosen phrases must respect: the user's words, their no's and what is already taken."""

    context: str  # the idea's subject and content and the user's style: never repeated or contradicted
    asked: str = ""  # everything the user typed: an incantation found here is theirs to keep
    avoid: tuple[str, ...] = ()  # --no words and the thread's negative words
    medium_taken: bool = False  # the idea or the user's style already names a medium


def _usable(phrase: str, category: str, stats: ModifierStats, subject_words: set[str]) -> bool:
    """Short, letters, not a bare generic word, and not the hit's own subject ("lighthouse painting")."""
    if category == "other" and _BACKDROP_RE.fullmatch(phrase):
        return True  # a plain backdrop: composition, whatever the hit is of
    words = phrase.split()
    if not 2 <= len(phrase) <= _MAX_CHARS or len(words) > _MAX_WORDS or category in ("other", "site"):
        return False
    if any(ch.isdigit() for ch in phrase) and not any(_DIGITS_OK.match(w) for w in words):
        return False
    if len(words) > _UNKNOWN_MAX_WORDS and category != "artist" and stats.get(phrase) is None:
        return False
    if words[-1] in _EDGE_WORDS or (words[0] in _EDGE_WORDS and category != "artist"):
        return False  # a broken piece: "illustration of"
    if len(words) > 1 and words[-1] in _DANGLING:
        return False  # "photo taken", "art made": the rest ("by ...") was cut off
    return category == "artist" or not (set(_WORD_RE.findall(phrase)) & subject_words)


def _subject_words(prompt: str, stats: ModifierStats) -> set[str]:
    """Content words of a library prompt's first phrase (what it is *of*), its style words left out."""
    segments = split_segments(prompt)
    words = set(_WORD_RE.findall(segments[0])) if segments else set()
    return {w for w in words if w not in _SKIP_WORDS and stats.category(w) == "other"}


def _category(phrase: str, category: str) -> str:
    """The phrase's category, with a plain backdrop ("white background") counted as composition."""
    return "camera" if category == "other" and _BACKDROP_RE.fullmatch(phrase) else category


def candidates(hits: Sequence[HitForPrompt], stats: ModifierStats) -> list[Candidate]:
    """Every usable phrase of the hits, best first (score, then library frequency, then first seen)."""
    found: dict[str, str] = {}
    for hit in hits:
        subject = _subject_words(hit.prompt, stats)
        pairs = list(assess_craft(hit.prompt).phrases)
        pairs += [(m.text, m.category) for m in stats.modifiers_in(hit.prompt, include_subject=True)]
        pairs += [(m.group(0), "other") for s in split_segments(hit.prompt) for m in _BACKDROP_RE.finditer(s)]
        for phrase, category in pairs:
            if phrase not in found and _usable(phrase, category, stats, subject):
                found[phrase] = _category(phrase, category)
    ranks = {hit.number: rank for rank, hit in enumerate(hits)}
    holders_of = {phrase: tuple(h.number for h in hits if occurs(phrase, h.prompt)) for phrase in found}
    scored = []
    for order, (phrase, category) in enumerate(found.items()):
        holders = holders_of[phrase]
        if not holders:  # normalized away from the hit's words ("in the style of x" read as "by x")
            continue
        if any(  # "watercolor" only ever inside "watercolor painting": the longer phrase says it all
            other != phrase and occurs(phrase, other) and set(holders) <= set(holders_of[other])
            for other in found
        ):
            continue
        score = sum(1 / (1 + _RANK_DECAY * ranks[n]) for n in holders)
        score += _SHARED_BONUS if len(holders) > 1 else 0.0
        known = stats.get(phrase)
        frequency = math.log1p(known.count) if known else 0.0
        scored.append((-score, -frequency, order, Candidate(phrase, category, holders, round(score, 4))))
    return [c for *_, c in sorted(scored, key=lambda row: row[:3])]


def best_hit(hits: Sequence[HitForPrompt], found: Sequence[Candidate]) -> int | None:
    """The best-ranked hit holding two or more usable phrases (else the first hit)."""
    for hit in hits:
        if sum(hit.number in c.hits for c in found) >= 2:
            return hit.number
    return hits[0].number if hits else None


class _Choice:
    """Phrases chosen so far, with the checks a new one must pass."""

    def __init__(self, limits: Limits, evidence: list[str], quotas: Mapping[str, int], cap: int) -> None:
        self.limits, self.evidence, self.quotas, self.cap = limits, evidence, quotas, cap
        self.idea_facets = facets(limits.context)
        self.chosen: list[Candidate] = []

    def allowed(self, c: Candidate) -> bool:
        """Whether a candidate may join: quota, the user's words and no's, and no contradiction."""
        taken = sum(x.category == c.category for x in self.chosen)
        if len(self.chosen) >= self.cap or taken >= self.quotas.get(c.category, 0):
            return False
        if is_incantation(c.phrase) and not occurs(c.phrase, self.limits.asked):
            return False
        if occurs(c.phrase, self.limits.context) or any(_overlaps(c.phrase, a) for a in self.limits.avoid):
            return False
        if _repeats(c, self.limits.context):
            return False
        mine = facets(c.phrase)
        medium = c.category == "medium" or any(axis == "medium" for axis, _ in mine)
        if medium and (self.limits.medium_taken or any(_has_medium(x) for x in self.chosen)):
            return False  # one medium: the idea's or the user's style, else one borrowed
        realism = ("realism", "real") in mine
        if realism and any(("realism", "real") in facets(x.phrase) for x in self.chosen):
            return False  # "photorealistic" and "hyper realistic" say one thing
        if idea_clash(c.phrase, self.limits.context, self.evidence) is not None:
            return False
        return not any(
            _overlaps(c.phrase, x.phrase) or clash(c.phrase, x.phrase, self.evidence) for x in self.chosen
        )

    def take(self, c: Candidate) -> bool:
        """Add the candidate when it is allowed."""
        if self.allowed(c):
            self.chosen.append(c)
            return True
        return False


def _has_medium(c: Candidate) -> bool:
    """A medium phrase, or one that names a medium family ("detailed matte painting")."""
    return c.category == "medium" or any(axis == "medium" for axis, _ in facets(c.phrase))


def _repeats(c: Candidate, context: str) -> bool:
    """The phrase says what the user already said: all its words, or the artist's surname, are there."""
    said = {w for w in re.findall(r"[^\W\d_]+", context.lower())}
    words = [w for w in re.findall(r"[^\W\d_]+", c.phrase.lower()) if w not in _FILLER]
    if c.category == "artist":
        return bool(words) and words[-1] in said
    return bool(words) and all(w in said for w in words)


def _overlaps(a: str, b: str) -> bool:
    """One phrase holds the other ("watercolor painting"), or both turn on one word ("high detail(ed)")."""
    return occurs(a, b) or occurs(b, a) or bool(_stems(a) & _stems(b))


def _stems(phrase: str) -> set[str]:
    """The telling words of a phrase, crudely stemmed ('detailed' → 'detail'), generic words left out."""
    words = re.findall(r"[^\W\d_]{5,}", phrase.lower())
    return {re.sub(r"(?:ly|ed|s)$", "", w) for w in words if w not in _GENERIC_STEMS}


def pick_look(
    hits: Sequence[HitForPrompt],
    found: Sequence[Candidate],
    limits: Limits,
    *,
    manner: bool = False,
) -> list[Candidate]:
    """The phrases to borrow, in category order (medium, style, artist, lighting, ...)."""
    # rounds until MIN_PHRASES are chosen: what the hits share or the best hit holds; then any hit's
    # phrases; then two per category (a second lighting or composition phrase) instead of one
    evidence = [hit.prompt for hit in hits]
    cap = sum(MANNER_QUOTAS.values()) if manner else MAX_PHRASES
    best = best_hit(hits, found)
    agreed = [c for c in found if c.category != "artist" or len(c.hits) > 1 or manner]
    strict = [c for c in agreed if manner or len(c.hits) > 1 or c.hits == (best,)]
    roomy = {category: max(2, quota) for category, quota in QUOTAS.items()}
    rounds = [(strict, MANNER_QUOTAS if manner else QUOTAS)]
    rounds += [] if manner else [(agreed, QUOTAS), (agreed, roomy)]
    choice = _Choice(limits, evidence, rounds[0][1], cap)
    for pool, quotas in rounds:
        choice.quotas = quotas
        for category in CORE:
            if not any(c.category == category for c in choice.chosen):
                next((c for c in pool if c.category == category and choice.take(c)), None)
        for c in pool:
            if c not in choice.chosen:
                choice.take(c)
        if len(choice.chosen) >= MIN_PHRASES:
            break
    return sorted(choice.chosen, key=lambda c: _ORDER.get(c.category, len(_ORDER)))
