"""Stability AI Image Services for FakeBedrockRuntime: strict body checks and real images as answers.

Every body is checked against the Bedrock user guide's table (required fields, ranges, unknown fields
rejected with a 400 ValidationException like Bedrock's) and the input images against the services'
limits (each side at least 64 px, at most 9,437,184 px, an aspect ratio within 1:2.5 and 2.5:1; fast
upscale 32-1536 px a side and at most a megapixel). Answers are `{seeds, finish_reasons, images}` with
real PNGs of the right size: 4× for the fast upscale, RGBA for background removal, grown for outpaint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.bedrock_image_models import (
    SDXL_STYLES,
    V2_SIZES,
    _json_object,
    _malformed,
    _no_extra,
    _string,
    refusal,
)
from sandbox.bedrock_runtime import FakeBedrockRuntime, FakeResponse, RecordedRequest

MAX_SEED = 4_294_967_294
MAX_PIXELS = 9_437_184
MEGAPIXEL = 1_048_576
INPUT_FILTER_COLOUR = (255, 0, 255)  # a picture whose top-left pixel is pure magenta trips the input filter
COMMON = {"seed", "negative_prompt", "output_format", "style_preset"}
Check = Callable[[dict[str, Any], str], None]


@dataclass(frozen=True)
class Spec:
    """One service: required and optional fields, number ranges, and the size of its answer."""

    name: str
    required: tuple[str, ...]
    optional: frozenset[str]
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    integers: frozenset[str] = frozenset()
    images: tuple[str, ...] = ("image",)
    fast: bool = False  # the fast upscaler's input limits


def _spec(
    name: str,
    required: tuple[str, ...],
    optional: set[str],
    ranges: dict[str, tuple[float, float]] | None = None,
    *,
    common: bool = True,
    integers: set[str] | None = None,
    images: tuple[str, ...] = ("image",),
    fast: bool = False,
) -> Spec:
    """A Spec, with the common optional fields unless `common` is False."""
    return Spec(
        name,
        required,
        frozenset(optional | (COMMON if common else set())),
        ranges or {},
        frozenset(integers or set()),
        images,
        fast,
    )


GROW = {"grow_mask": (0.0, 20.0)}
SPECS: dict[str, Spec] = {
    "stability.stable-fast-upscale": _spec(
        "fast-upscale", ("image",), {"output_format"}, common=False, fast=True
    ),
    "stability.stable-creative-upscale": _spec(
        "creative-upscale", ("prompt", "image"), {"creativity"}, {"creativity": (0.1, 0.5)}
    ),
    "stability.stable-conservative-upscale": _spec(
        "conservative-upscale", ("prompt", "image"), {"creativity"}, {"creativity": (0.2, 0.5)}
    ),
    "stability.stable-image-remove-background": _spec(
        "remove-background", ("image",), {"output_format"}, common=False
    ),
    "stability.stable-image-search-replace": _spec(
        "search-replace", ("prompt", "image", "search_prompt"), {"grow_mask"}, GROW, integers={"grow_mask"}
    ),
    "stability.stable-image-search-recolor": _spec(
        "search-recolor", ("prompt", "image", "select_prompt"), {"grow_mask"}, GROW, integers={"grow_mask"}
    ),
    "stability.stable-image-erase-object": _spec(
        "erase",
        ("image",),
        {"mask", "grow_mask", "seed", "output_format"},
        GROW,
        common=False,
        integers={"grow_mask"},
        images=("image", "mask"),
    ),
    "stability.stable-image-inpaint": _spec(
        "inpaint",
        ("prompt", "image"),
        {"mask", "grow_mask"},
        GROW,
        integers={"grow_mask"},
        images=("image", "mask"),
    ),
    "stability.stable-outpaint": _spec(
        "outpaint",
        ("image",),
        {"left", "right", "up", "down", "prompt", "creativity"},
        {side: (0.0, 2000.0) for side in ("left", "right", "up", "down")} | {"creativity": (0.0, 1.0)},
        integers={"left", "right", "up", "down"},
    ),
    "stability.stable-image-control-sketch": _spec(
        "control-sketch", ("prompt", "image"), {"control_strength"}, {"control_strength": (0.0, 1.0)}
    ),
    "stability.stable-image-control-structure": _spec(
        "control-structure", ("prompt", "image"), {"control_strength"}, {"control_strength": (0.0, 1.0)}
    ),
    "stability.stable-image-style-guide": _spec(
        "style-guide", ("prompt", "image"), {"fidelity", "aspect_ratio"}, {"fidelity": (0.0, 1.0)}
    ),
    "stability.stable-style-transfer": _spec(
        "style-transfer",
        ("init_image", "style_image"),
        {"prompt", "style_strength", "composition_fidelity", "change_strength"},
        {key: (0.0, 1.0) for key in ("style_strength", "composition_fidelity", "change_strength")},
        images=("init_image", "style_image"),
    ),
}


IMAGE_TO_IMAGE = _spec("image-to-image", ("image",), set())


def install_image_services(fake: FakeBedrockRuntime) -> FakeBedrockRuntime:
    """Route every Image Service, by its bare id and its us./eu./apac. inference profile; returns `fake`."""
    for prefix in SPECS:
        for geo in ("", "us.", "eu.", "apac."):
            fake.register("invoke", geo + prefix, image_service)
    return fake


def bare_id(model_id: str) -> str:
    """A model id without its us./eu./apac. inference-profile prefix."""
    geo, _, rest = model_id.partition(".")
    return rest if geo in ("us", "eu", "apac") else model_id


def spec_for(model_id: str) -> Spec:
    """The spec of a routed model id."""
    return next(spec for prefix, spec in SPECS.items() if bare_id(model_id).startswith(prefix))


def image_service(request: RecordedRequest) -> FakeResponse:
    """Answer one Image Services InvokeModel like Bedrock."""
    spec = spec_for(request.model_id or "")
    body = _json_object(request)
    _no_extra(body, set(spec.required) | spec.optional)
    for key in spec.required:
        if key not in body:
            raise _malformed(f"#: required key [{key}] not found")
    pictures = {key: _picture(body, key, spec) for key in spec.images if key in body}
    prompt = _string(body, "prompt", 1 if "prompt" in spec.required else 0, 10_000)
    for key in ("negative_prompt", "search_prompt", "select_prompt"):
        if key in spec.required or key in spec.optional:
            _string(body, key, 1 if key in spec.required else 0, 10_000)
    _numbers(body, spec)
    seed = _seed(body)
    formats = ("png", "webp") if spec.name == "remove-background" else ("png", "jpeg", "webp")
    if body.get("output_format", "png") not in formats:
        raise _malformed(f"#/output_format: {body['output_format']} is not a valid enum value")
    if "style_preset" in body and body["style_preset"] not in SDXL_STYLES:
        raise _malformed(f"#/style_preset: {body['style_preset']} is not a valid enum value")
    if "aspect_ratio" in body and body["aspect_ratio"] not in V2_SIZES:
        raise _malformed(f"#/aspect_ratio: {body['aspect_ratio']} is not a valid enum value")
    if spec.name == "outpaint" and not any(body.get(side, 0) for side in ("left", "right", "up", "down")):
        raise _malformed("#: at least one of [left, right, up, down] must be greater than 0")
    if any(_is_flagged(image) for image in pictures.values()):
        return FakeResponse(body={"finish_reasons": ["Filter reason: input image"]})
    refused = refusal(prompt, seed)
    if refused is not None:
        return refused
    source = pictures.get("image") or pictures["init_image"]
    answer = _answer(spec, body, source, seed)
    return FakeResponse(body={"seeds": [seed], "finish_reasons": [None], "images": [answer]})


def image_to_image(request: RecordedRequest, body: dict[str, Any]) -> tuple[int, int]:
    """SD3.5 Large's image-to-image fields (image, strength; no aspect_ratio); the size of its answer."""
    if not bare_id(request.model_id or "").startswith("stability.sd3"):
        raise _malformed("#/mode: image-to-image is not a valid enum value for this model")
    if "aspect_ratio" in body:
        raise _malformed("#/aspect_ratio: is only valid for text-to-image requests")
    for key in ("image", "strength"):
        if key not in body:
            raise _malformed(f"#: required key [{key}] not found (image-to-image)")
    strength = body["strength"]
    if isinstance(strength, bool) or not isinstance(strength, int | float) or not 0 <= strength <= 1:
        raise _malformed(f"#/strength: {strength!r} is not a number within 0-1")
    image = _picture(body, "image", IMAGE_TO_IMAGE)
    ratio = image.width / image.height
    return min(V2_SIZES.values(), key=lambda size: abs(math.log(size[0] / size[1]) - math.log(ratio)))


# checks --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Picture:
    """A decoded input image."""

    width: int
    height: int
    mode: str
    corner: tuple[int, ...]


def _picture(body: dict[str, Any], key: str, spec: Spec) -> _Picture:
    """A base64 image field decoded and checked against the service's limits, or a 400."""
    from PIL import Image, UnidentifiedImageError

    value = body[key]
    if not isinstance(value, str) or not value:
        raise _malformed(f"#/{key}: expected type: String (base64 image)")
    try:
        data = base64.b64decode(value, validate=True)
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.format not in ("PNG", "JPEG", "WEBP"):
                raise _malformed(f"#/{key}: image format {image.format} is not png, jpeg or webp")
            corner = image.convert("RGBA").getpixel((0, 0))
            pixel = tuple(corner) if isinstance(corner, tuple) else ()
            picture = _Picture(image.width, image.height, image.mode, pixel)
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError) as exc:
        raise _malformed(f"#/{key}: not a valid base64-encoded image") from exc
    width, height, pixels = picture.width, picture.height, picture.width * picture.height
    if spec.fast:
        if not (32 <= width <= 1536 and 32 <= height <= 1536 and 1024 <= pixels <= MEGAPIXEL):
            raise _malformed(
                f"#/{key}: image dimensions {width}x{height} must be 32-1536 px a side and 1,024 to "
                "1,048,576 px in all"
            )
        return picture
    limit = MEGAPIXEL if spec.name == "creative-upscale" else MAX_PIXELS
    if min(width, height) < 64 or pixels > limit:
        raise _malformed(
            f"#/{key}: image dimensions {width}x{height} must be at least 64 px a side and "
            f"at most {limit:,} px in all"
        )
    if not 1 / 2.5 <= width / height <= 2.5:
        raise _malformed(f"#/{key}: aspect ratio {width}:{height} must be between 1:2.5 and 2.5:1")
    return picture


def _numbers(body: dict[str, Any], spec: Spec) -> None:
    """Number fields within their ranges (integers where the service wants whole numbers)."""
    for key, (low, high) in spec.ranges.items():
        if key not in body:
            continue
        value = body[key]
        whole = key in spec.integers
        kind = int if whole else int | float
        if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
            what = "an integer" if whole else "a number"
            raise _malformed(f"#/{key}: {value!r} is not {what} within {low:g}-{high:g}")


def _seed(body: dict[str, Any]) -> int:
    """The seed sent, or the one Stability would draw for 0 (derived from the body, deterministic)."""
    seed = body.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise _malformed(f"#/seed: {seed!r} is not an integer within 0-{MAX_SEED}")
    if seed:
        return seed
    digest = hashlib.sha256(str(body.get("prompt", "")).encode() + str(len(body.get("image", ""))).encode())
    return 1 + int.from_bytes(digest.digest()[:4], "big") % MAX_SEED


def _is_flagged(picture: _Picture) -> bool:
    """The stand-in's input-image filter: a pure magenta top-left pixel."""
    return tuple(picture.corner[:3]) == INPUT_FILTER_COLOUR


# answers -------------------------------------------------------------------------------------------------
def _answer(spec: Spec, body: dict[str, Any], source: _Picture, seed: int) -> str:
    """Base64 PNG of the size (and mode) the service returns for this request."""
    width, height = source.width, source.height
    if spec.name == "fast-upscale":
        width, height = width * 4, height * 4
    elif spec.name in ("creative-upscale", "conservative-upscale"):
        scale = max(1.0, math.sqrt(4 * MEGAPIXEL / (width * height)))
        width, height = int(width * scale), int(height * scale)
    elif spec.name == "outpaint":
        width += int(body.get("left", 0)) + int(body.get("right", 0))
        height += int(body.get("up", 0)) + int(body.get("down", 0))
    elif spec.name == "style-guide":
        width, height = V2_SIZES[str(body.get("aspect_ratio", "1:1"))]
    return picture_png(width, height, seed, cut_out=spec.name == "remove-background")


def picture_png(width: int, height: int, seed: int, *, cut_out: bool = False) -> str:
    """Base64 PNG: a seed-coloured field with a lighter centre square; cut out, only the square is opaque."""
    from PIL import Image, ImageDraw

    digest = hashlib.sha256(str(seed).encode()).digest()
    mode = "RGBA" if cut_out else "RGB"
    field_colour = (0, 0, 0, 0) if cut_out else (digest[0], digest[1], digest[2])
    image = Image.new(mode, (width, height), field_colour)
    side = min(width, height) // 3
    left, top = (width - side) // 2, (height - side) // 2
    ImageDraw.Draw(image).rectangle(
        (left, top, left + side, top + side), fill=(digest[3], digest[4], 255, 255)
    )
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return base64.b64encode(out.getvalue()).decode("ascii")
