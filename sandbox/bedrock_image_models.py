"""Image-model handlers for FakeBedrockRuntime: strict schema checks and Bedrock-shaped answers per family."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from types import TracebackType
from typing import Any

from sandbox.bedrock_runtime import BedrockFault, FakeBedrockRuntime, FakeResponse, RecordedRequest

FILTER_WORD = "FILTERME"  # prompt filter (v2), CONTENT_FILTERED artifact (SDXL), "error" field (Nova)
OUTPUT_FILTER_WORD = "FILTEROUTPUT"  # v2: "Filter reason: output image"
FAIL_WORD = "FAILME"  # v2: "Inference error"; SDXL: finishReason ERROR
BLOCK_WORD = "BLOCKME"  # Nova/Titan: 400 ValidationException from the input content filter
NOVA_BLOCKED = (
    "This request has been blocked by our content filters. "
    "Please adjust your text prompt to submit a new request."
)
NOVA_OUTPUT_FILTERED = (
    "The generated image has been blocked by our content filters. "
    "Please adjust your text prompt to submit a new request."
)

V2_KEYS = {"prompt", "negative_prompt", "mode", "aspect_ratio", "seed", "output_format"}
V2_SIZES = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "21:9": (1536, 640),
    "2:3": (832, 1216),
    "3:2": (1216, 832),
    "4:5": (896, 1120),
    "5:4": (1120, 896),
    "9:16": (768, 1344),
    "9:21": (640, 1536),
}
SDXL_KEYS = {
    "text_prompts",
    "height",
    "width",
    "cfg_scale",
    "clip_guidance_preset",
    "sampler",
    "samples",
    "seed",
    "steps",
    "style_preset",
    "extras",
}
SDXL_SIZES = {(1024, 1024), (1152, 896), (1216, 832), (1344, 768), (1536, 640)}
SDXL_SIZES |= {(h, w) for w, h in SDXL_SIZES}
SDXL_SAMPLERS = {
    "DDIM",
    "DDPM",
    "K_DPMPP_2M",
    "K_DPMPP_2S_ANCESTRAL",
    "K_DPM_2",
    "K_DPM_2_ANCESTRAL",
    "K_EULER",
    "K_EULER_ANCESTRAL",
    "K_HEUN",
    "K_LMS",
}
SDXL_CLIP = {"FAST_BLUE", "FAST_GREEN", "NONE", "SIMPLE", "SLOW", "SLOWER", "SLOWEST"}
SDXL_STYLES = {
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
NOVA_STYLES = {
    "3D_ANIMATED_FAMILY_FILM",
    "DESIGN_SKETCH",
    "FLAT_VECTOR_ILLUSTRATION",
    "GRAPHIC_NOVEL_ILLUSTRATION",
    "MAXIMALISM",
    "MIDCENTURY_RETRO",
    "PHOTOREALISM",
    "SOFT_DIGITAL_PAINTING",
}
NOVA_CONFIG_KEYS = {"width", "height", "quality", "cfgScale", "seed", "numberOfImages"}


def install_image_handlers(fake: FakeBedrockRuntime) -> FakeBedrockRuntime:
    """Register the Stability v2, SDXL, Nova/Titan and Image Services handlers on the fake; returns it."""
    from sandbox.bedrock_image_services import install_image_services

    install_image_services(fake)
    fake.register("invoke", "stability.sd3", stability_v2)
    fake.register("invoke", "stability.stable-image-", stability_v2)
    fake.register("invoke", "stability.stable-diffusion-xl", sdxl)
    fake.register("invoke", "amazon.nova-canvas", nova)
    fake.register("invoke", "amazon.titan-image", nova)
    return fake


class HeldImageCalls:
    """A stability_v2 handler that holds each call until `release`; `held` is set once one is held.

    As a context manager it releases on the way out, so no stand-in thread stays blocked.
    """

    def __init__(self) -> None:
        self.held = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: RecordedRequest) -> FakeResponse:
        if not self.release.is_set():
            self.held.set()
            self.release.wait(60)
        return stability_v2(request)

    def __enter__(self) -> HeldImageCalls:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release.set()


# Stability SD3.5 / Stable Image Core / Ultra -------------------------------------------------------------
def stability_v2(request: RecordedRequest) -> FakeResponse:
    """Answer like stability.sd3-5-large / stable-image-core / stable-image-ultra."""
    from sandbox.bedrock_image_services import image_to_image

    body = _json_object(request)
    mode = body.get("mode", "text-to-image")
    _no_extra(body, V2_KEYS | ({"image", "strength"} if mode == "image-to-image" else set()))
    prompt = _string(body, "prompt", 1, 10_000, required=True)
    _string(body, "negative_prompt", 0, 10_000)
    if mode not in ("text-to-image", "image-to-image"):
        raise _malformed(f"#/mode: {mode} is not a valid enum value")
    size = image_to_image(request, body) if mode == "image-to-image" else None
    aspect = body.get("aspect_ratio", "1:1")
    if aspect not in V2_SIZES:
        raise _malformed(f"#/aspect_ratio: {aspect} is not a valid enum value")
    seed = _integer(body, "seed", 0, 4_294_967_294, default=0)
    if body.get("output_format", "png") not in ("png", "jpeg", "webp"):
        raise _malformed(f"#/output_format: {body['output_format']} is not a valid enum value")
    if seed == 0:  # Stability draws a random seed for 0 and reports it
        seed = _derived_seed(prompt, 4_294_967_294)
    refused = refusal(prompt, seed)
    if refused is not None:
        return refused
    width, height = size or V2_SIZES[aspect]
    image = fake_png(width, height, seed)
    return FakeResponse(body={"seeds": [seed], "finish_reasons": [None], "images": [image]})


def refusal(prompt: str, seed: int) -> FakeResponse | None:
    """The Stability answer for a prompt carrying a filter or failure word, else None."""
    if FILTER_WORD in prompt:
        return FakeResponse(body={"finish_reasons": ["Filter reason: prompt"]})
    if OUTPUT_FILTER_WORD in prompt:
        return FakeResponse(body={"seeds": [seed], "finish_reasons": ["Filter reason: output image"]})
    if FAIL_WORD in prompt:
        return FakeResponse(body={"seeds": [seed], "finish_reasons": ["Inference error"]})
    return None


# Stability SDXL 1.0 -----------------------------------------------------------------------------------------
def sdxl(request: RecordedRequest) -> FakeResponse:
    """Answer like stability.stable-diffusion-xl-v1 (and a SageMaker JumpStart SDXL endpoint)."""
    body = _json_object(request)
    _no_extra(body, SDXL_KEYS)
    prompts = body.get("text_prompts")
    if not isinstance(prompts, list) or not prompts:
        raise _malformed("#: required key [text_prompts] not found")
    positive = []
    for index, item in enumerate(prompts):
        if not isinstance(item, dict):
            raise _malformed(f"#/text_prompts/{index}: expected type: JSONObject")
        _no_extra(item, {"text", "weight"}, f"#/text_prompts/{index}")
        text = _string(item, "text", 0, 2000, required=True, where=f"#/text_prompts/{index}")
        weight = item.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise _malformed(f"#/text_prompts/{index}/weight: expected type: Number")
        if weight > 0:
            positive.append(text)
    if not any(text.strip() for text in positive):
        raise _malformed("text_prompts needs a prompt with a positive weight")
    width = _integer(body, "width", 320, 1536, default=1024)
    height = _integer(body, "height", 320, 1536, default=1024)
    if (width, height) not in SDXL_SIZES:
        raise _malformed(f"invalid dimensions {width}x{height}: use one of the SDXL sizes")
    _number(body, "cfg_scale", 0, 35)
    _integer(body, "steps", 10, 150, default=30)
    _integer(body, "samples", 1, 1, default=1)
    seed = _integer(body, "seed", 0, 4_294_967_295, default=0)
    _enum(body, "sampler", SDXL_SAMPLERS)
    _enum(body, "clip_guidance_preset", SDXL_CLIP)
    _enum(body, "style_preset", SDXL_STYLES)
    if "extras" in body and not isinstance(body["extras"], dict):
        raise _malformed("#/extras: expected type: JSONObject")
    prompt = " ".join(positive)
    if seed == 0:
        seed = _derived_seed(prompt, 4_294_967_295)
    finish = "SUCCESS"
    if FILTER_WORD in prompt:
        finish = "CONTENT_FILTERED"  # Stability returns a blurred image with this reason
    elif FAIL_WORD in prompt:
        finish = "ERROR"
    artifact = {"seed": seed, "base64": fake_png(width, height, seed, blur=finish != "SUCCESS")}
    artifact["finishReason"] = finish
    return FakeResponse(body={"result": "success", "artifacts": [artifact]})


# Amazon Nova Canvas / Titan Image Generator v2 ----------------------------------------------------------
def nova(request: RecordedRequest) -> FakeResponse:
    """Answer like amazon.nova-canvas-v1:0 / amazon.titan-image-generator-v2:0 (TEXT_IMAGE only)."""
    body = _json_object(request)
    _no_extra(body, {"taskType", "textToImageParams", "imageGenerationConfig"})
    if body.get("taskType") != "TEXT_IMAGE":
        raise _malformed(f"#/taskType: {body.get('taskType')} is not a supported text-only task type")
    params = body.get("textToImageParams")
    if not isinstance(params, dict):
        raise _malformed("#: required key [textToImageParams] not found")
    nova_canvas = (request.model_id or "").startswith("amazon.nova")  # Titan has no `style`
    allowed = {"text", "negativeText", "style"} if nova_canvas else {"text", "negativeText"}
    _no_extra(params, allowed, "#/textToImageParams")
    text = _string(params, "text", 1, 1024, required=True, where="#/textToImageParams")
    _string(params, "negativeText", 1, 1024, where="#/textToImageParams")
    _enum(params, "style", NOVA_STYLES)
    config = body.get("imageGenerationConfig", {})
    if not isinstance(config, dict):
        raise _malformed("#/imageGenerationConfig: expected type: JSONObject")
    _no_extra(config, NOVA_CONFIG_KEYS, "#/imageGenerationConfig")
    width = _integer(config, "width", 320, 4096, default=1024)
    height = _integer(config, "height", 320, 4096, default=1024)
    if width % 16 or height % 16 or width * height > 4_194_304 or not 0.25 <= width / height <= 4:
        raise _malformed(f"invalid dimensions {width}x{height}")
    _enum(config, "quality", {"standard", "premium"})
    _number(config, "cfgScale", 1.1, 10)
    seed = _integer(config, "seed", 0, 858_993_459, default=12)
    count = _integer(config, "numberOfImages", 1, 5, default=1)
    if BLOCK_WORD in text:
        raise BedrockFault(400, "ValidationException", NOVA_BLOCKED)
    if FILTER_WORD in text:
        return FakeResponse(body={"images": [], "error": NOVA_OUTPUT_FILTERED})
    images = [fake_png(width, height, seed * 7 + index) for index in range(count)]
    return FakeResponse(body={"images": images})


# images and validation helpers -----------------------------------------------------------------------------
def fake_png(width: int, height: int, seed: int, *, blur: bool = False) -> str:
    """Base64 PNG of the requested size: a seed-coloured field with a lighter square (grey when blurred)."""
    from PIL import Image, ImageDraw

    digest = hashlib.sha256(str(seed).encode()).digest()
    colour = (128, 128, 128) if blur else (digest[0], digest[1], digest[2])
    image = Image.new("RGB", (width, height), colour)
    side = min(width, height) // 3
    ImageDraw.Draw(image).rectangle((side, side, 2 * side, 2 * side), fill=(digest[3], digest[4], 255))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return base64.b64encode(out.getvalue()).decode("ascii")


def _derived_seed(prompt: str, maximum: int) -> int:
    """A deterministic non-zero stand-in for the random seed Stability draws for seed 0."""
    return 1 + int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big") % maximum


def _json_object(request: RecordedRequest) -> dict[str, Any]:
    """The JSON body, with JSON content and accept headers, or a 400."""
    if request.headers.get("content-type", "").split(";")[0] != "application/json":
        raise BedrockFault(400, "ValidationException", "Content-Type must be application/json")
    if request.headers.get("accept", "application/json") not in ("application/json", "*/*"):
        raise BedrockFault(400, "ValidationException", "Accept must be application/json")
    if not isinstance(request.body, dict):
        raise _malformed("expected type: JSONObject, found: invalid JSON")
    return request.body


def _no_extra(body: dict[str, Any], allowed: set[str], where: str = "#") -> None:
    """400 for any key outside the documented schema."""
    extra = sorted(set(body) - allowed)
    if extra:
        raise _malformed(f"{where}: extraneous key [{extra[0]}] is not permitted")


def _string(
    body: dict[str, Any], key: str, low: int, high: int, *, required: bool = False, where: str = "#"
) -> str:
    """A string field within length bounds."""
    if key not in body:
        if required:
            raise _malformed(f"{where}: required key [{key}] not found")
        return ""
    value = body[key]
    if not isinstance(value, str):
        raise _malformed(f"{where}/{key}: expected type: String, found: {type(value).__name__}")
    if not low <= len(value) <= high:
        raise _malformed(f"{where}/{key}: expected length {low}-{high}, actual: {len(value)}")
    return value


def _integer(body: dict[str, Any], key: str, low: int, high: int, *, default: int) -> int:
    """An integer field within bounds."""
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _malformed(f"#/{key}: expected type: Integer, found: {type(value).__name__}")
    if not low <= value <= high:
        raise _malformed(f"#/{key}: {value} is not within {low}-{high}")
    return value


def _number(body: dict[str, Any], key: str, low: float, high: float) -> None:
    """An optional number field within bounds."""
    if key not in body:
        return
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise _malformed(f"#/{key}: {value!r} is not a number within {low}-{high}")


def _enum(body: dict[str, Any], key: str, allowed: set[str]) -> None:
    """An optional enum field."""
    if key in body and body[key] not in allowed:
        raise _malformed(f"#/{key}: {body[key]} is not a valid enum value")


def _malformed(detail: str) -> BedrockFault:
    """Bedrock's 400 for a body that does not match the model's schema."""
    return BedrockFault(
        400,
        "ValidationException",
        f"Malformed input request: {detail}, please reformat your input and try again.",
    )
