"""Deterministic offline ChatModel: the user's words first, then the look the library hits share, no LLM.

For a first prompt it keeps the idea as typed and borrows 3-6 phrases that the hits share or that the best
hit carries (`bot.writing.borrowing`: medium, style, lighting, composition, an artist where hits agree, a
quality term), skipping what contradicts the idea, the user's --style or --no, or each other. "Use #n"
redoes the idea in the manner of hit n. Refinements ("make it watercolor", "no text", "wider", "more like
#2") edit the thread's latest prompt. The prompt is written in the target image model's dialect
(`bot.writing.dialect`: tags for SDXL, sentences for SD3.5/Stable Image/Nova, no negations for Nova)
within its length, and the draft reports `used_hits` and `borrowed` like Claude's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from bot.engine.ports import ComposeRequest, ComposeResult, HitForPrompt, PromptDraft, TurnMemory
from bot.writing.borrowing import Limits, candidates, pick_look
from bot.writing.clashes import facets
from bot.writing.dialect import (
    MEDIUM_NOUNS,
    Dialect,
    default_negative,
    dialect_for,
    render,
    split_prompt,
    strip_negations,
)
from bot.writing.edit_choice import offline_edit
from bot.writing.grounding import hits_with, occurs
from bot.writing.prompt_template import (
    MAX_NEGATIVE_CHARS,
    MAX_RATIONALE_CHARS,
    aspect_from_text,
    aspect_hint,
    clean_line,
)
from bot.writing.prompt_template import normalize_aspect_ratio as ratio_or_none
from retrieval.modifiers import STYLE_CATEGORIES, ModifierStats, classify_modifier, normalize_modifier

logger = logging.getLogger(__name__)


def _table(text: str, sep: str = "|") -> list[str]:
    """A constant list written as one separated string (keeps the tables below short)."""
    return text.split(sep)


LABEL = "offline composer (no LLM)"
_CATEGORY_ORDER = "medium style artist lighting color camera other quality site"
_ORDER = {c: i for i, c in enumerate(_table(_CATEGORY_ORDER, " "))}
_SYNONYMS = {"text": ("text", "letters", "watermark"), "people": ("people", "person")}
_EXPAND = dict(
    pair.split("=")
    for pair in _table(
        "watercolor=watercolor painting|watercolour=watercolor painting|oil=oil painting|"
        "pencil=pencil sketch|sketch=pencil sketch|anime=anime style|pixel=pixel art|3d=3d render|"
        "photo=photograph|realistic=photorealistic|cartoon=cartoon style|comic=comic book style|"
        "manga=manga style|vector=flat vector illustration"
    )
)
_TWEAKS = (  # (pattern, category replaced, phrase)
    (r"\b(?:brighter|lighter)\b", "lighting", "bright natural lighting"),
    (r"\b(?:darker|moodier|more moody)\b", "lighting", "dark moody lighting"),
    (r"\bwarmer\b", "color", "warm color palette"),
    (r"\b(?:cooler|colder)\b", "color", "cool blue tones"),
    (r"\bmore (?:colou?rful|vibrant)\b", "color", "vibrant colors"),
    (r"\b(?:black and white|b&w|monochrome|grayscale|greyscale)\b", "color", "black and white"),
)
_VARY_LIGHT = _table(
    "golden hour lighting|soft diffused light|dramatic rim lighting|misty atmosphere|moonlight|"
    "warm sunset glow|studio lighting|volumetric light rays"
)
_VARY_CAMERA = _table(
    "wide shot|close-up|low angle view|three-quarter view|overhead view|rule of thirds composition|"
    "symmetrical composition|dynamic angle"
)
# avatar candidates: one subject each, centred on a simple background, square, in ONE shared style
_POSES = _table(
    "close-up portrait|head and shoulders, looking at viewer|minimalist icon, bold silhouette|"
    "three-quarter view, expressive face|playful mascot, big eyes|emblem badge, symmetrical|"
    "side profile|cute chibi version|front view, friendly smile|geometric low-detail version|"
    "waving hello|tiny accessory, proud pose"
)
_AVATAR_FRAME = (("centered composition", "camera"), ("simple background", "other"))
_BRAINSTORM_LOOK = (("digital illustration", "medium"), ("vibrant colors", "color"))
_SPLIT_RE = re.compile(
    r"\s*(?:[,;]|\.\s|\bthen\b|\bbut\b|\band\s+(?=(?:no|without|make|more|less|add|remove|use|with|put|change|"
    r"turn|go|also|then|in|as|a bit|wider|taller|square)\b))\s*"
)
_FILLER_RE = re.compile(
    r"^(?:(?:please|can you|could you|now|also|just|and|ok|okay|maybe|try|more|a bit|slightly)\s+)*"
    r"(?:(?:make|turn|render|do|redo|change|switch|convert)\s+"
    r"(?:it|this|that|them|the image|the picture|it all)?\s*(?:(?:in)?to\s+)?|go\s+|use\s+)?"
    r"(?:(?:as|in|into|like|with)\s+)?(?:an?\s+)?(?:more\s+)?",
    re.I,
)
_NEG_RE = re.compile(
    r"(?:^|\s)(?:with\s+)?(?:no|without|remove|get rid of|lose|drop|exclude|avoid|don'?t (?:want|show|"
    r"include|add))\s+(?:the\s+|any\s+|more\s+)?(?P<x>[^,;]+)$"
)
# The engine's own wording for a pick ("refine candidate #3, keep its subject and the shared style"):
# guidance for an LLM, not content or a library reference, so the offline composer skips it.
_ENGINE_NOTE_RE = re.compile(r"(?:refine candidate #\d+|keep its subject\b.*)$", re.IGNORECASE)
_HIT_RE = re.compile(r"(?:#\s*|\b(?:hit|example|number|result)\s+)(\d{1,2})\b")
_REQUEST_RE = re.compile(
    r"^(?:please\s+)?(?:(?:can|could) you\s+)?(?:(?:draw|paint|generate|create|make|imagine|render|show|"
    r"give)(?:\s+me|\s+us)?\s+)?(?:an?\s+(?:image|picture)\s+of\s+)?",
    re.I,
)
_SIMPLER_RE = re.compile(
    r"\b(?:simpler|simplify|minimal(?:ist)?|cleaner|less (?:busy|cluttered|detail\w*)|fewer details)\b"
)
# "a cartoon of a little dog" → "a little dog" when Use #n brings hit n's own medium
_MEDIUM_OF_RE = re.compile(
    r"^(?:an?\s+)?(?:(?:cute|little|small|simple|funny|quick|realistic|detailed|colou?rful)\s+)*"
    r"(?:cartoons?|paintings?|drawings?|photo(?:graph)?s?|sketch(?:es)?|illustrations?|pictures?|images?|"
    r"renders?|watercolou?rs?|doodles?)\s+of\s+",
    re.I,
)
_DETAIL_RE = re.compile(r"\bmore (?:details?|detailed|intricate)\b|\bsharper\b|\badd details?\b")


@dataclass
class _Work:
    """A prompt under construction: subject, content phrases, modifiers with categories, and the rest."""

    subject: str
    content: list[str] = field(default_factory=list)
    mods: list[tuple[str, str]] = field(default_factory=list)
    negative: list[str] = field(default_factory=list)
    aspect: str = "1:1"
    borrowed: dict[str, tuple[int, ...]] = field(default_factory=dict)  # phrase → the hits that hold it
    notes: list[str] = field(default_factory=list)

    def has(self, text: str) -> bool:
        """Whether the phrase is already a modifier or part of the subject/content."""
        key = normalize_modifier(text)
        words = normalize_modifier(", ".join([self.subject, *self.content]))
        in_words = bool(key) and re.search(rf"(?<!\w){re.escape(key)}(?!\w)", words) is not None
        return in_words or any(normalize_modifier(t) == key for t, _ in self.mods)

    def add(self, text: str, category: str) -> None:
        """Append a modifier unless it is already there."""
        if text and not self.has(text):
            self.mods.append((text, category))

    def drop(self, categories: set[str] | frozenset[str]) -> None:
        """Remove every modifier of these categories."""
        self.mods = [(t, c) for t, c in self.mods if c not in categories]

    def style(self) -> str | None:
        """The medium/style/artist modifiers as one string, or None."""
        return ", ".join(t for t, c in self.mods if c in STYLE_CATEGORIES) or None

    def context(self) -> str:
        """The words the user's prompt holds so far (subject, content, modifiers)."""
        return ", ".join([self.subject, *self.content, *(t for t, _ in self.mods)])


class OfflineComposer:
    """ChatModel that works with no cloud: keeps the subject, borrows the hits' look, applies refinements."""

    def __init__(self, stats: ModifierStats | None = None) -> None:
        """Use mined statistics, or the built-in table of well-known modifiers."""
        self._stats = stats if stats is not None and len(stats) else ModifierStats.builtin()

    @property
    def model_id(self) -> str:
        """Always 'offline'."""
        return "offline"

    @property
    def is_offline(self) -> bool:
        """Always True: the output is labelled as offline wherever it is shown."""
        return True

    def compose(self, request: ComposeRequest) -> ComposeResult:
        """Exactly `request.candidates` deterministic drafts."""
        count = max(1, request.candidates)
        if request.kind == "brainstorm":
            drafts = self._brainstorm(request, count)
        else:
            previous = next((t for t in reversed(request.history) if t.prompt), None)
            if request.kind == "use_hit":
                base = self._manner(request, previous)
            elif previous is not None and request.kind != "start":
                base = self._carry(request, previous)
            else:
                base = self._fresh(request)
            offset = len(request.history) if request.kind in ("vary", "reroll") else 0
            works = [base if i == offset == 0 else self._vary(base, offset + i) for i in range(count)]
            drafts = [self._draft(w, request) for w in works]
            if request.kind == "refine" and count == 1:  # how to work on the thread's image
                drafts = [offline_edit(drafts[0], request)]
        logger.debug("offline %s: %d draft(s), first %r", request.kind, len(drafts), drafts[0].prompt[:80])
        return ComposeResult(drafts=tuple(drafts), model_id="offline", is_offline=True)

    # building ------------------------------------------------------------------------------------------
    def _start(self, request: ComposeRequest) -> _Work:
        """The idea's subject and its own clauses, the user's style and no's, before any borrowing."""
        clauses = [c for c in _SPLIT_RE.split(clean_line(request.idea)) if c]
        subject = _REQUEST_RE.sub("", clauses[0] if clauses else "").strip(" .!?") or clean_line(request.idea)
        work = _Work(subject=subject or "an image", aspect=_start_aspect(request))
        negative = request.defaults.negative_prompt or default_negative(dialect_for(request.image_model))
        work.negative = _items(negative)
        for clause in clauses[1:]:
            self._clause(work, clause, request, keep_other=True)
        style = request.style or request.defaults.style
        if style and not work.style():
            self._style_or_content(work, clean_line(style).lower(), clean_line(style), keep_other=True)
        for thing in request.avoid:
            self._forbid(work, clean_line(thing).lower(), note=False)
        return work

    def _fresh(self, request: ComposeRequest) -> _Work:
        """A first prompt: the idea as typed, then the look its hits share."""
        work = self._start(request)
        self._apply(work, request.instruction, request)
        self._borrow(work, request, list(request.hits))
        return work

    def _manner(self, request: ComposeRequest, previous: TurnMemory | None) -> _Work:
        """Use #n: the idea redone in hit n's manner (medium, style, lighting, composition), our subject."""
        chosen = _chosen_hits(request)
        work = self._start(replace(request, style=None))
        numbers = ", ".join(f"#{h.number}" for h in chosen) or "that example"
        found = candidates(chosen, self._stats)
        if any(c.category == "medium" for c in found):  # hit n's medium replaces the idea's own
            work.subject = _MEDIUM_OF_RE.sub("", work.subject) or work.subject
            work.drop(STYLE_CATEGORIES)
        if previous is not None:
            work.aspect = _replay_aspect(request)
            if previous.negative_prompt is not None:
                work.negative = _items(previous.negative_prompt)
        self._borrow(work, request, chosen, manner=True)
        work.notes.append(f"the manner of {numbers}" if work.borrowed else f"found no style in {numbers}")
        return work

    def _carry(self, request: ComposeRequest, previous: TurnMemory) -> _Work:
        """The previous turn's prompt read back into subject, content and modifiers, then the instruction."""
        first, later = split_prompt(clean_line(previous.prompt or ""))
        work = _Work(subject=first[0] if first else clean_line(request.idea), aspect=_replay_aspect(request))
        for segment in first[1:]:  # prose keeps its first sentence for the subject and content
            category = "other" if later else self._stats.category(segment)
            if category == "other":
                work.content.append(segment)
            else:
                work.mods.append((segment, category))
        work.mods += [(segment, self._stats.category(segment)) for segment in later]
        for phrase in previous.borrowed:  # what the library gave earlier turns stays credited to it
            work.borrowed[phrase] = hits_with(phrase, request.hits)
        fallback = request.defaults.negative_prompt or default_negative(dialect_for(request.image_model))
        work.negative = _items(fallback if previous.negative_prompt is None else previous.negative_prompt)
        self._apply(work, request.instruction, request)
        return work

    def _borrow(
        self, work: _Work, request: ComposeRequest, hits: Sequence[HitForPrompt], *, manner: bool = False
    ) -> None:
        """Add the look the hits share (or hit n's manner), as far as it fits the user's words."""
        if not hits:
            return
        asked = " ".join(
            [request.idea, request.instruction or "", request.style or "", request.defaults.style or ""]
            + [t.user_text for t in request.history]
        )
        context = work.context()
        limits = Limits(
            context=context,
            asked=asked,
            avoid=tuple(work.negative) + tuple(request.avoid),
            medium_taken=any(axis == "medium" for axis, _ in facets(context))
            or any(c == "medium" for _, c in work.mods),
        )
        chosen = pick_look(hits, candidates(hits, self._stats), limits, manner=manner)
        prose = dialect_for(request.image_model) is not Dialect.TAGS
        for c in chosen:
            phrase = c.phrase
            noun = MEDIUM_NOUNS.get(phrase) if prose and c.category == "medium" else None
            if noun and hits_with(noun, hits):  # name the medium ("a 3d render") where a hit does
                phrase = noun
            work.add(phrase, c.category)
            work.borrowed[phrase] = hits_with(phrase, hits)

    def _more_like(self, work: _Work, hits: Sequence[HitForPrompt], request: ComposeRequest) -> None:
        """'More like #2': the look of the given hits replaces ours (style group, lighting, color, camera)."""
        numbers = ", ".join(f"#{h.number}" for h in hits) or "that example"
        found = {c.category for c in candidates(hits, self._stats)}
        if not found:
            work.notes.append(f"found no style to borrow from {numbers}")
            return
        drop = found & {"lighting", "color", "camera"}
        work.drop(drop | STYLE_CATEGORIES if found & STYLE_CATEGORIES else drop)
        self._borrow(work, request, hits, manner=True)
        work.notes.append(f"the look of {numbers}")

    # refinements ---------------------------------------------------------------------------------------
    def _apply(self, work: _Work, instruction: str | None, request: ComposeRequest) -> None:
        """Apply a refinement instruction (if any) clause by clause."""
        for clause in _SPLIT_RE.split(clean_line(instruction or "")):
            if clause and not _ENGINE_NOTE_RE.match(clause.strip()):
                self._clause(work, clause, request, keep_other=False)

    def _clause(self, work: _Work, clause: str, request: ComposeRequest, *, keep_other: bool) -> None:
        """One clause: hit reference, "no X", aspect, detail/simpler, a tweak, a style, or content."""
        text = clause.lower().strip(" .!?")
        hit = _HIT_RE.search(text)
        if hit:
            self._more_like(work, [h for h in request.hits if h.number == int(hit.group(1))], request)
            return
        negative = _NEG_RE.search(text)
        if negative:
            self._forbid(work, negative.group("x").strip(" .!?"))
            text = text[: negative.start()].strip()
            if not text:
                return
        stripped = _FILLER_RE.sub("", text).strip() or text
        aspect = aspect_from_text(stripped, work.aspect)
        if aspect:
            work.aspect = aspect
            work.notes.append(aspect)
            return
        if _DETAIL_RE.search(text):
            for phrase in ("highly detailed", "intricate details", "sharp focus"):
                work.add(phrase, "quality")
            work.notes.append("more detail")
            return
        if _SIMPLER_RE.search(text):
            style = [m for m in work.mods if m[1] in STYLE_CATEGORIES][:1]
            work.mods = [*style, ("minimalist", "style"), ("simple composition", "camera")]
            work.content = work.content[:1]
            work.notes.append("simpler")
            return
        for pattern, category, phrase in _TWEAKS:
            if re.search(pattern, text):
                work.drop({category})
                work.add(phrase, category)
                work.notes.append(phrase)
                return
        self._style_or_content(work, stripped, clause.strip(" .!?"), keep_other=keep_other)

    def _style_or_content(self, work: _Work, stripped: str, original: str, *, keep_other: bool) -> None:
        """A new medium/style/artist replaces the old; lighting/color/camera too; else content."""
        phrase = _EXPAND.get(stripped, stripped)
        if phrase.startswith("the style of "):
            phrase = "in " + phrase
        category = classify_modifier(normalize_modifier(phrase))
        known = self._stats.get(phrase)
        if category == "other" and known is not None:
            category = known.category
        if category == "other" and phrase.endswith((" style", " look", " aesthetic")):
            category = "style"
        if category in STYLE_CATEGORIES:
            work.drop({"artist"} if category == "artist" else STYLE_CATEGORIES)
            work.mods.insert(0, (phrase, category))
            work.notes.append(phrase if "style" in phrase else f"{phrase} style")
        elif category in ("lighting", "color", "camera"):
            work.drop({category})
            work.add(phrase, category)
            work.notes.append(phrase)
        elif category in ("quality", "site"):
            work.add(phrase, category)
        else:
            bare = re.sub(r"^(?:add|put|include|with)\s+", "", _FILLER_RE.sub("", original), flags=re.I)
            content = original if keep_other else bare or original
            work.content.append(content)
            words = set(re.findall(r"\w+", content.lower()))
            work.negative = [n for n in work.negative if n.lower() not in words]
            if not keep_other:
                work.notes.append(f"added {content}")

    def _forbid(self, work: _Work, thing: str, *, note: bool = True) -> None:
        """'no X': X (and close synonyms) into the negative prompt and out of the prompt."""
        if not thing:
            return
        pattern = re.compile(
            rf"\s*\b(?:with|and|holding|including)?\s*(?:some |a |an |the )?{re.escape(thing)}\b", re.I
        )
        work.mods = [(t, c) for t, c in work.mods if not pattern.search(t)]
        work.content = [c for c in (pattern.sub("", t).strip(" ,") for t in work.content) if c]
        subject = pattern.sub("", work.subject).strip(" ,")
        work.subject = subject or work.subject
        for item in _SYNONYMS.get(thing, (thing,)):
            if item.lower() not in (n.lower() for n in work.negative):
                work.negative.append(item)
        if note:
            work.notes.append(f"no {thing}")

    # variations and brainstorms ------------------------------------------------------------------------
    def _vary(self, base: _Work, index: int) -> _Work:
        """A copy with a different lighting and composition phrase (picked by index, so deterministic)."""
        work = replace(base, content=list(base.content), mods=list(base.mods), notes=list(base.notes))
        work.drop({"lighting", "camera"})
        work.add(_VARY_LIGHT[index % len(_VARY_LIGHT)], "lighting")
        work.add(_VARY_CAMERA[(index * 3 + 1) % len(_VARY_CAMERA)], "camera")
        work.notes.append("a variation: " + ", ".join(t for t, c in work.mods if c in ("lighting", "camera")))
        return work

    def _brainstorm(self, request: ComposeRequest, count: int) -> list[PromptDraft]:
        """N avatar candidates: square, centred on a simple background, all ending in one shared style."""
        base = self._fresh(replace(request, kind="start"))
        look = sorted((m for m in base.mods if m[1] in STYLE_CATEGORIES | {"lighting", "color"}), key=_rank)
        look = look or list(_BRAINSTORM_LOOK)
        dialect = dialect_for(request.image_model)
        shared = render("", (), [*look, *_AVATAR_FRAME], dialect)
        start = len(request.history)
        drafts = []
        for i in range(count):
            pose = _POSES[(start + i) % len(_POSES)] + (
                f" {i // len(_POSES) + 1}" if i >= len(_POSES) else ""
            )
            note = [f"candidate {i + 1}: {pose}"]
            work = replace(base, content=[*base.content, pose], mods=[], notes=note, aspect="1:1")
            head = self._draft(work, request, room=len(shared) + 2)
            joiner = ", " if dialect is Dialect.TAGS else ". "
            prompt = head.prompt.rstrip(".") + joiner + shared if shared else head.prompt
            borrowed = tuple(p for p in base.borrowed if base.borrowed[p] and occurs(p, prompt))
            used = tuple(sorted({n for p in borrowed for n in base.borrowed[p]}))
            drafts.append(replace(head, prompt=prompt, style=shared, borrowed=borrowed, used_hits=used))
        return drafts

    def _draft(self, work: _Work, request: ComposeRequest, *, room: int = 0) -> PromptDraft:
        """Render in the dialect within max_prompt_chars (weakest modifiers dropped first), with its why."""
        dialect = dialect_for(request.image_model)
        negative_items = list(work.negative)
        subject, content = work.subject, list(work.content)
        if dialect is Dialect.NOVA:  # Nova draws what a negation names: say it in the negative prompt
            subject, things = strip_negations(subject)
            content = [c for c in (strip_negations(c)[0] for c in content) if c]
            negative_items += things + [t for c in work.content for t in strip_negations(c)[1]]
        # the user's words first, then the borrowed look in the order prompt writers use
        mods = sorted(work.mods, key=lambda m: (m[0] in work.borrowed, _rank(m)))
        limit = max(1, request.max_prompt_chars - room)
        prompt = render(subject or work.subject, content, mods, dialect)
        while len(prompt) > limit and (mods or content):
            if mods:
                mods.pop()
            else:
                content.pop()
            prompt = render(subject or work.subject, content, mods, dialect)
        if len(prompt) > limit:  # the subject alone is too long: cut at a word boundary
            prompt = prompt[:limit].rsplit(" ", 1)[0] if " " in prompt[:limit] else prompt[:limit]
        negative = ", ".join(dict.fromkeys(n for n in negative_items if n))
        while len(negative) > MAX_NEGATIVE_CHARS:
            negative = negative.rsplit(",", 1)[0]
        borrowed = tuple(p for p in work.borrowed if work.borrowed[p] and occurs(p, prompt))
        used = tuple(sorted({n for p in borrowed for n in work.borrowed[p]}))
        why = f"{LABEL}: kept your words"
        if borrowed:
            why += f"; borrowed {', '.join(borrowed)} from " + ", ".join(f"#{n}" for n in used)
        if work.notes:
            why += "; applied " + ", ".join(dict.fromkeys(work.notes))
        if len(why) > MAX_RATIONALE_CHARS:
            why = why[: MAX_RATIONALE_CHARS - 1].rstrip() + "…"
        return PromptDraft(
            prompt=prompt,
            negative_prompt=negative,
            aspect_ratio=work.aspect,
            style=work.style(),
            used_hits=used,
            rationale=why,
            borrowed=borrowed,
        )


def _rank(modifier: tuple[str, str]) -> int:
    """Position of a modifier's category in a prompt (medium and style first, quality and site last)."""
    return _ORDER.get(modifier[1], _ORDER["other"])


def _items(text: str) -> list[str]:
    """Comma-separated items, trimmed, empties dropped."""
    return [s.strip() for s in clean_line(text).split(",") if s.strip()]


def _chosen_hits(request: ComposeRequest) -> list[HitForPrompt]:
    """The hit(s) named by '#N' in the instruction, else the first hit."""
    numbers = {int(n) for n in _HIT_RE.findall((request.instruction or "").lower())}
    chosen = [h for h in request.hits if h.number in numbers]
    return chosen or list(request.hits[:1])


def _start_aspect(request: ComposeRequest) -> str:
    """The user's default ratio, else a hint in the idea (wallpaper → 16:9, poster → 2:3 …), else 1:1."""
    return ratio_or_none(request.defaults.aspect_ratio) or aspect_hint(request.idea) or "1:1"


def _replay_aspect(request: ComposeRequest) -> str:
    """The thread's ratio: the latest stored one, else replayed from the aspect words of user turns."""
    stored = next((t.aspect_ratio for t in reversed(request.history) if t.aspect_ratio), None)
    if stored is not None:
        return ratio_or_none(stored) or "1:1"
    aspect = _start_aspect(request)
    texts = [", ".join(_SPLIT_RE.split(clean_line(request.idea))[1:])]
    texts += [t.user_text for t in request.history if t.kind != "start" and t.user_text]
    for clause in (c for text in texts for c in _SPLIT_RE.split(clean_line(text).lower())):
        aspect = aspect_from_text(_FILLER_RE.sub("", clause.strip(" .!?")), aspect) or aspect
    return aspect
