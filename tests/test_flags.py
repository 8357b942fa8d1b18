"""`/imagine` text parsing: the idea, each flag, and errors that name the flag."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.flags import FLAG_NAMES, FlagError, normalize_aspect_ratio, parse_imagine


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
    ],
)
def test_bad_flags_are_named(text: str, flag: str) -> None:
    with pytest.raises(FlagError, match=flag):
        parse_imagine(text)


@given(st.text(max_size=300))
def test_any_text_parses_or_raises_flag_error(text: str) -> None:
    try:
        command = parse_imagine(text)
    except FlagError as error:
        assert str(error)
    else:
        assert not any(token.lower() in FLAG_NAMES for token in command.idea.split())
        assert command.idea == command.idea.strip() and len(command.idea) <= 1500
        assert 1 <= command.options.count <= 4
