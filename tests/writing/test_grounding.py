"""What a prompt took from the hits: occurrence, borrowed claims and line, subject, added phrases."""

from __future__ import annotations

from bot.engine.ports import HitForPrompt, PromptDraft
from bot.writing.grounding import (
    added_phrases,
    borrowed_line,
    hits_with,
    keeps_subject,
    occurs,
    subject_clause,
    verify_borrowed,
)

HITS = (
    HitForPrompt(1, "a dog in a meadow, (watercolor painting:1.2), soft morning light, by Beatrix Potter"),
    HitForPrompt(2, "portrait of a knight, oil painting, dramatic lighting, highly detailed"),
)


def test_a_phrase_occurs_as_whole_words_whatever_the_weights_and_case() -> None:
    assert occurs("Watercolor Painting", HITS[0].prompt) and occurs("by beatrix potter", HITS[0].prompt)
    assert not occurs("water", HITS[0].prompt) and not occurs("", HITS[0].prompt)
    assert hits_with("painting", HITS) == (1, 2) and hits_with("dramatic lighting", HITS) == (2,)


def test_only_claims_a_cited_hit_and_the_prompt_hold_survive() -> None:
    draft = PromptDraft(
        "a fox, watercolor painting, dramatic lighting, neon",
        used_hits=(1,),
        borrowed=("watercolor painting", "dramatic lighting", "neon", "soft morning light"),
    )
    kept, dropped = verify_borrowed(draft, HITS)
    assert kept.borrowed == ("watercolor painting",) and kept.used_hits == (1,)
    assert dropped == ["dramatic lighting", "neon", "soft morning light"]
    unclaimed, nothing = verify_borrowed(PromptDraft("a fox", used_hits=(2,)), HITS)
    assert unclaimed.used_hits == (2,) and nothing == []


def test_the_borrowed_line() -> None:
    assert borrowed_line([4, 2], ["watercolor", "soft morning light"]) == (
        "Borrowed from #2 and #4: watercolor, soft morning light"
    )
    assert borrowed_line([3, 1, 2], ["ink"]) == "Borrowed from #1, #2 and #3: ink"
    assert borrowed_line([1], []) == "" and borrowed_line([], ["ink"]) == ""


def test_the_subject_survives_synonym_free_rewrites_and_spelling_fixes() -> None:
    assert subject_clause("please draw me a red fox, in the snow") == "a red fox"
    assert keeps_subject("a cartoon of a little dog", "A little dog drawn as a cartoon, soft light")
    assert keeps_subject("astronot riding a hors", "an astronaut riding a horse, oil painting")
    assert keeps_subject("man's best friend in a space helmet", "a dog in a space helmet")  # the alias
    assert not keeps_subject("a red fox in the snow", "a castle on a hill, matte painting")
    assert keeps_subject("watercolor", "anything")  # nothing but style words: nothing to lose


def test_added_phrases_are_grounded_when_a_hit_holds_them() -> None:
    prompt = (
        "A watercolor painting of a little cartoon dog sitting in a meadow, bathed in soft morning light, "
        "with pastel colors, trending on artstation"
    )
    added = {a.phrase: a for a in added_phrases(prompt, "a cartoon of a little dog", HITS)}
    assert set(added) == {
        "watercolor painting",
        "sitting in a meadow",
        "soft morning light",
        "pastel colors",
        "trending on artstation",
    }
    assert added["watercolor painting"].hits == (1,) and added["soft morning light"].grounded
    assert not added["sitting in a meadow"].grounded and not added["trending on artstation"].grounded
    assert added["watercolor painting"].category == "medium"
    assert added_phrases("a cartoon of a little dog", "a cartoon of a little dog", HITS) == []
