"""Tests of retrieval.cleaning: prompt cleaning, dedupe keys, point ids and near-duplicate grouping."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.cleaning import (
    _group_labels,
    clean_prompt,
    collapse_near_duplicates,
    dedupe_key,
    normalize_whitespace,
    point_id,
)
from tests.conftest import LIBRARY

REASONS = {"empty", "too_short", "too_long", "not_text"}


def within_one_word(a: str, b: str) -> bool:
    """Reference check: token sequences equal or one substitution/insertion/deletion apart."""
    x, y = dedupe_key(a).split(), dedupe_key(b).split()
    if len(x) == len(y):
        return sum(p != q for p, q in zip(x, y, strict=True)) <= 1
    if abs(len(x) - len(y)) != 1:
        return False
    longer, shorter = (x, y) if len(x) > len(y) else (y, x)
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


# ------------------------------------------------------------------------------------------ cleaning


def test_normalize_whitespace() -> None:
    assert normalize_whitespace("  a\tcat\n\non \u00a0 a\u2003mat  ") == "a cat on a mat"
    assert normalize_whitespace("") == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Prompt: a cat sitting on a mat, ", "a cat sitting on a mat"),
        ("prompt example: a castle at dusk, oil painting", "a castle at dusk, oil painting"),
        ("Prompt - a tiny robot in the forest", "a tiny robot in the forest"),
        ("POSITIVE PROMPT: a ship in a bottle", "a ship in a bottle"),
        ("prompt : ragnarok online portrait soft light", "ragnarok online portrait soft light"),
        ("PROMPT #3: a ship in a bottle", "a ship in a bottle"),
        ('  "a red fox in the snow,"  ', "a red fox in the snow"),
        ("“Elvis in the style of Alex Grey”", "Elvis in the style of Alex Grey"),
        ("“sailor moon sitting on the train, cyberpunk", "sailor moon sitting on the train, cyberpunk"),
        ('"Vintage record" with a graphic of a player', '"Vintage record" with a graphic of a player'),
        ("- a frog in a wide hat", "a frog in a wide hat"),
        ("• a frog in a wide hat;", "a frog in a wide hat"),
        ("**Zentitsu Agatsuma as a real person**", "Zentitsu Agatsuma as a real person"),
        ("1. A pencil drawing of a man", "A pencil drawing of a man"),
        ("2. 5 d cgi anime fantasy artwork", "2. 5 d cgi anime fantasy artwork"),
        ("prompt engineer with no face at work", "prompt engineer with no face at work"),
        ("prompt-engineering is a fun job", "prompt-engineering is a fun job"),
        ("a cat\x00 on\x07 a\tmat , ,", "a cat on a mat"),
        ("ｆｕｌｌｗｉｄｔｈ text here ok", "fullwidth text here ok"),
        ("a\u200b cat on a mat", "a cat on a mat"),
        ("a cat on a mat, Negative prompt: ugly, blurry", "a cat on a mat"),
        ("a cat on a mat\nSteps: 20, Sampler: Euler a, CFG scale: 7", "a cat on a mat"),
        ("(anime:1.5) girl, [masterpiece], best quality", "(anime:1.5) girl, [masterpiece], best quality"),
    ],
)
def test_clean_prompt_cleans(raw: str, expected: str) -> None:
    assert clean_prompt(raw) == (expected, None)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty"),
        (float("nan"), "empty"),
        ("", "empty"),
        ("   \n\t ", "empty"),
        ('"" ,', "empty"),
        ("Negative prompt: ugly, blurry, bad hands", "empty"),
        (42, "not_text"),
        (["a cat on a mat"], "not_text"),
        (b"\xff\xfe\x00", "not_text"),
        ("a cat", "too_short"),
        ("sea strawberry", "too_short"),
        ("dreamdreamdreamdreamdream", "too_short"),
        ("word " * 300, "too_long"),
    ],
)
def test_clean_prompt_drops(raw: object, reason: str) -> None:
    assert clean_prompt(raw) == (None, reason)


def test_clean_prompt_limits_and_bytes() -> None:
    assert clean_prompt(b"a cat in a hat on a mat") == ("a cat in a hat on a mat", None)
    assert clean_prompt("a cat sat", min_chars=5) == ("a cat sat", None)
    assert clean_prompt("a cat sat", min_chars=5, min_words=4) == (None, "too_short")
    assert clean_prompt("x " * 30, max_chars=20, min_words=1) == (None, "too_long")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_clean_prompt_never_raises_and_is_idempotent(raw: str) -> None:
    text, reason = clean_prompt(raw, min_chars=1, min_words=1)
    assert (text is None) != (reason is None)
    if text is None:
        assert reason in REASONS
    else:
        assert text == text.strip() and "  " not in text
        assert clean_prompt(text, min_chars=1, min_words=1) == (text, None)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | st.integers() | st.none() | st.floats())
def test_clean_prompt_non_text_inputs(raw: object) -> None:
    text, reason = clean_prompt(raw)
    assert text is None or isinstance(text, str)
    assert reason is None or reason in REASONS


# ------------------------------------------------------------------------------------ dedupe keys and ids


def test_dedupe_key_ignores_case_spacing_and_punctuation() -> None:
    key = dedupe_key("A cat , on a mat.")
    assert key == "a cat on a mat"
    assert dedupe_key("a cat, on a mat") == key
    assert dedupe_key("  A  CAT on a MAT!!  ") == key
    assert dedupe_key("ａ ｃａｔ on a mat") == key
    assert dedupe_key("Don’t stop") == dedupe_key("don't stop") == "dont stop"
    assert dedupe_key("sci-fi city") == dedupe_key("sci - fi city")
    assert dedupe_key("a cat on a mat") != dedupe_key("a cat on a hat")
    assert dedupe_key("a 🐱 in space") != dedupe_key("a 🐶 in space")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_dedupe_key_is_idempotent(text: str) -> None:
    key = dedupe_key(text)
    assert dedupe_key(key) == key


def test_point_id_is_stable_and_follows_dedupe_key() -> None:
    pid = point_id("A cat , on a mat.")
    assert uuid.UUID(pid).version == 5
    assert pid == point_id("a cat, on a mat") == point_id("A CAT ON A MAT")
    assert pid != point_id("a dog on a mat")
    # Pinned: changing the namespace or the key would duplicate every point on re-ingest.
    assert pid == "2dcc10c1-9c40-5d83-9909-ff7d6ee26e24"


# ------------------------------------------------------------------------------------------ near-duplicates


def test_one_word_edits_are_grouped() -> None:
    texts = [
        "a red fox in the snow, oil painting",  # 0 representative
        "a blue fox in the snow, oil painting",  # 1 substitution
        "a red fox sleeping in the snow, oil painting",  # 2 insertion
        "a red fox in snow, oil painting",  # 3 deletion
        "A red fox in the snow. Oil painting!",  # 4 exact duplicate after dedupe_key
        "a blue dog in the snow, oil painting",  # 5 two substitutions from 0, one from 1
        "portrait of an old sailor, dramatic light",  # 6 unrelated
    ]
    assert collapse_near_duplicates(texts) == [(0, 5), (5, 1), (6, 1)]


def test_two_word_difference_is_not_grouped() -> None:
    texts = ["a red fox in the snow at night", "a blue dog in the snow at night"]
    assert collapse_near_duplicates(texts) == [(0, 1), (1, 1)]


def test_moved_word_is_not_grouped() -> None:
    texts = ["red cat on a big mat", "cat on a big red mat"]
    assert collapse_near_duplicates(texts) == [(0, 1), (1, 1)]


def test_short_prompts_are_never_collapsed() -> None:
    texts = ["a red fox", "a blue fox", "a red fox", "red fox", "a red fox in"]
    assert collapse_near_duplicates(texts) == [(i, 1) for i in range(5)]
    assert collapse_near_duplicates(["a red fox", "a blue fox"], min_words=3) == [(0, 2)]


def test_groups_do_not_chain() -> None:
    # Each prompt is one word from the next, but the first and the last are three words apart.
    texts = [
        "a photo of a red fox in snow",
        "a photo of a red dog in snow",
        "a photo of a blue dog in snow",
        "a photo of a blue dog in rain",
    ]
    assert collapse_near_duplicates(texts) == [(0, 2), (2, 2)]


def test_representative_is_first_and_output_in_input_order() -> None:
    texts = ["unrelated prompt about a lighthouse", "a cat on a red mat", "a cat on a blue mat"]
    groups = collapse_near_duplicates(texts)
    assert groups == [(0, 1), (1, 2)]
    assert collapse_near_duplicates([]) == []
    assert collapse_near_duplicates(["", "   "]) == [(0, 1), (1, 1)]


@pytest.mark.slow
def test_library_slice_groups_are_sane() -> None:
    texts = [str(p) for p in pq.read_table(LIBRARY, columns=["prompt"])["prompt"].to_pylist()[:5000]]
    start = time.perf_counter()
    labels = _group_labels(texts)
    elapsed = time.perf_counter() - start
    groups = collapse_near_duplicates(texts)
    assert sum(size for _, size in groups) == len(texts)
    assert [rep for rep, _ in groups] == sorted(rep for rep, _ in groups)
    members: dict[int, list[int]] = defaultdict(list)
    for index, rep in enumerate(labels):
        members[rep].append(index)
    assert {rep: len(m) for rep, m in members.items()} == dict(groups)
    multi = [m for m in members.values() if len(m) > 1]
    assert multi, "expected some one-word variants in the library"
    for group in multi:
        rep = group[0]
        assert labels[rep] == rep and rep == min(group)
        assert len(dedupe_key(texts[rep]).split()) >= 4
        assert all(within_one_word(texts[rep], texts[m]) for m in group)
    assert max(len(m) for m in members.values()) < 50
    assert elapsed < 5.0
