"""Bedrock and SageMaker image models with real boto3 against the loopback stand-ins."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.config import DEFAULT_IMAGE_MODEL
from bot.drawing import image_bodies as bodies
from bot.drawing.bedrock_images import BedrockImageModel, SageMakerSdxlModel, family_for
from bot.engine import turn_errors as errors
from bot.engine.ports import ImageRequest
from bot.slack.reply import failure_text
from sandbox import bedrock_image_models as stand_in
from sandbox.bedrock_runtime import FakeBedrockRuntime
from tests.fakes.sagemaker_runtime import FakeSageMakerRuntime

SD35 = "stability.sd3-5-large-v1:0"
CORE = "stability.stable-image-core-v1:1"
ULTRA = "stability.stable-image-ultra-v1:1"
SDXL = "stability.stable-diffusion-xl-v1"
NOVA = "amazon.nova-canvas-v1:0"
TITAN = "amazon.titan-image-generator-v2:0"
SDXL_EXPECTED = {"1:1": (1024, 1024), "16:9": (1344, 768), "9:16": (768, 1344), "3:2": (1216, 832)}
SDXL_EXPECTED |= {"2:3": (832, 1216), "5:4": (1152, 896), "4:5": (896, 1152), "9:21": (640, 1536)}
V2_FILTERS = [(stand_in.FILTER_WORD, "prompt"), (stand_in.OUTPUT_FILTER_WORD, "output image")]
NOVA_FILTERS = [(stand_in.FILTER_WORD, "output image"), (stand_in.BLOCK_WORD, "prompt")]
FOX = ImageRequest("a red fox in the snow, golden hour", "blurry, text", "16:9", seed=42)


@pytest.fixture
def fake() -> Iterator[FakeBedrockRuntime]:
    """A running Bedrock Runtime stand-in that answers the image families."""
    with FakeBedrockRuntime() as server:
        yield stand_in.install_image_handlers(server)


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy static credentials, and no ~/.aws files (the conftest has removed every AWS_* variable)."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep botocore's real retry decisions but skip its sleeps (backoff and adaptive token bucket)."""
    from botocore.retries import bucket, standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    monkeypatch.setattr(bucket.TokenBucket, "_sleep_amount", lambda self, amount: 0.0)


def model(fake: FakeBedrockRuntime, model_id: str, **kwargs: Any) -> BedrockImageModel:
    """A Bedrock image model pointed at the fake."""
    return BedrockImageModel(model_id, "us-east-1", endpoint_url=fake.url, **kwargs)


def bodies_for(fake: FakeBedrockRuntime, model_id: str) -> list[dict[str, Any]]:
    """JSON bodies the fake received for a model."""
    return [r.body for r in fake.requests_for("invoke", model_id)]


def png_size(data: bytes) -> tuple[int, int]:
    """Size of PNG bytes (and proof they are a PNG)."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as image:
        return image.size


# Stability SD3.5 / Core / Ultra -------------------------------------------------------------------------
def test_sd35_sends_the_documented_body_and_reads_the_png(fake: FakeBedrockRuntime, creds: None) -> None:
    images = model(fake, SD35).generate(FOX)

    (request,) = fake.requests
    assert request.path == "/model/stability.sd3-5-large-v1%3A0/invoke"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert request.body == {
        "prompt": "a red fox in the snow, golden hour",
        "negative_prompt": "blurry, text",
        "mode": "text-to-image",
        "aspect_ratio": "16:9",
        "seed": 42,
        "output_format": "png",
    }
    (image,) = images
    assert (image.seed, image.model_id, image.mime_type) == (42, f"bedrock:{SD35}", "image/png")
    assert (image.width, image.height) == png_size(image.data) == (1344, 768)


@pytest.mark.parametrize("model_id", [CORE, ULTRA])
def test_core_and_ultra_omit_an_empty_negative_and_snap_the_aspect_ratio(
    fake: FakeBedrockRuntime, creds: None, model_id: str
) -> None:
    request = ImageRequest("a lighthouse in a storm", aspect_ratio="4:3", seed=7)
    (image,) = model(fake, model_id).generate(request)

    (body,) = bodies_for(fake, model_id)
    assert body == {
        "prompt": "a lighthouse in a storm",
        "mode": "text-to-image",
        "aspect_ratio": "5:4",
        "seed": 7,
        "output_format": "png",
    }
    assert (image.width, image.height) == (1120, 896)


def test_count_makes_one_call_per_image_with_consecutive_seeds(fake: FakeBedrockRuntime, creds: None) -> None:
    images = model(fake, SD35).generate(ImageRequest("a cat", seed=100, count=3))

    assert sorted(body["seed"] for body in bodies_for(fake, SD35)) == [100, 101, 102]
    assert [image.seed for image in images] == [100, 101, 102]
    assert len({image.data for image in images}) == 3
    (image,) = model(fake, CORE).generate(ImageRequest("a cat", seed=0))
    assert bodies_for(fake, CORE)[0]["seed"] == 0
    assert image.seed != 0  # Stability draws a seed for 0 and reports it


@pytest.mark.parametrize(("word", "reason"), V2_FILTERS)
def test_filtered_stability_answers_raise_with_the_reason(
    fake: FakeBedrockRuntime, creds: None, word: str, reason: str
) -> None:
    with pytest.raises(errors.ContentFilteredError) as caught:
        model(fake, SD35).generate(ImageRequest(f"a {word} scene"))
    assert caught.value.reason == reason
    assert SD35 in str(caught.value)
    with pytest.raises(errors.UpstreamError, match="Inference error"):
        model(fake, CORE).generate(ImageRequest(f"a {stand_in.FAIL_WORD} scene"))


def test_default_model_via_the_standard_endpoint_env_var(
    fake: FakeBedrockRuntime, creds: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake.url)
    provider, _, model_id = DEFAULT_IMAGE_MODEL.partition(":")
    image_model = BedrockImageModel(model_id, region="us-west-2")

    (image,) = image_model.generate(ImageRequest("a red fox", aspect_ratio="9:16", seed=3))

    assert provider == "bedrock"
    assert image_model.model_id == DEFAULT_IMAGE_MODEL
    assert image_model.is_offline is False
    (request,) = fake.requests_for("invoke", model_id)
    assert "/us-west-2/bedrock/aws4_request" in request.headers["authorization"]
    assert (image.width, image.height) == (768, 1344)


# SDXL ------------------------------------------------------------------------------------------------------
def test_sdxl_sends_weighted_prompts_and_an_allowed_size(fake: FakeBedrockRuntime, creds: None) -> None:
    request = ImageRequest("a red fox", "blurry", "21:9", seed=9, style="Pixel Art")
    (image,) = model(fake, SDXL).generate(request)

    (body,) = bodies_for(fake, SDXL)
    assert body == {
        "text_prompts": [{"text": "a red fox", "weight": 1.0}, {"text": "blurry", "weight": -1.0}],
        "cfg_scale": 7,
        "steps": 30,
        "seed": 9,
        "width": 1536,
        "height": 640,
        "samples": 1,
        "style_preset": "pixel-art",
    }
    assert (image.seed, image.width, image.height) == (9, 1536, 640)


@pytest.mark.parametrize(("aspect", "size"), SDXL_EXPECTED.items())
def test_sdxl_sizes_and_unknown_styles(aspect: str, size: tuple[int, int]) -> None:
    body = bodies.sdxl_body(ImageRequest("x", aspect_ratio=aspect, style="watercolour"))
    assert (body["width"], body["height"]) == size
    assert "style_preset" not in body
    assert body["text_prompts"] == [{"text": "x", "weight": 1.0}]


def test_sdxl_content_filtered_artifact(fake: FakeBedrockRuntime, creds: None) -> None:
    with pytest.raises(errors.ContentFilteredError) as caught:
        model(fake, SDXL).generate(ImageRequest(f"{stand_in.FILTER_WORD} fox"))
    assert caught.value.reason == "output image"


# Nova Canvas / Titan Image v2 -----------------------------------------------------------------------------
@pytest.mark.parametrize("model_id", [NOVA, TITAN])
def test_nova_and_titan_send_text_image_bodies(fake: FakeBedrockRuntime, creds: None, model_id: str) -> None:
    images = model(fake, model_id).generate(
        ImageRequest("a red fox", "blurry", "1:1", seed=900_000_000, count=2)
    )

    (body,) = bodies_for(fake, model_id)
    assert body == {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a red fox", "negativeText": "blurry"},
        "imageGenerationConfig": {
            "width": 1024,
            "height": 1024,
            "quality": "standard",
            "cfgScale": 6.5,
            "seed": 900_000_000 % 858_993_460,
            "numberOfImages": 2,
        },
    }
    assert [(i.seed, i.width, i.height) for i in images] == [(41_006_540, 1024, 1024)] * 2
    assert images[0].data != images[1].data


def test_nova_limits_text_length_sizes_and_batches(fake: FakeBedrockRuntime, creds: None) -> None:
    long_prompt = "a very detailed castle " * 100
    images = model(fake, NOVA).generate(ImageRequest(long_prompt, aspect_ratio="21:9", seed=1, count=7))

    sent = sorted(bodies_for(fake, NOVA), key=lambda b: b["imageGenerationConfig"]["seed"])
    assert [b["imageGenerationConfig"]["numberOfImages"] for b in sent] == [5, 2]
    assert [b["imageGenerationConfig"]["seed"] for b in sent] == [1, 6]
    assert all(len(b["textToImageParams"]["text"]) <= 1024 for b in sent)
    assert "negativeText" not in sent[0]["textToImageParams"]
    config = sent[0]["imageGenerationConfig"]
    assert config["width"] % 64 == 0 and config["height"] % 64 == 0
    assert 0.8e6 < config["width"] * config["height"] < 1.3e6
    assert len(images) == 7


@pytest.mark.parametrize(("word", "reason"), NOVA_FILTERS)
def test_nova_content_filters(fake: FakeBedrockRuntime, creds: None, word: str, reason: str) -> None:
    with pytest.raises(errors.ContentFilteredError) as caught:
        model(fake, NOVA).generate(ImageRequest(f"a {word} scene"))
    assert caught.value.reason == reason


def test_one_filtered_image_of_several_is_skipped(
    fake: FakeBedrockRuntime, creds: None, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail_next(400, "ValidationException", "This request has been blocked by our content filters.")
    images = model(fake, SD35).generate(ImageRequest("a cat", seed=1, count=3))
    assert len(images) == 2
    assert "content-filtered" in caplog.text


# errors ----------------------------------------------------------------------------------------------------
BUSY = [(429, "ThrottlingException"), (503, "ServiceUnavailableException")]


@pytest.mark.parametrize(("status", "code"), BUSY)
def test_persistent_throttling_is_a_throttled_error(
    fake: FakeBedrockRuntime, creds: None, no_backoff: None, status: int, code: str
) -> None:
    fake.fail_next(status, code, times=50)
    with pytest.raises(errors.ThrottledError, match="Bedrock is busy") as caught:
        model(fake, SD35, max_attempts=3).generate(FOX)
    assert "after 3 attempts): try again in a minute" in str(caught.value)
    assert len(fake.requests) == 3
    assert caught.value.attempts == 3  # the user's message reads the count, not the text
    assert "still busy after 3 attempts" in failure_text.describe(caught.value).text


def test_transient_throttling_is_retried_by_botocore(
    fake: FakeBedrockRuntime, creds: None, no_backoff: None
) -> None:
    fake.fail_next(429, "ThrottlingException", times=2)
    (image,) = model(fake, SD35).generate(FOX)
    assert len(fake.requests) == 3
    assert image.seed == 42


def test_client_has_retries_and_timeouts(fake: FakeBedrockRuntime, creds: None) -> None:
    config = model(fake, SD35, max_attempts=3).client.meta.config
    assert config.retries == {"total_max_attempts": 3, "mode": "adaptive"}
    assert (config.connect_timeout, config.read_timeout) == (5, 120)


def test_access_denied_names_region_and_iam_action(fake: FakeBedrockRuntime, creds: None) -> None:
    fake.fail_next(
        403, "AccessDeniedException", "You don't have access to the model with the specified model ID."
    )
    with pytest.raises(errors.AccessDeniedError) as caught:
        BedrockImageModel(SD35, "eu-west-1", endpoint_url=fake.url).generate(FOX)
    message = str(caught.value)
    assert "eu-west-1" in message and "bedrock:InvokeModel" in message and SD35 in message


def test_retired_model_is_unavailable(fake: FakeBedrockRuntime, creds: None) -> None:
    fake.retire(SDXL)
    with pytest.raises(errors.ModelUnavailableError) as caught:
        model(fake, SDXL).generate(FOX)
    message = str(caught.value)
    assert "IMAGINE_IMAGE_MODEL" in message and SDXL in message
    assert "bedrock:stability.sd3-5-large-v1:0" in message
    fake.retire(SD35)
    with pytest.raises(errors.ModelUnavailableError, match=r"end of life.*stable-image-core-v1:1"):
        model(fake, SD35).generate(FOX)


def test_unknown_model_and_other_validation_errors(fake: FakeBedrockRuntime, creds: None) -> None:
    with FakeBedrockRuntime() as bare, pytest.raises(errors.ModelUnavailableError, match="was not found"):
        model(bare, "stability.sd3-large-v1:0").generate(FOX)
    fake.fail_next(400, "ValidationException", "Malformed input request: prompt too long")
    with pytest.raises(errors.UpstreamError, match="prompt too long"):
        model(fake, SD35).generate(FOX)


def test_unsupported_model_id_is_a_config_error() -> None:
    with pytest.raises(errors.ModelConfigError, match="IMAGINE_IMAGE_MODEL"):
        BedrockImageModel("meta.llama3-70b-instruct-v1:0", "us-east-1")
    assert family_for("us.stability.sd3-5-large-v1:0").name == "stability-v2"
    assert BedrockImageModel(f"bedrock:{NOVA}", "us-east-1").model_id == f"bedrock:{NOVA}"


def test_missing_credentials_are_access_denied(
    fake: FakeBedrockRuntime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    with pytest.raises(errors.AccessDeniedError, match="credentials"):
        model(fake, SD35).generate(FOX)
    assert fake.requests == []


# the stand-in is strict ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model_id", "body", "detail"),
    [
        (SD35, {"prompt": "x", "cfg_scale": 7}, "extraneous key [cfg_scale]"),
        (SD35, {"prompt": "x", "aspect_ratio": "4:3"}, "aspect_ratio"),
        (SD35, {"negative_prompt": "x"}, "required key [prompt]"),
        (SDXL, {"text_prompts": [{"text": "x"}], "width": 1000, "height": 1000}, "dimensions"),
        (SDXL, {"prompt": "x"}, "extraneous key [prompt]"),
        (SDXL, {"text_prompts": [{"text": "x"}], "style_preset": "watercolour"}, "style_preset"),
        (NOVA, {"taskType": "TEXT_IMAGE", "textToImageParams": {}}, "required key [text]"),
        (NOVA, {"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "x", "negativeText": ""}}, "length"),
        (TITAN, {"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "x", "style": "ANIME"}}, "style"),
    ],
)
def test_stand_in_rejects_undocumented_bodies(
    fake: FakeBedrockRuntime, creds: None, model_id: str, body: dict[str, Any], detail: str
) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "bedrock-runtime",
        "us-east-1",
        endpoint_url=fake.url,
        config=Config(retries={"total_max_attempts": 1}),
    )
    with pytest.raises(client.exceptions.ValidationException, match=detail.replace("[", r"\[")):
        client.invoke_model(
            modelId=model_id, body=json.dumps(body), contentType="application/json", accept="application/json"
        )


# pure parsing ----------------------------------------------------------------------------------------------
def test_parsers_keep_the_request_seed_and_reject_garbage() -> None:
    png = base64.b64encode(b"\x89PNG fake").decode()
    assert bodies.parse_stability_v2({"images": [png], "finish_reasons": [None]}, SD35, fallback_seed=5) == [
        (b"\x89PNG fake", 5)
    ]
    assert bodies.parse_sdxl(
        {"artifacts": [{"base64": png, "finishReason": "SUCCESS"}]}, fallback_seed=6
    ) == [(b"\x89PNG fake", 6)]
    with pytest.raises(errors.UpstreamError, match="not valid base64"):
        bodies.parse_nova({"images": ["not base64!"]})
    with pytest.raises(errors.UpstreamError, match="internal"):
        bodies.parse_nova({"error": "internal failure"})
    with pytest.raises(errors.UpstreamError, match="malformed"):
        bodies.parse_stability_v2([], SD35)
    with pytest.raises(ValueError, match="empty prompt"):
        bodies.stability_v2_body(ImageRequest("   "))


# SageMaker JumpStart SDXL ----------------------------------------------------------------------------------
@pytest.fixture
def sagemaker() -> Iterator[FakeSageMakerRuntime]:
    """A running SageMaker Runtime stand-in with one SDXL endpoint."""
    with FakeSageMakerRuntime() as server:
        server.add_sdxl_endpoint("sdxl-jumpstart")
        yield server


def test_sagemaker_sdxl_endpoint(
    sagemaker: FakeSageMakerRuntime, creds: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_model = SageMakerSdxlModel("sdxl-jumpstart", "us-east-1", endpoint_url=sagemaker.url)
    (image,) = image_model.generate(ImageRequest("a red fox", "blurry", "2:3", seed=11))

    (request,) = sagemaker.requests_for("invocations", "sdxl-jumpstart")
    assert request.path == "/endpoints/sdxl-jumpstart/invocations"
    assert "/us-east-1/sagemaker/aws4_request" in request.headers["authorization"]
    assert request.body == bodies.sdxl_body(ImageRequest("a red fox", "blurry", "2:3", seed=11))
    assert (image.model_id, image.seed, image.width, image.height) == (image_model.model_id, 11, 832, 1216)
    assert image_model.model_id == "sagemaker:sdxl-jumpstart" and image_model.is_offline is False
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", sagemaker.url)  # boto3's standard variable
    (image,) = SageMakerSdxlModel("sagemaker:sdxl-jumpstart", "us-east-1").generate(FOX)
    assert image.model_id == "sagemaker:sdxl-jumpstart"
    assert len(sagemaker.requests) == 2


def test_sagemaker_errors(sagemaker: FakeSageMakerRuntime, creds: None, no_backoff: None) -> None:
    with pytest.raises(errors.ModelUnavailableError, match="IMAGINE_IMAGE_MODEL"):
        SageMakerSdxlModel("missing", "us-east-1", endpoint_url=sagemaker.url).generate(FOX)
    image_model = SageMakerSdxlModel(
        "sdxl-jumpstart", "us-east-1", endpoint_url=sagemaker.url, max_attempts=2
    )
    sagemaker.fail_next(424, "ModelError", "Received server error (500) from primary", action="invocations")
    with pytest.raises(errors.UpstreamError, match="ModelError"):
        image_model.generate(FOX)
    sagemaker.fail_next(429, "ThrottlingException", times=2, action="invocations")
    with pytest.raises(errors.ThrottledError, match="SageMaker is busy"):
        image_model.generate(FOX)
    with pytest.raises(errors.ContentFilteredError):
        image_model.generate(ImageRequest(f"{stand_in.FILTER_WORD} fox"))
