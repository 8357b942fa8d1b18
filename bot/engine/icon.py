"""The avatar's icon: the winner's picture brought to icon size and squared on a transparent canvas."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

ICON_MIN = 1024  # an icon is a square PNG at least this big ...
ICON_MAX = 2000  # ... and at most this (Slack's largest app and workspace icon)


def icon_side(width: int, height: int) -> int:
    """The side of the square icon for a picture of this size."""
    return max(ICON_MIN, min(ICON_MAX, max(width, height)))


def fit_for_icon(data: bytes) -> bytes:
    """The picture scaled (Lanczos) so its long side is the icon's side, as PNG (alpha kept)."""
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as image:
        image.load()
        side = icon_side(image.width, image.height)
        scale = side / max(image.width, image.height)
        mode = "RGBA" if image.mode in ("RGBA", "LA", "PA", "P") else "RGB"
        fitted = image.convert(mode)
        if scale != 1:
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            fitted = fitted.resize(size, PILImage.Resampling.LANCZOS)
    return _png(fitted)


def square_icon(data: bytes) -> bytes:
    """The picture centred on a transparent square canvas of the icon's side, as RGBA PNG."""
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as image:
        picture = image.convert("RGBA")
    side = icon_side(picture.width, picture.height)
    if max(picture.size) != side:
        scale = side / max(picture.size)
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, PILImage.Resampling.LANCZOS)
    canvas = PILImage.new("RGBA", (side, side), (0, 0, 0, 0))
    canvas.alpha_composite(picture, ((side - picture.width) // 2, (side - picture.height) // 2))
    return _png(canvas)


def _png(image: Image.Image) -> bytes:
    """PNG bytes of a Pillow image."""
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
