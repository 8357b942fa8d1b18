"""Working on a thread's images: which image a turn starts from, its seed, and how a follow-up is drawn.

A refinement keeps the thread's seed and, where the image model can, draws image-to-image from the
latest image with the strength the chat model chose; or it edits that image (search and replace,
recolor, erase, outpaint, upscale, remove background) when the chat model picked an edit; "start over"
draws a new composition with a new seed. `how` is what the turn did, stored in its params and shown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.engine.ports import (
    ASPECT_RATIOS,
    EDIT_OPERATIONS,
    ImageModel,
    ImageRecord,
    ImageToImageModel,
    PromptDraft,
    TurnRecord,
)
from bot.engine.turn_errors import BotError

# turns whose image was drawn from a prompt (their seed is the thread's seed)
DRAWN_KINDS = ("start", "refine", "use_hit", "reroll", "vary", "edit", "pick", "sketch", "style", "describe")
# turns with an image a follow-up may work on (a person's picture and a brainstorm's candidates are not)
IMAGE_KINDS = (*DRAWN_KINDS, "upscale", "cutout", "icon")
KEEP, NEW = "keep", "new"  # a refinement draws again from the latest image, or starts over
REFINE_EDITS = ("search_replace", "recolor", "erase", "outpaint", "upscale", "remove_background")
REDRAW_STRENGTH = 0.55  # image-to-image strength of a refinement when the chat model chose none
VARY_STRENGTH = 0.3  # Variations: a subtle change of the latest image
PICK_STRENGTH = 0.35  # the avatar winner refined from its own candidate image
SAME_FRAME = 0.06  # log-ratio tolerance: 1024x1024 is 1:1, 1344x768 is 16:9 (1.75 vs 1.78)


@dataclass(frozen=True)
class SourceImage:
    """An image of a stored turn that a new turn starts from."""

    turn: TurnRecord
    record: ImageRecord

    def read(self) -> bytes:
        """The image's bytes from disk; BotError when the file is gone."""
        try:
            return Path(self.record.path).read_bytes()
        except OSError as exc:
            raise BotError(
                "the image this works on is no longer on the bot's disk; press Re-roll to draw it again"
            ) from exc

    @property
    def size(self) -> tuple[int, int]:
        """Width and height."""
        return self.record.width, self.record.height


@dataclass(frozen=True)
class UsedModel:
    """The model a turn used, as the turn log and the result labels need it."""

    model_id: str
    is_offline: bool


@dataclass(frozen=True)
class FollowUp:
    """A follow-up turn of a thread with an image: the image to start from and the default strength."""

    source: SourceImage | None
    strength: float


@dataclass(frozen=True)
class Redraw:
    """How a follow-up draws: from which image (None: text-to-image) and with what strength."""

    source: SourceImage | None
    strength: float | None
    how: dict[str, Any]


def image_of(turn: TurnRecord) -> SourceImage | None:
    """The first image of a turn, if it has one."""
    return SourceImage(turn, turn.images[0]) if turn.images else None


def latest_image(turns: Sequence[TurnRecord]) -> SourceImage | None:
    """The thread's latest image that follow-ups work on (not a person's picture, not a brainstorm)."""
    for turn in reversed(turns):
        if turn.kind in IMAGE_KINDS and turn.images:
            return image_of(turn)
    return None


def image_in(
    turns: Sequence[TurnRecord], turn_id: int | None, kinds: Sequence[str] = IMAGE_KINDS
) -> SourceImage:
    """The image of turn `turn_id` of these turns (the latest one for None); BotError when there is none."""
    if turn_id is None:
        found = latest_image(turns)
    else:
        turn = next((t for t in turns if t.id == turn_id and t.kind in kinds), None)
        found = image_of(turn) if turn is not None else None
    if found is None:
        raise BotError("there is no image in this thread to work on yet")
    return found


def candidate_image(turns: Sequence[TurnRecord], sha256: str | None) -> SourceImage | None:
    """A brainstorm candidate's image by content hash."""
    for turn in reversed(turns):
        if turn.kind == "brainstorm":
            for record in turn.images:
                if record.sha256 == sha256:
                    return SourceImage(turn, record)
    return None


def thread_seed(turns: Sequence[TurnRecord]) -> int | None:
    """The seed of the thread's latest drawn image (a refinement keeps it)."""
    for turn in reversed(turns):
        seed = turn.params.get("seed")
        if turn.kind in DRAWN_KINDS and isinstance(seed, int) and not isinstance(seed, bool):
            return seed
    return None


def ratio_of(width: int, height: int) -> float:
    """Width over height."""
    return width / height if height else 1.0


def same_frame(size: tuple[int, int], aspect_ratio: str) -> bool:
    """Whether an image of `size` already has the aspect ratio 'W:H' (within rounding)."""
    left, _, right = aspect_ratio.partition(":")
    try:
        wanted = float(left) / float(right)
    except (ValueError, ZeroDivisionError):
        return True
    return abs(math.log(ratio_of(*size)) - math.log(wanted)) < SAME_FRAME


def outpaint_expand(size: tuple[int, int], aspect_ratio: str) -> tuple[int, int, int, int]:
    """Pixels to add (left, right, up, down), evenly on both sides, to bring `size` to the ratio."""
    left, _, right = aspect_ratio.partition(":")
    wanted = float(left) / float(right)
    width, height = size
    if wanted > ratio_of(width, height):
        grow = round(height * wanted) - width
        return grow // 2, grow - grow // 2, 0, 0
    grow = round(width / wanted) - height
    return 0, 0, grow // 2, grow - grow // 2


def draws_from_image(model: ImageModel) -> bool:
    """Whether an image model draws image-to-image."""
    return isinstance(model, ImageToImageModel) and bool(model.draws_from_image)


def chosen_edit(draft: PromptDraft, source: SourceImage | None, available: Sequence[str]) -> str | None:
    """The edit operation a draft asks for, when the thread has an image and the editor can do it."""
    if source is None or draft.edit not in EDIT_OPERATIONS or draft.edit not in available:
        return None
    if draft.edit in ("search_replace", "recolor") and not (draft.edit_target and draft.edit_prompt):
        return None  # nothing to look for, or nothing to put there: draw again instead
    if draft.edit == "erase" and not draft.edit_target:
        return None
    if draft.edit == "outpaint" and same_frame(source.size, draft.aspect_ratio):
        return None  # the frame did not change: there is nothing to add
    return draft.edit


def redraw(draft: PromptDraft, follow: FollowUp, model: ImageModel, seed: int | None, *, kind: str) -> Redraw:
    """How a follow-up is drawn: image-to-image where the model can and the frame is unchanged."""
    if draft.edit == NEW:
        return Redraw(None, None, {"kind": "new-seed"})
    source = follow.source
    kept = {"seed": seed} if seed is not None else {}
    if source is None:
        return Redraw(None, None, {"kind": "same-seed", **kept})
    if not draws_from_image(model):
        return Redraw(None, None, {"kind": "same-seed", "no_image_to_image": True, **kept})
    if not same_frame(source.size, draft.aspect_ratio):
        return Redraw(None, None, {"kind": "same-seed", "new_frame": draft.aspect_ratio, **kept})
    strength = draft.strength if draft.strength is not None and kind == "refine" else follow.strength
    strength = round(min(1.0, max(0.05, strength)), 2)
    how = {"kind": "image-to-image", "strength": strength, "source": source.record.sha256, **kept}
    return Redraw(source, strength, how)


def edit_how(operation: str, draft: PromptDraft, source: SourceImage, model_id: str) -> dict[str, Any]:
    """What an edit did, for the turn's params and the message under the image."""
    how: dict[str, Any] = {"kind": operation, "source": source.record.sha256, "model": model_id}
    if draft.edit_target:
        how["target"] = draft.edit_target
    if draft.edit_prompt:
        how["replacement"] = draft.edit_prompt
    return how


def nearest_ratio(width: int, height: int) -> str:
    """The supported aspect ratio closest to an image's size."""
    target = math.log(ratio_of(width, height))

    def distance(ratio: str) -> float:
        left, _, right = ratio.partition(":")
        return abs(math.log(float(left) / float(right)) - target)

    return min(ASPECT_RATIOS, key=distance)
