"""Request bodies and response parsing of the Bedrock/SageMaker image model families (pure functions)."""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

from bot.engine.ports import ImageRequest
from bot.engine.turn_errors import ContentFilteredError, UpstreamError

ImageResult = tuple[bytes, int]

STABILITY_ASPECT_RATIOS: tuple[str, ...] = (
    "16:9",
    "1:1",
    "21:9",
    "2:3",
    "3:2",
    "4:5",
    "5:4",
    "9:16",
    "9:21",
)
STABILITY_V2_MAX_SEED = 4_294_967_294
STABILITY_V2_MAX_CHARS = 10_000
DEFAULT_STRENGTH = 0.6  # image-to-image: how far from the init image (0 keeps it, 1 ignores it)
SDXL_SIZES: tuple[tuple[int, int], ...] = (
    (1024, 1024),
    (1152, 896),
    (1216, 832),
    (1344, 768),
    (1536, 640),
    (640, 1536),
    (768, 1344),
    (832, 1216),
    (896, 1152),
)
SDXL_MAX_SEED = 4_294_967_295
SDXL_MAX_CHARS = 2000
SDXL_CFG_SCALE = 7
SDXL_STEPS = 30
STYLE_PRESETS: frozenset[str] = frozenset(
    {
        "3d-model",
        "analog-film",
        "anime",
        "cinematic",
        "comic-book",
        "digital-art",
        "enhance",
        "fantasy-art",
        "isometric",
        "line-art",
        "low-poly",
        "modeling-compound",
        "neon-punk",
        "origami",
        "photographic",
        "pixel-art",
        "tile-texture",
    }
)
NOVA_MAX_SEED = 858_993_459
NOVA_MAX_CHARS = 1024
NOVA_MAX_IMAGES = 5
NOVA_MIN_SIDE = 320
NOVA_MAX_SIDE = 4096
NOVA_PIXELS = 1024 * 1024
NOVA_CFG_SCALE = 6.5
_FILTER_PREFIX = "filter reason:"


def aspect_value(aspect_ratio: str) -> float:
    """Width over height of a 'W:H' aspect ratio string."""
    left, sep, right = aspect_ratio.strip().partition(":")
    try:
        width, height = float(left), float(right)
    except ValueError:
        width = height = 0.0
    if not sep or not (width > 0 and height > 0) or not math.isfinite(width / height):
        raise ValueError(f"aspect ratio {aspect_ratio!r} must look like 16:9")
    return width / height


def nearest_stability_ratio(aspect_ratio: str) -> str:
    """The allowed Stability aspect ratio closest to the requested one (in log space)."""
    if aspect_ratio in STABILITY_ASPECT_RATIOS:
        return aspect_ratio
    target = math.log(aspect_value(aspect_ratio))
    return min(STABILITY_ASPECT_RATIOS, key=lambda r: abs(math.log(aspect_value(r)) - target))


def sdxl_size(aspect_ratio: str) -> tuple[int, int]:
    """The allowed SDXL (width, height) closest to the requested aspect ratio."""
    target = math.log(aspect_value(aspect_ratio))
    return min(SDXL_SIZES, key=lambda size: abs(math.log(size[0] / size[1]) - target))


def nova_size(aspect_ratio: str) -> tuple[int, int]:
    """Nova/Titan (width, height): about one megapixel, multiples of 64, each side within 320-4096."""
    ratio = aspect_value(aspect_ratio)
    ratio = min(4.0, max(0.25, ratio))  # Nova accepts aspect ratios from 1:4 to 4:1

    def side(value: float) -> int:
        return int(min(NOVA_MAX_SIDE, max(NOVA_MIN_SIDE, round(value / 64) * 64)))

    return side(math.sqrt(NOVA_PIXELS * ratio)), side(math.sqrt(NOVA_PIXELS / ratio))


def style_preset(style: str | None) -> str | None:
    """The Stability style preset named by `style` ('Pixel art' -> 'pixel-art'), or None."""
    if not style:
        return None
    name = "-".join(style.strip().lower().replace("_", " ").split())
    return name if name in STYLE_PRESETS else None


def truncate(text: str, limit: int) -> str:
    """`text` stripped and cut to at most `limit` characters, at a word boundary when one is near."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space >= limit * 3 // 4:
        cut = cut[:space]
    return cut.rstrip(" ,;")


def _prompt(request: ImageRequest, limit: int) -> str:
    """The request's prompt cut to the model's limit; an empty prompt is a caller bug."""
    prompt = truncate(request.prompt, limit)
    if not prompt:
        raise ValueError("cannot generate an image from an empty prompt")
    return prompt


# Stability SD3.5 / Stable Image Core / Ultra -----------------------------------------------------------
def stability_v2_body(request: ImageRequest) -> dict[str, Any]:
    """InvokeModel body of stability.sd3-5-large / stable-image-core / stable-image-ultra (one image).

    With `init_image` (only sent to SD3.5 Large) it is an image-to-image body with `strength`.
    """
    body: dict[str, Any] = {"prompt": _prompt(request, STABILITY_V2_MAX_CHARS)}
    negative = truncate(request.negative_prompt, STABILITY_V2_MAX_CHARS)
    if negative:
        body["negative_prompt"] = negative
    if request.init_image is not None:  # SD3.5 Large: the frame comes from the image, not aspect_ratio
        body["mode"] = "image-to-image"
        body["image"] = base64.b64encode(request.init_image).decode("ascii")
        strength = (
            0.6 if request.strength is None or not math.isfinite(request.strength) else request.strength
        )
        body["strength"] = round(min(1.0, max(0.0, strength)), 2)
    else:
        body["mode"] = "text-to-image"
        body["aspect_ratio"] = nearest_stability_ratio(request.aspect_ratio)
    body["seed"] = request.seed % (STABILITY_V2_MAX_SEED + 1)
    body["output_format"] = "png"
    return body


def parse_stability_v2(payload: Any, model_id: str, *, fallback_seed: int = 0) -> list[ImageResult]:
    """Images and seeds of a Stability v2 answer; filtered or failed generations raise."""
    answer = _object(payload, model_id)
    reasons = _list(answer.get("finish_reasons"))
    images = _list(answer.get("images"))
    seeds = _list(answer.get("seeds"))
    results: list[ImageResult] = []
    filtered: list[str] = []
    failed: list[str] = []
    for index in range(max(len(images), len(reasons))):
        reason = reasons[index] if index < len(reasons) else None
        if reason is not None:
            text = str(reason)
            (filtered if text.lower().startswith(_FILTER_PREFIX) else failed).append(text)
            continue
        if index < len(images):
            seed = _seed(seeds[index] if index < len(seeds) else None, fallback_seed)
            results.append((_decode(images[index], model_id), seed))
    if results:
        return results
    if filtered:
        reason = filtered[0][len(_FILTER_PREFIX) :].strip() or "prompt"
        raise ContentFilteredError(filtered_message(model_id, reason), reason)
    if failed:
        raise UpstreamError(f"{model_id} could not generate the image ({failed[0]}): try again")
    raise UpstreamError(f"{model_id} answered without an image: try again")


# Stability SDXL 1.0 (Bedrock legacy, SageMaker JumpStart) ---------------------------------------------
def sdxl_body(request: ImageRequest) -> dict[str, Any]:
    """SDXL v1 generation body: weighted text prompts, cfg 7, 30 steps, an allowed size, one sample."""
    prompts: list[dict[str, Any]] = [{"text": _prompt(request, SDXL_MAX_CHARS), "weight": 1.0}]
    negative = truncate(request.negative_prompt, SDXL_MAX_CHARS)
    if negative:
        prompts.append({"text": negative, "weight": -1.0})
    width, height = sdxl_size(request.aspect_ratio)
    body: dict[str, Any] = {
        "text_prompts": prompts,
        "cfg_scale": SDXL_CFG_SCALE,
        "steps": SDXL_STEPS,
        "seed": request.seed % (SDXL_MAX_SEED + 1),
        "width": width,
        "height": height,
        "samples": 1,
    }
    preset = style_preset(request.style)
    if preset is not None:
        body["style_preset"] = preset
    return body


def parse_sdxl(payload: Any, model_id: str = "sdxl", *, fallback_seed: int = 0) -> list[ImageResult]:
    """Images and seeds of an SDXL v1 answer (artifacts[].base64/seed/finishReason)."""
    answer = _object(payload, model_id)
    artifacts = _list(answer.get("artifacts"))
    results: list[ImageResult] = []
    filtered = failed = 0
    for artifact in artifacts:
        if not isinstance(artifact, dict):
            continue
        finish = str(artifact.get("finishReason") or "SUCCESS").upper()
        if finish == "CONTENT_FILTERED":
            filtered += 1
        elif finish != "SUCCESS" or not artifact.get("base64"):
            failed += 1
        else:
            seed = _seed(artifact.get("seed"), fallback_seed)
            results.append((_decode(artifact["base64"], model_id), seed))
    if results:
        return results
    if filtered:
        raise ContentFilteredError(filtered_message(model_id, "output image"), "output image")
    detail = answer.get("message") or answer.get("result") or ("ERROR" if failed else "no artifacts")
    raise UpstreamError(f"{model_id} could not generate the image ({detail}): try again")


# Amazon Nova Canvas / Titan Image Generator v2 ---------------------------------------------------------
def nova_body(request: ImageRequest) -> dict[str, Any]:
    """TEXT_IMAGE body of Nova Canvas / Titan Image v2: ~1 MP, standard quality, cfg 6.5, `count` images."""
    if not 1 <= request.count <= NOVA_MAX_IMAGES:
        raise ValueError(f"Nova/Titan generate 1 to {NOVA_MAX_IMAGES} images per call, not {request.count}")
    params: dict[str, Any] = {"text": _prompt(request, NOVA_MAX_CHARS)}
    negative = truncate(request.negative_prompt, NOVA_MAX_CHARS)
    if negative:
        params["negativeText"] = negative
    width, height = nova_size(request.aspect_ratio)
    return {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": params,
        "imageGenerationConfig": {
            "width": width,
            "height": height,
            "quality": "standard",
            "cfgScale": NOVA_CFG_SCALE,
            "seed": request.seed % (NOVA_MAX_SEED + 1),
            "numberOfImages": request.count,
        },
    }


def parse_nova(
    payload: Any, model_id: str = "amazon.nova-canvas", *, fallback_seed: int = 0
) -> list[ImageResult]:
    """Images of a Nova/Titan answer (they carry no seed: every image gets the request's seed)."""
    answer = _object(payload, model_id)
    error = answer.get("error")
    if error:
        message = str(error)
        lowered = message.lower()
        if "content" in lowered or "filter" in lowered:
            reason = "output image" if "generated image" in lowered else "prompt"
            raise ContentFilteredError(filtered_message(model_id, reason), reason)
        raise UpstreamError(f"{model_id} could not generate the image: {message}")
    images = [_decode(item, model_id) for item in _list(answer.get("images"))]
    if not images:
        raise UpstreamError(f"{model_id} answered without an image: try again")
    return [(data, fallback_seed) for data in images]


def nova_filter_reason(message: str) -> str | None:
    """'prompt' / 'output image' when a Nova/Titan ValidationException is its content filter, else None."""
    lowered = message.lower()
    if "content filter" not in lowered and "blocked by our" not in lowered:
        return None
    return "output image" if "generated image" in lowered else "prompt"


# helpers -----------------------------------------------------------------------------------------------
def filtered_message(model_id: str, reason: str) -> str:
    """User-facing message for a content-filtered generation: what was refused and what to do."""
    if reason == "prompt":
        return f"{model_id} refused the prompt (content filter): rephrase it and try again"
    if reason == "input image":
        return f"{model_id} refused the picture it was given (content filter): try another picture"
    return (
        f"{model_id} blocked the generated image ({reason} filter): rephrase the prompt or re-roll the seed"
    )


def _object(payload: Any, model_id: str) -> dict[str, Any]:
    """The answer as a JSON object, or UpstreamError."""
    if not isinstance(payload, dict):
        raise UpstreamError(f"{model_id} returned a malformed answer (not a JSON object): try again")
    return payload


def _list(value: Any) -> list[Any]:
    """A JSON list field, treating a missing or null field as empty."""
    return list(value) if isinstance(value, list) else []


def _seed(value: Any, fallback: int) -> int:
    """The answer's seed, or the request's when the answer has none."""
    if isinstance(value, bool):
        return fallback
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return fallback


def _decode(value: Any, model_id: str) -> bytes:
    """Base64 image bytes, or UpstreamError when the field is not base64."""
    if not isinstance(value, str) or not value:
        raise UpstreamError(f"{model_id} returned a malformed image field: try again")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UpstreamError(f"{model_id} returned an image that is not valid base64: try again") from exc
