"""Modifier mining on real library prompts: frequent phrases, categories, lookups and persistence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.modifiers import (
    Modifier,
    ModifierStats,
    classify_modifier,
    load_vocabulary,
    mine_modifiers,
    normalize_modifier,
    split_artists,
    split_segments,
)
from tests.conftest import SHARED_DATA


@pytest.fixture(scope="module")
def stats(library_slice: list[str]) -> ModifierStats:
    """Statistics mined from the first 3,000 library prompts."""
    return mine_modifiers(library_slice, min_count=3)


def test_normalization_handles_weights_spacing_and_lora() -> None:
    assert normalize_modifier("  (Octane Render:1.3) ") == "octane render"
    assert normalize_modifier("8 k") == "8k"
    assert normalize_modifier("3 5 mm") == "35mm"
    assert normalize_modifier("Trending on Art Station!") == "trending on artstation"
    assert split_segments("A cat, [by Greg Rutkowski]; <lora:x:0.5> 4 k\nmatte painting") == [
        "cat",
        "by greg rutkowski",
        "4k",
        "matte painting",
    ]


def test_classification_without_vocabularies() -> None:
    assert classify_modifier("by greg rutkowski") == "artist"
    assert classify_modifier("trending on artstation") == "site"
    assert classify_modifier("volumetric lighting") == "lighting"
    assert classify_modifier("watercolor painting") == "medium"
    assert classify_modifier("art nouveau") == "style"
    assert classify_modifier("highly detailed") == "quality"
    assert classify_modifier("35mm") == "camera"
    assert classify_modifier("a red fox") == "other"


def test_frequent_library_modifiers_are_found(stats: ModifierStats, library_slice: list[str]) -> None:
    top = [m.text for m in stats.top(k=40)]
    for expected in ("trending on artstation", "highly detailed", "octane render", "by greg rutkowski", "8k"):
        assert expected in top
    assert stats.prompts_seen == len(library_slice)
    counts = [m.count for m in stats.modifiers]
    assert counts == sorted(counts, reverse=True)
    assert min(counts) >= 3
    assert stats.get("Trending on ArtStation") is not None
    assert stats.category("trending on artstation") == "site"
    # bare artist names are merged into their "by" form when the library uses both
    assert "greg rutkowski" not in stats


def test_counts_are_per_prompt_and_bounded() -> None:
    prompts = ["a cat, 8k, 8k, 8k", "a dog, 8k", "a bird, watercolor"] * 3
    mined = mine_modifiers(prompts, min_count=2, top=5, is_unsafe=lambda _: False)
    assert mined.get("8k") == Modifier("8k", 6, "quality")
    assert mined.get("watercolor") == Modifier("watercolor", 3, "medium")
    assert "a cat" not in mined and "cat" not in mined  # subjects (first phrase) are not modifiers
    assert len(mine_modifiers(prompts * 10, min_count=1, top=1, is_unsafe=lambda _: False)) == 1


def test_unsafe_phrases_are_dropped() -> None:
    prompts = ["a room, nude, 8k"] * 5
    mined = mine_modifiers(prompts, min_count=2)
    assert "8k" in mined
    assert "nude" not in mined


def test_strongest_in_ranks_hit_modifiers_by_library_frequency(stats: ModifierStats) -> None:
    hits = [
        "a castle on a hill, matte painting, trending on artstation, by greg rutkowski",
        "knight portrait, highly detailed digital painting, sharp focus",
    ]
    strongest = stats.strongest_in(hits, k=5)
    texts = [m.text for m in strongest]
    assert texts[0] == "highly detailed"  # found inside "highly detailed digital painting"
    assert {"trending on artstation", "by greg rutkowski", "digital painting"} <= set(
        m.text for m in stats.strongest_in(hits, k=20)
    )
    assert [m.count for m in strongest] == sorted((m.count for m in strongest), reverse=True)
    assert "castle" not in " ".join(texts)


def test_subject_words_are_only_mined_when_asked(stats: ModifierStats) -> None:
    prompt = "ultra wide angle photograph of a cabin in the woods"
    assert stats.modifiers_in(prompt) == []
    deep = {m.text for m in stats.modifiers_in(prompt, include_subject=True)}
    assert "photograph" in deep or "wide angle" in deep


def test_save_load_round_trip(stats: ModifierStats, tmp_path: Path) -> None:
    path = tmp_path / "nested" / "modifiers.json"
    stats.save(path)
    loaded = ModifierStats.load(path)
    assert loaded.modifiers == stats.modifiers
    assert loaded.prompts_seen == stats.prompts_seen
    assert json.loads(path.read_text())["version"] == 1
    assert not path.with_name("modifiers.json.tmp").exists()


def test_load_rejects_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 99, "modifiers": []}')
    with pytest.raises(ValueError, match="unsupported version"):
        ModifierStats.load(bad)
    with pytest.raises(ValueError, match="cannot read"):
        ModifierStats.load(tmp_path / "missing.json")


def test_builtin_table_works_without_mining() -> None:
    builtin = ModifierStats.builtin()
    assert len(builtin) > 30
    assert builtin.top(k=1)[0].text == "trending on artstation"
    found = {m.text for m in builtin.modifiers_in("a cat, oil painting, by greg rutkowski, 8k")}
    assert found == {"oil painting", "by greg rutkowski", "8k"}


@pytest.mark.skipif(
    not (SHARED_DATA / "modifiers_clip_interrogator.json.gz").exists(), reason="no vocabularies"
)
def test_shared_vocabularies_classify_artists_and_media() -> None:
    vocabulary = load_vocabulary(SHARED_DATA)
    assert vocabulary["greg rutkowski"] == "artist"
    assert classify_modifier("greg rutkowski", vocabulary) == "artist"
    assert classify_modifier("greg rutkowski") == "other"
    assert "blue" not in vocabulary  # bare colour names are not modifiers
    assert load_vocabulary(Path("/nonexistent")) == {}


@pytest.mark.parametrize(
    ("segment", "head", "artists"),
    [
        ("a girl surrounded by wolves", "a girl surrounded by wolves", []),
        ("a temple overgrown by vines", "a temple overgrown by vines", []),
        ("lit by candles", "lit by candles", []),
        ("a garden by claude monet", "a garden", ["by claude monet"]),
        ("painted by greg rutkowski and moebius", "painted", ["by greg rutkowski", "by moebius"]),
        ("inspired by studio ghibli", "inspired", ["by studio ghibli"]),
        ("castle by the sea", "castle by the sea", []),
    ],
)
def test_split_artists_tells_an_agent_from_an_artist(segment: str, head: str, artists: list[str]) -> None:
    assert split_artists(segment) == (head, artists)
