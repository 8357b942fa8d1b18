"""Style-modifier statistics mined from the prompt library: phrases, counts and categories."""

from __future__ import annotations

import gzip
import json
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


CATEGORIES = ("medium", "style", "artist", "lighting", "camera", "color", "quality", "site", "other")
STYLE_CATEGORIES = frozenset({"medium", "style", "artist"})  # what "make it watercolor" replaces
_FORMAT_VERSION = 1
_MAX_WORDS = 6
_MAX_CHARS = 50

_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (category, re.compile(pattern))
    for category, pattern in (
        ("artist", r"^(?:by|art by|artwork by|painted by|illustrated by|(?:in )?(?:the )?style of) \S"),
        (
            "site",
            r"^(?:trending|featured|popular) (?:on|in) |^(?:artstation|cgsociety|deviantart|pixiv|behance)",
        ),
        (
            "lighting",
            r"\b(?:lighting|lights?|lit|backlit|backlight|glow(?:ing)?|sunlight|moonlight|god rays|"
            r"volumetric|golden hour|blue hour|sunset|sunrise|twilight|chiaroscuro|shadows?|lens flare|"
            r"global illumination|ray tracing|raytracing|bioluminescent)\b",
        ),
        (
            "camera",
            r"\b(?:\d+ ?mm|lens|f/ ?\d[\d.]*|f\d\.\d|bokeh|depth of field|dof|camera|shot|close-?up|"
            r"closeup|wide[- ]angle|macro|telephoto|canon|nikon|sony|leica|fujifilm|hasselblad|kodak|"
            r"portra|film grain|long exposure|aerial view|full body|symmetrical|centered|"
            r"low angle|high angle|isometric view|bird'?s[- ]eye view|portrait|rule of thirds|golden ratio|"
            r"symmetry|movie still|film still|composition)\b",
        ),
        (
            "quality",
            r"^(?:\d+ ?k|hd|uhd|hdr|4k|8k|16k)\b|\b(?:\d+k|hd|uhd|hdr|(?:highly|ultra|hyper|very|"
            r"extremely|insanely) detailed|detailed|sharp|intricate(?: details?)?|masterpiece|best quality|"
            r"high quality|sharp focus|award[- ]winning|high resolution|highres|hi-res|smooth|elegant|"
            r"beautiful|stunning|epic composition|ultra fine detail|professional|high details?|"
            r"hyper-?detailed|fine details?|high definition|studio quality|ultra hd)\b",
        ),
        (
            "medium",
            r"\b(?:painting|oil|acrylic|watercolou?r|gouache|pastel|charcoal|pencil|sketch|drawing|ink|"
            r"illustration|concept art|digital art|artwork|render|rendered|octane|unreal engine|blender|"
            r"unreal|cinema ?4d|redshift|vray|zbrush|3d|2d|cgi|photo|photograph|photography|sculpture|statue|"
            r"pixel art|vector|low poly|lowpoly|voxel|claymation|clay|origami|papercraft|collage|"
            r"mosaic|stained glass|woodcut|linocut|engraving|etching|lithograph|comic|manga|anime|"
            r"cartoon|cel[- ]shaded|matte painting|polaroid|tintype|daguerreotype|mural|fresco|"
            r"graffiti|poster|tarot card|ukiyo-e|line art|lineart|airbrush|embroidery|tapestry|painted|"
            r"character design)\b",
        ),
        (
            "style",
            r"\b(?:art nouveau|art deco|baroque|rococo|renaissance|impressionis[mt]|expressionis[mt]|"
            r"surreal\w*|cubis[mt]|minimalis[mt]|minimal|abstract|pop art|cyberpunk|steampunk|"
            r"dieselpunk|solarpunk|vaporwave|synthwave|retro\w*|vintage|gothic|noir|fantasy|sci-?fi|"
            r"science fiction|dystopian|utopian|ghibli|pixar|disney|dreamworks|lovecraftian|"
            r"psychedelic|ethereal|whimsical|kawaii|chibi|isometric|flat design|bauhaus|brutalis[mt]|"
            r"afrofuturis[mt]|pre-raphaelite|romanticism|realism|hyperrealism|hyper-?realistic|"
            r"photo-?realistic|ultra-?realistic|realistic|symbolism|cinematic|dramatic|moody|"
            r"atmospheric|dreamy|gritty|futuristic|medieval|horror|cute|kitsch|art brut|"
            r"film noir|epic|d ?& ?d|dnd|ornate)\b",
        ),
        (
            "color",
            r"\b(?:colou?rful|vibrant|monochrome|monochromatic|black and white|b&w|sepia|teal and orange|"
            r"muted|pastel colou?rs?|colou?r palette|palette|saturated|desaturated|duotone|neon colou?rs?|"
            r"warm tones|cool tones|\w+ colou?rs|colou?r scheme)\b",
        ),
    )
)

# Well-known modifiers used when no mined statistics exist (ranked roughly by how common they are).
_BUILTIN_TERMS = (
    "trending on artstation", "highly detailed", "concept art", "8k", "sharp focus", "digital painting",
    "intricate", "illustration", "octane render", "smooth", "elegant", "by greg rutkowski", "4k",
    "fantasy", "cinematic", "digital art", "by artgerm", "cinematic lighting", "unreal engine",
    "photorealistic", "volumetric lighting", "hyperrealistic", "matte painting", "by alphonse mucha",
    "masterpiece", "oil painting", "dramatic lighting", "studio lighting", "soft lighting",
    "vibrant colors", "watercolor", "pencil sketch", "anime style", "3d render", "by wlop",
    "by makoto shinkai", "studio ghibli", "art nouveau", "cyberpunk", "golden hour", "bokeh",
    "35mm photograph", "award winning photography", "depth of field", "ultra realistic", "dark fantasy",
    "pixel art", "low poly", "vector illustration", "colorful", "surreal", "isometric", "film grain",
)  # fmt: skip

_WEIGHT_RE = re.compile(r"\(([^():]*):\s*-?[\d.]+\s*\)")
_LORA_RE = re.compile(r"<[^<>]*>")
_BRACKETS_RE = re.compile(r"[()\[\]{}\"“”«»]")
_SPLIT_RE = re.compile(r"[,;|\n]+|\.\s+")
_DIGITS_RE = re.compile(r"\b(\d) (?=\d\b)")
_DIGIT_RE = re.compile(r"\d")
_LETTER_RE = re.compile(r"[^\W\d_]")
_UNIT_RE = re.compile(r"\b(\d+) (k|d|mm)\b")
_BY_RE = re.compile(r"\b(?:art by|by|in the style of)\s+(.+)$")
# "surrounded by wolves", "lit by candles": a passive participle before "by" names what acts, not an artist,
# unless it is a verb of making ("painted by", "inspired by")
_PARTICIPLE_RE = re.compile(
    r"\b(\w{3,}ed|lit|held|hung|bound|caught|kept|led|fed|overgrown|frozen|taken|eaten|driven|beaten|broken"
    r"|hidden|chosen|fallen|forgotten|stolen|shaken|swollen|torn|worn|thrown|seen|known|blown)\s*$"
)
_NOT_PARTICIPLE_WORDS = (
    "hundred sacred naked wicked rugged crooked beloved ragged kindred speed steed creed breed"
)
_MAKING_WORDS = (
    "painted drawn made created designed illustrated directed photographed sculpted rendered inspired "
    "influenced written produced animated engraved etched sketched inked styled crafted generated imagined "
    "modeled modelled textured colored coloured lettered edited composed printed carved woven sewn"
)
_NOT_AGENTS = frozenset(f"{_NOT_PARTICIPLE_WORDS} {_MAKING_WORDS}".split(" "))  # "painted by" names an artist
_NOT_A_NAME = re.compile(r"(?:the|a|an|his|her|its|their|my|our|night|day|moonlight|sunlight)\b")
_AND_RE = re.compile(r"\s+(?:and|&|with)\s+|\s*/\s*")
_LEADING_RE = re.compile(r"^(?:a|an|and|with|very)\s+")
_KNOWN_RE = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in _BUILTIN_TERMS if " " in t) + r")\b")
_GENERIC_WORDS = (
    "lighting light lights art style digital painted render artwork detail details shot camera lens "
    "trending inspired surrounded background colors colours color"
)
_GENERIC = frozenset(_GENERIC_WORDS.split(" "))
_EDGE = " .:;!?-_*'`~+=/\\#"


@dataclass(frozen=True)
class Modifier:
    """One mined modifier: normalized text, in how many library prompts it occurs, and its category."""

    text: str
    count: int
    category: str


def _clean_text(text: str) -> str:
    """Lower-case and drop A1111 weights, LoRA tags and brackets (whitespace is left for splitting)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    text = _LORA_RE.sub(" ", _WEIGHT_RE.sub(r"\1", text.lower()))
    return _BRACKETS_RE.sub(" ", text).replace("art station", "artstation")


def _finish(part: str) -> str:
    """Collapse spaces, join '8 k' to '8k' and '3 5 mm' to '35mm', trim punctuation and articles."""
    text = " ".join(part.split()).replace(" - ", "-")
    if _DIGIT_RE.search(text):
        text = _UNIT_RE.sub(r"\1\2", _DIGITS_RE.sub(r"\1", text))
    text = text.strip(_EDGE)
    if text.startswith(("a ", "an ", "and ", "with ", "very ")):
        text = _LEADING_RE.sub("", text)
    return text.strip(_EDGE)


def normalize_modifier(text: str) -> str:
    """Lower-case, drop A1111 weights/brackets/LoRA tags, join '8 k' to '8k' and collapse spaces."""
    return _finish(_clean_text(text))


def split_segments(prompt: str) -> list[str]:
    """The normalized comma/semicolon/pipe-separated phrases of a prompt, in order, empties dropped."""
    return [s for s in map(_finish, _SPLIT_RE.split(_clean_text(prompt))) if s]


def modifier_sized(phrase: str) -> bool:
    """Short enough to be a modifier (2-50 characters, at most six words); longer ones say what is shown."""
    return 2 <= len(phrase) <= _MAX_CHARS and phrase.count(" ") < _MAX_WORDS


def _acceptable(phrase: str) -> bool:
    """Short enough to be a modifier, containing a letter, and not a bare generic word like 'lighting'."""
    return modifier_sized(phrase) and phrase not in _GENERIC and _LETTER_RE.search(phrase) is not None


def classify_modifier(phrase: str, vocabulary: dict[str, str] | None = None) -> str:
    """Category of a normalized phrase: 'by X' is an artist, then built-in rules, then the vocabularies."""
    if _RULES[0][1].search(phrase):
        return "artist"
    if vocabulary and phrase in vocabulary and vocabulary[phrase] == "artist":
        return "artist"
    for category, rule in _RULES[1:]:
        if rule.search(phrase):
            return category
    if vocabulary:
        return vocabulary.get(phrase, "other")
    return "other"


def split_artists(segment: str) -> tuple[str, list[str]]:
    """Split '<head> by A and B' into the head and ['by a', 'by b']."""
    match = _BY_RE.search(segment)
    if not match or _NOT_A_NAME.match(match.group(1)):  # "by the sea", "lit by a lamp"
        return segment, []
    participle = _PARTICIPLE_RE.search(segment[: match.start()])
    if participle and participle.group(1) not in _NOT_AGENTS:  # "surrounded by wolves"
        return segment, []
    names = [n.strip(_EDGE) for n in _AND_RE.split(match.group(1))]
    head = segment[: match.start()].strip(_EDGE)
    return head, [f"by {n}" for n in names if n and n.count(" ") < 4 and any(c.isalpha() for c in n)]


def _phrases(prompt: str, vocabulary: dict[str, str] | None) -> Iterator[str]:
    """Candidate modifiers of one prompt; its first segment only when it is a recognizable modifier."""
    for i, segment in enumerate(split_segments(prompt)):
        head, artists = split_artists(segment)
        yield from artists
        if head and _acceptable(head) and (i > 0 or classify_modifier(head, vocabulary) != "other"):
            yield head
        for match in _KNOWN_RE.finditer(segment):
            if match.group(0) != head:
                yield match.group(0)


def _default_is_unsafe() -> Callable[[str], bool]:
    """The retrieval safety classifier's verdict, used to keep unsafe phrases out of the statistics."""
    from retrieval.safety import SafetyClassifier

    return SafetyClassifier().is_unsafe


def mine_modifiers(
    prompts: Iterable[str],
    *,
    min_count: int = 5,
    top: int = 2000,
    vocabulary_dir: Path | None = None,
    is_unsafe: Callable[[str], bool] | None = None,
) -> ModifierStats:
    """Count modifier phrases (once per prompt) and keep the `top` most frequent seen >= min_count times."""
    vocabulary = load_vocabulary(vocabulary_dir) if vocabulary_dir is not None else None
    counts: Counter[str] = Counter()
    seen = 0
    for prompt in prompts:
        if not isinstance(prompt, str) or not prompt:
            continue
        seen += 1
        counts.update(set(_phrases(prompt, vocabulary)))
    # "greg rutkowski" and "by greg rutkowski" are one modifier (known from the vocabulary or the library)
    vocab = vocabulary or {}
    for phrase in [p for p, n in counts.items() if n > 1 and not p.startswith("by ")]:
        paired = counts.get(f"by {phrase}", 0)
        if vocab.get(phrase) == "artist" or paired >= max(min_count, counts[phrase] // 4):
            counts[f"by {phrase}"] += counts.pop(phrase)
    unsafe = is_unsafe if is_unsafe is not None else _default_is_unsafe()
    kept: list[Modifier] = []
    for text, count in counts.most_common():
        if count < min_count or len(kept) >= top:
            break
        if unsafe(text):
            continue
        kept.append(Modifier(text, count, classify_modifier(text, vocabulary)))
    logger.info("mined %d modifiers from %d prompts (%d distinct phrases)", len(kept), seen, len(counts))
    return ModifierStats(kept, prompts_seen=seen)


class ModifierStats:
    """Mined modifiers by library frequency; finds the strongest ones inside retrieved prompts."""

    def __init__(self, modifiers: Iterable[Modifier], prompts_seen: int = 0) -> None:
        """Index the modifiers by text (most frequent first)."""
        ordered = sorted(modifiers, key=lambda m: (-m.count, m.text))
        self.modifiers: tuple[Modifier, ...] = tuple(ordered)
        self.prompts_seen = prompts_seen
        self._by_text = {m.text: m for m in ordered}
        self._max_words = max((m.text.count(" ") + 1 for m in ordered), default=1)

    @classmethod
    def builtin(cls) -> ModifierStats:
        """A small built-in table of well-known modifiers for when nothing was mined."""
        n = len(_BUILTIN_TERMS)
        return cls(Modifier(t, 10 * (n - i), classify_modifier(t)) for i, t in enumerate(_BUILTIN_TERMS))

    def __len__(self) -> int:
        """Number of modifiers."""
        return len(self.modifiers)

    def __contains__(self, text: object) -> bool:
        """Whether a (normalized) phrase is a known modifier."""
        return isinstance(text, str) and normalize_modifier(text) in self._by_text

    def get(self, text: str) -> Modifier | None:
        """The modifier for a phrase, or None."""
        return self._by_text.get(normalize_modifier(text))

    def category(self, text: str) -> str:
        """Category of a phrase: the mined one, else the built-in rules."""
        phrase = normalize_modifier(text)
        known = self._by_text.get(phrase)
        return known.category if known else classify_modifier(phrase)

    def top(self, category: str | None = None, k: int = 10) -> list[Modifier]:
        """The k most frequent modifiers, optionally of one category."""
        return [m for m in self.modifiers if category is None or m.category == category][:k]

    def modifiers_in(self, prompt: str, *, include_subject: bool = False) -> list[Modifier]:
        """Known modifiers of a prompt in order; words inside its first phrase (its subject) only if asked."""
        found: dict[str, Modifier] = {}
        for i, segment in enumerate(split_segments(prompt)):
            head, artists = split_artists(segment)
            deep = i > 0 or include_subject
            for piece in [*artists, head] if head else artists:
                known = self._by_text.get(piece) or self._by_text.get(f"by {piece}")
                if known is not None and (deep or known.category != "other"):
                    found.setdefault(known.text, known)
                    continue
                for gram in _ngrams(piece, self._max_words) if deep else ():
                    hit = self._by_text.get(gram)
                    if hit is not None and hit.category != "other":
                        found.setdefault(gram, hit)
        return list(found.values())

    def strongest_in(
        self, hit_prompts: Sequence[str], k: int = 8, *, include_subject: bool = False
    ) -> list[Modifier]:
        """The modifiers appearing in the hits, ranked by library frequency (ties: first appearance)."""
        seen: dict[str, Modifier] = {}
        for prompt in hit_prompts:
            for modifier in self.modifiers_in(prompt, include_subject=include_subject):
                seen.setdefault(modifier.text, modifier)
        ranked = sorted(seen.values(), key=lambda m: -m.count)  # stable: keeps appearance order on ties
        return ranked[:k]

    def save(self, path: Path) -> None:
        """Write the statistics as JSON (atomically, via a temporary file)."""
        payload = {
            "version": _FORMAT_VERSION,
            "prompts_seen": self.prompts_seen,
            "modifiers": [[m.text, m.count, m.category] for m in self.modifiers],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ModifierStats:
        """Read statistics written by save(); ValueError when the file is not such a file."""
        try:
            payload: Any = json.loads(path.read_text(encoding="utf-8"))
            if payload.get("version") != _FORMAT_VERSION:
                raise ValueError(f"unsupported version {payload.get('version')!r}")
            rows = [Modifier(str(t), int(c), str(cat)) for t, c, cat in payload["modifiers"]]
            return cls(rows, prompts_seen=int(payload.get("prompts_seen", 0)))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"cannot read modifier statistics from {path}: {exc}") from exc


def _ngrams(phrase: str, max_words: int) -> Iterator[str]:
    """Every run of 1..max_words words of a phrase, longest first."""
    words = phrase.split()
    for size in range(min(max_words, len(words) - 1), 0, -1):
        for start in range(len(words) - size + 1):
            yield " ".join(words[start : start + size])


# Shared vocabularies (the shared data layout, ../shared/data): list-name prefix → category, first match wins.
_VOCAB_TABLE = (
    "artists/=artist jumbo/medium/photography/lighting=lighting parrotzone/tags/light=lighting "
    "jumbo/medium/photography/resolution=quality jumbo/medium/photography/=camera "
    "parrotzone/tags/photography=camera parrotzone/tags/perspective=camera jumbo/medium/=medium "
    "parrotzone/tags/medium=medium jumbo/style/=style parrotzone/tags/style=style "
    "parrotzone/tags/aesthetic=style parrotzone/tags/art-movement=style parrotzone/tags/mood=style "
    "jumbo/aesthetics/colours=color parrotzone/tags/color=color parrotzone/tags/quality=quality"
)
_VOCAB_LISTS = [tuple(pair.split("=")) for pair in _VOCAB_TABLE.split(" ")]
_CLIP_LISTS = {"artists": "artist", "mediums": "medium", "movements": "style"}
_KREA_LISTS = {"art/art movements": "style", "art/art styles": "artist", "digital-art/3D": "medium"}


def load_vocabulary(directory: Path) -> dict[str, str]:
    """Phrase → category from the shared modifier vocabularies in `directory` (missing files are skipped)."""
    vocabulary: dict[str, str] = {}

    def add(terms: Iterable[Any], category: str) -> None:
        """Record each term's category unless an earlier list claimed it."""
        for term in terms:
            phrase = normalize_modifier(str(term))
            if phrase and (category != "color" or " " in phrase):  # bare "blue" or "snow" is no modifier
                vocabulary.setdefault(phrase, category)

    clip = _read_json(directory / "modifiers_clip_interrogator.json.gz")
    for name, category in _CLIP_LISTS.items():
        add(clip.get("lists", {}).get(name, ()), category)
    dynamic = _read_json(directory / "modifiers_sd_dynamic_prompts.json.gz").get("lists", {})
    for prefix, category in _VOCAB_LISTS:
        for name, terms in dynamic.items():
            if name.startswith(prefix):
                add(terms, category)
    krea = _read_json(directory / "modifiers_krea_open_prompts.json").get("modifiers", {})
    for name, category in _KREA_LISTS.items():
        add(krea.get(name, ()), category)
    sites = directory / "modifiers_lexica_trending_sites.txt"
    if sites.is_file():
        add((f"trending on {s}" for s in sites.read_text(encoding="utf-8").split("\n") if s.strip()), "site")
    logger.info("loaded %d vocabulary phrases from %s", len(vocabulary), directory)
    return vocabulary


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a (possibly gzipped) file, or {} when the file is missing or unreadable."""
    if not path.is_file():
        return {}
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        logger.warning("skipping vocabulary %s: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}
