"""The conversation engine: retrieve → compose → generate, one persisted turn per operation."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from bot.engine.brainstorm import CandidateDrawer, ContactSheet, brainstorm_request, pick_request
from bot.engine.contact_sheet import contact_sheet as draw_sheet
from bot.engine.icon import fit_for_icon, square_icon
from bot.engine.image_edits import (
    PICK_STRENGTH,
    REDRAW_STRENGTH,
    REFINE_EDITS,
    VARY_STRENGTH,
    FollowUp,
    SourceImage,
    UsedModel,
    candidate_image,
    chosen_edit,
    edit_how,
    image_in,
    latest_image,
    nearest_ratio,
    outpaint_expand,
    redraw,
    thread_seed,
)
from bot.engine.image_files import write_image, write_sheet
from bot.engine.picture_checks import check_picture
from bot.engine.policy import PromptPolicy
from bot.engine.ports import (
    ChatModel,
    ComposeRequest,
    ComposeResult,
    EditOperation,
    EditRequest,
    GeneratedImage,
    HitForPrompt,
    ImageEditor,
    ImageModel,
    ImageRequest,
    PictureDescriber,
    PromptDraft,
    ThreadRecord,
    ThreadRef,
    ThreadStore,
    TurnKind,
    TurnRecord,
    UserDefaults,
    WarmsUp,
)
from bot.engine.turn_errors import BotError, ImageInputError
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
PICTURE_MODEL = "slack:picture"  # the "model" of a picture a person posted
HITS_SHOWN = 5
NEW_REFERENCES = 3  # library prompts a refinement adds for its new direction (one short line in the thread)
WRITER_HITS = 15  # at most this many hits go to the writer: the first ones shown and the newest references
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
        editor: ImageEditor | None = None,
        describer: PictureDescriber | None = None,
    ) -> None:
        self._editor = editor
        self._describer = describer
        self._search = search
        self._chat = chat
        self._images = images
        self._image_models = image_models
        self._policy = policy
        self._store = store
        self._image_dir = Path(image_dir)
        self._rng = rng or random.SystemRandom()
        self._sheet = contact_sheet
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

        search = self._search  # its own warm-up, where it has one, calls no paid API (a concept planner)
        timed(
            "search",
            search.warm_up if isinstance(search, WarmsUp) else lambda: search.search(WARM_UP_IDEA, k=5),
        )
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
        shown = latest_hits(turns)
        new = self._references(thread.idea, instruction, shown)
        hits = shown + new  # numbers stay stable: the new ones follow the thread's last number
        source = latest_image(turns)
        request = ComposeRequest(
            kind="refine",
            idea=thread.idea,
            instruction=instruction,
            history=memory_of(turns),
            hits=hits if len(hits) <= WRITER_HITS else hits[:HITS_SHOWN] + hits[HITS_SHOWN - WRITER_HITS :],
            defaults=defaults or UserDefaults(),
            edits=self._edits(REFINE_EDITS) if source is not None else (),
        )
        options = replace(_model_only(defaults), seed=thread_seed(turns))  # the thread keeps its seed
        follow = FollowUp(source, REDRAW_STRENGTH)
        result = self._compose_and_draw(thread, "refine", instruction, request, options, hits, follow)
        return replace(result, new_hits=new)

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
        follow = FollowUp(latest_image(turns), VARY_STRENGTH)  # image-to-image (subtle) where possible
        return self._compose_and_draw(thread, "vary", "variation", request, options, hits, follow)

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
        candidates = [turn for turn in turns if turn.kind == "brainstorm"][-1].params.get("candidates", [])
        winner = candidate_image(turns, candidates[number - 1].get("image_sha256"))
        follow = FollowUp(winner, PICK_STRENGTH)  # refined from the candidate's own picture
        return self._compose_and_draw(thread, "pick", f"pick #{number}", request, options, (), follow)

    # --- image turns: buttons, a person's picture, the avatar's icon -------------------------------------

    def upscale(self, team_id: str, thread_id: int, turn_id: int | None = None) -> TurnResult:
        """Upscale an image of the thread (the latest unless `turn_id` names one): one call, one turn."""
        return self._button_edit(team_id, thread_id, turn_id, "upscale", "upscale")

    def remove_background(self, team_id: str, thread_id: int, turn_id: int | None = None) -> TurnResult:
        """Cut out an image of the thread (the latest unless `turn_id` names one): a transparent PNG."""
        return self._button_edit(team_id, thread_id, turn_id, "remove_background", "cutout")

    def add_picture(
        self, team_id: str, thread_id: int, user_id: str, data: bytes, name: str, caption: str = ""
    ) -> TurnRecord:
        """Keep a picture a person posted in the thread, once it passes the checks (ImageInputError)."""
        thread, _ = self._load(team_id, thread_id)
        info = check_picture(data, name)
        image = GeneratedImage(data, 0, PICTURE_MODEL, info.width, info.height, info.mime_type)
        stored = write_image(self._image_dir, team_id, image)
        params = {"name": name, "mime_type": info.mime_type, "user": user_id}
        turn = TurnRecord(
            thread.id, "picture", "user", caption or name, params=params, images=(stored.record,)
        )
        return self._store.add_turn(team_id, turn)

    def use_picture(self, team_id: str, thread_id: int, turn_id: int, operation: EditOperation) -> TurnResult:
        """Draw the thread's prompt after a person's picture: its lines ("sketch") or its look ("style")."""
        if operation not in ("sketch", "style"):
            raise ValueError(f"a picture is used as a sketch or a style, not {operation!r}")
        self._stages.reset()
        started = time.perf_counter()
        thread, turns = self._load(team_id, thread_id)
        picture = image_in(turns, turn_id, kinds=("picture",))
        draft = self._current_draft(thread, turns)
        request = EditRequest(
            operation,
            picture.read(),
            prompt=draft.prompt,
            negative_prompt=draft.negative_prompt,
            seed=self._rng.randint(0, MAX_SEED),
            aspect_ratio=draft.aspect_ratio if operation == "style" else None,
            style=draft.style,
        )
        text = f"use the picture as a {operation}"
        return self._edit(thread, operation, text, draft, request, picture, None, latest_hits(turns), started)

    def describe_picture(
        self,
        team_id: str,
        thread_id: int,
        turn_id: int,
        defaults: UserDefaults | None = None,
        on_hits: OnHits | None = None,
    ) -> TurnResult:
        """Describe a person's picture with the vision model, then imagine that as /imagine does."""
        if self._describer is None:
            raise BotError("this bot has no vision model to describe pictures with")
        thread, turns = self._load(team_id, thread_id)
        picture = image_in(turns, turn_id, kinds=("picture",))
        mime_type = str(picture.turn.params.get("mime_type") or "image/png")
        with self._stages.stage("compose", first=True):
            described = self._describer.describe(picture.read(), mime_type, picture.turn.text)
        self.screen(team_id, described.text)
        hits = self._retrieve(described.text, first=False)
        if on_hits is not None:
            on_hits(thread, hits)
        defaults = defaults or UserDefaults()
        options = with_defaults(TurnOptions(), defaults)
        request = ComposeRequest(kind="start", idea=described.text, hits=hits, defaults=defaults)
        result = self._compose_and_draw(thread, "describe", described.text, request, options, hits)
        if not described.is_offline:
            return result
        label = "description written offline from the picture's colours and name (no vision model)"
        return replace(result, labels=(label, *result.labels))

    def make_icon(self, team_id: str, thread_id: int) -> TurnResult:
        """The thread's latest image as an icon: upscaled, background removed, squared (two edit turns)."""
        thread, turns = self._load(team_id, thread_id)
        source = image_in(turns, None)
        hits = latest_hits(turns)
        draft = draft_of(source.turn) if source.turn.prompt else self._current_draft(thread, turns)
        seed = thread_seed(turns) or self._rng.randint(0, MAX_SEED)
        self._stages.reset()
        calls = 1
        try:
            upscale = EditRequest("upscale", source.read(), prompt=draft.prompt, seed=seed)
            bigger = self._edit(thread, "upscale", "icon: upscale", draft, upscale, source, None, hits)
            source, calls = SourceImage(bigger.turn, bigger.turn.images[0]), 2
        except ImageInputError:  # too big for the upscaler already: big enough for an icon
            logger.info("thread %s: the winner is %dx%d, not upscaled", thread.id, *source.size)
        self._stages.reset()
        cut = EditRequest("remove_background", fit_for_icon(source.read()), seed=seed)
        icon = self._edit(
            thread, "icon", "icon: remove background", draft, cut, source, None, hits, finish=square_icon
        )
        return replace(icon, image_calls=calls)

    def history(self, team_id: str, thread_id: int) -> tuple[ThreadRecord, list[TurnRecord]]:
        """The thread and its turns."""
        return self._load(team_id, thread_id)

    # --- internals ---------------------------------------------------------------------------------

    def _retrieve(self, idea: str, *, first: bool = True) -> tuple[HitForPrompt, ...]:
        """The numbered library hits shown for an idea."""
        with self._stages.stage("retrieve", first=first):  # start and brainstorm begin here
            found = self._search.search(idea, k=HITS_SHOWN)
        return tuple(
            HitForPrompt(number=i, prompt=hit.prompt, source=hit.payload.get("source"))
            for i, hit in enumerate(found, start=1)
        )

    def _references(
        self, idea: str, instruction: str, shown: Sequence[HitForPrompt]
    ) -> tuple[HitForPrompt, ...]:
        """Library prompts for a refinement's direction (the idea plus the instruction) not yet shown."""
        seen = {hit.prompt for hit in shown}
        last = max((hit.number for hit in shown), default=0)
        with self._stages.stage("retrieve", first=True):  # a refinement begins here
            direction = direction_of(instruction)
            if not direction:  # "no text", "make it less": nothing new to look for
                return ()
            try:
                found = self._search.search(f"{idea}, {direction}", k=HITS_SHOWN + NEW_REFERENCES)
            except Exception as exc:
                logger.warning("no new references for a refinement (%s: %s)", type(exc).__name__, exc)
                return ()
        fresh = [hit for hit in found if hit.prompt not in seen][:NEW_REFERENCES]
        return tuple(
            HitForPrompt(number=last + i, prompt=hit.prompt, source=hit.payload.get("source"))
            for i, hit in enumerate(fresh, start=1)
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
        follow: FollowUp | None = None,
    ) -> TurnResult:
        """One chat call, then the image call(s), then one stored turn (a follow-up may edit instead)."""
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
        if follow is not None:
            draft = drafts[0]
            operation = chosen_edit(draft, follow.source, request.edits)
            if operation is not None and follow.source is not None:
                edit = self._edit_request(operation, draft, follow.source, options.seed)
                return self._edit(
                    thread, kind, user_text, draft, edit, follow.source, composed, hits, started
                )
            how = redraw(draft, follow, images, options.seed, kind=kind)
            options = replace(options, seed=None) if how.how["kind"] == "new-seed" else options
            return self._draw(
                thread, kind, user_text, draft, options, composed, hits, started, images, how.source,
                how.strength, how.how,
            )  # fmt: skip
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
        source: SourceImage | None = None,
        strength: float | None = None,
        how: dict[str, Any] | None = None,
    ) -> TurnResult:
        """Generate one prompt's image(s) (image-to-image from `source`, if given) and store the turn."""
        if started is None:  # reroll and edit begin here
            self._stages.reset()
        started = started if started is not None else time.perf_counter()
        images = images or self._model(options)
        draft = apply_options(draft, options)
        seed = options.seed if options.seed is not None else self._rng.randint(0, MAX_SEED)
        request = ImageRequest(
            draft.prompt,
            draft.negative_prompt,
            draft.aspect_ratio,
            seed,
            draft.style,
            max(1, options.count),
            init_image=source.read() if source is not None else None,
            strength=strength if source is not None else None,
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
        if how is not None:
            params["how"] = {**how, "seed": seed} if "seed" in how else how
        turn = self._record(thread, kind, user_text, hits, draft, params, composed, stored, started, images)
        return self._result(thread, turn, hits, (draft,), stored, composed, started, images)

    def _edits(self, wanted: Sequence[str]) -> tuple[str, ...]:
        """The edits of `wanted` this bot's editor can make."""
        editor = self._editor
        return tuple(op for op in wanted if editor is not None and editor.model_for(op))

    def _current_draft(self, thread: ThreadRecord, turns: Sequence[TurnRecord]) -> PromptDraft:
        """The thread's latest prompt, or its idea when no prompt was written yet."""
        try:
            return draft_of(last_with_prompt(turns))
        except BotError:
            return PromptDraft(prompt=thread.idea)

    def _button_edit(
        self, team_id: str, thread_id: int, turn_id: int | None, operation: EditOperation, kind: TurnKind
    ) -> TurnResult:
        """Upscale or Remove background on one image of the thread, keeping the thread's prompt."""
        self._stages.reset()
        started = time.perf_counter()
        thread, turns = self._load(team_id, thread_id)
        source = image_in(turns, turn_id)
        draft = draft_of(source.turn) if source.turn.prompt else self._current_draft(thread, turns)
        request = EditRequest(
            operation,
            source.read(),
            prompt=draft.prompt,
            negative_prompt=draft.negative_prompt,
            seed=thread_seed(turns) or self._rng.randint(0, MAX_SEED),
            style=draft.style,
        )
        text = operation.replace("_", " ")
        return self._edit(thread, kind, text, draft, request, source, None, latest_hits(turns), started)

    def _edit_request(
        self, operation: str, draft: PromptDraft, source: SourceImage, seed: int | None
    ) -> EditRequest:
        """The image-service request for the edit a refinement chose."""
        replaces = operation in ("search_replace", "recolor")
        return EditRequest(
            operation,  # type: ignore[arg-type]  # chosen_edit returned one of EDIT_OPERATIONS
            source.read(),
            prompt=draft.edit_prompt if replaces else draft.prompt,
            negative_prompt=draft.negative_prompt,
            target=draft.edit_target,
            seed=seed if seed is not None else self._rng.randint(0, MAX_SEED),
            expand=outpaint_expand(source.size, draft.aspect_ratio)
            if operation == "outpaint"
            else (0, 0, 0, 0),
            style=draft.style,
        )

    def _edit(
        self,
        thread: ThreadRecord,
        kind: TurnKind,
        user_text: str,
        draft: PromptDraft,
        request: EditRequest,
        source: SourceImage,
        composed: ComposeResult | None,
        hits: Sequence[HitForPrompt],
        started: float | None = None,
        *,
        finish: Callable[[bytes], bytes] | None = None,
    ) -> TurnResult:
        """One image-service call on `source`, stored as a turn that keeps the thread's prompt."""
        started = started if started is not None else time.perf_counter()
        model_id = self._editor.model_for(request.operation) if self._editor is not None else None
        if self._editor is None or model_id is None:
            raise BotError(f"this bot has no image service to {request.operation.replace('_', ' ')} with")
        with self._stages.stage("draw"):
            image = self._editor.edit(request)
            if finish is not None:
                data = finish(image.data)
                side = _png_side(data)
                image = GeneratedImage(data, image.seed, image.model_id, side[0], side[1], "image/png")
            stored = write_image(self._image_dir, thread.ref.team_id, image)
        frame = nearest_ratio(image.width, image.height)
        draft = replace(draft, aspect_ratio=frame)
        params: dict[str, Any] = {
            "seed": request.seed,
            "aspect_ratio": frame,
            "style": draft.style,
            "count": 1,
            "used_hits": list(draft.used_hits),
            "rationale": draft.rationale,
            "how": edit_how(request.operation, draft, source, model_id),
        }
        used = UsedModel(model_id, model_id == "offline")
        turn = self._record(thread, kind, user_text, hits, draft, params, composed, (stored,), started, used)
        result = self._result(thread, turn, hits, (draft,), (stored,), composed, started, used)
        if kind != "icon" or self._sheet is None:
            return result
        return replace(result, contact_sheet=self._icon_sheet(thread, source, stored))

    def _icon_sheet(self, thread: ThreadRecord, source: SourceImage, icon: StoredImage) -> Path:
        """A preview of the winner beside its icon, whose transparency shows on a checkerboard."""
        labels = ["the winner", f"icon {icon.record.width}x{icon.record.height}, transparent"]
        sheet = draw_sheet([source.read(), icon.path.read_bytes()], labels=labels, numbered=False)
        return write_sheet(self._image_dir, thread.ref.team_id, sheet)

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
        images: ImageModel | UsedModel,
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
        images: ImageModel | UsedModel,
        labels: Sequence[str] = (),
    ) -> TurnResult:
        """Bundle what the caller shows."""
        labels = list(labels)
        if composed is not None and composed.is_offline:
            labels.append("prompt written by the offline composer (no LLM)")
        if images.is_offline:
            labels.append(
                "offline image edit (no image model was called)"
                if isinstance(images, UsedModel)
                else "offline preview image (no image model was called)"
            )
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


_NEGATED_RE = re.compile(r"\b(?:no|without|not|never|remove|drop)\b[^,;.]*", re.I)
_ASKING_RE = re.compile(
    r"\b(?:please|can you|could you|make|turn|change|give|it|this|that|into|look|looks|like|more|less)\b",
    re.I,
)


def direction_of(instruction: str) -> str:
    """What a refinement asks to see ("make it watercolor, no text" -> "watercolor"), for its search."""
    wanted = _NEGATED_RE.sub(" ", instruction)  # what it removes would only find more of it
    wanted = re.sub(r"#\d+", " ", wanted)  # "more like #2" points at a hit the thread already has
    return " ".join(_ASKING_RE.sub(" ", wanted).replace(",", " ").split())


def _model_only(defaults: UserDefaults | None) -> TurnOptions:
    """A follow-up's options: FOLLOW_UP_IMAGES and the default image model (the thread keeps the rest)."""
    return TurnOptions(count=FOLLOW_UP_IMAGES, model=defaults.image_model if defaults else None)


def _png_side(data: bytes) -> tuple[int, int]:
    """Width and height of PNG bytes (from the IHDR chunk)."""
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
