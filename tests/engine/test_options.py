"""`/imagine` text parsing: the idea, each option, and errors that name the option."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.engine.options import (
    MAX_CANDIDATES,
    MAX_IDEA_CHARS,
    MAX_IMAGES,
    MODEL_ALIASES,
    OPTION_NAMES,
    OptionError,
    clean_text,
    normalize_aspect_ratio,
    parse_imagine,
)


def test_all_flags_together() -> None:
    command = parse_imagine(
        "a cartoon of a little dog --ar 3:2 --seed 42 --no text, watermark --style anime --n 4"
    )
    assert command.idea == "a cartoon of a little dog"
    options = command.options
    assert (options.aspect_ratio, options.seed, options.style, options.count) == ("3:2", 42, "anime", 4)
    assert options.negative == ("text", "watermark")


def test_defaults_and_switches() -> None:
    plain = parse_imagine("  a red fox  in snow ")
    assert plain.idea == "a red fox in snow" and plain.options.count == 1 and plain.options.seed is None
    assert parse_imagine("--avatar friendly robots").avatar
    assert parse_imagine("--help").help and parse_imagine("").idea == ""
    assert parse_imagine("cat \u2014ar 16x9").options.aspect_ratio == "16:9"  # Slack's smart dash


@pytest.mark.parametrize(
    ("value", "expected"), [("3:2", "3:2"), ("16X9", "16:9"), ("1.5", "3:2"), ("4/3", "5:4")]
)
def test_aspect_ratios_snap_to_supported(value: str, expected: str) -> None:
    assert normalize_aspect_ratio(value) == expected


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("dog --ar", "--ar"),
        ("dog --ar wide", "--ar"),
        ("dog --ar 9:1", "--ar"),
        ("dog --seed -1", "--seed"),
        ("dog --seed 99999999999", "--seed"),
        ("dog --n 0", "--n"),
        ("dog --n 5", "--n"),
        ("dog --zoom 2", "--zoom"),
        ("dog --style", "--style"),
        ('dog --style ""', "--style"),
        ("dog --seed ²x", "--seed"),
        ("dog --seed " + "9" * 5000, "--seed"),  # no int() of a huge string
        ("dog --n ½", "--n"),
        ("dog --model", "--model"),
        ("dog --model foo", "--model"),
        ("dog --model chatgpt:dall-e", "--model"),
    ],
)
def test_bad_flags_are_named(text: str, flag: str) -> None:
    with pytest.raises(OptionError, match=flag):
        parse_imagine(text)


@given(st.text(max_size=300))
@example("--AVATAR")  # an avatar brainstorm draws 2..9 candidates, not 1..4 images (a CI find)
@example("robots --avatar --n 9")
def test_any_text_parses_or_raises_option_error(text: str) -> None:
    try:
        command = parse_imagine(text)
    except OptionError as error:
        assert str(error)
    else:
        assert not any(token.lower() in OPTION_NAMES for token in command.idea.split())
        assert command.idea == command.idea.strip() and len(command.idea) <= MAX_IDEA_CHARS
        assert not any(ord(char) < 32 or ord(char) == 127 for char in command.idea)
        low, high = (2, MAX_CANDIDATES) if command.avatar else (1, MAX_IMAGES)
        assert low <= command.options.count <= high


@pytest.mark.parametrize(
    ("text", "idea"),
    [
        ("cats &amp; dogs", "cats & dogs"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>"),
        ("a sign that says &amp;lt;b&amp;gt;", "a sign that says &lt;b&gt;"),  # the user typed "&lt;b&gt;"
        ("&quot;quoted&quot; &#60;", "&quot;quoted&quot; &#60;"),  # Slack escapes only & < >
    ],
)
def test_slack_entities_are_unescaped_once(text: str, idea: str) -> None:
    assert parse_imagine(text).idea == idea


@pytest.mark.parametrize("dash", ["\u2014", "\u2013", "\u2014-", "-\u2014", "\u2212"])
def test_smart_dashes_before_flag_names_count_as_double_dashes(dash: str) -> None:
    command = parse_imagine(f"a fox {dash}ar 3:2 {dash}seed 7 {dash}no snow, rain {dash}N 2")
    assert command.idea == "a fox"
    options = command.options
    assert (options.aspect_ratio, options.seed, options.negative, options.count) == (
        "3:2",
        7,
        ("snow", "rain"),
        2,
    )
    assert parse_imagine(f"{dash}avatar robots").avatar and parse_imagine(f"{dash}help").help


def test_smart_dashes_elsewhere_stay_in_the_idea() -> None:
    assert (
        parse_imagine("a cat \u2014 sitting, 1990\u20132000").idea == "a cat \u2014 sitting, 1990\u20132000"
    )
    assert parse_imagine("a \u2014art deco poster").idea == "a \u2014art deco poster"  # not --ar
    assert parse_imagine("a cat -- sitting").idea == "a cat -- sitting"
    assert parse_imagine("dog \u2014zoom 2").idea == "dog \u2014zoom 2"  # not a flag name: left alone


def test_control_and_invisible_characters() -> None:
    assert parse_imagine("a\x00 red\x07\x1b fox\x7f\nin\tthe\r\nsnow").idea == "a red fox in the snow"
    assert parse_imagine("\u200b--ar\u200b 3:2 \ufeffcat\u2060").options.aspect_ratio == "3:2"
    assert parse_imagine("\u200b--ar\u200b 3:2 \ufeffcat\u2060").idea == "cat"
    assert parse_imagine("\u202eevil\u202c cat").idea == "evil cat"  # no bidi overrides
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert parse_imagine(f"\u200d{family}\u200d --n 2").idea == family  # joiners kept inside emoji
    assert parse_imagine("\U0001f431\U0001f680").idea == "\U0001f431\U0001f680"
    assert parse_imagine("\u05e7\u05d9\u05e4\u05d5\u05d3 --ar 1:1").idea == "\u05e7\u05d9\u05e4\u05d5\u05d3"
    assert clean_text("  a\u00a0b\u3000c\n") == "a b c"


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01", "\u200b", "--", "-- ...", "--ar 3:2"])
def test_nothing_to_draw_is_an_empty_idea(text: str) -> None:
    assert parse_imagine(text).idea == ""


def test_quotes_and_apostrophes_are_kept_in_the_idea() -> None:
    command = parse_imagine('Bob\'s cat holding a sign "OPEN" \\o/ --style "oil painting" --no "text, blur"')
    assert command.idea == 'Bob\'s cat holding a sign "OPEN" \\o/'
    assert command.options.style == "oil painting" and command.options.negative == ("text", "blur")
    smart = parse_imagine("fox \u2014style \u201cink wash\u201d \u2014no \u201ctext\u201d")
    assert smart.idea == "fox" and smart.options.style == "ink wash" and smart.options.negative == ("text",)
    assert parse_imagine('fox --style "unclosed words').options.style == "unclosed"


def test_equals_values_and_full_width_forms() -> None:
    command = parse_imagine("fox --ar=16x9 --seed=\uff17 --n \uff13 --model=offline")
    assert (command.options.aspect_ratio, command.options.seed, command.options.count) == ("16:9", 7, 3)
    assert command.model == "offline"
    assert parse_imagine("fox \uff0d\uff0dar \uff13\uff1a\uff12").options.aspect_ratio == "3:2"
    assert normalize_aspect_ratio("16\u00d79") == "16:9"
    assert parse_imagine("fox --n \u0663").options.count == 3  # Arabic-Indic digit three


def test_model_flag() -> None:
    assert parse_imagine("fox").model is None
    assert (
        parse_imagine("fox --model bedrock:amazon.nova-canvas-v1:0").model
        == "bedrock:amazon.nova-canvas-v1:0"
    )
    assert parse_imagine("fox --model sagemaker:sdxl-endpoint").model == "sagemaker:sdxl-endpoint"
    for short, full in MODEL_ALIASES.items():
        assert parse_imagine(f"fox --model {short.upper()}").model == full
    with pytest.raises(OptionError) as error:
        parse_imagine("fox --model local:all-MiniLM-L6-v2")  # an embedding provider, not an image one
    message = str(error.value)
    assert message.startswith("--model 'local:all-MiniLM-L6-v2'") and "bedrock, sagemaker, offline" in message
    assert "IMAGINE_" not in message


def test_long_ideas_keep_their_first_characters_and_the_flags() -> None:
    words = " ".join(f"word{i}" for i in range(2000))
    command = parse_imagine(f"{words} --ar 3:2 --seed 5")
    assert len(command.idea) <= MAX_IDEA_CHARS and words.startswith(command.idea)
    assert command.idea.split()[-1] in words.split()  # cut at a word boundary
    assert (command.options.aspect_ratio, command.options.seed) == ("3:2", 5)
    solid = parse_imagine("x" * 10_000)
    assert solid.idea == "x" * MAX_IDEA_CHARS


def test_unknown_flag_message_lists_the_flags_and_clips_the_name() -> None:
    with pytest.raises(OptionError) as error:
        parse_imagine("fox --" + "z" * 500)
    message = str(error.value)
    assert len(message) < 200 and "--ar" in message and "--model" in message


def test_avatar_n_counts_candidates_from_two_to_nine() -> None:
    assert parse_imagine("friendly robots", avatar=True).options.count == 6
    assert parse_imagine("friendly robots --n 9", avatar=True).options.count == 9
    assert parse_imagine("friendly robots --avatar --n 2").options.count == 2
    with pytest.raises(OptionError, match=r"--n .* from 2 to 9"):
        parse_imagine("friendly robots --n 12", avatar=True)
    with pytest.raises(OptionError, match=r"--n .* from 1 to 4"):
        parse_imagine("friendly robots --n 9")  # four images at most outside a brainstorm
