"""How each image model reads a prompt: tags for SDXL (CLIP), sentences for SD3.5/Stable Image and Nova (T5).

The library is mostly SD 1.x-era prompts: comma-separated tags plus incantations ("trending on artstation",
"8k", "octane render", "greg rutkowski"). SDXL's CLIP encoder reads about 77 tokens and still reads tight
tags best; SD3.5, Stable Image Core/Ultra (a T5 encoder) and Amazon Nova Canvas follow natural-language
descriptions far better, need few negatives, and Nova must get no negations in its prompt ("no mirrors"
belongs in its negative text). The writers (Claude's system prompt and the offline composer) borrow the
*look* of the hits and write it in the target model's dialect; the incantations are dropped unless the
user asked for them.

The prose rendering is regular on purpose, so that the offline composer can read a prompt it wrote back
into phrases on the next turn of a thread (`split_prompt`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

__all__ = [
    "DIALECT_MODELS",
    "MEDIUM_NOUNS",
    "Dialect",
    "default_negative",
    "dialect_for",
    "is_incantation",
    "negations",
    "render",
    "split_prompt",
    "strip_negations",
]


class Dialect(StrEnum):
    """The prompt dialect of an image model family."""

    TAGS = "tags"  # SDXL (CLIP, ~77 tokens): subject, then tight comma-separated tags
    PROSE = "prose"  # SD3.5, Stable Image Core/Ultra (T5): sentences, the medium named, few negatives
    NOVA = "nova"  # Amazon Nova Canvas / Titan Image: prose with no negation at all in the prompt

    @property
    def label(self) -> str:
        """How reports name the dialect."""
        return _LABELS[self]


_LABELS = {
    Dialect.TAGS: "tags (SDXL, CLIP)",
    Dialect.PROSE: "prose (SD3.5, Stable Image Core/Ultra, T5)",
    Dialect.NOVA: "prose without negations (Nova Canvas)",
}
# one model per dialect, for measuring a writer in every dialect (`imagine-bot eval prompts`)
DIALECT_MODELS = {
    Dialect.TAGS: "bedrock:stability.stable-diffusion-xl-v1",
    Dialect.PROSE: "bedrock:stability.sd3-5-large-v1:0",
    Dialect.NOVA: "bedrock:amazon.nova-canvas-v1:0",
}
_NEGATIVES = {
    Dialect.TAGS: "blurry, low quality, deformed, watermark",
    Dialect.PROSE: "blurry, low quality, watermark",
    Dialect.NOVA: "blurry, low quality, watermark",
}


def dialect_for(image_model_id: str | None) -> Dialect:
    """The dialect of an image model id; the offline preview stands in for the default (SD3.5) family."""
    model = (image_model_id or "").lower()
    if "stable-diffusion-xl" in model or "sdxl" in model or model.startswith("sagemaker:"):
        return Dialect.TAGS
    if "nova-canvas" in model or "titan-image" in model:
        return Dialect.NOVA
    return Dialect.PROSE


def default_negative(dialect: Dialect) -> str:
    """A short, precise negative prompt for the dialect."""
    return _NEGATIVES[dialect]


# Incantations of the SD 1.x era: sites, resolutions, render engines, booru quality tags and the
# over-used artist names. They say nothing about the look to a T5 model and crowd SDXL's 77 tokens.
_INCANTATION_RE = re.compile(
    r"(?<![\w-])(?:trending|featured|popular) (?:on|in) \w+|"
    r"(?<![\w-])(?:artstation|cgsociety|deviantart|pixiv|behance|unsplash contest winner|"
    r"\d+ ?k(?: resolution| uhd| hd)?|uhd|hdr|full hd|4k hd|"
    r"octane(?: render)?|unreal engine(?: \d)?|redshift|vray|v-ray|cinema ?4d|ray ?tracing|"
    r"masterpiece|best quality|high quality|award[- ]winning(?: \w+)?|hyper-?detailed|ultra[- ]detailed|"
    r"insanely detailed|extremely detailed|ultra hd|hd|highres|hi-res|high resolution|"
    r"greg rutkowski|artgerm|wlop|ross tran|ilya kuvshinov|sakimichan|rossdraws|beeple|"
    r"stanley artgerm lau|alena aenami|charlie bowater)(?![\w-])",
    re.IGNORECASE,
)


def is_incantation(phrase: str) -> bool:
    """Whether a phrase is (or holds) an SD 1.x-era incantation such as '8k' or 'trending on artstation'."""
    return _INCANTATION_RE.search(phrase) is not None


# Negations, which Nova Canvas reads as the thing itself: "a room with no windows" draws windows.
_NEGATION_RE = re.compile(
    r"(?:,\s*|\s+)?\b(?:(?:with|and|but)\s+)?(?:no|without|not|never|minus)\s+(?:any\s+|a\s+|an\s+|the\s+)?"
    r"(?P<thing>[^\W\d_][\w'-]*(?:\s+(?!and\b|or\b|with\b|in\b|on\b|at\b)[^\W\d_][\w'-]*)?)",
    re.IGNORECASE,
)


def negations(text: str) -> list[str]:
    """The things a text negates ("no text", "without people" → ['text', 'people'])."""
    return [m.group("thing").lower() for m in _NEGATION_RE.finditer(text)]


def strip_negations(text: str) -> tuple[str, list[str]]:
    """The text without its negations, and the negated things (for the negative prompt)."""
    things = negations(text)
    stripped = " ".join(_NEGATION_RE.sub("", text).split()).strip(" ,.;")
    return stripped, things


# rendering ---------------------------------------------------------------------------------------------
_COUNTABLE_RE = re.compile(
    r"(?:painting|photograph|photo|illustration|render|sketch|drawing|print|poster|collage|mosaic|"
    r"sculpture|engraving|etching|woodcut|linocut|lithograph|mural|fresco|polaroid|still|design|card|"
    r"portrait|matte painting|comic|cartoon|doodle)$"
)
_STYLE_TAIL_RE = re.compile(r"\s+(?:style|aesthetic)$")
_LIGHT = ("lighting", "color")
_FRAME = ("camera", "other", "quality", "site")


# a bare medium word and the thing it makes ("3d" → "3d render"): the writer names the medium with the
# longer phrase in prose when a library hit uses it
MEDIUM_NOUNS = {
    "watercolor": "watercolor painting",
    "watercolour": "watercolour painting",
    "oil": "oil painting",
    "acrylic": "acrylic painting",
    "gouache": "gouache painting",
    "pencil": "pencil drawing",
    "charcoal": "charcoal drawing",
    "ink": "ink drawing",
    "3d": "3d render",
    "cgi": "cgi render",
    "anime": "anime illustration",
    "manga": "manga illustration",
    "cartoon": "cartoon illustration",
    "vector": "vector illustration",
    "clay": "clay model",
    "low poly": "low poly render",
    "voxel": "voxel art",
}


def _article(phrase: str) -> str:
    """'a' or 'an' before a countable medium ("a watercolor painting"), else nothing ("pixel art")."""
    if not _COUNTABLE_RE.search(phrase):
        return phrase
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def _sentence(text: str) -> str:
    """Capitalized, ending with one full stop."""
    text = text.strip().rstrip(".")
    return text[:1].upper() + text[1:] + "." if text else ""


def _look_sentence(medium: list[str], styles: list[str], artists: list[str]) -> str:
    """'A watercolor painting in a whimsical and cinematic style, by beatrix potter.'"""
    styles = [m for m in medium if _STYLE_TAIL_RE.search(m)] + list(styles)  # "anime style" is a style
    medium = [m for m in medium if not _STYLE_TAIL_RE.search(m)]
    bare = [_STYLE_TAIL_RE.sub("", s) for s in styles]
    article = "an" if bare and bare[0][:1] in "aeiou" else "a"
    style = f"in {article} {' and '.join(bare)} style" if bare else ""
    medium_text = _article(", ".join(medium)) if medium else ""
    joiner = " " if _COUNTABLE_RE.search(medium_text) else ", "  # "3d, in a cyberpunk style"
    head = joiner.join(part for part in (medium_text, style) if part)
    return _sentence(", ".join(part for part in (head, *artists) if part))


def render(subject: str, content: Sequence[str], phrases: Sequence[tuple[str, str]], dialect: Dialect) -> str:
    """A prompt in the dialect: the subject and content first, then the (phrase, category) look."""
    first = ", ".join(part for part in (subject.strip(), *content) if part)
    if dialect is Dialect.TAGS:
        return ", ".join(part for part in (first, *(p for p, _ in phrases)) if part)

    def of(categories: tuple[str, ...]) -> list[str]:
        return [p for p, c in phrases if c in categories]

    look = _look_sentence(of(("medium",)), of(("style",)), of(("artist",)))
    rest = [look, _sentence(", ".join(of(_LIGHT))), _sentence(", ".join(of(_FRAME)))]
    body = " ".join(s for s in rest if s)
    if not body:
        return first
    return f"{first.rstrip('.')}. {body}" if first else body


# reading back ------------------------------------------------------------------------------------------
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=\S)")
_MEDIUM_STYLE_RE = re.compile(
    r"^(?:(?:an?|the)\s+)?(?P<medium>.+?)\s+in\s+an?\s+(?P<style>.+?)\s+style$", re.I
)
_STYLE_ONLY_RE = re.compile(r"^in\s+an?\s+(?P<style>.+?)\s+style$", re.I)
_STYLE_OF_RE = re.compile(r"^in the style of\s+(?P<artist>.+)$", re.I)
_ARTICLE_RE = re.compile(r"^(?:an?|the)\s+", re.I)


def _pieces(sentence: str) -> list[str]:
    """The phrases of one later sentence, with the rendering's lead-in words taken off."""
    found: list[str] = []
    for raw in sentence.strip().rstrip(".").split(","):
        piece = raw.strip()
        if not piece:
            continue
        both = _MEDIUM_STYLE_RE.match(piece)
        only = _STYLE_ONLY_RE.match(piece)
        artist = _STYLE_OF_RE.match(piece)
        if both:
            found.append(_ARTICLE_RE.sub("", both.group("medium")))
            found += [s.strip() for s in both.group("style").split(" and ") if s.strip()]
        elif only:
            found += [s.strip() for s in only.group("style").split(" and ") if s.strip()]
        elif artist:
            found.append("by " + artist.group("artist").strip())
        else:
            found.append(_ARTICLE_RE.sub("", piece) if _COUNTABLE_RE.search(piece) else piece)
    return [p[:1].lower() + p[1:] for p in found]


def split_prompt(prompt: str) -> tuple[list[str], list[str]]:
    """A prompt read back: the comma pieces of its first sentence, and the phrases of the later ones."""
    sentences = _SENTENCE_RE.split(" ".join(prompt.split()))
    first = [p.strip() for p in sentences[0].strip().rstrip(".").split(",") if p.strip()]
    later = [piece for sentence in sentences[1:] for piece in _pieces(sentence)]
    return first, later
