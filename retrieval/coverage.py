"""Concept coverage: how much of an idea each candidate prompt says, in the library's words.

An idea is split into concept groups: each content word (BM25's English tokenizer, stemmer and
stopwords, so "dogs" covers "dog"), and each phrase of the alias lexicon with its library words as
alternatives ("striped big cat" or "tiger"). A word that no candidate contains is checked against the
candidates' own words for a spelling slip ("astronot" → "astronaut", difflib ratio ≥ 0.75); a group that
no candidate covers even then ("pls", "vibes") cannot tell candidates apart and is left out. A
candidate's coverage is the share of the remaining groups it contains.

Hand-written because it needs the query's words at query time: Qdrant's score boosting (`Formula`)
reads stored payload fields and the query's vector scores, not per-query term matches, and its sparse
(BM25) score rewards short prompts and repeated terms rather than covering every concept. Measured in
`bench/bench_retrieval.py` (the "+ coverage" rows); the candidates are the dense top 50, where the
relevant prompts almost always are, so the re-rank costs about a millisecond.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from retrieval.aliases import expand, query_words
from retrieval.index_ports import SparseEncoder

SPELLING_CUTOFF = 0.75


def _words(text: str) -> frozenset[str]:
    """A set of words written as one string."""
    return frozenset(text.split())


# Words of an idea that do not name what the picture shows, left out of its concepts with `concepts_only`:
# size and degree ("a little dog" is a dog picture; a little girl covers "little"), chat filler, and what
# the picture is for or how the idea is framed ("an avatar for the data team", "in the style of").
# Forms a picture takes (logo, badge, sticker, emoji, poster) stay concepts. Everyday English chosen for
# the lever; of the evaluation ideas, only tuning-half ones were read for it (no word here occurs only in
# the held-out half). Measured as a row of bench/bench_retrieval.py.
NOT_CONCEPTS = _words(
    "little lil small smol tiny teeny big huge giant large massive enormous gigantic super really very "
    "whole absolute totally extremely "
    "pls please plz vibes vibe ngl highkey tbh omg lol make go hard want wanna need just "
    "sick mood szn "
    "team teams crew club guild channel squad profile pic pics picture pictures image images avatar "
    "mascot style styled like version art artwork"
)
_MIN_SLIP_LENGTH = 4
_POOL_WORD_RE = re.compile(r"[^\W\d_]{3,}")


@dataclass(frozen=True)
class ConceptGroup:
    """One concept of the idea: its words as typed and the alternative term sets that express it."""

    label: str
    alternatives: tuple[frozenset[int], ...]

    def covered_by(self, terms: frozenset[int]) -> bool:
        """Whether a prompt's terms contain every term of one alternative."""
        return any(alternative <= terms for alternative in self.alternatives)


@dataclass(frozen=True)
class Coverage:
    """Per-candidate coverage in [0, 1], and which concept groups counted (with any spelling fix)."""

    scores: tuple[float, ...]
    groups: tuple[ConceptGroup, ...]
    covered: tuple[tuple[str, ...], ...]


class CoverageScorer:
    """Scores candidates by the share of the idea's concept groups they cover."""

    def __init__(self, encoder: SparseEncoder) -> None:
        """Tokenize with the index's BM25 encoder, so coverage and BM25 agree on words."""
        self._encoder = encoder

    def _terms(self, text: str) -> frozenset[int]:
        return frozenset(self._encoder.encode_query(text).indices)

    def groups(self, query: str, concepts_only: bool = False) -> list[ConceptGroup]:
        """The idea's concept groups: alias phrases with their library words, then every content word
        (but NOT_CONCEPTS words with `concepts_only`)."""
        words = query_words(query)
        groups: list[ConceptGroup] = []
        taken = [False] * len(words)
        for match in expand(query):
            alternatives = [self._terms(match.phrase), *(self._terms(alias) for alias in match.aliases)]
            groups.append(ConceptGroup(match.phrase, tuple(a for a in alternatives if a)))
            taken[match.start : match.start + match.size] = [True] * match.size
        seen: set[frozenset[int]] = {a for g in groups for a in g.alternatives}
        for word, used in zip(words, taken, strict=True):
            terms = self._terms(word)
            if used or not terms or terms in seen or (concepts_only and word in NOT_CONCEPTS):
                continue
            seen.add(terms)
            groups.append(ConceptGroup(word, (terms,)))
        return groups

    def score(self, query: str, candidates: list[str], concepts_only: bool = False) -> Coverage:
        """Coverage of each candidate text (same order) by the idea's concept groups."""
        documents = [frozenset(self._encoder.encode_document(text).indices) for text in candidates]
        pool_words: list[str] | None = None
        active: list[ConceptGroup] = []
        for group in self.groups(query, concepts_only):
            if not any(group.covered_by(doc) for doc in documents):
                if pool_words is None:
                    pool_words = sorted({w for t in candidates for w in _POOL_WORD_RE.findall(t.lower())})
                fixed = self._respelled(group, pool_words)
                if fixed is None or not any(fixed.covered_by(doc) for doc in documents):
                    continue
                group = fixed
            active.append(group)
        covered = [tuple(g.label for g in active if g.covered_by(doc)) for doc in documents]
        scores = tuple(len(c) / len(active) if active else 0.0 for c in covered)
        return Coverage(scores, tuple(active), tuple(covered))

    def _respelled(self, group: ConceptGroup, pool_words: list[str]) -> ConceptGroup | None:
        """The group for the candidates' closest word when a single typed word looks misspelled."""
        if " " in group.label or len(group.label) < _MIN_SLIP_LENGTH:
            return None
        # a slip keeps the first letter and about the length: comparing with only those words is ~20x faster
        word = group.label
        near = [w for w in pool_words if w[0] == word[0] and abs(len(w) - len(word)) <= 2]
        close = difflib.get_close_matches(word, near, n=1, cutoff=SPELLING_CUTOFF)
        if not close:
            return None
        terms = self._terms(close[0])
        return ConceptGroup(f"{group.label}→{close[0]}", (terms,)) if terms else None
