"""`imagine-bot eval prompts`: what the configured chat model adds to ideas from the library, per dialect.

For every idea of a set (the Slack-style ideas of `bench/data/retrieval_ideas.json`, split into a tuning
and a held-out half, plus a sample of PartiPrompts) it retrieves the five hits a user would see, has the
chat model write a first prompt for each dialect's image model, and scores the prompt:

* subject kept: the idea's subject regex (its first concept group) matches the prompt; when the idea does
  not use the library's word ("man's best friend"), or for PartiPrompts, which have no regex, at least
  half of the content words of the idea's first clause survive (`bot.writing.grounding.keeps_subject`);
* phrases added, and grounded ones: the prompt's phrases beyond the idea's words, grounded when a hit
  holds them (`bot.writing.grounding.added_phrases`); the floor is three grounded phrases with the subject
  kept, and the clean floor counts only grounded phrases that are no incantation and in no conflict;
* conflicts: added phrases that contradict the idea or each other (`bot.writing.clashes`), and, for every
  second idea, a second prompt with a --no of the phrase its hits share most, which must stay out (the
  other measures are of the first prompt, written without a --no);
* within the image model's prompt limit, negations left in a Nova prompt, SD 1.x incantations added;
* latency and tokens of the chat call.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from bot.engine.ports import ChatModel, ComposeRequest, HitForPrompt
from bot.engine.turn_errors import BotError
from bot.engine.turns import LibraryHit, prompt_limit
from bot.writing.clashes import Clash, conflicting_pairs, idea_clash
from bot.writing.dialect import DIALECT_MODELS, Dialect, is_incantation, negations
from bot.writing.grounding import Added, added_phrases, keeps_subject, occurs
from retrieval.craft import assess_craft

REPO = Path(__file__).resolve().parents[3]
IDEAS_PATH = REPO / "bench" / "data" / "retrieval_ideas.json"
PARTI_PATH = REPO.parent / "shared" / "data" / "benchmark_partiprompts.parquet"
SPLITS = ("tuning", "heldout", "all")
PARTI_SAMPLE = 100
FLOOR_GROUNDED = 3
HITS_SHOWN = 5
Search = Callable[[str], Sequence[HitForPrompt]]


@dataclass(frozen=True)
class EvalIdea:
    """One idea to write a prompt for: its text, set ('tuning', 'heldout' or 'parti') and subject regex."""

    text: str
    group: str
    kind: str = ""
    subject: re.Pattern[str] | None = None


def load_ideas(path: Path = IDEAS_PATH, split: str = "all") -> list[EvalIdea]:
    """The Slack-style ideas of one split (or both), in file order; BotError for a missing or bad file."""
    try:
        items = json.loads(path.read_text(encoding="utf-8"))["ideas"]
        ideas = [
            EvalIdea(
                str(item["idea"]),
                str(item["split"]),
                str(item.get("kind", "")),
                re.compile(r"\b(?:" + "|".join(next(iter(item["concepts"].values()))) + r")\b", re.I),
            )
            for item in items
        ]
    except (OSError, ValueError, KeyError, TypeError, StopIteration, re.error) as exc:
        raise BotError(f"cannot read the idea set {path}: {exc}") from None
    return [idea for idea in ideas if split == "all" or idea.group == split]


def load_parti(path: Path = PARTI_PATH, sample: int = PARTI_SAMPLE) -> list[EvalIdea]:
    """A deterministic sample of PartiPrompts of three words or more (every k-th, in file order)."""
    try:
        import pyarrow.parquet as pq

        prompts = [str(p) for p in pq.read_table(path, columns=["prompt"]).column("prompt").to_pylist() if p]
    except (OSError, ValueError, KeyError, ImportError) as exc:
        raise BotError(f"cannot read PartiPrompts from {path}: {exc}") from None
    usable = [p for p in prompts if len(p.split()) >= 3]
    step = max(1, len(usable) // max(1, sample))
    return [EvalIdea(p, "parti", "parti") for p in usable[::step][:sample]]


@dataclass(frozen=True)
class Outcome:
    """One idea's prompt in one dialect, and how it scores."""

    idea: EvalIdea
    dialect: Dialect
    prompt: str = ""
    hits: tuple[HitForPrompt, ...] = ()
    added: tuple[Added, ...] = ()
    subject_kept: bool = False
    idea_clashes: tuple[str, ...] = ()
    pair_clashes: tuple[Clash, ...] = ()
    avoid: str | None = None
    avoid_broken: bool = False
    within_limit: bool = True
    negations: tuple[str, ...] = ()
    incantations: tuple[str, ...] = ()
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    extra_calls: int = 0
    error: str | None = None

    @property
    def grounded(self) -> list[Added]:
        """The added phrases a hit holds."""
        return [a for a in self.added if a.grounded]

    @property
    def meets_floor(self) -> bool:
        """Subject kept and at least FLOOR_GROUNDED grounded phrases."""
        return self.error is None and self.subject_kept and len(self.grounded) >= FLOOR_GROUNDED

    @property
    def clean_grounded(self) -> list[Added]:
        """The grounded phrases that are no incantation and in no conflict (with the idea or another)."""
        clashing = {c.first for c in self.pair_clashes} | {c.second for c in self.pair_clashes}
        clashing |= {text.split(" (", 1)[0] for text in self.idea_clashes}
        return [a for a in self.grounded if a.phrase not in clashing and a.phrase not in self.incantations]

    @property
    def meets_clean_floor(self) -> bool:
        """Subject kept and at least FLOOR_GROUNDED clean grounded phrases (the look, not the noise)."""
        return self.error is None and self.subject_kept and len(self.clean_grounded) >= FLOOR_GROUNDED

    def as_dict(self) -> dict[str, Any]:
        """A JSON view."""
        return {
            "idea": self.idea.text,
            "set": self.idea.group,
            "kind": self.idea.kind,
            "dialect": self.dialect.value,
            "prompt": self.prompt,
            "hits": [h.prompt for h in self.hits],
            "added": [{"phrase": a.phrase, "category": a.category, "hits": list(a.hits)} for a in self.added],
            "subject_kept": self.subject_kept,
            "grounded": len(self.grounded),
            "meets_floor": self.meets_floor,
            "meets_clean_floor": self.meets_clean_floor,
            "idea_conflicts": list(self.idea_clashes),
            "conflicting_pairs": [[c.first, c.second, c.reason] for c in self.pair_clashes],
            "no": self.avoid,
            "no_broken": self.avoid_broken,
            "within_limit": self.within_limit,
            "negations": list(self.negations),
            "incantations": list(self.incantations),
            "latency_ms": round(self.latency_ms, 1),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "extra_calls": self.extra_calls,
            "error": self.error,
        }


class _Searcher(Protocol):
    """What `library_search` needs of a retriever (retrieval.search.Retriever satisfies this)."""

    def search(self, query: str, k: int = 5) -> Sequence[LibraryHit]:
        """The top k hits."""
        ...


def library_search(retriever: _Searcher) -> Search:
    """The numbered hits a user would see for an idea (the engine's HITS_SHOWN, numbered from 1)."""

    def search(text: str) -> list[HitForPrompt]:
        found = retriever.search(text, k=HITS_SHOWN)
        return [HitForPrompt(n, h.prompt, h.payload.get("source")) for n, h in enumerate(found, start=1)]

    return search


def adversarial_no(idea: str, hits: Sequence[HitForPrompt]) -> str | None:
    """The craft phrase most hits share (ties: first seen), not in the idea: what a --no should keep out."""
    counts: Counter[str] = Counter()
    for hit in hits:  # dict.fromkeys, not a set: ties are broken by first appearance, the same every run
        counts.update(dict.fromkeys((p for p, _ in assess_craft(hit.prompt).phrases), 1))
    ranked = sorted(counts.items(), key=lambda item: -item[1])  # stable: first seen wins ties
    return next((p for p, _ in ranked if not occurs(p, idea) and not is_incantation(p)), None)


def subject_kept(idea: EvalIdea, prompt: str) -> bool:
    """The subject regex matches, or (no regex, or the idea avoids the library's word) the words survive."""
    if idea.subject is not None and idea.subject.search(prompt):
        return True
    if idea.subject is not None and idea.subject.search(idea.text):
        return False
    return keeps_subject(idea.text, prompt)


def score(
    idea: EvalIdea, dialect: Dialect, prompt: str, hits: Sequence[HitForPrompt], avoid: str | None
) -> Outcome:
    """The measures of one prompt (no chat call)."""
    added = added_phrases(prompt, idea.text, hits)
    evidence = [h.prompt for h in hits]
    clashes = [f"{a.phrase} ({why})" for a in added if (why := idea_clash(a.phrase, idea.text, evidence))]
    pairs = conflicting_pairs([a.phrase for a in added], evidence)
    return Outcome(
        idea=idea,
        dialect=dialect,
        prompt=prompt,
        hits=tuple(hits),
        added=tuple(added),
        subject_kept=subject_kept(idea, prompt),
        idea_clashes=tuple(clashes),
        pair_clashes=tuple(pairs),
        avoid=avoid,
        avoid_broken=bool(avoid) and occurs(avoid or "", prompt),
        within_limit=len(prompt) <= prompt_limit(DIALECT_MODELS[dialect]),
        negations=tuple(negations(prompt)) if dialect is Dialect.NOVA else (),
        incantations=tuple(a.phrase for a in added if is_incantation(a.phrase)),
    )


def measure(
    ideas: Sequence[EvalIdea],
    search: Search,
    chat: ChatModel,
    dialects: Sequence[Dialect],
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[Outcome]:
    """Retrieve, compose and score every idea in every dialect (a failed call is scored as an error)."""
    outcomes: list[Outcome] = []
    for index, idea in enumerate(ideas):
        hits = tuple(search(idea.text))
        avoid = adversarial_no(idea.text, hits) if index % 2 == 1 else None
        for dialect in dialects:
            model = DIALECT_MODELS[dialect]
            limit = prompt_limit(model)
            request = ComposeRequest("start", idea.text, hits=hits, image_model=model, max_prompt_chars=limit)
            started = time.perf_counter()
            try:
                result = chat.compose(request)
                elapsed = (time.perf_counter() - started) * 1000
                # the same idea with a --no of the phrase its hits share most, which must stay out
                kept_out = chat.compose(replace(request, avoid=(avoid,))) if avoid else None
            except BotError as exc:
                outcomes.append(Outcome(idea, dialect, hits=hits, avoid=avoid, error=str(exc)))
                continue
            scored = score(idea, dialect, result.drafts[0].prompt, hits, None)
            if avoid and kept_out is not None:
                scored = replace(scored, avoid=avoid, avoid_broken=occurs(avoid, kept_out.drafts[0].prompt))
            outcomes.append(
                _with_usage(scored, elapsed, result.input_tokens, result.output_tokens, result.extra_calls)
            )
        progress(index + 1, len(ideas))
    return outcomes


def _with_usage(outcome: Outcome, latency_ms: float, tokens_in: int, tokens_out: int, extra: int) -> Outcome:
    """The outcome with the chat call's latency and usage."""
    return replace(
        outcome, latency_ms=latency_ms, input_tokens=tokens_in, output_tokens=tokens_out, extra_calls=extra
    )


# summaries ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Summary:
    """The measures of one set of ideas in one dialect."""

    group: str
    dialect: Dialect
    ideas: int
    errors: int
    subject_kept: float
    meets_floor: float
    meets_clean_floor: float
    added_mean: float
    grounded_mean: float
    grounded_share: float
    pair_conflicts: int
    idea_conflicts: int
    no_asked: int
    no_broken: int
    within_limit: float
    negations: int
    incantations: int
    latency_p50_ms: float
    latency_p95_ms: float
    input_tokens_mean: float
    output_tokens_mean: float
    extra_calls: int
    worst: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON view."""
        data = {k: v for k, v in self.__dict__.items() if k != "dialect"}
        return {**data, "dialect": self.dialect.value}


def _share(flags: Iterable[bool]) -> float:
    """Share of True values (0 for none)."""
    values = list(flags)
    return round(sum(values) / len(values), 4) if values else 0.0


def _percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank) of the values, 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))], 1)


def summarize(outcomes: Sequence[Outcome]) -> list[Summary]:
    """One summary per (set, dialect), in the order they first appear."""
    groups: dict[tuple[str, Dialect], list[Outcome]] = {}
    for outcome in outcomes:
        groups.setdefault((outcome.idea.group, outcome.dialect), []).append(outcome)
    rows = []
    for (group, dialect), items in groups.items():
        ok = [o for o in items if o.error is None]
        added = sum(len(o.added) for o in ok)
        grounded = sum(len(o.grounded) for o in ok)
        latencies = [o.latency_ms for o in ok]
        rows.append(
            Summary(
                group=group,
                dialect=dialect,
                ideas=len(items),
                errors=len(items) - len(ok),
                subject_kept=_share(o.subject_kept for o in items),
                meets_floor=_share(o.meets_floor for o in items),
                meets_clean_floor=_share(o.meets_clean_floor for o in items),
                added_mean=round(added / len(ok), 2) if ok else 0.0,
                grounded_mean=round(grounded / len(ok), 2) if ok else 0.0,
                grounded_share=round(grounded / added, 4) if added else 0.0,
                pair_conflicts=sum(len(o.pair_clashes) for o in ok),
                idea_conflicts=sum(len(o.idea_clashes) for o in ok),
                no_asked=sum(o.avoid is not None for o in ok),
                no_broken=sum(o.avoid_broken for o in ok),
                within_limit=_share(o.within_limit for o in ok),
                negations=sum(len(o.negations) for o in ok),
                incantations=sum(len(o.incantations) for o in ok),
                latency_p50_ms=round(statistics.median(latencies), 1) if latencies else 0.0,
                latency_p95_ms=_percentile(latencies, 0.95),
                input_tokens_mean=round(statistics.fmean([o.input_tokens for o in ok]), 1) if ok else 0.0,
                output_tokens_mean=round(statistics.fmean([o.output_tokens for o in ok]), 1) if ok else 0.0,
                extra_calls=sum(o.extra_calls for o in ok),
                worst=[o.idea.text for o in items if not o.meets_floor],
            )
        )
    return rows


_HEADER = (
    "| ideas | dialect | n | subject kept | ≥3 grounded, subject kept | same, no incantation or conflict | "
    "phrases added | grounded added | "
    "grounded share | conflicting pairs | idea conflicts | --no kept out | within limit | Nova negations | "
    "incantations | latency p50 / p95 ms | tokens in / out |"
)


def markdown_table(rows: Sequence[Summary]) -> str:
    """The summaries as one markdown table."""
    lines = [_HEADER, "|" + "---|" * _HEADER.count(" | ") + "---|"]
    for r in rows:
        kept_out = f"{r.no_asked - r.no_broken} of {r.no_asked}" if r.no_asked else "n/a"
        errors = f" ({r.errors} failed)" if r.errors else ""
        lines.append(
            f"| {r.group} | {r.dialect.value} | {r.ideas}{errors} | {r.subject_kept:.0%} | "
            f"{r.meets_floor:.0%} | {r.meets_clean_floor:.0%} | "
            f"{r.added_mean:.1f} | {r.grounded_mean:.1f} | {r.grounded_share:.0%} | {r.pair_conflicts} | "
            f"{r.idea_conflicts} | {kept_out} | {r.within_limit:.0%} | {r.negations} | {r.incantations} | "
            f"{r.latency_p50_ms:.0f} / {r.latency_p95_ms:.0f} | "
            f"{r.input_tokens_mean:.0f} / {r.output_tokens_mean:.0f} |"
        )
    return "\n".join(lines)


def examples(outcomes: Sequence[Outcome], per_group: int) -> str:
    """A few prompts per set in the first dialect measured, for reading."""
    if per_group <= 0 or not outcomes:
        return ""
    first = outcomes[0].dialect
    lines: list[str] = []
    for group in dict.fromkeys(o.idea.group for o in outcomes):
        shown = [o for o in outcomes if o.idea.group == group and o.dialect is first][:per_group]
        for o in shown:
            grounded = ", ".join(a.phrase for a in o.grounded) or "nothing"
            lines.append(f"- *{o.idea.text}* ({group}) → `{o.prompt}`  \n  grounded: {grounded}")
    return "\n".join(lines)
