"""OfflineComposer: deterministic drafts from the idea, library modifiers and refinement instructions."""

from __future__ import annotations

from typing import Any

import pytest

from bot.engine.ports import ComposeRequest, ComposeResult, HitForPrompt, TurnMemory, UserDefaults
from bot.engine.turn_errors import BotError
from bot.writing.offline_composer import LABEL, OfflineComposer
from bot.writing.prompt_template import validate_drafts
from retrieval.modifiers import ModifierStats, mine_modifiers

IDEA = "a red fox in the snow"
SDXL = "bedrock:stability.stable-diffusion-xl-v1"  # the tags dialect: comma-separated phrases
HITS = (
    HitForPrompt(
        1, "a lighthouse in a storm, digital painting, volumetric lighting, trending on artstation, 8k"
    ),
    HitForPrompt(
        2, "portrait of a knight, oil painting, by greg rutkowski, dramatic lighting, highly detailed"
    ),
    HitForPrompt(3, "a cat on a sofa, watercolor, soft lighting"),
)


@pytest.fixture(scope="module")
def composer(library_slice: list[str]) -> OfflineComposer:
    """A composer over statistics mined from the first 3,000 library prompts."""
    return OfflineComposer(mine_modifiers(library_slice, min_count=3))


def compose(composer: OfflineComposer, **fields: Any) -> ComposeResult:
    """Compose a request (defaults: the fox idea, the three hits) and check it passes validate_drafts."""
    fields.setdefault("idea", IDEA)
    fields.setdefault("hits", HITS)
    fields.setdefault("image_model", SDXL)
    request = ComposeRequest(**fields)
    result = composer.compose(request)
    assert validate_drafts(result.drafts, request) == result.drafts  # within every bound already
    return result


def thread(composer: OfflineComposer, *instructions: str, **fields: Any) -> ComposeResult:
    """A start turn followed by refine turns, each built from the previous turn's prompt."""
    result = compose(composer, kind="start", **fields)
    first = result.drafts[0]
    history = [TurnMemory("start", IDEA, first.prompt, first.negative_prompt, borrowed=first.borrowed)]
    for instruction in instructions:
        result = compose(composer, kind="refine", instruction=instruction, history=tuple(history), **fields)
        draft = result.drafts[0]
        history.append(
            TurnMemory("refine", instruction, draft.prompt, draft.negative_prompt, borrowed=draft.borrowed)
        )
    return result


def test_start_keeps_subject_and_borrows_the_hits_look(composer: OfflineComposer) -> None:
    result = compose(composer, kind="start", idea="please draw me a red fox in the snow")
    (draft,) = result.drafts
    assert draft.prompt.startswith(f"{IDEA}, ")
    assert "digital painting" in draft.prompt and "volumetric lighting" in draft.prompt
    assert "trending on artstation" not in draft.prompt and "8k" not in draft.prompt  # SD 1.x incantations
    assert "lighthouse" not in draft.prompt and "knight" not in draft.prompt  # hit subjects are not copied
    assert len(draft.borrowed) >= 3 and set(draft.used_hits) <= {1, 2, 3} and draft.used_hits
    for phrase in draft.borrowed:  # every claim is true: in the prompt and in a cited hit
        assert phrase in draft.prompt
        assert any(phrase in hit.prompt for hit in HITS if hit.number in draft.used_hits)
    assert draft.rationale.startswith(LABEL)
    assert draft.aspect_ratio == "1:1"
    assert result.model_id == composer.model_id == "offline"
    assert result.is_offline and composer.is_offline
    assert (result.input_tokens, result.output_tokens) == (0, 0)


def test_a_medium_in_the_idea_is_not_fought_by_borrowed_media(composer: OfflineComposer) -> None:
    (draft,) = compose(composer, kind="start", idea="a cartoon of a little dog").drafts
    assert draft.prompt.startswith("a cartoon of a little dog")
    assert not any(medium in draft.prompt for medium in ("oil painting", "digital painting", "watercolor"))
    assert "8k" in draft.prompt or "highly detailed" in draft.prompt  # non-style modifiers still come


def test_a_flag_set_ratio_survives_refinements(composer: OfflineComposer) -> None:
    start = TurnMemory("start", IDEA, f"{IDEA}, digital painting", "blurry", aspect_ratio="3:2")
    kept = compose(composer, kind="refine", instruction="make it watercolor", history=(start,))
    assert kept.drafts[0].aspect_ratio == "3:2"
    taller = compose(composer, kind="refine", instruction="taller", history=(start,))
    assert taller.drafts[0].aspect_ratio in ("2:3", "4:5", "9:16")


def test_output_is_deterministic(composer: OfflineComposer, library_slice: list[str]) -> None:
    again = OfflineComposer(mine_modifiers(library_slice, min_count=3))
    request = ComposeRequest(kind="brainstorm", idea="fox mascot", hits=HITS, candidates=3)
    assert composer.compose(request) == again.compose(request) == composer.compose(request)
    assert thread(composer, "make it watercolor", "wider") == thread(again, "make it watercolor", "wider")


def test_make_it_watercolor_replaces_the_style(composer: OfflineComposer) -> None:
    before = compose(composer, kind="start", hits=HITS[:2]).drafts[0]
    assert before.style and "watercolor" not in before.style
    draft = thread(composer, "make it watercolor", hits=HITS[:2]).drafts[0]
    assert draft.prompt.startswith(f"{IDEA}, watercolor")
    assert draft.style == "watercolor painting"
    for old in (before.style or "").split(", "):
        assert old not in draft.prompt
    assert "watercolor painting style" in draft.rationale


@pytest.mark.parametrize(
    ("instruction", "style"),
    [
        ("anime style", "anime style"),
        ("as a pencil sketch", "pencil sketch"),
        ("in the style of moebius", None),
    ],
)
def test_other_style_words(composer: OfflineComposer, instruction: str, style: str | None) -> None:
    draft = thread(composer, instruction).drafts[0]
    if style:
        assert draft.style == style
    else:
        assert "in the style of moebius" in draft.prompt
        assert "by greg rutkowski" not in draft.prompt  # the old artist is replaced


def test_no_text_goes_to_the_negative_prompt(composer: OfflineComposer) -> None:
    draft = thread(composer, "add a sign with text", "no text").drafts[0]
    assert "text" in draft.negative_prompt.split(", ")
    assert "text" not in draft.prompt
    assert "sign" in draft.prompt
    without = thread(composer, "without the snow").drafts[0]
    assert "snow" in without.negative_prompt and "snow" not in without.prompt


@pytest.mark.parametrize(
    ("instructions", "ratio"),
    [
        (("wider",), "16:9"),
        (("wider", "even wider"), "21:9"),
        (("make it landscape",), "3:2"),
        (("taller",), "2:3"),
        (("vertical please",), "9:16"),
        (("portrait orientation",), "2:3"),
        (("wider", "square"), "1:1"),
        (("3:2",), "3:2"),
        (("wider", "no text"), "16:9"),  # a later turn without aspect words keeps the thread's ratio
    ],
)
def test_aspect_words(composer: OfflineComposer, instructions: tuple[str, ...], ratio: str) -> None:
    assert thread(composer, *instructions).drafts[0].aspect_ratio == ratio


def test_aspect_from_defaults_and_idea(composer: OfflineComposer) -> None:
    defaults = UserDefaults(aspect_ratio="4:5", style="pixel art", negative_prompt="ugly")
    draft = compose(composer, kind="start", defaults=defaults).drafts[0]
    assert draft.aspect_ratio == "4:5"
    assert draft.style == "pixel art" and "oil painting" not in draft.prompt
    assert draft.negative_prompt == "ugly"
    assert compose(composer, kind="start", idea="a forest phone wallpaper").drafts[0].aspect_ratio == "9:16"
    assert compose(composer, kind="start", idea="a fox, 16:9").drafts[0].aspect_ratio == "16:9"


def test_more_like_hit_two_borrows_from_hit_two(composer: OfflineComposer) -> None:
    draft = thread(composer, "make it watercolor", "more like #2").drafts[0]
    assert draft.used_hits == (2,)
    assert "oil painting" in draft.prompt and "dramatic lighting" in draft.prompt
    assert "greg rutkowski" not in draft.prompt  # an incantation, unless the user asks for it
    assert "watercolor" not in draft.prompt
    assert "#2" in draft.rationale


def test_use_hit_borrows_only_from_that_hit(composer: OfflineComposer) -> None:
    draft = compose(composer, kind="use_hit", instruction="#3").drafts[0]
    assert draft.used_hits == (3,)
    assert "watercolor" in draft.prompt and draft.prompt.startswith(IDEA)
    missing = thread(composer, "more like #9").drafts[0]
    assert "found no style to borrow" in missing.rationale


def test_more_detail_and_simpler(composer: OfflineComposer) -> None:
    detailed = thread(composer, "more detail").drafts[0]
    assert "intricate details" in detailed.prompt and "sharp focus" in detailed.prompt
    simple = thread(composer, "simpler").drafts[0]
    assert "minimalist" in simple.prompt
    assert len(simple.prompt) < len(detailed.prompt)


def test_unrecognised_instruction_is_added_as_content(composer: OfflineComposer) -> None:
    draft = thread(composer, "add a red scarf", "at sunset").drafts[0]
    assert draft.prompt.startswith(f"{IDEA}, a red scarf")
    assert "at sunset" in draft.prompt


def test_vary_keeps_subject_and_style_with_small_changes(composer: OfflineComposer) -> None:
    base = thread(composer, "make it watercolor")
    history = (TurnMemory("start", IDEA, base.drafts[0].prompt, base.drafts[0].negative_prompt),)
    varied = compose(composer, kind="vary", history=history, candidates=3)
    prompts = [d.prompt for d in varied.drafts]
    assert len(set(prompts)) == 3 and base.drafts[0].prompt not in prompts
    assert all(p.startswith(f"{IDEA}, watercolor painting") for p in prompts)
    assert all(d.style == "watercolor painting" for d in varied.drafts)


def test_brainstorm_n_distinct_candidates_share_one_style(composer: OfflineComposer) -> None:
    result = compose(composer, kind="brainstorm", idea="a fox mascot", candidates=5)
    drafts = result.drafts
    assert len(drafts) == 5 and len({d.prompt for d in drafts}) == 5
    (style,) = {d.style for d in drafts}
    assert style and all(d.prompt.startswith("a fox mascot, ") and d.prompt.endswith(style) for d in drafts)
    assert all(d.aspect_ratio == "1:1" for d in drafts)
    many = compose(composer, kind="brainstorm", idea="owl", candidates=14, hits=())
    assert len({d.prompt for d in many.drafts}) == 14


def test_prompt_respects_max_prompt_chars(composer: OfflineComposer) -> None:
    short = compose(composer, kind="start", max_prompt_chars=40).drafts[0]
    assert len(short.prompt) <= 40 and short.prompt.startswith(IDEA)
    tiny = compose(
        composer, kind="start", idea="an extraordinarily long subject " * 5, max_prompt_chars=30
    ).drafts[0]
    assert 0 < len(tiny.prompt) <= 30


def test_works_without_statistics_or_hits() -> None:
    composer = OfflineComposer(None)
    draft = compose(composer, kind="start", hits=()).drafts[0]
    assert draft.prompt == IDEA
    draft = compose(composer, kind="start").drafts[0]
    assert "digital painting" in draft.prompt or "oil painting" in draft.prompt
    assert OfflineComposer(ModifierStats([])).compose(ComposeRequest(kind="start", idea="x")).drafts


def test_refinement_without_history_starts_fresh(composer: OfflineComposer) -> None:
    draft = compose(composer, kind="refine", instruction="make it watercolor, no text").drafts[0]
    assert draft.prompt.startswith(f"{IDEA}, watercolor painting")
    assert "text" in draft.negative_prompt
    assert not isinstance(draft, BotError)


def test_a_picked_candidate_keeps_its_prompt_and_ignores_the_engines_guidance(
    composer: OfflineComposer,
) -> None:
    winner = "a friendly robot mascot, flat vector illustration, pastel colors"
    history = (TurnMemory("pick", "picked #3", winner, "text, watermark"),)
    instruction = "refine candidate #3, keep its subject and the shared style"
    [draft] = compose(composer, kind="refine", instruction=instruction, history=history).drafts
    assert draft.prompt.startswith("a friendly robot mascot") and "flat vector illustration" in draft.prompt
    assert "keep" not in draft.prompt and "candidate" not in draft.prompt
    assert "keep" not in (draft.style or "") and "sofa" not in draft.prompt  # hit #3 was not borrowed
