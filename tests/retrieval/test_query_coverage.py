"""Query expansion by the alias lexicon and the concept-coverage score of candidates."""

from __future__ import annotations

from retrieval.adapters.bm25 import Bm25SparseEncoder
from retrieval.aliases import expand, expanded_query
from retrieval.coverage import CoverageScorer

SCORER = CoverageScorer(Bm25SparseEncoder())


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
