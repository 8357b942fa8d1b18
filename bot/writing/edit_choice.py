"""The offline composer's choice of how a refinement works on the image (what Claude picks online).

"swap the hat for a crown" -> search and replace, "make the car red" -> recolor, "remove the text" ->
erase, "wider" or a new --ar -> outpaint, "sharper" / "bigger" -> upscale, "remove the background" ->
remove background, "start over" / "new composition" -> a new seed; anything else draws again from the
image with a strength picked from what changes (a new style moves further than a tweak of the light).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.engine.ports import ComposeRequest, PromptDraft
from bot.writing.prompt_template import aspect_from_text, clean_line
from retrieval.modifiers import STYLE_CATEGORIES, classify_modifier, normalize_modifier

KEEP, NEW = "keep", "new"
TWEAK, CHANGE, RESTYLE = 0.35, 0.5, 0.7  # image-to-image strengths: a tweak, a change, a new look
COLOURS = (
    "red|orange|yellow|green|teal|blue|navy|purple|violet|pink|magenta|brown|black|white|gray|grey|"
    "gold|golden|silver|beige|turquoise|cyan|crimson|maroon"
)
_FILLER = r"(?:(?:please|can you|could you|now|also|just|and|ok|okay|maybe|try to)\s+)*"
_THE = r"(?:the|that|those|these|this|his|her|its|their|all the|all of the)"
_NEW_RE = re.compile(
    r"\b(?:start(?:ing)? (?:over|again|afresh|from scratch)|from scratch|new (?:composition|picture|image|"
    r"seed|layout)|something (?:else|different)|completely different|fresh start|different composition)\b"
)
_SWAP_RE = re.compile(
    rf"^{_FILLER}(?:swap|replace|exchange|switch|change|trade)\s+{_THE}?\s*(?P<target>[\w' -]+?)\s+"
    r"(?:for|with|into|to|by)\s+(?P<new>(?:an?\s+|the\s+|some\s+)?[\w' -]+?)$"
)
_RECOLOR_RE = re.compile(
    rf"^{_FILLER}(?:make|paint|turn|colou?r|recolou?r|change)\s+{_THE}\s+(?P<target>[\w' -]+?)\s+"
    rf"(?:to\s+|into\s+)?(?P<colour>(?:(?:bright|dark|light|deep|pale)\s+)?(?:{COLOURS}))(?:\s+colou?r(?:ed)?)?$"
)
_ERASE_RE = re.compile(
    rf"^{_FILLER}(?:remove|erase|delete|get rid of|take out|take away|lose|drop)\s+{_THE}\s+"
    r"(?P<target>[\w' -]+?)$"
)
_BACKGROUND_RE = re.compile(
    r"\b(?:(?:remove|erase|delete|drop|cut out|get rid of|lose)\s+(?:the\s+)?background|cut (?:it )?out|"
    r"transparent background|no background|background removed)\b"
)
_UPSCALE_RE = re.compile(
    r"^" + _FILLER + r"(?:make (?:it|the image|the picture) )?(?:a bit |much |way )?(?:sharper|bigger|larger|"
    r"crisper|upscale(?:d)?(?: it)?|higher resolution|hi-?res|more resolution|enlarge(?: it)?|in (?:hd|4k)|"
    r"4x|2x)$"
)
_FRAME_RE = re.compile(
    r"^" + _FILLER + r"(?:make (?:it|the image|the picture)\s+)?(?:a bit\s+|much\s+|slightly\s+)?"
    r"(?:wider|taller|landscape|portrait|panoram\w*|ultra-?wide|widescreen|horizontal|vertical|"
    r"(?:--ar\s+|in\s+|to\s+)?\d{1,2}\s*[:x×/]\s*\d{1,2})(?:\s+(?:format|frame|ratio|please))?$"
)
_TWEAK_RE = re.compile(
    r"\b(?:brighter|lighter|darker|moodier|warmer|cooler|colder|more (?:colou?rful|vibrant|contrast|"
    r"light|detail\w*)|less \w+|softer|saturated|desaturated|a bit|slightly|subtle)\b"
)


@dataclass(frozen=True)
class EditChoice:
    """How a refinement works on the image: keep (redraw from it), new, or an image edit."""

    edit: str
    target: str = ""
    replacement: str = ""
    strength: float | None = None


def choose_edit(instruction: str, edits: Sequence[str]) -> EditChoice:
    """The choice for one refinement instruction; only edits in `edits` (what the image allows)."""
    text = clean_line(instruction).lower().strip(" .!?")
    if _NEW_RE.search(text):
        return EditChoice(NEW)
    found = _image_edit(text)
    if found is not None and found.edit in edits:
        return found
    return EditChoice(KEEP, strength=_strength(text))


def _image_edit(text: str) -> EditChoice | None:
    """An image edit the instruction asks for, when it asks for nothing else."""
    if _BACKGROUND_RE.search(text):
        return EditChoice("remove_background")
    if _UPSCALE_RE.match(text):
        return EditChoice("upscale")
    if (_FRAME_RE.match(text) and aspect_from_text(text) is not None) or re.search(r"--ar\s+\d", text):
        return EditChoice("outpaint")
    match = _RECOLOR_RE.match(text)
    if match:
        target = match.group("target").strip()
        return EditChoice("recolor", target, f"{match.group('colour')} {target}")
    match = _SWAP_RE.match(text)
    if match:
        return EditChoice("search_replace", match.group("target").strip(), match.group("new").strip())
    match = _ERASE_RE.match(text)
    if match:
        return EditChoice("erase", match.group("target").strip())
    return None


def _strength(text: str) -> float:
    """Image-to-image strength: a new medium or style moves far, a tweak of light or colour stays close."""
    for clause in re.split(r"\s*(?:,|;|\band\b|\bthen\b)\s*", text):
        words = re.sub(
            r"^(?:make|turn|render|do|redo|change)\s+(?:it|this|that)?\s*(?:(?:in)?to\s+)?", "", clause
        )
        words = re.sub(r"^(?:as|in|into|like|with)\s+(?:an?\s+)?", "", words).strip()
        if words and classify_modifier(normalize_modifier(words)) in STYLE_CATEGORIES:
            return RESTYLE
    return TWEAK if _TWEAK_RE.search(text) else CHANGE


def offline_edit(draft: PromptDraft, request: ComposeRequest) -> PromptDraft:
    """The composer's draft with the edit choice, its prompt naming the result (hat -> crown)."""
    choice = choose_edit(request.instruction or "", request.edits)
    draft = replace(
        draft,
        edit=choice.edit,
        edit_target=choice.target,
        edit_prompt=choice.replacement,
        strength=choice.strength,
    )
    if choice.edit == KEEP:
        return draft
    prompt = _without(draft.prompt, clean_line(request.instruction or ""))
    if choice.edit in ("search_replace", "recolor") and choice.target:
        article = r"(?:(?:a|an|the|his|her|its|their)\s+)?" if choice.edit == "search_replace" else ""
        thing = rf"\b{article}{re.escape(choice.target)}\b"  # a replacement brings its own article
        swapped, count = re.subn(thing, choice.replacement, prompt, count=1, flags=re.I)
        prompt = swapped if count else f"{prompt}, {choice.replacement}"
    return replace(draft, prompt=prompt[: request.max_prompt_chars])


def _without(prompt: str, instruction: str) -> str:
    """The prompt without phrases the composer copied from the instruction as content."""
    # phrases end at a comma (tag lists) or a sentence's full stop (prose dialects); each keeps its end
    pieces = [p.strip() for p in re.findall(r"[^,.]+(?:[,.]|$)", prompt) if p.strip(" ,.")]
    said = instruction.lower()
    kept: list[str] = []
    for piece in pieces:
        if piece.strip(" ,.").lower() not in said:
            kept.append(piece)
        elif piece.endswith(".") and kept and kept[-1].endswith(","):
            kept[-1] = kept[-1][:-1] + "."  # the dropped phrase ended its sentence: so does the one before
    return " ".join(kept or pieces[:1]).rstrip(",")
