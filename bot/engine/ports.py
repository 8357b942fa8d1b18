"""Ports the conversation engine consumes: chat, image and vision models, image editor, thread store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

AspectRatio = Literal["1:1", "16:9", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"]
ASPECT_RATIOS: tuple[str, ...] = ("1:1", "16:9", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
TurnKind = (
    Literal["start", "refine", "use_hit", "reroll", "vary", "edit", "brainstorm", "pick"]
    | Literal[
        "upscale", "cutout", "picture", "sketch", "style", "describe", "icon"  # turns that work on an image
    ]
)
# what an image service can do to an existing image (each one InvokeModel call on Bedrock)
EditOperation = Literal[
    "upscale", "remove_background", "search_replace", "recolor", "erase", "outpaint", "sketch", "style"
]
EDIT_OPERATIONS: tuple[str, ...] = (
    "upscale",
    "remove_background",
    "search_replace",
    "recolor",
    "erase",
    "outpaint",
    "sketch",
    "style",
)


@runtime_checkable
class WarmsUp(Protocol):
    """An adapter that can load its clients and models ahead of its first call (serve's warm start)."""

    def warm_up(self) -> None:
        """Build clients, import SDKs and load model files now; never calls a paid API."""
        ...


# --- image model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRequest:
    """What to draw: one prompt, its negative, the frame and the seed (count > 1 only where supported)."""

    prompt: str
    negative_prompt: str = ""
    aspect_ratio: str = "1:1"
    seed: int = 0
    style: str | None = None
    count: int = 1
    init_image: bytes | None = field(default=None, repr=False)  # image-to-image: draw from this image
    strength: float | None = None  # image-to-image: 0 keeps the image, 1 ignores it


@dataclass(frozen=True)
class GeneratedImage:
    """One image as returned by a model: PNG bytes, the seed it used and its size."""

    data: bytes
    seed: int
    model_id: str
    width: int
    height: int
    mime_type: str = "image/png"


class ImageModel(Protocol):
    """Turns a prompt into images."""

    @property
    def model_id(self) -> str:
        """Provider string, e.g. 'bedrock:stability.sd3-5-large-v1:0' or 'offline'."""
        ...

    @property
    def is_offline(self) -> bool:
        """True for the offline preview stand-in (its output is labelled as such)."""
        ...

    def generate(self, request: ImageRequest) -> list[GeneratedImage]:
        """Generate `request.count` images; raise a BotError subclass (turn_errors) on failure."""
        ...


@runtime_checkable
class ImageToImageModel(Protocol):
    """An image model that may draw from an existing image (ImageRequest.init_image and strength)."""

    @property
    def draws_from_image(self) -> bool:
        """True when `generate` uses `init_image` (image-to-image); others ignore it."""
        ...


@dataclass(frozen=True)
class EditRequest:
    """One edit of an existing image by an image service (upscale, cut out, replace, recolor, ...)."""

    operation: EditOperation
    image: bytes = field(repr=False)
    prompt: str = ""
    negative_prompt: str = ""
    target: str = ""  # what to find: search and replace, recolor, erase
    seed: int = 0
    strength: float | None = None  # sketch control strength, style fidelity, outpaint creativity
    expand: tuple[int, int, int, int] = (0, 0, 0, 0)  # outpaint: pixels left, right, up, down
    aspect_ratio: str | None = None  # style: the frame of the new image
    style: str | None = None


class ImageEditor(Protocol):
    """Image services that work on an existing image: one call per edit."""

    def model_for(self, operation: str) -> str | None:
        """Provider string of the model doing `operation` ('offline' for the stand-in), or None."""
        ...

    def edit(self, request: EditRequest) -> GeneratedImage:
        """The edited image; raise a BotError subclass (turn_errors) on failure."""
        ...


@dataclass(frozen=True)
class PictureDescription:
    """A prompt written from a picture, by a vision model or the offline stand-in."""

    text: str
    model_id: str
    is_offline: bool = False
    input_tokens: int = 0
    output_tokens: int = 0


class PictureDescriber(Protocol):
    """Writes an image prompt from a picture (Claude vision through Converse image blocks)."""

    @property
    def model_id(self) -> str:
        """Provider string, e.g. 'bedrock:us.anthropic.claude-haiku-4-5-20251001-v1:0' or 'offline'."""
        ...

    def describe(self, image: bytes, mime_type: str, hint: str = "") -> PictureDescription:
        """A prompt for the picture (`hint`: the person's caption or file name); BotError on failure."""
        ...


# --- chat model ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HitForPrompt:
    """A retrieved library prompt as shown to the user (#number) and to the chat model."""

    number: int
    prompt: str
    source: str | None = None


@dataclass(frozen=True)
class TurnMemory:
    """What the chat model needs to know about an earlier turn of the thread."""

    kind: str
    user_text: str
    prompt: str | None
    negative_prompt: str | None
    feedback: str | None = None
    aspect_ratio: str | None = None
    borrowed: tuple[str, ...] = ()  # phrases its prompt took from the library hits


@dataclass(frozen=True)
class UserDefaults:
    """A user's or channel's defaults applied to every turn unless the turn overrides them."""

    aspect_ratio: str | None = None
    style: str | None = None
    negative_prompt: str | None = None
    image_model: str | None = None


@dataclass(frozen=True)
class ComposeRequest:
    """Everything one chat call sees: the idea, this turn's instruction, history, hits and defaults."""

    kind: TurnKind
    idea: str
    instruction: str | None = None
    history: Sequence[TurnMemory] = ()
    hits: Sequence[HitForPrompt] = ()
    defaults: UserDefaults = field(default_factory=UserDefaults)
    candidates: int = 1
    max_prompt_chars: int = 1000
    edits: tuple[str, ...] = ()  # image edits the thread's latest image allows (refine may pick one)
    image_model: str = ""  # the target image model id: the writer follows its prompt dialect
    avoid: tuple[str, ...] = ()  # what must not appear (--no and the defaults' negative words)
    style: str | None = None  # the turn's --style, which wins over borrowed looks


@dataclass(frozen=True)
class PromptDraft:
    """One composed prompt with its parameters and why."""

    prompt: str
    negative_prompt: str = ""
    aspect_ratio: str = "1:1"
    style: str | None = None
    used_hits: tuple[int, ...] = ()
    rationale: str = ""
    # a refinement may edit the latest image instead of drawing again (ComposeRequest.edits lists which):
    # edit is "keep" (draw again from it), "new" (start over), or an EditOperation
    edit: str | None = None
    edit_target: str = ""  # what to find in the image: "hat", "car", "text"
    edit_prompt: str = ""  # what to put there: "a golden crown", "a red car"
    strength: float | None = None  # image-to-image strength of a redraw: ~0.35 a tweak, ~0.7 a new look
    borrowed: tuple[str, ...] = ()  # phrases taken from the cited hits (checked: each occurs in one)


@dataclass(frozen=True)
class ComposeResult:
    """The drafts of one chat call plus its usage."""

    drafts: tuple[PromptDraft, ...]
    model_id: str
    input_tokens: int = 0
    output_tokens: int = 0
    is_offline: bool = False
    extra_calls: int = 0  # chat calls beyond the first (a re-ask after a draft lost the subject)


class ChatModel(Protocol):
    """Writes optimized prompts from an idea, the thread so far and retrieved examples."""

    @property
    def model_id(self) -> str:
        """Provider string, e.g. 'bedrock:us.anthropic.claude-haiku-4-5-20251001-v1:0' or 'offline'."""
        ...

    def compose(self, request: ComposeRequest) -> ComposeResult:
        """Return exactly `request.candidates` drafts; raise a BotError subclass on failure."""
        ...


# --- thread store ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRecord:
    """A turn that was in progress: where, for whom, and how to run it again."""

    id: int
    ref: ThreadRef
    user_id: str
    retry: str | None
    worker: str
    started_utc: datetime | None = None
    waiting: bool = False  # it waited behind another turn of its thread: no status line of its own yet


class SavedPromptLike(Protocol):
    """A saved prompt (storage.defaults_store.SavedPromptRecord satisfies this)."""

    @property
    def prompt(self) -> str:
        """The prompt text."""
        ...

    @property
    def negative_prompt(self) -> str:
        """Its negative prompt ('' when none)."""
        ...


@dataclass(frozen=True)
class RecentImage:
    """One of a user's recent images: its prompt and parameters and the thread it lives in."""

    prompt: str
    seed: int
    model_id: str
    ref: ThreadRef
    created_utc: datetime | None = None


@dataclass(frozen=True)
class ThreadRef:
    """Where a thread lives: Slack team, channel and thread ts (or a CLI pseudo-channel)."""

    team_id: str
    channel_id: str
    thread_ts: str


@dataclass(frozen=True)
class ThreadRecord:
    """A stored thread."""

    id: int
    ref: ThreadRef
    owner_user_id: str
    mode: str
    idea: str
    created_utc: datetime


@dataclass(frozen=True)
class ImageRecord:
    """A stored image (content-addressed by sha256)."""

    sha256: str
    seed: int
    model_id: str
    width: int
    height: int
    path: str
    slack_file_id: str | None = None


@dataclass(frozen=True)
class TurnRecord:
    """One persisted step of a thread."""

    thread_id: int
    kind: str
    role: str
    text: str
    hits: list[dict[str, Any]] = field(default_factory=list)
    prompt: str | None = None
    negative_prompt: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    chat_model: str | None = None
    image_model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    duration_ms: int = 0
    images: tuple[ImageRecord, ...] = ()
    id: int | None = None
    created_utc: datetime | None = None


class ThreadStore(Protocol):
    """Thread memory; every call is scoped by the Slack team id."""

    def open_thread(self, ref: ThreadRef, owner_user_id: str, mode: str, idea: str) -> ThreadRecord:
        """Create the thread, or return it when it already exists."""
        ...

    def find_thread(self, team_id: str, thread_id: int) -> ThreadRecord | None:
        """A thread of this team by id, or None (also for another team's id)."""
        ...

    def find_thread_by_ref(self, ref: ThreadRef) -> ThreadRecord | None:
        """A thread by its Slack coordinates, or None."""
        ...

    def add_turn(self, team_id: str, turn: TurnRecord) -> TurnRecord:
        """Store a turn and its images atomically; return it with id and timestamp."""
        ...

    def turns(self, team_id: str, thread_id: int) -> list[TurnRecord]:
        """The thread's turns in order, with their images."""
        ...

    def find_turn(self, team_id: str, turn_id: int) -> TurnRecord | None:
        """One turn of this team, or None."""
        ...
