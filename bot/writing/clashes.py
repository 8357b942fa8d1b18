"""When two prompt phrases contradict each other: one medium family, one era, one time of day, one palette.

One definition, used by the offline composer (to skip a borrowed phrase) and by `imagine-bot eval prompts`
(to count conflicting pairs in any composed prompt, Claude's too). A phrase has *facets*, one value per
axis, read from its words:

* medium family: photo, paint, drawing, 3d, cartoon, pixel, vector, craft, sculpture, or generic art
  ("illustration", "concept art"); two families clash unless they are listed as compatible (a cartoon can
  be painted or 3d, a photograph can show clay or a sculpture, but a photograph is not a painting);
* realism: "photorealistic", "realistic" clash with a cartoon, pixel, vector or print family, and with
  painterly movements (impressionism, expressionism, abstraction, cubism);
* era: prehistoric ... 1990s, future (futuristic, cyberpunk, sci-fi), steampunk; "retro" and "vintage"
  are any past era. Two different eras clash (steampunk goes with victorian);
* time of day, palette (black and white vs vibrant colors), detail (minimal vs intricate) and mood
  (cute vs horror): different values clash, except the neighbours listed below.

An artist ("by X") clashes with a photo medium unless X is a known photographer or two library prompts
name X together with a photo medium (library prompts are often contradictory, so one is no evidence):
"by annie leibovitz" goes with "photograph", "by hieronymus bosch" does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

__all__ = ["Clash", "clash", "conflicting_pairs", "facets", "idea_clash"]

Facet = tuple[str, str]

_MEDIUM = (
    ("photo", r"photo(?:graph(?:y|s|ic)?|s)?|dslr|polaroid|\d\d ?mm|film still|movie still|kodak|portra|"
     r"cinestill|canon eos|nikon|leica|hasselblad|fujifilm|analog film|tintype|daguerreotype|headshot"),
    ("paint", r"painting|painted|oil on canvas|oils?|acrylics?|watercolou?rs?|gouache|tempera|fresco|mural|"
     r"impasto"),
    ("drawing", r"drawing|drawn|pencil|sketch(?:ed|y)?|charcoal|ink|line ?art|crayons?|doodle|engraving|"
     r"etching|woodcut|linocut|lithograph"),
    ("3d", r"3d|cgi|octane(?: render)?|unreal engine|blender|cinema ?4d|redshift|vray|low[- ]?poly|voxel|"
     r"3d render|render(?:ed|ing)?"),
    ("cartoon", r"cartoons?|cartoony|cartoonish|anime|manga|comics?|comic book|cel[- ]shaded|chibi|pixar|"
     r"disney|dreamworks|ghibli|animated|animation"),
    ("pixel", r"pixel ?art|pixelated|8-bit|16-bit"),
    ("vector", r"vector|flat design|flat illustration|logo|icon|emoji|sticker"),
    ("craft", r"clay|claymation|plasticine|origami|papercraft|paper cut|lego|embroidery|knitted|felt|"
     r"stained glass|mosaic|tapestry"),
    ("sculpture", r"sculpture|statue|marble bust|bronze bust"),
    ("print", r"prints?|woodblock(?: print)?|screen ?print|pop art|poster(?: art)?|propaganda poster|"
     r"tarot card|paperback cover|book cover|postcard|stamp|ukiyo-e"),
    ("generic", r"illustration|illustrated|digital art|concept art|artwork|storybook"),
)  # fmt: skip
_COMPATIBLE_MEDIA = (
    "paint-drawing paint-cartoon paint-generic drawing-cartoon drawing-vector drawing-generic "
    "3d-cartoon 3d-craft 3d-sculpture 3d-generic cartoon-vector cartoon-pixel cartoon-generic "
    "pixel-generic vector-generic craft-photo craft-generic sculpture-photo sculpture-generic "
    "print-paint print-drawing print-cartoon print-vector print-generic"
)
_REALISM = r"photo-?realis\w*|hyper-?realis\w*|ultra-?realis\w*|realistic|realism|lifelike"
_PAINTERLY = r"impressionis[mt]\w*|expressionis[mt]\w*|abstract|cubis[mt]\w*|fauvis[mt]\w*|pointillis[mt]\w*"
_STYLIZED = frozenset({"cartoon", "pixel", "vector", "print"})
_ERA = (
    ("prehistoric", r"prehistoric|stone age|cavem[ae]n"),
    ("ancient", r"ancient|antiquity|roman empire|ancient egypt\w*"),
    ("medieval", r"medieval|middle ages"),
    ("renaissance", r"renaissance"),
    ("baroque", r"baroque|rococo"),
    ("victorian", r"victorian|edwardian|1800s|19th century"),
    ("1900s", r"art nouveau|belle [eé]poque|1900s"),
    ("1920s", r"1920s|20s|art deco|roaring twenties|jazz age"),
    ("1940s", r"1930s|1940s|30s|40s|film noir|world war ii|ww2"),
    ("1950s", r"1950s|50s|mid-?century"),
    ("1960s", r"1960s|60s"),
    ("1970s", r"1970s|70s|disco"),
    ("1980s", r"1980s|80s|synthwave|outrun|retrowave"),
    ("1990s", r"1990s|90s|y2k"),
    ("future", r"futuristic|cyberpunk|sci-?fi|science fiction|space age|far future|year 3000|solarpunk"),
    ("steampunk", r"steampunk|dieselpunk"),
    ("past", r"retro|vintage|old-fashioned|antique"),
)
_COMPATIBLE_ERAS = frozenset({frozenset({"steampunk", "victorian"})})
_TIME = (
    ("day", r"daylight|daytime|midday|noon|sunny day|broad daylight"),
    ("morning", r"morning|sunrise|dawn"),
    ("evening", r"golden hour|sunset|dusk"),
    ("twilight", r"blue hour|twilight"),
    ("night", r"night|nighttime|midnight|moonlight|moonlit|starry night|night sky"),
)
_TIME_NEIGHBOURS = ("day-morning", "morning-evening", "evening-twilight", "twilight-night")
_COMPATIBLE_TIMES = frozenset(frozenset(pair.split("-")) for pair in _TIME_NEIGHBOURS)
_PALETTE = (
    ("mono", r"black and white|b&w|monochrome|monochromatic|grayscale|greyscale|sepia"),
    ("colour", r"colou?rful|vibrant|saturated|rainbow|neon colou?rs?|technicolou?r|multicolou?red"),
)
_DETAIL = (
    ("minimal", r"minimal|minimalist|minimalism|simplistic|simple shapes"),
    ("intricate", r"intricate|highly detailed|hyper-?detailed|ultra detailed|extremely detailed|"
     r"insanely detailed|ornate|maximalis\w*"),
)  # fmt: skip
_MOOD = (
    ("cute", r"cute|kawaii|adorable|cheerful"),
    ("dark", r"horror|creepy|scary|terrifying|gory|macabre|sinister|eldritch|nightmarish"),
)


def _compile(table: Sequence[tuple[str, str]]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Each value's words as one case-insensitive, word-bounded pattern."""
    return tuple((value, re.compile(rf"(?<![\w-])(?:{words})(?![\w-])", re.I)) for value, words in table)


_AXES: tuple[tuple[str, tuple[tuple[str, re.Pattern[str]], ...]], ...] = (
    ("medium", _compile(_MEDIUM)),
    ("era", _compile(_ERA)),
    ("time", _compile(_TIME)),
    ("palette", _compile(_PALETTE)),
    ("detail", _compile(_DETAIL)),
    ("mood", _compile(_MOOD)),
)
_REALISM_RE = re.compile(rf"(?<![\w-])(?:{_REALISM})(?![\w-])", re.I)
_PAINTERLY_RE = re.compile(rf"(?<![\w-])(?:{_PAINTERLY})(?![\w-])", re.I)
_MEDIA_PAIRS = frozenset(frozenset(pair.split("-")) for pair in _COMPATIBLE_MEDIA.split())
_ARTIST_RE = re.compile(r"^(?:by|art by|in the style of)\s+\S", re.I)


@dataclass(frozen=True)
class Clash:
    """Two phrases that contradict each other, and why."""

    first: str
    second: str
    reason: str


def facets(text: str) -> frozenset[Facet]:
    """The (axis, value) facets named by a phrase or an idea."""
    found: set[Facet] = set()
    for axis, values in _AXES:
        for value, pattern in values:
            if pattern.search(text):
                found.add((axis, value))
    if _REALISM_RE.search(text):
        found.add(("realism", "real"))
    if _PAINTERLY_RE.search(text):
        found.add(("realism", "painterly"))
    return frozenset(found)


def _values_clash(axis: str, a: str, b: str) -> bool:
    """Whether two values of one axis contradict each other."""
    if a == b:
        return False
    pair = frozenset({a, b})
    if axis == "medium":
        return pair not in _MEDIA_PAIRS
    if axis == "era":
        return pair not in _COMPATIBLE_ERAS and not ("past" in pair and "future" not in pair)
    if axis == "time":
        return pair not in _COMPATIBLE_TIMES
    return True


def _facet_clash(left: frozenset[Facet], right: frozenset[Facet]) -> str | None:
    """The first contradiction between two facet sets, described, or None."""
    for axis_a, a in sorted(left):
        for axis_b, b in sorted(right):
            if axis_a == axis_b and axis_a != "realism" and _values_clash(axis_a, a, b):
                return f"{axis_a}: {a} vs {b}"
    for real, other in ((left, right), (right, left)):
        if ("realism", "real") in real and any(ax == "medium" and v in _STYLIZED for ax, v in other):
            return "realism: realistic vs stylized"
        if ("realism", "real") in real and ("realism", "painterly") in other:
            return "realism: realistic vs painterly (impressionism, abstraction)"
    return None


_PHOTOGRAPHERS = re.compile(
    r"\b(?:annie leibovitz|steve mccurry|ansel adams|cartier-bresson|peter lindbergh|richard avedon|"
    r"helmut newton|irving penn|david lachapelle|gregory crewdson|vivian maier|dorothea lange|diane arbus|"
    r"salgado|martin parr|cindy sherman|tim walker|nan goldin|alec soth|slim aarons|robert capa|"
    r"william eggleston|stephen shore|saul leiter|fan ho|daido moriyama|terry richardson|mario testino)\b",
    re.I,
)


def _photographer(artist: str, hits: Iterable[str]) -> bool:
    """A known photographer, or an artist that two library prompts name along with a photo medium."""
    if _PHOTOGRAPHERS.search(artist):
        return True
    name = artist.lower()
    texts = [h.lower() for h in hits]
    return sum(name in text and ("medium", "photo") in facets(text) for text in texts) >= 2


def clash(a: str, b: str, hits: Iterable[str] = ()) -> str | None:
    """Why two phrases contradict each other, or None when they can stand in one prompt."""
    hits = list(hits)
    reason = _facet_clash(facets(a), facets(b))
    if reason is not None:
        return reason
    for artist, other in ((a, b), (b, a)):
        photo = _ARTIST_RE.match(artist.strip()) and ("medium", "photo") in facets(other)
        if photo and not _photographer(artist.strip(), hits):
            return "an artist's style vs a photograph"
    return None


def idea_clash(phrase: str, idea: str, hits: Iterable[str] = ()) -> str | None:
    """Why a phrase contradicts the idea (or the user's style), or None."""
    reason = _facet_clash(facets(phrase), facets(idea))
    if reason is not None:
        return reason
    photo = _ARTIST_RE.match(phrase.strip()) and ("medium", "photo") in facets(idea)
    if photo and not _photographer(phrase.strip(), hits):
        return "an artist's style vs a photograph"
    return None


def conflicting_pairs(phrases: Sequence[str], hits: Iterable[str] = ()) -> list[Clash]:
    """Every pair of phrases that contradict each other."""
    evidence = list(hits)
    found = []
    for a, b in combinations(phrases, 2):
        reason = clash(a, b, evidence)
        if reason is not None:
            found.append(Clash(a, b, reason))
    return found
