"""Modals (edit prompt, user and channel settings) and the pure parsing of interaction payloads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.engine.ports import ASPECT_RATIOS, UserDefaults
from bot.slack.ids import VIEW_CHANNEL_DEFAULTS, VIEW_EDIT_PROMPT, VIEW_USER_DEFAULTS
from bot.slack.reply.message_blocks import VOTE_EMOJI, Block, clean, clip, context, one_line, plain, user_line

View = dict[str, Any]

MODAL_TITLE = 24
INPUT_MAX = 3000  # plain_text_input max_length is 1-3000
STYLE_MAX = 100
NEGATIVE_MAX = 1000
MODEL_MAX = 200
NO_DEFAULT = "none"
MAX_ID = 2_147_483_647

# block_id → action_id of the input elements (view_submission state keys; no listener needs them)
PROMPT_BLOCK, PROMPT_INPUT = "prompt", "prompt_input"
NEGATIVE_BLOCK, NEGATIVE_INPUT = "negative", "negative_input"
RATIO_BLOCK, RATIO_INPUT = "aspect_ratio", "aspect_ratio_select"
STYLE_BLOCK, STYLE_INPUT = "style", "style_input"
DEFAULT_NEGATIVE_BLOCK, DEFAULT_NEGATIVE_INPUT = "negative_prompt", "negative_prompt_input"
MODEL_BLOCK, MODEL_INPUT = "image_model", "image_model_input"

_SETTINGS_TITLES = {VIEW_USER_DEFAULTS: "Your defaults", VIEW_CHANNEL_DEFAULTS: "Channel defaults"}


def _modal(title: str, callback_id: str, blocks: list[Block], submit: str, metadata: str = "") -> View:
    """A modal view with submit and cancel buttons."""
    view: View = {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(title, MODAL_TITLE),
        "submit": plain(submit, MODAL_TITLE),
        "close": plain("Cancel", MODAL_TITLE),
        "blocks": blocks,
    }
    if metadata:
        view["private_metadata"] = clip(metadata, 3000)
    return view


def _text_input(
    block_id: str,
    action_id: str,
    label: str,
    initial: str | None,
    max_length: int,
    *,
    multiline: bool = False,
    optional: bool = True,
    placeholder: str = "",
    hint: str = "",
) -> Block:
    """An input block holding a plain_text_input whose initial value fits its max_length."""
    element: Block = {"type": "plain_text_input", "action_id": action_id, "max_length": max_length}
    if multiline:
        element["multiline"] = True
    value = clip(clean(initial or "").strip(), max_length)
    if value:
        element["initial_value"] = value
    if placeholder:
        element["placeholder"] = plain(placeholder, 150)
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": plain(label, 2000),
        "element": element,
    }
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def edit_prompt_modal(thread_id: int, prompt: str, negative: str = "") -> View:
    """The 'Edit prompt' modal prefilled with the prompt; private_metadata carries the thread id."""
    blocks = [
        _text_input(PROMPT_BLOCK, PROMPT_INPUT, "Prompt", prompt, INPUT_MAX, multiline=True, optional=False),
        _text_input(
            NEGATIVE_BLOCK,
            NEGATIVE_INPUT,
            "Negative prompt",
            negative,
            INPUT_MAX,
            multiline=True,
            placeholder="things to keep out, e.g. text, watermark, blurry",
        ),
    ]
    if clean(prompt).strip() != blocks[0]["element"].get("initial_value", ""):
        blocks.append(context(f"The prompt was longer than {INPUT_MAX:,} characters and has been shortened."))
    return _modal("Edit prompt", VIEW_EDIT_PROMPT, blocks, "Draw it", str(thread_id))


def settings_modal(defaults: UserDefaults, callback_id: str, private_metadata: str = "") -> View:
    """The defaults modal (VIEW_USER_DEFAULTS for a user, VIEW_CHANNEL_DEFAULTS with the channel id)."""
    if callback_id not in _SETTINGS_TITLES:
        raise ValueError(f"not a settings view: {callback_id!r}")
    options = [_option("No default", NO_DEFAULT), *(_option(ratio, ratio) for ratio in ASPECT_RATIOS)]
    select: Block = {"type": "static_select", "action_id": RATIO_INPUT, "options": options}
    if defaults.aspect_ratio in ASPECT_RATIOS:
        select["initial_option"] = _option(str(defaults.aspect_ratio), str(defaults.aspect_ratio))
    who = "everyone's /imagine in this channel" if callback_id == VIEW_CHANNEL_DEFAULTS else "your /imagine"
    blocks = [
        context(f"These apply to {who}; flags such as `--ar` or `--style` still win for one image."),
        {
            "type": "input",
            "block_id": RATIO_BLOCK,
            "optional": True,
            "label": plain("Aspect ratio"),
            "element": select,
        },
        _text_input(
            STYLE_BLOCK, STYLE_INPUT, "Style", defaults.style, STYLE_MAX, placeholder="e.g. watercolor"
        ),
        _text_input(
            DEFAULT_NEGATIVE_BLOCK,
            DEFAULT_NEGATIVE_INPUT,
            "Negative prompt",
            defaults.negative_prompt,
            NEGATIVE_MAX,
            multiline=True,
            placeholder="e.g. text, watermark, blurry",
        ),
        _text_input(
            MODEL_BLOCK,
            MODEL_INPUT,
            "Image model",
            defaults.image_model,
            MODEL_MAX,
            hint="Leave empty for the workspace default, e.g. bedrock:stability.sd3-5-large-v1:0",
        ),
    ]
    return _modal(_SETTINGS_TITLES[callback_id], callback_id, blocks, "Save", private_metadata)


def _option(text: str, value: str) -> Block:
    """A static_select option."""
    return {"text": plain(text, 75), "value": value}


# --- parsing interaction payloads (pure) -----------------------------------------------------------------


def _state(values: Mapping[str, Any], block_id: str, action_id: str) -> Mapping[str, Any]:
    """The state of one input element, or an empty mapping."""
    block = values.get(block_id)
    element = block.get(action_id) if isinstance(block, Mapping) else None
    return element if isinstance(element, Mapping) else {}


def _text(values: Mapping[str, Any], block_id: str, action_id: str, limit: int) -> str:
    """A submitted plain_text_input value, cleaned and within `limit`."""
    value = _state(values, block_id, action_id).get("value")
    return clip(clean(value).strip(), limit) if isinstance(value, str) else ""


def parse_settings_submission(view_state_values: Mapping[str, Any]) -> UserDefaults:
    """view.state.values of a settings modal as UserDefaults (empty or unknown values become None)."""
    selected = _state(view_state_values, RATIO_BLOCK, RATIO_INPUT).get("selected_option")
    ratio = selected.get("value") if isinstance(selected, Mapping) else None
    return UserDefaults(
        aspect_ratio=ratio if ratio in ASPECT_RATIOS else None,
        style=one_line(_text(view_state_values, STYLE_BLOCK, STYLE_INPUT, STYLE_MAX)) or None,
        negative_prompt=one_line(
            _text(view_state_values, DEFAULT_NEGATIVE_BLOCK, DEFAULT_NEGATIVE_INPUT, NEGATIVE_MAX)
        )
        or None,
        image_model=one_line(_text(view_state_values, MODEL_BLOCK, MODEL_INPUT, MODEL_MAX)) or None,
    )


def parse_edit_submission(view_state_values: Mapping[str, Any]) -> tuple[str, str]:
    """view.state.values of the edit-prompt modal as (prompt, negative prompt)."""
    return (
        _text(view_state_values, PROMPT_BLOCK, PROMPT_INPUT, INPUT_MAX),
        _text(view_state_values, NEGATIVE_BLOCK, NEGATIVE_INPUT, INPUT_MAX),
    )


def parse_action_value(value: str) -> tuple[int, int | None]:
    """'<thread_id>:<n>' → (thread_id, n); '<thread_id>' → (thread_id, None); ValueError otherwise."""
    head, colon, tail = value.partition(":")
    if not _number(head) or (colon and not _number(tail)):
        raise ValueError(f"not an action value: {user_line(value, 60)!r}")
    return int(head), int(tail) if tail else None


def _number(text: str) -> bool:
    """True for a non-empty run of ASCII digits that fits a database id (a 32-bit signed integer)."""
    return text.isascii() and text.isdigit() and int(text) <= MAX_ID


def vote_number(reaction: str) -> int | None:
    """The candidate number a reaction votes for ('three' or ':three:' → 3), or None."""
    name = reaction.strip(":").split("::")[0]
    return VOTE_EMOJI.index(name) + 1 if name in VOTE_EMOJI else None


def pick_winner(votes: Mapping[int, int]) -> int | None:
    """The candidate with the most votes (the lowest number on a tie), or None without candidates."""
    return min(votes, key=lambda number: (-votes[number], number)) if votes else None
