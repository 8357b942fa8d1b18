"""Block Kit builders: structure and limits, escaping, truncation, offline labels, settings round trip."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.engine.ports import ASPECT_RATIOS, HitForPrompt, ImageRecord, PromptDraft, ThreadRef, UserDefaults
from bot.engine.ports import ThreadRecord as Thread
from bot.engine.ports import TurnRecord as Turn
from bot.engine.turns import StoredImage, TurnResult
from bot.slack.ids import ACTIONS, VIEW_CHANNEL_DEFAULTS, VIEW_EDIT_PROMPT, VIEW_USER_DEFAULTS, VIEWS
from bot.slack.reply import home_view as home
from bot.slack.reply import image_blocks as pictures
from bot.slack.reply import message_blocks as b
from bot.slack.reply import modal_views as modals
from storage.defaults_store import SavedPromptRecord

Json = dict[str, Any]

# --- a small Block Kit checker (limits from docs.slack.dev/reference/block-kit) -------------------

MESSAGE_BLOCKS, VIEW_BLOCKS = 50, 100
MESSAGE_TEXT = 4000  # Slack's advice for a message's top-level `text`
KEYS = {
    "section": {"type", "block_id", "text", "fields", "accessory"},
    "context": {"type", "block_id", "elements"},
    "actions": {"type", "block_id", "elements"},
    "header": {"type", "block_id", "text"},
    "divider": {"type", "block_id"},
    "input": {"type", "block_id", "label", "element", "hint", "optional"},
}
ELEMENT_KEYS = {
    "button": {"type", "text", "action_id", "value", "style", "accessibility_label"},
    "static_select": {"type", "action_id", "options", "initial_option", "placeholder"},
    "plain_text_input": {"type", "action_id", "initial_value", "multiline", "max_length", "placeholder"},
}
# Markup the bot itself writes; anything else that looks like <…> or a bare & came from untrusted text.
MARKUP = re.compile(
    r"<(?:@[A-Z0-9]+|#[A-Z0-9]+|!date\^\d+\^[^|<>]*\|[^<>]*|https://[^|<>\s]+\|[^<>]*)>|(?:^|(?<=\n))>"
)
DANGEROUS = ["<!channel>", "<!here>", "<!everyone>", "<@U0BAD>", "<https://evil.example|click>"]


def units(text: str) -> int:
    """UTF-16 length, the strictest way to count Slack's characters."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def check_safe_mrkdwn(text: str, where: str) -> None:
    """No raw < > & except the bot's own markup and entities."""
    rest = MARKUP.sub("", text)
    assert "<" not in rest and ">" not in rest, f"{where}: raw angle bracket in {text[:200]!r}"
    assert not re.search(r"&(?!amp;|lt;|gt;)", rest), f"{where}: bare & in {text[:200]!r}"


def check_text(obj: Json, limit: int, where: str, plain_only: bool = False) -> int:
    """A text object within its limit; returns its length."""
    kinds = {"plain_text"} if plain_only else {"plain_text", "mrkdwn"}
    assert obj["type"] in kinds, where
    assert set(obj) <= {"type", "text", "emoji", "verbatim"}, where
    text = obj["text"]
    assert isinstance(text, str) and text.strip(), f"{where}: empty text"
    assert units(text) <= limit, f"{where}: {units(text)} > {limit}"
    assert not any(unicodedata.category(ch) in ("Cc", "Cs") and ch != "\n" for ch in text), where
    if obj["type"] == "mrkdwn":
        assert obj.get("verbatim") is True, f"{where}: mrkdwn without verbatim"
        check_safe_mrkdwn(text, where)
    else:
        assert "verbatim" not in obj, where
    return units(text)


def check_element(element: Json, where: str) -> None:
    """An interactive or input element within its limits."""
    kind = element["type"]
    assert set(element) <= ELEMENT_KEYS[kind], f"{where}: {set(element) - ELEMENT_KEYS[kind]}"
    assert 0 < len(element["action_id"]) <= 255, where
    if kind == "button":
        check_text(element["text"], 75, where, plain_only=True)
        assert units(element["value"]) <= 2000, where
        assert element.get("style", "primary") in ("primary", "danger"), where
        assert units(element.get("accessibility_label", "")) <= 75, where
    elif kind == "static_select":
        options = element["options"]
        assert 1 <= len(options) <= 100, where
        for option in options:
            check_text(option["text"], 75, where, plain_only=True)
            assert 1 <= len(option["value"]) <= 150, where
        assert len({option["value"] for option in options}) == len(options), where
        assert element.get("initial_option", options[0]) in options, where
    else:
        assert 1 <= element["max_length"] <= 3000, where
        assert units(element.get("initial_value", "")) <= element["max_length"], where
        if "placeholder" in element:
            check_text(element["placeholder"], 150, where, plain_only=True)


def check_block(block: Json, where: str) -> int:
    """One block within its limits, also accepted unchanged by slack_sdk's models; returns its text length."""
    kind = block["type"]
    assert set(block) <= KEYS[kind], f"{where}: {set(block) - KEYS[kind]}"
    assert len(block.get("block_id", "")) <= 255, where
    size = 0
    if kind == "section":
        if "text" in block:
            size += check_text(block["text"], 3000, where)
        else:
            assert 1 <= len(block["fields"]) <= 10, where
            size += sum(check_text(field, 2000, where) for field in block["fields"])
        if "accessory" in block:
            check_element(block["accessory"], where)
    elif kind == "context":
        assert 1 <= len(block["elements"]) <= 10, where
        size += sum(check_text(element, 3000, where) for element in block["elements"])
    elif kind == "actions":
        assert 1 <= len(block["elements"]) <= 25, where
        ids = [element["action_id"] for element in block["elements"]]
        assert len(ids) == len(set(ids)), f"{where}: duplicate action_id in one block"
        for element in block["elements"]:
            check_element(element, where)
    elif kind == "header":
        size += check_text(block["text"], 150, where, plain_only=True)
    elif kind == "input":
        check_text(block["label"], 2000, where, plain_only=True)
        if "hint" in block:
            check_text(block["hint"], 2000, where, plain_only=True)
        check_element(block["element"], where)
    parsed = Block.parse(block)
    assert parsed is not None
    parsed.validate_json()
    assert parsed.to_dict() == block, where
    return size


def check_blocks(blocks: list[Json], limit: int, where: str) -> int:
    """A block list: count, unique block ids, each block valid; returns the total text length."""
    assert 1 <= len(blocks) <= limit, f"{where}: {len(blocks)} blocks"
    block_ids = [block["block_id"] for block in blocks if "block_id" in block]
    assert len(block_ids) == len(set(block_ids)), f"{where}: duplicate block_id"
    return sum(check_block(block, f"{where}[{i}]") for i, block in enumerate(blocks))


def check_message(message: Mapping[str, Any], where: str = "message") -> None:
    """A chat payload: fallback text plus at most 50 valid blocks within Slack's total size."""
    assert set(message) == {"text", "blocks"}, where
    text = message["text"]
    assert isinstance(text, str) and text.strip() and units(text) <= MESSAGE_TEXT, where
    check_safe_mrkdwn(text, f"{where}.text")
    total = check_blocks(message["blocks"], MESSAGE_BLOCKS, where)
    assert total <= b.MESSAGE_TEXT_BUDGET, f"{where}: {total} characters in blocks"
    assert set(interactive_ids(message["blocks"])) <= set(ACTIONS), where
    json.dumps(message, ensure_ascii=False).encode("utf-8")


def check_modal(view: Json) -> None:
    """A modal view within its limits."""
    assert view["type"] == "modal"
    check_text(view["title"], 24, "title", plain_only=True)
    for key in ("submit", "close"):
        check_text(view[key], 24, key, plain_only=True)
    assert view["callback_id"] in VIEWS
    assert units(view.get("private_metadata", "")) <= 3000
    check_blocks(view["blocks"], VIEW_BLOCKS, "modal")
    View(**view).validate_json()


def check_home(view: Json) -> None:
    """A Home tab view within its limits."""
    assert set(view) == {"type", "blocks"} and view["type"] == "home"
    check_blocks(view["blocks"], VIEW_BLOCKS, "home")
    assert set(interactive_ids(view["blocks"])) <= set(ACTIONS)
    View(**view).validate_json()


def interactive_ids(blocks: list[Json]) -> Iterator[str]:
    """Action ids of buttons and menus a listener receives (input elements are read on submit)."""
    for block in blocks:
        elements = block.get("elements", []) if block["type"] == "actions" else [block.get("accessory")]
        for element in elements:
            if element and element["type"] != "image":
                yield element["action_id"]


def buttons(message: Mapping[str, Any]) -> list[Json]:
    """Every button of a message or view."""
    found = []
    for block in message["blocks"]:
        if block["type"] == "actions":
            found += block["elements"]
        elif block.get("accessory"):
            found.append(block["accessory"])
    return found


# --- fixtures -------------------------------------------------------------------------------------

NASTY = (
    "<!channel> <!here> <@U0BAD> <https://evil.example|click> @everyone & co \x00\x07\x1b[31m"
    "\u202eevil\u202c \ud800 👩‍👩‍👧‍👦 🇺🇸 e\u0301 \r\n"
)
LONG = ("a cat 🐱, 👩‍👩‍👧‍👦 family, 🇺🇸 flag, & <b>, " * 400)[:10_000]


def make_result(
    prompt: str = "a cat in a hat",
    negative: str = "blurry",
    *,
    offline: bool = False,
    labels: tuple[str, ...] = (),
    images: int = 1,
    borrowed: tuple[str, ...] = (),
) -> TurnResult:
    """A finished turn with `images` stored images (and phrases borrowed from hits #2 and #4)."""
    thread = Thread(7, ThreadRef("T1", "C1", "1.2"), "U1", "imagine", "idea", datetime.now(UTC))
    params: dict[str, Any] = {"aspect_ratio": "3:2", "seed": 5, "style": "ink"}
    if borrowed:
        params |= {"used_hits": [4, 2], "borrowed": list(borrowed)}
    turn = Turn(7, "start", "user", "idea", [], prompt, negative, params, "bedrock:haiku", "bedrock:sd3")
    turn = replace(turn, id=42)
    stored = tuple(
        StoredImage(Path(f"/img/{n}.png"), ImageRecord(f"sha{n}", 100 + n, "bedrock:sd3", 1216, 832, "p"))
        for n in range(images)
    )
    return TurnResult(
        thread, turn, (), (PromptDraft(prompt),), stored, offline, offline, elapsed_ms=12_345, labels=labels
    )


CRAFTED = "a fox in the snow, watercolor, soft light, by beatrix potter, trending on artstation"


def hits(count: int, text: str = "a lighthouse at dusk") -> list[HitForPrompt]:
    """Numbered library hits."""
    return [HitForPrompt(n, f"{text} {n}", "diffusiondb") for n in range(1, count + 1)]


def drafts(count: int, text: str = "a friendly robot") -> list[PromptDraft]:
    """Brainstorm candidates in one style."""
    return [PromptDraft(f"{text} {n}", style="flat vector") for n in range(1, count + 1)]


def all_messages() -> list[tuple[str, b.Message]]:
    """Every message builder, with ordinary and extreme inputs."""
    return [
        ("help", b.help_message()),
        ("option_error", b.option_error("--seed 'x' must be a whole number")),
        ("option_error_nasty", b.option_error(NASTY + LONG)),
        ("not_in_channel", b.not_in_channel("C0123ABC", "imagine")),
        ("not_in_dm", b.not_in_channel("D0123ABC", "@imagine")),
        ("not_in_nasty", b.not_in_channel("C<!here>", NASTY)),
        ("thread_root", b.thread_root("a cat in a hat", "U0123ABC", "--ar 3:2 · seed 42")),
        ("thread_root_nasty", b.thread_root(NASTY + LONG, "<!channel>", NASTY + LONG)),
        ("status", b.working_status("draw")),
        ("status_free", b.working_status(NASTY)),
        ("queued", b.queued(3)),
        ("queued_next", b.queued(1)),
        ("quota", b.quota_reached(25)),
        ("hits", b.hits_message(7, hits(5))),
        ("hits_none", b.hits_message(7, [])),
        ("hits_long", b.hits_message(7, hits(30, NASTY + LONG))),
        ("hits_crafted", b.hits_message(7, hits(5, CRAFTED))),
        ("hits_crafted_long", b.hits_message(7, hits(10, f"{CRAFTED}, {NASTY}, " + ", ".join([LONG] * 5)))),
        ("result", b.result_message(7, make_result())),
        ("result_offline", b.result_message(7, make_result(offline=True, labels=("offline image",)))),
        ("result_long", b.result_message(7, make_result(NASTY + LONG, LONG, images=4))),
        ("result_empty", b.result_message(7, make_result("", "", images=0))),
        ("result_borrowed", b.result_message(7, make_result(borrowed=("watercolor", NASTY + LONG)))),
        ("result_references", b.result_message(7, replace(make_result(), new_hits=tuple(hits(3))))),
        (
            "result_references_long",
            b.result_message(7, replace(make_result(), new_hits=tuple(hits(3, LONG)))),
        ),
        ("brainstorm", b.brainstorm_message(7, drafts(6))),
        ("brainstorm_long", b.brainstorm_message(7, drafts(12, NASTY + LONG), ("offline " + NASTY,))),
        ("winner", b.winner_message(2, {1: 1, 2: 3, 3: 0})),
        ("winner_none", b.winner_message(1, {})),
        ("error", b.error_message("the image model timed out", retry_value="7:42")),
        ("error_nasty", b.error_message(NASTY + LONG)),
        ("picture", pictures.picture_choices(7, 43, "U0123ABC", "sketch.png", (640, 480))),
        ("picture_nasty", pictures.picture_choices(7, 43, "<!here>", NASTY + LONG, (64, 64))),
        *((f"edited_{kind}", edited(kind)) for kind in HOW_KINDS),
        ("edited_nasty", edited("search_replace", NASTY + LONG)),
        ("icon", edited("remove_background", turn_kind="icon")),
    ]


HOW_KINDS: tuple[str, ...] = ("image-to-image", "same-seed", "new-seed", "search_replace", "recolor", "erase")
HOW_KINDS += ("outpaint", "upscale", "remove_background", "sketch", "style")


def edited(kind: str, words: str = "hat", turn_kind: str = "refine") -> b.Message:
    """A result message with the line saying how its image was made (`how` of kind `kind`)."""
    result = make_result()
    how = {"kind": kind, "seed": 5, "strength": 0.55, "target": words, "replacement": f"a {words}"}
    records = tuple(image.record for image in result.images)
    turn = replace(result.turn, kind=turn_kind, params={**result.turn.params, "how": how}, images=records)
    return pictures.with_operation_note(b.result_message(7, replace(result, turn=turn)), turn)


def home_view(images: int = 3, saved: int = 2, text: str = "a lighthouse") -> Json:
    """A Home tab with some images and saved prompts."""
    recent = [
        home.HomeImage(
            f"{text} {n}",
            n,
            f"https://acme.slack.com/archives/C1/p{n}",
            "bedrock:sd3",
            datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=n),
        )
        for n in range(1, images + 1)
    ]
    prompts = [SavedPromptRecord(n, "T1", "U1", f"{text} saved {n}", "blurry") for n in range(1, saved + 1)]
    return home.home_view(recent, prompts, UserDefaults("3:2", "ink", "text", "bedrock:sd3"))


# --- structure and limits -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "message"), all_messages(), ids=[name for name, _ in all_messages()])
def test_every_message_is_valid_block_kit(name: str, message: b.Message) -> None:
    check_message(message, name)


def test_views_are_valid_block_kit() -> None:
    check_modal(modals.edit_prompt_modal(7, "a cat", "blurry"))
    check_modal(modals.edit_prompt_modal(7, NASTY + LONG, NASTY + LONG))
    check_modal(modals.settings_modal(UserDefaults(), VIEW_USER_DEFAULTS))
    check_modal(modals.settings_modal(UserDefaults("9:16", LONG, LONG, LONG), VIEW_CHANNEL_DEFAULTS, "C1"))
    check_home(home_view())
    check_home(home_view(0, 0))
    check_home(home_view(40, 40, NASTY + LONG))


def test_action_ids_are_exactly_those_of_slack_ids() -> None:
    used = {action for _, message in all_messages() for action in interactive_ids(message["blocks"])}
    used |= set(interactive_ids(home_view()["blocks"]))
    assert used == set(ACTIONS)


def test_button_values_carry_thread_and_number() -> None:
    use = [button["value"] for button in buttons(b.hits_message(7, hits(3)))]
    assert use == ["7:1", "7:2", "7:3"]
    result = buttons(b.result_message(7, make_result()))
    assert {button["value"] for button in result} == {"7:42"}
    assert [button["action_id"] for button in result] == [
        "reroll",
        "vary",
        "edit_prompt",
        "upscale",
        "remove_background",
        "save_prompt",
        "feedback_up",
        "feedback_down",
    ]
    choices = buttons(pictures.picture_choices(7, 43, "U1", "sketch.png", (64, 64)))
    assert [(c["action_id"], c["value"]) for c in choices] == [
        ("use_sketch", "7:43"),
        ("use_style", "7:43"),
        ("describe_picture", "7:43"),
    ]
    votes = buttons(b.brainstorm_message(7, drafts(9)))
    assert [button["value"] for button in votes] == [f"7:{n}" for n in range(1, 10)] + ["7"]
    assert modals.parse_action_value("7:3") == (7, 3)
    assert modals.parse_action_value("7") == (7, None)
    for bad in ("", "x:1", "7:", "7:x", "٣:1", "-1:2"):
        with pytest.raises(ValueError):
            modals.parse_action_value(bad)


# --- escaping and truncation ----------------------------------------------------------------------


def test_mentions_and_links_in_untrusted_text_are_neutralised() -> None:
    samples = [
        b.hits_message(7, [HitForPrompt(1, NASTY, NASTY)]),
        b.thread_root(NASTY, "U0123ABC", NASTY),
        b.result_message(7, make_result(NASTY, NASTY, offline=True, labels=(NASTY,))),
        b.brainstorm_message(7, [PromptDraft(NASTY, style=NASTY)], (NASTY,)),
        b.error_message(NASTY),
        b.option_error(NASTY),
    ]
    for dumped in [json.dumps(message) for message in samples] + [json.dumps(home_view(2, 2, NASTY))]:
        for danger in DANGEROUS:
            assert json.dumps(danger)[1:-1] not in dumped
    text = samples[0]["blocks"][1]["text"]["text"]
    assert "&lt;!channel&gt;" in text and "&lt;@U0BAD&gt;" in text and "&amp; co" in text
    assert "\x00" not in text and "\u202e" not in text and "\ud800" not in text


def dump(value: object) -> str:
    """JSON as Slack receives it, non-ASCII kept readable."""
    return json.dumps(value, ensure_ascii=False)


def test_long_prompts_are_cut_to_the_limits_with_an_ellipsis() -> None:
    result = b.result_message(7, make_result(LONG, LONG))
    prompt = result["blocks"][0]["elements"][0]["text"]
    assert prompt.endswith("…") and units(prompt) <= 3000
    hit = b.hits_message(7, [HitForPrompt(1, "&" * 10_000)])["blocks"][1]["text"]["text"]
    assert hit.endswith("&amp;…") and units(hit) <= b.HIT_CHARS + 10


EXTENDERS = "\u200d\ufe0f\u0301\u20e3🏻"


@given(st.text(alphabet=st.sampled_from([*"ab &<>\n🐱👩🇺🇸é\x00", *EXTENDERS])), st.integers(1, 60))
def test_truncate_never_exceeds_or_splits_an_entity_or_emoji(text: str, limit: int) -> None:
    escaped = b.escape(text)
    cut = b.truncate(escaped, limit)
    assert units(cut) <= limit
    if units(escaped) <= limit:
        assert cut == escaped
        return
    body = cut.removesuffix("…")
    assert cut.endswith("…") and escaped.startswith(body)
    after = escaped[len(body) :]
    assert not re.search(r"&[a-z]*$", body), "cut inside an entity"
    if body:
        assert not body.endswith("\u200d") and after[0] not in EXTENDERS, "cut inside an emoji sequence"
    flags = len(body) - len(body.rstrip("🇺🇸"))
    assert not (flags % 2 and after[0] in "🇺🇸"), "cut between the two halves of a flag"


def test_clean_drops_control_bidi_and_lone_surrogates() -> None:
    assert b.clean("a\x00b\u202ec\ud800d\r\ne\tf") == "abcd\ne f"
    assert b.one_line("  a \n\n b  ") == "a b"
    assert b.units("🐱a") == 3


def test_button_value_over_the_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="2000"):
        b.error_message("failed", retry_value="x" * 2001)


# --- content --------------------------------------------------------------------------------------


def test_offline_output_is_labelled() -> None:
    offline = b.result_message(7, make_result(offline=True, labels=("offline preview image",)))
    first = offline["blocks"][0]["elements"][0]["text"]
    assert first.startswith(":warning: *Offline preview*") and "offline preview image" in first
    assert offline["text"].startswith("[offline preview]")
    unlabeled = b.result_message(7, make_result(offline=True))
    assert "Offline preview" in unlabeled["blocks"][0]["elements"][0]["text"]
    explicit = b.result_message(7, make_result(), ["stand-in image"])
    assert "stand-in image" in dump(explicit)
    online = b.result_message(7, make_result())
    assert "ffline" not in dump(online)
    sheet = b.brainstorm_message(7, drafts(3), ["offline preview image"])
    assert sheet["blocks"][0]["block_id"] == "offline"


def test_result_context_lists_prompt_negative_seed_model_size_and_time() -> None:
    details = " ".join(e["text"] for e in b.result_message(7, make_result(images=2))["blocks"][0]["elements"])
    for part in ("a cat in a hat", "*Negative:* blurry", "*Seeds* 100, 101", "bedrock:sd3", "1216×832 (3:2)"):
        assert part in details
    assert "12.3 s" in details and "*Style* ink" in details


def test_borrowed_phrases_are_named_under_the_image() -> None:
    message = b.result_message(7, make_result(borrowed=("watercolor", "soft morning light")))
    [line] = [blk for blk in message["blocks"] if blk.get("block_id") == "borrowed"]
    assert line["elements"][0]["text"] == ":books: Borrowed from #2 and #4: watercolor, soft morning light"
    assert [blk["block_id"] for blk in message["blocks"]][-2:] == ["borrowed", "result_actions"]
    nothing = b.result_message(7, make_result())
    assert "borrowed" not in [blk.get("block_id") for blk in nothing["blocks"]]


def test_each_hit_names_the_phrases_worth_borrowing() -> None:
    crafted, bare = b.hits_message(7, [HitForPrompt(1, CRAFTED), HitForPrompt(2, "a little dog")])["blocks"][
        1:
    ]
    assert (
        "\n:art: _borrow: watercolor, by beatrix potter, soft light, trending on artstation_"
        in (crafted["text"]["text"])
    )
    assert "borrow" not in bare["text"]["text"]  # a bare prompt has nothing to teach


def test_a_refinement_names_its_new_references_on_one_line() -> None:
    new = (HitForPrompt(6, "a puppy, watercolor painting, soft light"), HitForPrompt(7, "dog in ink wash"))
    message = b.result_message(7, replace(make_result(), new_hits=new))
    [line] = [blk for blk in message["blocks"] if blk.get("block_id") == "new_references"]
    assert line["elements"][0]["text"] == (
        ":mag: New references: *#6* a puppy, watercolor painting, soft light · *#7* dog in ink wash"
        " (reply _more like #6_ to borrow one's look)"
    )
    assert [blk["block_id"] for blk in message["blocks"]][-1] == "result_actions"
    nothing = b.result_message(7, make_result())
    assert "new_references" not in [blk.get("block_id") for blk in nothing["blocks"]]


def test_help_names_every_flag_and_replies_name_what_to_do() -> None:
    text = dump(b.help_message())
    for flag in ("--ar", "--seed", "--no", "--style", "--n ", "--model", "--avatar", "--defaults", "/avatar"):
        assert flag in text
    assert "`/invite @imagine`" in dump(b.not_in_channel("C0123ABC", "@imagine"))
    assert "<#C0123ABC>" in dump(b.not_in_channel("C0123ABC", "imagine"))
    assert "Messages" in dump(b.not_in_channel("D0123ABC", "imagine"))
    assert "position *3*" in dump(b.queued(3))
    assert "*25*" in dump(b.quota_reached(25))
    assert "<@U0123ABC>" in dump(b.thread_root("a cat", "U0123ABC"))
    assert "retry" not in dump(b.error_message("boom"))
    assert buttons(b.error_message("boom", "7:1"))[0]["action_id"] == "retry"


def test_brainstorm_and_winner() -> None:
    message = b.brainstorm_message(7, drafts(12))
    sections = [block for block in message["blocks"] if block.get("block_id", "").startswith("candidate_")]
    assert len(sections) == 9 and sections[-1]["text"]["text"].startswith(":nine:")
    assert "Shared style: flat vector" in dump(message)
    with pytest.raises(ValueError):
        b.brainstorm_message(7, [])
    winner = dump(b.winner_message(2, {1: 1, 2: 3}))
    assert "#2 wins* with 3 votes" in winner and ":one: 1 · :two: 3" in winner
    assert "No votes" in dump(b.winner_message(1, {1: 0}))
    assert modals.pick_winner({1: 2, 2: 3, 3: 3}) == 2
    assert modals.pick_winner({}) is None
    assert [modals.vote_number(name) for name in ("one", ":nine:", "three::skin-tone-2", "ten", "+1")] == [
        1,
        9,
        3,
        None,
        None,
    ]


def test_fallback_text_comes_from_the_blocks() -> None:
    message = b.option_error("--ar '7' is not an aspect ratio")
    assert message["text"].startswith(":warning: --ar")
    assert b.fallback_text([]) == "imagine"


def test_home_lists_images_saved_prompts_and_defaults() -> None:
    view = home_view()
    text = dump(view)
    assert "<https://acme.slack.com/archives/C1/p1|Open thread>" in text and "seed `1`" in text
    assert "a lighthouse saved 1" in text and "*Aspect ratio*\\n3:2" in text
    assert buttons(view)[0]["action_id"] == "open_settings"
    bad = home.home_view([home.HomeImage("p", 1, "javascript:alert(1)|x")], [], UserDefaults())
    assert "javascript" not in dump(bad)
    link = "https://acme.slack.com/archives/C1/p1?thread_ts=1.2&cid=C1"
    amp = home.home_view([home.HomeImage("p", 1, link)], [], UserDefaults())
    assert "thread_ts=1.2&amp;cid=C1|Open thread>" in dump(amp)


# --- modals ---------------------------------------------------------------------------------------


def submitted(view: Json) -> dict[str, dict[str, Json]]:
    """view.state.values as Slack sends them when the user submits the initial values unchanged."""
    values: dict[str, dict[str, Json]] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        if element["type"] == "static_select":
            state = {"type": "static_select", "selected_option": element.get("initial_option")}
        else:
            state = {"type": "plain_text_input", "value": element.get("initial_value")}
        values[block["block_id"]] = {element["action_id"]: state}
    return values


@pytest.mark.parametrize(
    "defaults",
    [
        UserDefaults(),
        UserDefaults("16:9", "watercolor", "text, watermark", "bedrock:stability.sd3-5-large-v1:0"),
        UserDefaults("9:21", "ukiyo-e 🌊", None, None),
        UserDefaults(None, None, "blurry", None),
    ],
)
def test_settings_round_trip(defaults: UserDefaults) -> None:
    for callback in (VIEW_USER_DEFAULTS, VIEW_CHANNEL_DEFAULTS):
        view = modals.settings_modal(defaults, callback, "C1" if callback == VIEW_CHANNEL_DEFAULTS else "")
        assert view["callback_id"] == callback
        assert modals.parse_settings_submission(submitted(view)) == defaults


def test_settings_modal_offers_every_ratio_and_parses_edits() -> None:
    view = modals.settings_modal(UserDefaults("3:2"), VIEW_CHANNEL_DEFAULTS, "C0123")
    assert view["title"]["text"] == "Channel defaults" and view["private_metadata"] == "C0123"
    select = next(block["element"] for block in view["blocks"] if block.get("block_id") == "aspect_ratio")
    assert [option["value"] for option in select["options"]][1:] == list(ASPECT_RATIOS)
    values = submitted(view)
    values["aspect_ratio"]["aspect_ratio_select"]["selected_option"] = {"value": "none"}
    values["style"]["style_input"]["value"] = "   "
    values["negative_prompt"]["negative_prompt_input"]["value"] = "a\x00b\nc"
    assert modals.parse_settings_submission(values) == UserDefaults(None, None, "ab c", None)
    values["aspect_ratio"]["aspect_ratio_select"]["selected_option"] = {"value": "7:3"}
    assert modals.parse_settings_submission(values).aspect_ratio is None
    assert modals.parse_settings_submission({}) == UserDefaults()
    with pytest.raises(ValueError):
        modals.settings_modal(UserDefaults(), VIEW_EDIT_PROMPT)


def test_edit_prompt_modal_round_trip() -> None:
    view = modals.edit_prompt_modal(42, "a cat in a hat", "blurry")
    assert view["callback_id"] == VIEW_EDIT_PROMPT and view["private_metadata"] == "42"
    assert modals.parse_edit_submission(submitted(view)) == ("a cat in a hat", "blurry")
    long = modals.edit_prompt_modal(42, LONG, "")
    prompt, negative = modals.parse_edit_submission(submitted(long))
    assert units(prompt) <= 3000 and LONG.startswith(prompt) and negative == ""
    assert "shortened" in dump(long)


def test_the_line_under_an_image_says_how_it_was_made() -> None:
    def note(message: b.Message) -> str:
        [block] = [block for block in message["blocks"] if block.get("block_id") == "operation"]
        return str(block["elements"][0]["text"])

    assert "Kept seed 5 and drew from the last image (image-to-image, strength 0.55)" in note(
        edited("image-to-image")
    )
    assert "replaced *hat* with *a hat* (search and replace)" in note(edited("search_replace"))
    assert "recoloured *hat*" in note(edited("recolor")) and "erased *hat*" in note(edited("erase"))
    assert "Upscaled to 1216×832" in note(edited("upscale"))
    assert "New composition" in note(edited("new-seed"))
    icon = edited("remove_background", turn_kind="icon")
    assert "Ready to use as an icon" in note(icon) and icon["text"].startswith("Ready to use as an icon")
    nasty = note(edited("recolor", "<!here> *bold*"))
    assert "<!here>" not in nasty and "&lt;!here&gt;" in nasty
    plain = b.result_message(7, make_result())
    assert pictures.with_operation_note(plain, make_result().turn) == plain  # a fresh draw has no line
