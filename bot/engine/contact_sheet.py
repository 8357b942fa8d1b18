"""Contact sheet: candidate images in a grid of big numbered tiles, for voting with 1..N."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import TypeAlias

    from PIL import Image, ImageDraw, ImageFont

    _Font: TypeAlias = ImageFont.FreeTypeFont | ImageFont.ImageFont

BACKGROUND = (24, 24, 28)
LETTERBOX = (10, 10, 12)
BADGE = (250, 204, 21)
BADGE_INK = (20, 20, 20)
LABEL_BAR = (0, 0, 0, 170)
LABEL_INK = (245, 245, 245, 255)
CHECKER_LIGHT = (204, 204, 204)
CHECKER_DARK = (153, 153, 153)


def sheet_gap(tile: int) -> int:
    """Space between tiles and around the grid, in pixels."""
    return max(4, tile // 48)


def sheet_layout(count: int, columns: int | None = None) -> tuple[int, int]:
    """(columns, rows) of a sheet of `count` tiles: about square unless `columns` is given."""
    if count < 1:
        raise ValueError("a contact sheet needs at least one image")
    cols = columns if columns is not None else math.ceil(math.sqrt(count))
    cols = max(1, min(cols, count))
    return cols, math.ceil(count / cols)


def contact_sheet(
    images: Sequence[bytes],
    labels: Sequence[str] | None = None,
    columns: int | None = None,
    tile: int = 384,
    *,
    numbered: bool = True,
) -> bytes:
    """PNG grid of `images` letterboxed into square tiles numbered 1..N (optional one-line labels).

    Transparent pictures (a cut-out, an icon) show their transparency on a grey checkerboard.
    """
    from PIL import Image, ImageDraw

    if labels is not None and len(labels) != len(images):
        raise ValueError(f"got {len(labels)} labels for {len(images)} images")
    if tile < 64:
        raise ValueError(f"tile must be at least 64 px, got {tile}")
    cols, rows = sheet_layout(len(images), columns)
    gap = sheet_gap(tile)
    size = (cols * tile + (cols + 1) * gap, rows * tile + (rows + 1) * gap)
    sheet = Image.new("RGB", size, BACKGROUND)
    number_font = _font(tile // 6)
    label_font = _font(max(11, tile // 22))
    for index, data in enumerate(images):
        cell = _tile(data, index, tile).convert("RGBA")
        overlay = Image.new("RGBA", cell.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)
        bar = 0
        if labels is not None and labels[index].strip():
            bar = _label(draw, labels[index], tile, label_font)
        if numbered:
            _badge(draw, str(index + 1), tile, number_font, bar)
        cell.alpha_composite(overlay)
        row, col = divmod(index, cols)
        sheet.paste(cell.convert("RGB"), (gap + col * (tile + gap), gap + row * (tile + gap)))
    out = io.BytesIO()
    sheet.save(out, format="PNG")
    return out.getvalue()


def _tile(data: bytes, index: int, tile: int) -> Image.Image:
    """One image scaled to fit a square tile, centred on a dark letterbox."""
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as source:
            transparent = source.mode in ("RGBA", "LA", "PA") or "transparency" in source.info
            picture = source.convert("RGBA" if transparent else "RGB")
            fitted = ImageOps.contain(picture, (tile, tile), Image.Resampling.LANCZOS)
    except (OSError, ValueError) as exc:
        raise ValueError(f"image {index + 1} of the contact sheet is not a readable image") from exc
    if transparent:  # what is see-through shows as a checkerboard, as image editors draw it
        board = checkerboard(fitted.size, max(8, tile // 24))
        board.alpha_composite(fitted)
        fitted = board.convert("RGB")
    cell = Image.new("RGB", (tile, tile), LETTERBOX)
    cell.paste(fitted, ((tile - fitted.width) // 2, (tile - fitted.height) // 2))
    return cell


def checkerboard(size: tuple[int, int], square: int) -> Image.Image:
    """An RGBA checkerboard of light and mid grey squares."""
    from PIL import Image, ImageDraw

    board = Image.new("RGBA", size, (*CHECKER_LIGHT, 255))
    draw = ImageDraw.Draw(board)
    for top in range(0, size[1], square):
        for left in range((top // square) % 2 * square, size[0], 2 * square):
            draw.rectangle((left, top, left + square - 1, top + square - 1), fill=(*CHECKER_DARK, 255))
    return board


def _badge(draw: ImageDraw.ImageDraw, number: str, tile: int, font: _Font, above: int = 0) -> None:
    """A big yellow disc with the tile's number in its bottom-right corner (clear of banners and captions
    at the top, and `above` pixels above a caption bar at the bottom)."""
    margin = max(4, tile // 32)
    diameter = max(24, tile // 4)
    right, bottom = tile - margin, tile - margin - above
    box = (right - diameter, bottom - diameter, right, bottom)
    draw.ellipse(box, fill=(*BADGE, 240), outline=(*BADGE_INK, 255), width=max(2, tile // 128))
    centre = (right - diameter / 2, bottom - diameter / 2)
    draw.text(centre, number, font=font, fill=(*BADGE_INK, 255), anchor="mm")


def _label(draw: ImageDraw.ImageDraw, text: str, tile: int, font: _Font) -> int:
    """A one-line caption on a dark bar along the tile's bottom edge; returns the bar's height."""
    pad = max(4, tile // 48)
    _, top, _, bottom = font.getbbox("Ag|")
    bar = int(bottom - top) + 2 * pad
    draw.rectangle((0, tile - bar, tile, tile), fill=LABEL_BAR)
    line = " ".join(text.split())
    while line and draw.textlength(line, font=font) > tile - 2 * pad:
        line = line[:-4].rstrip() + "..." if len(line) > 4 else ""
    draw.text((pad, tile - bar / 2), line, font=font, fill=LABEL_INK, anchor="lm")
    return bar


def _font(size: int) -> _Font:
    """Pillow's bundled font at `size` (the fixed bitmap font when FreeType is missing)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError, TypeError):  # pragma: no cover - no FreeType, or Pillow < 10.1
        return ImageFont.load_default()
