"""Generated images and contact sheets on disk: one file per content hash under the team's folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

from bot.engine.ports import GeneratedImage, ImageRecord
from bot.engine.turns import StoredImage

SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}


def _write_once(path: Path, data: bytes) -> None:
    """Write `data` atomically unless the file already exists."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(data)
    temporary.replace(path)


def write_image(image_dir: Path, team_id: str, image: GeneratedImage) -> StoredImage:
    """Store image bytes once per content hash and return the file with its record."""
    digest = hashlib.sha256(image.data).hexdigest()
    suffix = SUFFIXES.get(image.mime_type, ".jpg")
    path = image_dir / team_id / f"{digest}{suffix}"
    _write_once(path, image.data)
    record = ImageRecord(digest, image.seed, image.model_id, image.width, image.height, str(path))
    return StoredImage(path, record)


def write_sheet(image_dir: Path, team_id: str, sheet: bytes) -> Path:
    """Store a contact sheet PNG and return its path."""
    path = image_dir / team_id / f"sheet-{hashlib.sha256(sheet).hexdigest()[:16]}.png"
    _write_once(path, sheet)
    return path
