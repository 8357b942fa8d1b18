"""Fast lexicon-based safety classifier for prompt text (weighted denylist with context rules)."""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["CATEGORIES", "SafetyClassifier", "SafetyVerdict"]

CATEGORIES = ("sexual", "minors", "violence", "self_harm", "hate", "drugs", "workspace")
_TERMS_RESOURCE = "safety_terms.json"
_TOKEN_RE = re.compile(r"[^\W_]+")
# A run of 3+ single letters split by spaces/dots/dashes ("n u d e", "s.e.x"); digits are left alone because
# Lexica prompts space out numbers ("1 6 k").
_SPACED_RE = re.compile(r"(?<![^\W\d_])(?:[a-z][ .\-_*]){2,9}[a-z](?![^\W\d_])")
# A word with leet characters or masking stars inside ("s3x", "n*de", "p0rn", "n@ked").
_LEET_RE = re.compile(r"[a-z0-9@$*!|]*[a-z][a-z0-9@$*!|]*")
_LEET_TABLE = str.maketrans("0134579@$!|", "oieastgasil")
_REPEAT_RE = re.compile(r"(.)\1\1+")
_AGE_UNITS = frozenset({"year", "years", "yr", "yrs", "yo"})
_AGE_TOKEN_RE = re.compile(r"(\d{1,2})(?:yo|yrs?|years?)")
_MINOR_AGE = 18
# Cyrillic and Greek letters that look like Latin ones (a cheap subset of Unicode confusables).
_CONFUSABLES = str.maketrans("асеіјорхуѕԁһκνοτ", "aceijopxysdhkvot")
_COMBINING = dict.fromkeys(range(0x300, 0x370), None)

_Entry = tuple[str, float, str]  # (category, weight, canonical term)


@dataclass(frozen=True)
class SafetyVerdict:
    """Result of classifying one text: score in [0, 1], categories over the threshold, unsafe flag."""

    score: float
    categories: tuple[str, ...]
    unsafe: bool
    matched: tuple[str, ...] = ()


def _normalize(text: str, emoji: dict[int, str] | None = None) -> str:
    """NFKC, casefold, map look-alike letters, drop accents and spell out listed emoji as words."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if not text.isascii():
        if emoji:
            text = text.translate(emoji)
        text = unicodedata.normalize("NFKD", text.translate(_CONFUSABLES)).translate(_COMBINING)
    return text


def _tokens(phrase: str) -> tuple[str, ...]:
    """Split a lexicon phrase into tokens the same way prompt text is split."""
    return tuple(_TOKEN_RE.findall(_normalize(phrase)))


def _inflections(word: str, mode: str) -> set[str]:
    """Plural and verb/agent forms of a word (over-generation is harmless: unknown forms never occur)."""
    forms = {word}
    if mode == "none" or not word.isalpha() or len(word) < 3:
        return forms
    vowels = "aeiou"
    cvc = word[-1] not in vowels + "wxy" and word[-2] in vowels and word[-3] not in vowels
    if word.endswith(("s", "x", "z", "ch", "sh")):
        forms.add(word + "es")
    elif word.endswith("y") and word[-2] not in vowels:
        forms.add(word[:-1] + "ies")
    else:
        forms.add(word + "s")
    if mode == "plural":
        return forms
    stems = {word}
    if word.endswith("e") and not word.endswith("ee"):
        stems.add(word[:-1])
    if word.endswith("y") and word[-2] not in vowels:
        forms.add(word[:-1] + "ied")
    if cvc:
        stems.add(word + word[-1])
    for stem in stems:
        forms.update({stem + "ing", stem + ("d" if stem.endswith("e") else "ed")})
        if mode == "all":
            forms.update(
                {stem + ("r" if stem.endswith("e") else "er"), stem + ("rs" if stem.endswith("e") else "ers")}
            )
    return forms


def _load_lexicon(path: Path | None) -> dict[str, Any]:
    """Read the term lists (the packaged JSON unless a path is given)."""
    if path is not None:
        data = json.loads(path.read_text(encoding="utf-8"))
    else:
        data = json.loads(
            resources.files("retrieval")
            .joinpath("data")
            .joinpath(_TERMS_RESOURCE)
            .read_text(encoding="utf-8")
        )
    if not isinstance(data, dict):
        raise ValueError("safety terms file must hold a JSON object")
    return data


class SafetyClassifier:
    """Scores text against weighted term lists; categories combine evidence by noisy-OR."""

    def __init__(
        self, threshold: float = 0.5, extra_terms: Sequence[str] = (), *, terms_path: Path | None = None
    ) -> None:
        """Build the phrase tables; extra_terms is a workspace denylist (each term alone marks unsafe)."""
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        lexicon = _load_lexicon(terms_path)
        self._phrases: dict[tuple[str, ...], _Entry | None] = {}
        self._minor_sexual_min = float(lexicon.get("minor_sexual_min", 0.3))
        self._minor_score = float(lexicon.get("minor_score", 0.95))
        self._emoji = {ord(ch): f" {word} " for ch, word in lexicon.get("emoji", {}).items() if len(ch) == 1}
        for group in lexicon.get("groups", []):
            category, weight = str(group["category"]), float(group["weight"])
            if category not in CATEGORIES:
                raise ValueError(f"unknown safety category {category!r}")
            self._add_terms(group["terms"], category, weight, str(group.get("inflect", "verb")))
        for phrase in lexicon.get("suppress", []):  # after the terms, so a suppressor wins over a term...
            toks = _tokens(phrase)
            for form in _inflections(toks[-1], "plural") if toks else ():
                self._phrases[(*toks[:-1], form)] = None
        self._add_terms(extra_terms, "workspace", 1.0, "plural")  # ...and a workspace term over both
        self._minor_context: set[tuple[str, ...]] = set()
        for phrase in lexicon.get("minor_context", []):
            for form in _inflections(phrase, "plural") if " " not in phrase else {phrase}:
                toks = _tokens(form)
                if toks:
                    self._minor_context.add(toks)
        self._first: dict[str, int] = {}
        for toks in [*self._phrases, *self._minor_context]:
            self._first[toks[0]] = max(self._first.get(toks[0], 0), len(toks))
        self._single = {toks[0] for toks, entry in self._phrases.items() if len(toks) == 1 and entry}
        self._by_len: dict[int, list[str]] = {}
        for word in self._single:
            self._by_len.setdefault(len(word), []).append(word)
        logger.debug("safety lexicon: %d phrases, %d workspace terms", len(self._phrases), len(extra_terms))

    def _add_terms(self, terms: Iterable[str], category: str, weight: float, inflect: str) -> None:
        """Register terms (with inflected and joined forms) under one category and weight."""
        for term in terms:
            toks = _tokens(term)
            if not toks:
                continue
            canonical = " ".join(toks)
            variants = {(*toks[:-1], form) for form in _inflections(toks[-1], inflect)}
            if len(toks) > 1 and inflect in ("verb", "all"):  # phrasal verbs: "beat up" -> "beating up"
                variants.update({(form, *toks[1:]) for form in _inflections(toks[0], inflect)})
            if len(toks) == 2:
                variants.update({(joined,) for joined in _inflections(toks[0] + toks[1], inflect)})
            for variant in variants:
                old = self._phrases.get(variant)
                if old is None or old[1] < weight:
                    self._phrases[variant] = (category, weight, canonical)

    def _deobfuscated(self, text: str) -> list[str]:
        """Lexicon words hidden by leetspeak, masking stars, letter spacing or stretched letters."""
        found: list[str] = []
        if any(ch in text for ch in "0134579@$*!|"):
            for word in _LEET_RE.findall(text):
                if len(word) < 3 or word.isalpha():
                    continue
                decoded = word.translate(_LEET_TABLE)
                if "*" in decoded:
                    pattern = re.compile(decoded.replace("*", "[a-z]"))
                    found.extend(w for w in self._by_len.get(len(decoded), ()) if pattern.fullmatch(w))
                elif decoded in self._single:
                    found.append(decoded)
        if " " in text or "." in text or "-" in text:
            for run in _SPACED_RE.findall(text):
                joined = "".join(ch for ch in run if ch.isalpha())
                if joined in self._single:
                    found.append(joined)
        return found

    def _scan(self, tokens: list[str]) -> tuple[dict[str, _Entry], bool]:
        """Longest-match scan: returns matched terms (by canonical form) and whether a minor is mentioned."""
        hits: dict[str, _Entry] = {}
        minor = False
        phrases, first = self._phrases, self._first
        i, n = 0, len(tokens)
        while i < n:
            tok = tokens[i]
            longest = first.get(tok, 0)
            step = 1
            for length in range(min(longest, n - i), 0, -1):
                key = tuple(tokens[i : i + length])
                if key in self._minor_context:
                    minor = True
                if key in phrases:
                    entry = phrases[key]
                    if entry is not None:
                        hits.setdefault(entry[2], entry)
                    step = length
                    break
            else:
                if len(tok) > 3 and _REPEAT_RE.search(tok):
                    entry = phrases.get((_REPEAT_RE.sub(r"\1", tok),))
                    if entry is not None:
                        hits.setdefault(entry[2], entry)
                if _is_minor_age(tokens, i):
                    minor = True
            i += step
        return hits, minor

    def classify(self, text: str) -> SafetyVerdict:
        """Score one text; unsafe when the strongest category reaches the threshold."""
        if not isinstance(text, str) or not text:
            return SafetyVerdict(0.0, (), False)
        norm = _normalize(text, self._emoji)
        tokens = _TOKEN_RE.findall(norm)
        hits, minor = self._scan(tokens)
        for word in self._deobfuscated(norm):
            entry = self._phrases.get((word,))
            if entry is not None:
                hits.setdefault(entry[2], entry)
        if not hits:
            return SafetyVerdict(0.0, (), False)
        keep: dict[str, float] = {}
        for category, weight, _ in hits.values():
            keep[category] = 1.0 - (1.0 - keep.get(category, 0.0)) * (1.0 - weight)
        strongest_sexual = max((w for cat, w, _ in hits.values() if cat == "sexual"), default=0.0)
        if minor and strongest_sexual >= self._minor_sexual_min:
            keep["minors"] = max(keep.get("minors", 0.0), self._minor_score)
        if "minors" in keep and keep["minors"] >= self.threshold:
            keep["sexual"] = max(keep.get("sexual", 0.0), keep["minors"])
        score = round(min(1.0, max(keep.values())), 4)
        ranked = sorted(keep.items(), key=lambda kv: (-kv[1], CATEGORIES.index(kv[0])))
        categories = tuple(cat for cat, value in ranked if value >= self.threshold)
        return SafetyVerdict(score, categories, score >= self.threshold, tuple(sorted(hits)))

    def is_unsafe(self, text: str) -> bool:
        """True when classify(text) marks the text unsafe."""
        return self.classify(text).unsafe


def _is_minor_age(tokens: list[str], i: int) -> bool:
    """True when tokens[i] completes an age under 18: "12 year old", "1 2 - year - old", "12yo", "aged 9"."""
    tok = tokens[i]
    if tok[:1].isdigit():
        match = _AGE_TOKEN_RE.fullmatch(tok)
        if match is not None:
            return int(match.group(1)) < _MINOR_AGE
        if i > 0 and tokens[i - 1] in ("aged", "age"):
            return len(tok) <= 2 and tok.isdigit() and int(tok) < _MINOR_AGE
        return False
    if tok not in _AGE_UNITS:
        return False
    if tok != "yo" and (i + 1 >= len(tokens) or tokens[i + 1] != "old"):
        return False
    digits = ""
    j = i - 1
    while j >= 0 and tokens[j].isdigit() and len(digits) < 3:
        digits = tokens[j] + digits
        j -= 1
    return 0 < len(digits) <= 2 and int(digits) < _MINOR_AGE
