"""Claude's borrowed claims are checked against the hits, and a draft that lost the subject is re-asked once.

Real langchain-aws ChatBedrockConverse and botocore against the loopback Bedrock Runtime stand-in.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.engine.ports import ComposeRequest, HitForPrompt
from bot.writing.claude import BedrockChatModel
from bot.writing.dialect import DIALECT_MODELS, Dialect
from sandbox.bedrock_converse import ConverseScript
from sandbox.bedrock_runtime import FakeBedrockRuntime, FakeResponse

PROFILE = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
HITS = (
    HitForPrompt(1, "a castle on a hill, matte painting, soft morning light, by greg rutkowski"),
    HitForPrompt(2, "a fox in a meadow, watercolor painting, pastel colors"),
)


def draft(prompt: str, used: list[int], borrowed: list[str]) -> dict[str, Any]:
    """A schema-conforming ImagePrompt tool input."""
    return {
        "prompt": prompt,
        "negative_prompt": "blurry",
        "aspect_ratio": "1:1",
        "style": "watercolor",
        "used_hits": used,
        "borrowed": borrowed,
        "rationale": "borrowed the look",
    }


def answer(tool_input: dict[str, Any], tokens_in: int, tokens_out: int) -> FakeResponse:
    """A Converse answer with one ImagePrompt tool call and the given usage."""
    block = {"toolUse": {"toolUseId": "tooluse_1", "name": "ImagePrompt", "input": tool_input}}
    usage = {"inputTokens": tokens_in, "outputTokens": tokens_out, "totalTokens": tokens_in + tokens_out}
    message = {"role": "assistant", "content": [block]}
    return FakeResponse(body={"output": {"message": message}, "stopReason": "tool_use", "usage": usage})


def compose(fake: FakeBedrockRuntime, **fields: Any) -> Any:
    """Compose a start request (the fox idea, both hits) with Claude on the stand-in."""
    fields = {"kind": "start", "idea": "a red fox in the snow", "hits": HITS, **fields}
    return BedrockChatModel(PROFILE, endpoint_url=fake.url).compose(ComposeRequest(**fields))


def test_borrowed_claims_are_kept_only_when_a_cited_hit_and_the_prompt_hold_them(
    fake: FakeBedrockRuntime, script: ConverseScript
) -> None:
    prompt = "a red fox in the snow, watercolor painting, soft morning light, pastel colors"
    claims = ["watercolor painting", "soft morning light", "pastel colors", "neon glow", "matte painting"]
    script.push_tool_input(draft(prompt, [2], claims))
    (result,) = compose(fake).drafts
    # soft morning light is in hit 1, which was not cited; neon glow is nowhere; matte painting not used
    assert result.borrowed == ("watercolor painting", "pastel colors")
    assert result.used_hits == (2,)
    schema = script.last["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]
    assert "borrowed" in schema["properties"] and "borrowed" not in schema["required"]


def test_the_default_stand_in_draft_borrows_a_phrase_of_hit_one(
    fake: FakeBedrockRuntime, script: ConverseScript
) -> None:
    (result,) = compose(fake).drafts
    assert result.borrowed == ("by greg rutkowski",) and result.used_hits == (1,)
    assert "by greg rutkowski" in result.prompt


def test_a_draft_that_lost_the_subject_is_asked_for_once_more(
    fake: FakeBedrockRuntime, script: ConverseScript, caplog: pytest.LogCaptureFixture
) -> None:
    matte = ["matte painting"]
    script.push_response(answer(draft("a castle on a hill, matte painting", [1], matte), 100, 10))
    script.push_response(answer(draft("a red fox in the snow, matte painting", [1], matte), 120, 12))
    with caplog.at_level(logging.WARNING, logger="bot.writing.claude"):
        result = compose(fake)
    assert result.drafts[0].prompt == "a red fox in the snow, matte painting"
    assert result.extra_calls == 1 and (result.input_tokens, result.output_tokens) == (220, 22)
    first, second = script.bodies
    assert "<retry>" not in script.user_text(first) and "<retry>" in script.user_text(second)
    assert "a castle on a hill" in script.user_text(second)  # it says which prompt lost the subject
    assert "lost the idea's subject" in caplog.text


def test_lost_twice_falls_back_to_the_idea_with_the_borrowed_phrases(
    fake: FakeBedrockRuntime, script: ConverseScript
) -> None:
    for _ in range(2):
        script.push_tool_input(draft("a castle on a hill, matte painting", [1], ["matte painting"]))
    model = DIALECT_MODELS[Dialect.TAGS]
    result = compose(fake, image_model=model, max_prompt_chars=380)
    (fallback,) = result.drafts
    assert fallback.prompt == "a red fox in the snow, matte painting"
    assert fallback.borrowed == ("matte painting",) and fallback.used_hits == (1,)
    assert result.extra_calls == 1 and len(script.bodies) == 2


def test_a_refinement_may_change_the_subject(fake: FakeBedrockRuntime, script: ConverseScript) -> None:
    script.push_tool_input(draft("a grey wolf in the snow, watercolor painting", [2], ["watercolor"]))
    result = compose(fake, kind="refine", instruction="make it a wolf instead")
    assert result.extra_calls == 0 and len(script.bodies) == 1
    assert result.drafts[0].prompt.startswith("a grey wolf")


@pytest.mark.parametrize(
    ("dialect", "phrase"),
    [(Dialect.TAGS, "comma-separated tags"), (Dialect.PROSE, "T5"), (Dialect.NOVA, "NEVER put a negation")],
)
def test_the_system_prompt_follows_the_target_image_model(
    fake: FakeBedrockRuntime, script: ConverseScript, dialect: Dialect, phrase: str
) -> None:
    compose(fake, image_model=DIALECT_MODELS[dialect], avoid=("text",), style="anime")
    assert phrase in script.system_text()
    user = script.user_text()
    assert f"(dialect: {dialect.value})" in user
    assert "<turn_options>" in user and "must not appear: text" in user and "style: anime" in user
