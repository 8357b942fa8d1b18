"""Pictures people post in a thread: the checks they must pass before the bot keeps and uses them."""

from __future__ import annotations

import io
from dataclasses import dataclass

from bot.engine.turn_errors import ImageInputError

MAX_PICTURE_BYTES = 10 * 1024 * 1024  # a bigger file is refused before it is downloaded
MIN_SIDE = 64
MAX_SIDE = 8192
MAX_ASPECT = 2.5
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
MIME_TYPES = frozenset(FORMATS.values())


@dataclass(frozen=True)
class PictureInfo:
    """A checked picture: its Pillow format, MIME type and size."""

    format: str
    mime_type: str
    width: int
    height: int


def readable_size(count: int) -> str:
    """Bytes as '2.4 MB' or '800 KB'."""
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f} MB"
    return f"{max(1, round(count / 1024))} KB"


def check_picture(data: bytes, name: str = "the picture") -> PictureInfo:
    """The picture's format and size, or ImageInputError saying plainly what is wrong with it."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_PICTURE_BYTES:
        raise ImageInputError(
            f"{name} is {readable_size(len(data))}; I take pictures up to {readable_size(MAX_PICTURE_BYTES)}"
        )
    if not data:
        raise ImageInputError(f"{name} is empty")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            found, width, height = str(image.format or ""), image.width, image.height
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageInputError(f"{name} is not a picture I can read: post a PNG, JPEG, WebP or GIF") from exc
    if found not in FORMATS:
        raise ImageInputError(f"{name} is a {found or 'kind of'} file; post a PNG, JPEG, WebP or GIF instead")
    if min(width, height) < MIN_SIDE:
        raise ImageInputError(f"{name} is {width}×{height} px; I need at least {MIN_SIDE} px on each side")
    if max(width, height) > MAX_SIDE:
        raise ImageInputError(f"{name} is {width}×{height} px; I take pictures up to {MAX_SIDE} px a side")
    ratio = width / height
    if not 1 / MAX_ASPECT <= ratio <= MAX_ASPECT:
        shape = "wide" if ratio > 1 else "tall"
        raise ImageInputError(
            f"{name} is {width}×{height} px, too {shape} (more than 2.5:1); crop it and post it again"
        )
    return PictureInfo(found, FORMATS[found], width, height)
