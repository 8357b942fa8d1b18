"""Prompt dialects (tags, prose, Nova), incantations, negations, and the clash rules between phrases."""

from __future__ import annotations

import pytest

from bot.writing.clashes import clash, conflicting_pairs, facets, idea_clash
from bot.writing.dialect import (
    Dialect,
    default_negative,
    dialect_for,
    is_incantation,
    negations,
    render,
    split_prompt,
    strip_negations,
)

LOOK = [
    ("watercolor painting", "medium"),
    ("whimsical", "style"),
    ("by beatrix potter", "artist"),
    ("soft morning light", "lighting"),
    ("pastel colors", "color"),
    ("close-up", "camera"),
    ("highly detailed", "quality"),
]


@pytest.mark.parametrize(
    ("model", "dialect"),
    [
        ("bedrock:stability.stable-diffusion-xl-v1", Dialect.TAGS),
        ("sagemaker:my-sdxl-endpoint", Dialect.TAGS),
        ("bedrock:stability.sd3-5-large-v1:0", Dialect.PROSE),
        ("bedrock:stability.stable-image-core-v1:1", Dialect.PROSE),
        ("bedrock:stability.stable-image-ultra-v1:1", Dialect.PROSE),
        ("bedrock:amazon.nova-canvas-v1:0", Dialect.NOVA),
        ("bedrock:amazon.titan-image-generator-v2:0", Dialect.NOVA),
        ("offline", Dialect.PROSE),
        ("", Dialect.PROSE),
    ],
)
def test_each_image_model_has_its_dialect(model: str, dialect: Dialect) -> None:
    assert dialect_for(model) is dialect
    assert default_negative(dialect) and "no " not in default_negative(dialect)


def test_tags_and_prose_render_the_same_look() -> None:
    tags = render("a fox in the snow", ["wearing a scarf"], LOOK, Dialect.TAGS)
    assert tags == (
        "a fox in the snow, wearing a scarf, watercolor painting, whimsical, by beatrix potter, "
        "soft morning light, pastel colors, close-up, highly detailed"
    )
    prose = render("a fox in the snow", ["wearing a scarf"], LOOK, Dialect.PROSE)
    assert prose == (
        "a fox in the snow, wearing a scarf. A watercolor painting in a whimsical style, by beatrix potter. "
        "Soft morning light, pastel colors. Close-up, highly detailed."
    )
    assert render("a fox", [], [("pixel art", "medium")], Dialect.PROSE) == "a fox. Pixel art."
    assert render("a fox", [], [("anime style", "style")], Dialect.PROSE) == "a fox. In an anime style."
    assert render("a fox", [], [], Dialect.NOVA) == "a fox"


def test_prose_reads_back_into_its_phrases() -> None:
    prose = render("a fox in the snow", ["wearing a scarf"], LOOK, Dialect.PROSE)
    first, later = split_prompt(prose)
    assert first == ["a fox in the snow", "wearing a scarf"]
    assert later == [phrase for phrase, _ in LOOK]
    tags = render("a fox", [], LOOK, Dialect.TAGS)
    assert split_prompt(tags) == (["a fox", *(p for p, _ in LOOK)], [])
    assert split_prompt("a fox. In the style of moebius.") == (["a fox"], ["by moebius"])


def test_incantations_of_the_sd1_era() -> None:
    era = "trending on artstation|8k|4k uhd|octane render|unreal engine 5|by greg rutkowski|masterpiece|"
    era += "best quality|award winning photography|hyperdetailed"
    assert all(is_incantation(phrase) for phrase in era.split("|"))
    look = "watercolor painting|highly detailed|soft morning light|by beatrix potter|hdr-ish"
    assert not any(is_incantation(phrase) for phrase in look.split("|"))


def test_negations_move_to_the_negative_prompt() -> None:
    assert negations("a room with no windows, without people") == ["windows", "people"]
    assert strip_negations("a dog, not a cat, in a park") == ("a dog, in a park", ["cat"])
    assert strip_negations("a knight in armor") == ("a knight in armor", [])
    assert strip_negations("a cabin without any snow on the roof") == ("a cabin on the roof", ["snow"])


def test_facets_and_clashes() -> None:
    assert ("medium", "photo") in facets("food photography") and ("era", "1950s") in facets("a 1950s diner")
    assert clash("oil painting", "35mm photograph") is not None
    assert clash("watercolor painting", "pencil sketch") is None  # paint and drawing go together
    assert clash("cartoon", "photorealistic") == "realism: realistic vs stylized"
    assert clash("cyberpunk", "victorian") is not None and clash("steampunk", "victorian") is None
    assert clash("retro", "1950s") is None and clash("retro", "futuristic") is not None
    assert clash("golden hour", "moonlight") is not None and clash("sunrise", "golden hour") is None
    assert clash("black and white", "vibrant colors") is not None
    assert clash("minimalist", "intricate details") is not None
    assert clash("by hieronymus bosch", "food photography") == "an artist's style vs a photograph"
    assert clash("by annie leibovitz", "portrait photograph") is None  # a photographer
    evidence = ["a model, photograph, by jane doe", "street photo, by jane doe, 35mm"]
    assert clash("by jane doe", "photograph", evidence) is None  # two hits agree
    assert clash("by jane doe", "photograph", evidence[:1]) is not None  # one is no evidence
    assert idea_clash("cyberpunk", "flying saucer over a 1950s diner") is not None
    assert idea_clash("oil painting", "a bowl of ramen, food photography") is not None
    assert idea_clash("soft lighting", "a bowl of ramen, food photography") is None
    pairs = conflicting_pairs(["food photography", "by hieronymus bosch", "minimal", "studio lighting"])
    assert [(c.first, c.second) for c in pairs] == [("food photography", "by hieronymus bosch")]
