"""The conversation engine: retrieve → compose → generate, one persisted turn per operation."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from bot.engine.brainstorm import CandidateDrawer, ContactSheet, brainstorm_request, pick_request
from bot.engine.image_files import write_image
from bot.engine.policy import PromptPolicy
from bot.engine.ports import (
    ChatModel,
    ComposeRequest,
    ComposeResult,
    HitForPrompt,
    ImageModel,
    ImageRequest,
    PromptDraft,
    ThreadRecord,
    ThreadRef,
    ThreadStore,
    TurnKind,
    TurnRecord,
    UserDefaults,
    WarmsUp,
)
from bot.engine.turn_errors import BotError
from bot.engine.turn_log import StageTimes, log_turn
from bot.engine.turns import (
    FOLLOW_UP_IMAGES,
    PromptSearch,
    StoredImage,
    ThreadNotFoundError,
    TurnOptions,
    TurnResult,
    apply_options,
    draft_of,
    last_with_prompt,
    latest_hits,
    memory_of,
    prompt_limit,
    seed_of,
    with_defaults,
)

logger = logging.getLogger(__name__)
MAX_SEED = 4_294_967_294
HITS_SHOWN = 5
WARM_UP_IDEA = "a cartoon of a little dog"  # what warm_up searches and screens (a benign everyday idea)
OnHits = Callable[[ThreadRecord, tuple[HitForPrompt, ...]], None]


class Conversation:
    """Runs every thread operation against the ports and stores each one as a turn."""

    def __init__(
        self,
        search: PromptSearch,
        chat: ChatModel,
        images: ImageModel,
        store: ThreadStore,
        image_dir: Path,
        *,
        contact_sheet: ContactSheet | None = None,
        rng: random.Random | None = None,
        image_models: Callable[[str], ImageModel] | None = None,
        policy: PromptPolicy | None = None,
    ) -> None:
        self._search = search
        self._chat = chat
        self._images = images
        self._image_models = image_models
        self._policy = policy
        self._store = store
        self._image_dir = Path(image_dir)
        self._rng = rng or random.SystemRandom()
        self._stages = StageTimes()  # per-thread stage timings of the running turn (bot.turns log)
        new_seed = partial(self._rng.randint, 0, MAX_SEED)
        self._candidates = CandidateDrawer(self._image_dir, self._stages, new_seed, contact_sheet)

    def warm_up(self) -> dict[str, float]:
        """Do now what the first turn would pay for: search the library (embedder, index, re-rank), run
        the prompt policy's screens, and build the chat and image clients. Milliseconds per step."""
        timings: dict[str, float] = {}

        def timed(name: str, step: Callable[[], object]) -> None:
            started = time.perf_counter()
            step()
            timings[name] = round((time.perf_counter() - started) * 1000, 1)

        timed("search", lambda: self._search.search(WARM_UP_IDEA, k=5))
        if self._policy is not None:
            policy = self._policy
            timed("policy", lambda: policy.check("warm-up", WARM_UP_IDEA))
        for name, port in (("chat model", self._chat), ("image model", self._images)):
            if isinstance(port, WarmsUp):
                timed(name, port.warm_up)
        return timings

    @property
    def retrieval(self) -> PromptSearch:
        """The library search this engine retrieves from (the health check queries it)."""
        return self._search

    # --- operations --------------------------------------------------------------------------------

    def start(
        self,
        ref: ThreadRef,
        user_id: str,
        idea: str,
        options: TurnOptions | None = None,
        defaults: UserDefaults | None = None,
        on_hits: OnHits | None = None,
    ) -> TurnResult:
        """A new thread: retrieve hits for the idea (shown via `on_hits`), compose one prompt, draw it."""
        self.screen(ref.team_id, idea)
        defaults = defaults or UserDefaults()
        options = with_defaults(options or TurnOptions(), defaults)
        thread = self._store.open_thread(ref, user_id, "imagine", idea)
        hits = self._retrieve(idea)
        if on_hits is not None:
            on_hits(thread, hits)
        request = ComposeRequest(
            kind="start", idea=idea, hits=hits, defaults=defaults, avoid=options.negative, style=options.style
        )
        return self._compose_and_draw(thread, "start", idea, request, options, hits)

    def refine(
        self, team_id: str, thread_id: int, instruction: str, defaults: UserDefaults | None = None
    ) -> TurnResult:
        """Apply a follow-up instruction ("make it watercolor", "no text", "more like #2")."""
        self.screen(team_id, instruction)
        thread, turns = self._load(team_id, thread_id)
        hits = latest_hits(turns)
        request = ComposeRequest(
            kind="refine",
            idea=thread.idea,
            instruction=instruction,
            history=memory_of(turns),
            hits=hits,
            defaults=defaults or UserDefaults(),
        )
        options = _model_only(defaults)
        return self._compose_and_draw(thread, "refine", instruction, request, options, hits)

    def use_hit(
        self, team_id: str, thread_id: int, number: int, defaults: UserDefaults | None = None
    ) -> TurnResult:
        """Rewrite the idea in the manner of library hit #number."""
        thread, turns = self._load(team_id, thread_id)
        hits = latest_hits(turns)
        if not 1 <= number <= len(hits):
            raise BotError(f"there is no library prompt #{number} in this thread (1-{len(hits)})")
        request = ComposeRequest(
            kind="use_hit",
            idea=thread.idea,
            instruction=f"use #{number}",
            history=memory_of(turns),
            hits=hits,
        )
        options = _model_only(defaults)
        return self._compose_and_draw(thread, "use_hit", f"use #{number}", request, options, hits)

    def vary(self, team_id: str, thread_id: int, defaults: UserDefaults | None = None) -> TurnResult:
        """A small change of the latest prompt, drawn with the same seed."""
        thread, turns = self._load(team_id, thread_id)
        last = last_with_prompt(turns)
        hits = latest_hits(turns)
        request = ComposeRequest(
            kind="vary", idea=thread.idea, instruction="vary", history=memory_of(turns), hits=hits
        )
        options = replace(_model_only(defaults), seed=seed_of(last))
        return self._compose_and_draw(thread, "vary", "variation", request, options, hits)

    def reroll(self, team_id: str, thread_id: int, defaults: UserDefaults | None = None) -> TurnResult:
        """The latest prompt again with a new seed (no chat call)."""
        thread, turns = self._load(team_id, thread_id)
        draft = draft_of(last_with_prompt(turns))
        options = _model_only(defaults)
        return self._draw(thread, "reroll", "re-roll", draft, options, None, latest_hits(turns))

    def edit(
        self,
        team_id: str,
        thread_id: int,
        prompt: str,
        negative_prompt: str | None = None,
        defaults: UserDefaults | None = None,
    ) -> TurnResult:
        """Draw a prompt the user wrote themselves (no chat call)."""
        thread, turns = self._load(team_id, thread_id)
        text = " ".join(prompt.split())
        if not text:
            raise BotError("the edited prompt is empty")
        self.screen(team_id, text)
        base = draft_of(last_with_prompt(turns)) if turns else PromptDraft(prompt=text)
        draft = replace(
            base,
            prompt=text,
            negative_prompt=negative_prompt if negative_prompt is not None else base.negative_prompt,
            borrowed=tuple(p for p in base.borrowed if p.lower() in text.lower()),  # what the edit kept
        )
        options = _model_only(defaults)
        return self._draw(thread, "edit", text, draft, options, None, latest_hits(turns))

    def brainstorm(
        self,
        ref: ThreadRef,
        user_id: str,
        theme: str,
        count: int = 6,
        defaults: UserDefaults | None = None,
    ) -> TurnResult:
        """N diverse candidates in one shared style, their images and a numbered contact sheet."""
        self.screen(ref.team_id, theme)
        defaults = defaults or UserDefaults()
        thread = self._store.open_thread(ref, user_id, "avatar", theme)
        hits = self._retrieve(theme)
        request = brainstorm_request(theme, hits, count, defaults)
        options = _model_only(defaults)
        return self._compose_and_draw(thread, "brainstorm", theme, request, options, hits)

    def pick(
        self, team_id: str, thread_id: int, number: int, defaults: UserDefaults | None = None
    ) -> TurnResult:
        """Take brainstorm candidate #number as the thread's prompt and refine it once more."""
        thread, turns = self._load(team_id, thread_id)
        request, seed = pick_request(thread, turns, number)
        options = replace(_model_only(defaults), seed=seed)
        return self._compose_and_draw(thread, "pick", f"pick #{number}", request, options, ())

    def history(self, team_id: str, thread_id: int) -> tuple[ThreadRecord, list[TurnRecord]]:
        """The thread and its turns."""
        return self._load(team_id, thread_id)

    # --- internals ---------------------------------------------------------------------------------

    def _retrieve(self, idea: str) -> tuple[HitForPrompt, ...]:
        """The numbered library hits shown for an idea."""
        with self._stages.stage("retrieve", first=True):  # start and brainstorm begin here
            found = self._search.search(idea, k=HITS_SHOWN)
        return tuple(
            HitForPrompt(number=i, prompt=hit.prompt, source=hit.payload.get("source"))
            for i, hit in enumerate(found, start=1)
        )

    def _load(self, team_id: str, thread_id: int) -> tuple[ThreadRecord, list[TurnRecord]]:
        """A thread of this team and its turns, or ThreadNotFoundError."""
        thread = self._store.find_thread(team_id, thread_id)
        if thread is None:
            raise ThreadNotFoundError(f"thread {thread_id} not found")
        return thread, self._store.turns(team_id, thread_id)

    def screen(self, team_id: str, text: str) -> None:
        """RefusedError when the prompt policy refuses the text (callers may screen before posting)."""
        if self._policy is not None:
            self._policy.check(team_id, text)

    def _model(self, options: TurnOptions) -> ImageModel:
        """The image model a turn asked for (--model or a default), else the configured one."""
        if not options.model or options.model == self._images.model_id:
            return self._images
        if self._image_models is None:
            raise BotError("this bot draws with one image model only; drop --model")
        return self._image_models(options.model)

    def _compose_and_draw(
        self,
        thread: ThreadRecord,
        kind: TurnKind,
        user_text: str,
        request: ComposeRequest,
        options: TurnOptions,
        hits: Sequence[HitForPrompt],
    ) -> TurnResult:
        """One chat call, then the image call(s), then one stored turn."""
        started = time.perf_counter()
        self._stages.begin(kind)
        images = self._model(options)
        limit = prompt_limit(images.model_id)
        request = replace(request, max_prompt_chars=limit, image_model=images.model_id)
        with self._stages.stage("compose"):
            composed = self._chat.compose(request)
        drafts = tuple(apply_options(draft, options) for draft in composed.drafts)
        for draft in drafts:  # the chat model may write what the user did not ask for
            self.screen(thread.ref.team_id, draft.prompt)
        if kind != "brainstorm":
            return self._draw(thread, kind, user_text, drafts[0], options, composed, hits, started, images)
        drawn = self._candidates.draw(images, thread.ref.team_id, drafts)  # one image each, a contact sheet
        turn = self._record(
            thread, kind, user_text, hits, drafts[0], drawn.params, composed, drawn.images, started, images
        )
        result = self._result(thread, turn, hits, drafts, drawn.images, composed, started, images)
        return replace(result, contact_sheet=drawn.sheet)

    def _draw(
        self,
        thread: ThreadRecord,
        kind: TurnKind,
        user_text: str,
        draft: PromptDraft,
        options: TurnOptions,
        composed: ComposeResult | None,
        hits: Sequence[HitForPrompt],
        started: float | None = None,
        images: ImageModel | None = None,
    ) -> TurnResult:
        """Generate one prompt's image(s) and store the turn."""
        if started is None:  # reroll and edit begin here
            self._stages.reset()
        started = started if started is not None else time.perf_counter()
        images = images or self._model(options)
        draft = apply_options(draft, options)
        seed = options.seed if options.seed is not None else self._rng.randint(0, MAX_SEED)
        request = ImageRequest(
            draft.prompt, draft.negative_prompt, draft.aspect_ratio, seed, draft.style, max(1, options.count)
        )
        with self._stages.stage("draw"):
            generated = images.generate(request)
            stored = tuple(write_image(self._image_dir, thread.ref.team_id, image) for image in generated)
        params = {
            "seed": seed,
            "aspect_ratio": draft.aspect_ratio,
            "style": draft.style,
            "count": request.count,
            "used_hits": list(draft.used_hits),
            "rationale": draft.rationale,
            "borrowed": list(draft.borrowed),
            "compose_calls": 1 + composed.extra_calls if composed else 0,
        }
        turn = self._record(thread, kind, user_text, hits, draft, params, composed, stored, started, images)
        return self._result(thread, turn, hits, (draft,), stored, composed, started, images)

    def _record(
        self,
        thread: ThreadRecord,
        kind: TurnKind,
        user_text: str,
        hits: Sequence[HitForPrompt],
        draft: PromptDraft,
        params: dict[str, Any],
        composed: ComposeResult | None,
        stored: tuple[StoredImage, ...],
        started: float,
        images: ImageModel,
    ) -> TurnRecord:
        """Persist the finished turn with its images in one write."""
        turn = TurnRecord(
            thread_id=thread.id,
            kind=kind,
            role="user",
            text=user_text,
            hits=[{"number": h.number, "prompt": h.prompt, "source": h.source} for h in hits],
            prompt=draft.prompt,
            negative_prompt=draft.negative_prompt,
            params=params,
            chat_model=composed.model_id if composed else None,
            image_model=images.model_id,
            input_tokens=composed.input_tokens if composed else 0,
            output_tokens=composed.output_tokens if composed else 0,
            duration_ms=int((time.perf_counter() - started) * 1000),
            images=tuple(s.record for s in stored),
        )
        with self._stages.stage("store"):
            saved = self._store.add_turn(thread.ref.team_id, turn)
        log_turn(thread, saved, self._stages.ms)
        return saved

    def _result(
        self,
        thread: ThreadRecord,
        turn: TurnRecord,
        hits: Sequence[HitForPrompt],
        drafts: tuple[PromptDraft, ...],
        stored: tuple[StoredImage, ...],
        composed: ComposeResult | None,
        started: float,
        images: ImageModel,
    ) -> TurnResult:
        """Bundle what the caller shows."""
        labels = []
        if composed is not None and composed.is_offline:
            labels.append("prompt written by the offline composer (no LLM)")
        if images.is_offline:
            labels.append("offline preview image (no image model was called)")
        return TurnResult(
            thread=thread,
            turn=turn,
            hits=tuple(hits),
            drafts=drafts,
            images=stored,
            chat_offline=bool(composed and composed.is_offline),
            image_offline=images.is_offline,
            elapsed_ms=int((time.perf_counter() - started) * 1000),
            labels=tuple(labels),
        )


def _model_only(defaults: UserDefaults | None) -> TurnOptions:
    """A follow-up's options: FOLLOW_UP_IMAGES and the default image model (the thread keeps the rest)."""
    return TurnOptions(count=FOLLOW_UP_IMAGES, model=defaults.image_model if defaults else None)
