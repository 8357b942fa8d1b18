"""The offline composer's borrowed look: what the hits share, no contradictions, Use #n, avatars, dialects."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.engine.ports import ComposeRequest, HitForPrompt, PromptDraft, TurnMemory
from bot.writing.clashes import conflicting_pairs
from bot.writing.dialect import DIALECT_MODELS, Dialect, negations
from bot.writing.grounding import occurs
from bot.writing.offline_composer import OfflineComposer
from bot.writing.prompt_template import validate_drafts

SDXL, SD35, NOVA = (DIALECT_MODELS[d] for d in (Dialect.TAGS, Dialect.PROSE, Dialect.NOVA))
SHARED = (
    HitForPrompt(1, "a corgi puppy in a garden, watercolor painting, soft morning light, by beatrix potter"),
    HitForPrompt(2, "a kitten on a windowsill, watercolor painting, pastel colors, by beatrix potter, 8k"),
    HitForPrompt(3, "an old barn, watercolor painting, soft morning light, close-up, highly detailed"),
    HitForPrompt(4, "a dragon, oil painting, by greg rutkowski, trending on artstation"),
)
CLASHING = (
    HitForPrompt(1, "pancakes on a plate, food photography, by hieronymus bosch, studio lighting, 85mm"),
    HitForPrompt(2, "a robot cook, oil painting, by hieronymus bosch, dramatic lighting, cyberpunk"),
    HitForPrompt(3, "breakfast table, food photography, studio lighting, shallow depth of field, 85mm"),
)


def compose(**fields: Any) -> PromptDraft:
    """One draft of the built-in composer for a request (start, SDXL tags by default), within bounds."""
    fields.setdefault("kind", "start")
    fields.setdefault("image_model", SDXL)
    request = ComposeRequest(**fields)
    result = OfflineComposer(None).compose(request)
    assert validate_drafts(result.drafts, request) == result.drafts
    return result.drafts[0]


def test_shared_phrases_are_borrowed_in_the_order_prompt_writers_use() -> None:
    draft = compose(idea="a fox in the snow", hits=SHARED)
    assert draft.prompt.startswith("a fox in the snow, watercolor painting, ")
    assert draft.prompt.index("watercolor painting") < draft.prompt.index("by beatrix potter")
    assert draft.prompt.index("by beatrix potter") < draft.prompt.index("soft morning light")
    assert 3 <= len(draft.borrowed) <= 6
    assert {"watercolor painting", "by beatrix potter", "soft morning light"} <= set(draft.borrowed)
    assert "oil painting" not in draft.prompt  # one medium
    assert "rutkowski" not in draft.prompt and "8k" not in draft.prompt and "artstation" not in draft.prompt
    assert draft.used_hits == (1, 2, 3)  # the hits that hold a borrowed phrase, and only those


def test_an_artist_needs_two_hits_to_agree() -> None:
    single = (SHARED[0], SHARED[2], HitForPrompt(3, "a mill, watercolor painting, by albrecht durer"))
    draft = compose(idea="a fox in the snow", hits=single)
    assert "albrecht durer" not in draft.prompt and "beatrix potter" not in draft.prompt


def test_no_contradicting_phrases_with_the_idea_or_each_other() -> None:
    chef = compose(idea="a chef robot making pancakes", hits=CLASHING)
    borrowed = list(chef.borrowed)
    assert conflicting_pairs(borrowed, [h.prompt for h in CLASHING]) == []
    assert not ("food photography" in chef.prompt and "hieronymus bosch" in chef.prompt)
    ramen = compose(idea="a bowl of ramen, food photography", hits=CLASHING)
    assert "oil painting" not in ramen.prompt and "bosch" not in ramen.prompt  # a photo: no painter
    assert "studio lighting" in ramen.prompt
    diner = compose(idea="flying saucer over a 1950s diner", hits=CLASHING)
    assert "cyberpunk" not in diner.prompt  # one era


def test_no_and_style_of_the_turn_win_over_the_hits() -> None:
    avoided = compose(idea="a fox in the snow", hits=SHARED, avoid=("watercolor painting",))
    assert "watercolor" not in avoided.prompt and "watercolor painting" in avoided.negative_prompt
    styled = compose(idea="a fox in the snow", hits=SHARED, style="pixel art")
    assert styled.prompt.startswith("a fox in the snow, pixel art")
    assert "watercolor" not in styled.prompt  # the user's medium, not a borrowed one
    assert "pixel art" not in styled.borrowed


def test_incantations_stay_when_the_user_asks_for_them() -> None:
    asked = compose(idea="a dragon, trending on artstation", hits=SHARED)
    assert "trending on artstation" in asked.prompt


@pytest.mark.parametrize("model", [SDXL, SD35])
def test_use_hit_redoes_the_idea_in_that_hits_manner(model: str) -> None:
    hits = (
        SHARED[0],
        HitForPrompt(2, "a castle, oil painting, by rembrandt, golden hour lighting, wide shot, dramatic"),
    )
    previous = TurnMemory("start", "a cartoon of a little dog", "a cartoon of a little dog", "text, blurry")
    request: dict[str, Any] = dict(hits=hits, history=(previous,), image_model=model)
    draft = compose(kind="use_hit", idea="a cartoon of a little dog", instruction="use #2", **request)
    for phrase in ("oil painting", "by rembrandt", "golden hour lighting", "wide shot", "dramatic"):
        assert phrase in draft.prompt.lower(), phrase
    assert "little dog" in draft.prompt and "cartoon" not in draft.prompt  # hit #2's medium replaces it
    assert "castle" not in draft.prompt and "watercolor" not in draft.prompt
    assert draft.used_hits == (2,) and len(draft.borrowed) >= 4
    assert draft.negative_prompt == "text, blurry"  # the thread's no's carry over


def test_avatars_are_square_centred_on_a_simple_background_in_one_style() -> None:
    theme = "friendly robots for the data team"
    request = ComposeRequest(kind="brainstorm", idea=theme, hits=SHARED, candidates=4, image_model=SD35)
    drafts = OfflineComposer(None).compose(request).drafts
    (style,) = {d.style for d in drafts}
    assert style and all(d.prompt.endswith(style) for d in drafts)
    assert "simple background" in style.lower() and "centered" in style.lower()
    assert "watercolor" in style.lower()
    assert all(d.aspect_ratio == "1:1" for d in drafts) and len({d.prompt for d in drafts}) == 4
    assert all(d.borrowed and d.used_hits for d in drafts)


def test_prose_names_the_medium_in_sentences_and_reads_back_on_the_next_turn() -> None:
    start = compose(idea="a fox in the snow", hits=SHARED, image_model=SD35)
    assert start.prompt.startswith("a fox in the snow. A watercolor painting, by beatrix potter.")
    assert start.prompt.endswith(".") and "," not in start.prompt.split(".")[0]
    previous = TurnMemory("start", "a fox", start.prompt, start.negative_prompt, borrowed=start.borrowed)
    refined = compose(
        kind="refine", idea="a fox in the snow", instruction="make it anime style, no text",
        history=(previous,), hits=SHARED, image_model=SD35,
    )  # fmt: skip
    assert refined.prompt.startswith("a fox in the snow. In an anime style.")
    assert "watercolor" not in refined.prompt and "soft morning light" in refined.prompt.lower()
    assert "text" in refined.negative_prompt and "by beatrix potter" not in refined.prompt
    assert refined.borrowed and "soft morning light" in refined.borrowed  # still credited to the library


def test_nova_prompts_carry_no_negation() -> None:
    draft = compose(idea="a cozy room with no windows, without people", hits=SHARED, image_model=NOVA)
    assert negations(draft.prompt) == []
    assert re.search(r"\b(?:no|without|not)\b", draft.prompt) is None
    assert "windows" in draft.negative_prompt and "people" in draft.negative_prompt
    assert draft.prompt.startswith("a cozy room")


@pytest.mark.parametrize("model", [SDXL, SD35, NOVA])
def test_prompts_fit_the_image_models_limit(model: str) -> None:
    long_idea = "a very long and winding description of a mountain village " * 3
    draft = compose(idea=long_idea.strip(), hits=SHARED, image_model=model, max_prompt_chars=120)
    assert len(draft.prompt) <= 120
    assert all(occurs(p, draft.prompt) for p in draft.borrowed)  # dropped phrases are not claimed
