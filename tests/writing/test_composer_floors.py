"""CI floors of the offline composer on the TUNING half of bench/data/retrieval_ideas.json, in every dialect.

What it measures: `imagine-bot eval prompts`'s scoring (bot/entry/cli/eval_prompts.py) of the offline
composer's first prompt for each tuning idea. Embedding a library slice would cost most of a minute, so
the hits stand in for retrieval without it: each idea's relevant library prompts (every concept group
matches) among the library's first SCANNED rows, the HITS most crafted of the first POOL found (the default
search re-ranks by concept coverage and the craft prior, so its top five are relevant and crafted when the
library has such prompts). Ideas the library cannot answer get the hits it has (maybe none), and count.

The floors are the issue's: at least 80 % of ideas keep their subject and get three or more grounded
phrases, with no conflicting pair, no phrase that contradicts the idea, no forbidden (--no) phrase, no
negation left in a Nova prompt, no SD 1.x incantation, and every prompt within its model's limit.
bench/RESULTS.md ("Composition") has the figures on the whole library, both halves.
"""

from __future__ import annotations

import re

import pyarrow.parquet as pq
import pytest

from bot.engine.ports import HitForPrompt
from bot.entry.cli.eval_prompts import EvalIdea, load_ideas, measure, summarize
from bot.writing.dialect import Dialect
from bot.writing.offline_composer import OfflineComposer
from retrieval.craft import assess_craft
from retrieval.modifiers import mine_modifiers
from tests.conftest import LIBRARY

SCANNED = 40_000
POOL = 20
HITS = 5
FLOOR = 0.80


def relevant_hits(ideas: list[EvalIdea], concepts: dict[str, list[re.Pattern[str]]]) -> dict[str, list[str]]:
    """Each idea's stand-in hits: the most crafted of its first POOL relevant library prompts."""
    column = pq.read_table(LIBRARY, columns=["prompt"]).column("prompt").to_pylist()
    library = [str(p) for p in column[:SCANNED] if p]
    chosen = {}
    for idea in ideas:
        groups = concepts[idea.text]
        found = []
        for prompt in library:
            if groups[0].search(prompt) and all(g.search(prompt) for g in groups[1:]):
                found.append(prompt)
                if len(found) >= POOL:
                    break
        ranked = sorted(found, key=lambda p: -assess_craft(p).prior)  # stable: library order on ties
        chosen[idea.text] = ranked[:HITS]
    return chosen


@pytest.fixture(scope="module")
def tuning() -> tuple[list[EvalIdea], dict[str, list[str]]]:
    """The tuning ideas and their stand-in hits."""
    import json

    from bot.entry.cli.eval_prompts import IDEAS_PATH

    raw = json.loads(IDEAS_PATH.read_text(encoding="utf-8"))["ideas"]
    concepts = {
        i["idea"]: [re.compile(r"\b(?:" + "|".join(g) + r")\b", re.I) for g in i["concepts"].values()]
        for i in raw
    }
    ideas = load_ideas(IDEAS_PATH, "tuning")
    return ideas, relevant_hits(ideas, concepts)


def test_the_offline_composer_holds_the_floors_on_the_tuning_ideas(
    tuning: tuple[list[EvalIdea], dict[str, list[str]]], library_slice: list[str]
) -> None:
    ideas, hits = tuning
    assert len(ideas) >= 60 and sum(bool(h) for h in hits.values()) >= 0.9 * len(ideas)
    composer = OfflineComposer(mine_modifiers(library_slice, min_count=3))

    def search(text: str) -> list[HitForPrompt]:
        return [HitForPrompt(n, p) for n, p in enumerate(hits[text], start=1)]

    outcomes = measure(ideas, search, composer, list(Dialect))
    rows = summarize(outcomes)
    assert [r.dialect for r in rows] == list(Dialect) and all(r.ideas == len(ideas) for r in rows)
    for row in rows:
        assert row.meets_floor >= FLOOR, (row.dialect, row.meets_floor, row.worst)
        assert row.subject_kept == 1.0 and row.grounded_share == 1.0
        assert (row.pair_conflicts, row.idea_conflicts, row.no_broken, row.incantations) == (0, 0, 0, 0)
        assert row.no_asked >= len(ideas) // 3 and row.within_limit == 1.0 and row.negations == 0
    tags = {o.idea.text: o.prompt for o in outcomes if o.dialect is Dialect.TAGS and o.grounded}
    prose = {o.idea.text: o.prompt for o in outcomes if o.dialect is Dialect.PROSE}
    assert tags and all(prose[idea] != prompt and prose[idea].endswith(".") for idea, prompt in tags.items())
