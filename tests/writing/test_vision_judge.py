"""The Claude vision judge: Converse with image blocks through langchain-aws, against the Bedrock stand-in."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from bot.engine.turn_errors import UpstreamError
from bot.writing.vision_judge import BedrockVisionJudge, image_block
from sandbox.bedrock_converse import ConverseScript, install_converse_handlers
from sandbox.bedrock_runtime import FakeBedrockRuntime

PROFILE = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


def png(colour: tuple[int, int, int]) -> bytes:
    """A small PNG of one colour."""
    out = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(out, format="PNG")
    return out.getvalue()


def test_the_request_carries_both_images_in_order_and_the_verdict_comes_back(
    fake: FakeBedrockRuntime, script: ConverseScript
) -> None:
    red, blue = png((255, 0, 0)), png((0, 0, 255))
    seen: list[list[bytes]] = []

    def judge(images: list[bytes], body: dict[str, Any]) -> dict[str, Any]:
        seen.append(images)
        return {"adherence": "second", "appeal": "tie", "reason": "the second is bluer"}

    script.judge = judge
    verdict = BedrockVisionJudge(PROFILE, endpoint_url=fake.url).judge("a blue square", red, blue)
    assert (verdict.adherence, verdict.appeal, verdict.reason) == ("second", "tie", "the second is bluer")
    assert verdict.input_tokens > 0 and verdict.output_tokens > 0
    assert seen == [[red, blue]]  # the very bytes, in the order given
    content = script.last["messages"][0]["content"]
    assert [next(iter(block)) for block in content] == ["text", "image", "text", "image", "text"]
    assert content[1]["image"]["format"] == "png" and "<idea>a blue square</idea>" in content[0]["text"]
    assert script.last["inferenceConfig"]["temperature"] == 0.0
    default = install_converse_handlers(fake)  # the stand-in's own verdict: by digest, equal images tie
    same = BedrockVisionJudge(PROFILE, endpoint_url=fake.url).judge("a red square", red, red)
    assert (same.adherence, same.appeal) == ("tie", "tie") and default.bodies


def test_bedrock_rejects_an_image_that_is_not_what_it_says(
    fake: FakeBedrockRuntime, script: ConverseScript
) -> None:
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=fake.url)
    mislabelled = {"image": {"format": "jpeg", "source": {"bytes": png((1, 2, 3))}}}
    with pytest.raises(ClientError) as error:
        client.converse(modelId=PROFILE, messages=[{"role": "user", "content": [mislabelled]}])
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert "does not match the format jpeg" in error.value.response["Error"]["Message"]
    good = {"role": "user", "content": [{"image": {"format": "png", "source": {"bytes": png((1, 2, 3))}}}]}
    assert client.converse(modelId=PROFILE, messages=[good])["stopReason"] == "end_turn"


def test_only_images_are_sent_and_a_bad_verdict_is_an_upstream_error(
    fake: FakeBedrockRuntime, script: ConverseScript
) -> None:
    with pytest.raises(ValueError, match="PNG, JPEG or WebP"):
        image_block(b"not an image")
    assert image_block(png((0, 0, 0)))["mime_type"] == "image/png"
    assert base64.b64decode(image_block(png((0, 0, 0)))["base64"]) == png((0, 0, 0))
    script.push_tool_input({"adherence": "both", "appeal": "first", "reason": "?"})
    with pytest.raises(UpstreamError, match="no usable verdict"):
        BedrockVisionJudge(PROFILE, endpoint_url=fake.url).judge("a cat", png((0, 0, 0)), png((9, 9, 9)))
