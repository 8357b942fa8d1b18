"""Deterministic offline ChatModel: the user's subject plus the strongest library modifiers, no LLM."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from bot.engine.ports import ComposeRequest, ComposeResult, HitForPrompt, PromptDraft, TurnMemory
from bot.writing.edit_choice import offline_edit
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
DEFAULT_NEGATIVE = "blurry, low quality, deformed, watermark"
_QUOTAS = dict(medium=1, style=1, artist=2, lighting=1, color=1, camera=1, quality=2, site=1)
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
_POSES = _table(
    "close-up portrait, centered|full body, dynamic pose|minimalist icon, bold silhouette|"
    "three-quarter view, expressive face|in its natural surroundings, wide shot|emblem badge, symmetrical|"
    "playful mascot, big eyes|side profile, rim light|low angle heroic view|cute chibi version|"
    "head and shoulders, looking at viewer|geometric low-detail version"
)
_N_POSES = len(_POSES)
_BRAINSTORM_STYLE = "digital illustration, vibrant colors, clean background"
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
_OWN_MEDIUM_RE = re.compile(  # a medium named in the idea itself: borrowed media would fight it
    r"\b(?:cartoons?|anime|manga|pixel art|watercolou?r|sketch|drawing|painting|photo(?:graph)?|"
    r"illustration|logo|icon|emoji|sticker|3d render|comic|vector|clay|lego|origami|pencil|ink)\b",
    re.I,
)
_RESOLUTION_RE = re.compile(r"^(?:\d+k(?: resolution| uhd| hd)?|uhd|hd|full hd)$", re.I)
_DETAIL_RE = re.compile(r"\bmore (?:details?|detailed|intricate)\b|\bsharper\b|\badd details?\b")


@dataclass
class _Work:
    """A prompt under construction: subject, content phrases, modifiers with categories, and the rest."""

    subject: str
    content: list[str] = field(default_factory=list)
    mods: list[tuple[str, str]] = field(default_factory=list)
    negative: list[str] = field(default_factory=list)
    aspect: str = "1:1"
    used: list[int] = field(default_factory=list)
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


class OfflineComposer:
    """ChatModel that works with no cloud: keeps the subject, borrows hit modifiers, applies refinements."""

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
            carry = previous if request.kind != "start" else None
            base = self._carry(request, carry) if carry is not None else self._fresh(request)
            offset = len(request.history) if request.kind in ("vary", "reroll") else 0
            works = [base if i == offset == 0 else self._vary(base, offset + i) for i in range(count)]
            drafts = [self._draft(w, request) for w in works]
            if request.kind == "refine" and count == 1:  # how to work on the thread's image
                drafts = [offline_edit(drafts[0], request)]
        logger.debug("offline %s: %d draft(s), first %r", request.kind, len(drafts), drafts[0].prompt[:80])
        return ComposeResult(drafts=tuple(drafts), model_id="offline", is_offline=True)

    # building ------------------------------------------------------------------------------------------
    def _fresh(self, request: ComposeRequest) -> _Work:
        """A first prompt: the idea's subject, its own clauses, then modifiers borrowed from the hits."""
        clauses = [c for c in _SPLIT_RE.split(clean_line(request.idea)) if c]
        subject = _REQUEST_RE.sub("", clauses[0] if clauses else "").strip(" .!?") or clean_line(request.idea)
        work = _Work(subject=subject or "an image", aspect=_start_aspect(request))
        work.negative = _items(request.defaults.negative_prompt or DEFAULT_NEGATIVE)
        for clause in clauses[1:]:
            self._clause(work, clause, request, keep_other=True)
        if request.defaults.style and not work.style():
            work.add(clean_line(request.defaults.style), "style")
        self._apply(work, request.instruction, request)
        hits = _chosen_hits(request) if request.kind == "use_hit" else list(request.hits)
        own_medium = _OWN_MEDIUM_RE.search(work.subject) is not None
        self._borrow(work, hits, skip_style=bool(work.style()) or own_medium)
        return work

    def _carry(self, request: ComposeRequest, previous: TurnMemory) -> _Work:
        """The previous turn's prompt split back into subject, content and modifiers."""
        prompt = clean_line(previous.prompt or "")
        subject = _REQUEST_RE.sub("", _SPLIT_RE.split(clean_line(request.idea))[0]).strip(" .!?")
        if subject and prompt.lower().startswith(subject.lower()):
            subject, rest = prompt[: len(subject)], prompt[len(subject) :]
        else:
            subject, _, rest = prompt.partition(",")
        work = _Work(subject=subject.strip(), aspect=_replay_aspect(request))
        for segment in filter(None, (s.strip() for s in rest.split(","))):
            category = self._stats.category(segment)
            if category == "other":
                work.content.append(segment)
            else:
                work.mods.append((segment, category))
        fallback = request.defaults.negative_prompt or DEFAULT_NEGATIVE
        work.negative = _items(fallback if previous.negative_prompt is None else previous.negative_prompt)
        if request.kind == "use_hit" and not _HIT_RE.search(request.instruction or ""):
            self._more_like(work, _chosen_hits(request))
        self._apply(work, request.instruction, request)
        return work

    def _borrow(
        self, work: _Work, hits: Sequence[HitForPrompt], *, skip_style: bool, deep: bool = False
    ) -> None:
        """Add the strongest modifiers of the hits, a few per category, most frequent first."""
        per_hit = {h.number: self._stats.modifiers_in(h.prompt, include_subject=deep) for h in hits}
        ranked = sorted({m.text: m for ms in per_hit.values() for m in ms}.values(), key=lambda m: -m.count)
        taken: dict[str, int] = {}
        negative = {normalize_modifier(n) for n in work.negative}
        for modifier in ranked:
            cat = modifier.category
            full = taken.get(cat, 0) >= _QUOTAS.get(cat, 0) or (skip_style and cat in STYLE_CATEGORIES)
            present = cat != "quality" and any(c == cat for _, c in work.mods)
            if _RESOLUTION_RE.match(modifier.text):  # one of 4k / 8k / hd is enough
                present = present or any(_RESOLUTION_RE.match(t) for t, _ in work.mods)
            if full or present or modifier.text in negative or work.has(modifier.text):
                continue
            work.add(modifier.text, cat)
            taken[cat] = taken.get(cat, 0) + 1
            number = next(n for n, found in per_hit.items() if modifier in found)
            work.used += [] if number in work.used else [number]

    def _more_like(self, work: _Work, hits: Sequence[HitForPrompt]) -> None:
        """Take the look of the given hits: their style group and lighting/color replace ours."""
        numbers = ", ".join(f"#{h.number}" for h in hits)
        found = {m.category for h in hits for m in self._stats.modifiers_in(h.prompt, include_subject=True)}
        if not found:
            work.notes.append(f"found no style to borrow from {numbers or 'that example'}")
            return
        drop = found & {"lighting", "color"}
        work.drop(drop | STYLE_CATEGORIES if found & STYLE_CATEGORIES else drop)
        self._borrow(work, hits, skip_style=False, deep=True)
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
            self._more_like(work, [h for h in request.hits if h.number == int(hit.group(1))])
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

    def _forbid(self, work: _Work, thing: str) -> None:
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
        """N different compositions of the theme that all end with one shared style string."""
        base = self._fresh(replace(request, kind="start"))
        looks = sorted((m for m in base.mods if m[1] in STYLE_CATEGORIES | {"lighting", "color"}), key=_rank)
        shared = ", ".join(t for t, _ in looks) or _BRAINSTORM_STYLE
        asked = re.search(r"\d\s*:\s*\d", request.idea + (request.instruction or ""))
        base.aspect = base.aspect if request.defaults.aspect_ratio or asked else "1:1"
        start = len(request.history)
        drafts = []
        for i in range(count):
            pose = _POSES[(start + i) % len(_POSES)] + (
                f" {i // len(_POSES) + 1}" if i >= len(_POSES) else ""
            )
            note = [f"candidate {i + 1}: {pose}"]
            work = replace(base, content=[*base.content, pose], mods=[(shared, "style")], notes=note)
            drafts.append(replace(self._draft(work, request), style=shared))
        return drafts

    def _draft(self, work: _Work, request: ComposeRequest) -> PromptDraft:
        """Render within max_prompt_chars (dropping the weakest modifiers first) with a labelled rationale."""
        mods = [t for t, _ in sorted(work.mods, key=_rank)]
        parts = [work.subject, *work.content, *mods]
        limit = max(1, request.max_prompt_chars)
        while len(parts) > 1 and len(", ".join(parts)) > limit:
            parts.pop()
        prompt = ", ".join(parts)
        if len(prompt) > limit:  # the subject alone is too long: cut at a word boundary
            prompt = prompt[:limit].rsplit(" ", 1)[0] if " " in prompt[:limit] else prompt[:limit]
        negative = ", ".join(dict.fromkeys(n for n in work.negative if n))
        while len(negative) > MAX_NEGATIVE_CHARS:
            negative = negative.rsplit(",", 1)[0]
        why = f"{LABEL}: kept your subject"
        if work.used:
            why += "; borrowed modifiers from " + ", ".join(f"#{n}" for n in work.used)
        if work.notes:
            why += "; applied " + ", ".join(dict.fromkeys(work.notes))
        return PromptDraft(
            prompt=prompt,
            negative_prompt=negative,
            aspect_ratio=work.aspect,
            style=work.style(),
            used_hits=tuple(work.used),
            rationale=why[:MAX_RATIONALE_CHARS],
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
