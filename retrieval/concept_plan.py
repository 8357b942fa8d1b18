"""Concept plans: an idea's concepts, each with the words that express it, written by a planner (Claude).

The re-rank's own concept groups are the idea's words as typed plus the alias lexicon, so it cannot
tell the subject from a passing adjective or know that a corgi is a dog. A plan says both: its first
concept is the subject, and each concept lists its synonyms and kinds ("dog": dog, puppy, corgi...).
A candidate covers a concept when one of its phrases occurs in the prompt as whole words (a plural
allowed), and its coverage is the share of concepts it covers: the same rule the evaluation set's
hand-written groups use (bench/data/README.md), which is why a plan as good as those groups lifts
precision@5 to the first stage's ceiling (bench/RESULTS.md, the "planner ceiling" rows).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

MAX_CONCEPTS = 6
MAX_PHRASES = 40
MAX_PHRASE_CHARS = 60
_SPACE_RE = re.compile(r"[\s_-]+")
_WORD_RE = re.compile(r"[^\W_]")


@dataclass(frozen=True)
class PlannedConcept:
    """One concept of an idea: its name, the regexes (whole words, any case) that express it, and the
    phrases they were written from (empty for a plan of regexes)."""

    name: str
    patterns: tuple[str, ...]
    phrases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConceptPlan:
    """An idea's concepts, the subject first, and who wrote them ('claude', 'evaluation'...)."""

    concepts: tuple[PlannedConcept, ...]
    source: str

    @classmethod
    def from_phrases(cls, groups: Mapping[str, Sequence[str]], source: str) -> ConceptPlan | None:
        """A plan from plain phrases per concept (a planner's answer); None when no concept has a phrase.

        Phrases are matched literally as whole words, a space or hyphen matching either, the last word
        also in its plural; at most MAX_CONCEPTS concepts of MAX_PHRASES phrases of MAX_PHRASE_CHARS are
        kept."""
        concepts = []
        for name, phrases in list(groups.items())[:MAX_CONCEPTS]:
            kept = {p: _phrase(w) for w in phrases[:MAX_PHRASES] if (p := _phrase_pattern(w))}
            if kept:
                concepts.append(
                    PlannedConcept(str(name)[:MAX_PHRASE_CHARS], tuple(kept), tuple(kept.values()))
                )
        return cls(tuple(concepts), source) if concepts else None

    @classmethod
    def from_patterns(
        cls,
        groups: Mapping[str, Sequence[str]],
        source: str,
        phrases: Mapping[str, Sequence[str]] | None = None,
    ) -> ConceptPlan:
        """A plan from regexes per concept (the evaluation set's groups, for the bench's ceiling rows),
        with plain `phrases` per concept for the keyword search if given."""
        words = phrases or {}
        return cls(
            tuple(PlannedConcept(n, tuple(p), tuple(words.get(n, ()))) for n, p in groups.items()), source
        )

    def search_words(self) -> str:
        """Every phrase of the plan, for the keyword (BM25) query: the synonyms widen its recall."""
        return " ".join(p for c in self.concepts for p in c.phrases)

    @cached_property
    def _compiled(self) -> tuple[re.Pattern[str], ...]:
        whole = r"(?<!\w)(?:{})(?!\w)"  # \b, but also around a phrase that ends in punctuation
        return tuple(re.compile(whole.format("|".join(c.patterns)), re.IGNORECASE) for c in self.concepts)

    def covered(self, text: str) -> tuple[str, ...]:
        """The names of the concepts `text` expresses."""
        return tuple(c.name for c, p in zip(self.concepts, self._compiled, strict=True) if p.search(text))

    def describe(self) -> str:
        """One line for --explain: each concept with its first phrases."""
        return "; ".join(f"{c.name}: {', '.join((c.phrases or c.patterns)[:4])}" for c in self.concepts)


class ConceptPlanner(Protocol):
    """Writes an idea's concept plan (Claude: bot/writing/concept_planner.py); None when it cannot."""

    def plan(self, idea: str) -> ConceptPlan | None:
        """The idea's concepts, the subject first, or None."""
        ...


def _phrase(phrase: object) -> str:
    """A phrase as kept: one line of single spaces, at most MAX_PHRASE_CHARS."""
    return " ".join(str(phrase).split())[:MAX_PHRASE_CHARS]


def _phrase_pattern(phrase: object) -> str:
    """The regex of one phrase: its words escaped, spaces and hyphens alike, the last word maybe plural."""
    words = [w for w in _SPACE_RE.split(_phrase(phrase).lower()) if w]
    if not words or not any(_WORD_RE.search(w) for w in words):
        return ""
    *head, last = (re.escape(w) for w in words)
    return r"[\s-]+".join([*head, last + r"(?:s|es)?"])
