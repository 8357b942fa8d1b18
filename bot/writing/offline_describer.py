"""Offline stand-in of the vision model: a prompt from the picture's name or caption and its colours."""

from __future__ import annotations

import io
import re

from bot.drawing.offline_edits import COLOURS
from bot.engine.ports import PictureDescription
from bot.writing.prompt_template import clean_line

NAMED = {name: rgb for name, rgb in COLOURS.items() if name not in ("grey", "golden")}  # one name each
_NOISE = re.compile(r"\b(?:img|image|dsc|pxl|screenshot|photo|pic|picture|scan|copy|final|\d+)\b", re.I)
_EXTENSION = re.compile(r"\.(?:png|jpe?g|webp|gif)$", re.I)


class OfflineDescriber:
    """PictureDescriber without a model: clearly a stand-in (the turn says so), deterministic."""

    @property
    def model_id(self) -> str:
        """Always 'offline'."""
        return "offline"

    def describe(self, image: bytes, mime_type: str, hint: str = "") -> PictureDescription:
        """'<what the caption or file name says>, a <sketch|picture> in <two colours> tones'."""
        colours, sketch = _look(image)
        subject = _subject(hint) or "an image"
        kind = "pencil sketch" if sketch else "picture"
        tones = " and ".join(colours) if colours else "muted"
        return PictureDescription(f"{subject}, {kind}, {tones} tones", self.model_id, is_offline=True)


def _subject(hint: str) -> str:
    """The words of a caption or file name, without extensions, camera names and numbers."""
    words = _EXTENSION.sub("", clean_line(hint))
    words = re.sub(r"[_\-]+", " ", words)
    return " ".join(_NOISE.sub(" ", words).split())[:200]


def _look(data: bytes) -> tuple[list[str], bool]:
    """The picture's two main colour names, and whether it looks like a sketch (pale and colourless)."""
    from PIL import Image, ImageStat, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            small = opened.convert("RGB").resize((32, 32))
    except (UnidentifiedImageError, OSError, ValueError):
        return [], False
    counts: dict[str, int] = {}
    raw = small.tobytes()
    for pixel in (tuple(raw[i : i + 3]) for i in range(0, len(raw), 3)):
        name = min(NAMED, key=lambda n: sum((a - b) ** 2 for a, b in zip(pixel, NAMED[n], strict=True)))
        counts[name] = counts.get(name, 0) + 1
    ranked = sorted(counts, key=lambda name: -counts[name])[:2]
    saturation = ImageStat.Stat(small.convert("HSV").getchannel("S")).mean[0]
    brightness = ImageStat.Stat(small.convert("L")).mean[0]
    return ranked, saturation < 40 and brightness > 150
