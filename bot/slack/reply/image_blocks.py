"""Block Kit of the image work: what a turn did to the image, and the choices for a person's picture."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.engine.ports import TurnRecord
from bot.slack import ids
from bot.slack.reply.message_blocks import Message, actions, button, context, message, section, user_line

TARGET_CHARS = 120
ICON_READY = "Ready to use as an icon"
NAME_CHARS = 200


def operation_note(turn: TurnRecord) -> str | None:
    """One line saying how the turn's image was made from the thread's image, or None for a fresh draw."""
    how = turn.params.get("how")
    if not isinstance(how, Mapping):
        return None
    kind = str(how.get("kind") or "")
    size = f"{turn.images[0].width}×{turn.images[0].height}" if turn.images else ""
    if turn.kind == "icon":
        return f":white_check_mark: *{ICON_READY}*: a {size} PNG, square, background removed (transparent)."
    text = _DRAWN.get(kind) or _EDITED.get(kind)
    if text is None:
        return None
    return text.format(
        seed=how.get("seed", turn.params.get("seed", "")),
        strength=how.get("strength", ""),
        target=_quoted(how.get("target")),
        replacement=_quoted(how.get("replacement")),
        frame=turn.params.get("aspect_ratio") or "",
        size=size,
    ) + _redraw_caveat(how)


_DRAWN = {
    "image-to-image": ":seedling: Kept seed {seed} and drew from the last image (image-to-image, strength "
    "{strength}), so the composition stays.",
    "same-seed": ":seedling: Kept seed {seed}.",
    "new-seed": ":sparkles: New composition: a new seed, drawn from the prompt alone.",
}
_EDITED = {
    "search_replace": ":scissors: Edited the image: replaced {target} with {replacement} (search and "
    "replace).",
    "recolor": ":art: Edited the image: recoloured {target} to {replacement} (search and recolor).",
    "erase": ":scissors: Edited the image: erased {target}.",
    "outpaint": ":frame_with_picture: Widened the frame to {frame} (outpaint): the picture is kept and "
    "extended.",
    "upscale": ":mag: Upscaled to {size}.",
    "remove_background": ":scissors: Background removed: a {size} PNG with a transparent background.",
    "sketch": ":pencil2: Drawn from the posted picture as a sketch (its lines guide the drawing).",
    "style": ":art: Drawn in the style of the posted picture (style guide).",
}


def _redraw_caveat(how: Mapping[str, Any]) -> str:
    """Why a redraw could not start from the image, when it could not."""
    if how.get("no_image_to_image"):
        return " This image model cannot draw from an image, so the picture may change more."
    if how.get("new_frame"):
        return f" The frame changed to {how['new_frame']}, so it was drawn fresh from the prompt."
    return ""


def _quoted(value: Any) -> str:
    """A short piece of the user's words, escaped and bold."""
    text = user_line(str(value or ""), TARGET_CHARS)
    return f"*{text}*" if text else "it"


def picture_choices(thread_id: int, turn_id: int, user_id: str, name: str, size: tuple[int, int]) -> Message:
    """The reply to a picture posted in a thread: Use as sketch, Use as style, Describe."""
    value = f"{thread_id}:{turn_id}"
    who = f"<@{user_id}>" if user_id.isalnum() else "Someone"
    shown = user_line(name, NAME_CHARS) or "a picture"
    blocks = [
        section(
            f":frame_with_picture: {who} posted *{shown}* ({size[0]}×{size[1]}). What should I do with it?"
        ),
        actions(
            "picture_actions",
            button(":pencil2: Use as sketch", ids.ACTION_USE_SKETCH, value),
            button(":art: Use as style", ids.ACTION_USE_STYLE, value),
            button(":mag: Describe", ids.ACTION_DESCRIBE, value),
        ),
        context(
            "Sketch: its lines guide a new drawing of this thread's prompt · Style: its look is applied to "
            "the prompt · Describe: I write a prompt from it and search the library with it."
        ),
    ]
    return message(blocks, f"{shown}: use as sketch, use as style, or describe")


def with_operation_note(payload: Message, turn: TurnRecord) -> Message:
    """A result message with the line saying how its image was made, above the details."""
    note = operation_note(turn)
    if note is None:
        return payload
    blocks = list(payload["blocks"])
    at = next((i for i, block in enumerate(blocks) if block.get("block_id") == "details"), len(blocks))
    blocks.insert(at, context(note, block_id="operation"))
    text = f"{ICON_READY}: {payload['text']}" if turn.kind == "icon" else payload["text"]
    return message(blocks, text)
