"""What a composed prompt took from the library hits (checked against their text), and if it kept the idea.

* A phrase *occurs* in a text when its normalized words appear there as a run of whole words
  (`retrieval.modifiers.normalize_modifier` on both sides: lower case, weights and brackets dropped).
* A borrowed claim is *grounded* when the phrase occurs in one of the hits it cites; a writer's claims
  that are not are dropped (`verify_borrowed`), so "Borrowed from #2: watercolor" under an image is true.
* The idea's *subject* survives when the prompt still names at least half of the content words of the
  idea's first clause (BM25's English stemmer, the alias lexicon of `retrieval.aliases`, and a spelling
  slip counts: "astronot" is kept by "astronaut"). Style words of the idea ("cartoon", "watercolor") do
  not count, since a writer may rephrase the look. A rough, lenient check: it catches a prompt about
  something else, not a synonym.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from bot.engine.ports import HitForPrompt, PromptDraft
from bot.engine.turns import TurnResult
from bot.writing.dialect import split_prompt
from retrieval.adapters.bm25 import Bm25SparseEncoder
from retrieval.coverage import CoverageScorer
from retrieval.modifiers import classify_modifier, normalize_modifier

__all__ = [
    "Added",
    "added_phrases",
    "borrowed_line",
    "borrowed_line_of",
    "hits_with",
    "keeps_subject",
    "occurs",
    "subject_clause",
    "verify_borrowed",
]

SUBJECT_SHARE = 0.5
_SLIP_CUTOFF = 0.75
_CLAUSE_RE = re.compile(r"\s*(?:[,;]|\.\s|\bbut\b|\bthen\b)\s*", re.I)
_REQUEST_RE = re.compile(
    r"^(?:please\s+)?(?:(?:can|could) you\s+)?(?:(?:draw|paint|generate|create|make|imagine|render|show|"
    r"give)(?:\s+me|\s+us)?\s+)?(?:an?\s+(?:image|picture|pic)\s+of\s+)?",
    re.I,
)
_WORD_RE = re.compile(r"[^\W\d_][\w'-]*")


def _norm(text: str) -> str:
    """Lower case without weights or brackets, words separated by single spaces."""
    return " ".join(re.findall(r"[\w'&+#/-]+", normalize_modifier(text)))


def occurs(phrase: str, text: str) -> bool:
    """Whether the phrase's words appear in the text as a run of whole words."""
    key = _norm(phrase)
    return bool(key) and re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", _norm(text)) is not None


def hits_with(phrase: str, hits: Sequence[HitForPrompt]) -> tuple[int, ...]:
    """Numbers of the hits whose text holds the phrase."""
    return tuple(hit.number for hit in hits if occurs(phrase, hit.prompt))


def verify_borrowed(draft: PromptDraft, hits: Sequence[HitForPrompt]) -> tuple[PromptDraft, list[str]]:
    """The draft with only the borrowed claims that hold (in a cited hit and in the prompt), and the rest."""
    cited = [hit for hit in hits if hit.number in draft.used_hits]
    kept: list[str] = []
    dropped: list[str] = []
    sources: set[int] = set()
    for phrase in dict.fromkeys(" ".join(p.split()) for p in draft.borrowed if p.strip()):
        numbers = hits_with(phrase, cited)
        if numbers and occurs(phrase, draft.prompt):
            kept.append(phrase)
            sources.update(numbers)
        else:
            dropped.append(phrase)
    used = tuple(n for n in draft.used_hits if n in sources) if draft.borrowed else draft.used_hits
    return replace(draft, borrowed=tuple(kept), used_hits=used), dropped


def borrowed_line(used_hits: Sequence[int], borrowed: Sequence[str]) -> str:
    """'Borrowed from #2 and #4: watercolor, soft morning light' ('' when nothing was borrowed)."""
    if not borrowed or not used_hits:
        return ""
    numbers = [f"#{n}" for n in sorted(set(used_hits))]
    where = numbers[0] if len(numbers) == 1 else ", ".join(numbers[:-1]) + " and " + numbers[-1]
    return f"Borrowed from {where}: {', '.join(borrowed)}"


def borrowed_line_of(result: TurnResult) -> str:
    """The borrowed line of a turn, from its stored params (else its first draft)."""
    params = result.turn.params
    draft = result.drafts[0] if result.drafts else None
    used = params.get("used_hits") or (draft.used_hits if draft else ())
    borrowed = params.get("borrowed") or (draft.borrowed if draft else ())
    return borrowed_line([int(n) for n in used], [str(p) for p in borrowed])


def subject_clause(idea: str) -> str:
    """The idea's first clause without request words ("please draw me a fox, in snow" → "a fox")."""
    first = _CLAUSE_RE.split(" ".join(idea.split()), maxsplit=1)[0]
    return _REQUEST_RE.sub("", first).strip(" .!?") or first


@lru_cache(maxsize=1)
def _tools() -> tuple[Bm25SparseEncoder, CoverageScorer]:
    """The BM25 tokenizer and the retrieval coverage scorer over it (stems and aliases), built once."""
    encoder = Bm25SparseEncoder()
    return encoder, CoverageScorer(encoder)


def keeps_subject(idea: str, prompt: str) -> bool:
    """Whether the prompt still names at least half of the idea's subject words (see the module doc)."""
    encoder, scorer = _tools()
    groups = [g for g in scorer.groups(subject_clause(idea)) if classify_modifier(g.label) == "other"]
    if not groups:
        return True
    terms = frozenset(encoder.encode_document(prompt).indices)
    words = sorted({w.lower() for w in _WORD_RE.findall(prompt) if len(w) >= 3})
    kept = 0
    for group in groups:
        if group.covered_by(terms):
            kept += 1
        elif " " not in group.label and len(group.label) >= 4:
            kept += bool(difflib.get_close_matches(group.label, words, n=1, cutoff=_SLIP_CUTOFF))
    return kept >= SUBJECT_SHARE * len(groups)


# what a prompt adds beyond the idea (for `imagine-bot eval prompts`) -----------------------------------
_STOP_WORDS = (
    "a an the of in on at with and or for to from into over under near its it is are as this that their "
    "his her very some while style styled rendered shown depicted featuring bathed captured scene image "
    "picture"
)
_STOP = frozenset(_STOP_WORDS.split(" "))
_MAX_GRAM = 6


@dataclass(frozen=True)
class Added:
    """A phrase a prompt adds beyond the idea: its category and the hits holding it (empty: not grounded)."""

    phrase: str
    category: str
    hits: tuple[int, ...] = ()

    @property
    def grounded(self) -> bool:
        """Whether a library hit holds the phrase."""
        return bool(self.hits)


def _stem(word: str) -> str:
    """A crude plural stem, so 'dogs' in a prompt is the idea's 'dog'."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def added_phrases(prompt: str, idea: str, hits: Sequence[HitForPrompt]) -> list[Added]:
    """The phrases a prompt adds beyond the idea's words, each grounded when a hit holds it."""
    # every piece of the prompt (comma and sentence pieces, prose lead-ins off) is read left to right:
    # the longest run of words a hit holds (a modifier-like single word, or two or more words) is a
    # grounded phrase; the idea's own words split runs; the other words form ungrounded added phrases
    idea_words = {_stem(w) for w in _norm(idea).split() if w not in _STOP}
    texts = [(hit.number, _norm(hit.prompt)) for hit in hits]
    first, later = split_prompt(prompt)
    found: list[Added] = []

    def held(gram: str) -> tuple[int, ...]:
        pattern = re.compile(rf"(?<![\w-]){re.escape(gram)}(?![\w-])")
        return tuple(number for number, text in texts if pattern.search(text))

    def flush(run: list[str]) -> None:
        while run and run[-1] in _STOP:
            run.pop()
        while run and run[0] in _STOP | {"by"}:
            run.pop(0)
        if any(w not in _STOP and w != "by" for w in run):
            text = " ".join(run)
            found.append(Added(text, classify_modifier(text)))
        run.clear()

    for piece in [*first, *later]:
        words = _norm(piece).split()
        run: list[str] = []
        i = 0
        while i < len(words):
            match = None
            for n in range(min(_MAX_GRAM, len(words) - i), 0, -1):
                gram = words[i : i + n]
                if gram[-1] in _STOP or gram[0] in _STOP or all(_stem(w) in idea_words for w in gram):
                    continue
                text = " ".join(gram)
                category = classify_modifier(text)
                if n == 1 and category == "other":
                    continue
                numbers = held(text)
                if numbers:
                    match = Added(text, category, numbers)
                    break
            if match is None and _stem(words[i]) in idea_words:  # the idea's own word: not added
                flush(run)
                i += 1
                continue
            if match is None:
                run.append(words[i])
                i += 1
                continue
            flush(run)
            found.append(match)
            i += len(match.phrase.split())
        flush(run)
    return list({a.phrase: a for a in found}.values())
