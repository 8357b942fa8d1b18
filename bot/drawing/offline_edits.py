"""Offline stand-ins of the image services, drawn with Pillow and labelled: no image model is called.

Upscale is a Lanczos resize (4×, the fast upscaler's factor, within its limits), background removal
makes the picture's own background transparent (the smooth region reached from the edges: the offline
preview's gradient, or the paper of a sketch), recolor tints the picture, search and replace and erase
mark the spot with a note, outpaint mirror-pads the picture to the new frame, and sketch and style draw
an offline preview over the person's picture.
"""

from __future__ import annotations

import io
import re
from collections import deque
from typing import TYPE_CHECKING

from bot.drawing.image_bodies import nearest_stability_ratio
from bot.drawing.image_services import SERVICES, prepared
from bot.drawing.offline_images import _font, preview_size, render_preview
from bot.engine.ports import EditRequest, GeneratedImage

if TYPE_CHECKING:
    from PIL import Image

UPSCALE_FACTOR = 4
TAG = "OFFLINE {what} - no image model was called"
EDGE_STEP = 14  # colour step between neighbours (0-255, per channel) that still counts as background
KEY_SIDE = 160  # background removal works on a copy this big, then scales the mask up
FAST_PNG = 1  # zlib level of the stand-in's PNGs: a 4× upscale is ~9 megapixels
COLOURS = {
    "red": (220, 40, 40),
    "orange": (240, 140, 30),
    "yellow": (240, 210, 40),
    "green": (50, 170, 70),
    "blue": (40, 90, 220),
    "purple": (140, 60, 200),
    "pink": (240, 110, 180),
    "brown": (130, 80, 40),
    "black": (25, 25, 25),
    "white": (245, 245, 245),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "gold": (212, 175, 55),
    "golden": (212, 175, 55),
    "silver": (190, 190, 200),
    "teal": (30, 150, 150),
}
_SERVICE = {service.operation: service for service in reversed(SERVICES)}  # the first service per operation
_LABELS = {
    "upscale": "UPSCALE 4x",
    "remove_background": "CUT-OUT",
    "search_replace": "SEARCH AND REPLACE",
    "recolor": "RECOLOR",
    "erase": "ERASE",
    "outpaint": "OUTPAINT",
    "sketch": "SKETCH",
    "style": "STYLE GUIDE",
}


class OfflineImageEditor:
    """ImageEditor that edits with Pillow, within the same limits as the Bedrock services."""

    @property
    def is_offline(self) -> bool:
        """Always True: the output is labelled as an offline preview."""
        return True

    def model_for(self, operation: str) -> str | None:
        """'offline' for every operation it knows."""
        return "offline" if operation in _LABELS else None

    def edit(self, request: EditRequest) -> GeneratedImage:
        """The edited picture as PNG, with a small yellow 'OFFLINE …' tag in a corner."""
        from PIL import Image

        picture = prepared(_SERVICE[request.operation], request.image)
        with Image.open(io.BytesIO(picture.data)) as opened:
            opened.load()
            source = opened.convert("RGBA")
        edited = _EDITS[request.operation](source, request)
        tagged = _tag(edited, _LABELS[request.operation])
        out = io.BytesIO()
        tagged.save(out, format="PNG", compress_level=FAST_PNG)
        return GeneratedImage(out.getvalue(), request.seed, "offline", tagged.width, tagged.height)


def _upscale(image: Image.Image, request: EditRequest) -> Image.Image:
    """A 4× Lanczos resize."""
    from PIL import Image as PILImage

    size = (image.width * UPSCALE_FACTOR, image.height * UPSCALE_FACTOR)
    return image.resize(size, PILImage.Resampling.LANCZOS)


def background_mask(image: Image.Image) -> Image.Image:
    """'L' mask, 255 where the picture's own background is: smooth colour reached from the edges.

    The banner at the top edge of an offline preview is not background: the search starts on the left,
    right and bottom edges below the top fifth, and a sharp colour step ends it.
    """
    from PIL import Image as PILImage
    from PIL import ImageFilter

    scale = KEY_SIDE / max(image.size)
    small = image.convert("RGB").resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), PILImage.Resampling.BOX
    )
    width, height = small.size
    data = small.load()
    assert data is not None
    seen = bytearray(width * height)
    queue: deque[tuple[int, int]] = deque()
    starts = [(0, y) for y in range(height // 5, height)] + [
        (width - 1, y) for y in range(height // 5, height)
    ]
    starts += [(x, height - 1) for x in range(width)]
    for x, y in starts:
        if not seen[y * width + x]:
            seen[y * width + x] = 1
            queue.append((x, y))
    while queue:
        x, y = queue.popleft()
        here = data[x, y]
        for nx, ny in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            if 0 <= nx < width and 0 <= ny < height and not seen[ny * width + nx]:
                there = data[nx, ny]
                if max(abs(a - b) for a, b in zip(here, there, strict=False)) <= EDGE_STEP:  # type: ignore[arg-type]
                    seen[ny * width + nx] = 1
                    queue.append((nx, ny))
    mask = PILImage.frombytes("L", (width, height), bytes(255 if v else 0 for v in seen))
    # grown by a pixel on the small copy (no fringe of background colour), softened by the upscale
    return mask.filter(ImageFilter.MaxFilter(3)).resize(image.size, PILImage.Resampling.BILINEAR)


def _cut_out(image: Image.Image, request: EditRequest) -> Image.Image:
    """The picture with its own background transparent."""
    from PIL import ImageChops

    alpha = ImageChops.invert(background_mask(image))
    cut = image.copy()
    cut.putalpha(ImageChops.multiply(alpha, image.getchannel("A")))
    return cut


def colour_of(text: str) -> tuple[int, int, int] | None:
    """The first colour word in a text, as RGB."""
    for word in re.findall(r"[a-z]+", text.lower()):
        if word in COLOURS:
            return COLOURS[word]
    return None


def _recolor(image: Image.Image, request: EditRequest) -> Image.Image:
    """The picture tinted toward the colour the prompt names, with a note of what was recoloured."""
    from PIL import Image as PILImage

    colour = colour_of(request.prompt) or (200, 60, 160)
    tint = PILImage.new("RGBA", image.size, (*colour, 255))
    tinted = PILImage.blend(image, tint, 0.35)
    tinted.putalpha(image.getchannel("A"))
    return _note(tinted, f"{request.target or 'it'} -> {request.prompt}")


def _replace(image: Image.Image, request: EditRequest) -> Image.Image:
    """The picture with a note: what was found and what replaced it."""
    return _note(image, f"{request.target} -> {request.prompt}")


def _erase(image: Image.Image, request: EditRequest) -> Image.Image:
    """The picture softly blurred where the note says what was erased."""
    from PIL import ImageFilter

    return _note(image.filter(ImageFilter.GaussianBlur(2)), f"erased: {request.target or 'the marked area'}")


def _outpaint(image: Image.Image, request: EditRequest) -> Image.Image:
    """The picture mirror-padded by (left, right, up, down) pixels."""
    import numpy as np
    from PIL import Image as PILImage

    left, right, up, down = (max(0, int(v)) for v in request.expand)
    array = np.asarray(image)
    padded = np.pad(array, ((up, down), (left, right), (0, 0)), mode="symmetric")
    return PILImage.fromarray(padded, "RGBA")


def _sketch(image: Image.Image, request: EditRequest) -> Image.Image:
    """An offline preview of the prompt drawn over the person's sketch, in the sketch's frame."""
    from PIL import Image as PILImage

    width, height = preview_size(nearest_stability_ratio(f"{image.width}:{image.height}"))
    keep = 0.35 + 0.5 * (0.7 if request.strength is None else min(1.0, max(0.0, request.strength)))
    data = render_preview(request.prompt, request.seed, width, height, _png(image), keep)
    with PILImage.open(io.BytesIO(data)) as drawn:
        return drawn.convert("RGBA")


def _style(image: Image.Image, request: EditRequest) -> Image.Image:
    """An offline preview of the prompt over the style picture's colours, in the asked frame."""
    from PIL import Image as PILImage
    from PIL import ImageFilter

    width, height = preview_size(request.aspect_ratio or "1:1")
    colours = image.convert("RGB").resize((8, 8)).filter(ImageFilter.GaussianBlur(2))
    data = render_preview(request.prompt, request.seed, width, height, _png(colours), 0.6)
    with PILImage.open(io.BytesIO(data)) as drawn:
        return drawn.convert("RGBA")


_EDITS = {
    "upscale": _upscale,
    "remove_background": _cut_out,
    "search_replace": _replace,
    "recolor": _recolor,
    "erase": _erase,
    "outpaint": _outpaint,
    "sketch": _sketch,
    "style": _style,
}


def _png(image: Image.Image) -> bytes:
    """PNG bytes of an image."""
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _note(image: Image.Image, text: str) -> Image.Image:
    """A dark rounded note with one line of text in the middle of the picture."""
    from PIL import ImageDraw

    noted = image.copy()
    draw = ImageDraw.Draw(noted)
    font = _font(max(12, min(noted.width, noted.height) // 24))
    line = " ".join(text.split())[:80]
    width = int(draw.textlength(line, font=font)) + 24
    box_h = max(24, min(noted.width, noted.height) // 12)
    left, top = max(0, (noted.width - width) // 2), (noted.height - box_h) // 2
    draw.rounded_rectangle((left, top, left + width, top + box_h), radius=8, fill=(15, 15, 20, 220))
    draw.text((left + 12, top + box_h // 2), line, font=font, fill=(245, 245, 245, 255), anchor="lm")
    return noted


def _tag(image: Image.Image, what: str) -> Image.Image:
    """A small yellow 'OFFLINE <what>' tag in the bottom-left corner."""
    from PIL import ImageDraw

    tagged = image.copy()
    draw = ImageDraw.Draw(tagged)
    font = _font(max(10, min(tagged.width, tagged.height) // 40))
    text = TAG.format(what=what)
    height = int(font.getbbox("Ag")[3]) + 8
    width = min(tagged.width, int(draw.textlength(text, font=font)) + 12)
    draw.rectangle((0, tagged.height - height, width, tagged.height), fill=(250, 204, 21, 255))
    draw.text((6, tagged.height - height // 2), text, font=font, fill=(20, 20, 20, 255), anchor="lm")
    return tagged
