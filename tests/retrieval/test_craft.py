"""The craft definition shared by ingest, ranking, exemplar phrases and the retrieval bench."""

from __future__ import annotations

from retrieval.craft import (
    CRAFT_VERSION,
    assess_craft,
    borrowable_line,
    borrowable_phrases,
    craft_payload,
    stored_prior,
)

CRAFTED = "a cute rabbit in a garden, watercolor, soft light, by Beatrix Potter, highly detailed"


def test_phrases_beyond_the_subject_make_a_prompt_crafted() -> None:
    craft = assess_craft(CRAFTED)
    phrases = ["watercolor", "soft light", "by beatrix potter", "highly detailed"]
    assert [p for p, _ in craft.phrases] == phrases
    assert craft.crafted and not craft.broken
    assert craft.prior == 0.8
    assert craft.by_category() == {
        "medium": ["watercolor"],
        "lighting": ["soft light"],
        "artist": ["by beatrix potter"],
        "quality": ["highly detailed"],
    }


def test_the_subject_and_plain_content_phrases_do_not_count() -> None:
    # "watercolor painting of a hummingbird" is the subject; "in a garden" is content, not craft
    bare = assess_craft("watercolor painting of a hummingbird, in a garden, with flowers")
    assert bare.phrases == () and not bare.crafted and bare.prior == 0.0
    two = assess_craft("a little dog with cat eyes, oil painting, dramatic lighting")
    assert len(two.phrases) == 2 and not two.crafted


def test_an_artist_in_the_subject_phrase_counts() -> None:
    craft = assess_craft("a castle on a hill by Greg Rutkowski, 8k, octane render, volumetric lighting")
    assert ("by greg rutkowski", "artist") in craft.phrases
    assert craft.crafted


def test_broken_text_is_never_crafted() -> None:
    assert assess_craft("p. cubensis").broken == ("fragment",)
    repeated = assess_craft("mr clean mr clean mr clean, 8k, highly detailed, octane render, by wlop")
    assert "repeated" in repeated.broken and not repeated.crafted and repeated.prior == 0.0
    assert "not letters" in assess_craft("1 2 3 4 5 6 7 8 9 0 !!! ### a cat").broken
    stray = assess_craft("a cat on a mat, 8, x, digital art, highly detailed, by wlop")
    assert "stray pieces" in stray.broken


def test_prior_saturates_and_payload_carries_the_version() -> None:
    many = "a fox, watercolor, ink, by a, by b, by c, highly detailed, 8k, soft light, bokeh"
    assert assess_craft(many).prior == 1.0
    payload = craft_payload(CRAFTED)
    assert payload == {"craft": 0.8, "craft_version": CRAFT_VERSION}
    assert stored_prior(payload) == 0.8
    assert stored_prior({"craft": 0.8}) is None  # an older definition: the backfill rewrites it
    assert stored_prior({}) is None


def test_borrowable_phrases_are_grouped_and_capped() -> None:
    grouped = borrowable_phrases(CRAFTED + ", trending on artstation", limit=3)
    assert grouped == {"medium": ["watercolor"], "artist": ["by beatrix potter"], "lighting": ["soft light"]}
    assert borrowable_line(CRAFTED) == "watercolor, by beatrix potter, soft light, highly detailed"
    assert borrowable_line("a dog") == ""


def test_only_modifier_sized_phrases_are_offered_to_borrow() -> None:
    girl = (
        "a cute little girl with a round cherubic face, blue eyes, and short wavy light brown hair sitting "
        "on top of a stack of books. beautiful cartoon painting with highly detailed face by quentin blake "
        "and greg rutkowski"
    )
    line = borrowable_line(girl)
    assert "stack of books" not in line  # content that happens to name a light, not a look to lend
    assert "by quentin blake" in line and "by greg rutkowski" in line
    assert all(phrase.count(" ") < 6 for phrase in line.split(", "))
    # display only: the craft prior still counts it, so stored priors and the ranking are unchanged
    assert any("stack of books" in phrase for phrase, _ in assess_craft(girl).phrases)
