"""What users may ask for: a few built-in refusals and each workspace's denylist, with polite answers.

`PromptPolicy.check(team_id, text)` raises RefusedError when the idea asks for sexual content involving
minors, sexual violence or sex with animals (built in, for every workspace), or names a term of the
IMAGINE_DENYLIST file that applies to the team. Matching works on whole words after Unicode normalization
(NFKC, case folding, look-alike letters, accents dropped) and on a de-obfuscated copy of the text
("k.i.d", "k i d", "k1d", "kiiid" all read "kid"); the last word of a term also matches its plural.

The minor-age logic ("12 year old" next to a sexual term) lives in the text safety classifier
(retrieval.safety.SafetyClassifier); the composition root passes one in as `TextSafety`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bot.engine.turn_errors import RefusedError

__all__ = ["Denylist", "PromptPolicy", "TextSafety", "TextVerdict", "normalized_views"]

MESSAGES = {
    "minors": (
        "Sorry, I can't help with that: I never make sexual or suggestive images involving anyone under 18. "
        "Please try a different idea."
    ),
    "sexual_violence": (
        "Sorry, I can't help with that: I don't make images of sexual violence. Please try a different idea."
    ),
    "bestiality": (
        "Sorry, I can't help with that: I don't make sexual images involving animals. "
        "Please try a different idea."
    ),
    "denylist": (
        "Sorry, I can't make that here: your idea mentions something this workspace has asked me to avoid. "
        "Please try a different idea."
    ),
}
BUILT_IN: dict[str, tuple[str, ...]] = {
    "minors": (
        "child porn",
        "child pornography",
        "csam",
        "jailbait",
        "loli",
        "lolicon",
        "paedophile",
        "paedophilia",
        "pedo",
        "pedophile",
        "pedophilia",
        "shota",
        "shotacon",
        "underage nude",
        "underage sex",
    ),
    "sexual_violence": (
        "forced sex",
        "gang rape",
        "molest",
        "molestation",
        "molested",
        "molesting",
        "non consensual",
        "nonconsensual",
        "rape",
        "raped",
        "raping",
        "rapist",
        "sexual assault",
        "sexually assaulted",
    ),
    "bestiality": (
        "bestiality",
        "zoophile",
        "zoophilia",
        "sex with a dog",
        "sex with a horse",
        "sex with an animal",
        "sex with animal",
    ),
}

_TOKEN_RE = re.compile(r"[^\W_]+")
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u180e\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff"))
# Cyrillic and Greek letters that look like Latin ones (the subset retrieval.safety maps too).
_CONFUSABLES = str.maketrans("асеіјорхуѕԁһκνοτ", "aceijopxysdhkvot")
# A run of 3+ single letters split by spaces, dots, dashes, stars... ("k.i.d", "s e x", "n-u-d-e").
# The separator must stay the same along a run, so "k.i.d s e x" reads "kid sex", not "kidsex".
_SPACED_RE = re.compile(r"(?<![^\W_])[^\W\d_]([ .\-_*·•/]+)(?:[^\W\d_]\1)+[^\W\d_](?![^\W_])")
# A word with digits or symbols standing in for letters ("k1d", "s3x", "n@ked", "p0rn").
_LEET_WORD_RE = re.compile(r"[\w@$!|]*[0-9@$!|][\w@$!|]*")
_LEET_TABLE = str.maketrans("0134579@$!|", "oieastgasil")
_AGE_RE = re.compile(r"\d{1,2}(?:yo|yrs?|years?)")
_REPEAT_RE = re.compile(r"([^\W\d_])\1{2,}")
_TEAM_LINE_RE = re.compile(r"^([TE](?=[A-Z0-9]*\d)[A-Z0-9]{2,})\s*:\s*(.*)$")

Phrase = tuple[str, ...]


class TextVerdict(Protocol):
    """What the text safety classifier says about one text (retrieval.safety.SafetyVerdict fits)."""

    @property
    def categories(self) -> tuple[str, ...]:
        """Categories at or over the classifier's threshold, e.g. ('minors', 'sexual')."""
        ...


class TextSafety(Protocol):
    """A text safety classifier (retrieval.safety.SafetyClassifier fits)."""

    def classify(self, text: str) -> TextVerdict:
        """Score one text."""
        ...


def normalize(text: str) -> str:
    """NFKC, invisible characters removed, case-folded, look-alike letters mapped, accents dropped."""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).casefold()
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKD", text.translate(_CONFUSABLES))
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def _join_letters(match: re.Match[str]) -> str:
    """'k.i.d' -> 'kid'."""
    return "".join(ch for ch in match.group(0) if ch.isalpha())


def _join_keeping_article(match: re.Match[str]) -> str:
    """'a k i d' -> 'a kid': a leading 'a' or 'i' may be a word of its own."""
    letters = [ch for ch in match.group(0) if ch.isalpha()]
    if letters[0] in "ai" and len(letters) > 3:
        return f"{letters[0]} {''.join(letters[1:])}"
    return "".join(letters)


def _decode_leet(match: re.Match[str]) -> str:
    """'k1d' -> 'kid' when the word has letters and decodes to letters only; ages like '12yo' stay."""
    word = match.group(0)
    if not any(ch.isalpha() for ch in word) or _AGE_RE.fullmatch(word):
        return word
    decoded = word.translate(_LEET_TABLE)
    return decoded if decoded.isalpha() else word


def normalized_views(text: str) -> list[str]:
    """The normalized text and its de-obfuscated readings (spaced letters joined, leetspeak decoded,
    stretched letters squeezed), without repeats."""
    base = normalize(text)
    views = [base]
    for join in (_join_letters, _join_keeping_article):
        joined = _SPACED_RE.sub(join, base)
        decoded = _LEET_WORD_RE.sub(_decode_leet, joined)
        for view in (decoded, _REPEAT_RE.sub(r"\1", decoded)):
            if view not in views:
                views.append(view)
    return views


def tokens(text: str) -> list[str]:
    """The words of already-normalized text."""
    return _TOKEN_RE.findall(text)


def phrase_of(term: str) -> Phrase:
    """A term as the words it must match."""
    return tuple(tokens(normalize(term)))


def _forms(word: str) -> tuple[str, ...]:
    """A word and its plurals (over-generation is harmless)."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return (word, word + "es")
    return (word, word + "s", word + "es")


@dataclass(frozen=True)
class _PhraseSet:
    """Phrases indexed by their first word; the last word of each also matches its plural."""

    by_first: Mapping[str, tuple[Phrase, ...]]

    @classmethod
    def of(cls, phrases: Iterable[Phrase]) -> _PhraseSet:
        index: dict[str, list[Phrase]] = {}
        for phrase in dict.fromkeys(p for p in phrases if p):
            firsts = _forms(phrase[0]) if len(phrase) == 1 else (phrase[0],)
            for first in firsts:
                index.setdefault(first, []).append(phrase)
        return cls({key: tuple(value) for key, value in index.items()})

    def find(self, words: Sequence[str]) -> Phrase | None:
        """The first phrase occurring in `words` as consecutive whole words, or None."""
        for i, word in enumerate(words):
            for phrase in self.by_first.get(word, ()):
                n = len(phrase)
                if n == 1:
                    return phrase
                if (
                    i + n <= len(words)
                    and all(words[i + j] == phrase[j] for j in range(1, n - 1))
                    and words[i + n - 1] in _forms(phrase[-1])
                ):
                    return phrase
        return None

    def __bool__(self) -> bool:
        return bool(self.by_first)


@dataclass(frozen=True)
class Denylist:
    """Workspace denylist: terms for every team, and terms for one Slack team each."""

    global_terms: tuple[Phrase, ...] = ()
    team_terms: Mapping[str, tuple[Phrase, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, source: str = "denylist") -> Denylist:
        """One term or phrase a line; '#' starts a comment line; 'T0123ABC: term' applies to that team."""
        global_terms: list[Phrase] = []
        team_terms: dict[str, list[Phrase]] = {}
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            team: str | None = None
            scoped = _TEAM_LINE_RE.match(line)
            if scoped:
                team, line = scoped.group(1), scoped.group(2).strip()
            phrase = phrase_of(line)
            if not phrase:
                raise ValueError(f"{source} line {number}: {raw.strip()!r} has no term (letters or digits)")
            (team_terms.setdefault(team, []) if team else global_terms).append(phrase)
        return cls(tuple(global_terms), {team: tuple(terms) for team, terms in team_terms.items()})

    @classmethod
    def from_file(cls, path: Path) -> Denylist:
        """Read and parse a denylist file (OSError when unreadable, ValueError when a line is not a term)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path} is not UTF-8 text") from exc
        return cls.parse(text, source=str(path))

    def __len__(self) -> int:
        return len(self.global_terms) + sum(len(terms) for terms in self.team_terms.values())


class PromptPolicy:
    """Refuses ideas the bot must never draw, and terms a workspace has denied, with a polite message."""

    def __init__(self, denylist: Denylist | None = None, classifier: TextSafety | None = None) -> None:
        self._denylist = denylist or Denylist()
        self._classifier = classifier
        self._built_in = {
            rule: _PhraseSet.of(phrase_of(t) for t in terms) for rule, terms in BUILT_IN.items()
        }
        self._global = _PhraseSet.of(self._denylist.global_terms)
        self._teams = {team: _PhraseSet.of(terms) for team, terms in self._denylist.team_terms.items()}

    @property
    def denylist(self) -> Denylist:
        """The workspace denylist in force."""
        return self._denylist

    def check(self, team_id: str | None, text: str) -> None:
        """Raise RefusedError (reason: minors, sexual_violence, bestiality or denylist) or return None."""
        if not text or not text.strip():
            return
        views = normalized_views(text)
        words = [tokens(view) for view in views]
        if self._classifier is not None and any(
            "minors" in self._classifier.classify(view).categories for view in dict.fromkeys([text, *views])
        ):
            raise RefusedError(MESSAGES["minors"], "minors")
        for rule, phrases in self._built_in.items():
            if any(phrases.find(w) for w in words):
                raise RefusedError(MESSAGES[rule], rule)
        for denied in (self._teams.get(team_id or ""), self._global):
            if denied and any(denied.find(w) for w in words):
                raise RefusedError(MESSAGES["denylist"], "denylist")

    def allows(self, team_id: str | None, text: str) -> bool:
        """True when check() would not refuse."""
        try:
            self.check(team_id, text)
        except RefusedError:
            return False
        return True
