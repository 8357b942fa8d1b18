"""Stability AI Image Services: the Bedrock editor with real boto3 against the strict stand-in, and the
offline stand-ins (same limits, labelled output)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from bot.config import EDIT_MODELS
from bot.drawing.bedrock_edits import BedrockImageEditor, EditorByOperation
from bot.drawing.bedrock_images import BedrockImageModel, family_for
from bot.drawing.offline_edits import OfflineImageEditor, background_mask
from bot.drawing.offline_images import OfflinePreviewImageModel
from bot.engine import turn_errors as errors
from bot.engine.ports import EditRequest, ImageRequest
from sandbox import bedrock_image_models as stand_in
from sandbox.bedrock_image_services import INPUT_FILTER_COLOUR
from sandbox.bedrock_runtime import FakeBedrockRuntime

SD35 = "stability.sd3-5-large-v1:0"
CORE = "stability.stable-image-core-v1:1"
MODELS = {op: (model_id, f"IMAGINE_{field.upper()}") for op, (field, model_id) in EDIT_MODELS.items()}


@pytest.fixture
def bedrock() -> Iterator[FakeBedrockRuntime]:
    """The Bedrock Runtime stand-in with every image family and image service."""
    with FakeBedrockRuntime() as server:
        yield stand_in.install_image_handlers(server)


def editor(fake: FakeBedrockRuntime, **kwargs: Any) -> BedrockImageEditor:
    """A Bedrock image editor with the default model ids, pointed at the stand-in, no retries."""
    return BedrockImageEditor(MODELS, "us-east-1", endpoint_url=fake.url, max_attempts=1, **kwargs)


def png(size: tuple[int, int], colour: tuple[int, ...] = (30, 90, 200), mode: str = "RGB") -> bytes:
    """PNG bytes of a plain picture with a white square in the middle."""
    image = Image.new(mode, size, colour)
    side = min(size) // 3
    image.paste((255, 255, 255), (side, side, 2 * side, 2 * side))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def opened(data: bytes) -> Image.Image:
    """PNG bytes as an image (and proof they are a PNG)."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def sent_image_of(fake: FakeBedrockRuntime, model_id: str) -> bytes:
    """The image the latest request to a model carried."""
    body = fake.requests_for("invoke", model_id)[-1].body
    assert isinstance(body, dict)
    return base64.b64decode(body["image"])


def sent(fake: FakeBedrockRuntime, operation: str) -> dict[str, Any]:
    """The one body the stand-in received for an operation's model."""
    (request,) = fake.requests_for("invoke", MODELS[operation][0])
    assert isinstance(request.body, dict)
    return request.body


# Bedrock ---------------------------------------------------------------------------------------------------
def test_fast_upscale_sends_the_image_and_gets_it_four_times_bigger(
    bedrock: FakeBedrockRuntime, aws_test_credentials: None
) -> None:
    picture = png((512, 384))
    image = editor(bedrock).edit(EditRequest("upscale", picture, prompt="ignored", seed=5))

    body = sent(bedrock, "upscale")
    assert body == {"image": base64.b64encode(picture).decode(), "output_format": "png"}
    assert (image.width, image.height) == opened(image.data).size == (2048, 1536)
    assert image.model_id == "bedrock:us.stability.stable-fast-upscale-v1:0"
    assert bedrock.requests[0].path == "/model/us.stability.stable-fast-upscale-v1%3A0/invoke"


def test_remove_background_answers_a_transparent_png(
    bedrock: FakeBedrockRuntime, aws_test_credentials: None
) -> None:
    image = editor(bedrock).edit(EditRequest("remove_background", png((640, 640))))
    cut = opened(image.data)
    assert cut.mode == "RGBA" and cut.size == (640, 640)
    assert cut.getpixel((2, 2))[3] == 0 and cut.getpixel((320, 320))[3] == 255  # type: ignore[index]
    assert set(sent(bedrock, "remove_background")) == {"image", "output_format"}


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (
            EditRequest("search_replace", b"", prompt="a golden crown", target="hat", seed=7, style="Anime"),
            {"prompt": "a golden crown", "search_prompt": "hat", "seed": 7, "style_preset": "anime"},
        ),
        (
            EditRequest("recolor", b"", prompt="a red car", target="car", negative_prompt="blurry", seed=8),
            {"prompt": "a red car", "select_prompt": "car", "negative_prompt": "blurry", "seed": 8},
        ),
        (EditRequest("erase", b"", target="text", seed=9), {"grow_mask": 5, "seed": 9}),
        (
            EditRequest("outpaint", b"", prompt="a fox", expand=(100, 100, 0, 0), seed=1),
            {"left": 100, "right": 100, "prompt": "a fox", "creativity": 0.5, "seed": 1},
        ),
        (
            EditRequest("sketch", b"", prompt="a fox", strength=1.7, seed=2),
            {"prompt": "a fox", "control_strength": 1.0, "seed": 2},
        ),
        (
            EditRequest("style", b"", prompt="a fox", aspect_ratio="4:3", seed=3),
            {"prompt": "a fox", "fidelity": 0.5, "aspect_ratio": "5:4", "seed": 3},
        ),
    ],
    ids=lambda value: value.operation if isinstance(value, EditRequest) else "",
)
def test_each_edit_sends_its_documented_body_with_the_image(
    bedrock: FakeBedrockRuntime, aws_test_credentials: None, request_: EditRequest, expected: dict[str, Any]
) -> None:
    picture = png((800, 600))
    image = editor(bedrock).edit(EditRequest(**{**request_.__dict__, "image": picture}))

    body = sent(bedrock, request_.operation)
    assert body.pop("image") == base64.b64encode(picture).decode()  # the request carries that image
    assert body == {**expected, "output_format": "png"}
    grown = (800 + 200, 600) if request_.operation == "outpaint" else None
    size = (1120, 896) if request_.operation == "style" else grown or (800, 600)
    assert opened(image.data).size == size == (image.width, image.height)


def test_pictures_are_fitted_to_the_limits_or_refused_plainly(
    bedrock: FakeBedrockRuntime, aws_test_credentials: None
) -> None:
    big = png((3100, 3100))
    image = editor(bedrock).edit(EditRequest("remove_background", big))  # 9.6 MP: scaled to 9.4 MP
    width, height = opened(base64.b64decode(sent(bedrock, "remove_background")["image"])).size
    assert width * height <= 9_437_184 and width == height > 3000 and image.width == width
    with pytest.raises(errors.ImageInputError, match="already; Upscale takes images up to 1536 px"):
        editor(bedrock).edit(EditRequest("upscale", big))
    with pytest.raises(errors.ImageInputError, match=r"wider than 2\.5:1"):
        editor(bedrock).edit(EditRequest("recolor", png((1000, 300)), prompt="red", target="car"))
    with pytest.raises(errors.ImageInputError, match="not a picture"):
        editor(bedrock).edit(EditRequest("upscale", b"GIF89a not really"))
    assert len(bedrock.requests_for("invoke", MODELS["upscale"][0])) == 0  # refused before any call


def test_filtered_and_failed_edits_are_clear_errors(
    bedrock: FakeBedrockRuntime, aws_test_credentials: None
) -> None:
    flagged = png((256, 256), INPUT_FILTER_COLOUR)
    with pytest.raises(errors.ContentFilteredError, match="refused the picture") as caught:
        editor(bedrock).edit(EditRequest("sketch", flagged, prompt="a fox"))
    assert caught.value.reason == "input image"
    with pytest.raises(errors.ContentFilteredError, match="refused the prompt"):
        editor(bedrock).edit(EditRequest("style", png((256, 256)), prompt=f"{stand_in.FILTER_WORD} fox"))
    with pytest.raises(errors.UpstreamError, match="Inference error"):
        editor(bedrock).edit(EditRequest("recolor", png((256, 256)), prompt=stand_in.FAIL_WORD, target="x"))


@pytest.mark.parametrize(
    ("model", "body", "problem"),
    [
        ("us.stability.stable-fast-upscale-v1:0", {"output_format": "png"}, "required key [image]"),
        ("us.stability.stable-fast-upscale-v1:0", {"image": "IMAGE", "seed": 3}, "extraneous key [seed]"),
        (
            "us.stability.stable-image-search-replace-v1:0",
            {"image": "IMAGE", "prompt": "x"},
            "[search_prompt]",
        ),
        (
            "us.stability.stable-image-search-recolor-v1:0",
            {"image": "IMAGE", "prompt": "x", "select_prompt": "y", "grow_mask": 21},
            "grow_mask",
        ),
        ("us.stability.stable-outpaint-v1:0", {"image": "IMAGE", "left": 2001}, "left"),
        ("us.stability.stable-outpaint-v1:0", {"image": "IMAGE"}, "at least one of"),
        (
            "us.stability.stable-creative-upscale-v1:0",
            {"image": "IMAGE", "prompt": "x", "creativity": 0.6},
            "creativity",
        ),
        (
            "us.stability.stable-image-remove-background-v1:0",
            {"image": "IMAGE", "output_format": "jpeg"},
            "output_format",
        ),
        (
            "us.stability.stable-image-style-guide-v1:0",
            {"image": "IMAGE", "prompt": "x", "aspect_ratio": "4:3"},
            "aspect_ratio",
        ),
        ("us.stability.stable-style-transfer-v1:0", {"init_image": "IMAGE"}, "[style_image]"),
        (
            "us.stability.stable-image-inpaint-v1:0",
            {"image": "IMAGE", "prompt": "x", "mask": "not an image"},
            "mask",
        ),
        ("us.stability.stable-image-control-sketch-v1:0", {"image": "TALL", "prompt": "x"}, "aspect ratio"),
        ("us.stability.stable-fast-upscale-v1:0", {"image": "HUGE"}, "1,048,576"),
    ],
)
def test_the_stand_in_rejects_bodies_bedrock_would_reject(
    bedrock: FakeBedrockRuntime, aws_test_credentials: None, model: str, body: dict[str, Any], problem: str
) -> None:
    pictures = {"IMAGE": png((256, 256)), "TALL": png((100, 300)), "HUGE": png((1100, 1000))}
    body = {k: base64.b64encode(pictures[v]).decode() if v in pictures else v for k, v in body.items()}
    runner = BedrockImageModel(model, "us-east-1", bedrock.url, max_attempts=1, family=family_for(SD35))
    with pytest.raises(errors.UpstreamError, match="Bedrock rejected the request") as caught:
        runner.invoke_body(body, 0)
    assert problem in str(caught.value)


def test_style_transfer_and_inpaint_answer_like_the_others(
    bedrock: FakeBedrockRuntime, aws_test_credentials: None
) -> None:
    runner = BedrockImageModel(
        "us.stability.stable-style-transfer-v1:0", "us-east-1", bedrock.url, family=family_for(SD35)
    )
    picture = base64.b64encode(png((320, 256))).decode()
    (image,) = runner.invoke_body({"init_image": picture, "style_image": picture, "style_strength": 0.4}, 0)
    assert (image.width, image.height) == (320, 256)


def test_model_ids_are_checked_when_the_editor_is_built() -> None:
    wrong = {
        **MODELS,
        "upscale": ("us.stability.stable-image-remove-background-v1:0", "IMAGINE_UPSCALE_MODEL"),
    }
    with pytest.raises(
        errors.ModelConfigError, match=r"IMAGINE_UPSCALE_MODEL=bedrock:us\.stability\.stable-image-rem"
    ):
        BedrockImageEditor(wrong, "us-east-1")
    with pytest.raises(errors.ModelConfigError, match="edits images rather than drawing them"):
        family_for("us.stability.stable-image-search-replace-v1:0")
    conservative = {"upscale": ("us.stability.stable-conservative-upscale-v1:0", "IMAGINE_UPSCALE_MODEL")}
    assert BedrockImageEditor(conservative, "us-east-1").model_for("upscale") == (
        "bedrock:us.stability.stable-conservative-upscale-v1:0"
    )
    mixed = EditorByOperation({"upscale": OfflineImageEditor()})
    assert (mixed.model_for("upscale"), mixed.model_for("erase")) == ("offline", None)
    with pytest.raises(errors.BotError, match="no model for erase"):
        mixed.edit(EditRequest("erase", b""))


def test_a_missing_model_names_its_setting(bedrock: FakeBedrockRuntime, aws_test_credentials: None) -> None:
    bedrock.fail_next(404, "ResourceNotFoundException", "Could not resolve the model", action="invoke")
    with pytest.raises(errors.ModelUnavailableError, match="set IMAGINE_OUTPAINT_MODEL to a current model"):
        editor(bedrock).edit(EditRequest("outpaint", png((256, 256)), expand=(0, 0, 64, 64)))


def test_sd35_draws_image_to_image_and_core_falls_back_to_text(
    bedrock: FakeBedrockRuntime, aws_test_credentials: None
) -> None:
    picture = png((1344, 768))
    request = ImageRequest(
        "a fox, watercolor", aspect_ratio="16:9", seed=11, init_image=picture, strength=0.35
    )
    sd35 = BedrockImageModel(SD35, "us-east-1", bedrock.url)
    (image,) = sd35.generate(request)
    (request_sent,) = bedrock.requests_for("invoke", SD35)
    assert request_sent.body == {
        "prompt": "a fox, watercolor",
        "mode": "image-to-image",
        "image": base64.b64encode(picture).decode(),
        "strength": 0.35,
        "seed": 11,
        "output_format": "png",
    }
    assert sd35.draws_from_image and (image.width, image.height) == (1344, 768)
    cut_out = png((3000, 3000), (10, 10, 10, 0), mode="RGBA")  # an upscaled cut-out: too big, see-through
    sd35.generate(ImageRequest("a fox", seed=11, init_image=cut_out, strength=0.5))
    with Image.open(io.BytesIO(sent_image_of(bedrock, SD35))) as start:
        assert start.mode == "RGB" and start.width * start.height <= 1_048_576 and start.width == start.height
    core = BedrockImageModel(CORE, "us-east-1", bedrock.url)
    core.generate(request)
    (core_sent,) = bedrock.requests_for("invoke", CORE)
    assert not core.draws_from_image
    assert core_sent.body["mode"] == "text-to-image" and "image" not in core_sent.body


# offline ---------------------------------------------------------------------------------------------------
def preview() -> bytes:
    """An offline preview, as the offline image model draws it."""
    return OfflinePreviewImageModel().generate(ImageRequest("a robot mascot", seed=4))[0].data


def test_offline_upscale_and_outpaint_keep_the_services_sizes_and_limits() -> None:
    edits = OfflineImageEditor()
    up = edits.edit(EditRequest("upscale", preview()))
    assert opened(up.data).size == (3072, 3072) and up.model_id == "offline"
    with pytest.raises(errors.ImageInputError, match="cannot be upscaled again"):
        edits.edit(EditRequest("upscale", up.data))
    wide = edits.edit(EditRequest("outpaint", preview(), expand=(300, 300, 0, 0)))
    image = opened(wide.data)
    assert image.size == (1368, 768)
    assert image.getpixel((0, 400)) == image.getpixel((599, 400))  # mirrored: column 0 matches column 599


def test_offline_cut_out_makes_the_previews_own_background_transparent() -> None:
    picture = preview()
    cut = opened(OfflineImageEditor().edit(EditRequest("remove_background", picture)).data)
    alpha = cut.getchannel("A")
    assert cut.mode == "RGBA"
    assert alpha.getpixel((384, 600)) == 0  # the gradient below the panel is gone
    assert alpha.getpixel((384, 20)) == 255  # the yellow banner stays
    assert alpha.getpixel((100, 150)) == 255  # and so does the prompt's panel
    with Image.open(io.BytesIO(picture)) as original:
        assert background_mask(original).getpixel((5, 700)) == 255


def test_offline_edits_are_labelled_and_follow_the_words() -> None:
    edits = OfflineImageEditor()
    red = opened(edits.edit(EditRequest("recolor", preview(), prompt="a red robot", target="robot")).data)
    plain = opened(preview()).convert("RGBA")
    assert red.getpixel((700, 700))[0] > plain.getpixel((700, 700))[0]  # type: ignore[index]
    tag = red.convert("RGB").crop((0, red.height - 12, 200, red.height)).tobytes()
    yellow = sum(abs(tag[i] - 250) < 8 and abs(tag[i + 2] - 21) < 8 for i in range(0, len(tag), 3))
    assert yellow > 0.6 * len(tag) / 3  # the yellow "OFFLINE RECOLOR" tag in the corner
    style = opened(
        edits.edit(EditRequest("style", png((400, 400)), prompt="a fox", aspect_ratio="16:9")).data
    )
    assert style.size == (768, 432)
    sketch = opened(edits.edit(EditRequest("sketch", png((600, 400)), prompt="a fox", seed=1)).data)
    assert sketch.size == (768, 512)
