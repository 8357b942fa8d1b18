"""Values and helpers of the conversation engine: options, results, and turn-to-draft conversions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from bot.engine.ports import (
    HitForPrompt,
    ImageRecord,
    PromptDraft,
    ThreadRecord,
    TurnMemory,
    TurnRecord,
    UserDefaults,
)
from bot.engine.turn_errors import BotError

SDXL_PROMPT_CHARS = 380  # CLIP truncates at 77 tokens; ~5 characters a token in SD prompts
NOVA_PROMPT_CHARS = 1000  # Nova Canvas / Titan Image accept 1-1,024 characters
DEFAULT_PROMPT_CHARS = 1000  # SD3.5 / Stable Image take 10,000, but focused prompts work better
# what every turn in an existing thread draws (refine, use #n, vary, re-roll, edit, pick), whatever the
# thread's own --n: only a start draws its --n and a brainstorm its candidates; the quota reserves this
FOLLOW_UP_IMAGES = 1


class LibraryHit(Protocol):
    """A retrieved library prompt (retrieval.search.PromptHit satisfies this)."""

    @property
    def prompt(self) -> str:
        """The prompt text."""
        ...

    @property
    def payload(self) -> dict[str, Any]:
        """Its metadata."""
        ...


class PromptSearch(Protocol):
    """Finds library prompts close to an idea (retrieval.search.Retriever satisfies this)."""

    def search(self, query: str, k: int = 5) -> Sequence[LibraryHit]:
        """The top k safe, diverse prompts for the query."""
        ...


class ThreadNotFoundError(BotError):
    """No such thread for this team."""


@dataclass(frozen=True)
class TurnOptions:
    """Per-turn overrides from options such as --ar, --seed, --no, --style, --n."""

    aspect_ratio: str | None = None
    seed: int | None = None
    negative: tuple[str, ...] = ()
    style: str | None = None
    count: int = 1
    model: str | None = None


@dataclass(frozen=True)
class StoredImage:
    """A generated image written to disk, with its stored record."""

    path: Path
    record: ImageRecord


@dataclass(frozen=True)
class TurnResult:
    """What one operation produced: the thread, the stored turn, hits shown, drafts and images."""

    thread: ThreadRecord
    turn: TurnRecord
    hits: tuple[HitForPrompt, ...]
    drafts: tuple[PromptDraft, ...]
    images: tuple[StoredImage, ...]
    chat_offline: bool
    image_offline: bool
    contact_sheet: Path | None = None
    elapsed_ms: int = 0
    labels: tuple[str, ...] = field(default_factory=tuple)
    image_calls: int = 0  # images drawn for it when more than it shows (the icon's upscale); 0: len(images)
    new_hits: tuple[HitForPrompt, ...] = ()  # library prompts a refinement found for its new direction

    @property
    def images_drawn(self) -> int:
        """How many images the turn drew, for the daily quota."""
        return max(self.image_calls, len(self.images))


def apply_options(draft: PromptDraft, options: TurnOptions) -> PromptDraft:
    """Options win over the composer: aspect ratio, style and extra negative words."""
    negative = draft.negative_prompt
    extra = [word for word in options.negative if word and word.lower() not in negative.lower()]
    if extra:
        negative = ", ".join(part for part in (negative, *extra) if part)
    return replace(
        draft,
        aspect_ratio=options.aspect_ratio or draft.aspect_ratio,
        style=options.style or draft.style,
        negative_prompt=negative,
    )


def with_defaults(options: TurnOptions, defaults: UserDefaults) -> TurnOptions:
    """Options first, then the user's or channel's defaults (aspect ratio, style, negative words, model)."""
    negative = list(options.negative)
    for word in (defaults.negative_prompt or "").split(","):
        if word.strip() and word.strip().lower() not in (w.lower() for w in negative):
            negative.append(word.strip())
    return replace(
        options,
        aspect_ratio=options.aspect_ratio or defaults.aspect_ratio,
        style=options.style or defaults.style,
        negative=tuple(negative),
        model=options.model or defaults.image_model,
    )


def memory_of(turns: Sequence[TurnRecord]) -> tuple[TurnMemory, ...]:
    """The turns as the chat model sees them."""
    return tuple(
        TurnMemory(
            turn.kind,
            turn.text,
            turn.prompt,
            turn.negative_prompt,
            turn.params.get("feedback"),
            turn.params.get("aspect_ratio"),
            tuple(str(p) for p in turn.params.get("borrowed") or ()),
        )
        for turn in turns
    )


def latest_hits(turns: Sequence[TurnRecord]) -> tuple[HitForPrompt, ...]:
    """The hits the user last saw in a thread (their numbers stay stable across turns)."""
    for turn in reversed(turns):
        if turn.hits:
            return tuple(
                HitForPrompt(number=int(h["number"]), prompt=str(h["prompt"]), source=h.get("source"))
                for h in turn.hits
            )
    return ()


def last_with_prompt(turns: Sequence[TurnRecord]) -> TurnRecord:
    """The latest turn that produced a prompt."""
    for turn in reversed(turns):
        if turn.prompt:
            return turn
    raise BotError("this thread has no prompt yet")


def draft_of(turn: TurnRecord) -> PromptDraft:
    """A stored turn's prompt and parameters as a draft."""
    return PromptDraft(
        prompt=turn.prompt or "",
        negative_prompt=turn.negative_prompt or "",
        aspect_ratio=str(turn.params.get("aspect_ratio") or "1:1"),
        style=turn.params.get("style"),
        used_hits=tuple(int(n) for n in turn.params.get("used_hits") or ()),
        borrowed=tuple(str(p) for p in turn.params.get("borrowed") or ()),
    )


def seed_of(turn: TurnRecord) -> int | None:
    """The seed a stored turn was drawn with."""
    seed = turn.params.get("seed")
    return int(seed) if isinstance(seed, int) else None


def prompt_limit(image_model_id: str) -> int:
    """How long a prompt the target image model can use: SDXL's CLIP reads ~77 tokens, Nova 1,024 chars."""
    model = image_model_id.lower()
    if "stable-diffusion-xl" in model or model.startswith("sagemaker:"):
        return SDXL_PROMPT_CHARS
    if "nova-canvas" in model or "titan-image" in model:
        return NOVA_PROMPT_CHARS
    return DEFAULT_PROMPT_CHARS
