"""Stability AI Image Services on Bedrock: which model does what, input limits and request bodies (pure)."""

from __future__ import annotations

import base64
import io
import math
import re
from dataclasses import dataclass
from typing import Any

from bot.drawing.image_bodies import (
    STABILITY_V2_MAX_CHARS,
    STABILITY_V2_MAX_SEED,
    nearest_stability_ratio,
    style_preset,
    truncate,
)
from bot.engine.ports import EditRequest
from bot.engine.turn_errors import ImageInputError

MIN_SIDE = 64  # every service: each side at least 64 px ...
MAX_PIXELS = 9_437_184  # ... at most 9,437,184 px in all ...
MAX_ASPECT = 2.5  # ... and an aspect ratio between 1:2.5 and 2.5:1
FAST_MIN_SIDE, FAST_MAX_SIDE = 32, 1536  # fast upscale: sides 32-1536 px, 1,024 px to one megapixel
FAST_MIN_PIXELS = 1024
MEGAPIXEL = 1_048_576  # fast and creative upscale take at most one megapixel
MAX_EXPAND = 2000  # outpaint: at most 2,000 px on each side
GROW_MASK = 5
OUTPUT_FORMAT = "png"  # keeps the alpha channel of a cut-out
_GEO_PREFIX = re.compile(r"^(us|eu|apac|global|us-gov|ca|jp|au)\.")
_SENT_FORMATS = {"PNG", "JPEG", "WEBP"}  # what the services read; anything else is sent as PNG


@dataclass(frozen=True)
class Service:
    """One Image Service: its bare model id prefix, the edit it does, and how it is called."""

    name: str
    prefix: str
    operation: str
    label: str
    prompt: bool = True  # takes a prompt (and seed, negative prompt, style preset)


SERVICES: tuple[Service, ...] = (
    Service("fast-upscale", "stability.stable-fast-upscale", "upscale", "fast upscale (4×)", prompt=False),
    Service("creative-upscale", "stability.stable-creative-upscale", "upscale", "creative upscale"),
    Service(
        "conservative-upscale", "stability.stable-conservative-upscale", "upscale", "conservative upscale"
    ),
    Service(
        "remove-background",
        "stability.stable-image-remove-background",
        "remove_background",
        "background removal",
        prompt=False,
    ),
    Service(
        "search-replace", "stability.stable-image-search-replace", "search_replace", "search and replace"
    ),
    Service("search-recolor", "stability.stable-image-search-recolor", "recolor", "search and recolor"),
    Service("erase", "stability.stable-image-erase-object", "erase", "erase", prompt=False),
    Service("outpaint", "stability.stable-outpaint", "outpaint", "outpaint"),
    Service("control-sketch", "stability.stable-image-control-sketch", "sketch", "sketch control"),
    Service("control-structure", "stability.stable-image-control-structure", "sketch", "structure control"),
    Service("style-guide", "stability.stable-image-style-guide", "style", "style guide"),
)


def service_for(model_id: str) -> Service | None:
    """The Image Service a Bedrock model id (or its us./eu./... profile) names, or None."""
    bare = _GEO_PREFIX.sub("", model_id.removeprefix("bedrock:"))
    return next((service for service in SERVICES if bare.startswith(service.prefix)), None)


def services_for(operation: str) -> tuple[Service, ...]:
    """The services that can do an edit operation."""
    return tuple(service for service in SERVICES if service.operation == operation)


@dataclass(frozen=True)
class Picture:
    """An image's bytes with its size, Pillow format and whether it has an alpha channel."""

    data: bytes
    width: int
    height: int
    format: str
    alpha: bool

    @property
    def pixels(self) -> int:
        """Width times height."""
        return self.width * self.height


def read_picture(data: bytes, what: str = "the image") -> Picture:
    """Size and format of image bytes; ImageInputError when they are not a picture Pillow can read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            return Picture(data, image.width, image.height, str(image.format or ""), alpha)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageInputError(f"{what} is not a picture I can read (PNG, JPEG, WebP or GIF)") from exc


def check_input(service: Service, picture: Picture) -> None:
    """ImageInputError with a plain reason when the service cannot take the picture as it is."""
    size = f"{picture.width}×{picture.height}"
    if service.name == "fast-upscale":
        too_big = max(picture.width, picture.height) > FAST_MAX_SIDE or picture.pixels > MEGAPIXEL
        if too_big:
            raise ImageInputError(
                f"this image is {size} px already; Upscale takes images up to {FAST_MAX_SIDE} px a side "
                "and one megapixel (4× bigger comes out), so it cannot be upscaled again"
            )
        if min(picture.width, picture.height) < FAST_MIN_SIDE or picture.pixels < FAST_MIN_PIXELS:
            raise ImageInputError(f"this image is {size} px, too small to upscale (at least 32 px a side)")
        return
    if min(picture.width, picture.height) < MIN_SIDE:
        raise ImageInputError(f"this picture is {size} px; I need at least {MIN_SIDE} px on each side")
    ratio = picture.width / picture.height
    if not 1 / MAX_ASPECT <= ratio <= MAX_ASPECT:
        raise ImageInputError(
            f"this picture is {size} px, {'wider' if ratio > 1 else 'taller'} than 2.5:1; crop it closer "
            "to square and post it again"
        )


def fit_input(service: Service, picture: Picture) -> Picture:
    """The picture as the service can take it: scaled down to its pixel limit, PNG unless PNG/JPEG/WebP.

    Fast upscale is never scaled down (that would defeat it): check_input refuses what it cannot take.
    """
    limit = MEGAPIXEL if service.name == "creative-upscale" else MAX_PIXELS
    shrink = service.name != "fast-upscale" and picture.pixels > limit
    if not shrink and picture.format in _SENT_FORMATS:
        return picture
    from PIL import Image

    with Image.open(io.BytesIO(picture.data)) as image:
        image.load()
        frame = image.convert("RGBA" if picture.alpha else "RGB")
    if shrink:
        scale = math.sqrt(limit / picture.pixels)
        size = (max(1, int(picture.width * scale)), max(1, int(picture.height * scale)))
        frame = frame.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    frame.save(out, format="PNG")
    return Picture(out.getvalue(), frame.width, frame.height, "PNG", picture.alpha)


def init_image(data: bytes, limit: int = MEGAPIXEL) -> bytes:
    """An image-to-image start picture: at most `limit` pixels (the model draws about a megapixel), opaque
    (a cut-out's transparency on white), as PNG; the bytes unchanged when they already fit."""
    picture = read_picture(data, "the image to draw from")
    if picture.pixels <= limit and not picture.alpha and picture.format in _SENT_FORMATS:
        return data
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        flat = Image.new("RGBA", image.size, (255, 255, 255, 255))
        flat.alpha_composite(image.convert("RGBA"))
    frame = flat.convert("RGB")
    if picture.pixels > limit:
        scale = math.sqrt(limit / picture.pixels)
        frame = frame.resize((max(64, int(frame.width * scale)), max(64, int(frame.height * scale))))
    out = io.BytesIO()
    frame.save(out, format="PNG")
    return out.getvalue()


def prepared(service: Service, data: bytes) -> Picture:
    """The picture fitted to the service's limits, or ImageInputError saying why it cannot be used."""
    picture = fit_input(service, read_picture(data))
    check_input(service, picture)
    return picture


def service_body(service: Service, request: EditRequest) -> dict[str, Any]:
    """The InvokeModel body of one edit; `request.image` must already fit (fit_input, check_input)."""
    body: dict[str, Any] = {"image": base64.b64encode(request.image).decode("ascii")}
    if service.name in ("fast-upscale", "remove-background"):
        body["output_format"] = OUTPUT_FORMAT
        return body
    seed = request.seed % (STABILITY_V2_MAX_SEED + 1)
    if service.name == "erase":
        return {**body, "grow_mask": GROW_MASK, "seed": seed, "output_format": OUTPUT_FORMAT}
    prompt = truncate(request.prompt, STABILITY_V2_MAX_CHARS)
    if service.name == "search-replace":
        body.update(prompt=_required(prompt, service), search_prompt=_target(request, service))
    elif service.name == "search-recolor":
        body.update(prompt=_required(prompt, service), select_prompt=_target(request, service))
    elif service.name == "outpaint":
        body.update(_expansion(request.expand))
        if prompt:
            body["prompt"] = prompt
        body["creativity"] = _within(request.strength, 0.5, 0.0, 1.0)
    elif service.name in ("control-sketch", "control-structure"):
        body.update(prompt=_required(prompt, service))
        body["control_strength"] = _within(request.strength, 0.7, 0.0, 1.0)
    elif service.name == "style-guide":
        body.update(prompt=_required(prompt, service))
        body["fidelity"] = _within(request.strength, 0.5, 0.0, 1.0)
        if request.aspect_ratio:
            body["aspect_ratio"] = nearest_stability_ratio(request.aspect_ratio)
    elif service.name == "creative-upscale":
        body.update(prompt=_required(prompt, service))
        body["creativity"] = _within(request.strength, 0.3, 0.1, 0.5)
    else:  # conservative upscale
        body.update(prompt=_required(prompt, service))
    negative = truncate(request.negative_prompt, STABILITY_V2_MAX_CHARS)
    if negative and service.name != "outpaint":
        body["negative_prompt"] = negative
    preset = style_preset(request.style)
    if preset is not None:
        body["style_preset"] = preset
    body["seed"] = seed
    body["output_format"] = OUTPUT_FORMAT
    return body


def _required(prompt: str, service: Service) -> str:
    """The prompt a service needs; an empty one is a caller bug."""
    if not prompt:
        raise ValueError(f"{service.label} needs a prompt")
    return prompt


def _target(request: EditRequest, service: Service) -> str:
    """What to find in the image; an empty one is a caller bug."""
    target = truncate(request.target, STABILITY_V2_MAX_CHARS)
    if not target:
        raise ValueError(f"{service.label} needs to know what to look for")
    return target


def _within(value: float | None, default: float, low: float, high: float) -> float:
    """`value` (or the default) clamped to the service's range, rounded to two decimals."""
    chosen = default if value is None or not math.isfinite(value) else value
    return round(min(high, max(low, chosen)), 2)


def _expansion(expand: tuple[int, int, int, int]) -> dict[str, int]:
    """Outpaint's left/right/up/down fields (zeros left out); ImageInputError beyond 2,000 px a side."""
    sides = dict(zip(("left", "right", "up", "down"), expand, strict=True))
    if any(value > MAX_EXPAND for value in sides.values()):
        raise ImageInputError(f"I can widen a picture by at most {MAX_EXPAND} px on each side")
    chosen = {side: int(value) for side, value in sides.items() if value > 0}
    if not chosen:
        raise ValueError("outpaint needs at least one side to grow")
    return chosen
