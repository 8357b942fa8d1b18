"""The chat model's choice of how a refinement works on the image: extra tool fields and their checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from bot.engine.ports import PromptDraft
from bot.writing.prompt_template import clean_line

KEEP, NEW = "keep", "new"
MAX_TARGET_CHARS = 200
MAX_EDIT_PROMPT_CHARS = 1000
MIN_STRENGTH, MAX_STRENGTH = 0.05, 1.0
_EDIT_DOC = (
    '"keep": draw again from the current image (same seed, image-to-image); "new": start over with a new '
    "seed; or one of the image edits offered."
)
_TARGET_DOC = "The one thing in the image the edit works on, e.g. 'hat' (search_replace, recolor, erase)."
_PROMPT_DOC = "What to put there, e.g. 'a golden crown' or 'a red car' (search_replace, recolor)."
_STRENGTH_DOC = "Image-to-image strength for keep: ~0.3 a small tweak, ~0.5 a change, ~0.7 a new style."


@lru_cache(maxsize=64)
def with_edit_fields(base: type[BaseModel], edits: tuple[str, ...]) -> type[BaseModel]:
    """The refine tool schema: `base` plus edit, edit_target, edit_prompt and strength (all optional)."""
    choices: Any = Literal[(KEEP, NEW, *edits)]
    model: type[BaseModel] = create_model(
        base.__name__,
        __base__=base,
        edit=(choices, Field(default=KEEP, description=_EDIT_DOC)),
        edit_target=(str, Field(default="", max_length=MAX_TARGET_CHARS, description=_TARGET_DOC)),
        edit_prompt=(str, Field(default="", max_length=MAX_EDIT_PROMPT_CHARS, description=_PROMPT_DOC)),
        strength=(
            float | None,
            Field(default=None, ge=MIN_STRENGTH, le=MAX_STRENGTH, description=_STRENGTH_DOC),
        ),
    )
    return model


def keep_edit_choice(
    checked: Sequence[PromptDraft], answered: Sequence[PromptDraft]
) -> tuple[PromptDraft, ...]:
    """The checked drafts with the edit fields of the drafts as answered, cleaned to one line each."""
    return tuple(
        replace(
            draft,
            edit=raw.edit,
            edit_target=clean_line(raw.edit_target)[:MAX_TARGET_CHARS],
            edit_prompt=clean_line(raw.edit_prompt)[:MAX_EDIT_PROMPT_CHARS],
            strength=raw.strength,
        )
        for draft, raw in zip(checked, answered, strict=True)
    )
