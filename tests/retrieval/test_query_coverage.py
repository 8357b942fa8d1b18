"""Query expansion by the alias lexicon and the concept-coverage score of candidates."""

from __future__ import annotations

import json
from pathlib import Path

from retrieval.adapters.bm25 import Bm25SparseEncoder
from retrieval.aliases import expand, expanded_query, query_words
from retrieval.coverage import NOT_CONCEPTS, CoverageScorer

SCORER = CoverageScorer(Bm25SparseEncoder())
IDEAS = Path(__file__).resolve().parents[2] / "bench" / "data" / "retrieval_ideas.json"


def test_expansion_finds_the_longest_phrases_and_adds_library_words() -> None:
    matches = expand("a striped big cat and a bunny")
    assert [(m.phrase, m.aliases[0]) for m in matches] == [("striped big cat", "tiger"), ("bunny", "rabbit")]
    assert expanded_query("smol doggo in a raincoat") == "smol doggo in a raincoat (small, dog)"
    assert expanded_query("a cozy cabin") == "a cozy cabin"
    assert expanded_query("a dog, doggo") == "a dog, doggo"  # the library word is already there


def test_coverage_counts_concepts_with_stems_and_aliases() -> None:
    candidates = [
        "a tiger prowling through the jungle at night, digital art",
        "a tiger portrait, highly detailed",
        "a dense jungle with waterfalls",
        "a red sports car",
    ]
    scored = SCORER.score("striped big cat in the jungles", candidates)
    assert [g.label for g in scored.groups] == ["striped big cat", "jungles"]
    assert scored.scores == (1.0, 0.5, 0.5, 0.0)
    assert scored.covered[0] == ("striped big cat", "jungles")


def test_words_no_candidate_has_are_left_out_and_slips_are_respelled() -> None:
    candidates = [
        "an astronaut riding a horse on mars",
        "an astronaut floating in space",
        "a horse in a field",
    ]
    scored = SCORER.score("astronot riding a hors pls", candidates)
    labels = [g.label for g in scored.groups]
    assert "astronot→astronaut" in labels and "riding" in labels
    assert not any(label.startswith("pls") for label in labels)  # nothing to match: it cannot rank
    assert scored.scores[0] == 1.0
    assert scored.scores[0] > scored.scores[1] and scored.scores[0] > scored.scores[2]


def test_nothing_to_cover_scores_zero() -> None:
    assert SCORER.score("the of and", ["a cat"]).scores == (0.0,)
    assert SCORER.score("a dog", []).scores == ()


def test_size_filler_and_framing_words_are_not_concepts_when_asked() -> None:
    candidates = [
        "a cute little girl with a round face, cartoon painting",
        "a cartoon dog, sticker art",
        "a dog sitting on a sofa",
    ]
    every = SCORER.score("a cartoon of a little dog", candidates)
    assert [g.label for g in every.groups] == ["cartoon", "little", "dog"]
    assert every.scores[0] == every.scores[1]  # the girl covers as much as the cartoon dog
    concepts = SCORER.score("a cartoon of a little dog", candidates, concepts_only=True)
    assert [g.label for g in concepts.groups] == ["cartoon", "dog"]
    assert concepts.scores == (0.5, 1.0, 0.5)
    team = SCORER.groups("avatar for the qa team: a detective cat, like a sticker pls", concepts_only=True)
    assert [g.label for g in team] == ["qa", "detective", "cat", "sticker"]  # a form stays a concept


def test_no_stoplist_word_was_read_from_the_held_out_ideas() -> None:
    ideas = json.loads(IDEAS.read_text(encoding="utf-8"))["ideas"]
    words: dict[str, set[str]] = {split: set() for split in ("tuning", "heldout")}
    for item in ideas:
        words[item["split"]] |= set(query_words(item["idea"]))
    assert not (NOT_CONCEPTS & words["heldout"]) - words["tuning"]
