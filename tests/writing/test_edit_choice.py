"""How a refinement works on the image: the offline choice, Claude's tool fields, and Claude describing a
picture through Converse image blocks (real langchain-aws and botocore against the loopback stand-in)."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from bot.engine.ports import ComposeRequest, TurnMemory
from bot.engine.turn_errors import UpstreamError
from bot.writing.claude import VISION_SIDE, BedrockChatModel
from bot.writing.edit_choice import choose_edit
from bot.writing.offline_composer import OfflineComposer
from bot.writing.offline_describer import OfflineDescriber
from sandbox.bedrock_converse import ConverseScript
from sandbox.bedrock_runtime import FakeBedrockRuntime

PROFILE = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
EDITS = ("search_replace", "recolor", "erase", "outpaint", "upscale", "remove_background")
START = TurnMemory("start", "a cat wearing a hat", "a cat wearing a hat, digital painting", "blurry")
DRAFT: dict[str, Any] = {
    "prompt": "a cat wearing a golden crown, digital painting",
    "negative_prompt": "blurry",
    "aspect_ratio": "1:1",
    "style": "digital painting",
    "used_hits": [],
    "rationale": "swapped the hat",
}


@pytest.mark.parametrize(
    ("instruction", "edit", "target", "replacement"),
    [
        ("swap the hat for a crown", "search_replace", "hat", "a crown"),
        ("please replace the dog with a cat", "search_replace", "dog", "a cat"),
        ("make the car red", "recolor", "car", "red car"),
        ("turn the sky dark blue", "recolor", "sky", "dark blue sky"),
        ("remove the text", "erase", "text", ""),
        ("get rid of the lamp", "erase", "lamp", ""),
        ("wider", "outpaint", "", ""),
        ("make it 16:9", "outpaint", "", ""),
        ("--ar 9:16", "outpaint", "", ""),
        ("sharper", "upscale", "", ""),
        ("bigger", "upscale", "", ""),
        ("remove the background", "remove_background", "", ""),
        ("start over", "new", "", ""),
        ("new composition please", "new", "", ""),
        ("no text", "keep", "", ""),
        ("make it watercolor", "keep", "", ""),
    ],
)
def test_the_offline_choice_follows_the_words(
    instruction: str, edit: str, target: str, replacement: str
) -> None:
    choice = choose_edit(instruction, EDITS)
    assert (choice.edit, choice.target, choice.replacement) == (edit, target, replacement)


def test_strength_follows_what_changes_and_edits_need_the_image() -> None:
    assert choose_edit("make it watercolor", EDITS).strength == 0.7  # a new medium moves far
    assert choose_edit("brighter", EDITS).strength == 0.35  # a tweak of the light stays close
    assert choose_edit("add a scarf", EDITS).strength == 0.5
    assert choose_edit("swap the hat for a crown", ()).edit == "keep"  # no image to edit: draw again
    assert choose_edit("start over", ()).edit == "new"


def test_the_offline_composer_says_which_edit_and_names_the_result() -> None:
    request = ComposeRequest(
        kind="refine", idea="a cat wearing a hat", instruction="swap the hat for a crown", history=(START,)
    )
    (draft,) = OfflineComposer(None).compose(ComposeRequest(**{**request.__dict__, "edits": EDITS})).drafts
    assert (draft.edit, draft.edit_target, draft.edit_prompt) == ("search_replace", "hat", "a crown")
    assert draft.prompt.startswith("a cat wearing a crown") and "swap" not in draft.prompt
    (plain,) = OfflineComposer(None).compose(request).drafts
    assert plain.edit == "keep"
    (start,) = OfflineComposer(None).compose(ComposeRequest(kind="start", idea="a cat")).drafts
    assert start.edit is None and start.strength is None  # only refinements choose


def claude(fake: FakeBedrockRuntime) -> BedrockChatModel:
    """Claude on the stand-in, one attempt per call."""
    return BedrockChatModel(PROFILE, endpoint_url=fake.url, max_attempts=1)


def refine(edits: tuple[str, ...] = EDITS) -> ComposeRequest:
    """A refinement of a thread whose image allows `edits`."""
    return ComposeRequest(
        kind="refine",
        idea="a cat wearing a hat",
        instruction="swap the hat for a crown",
        history=(START,),
        edits=edits,
    )


def test_claude_is_offered_the_edits_and_its_choice_reaches_the_draft(
    fake: FakeBedrockRuntime, script: ConverseScript
) -> None:
    script.push_tool_input(
        {**DRAFT, "edit": "search_replace", "edit_target": " hat ", "edit_prompt": "a crown"}
    )
    (draft,) = claude(fake).compose(refine()).drafts
    assert (draft.edit, draft.edit_target, draft.edit_prompt) == ("search_replace", "hat", "a crown")
    schema = script.last["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]
    assert schema["properties"]["edit"]["enum"] == ["keep", "new", *EDITS]
    assert "strength" in schema["properties"] and "edit" not in schema.get("required", [])
    assert f"<edits>{', '.join(EDITS)}</edits>" in script.system_text()
    script.push_tool_input({**DRAFT, "edit": "keep", "strength": 0.3})
    (kept,) = claude(fake).compose(refine(())).drafts
    assert (kept.edit, kept.strength) == ("keep", 0.3)
    assert script.last["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["properties"]["edit"][
        "enum"
    ] == ["keep", "new"]


def test_an_edit_the_image_does_not_allow_is_refused(
    fake: FakeBedrockRuntime, script: ConverseScript
) -> None:
    script.push_tool_input({**DRAFT, "edit": "outpaint"})
    with pytest.raises(UpstreamError, match="broke the schema"):
        claude(fake).compose(refine(("upscale",)))
    script.push_tool_input({**DRAFT, "edit": "keep", "strength": 3})
    with pytest.raises(UpstreamError, match="broke the schema"):
        claude(fake).compose(refine())


def picture(size: tuple[int, int], fmt: str = "PNG") -> bytes:
    """A pale picture with a dark stroke."""
    image = Image.new("RGB", size, (245, 245, 240))
    image.paste((20, 20, 20), (size[0] // 4, size[1] // 2, size[0] * 3 // 4, size[1] // 2 + 8))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def test_claude_describes_a_picture_through_a_converse_image_block(
    fake: FakeBedrockRuntime, script: ConverseScript
) -> None:
    data = picture((640, 480))
    described = claude(fake).describe(data, "image/png", "my dog <!here>")
    [message] = script.last["messages"]
    image, text = message["content"]
    assert image == {"image": {"format": "png", "source": {"bytes": base64.b64encode(data).decode()}}}
    assert "<caption>my dog &lt;!here&gt;</caption>" in text["text"]
    assert "Reply with the prompt only" in script.system_text() and "toolConfig" not in script.last
    assert described.text.startswith("my dog <!here>, a pale hand-drawn sketch, 640x480 px")
    assert described.model_id == f"bedrock:{PROFILE}" and not described.is_offline
    assert described.input_tokens > 0


def test_big_photos_are_scaled_down_for_the_vision_model(
    fake: FakeBedrockRuntime, script: ConverseScript
) -> None:
    claude(fake).describe(picture((3000, 2000), "JPEG"), "image/jpeg")
    [message] = script.last["messages"]
    block = message["content"][0]["image"]
    with Image.open(io.BytesIO(base64.b64decode(block["source"]["bytes"]))) as sent:
        assert block["format"] == "jpeg" and max(sent.size) == VISION_SIDE


def test_the_offline_describer_is_a_labelled_stand_in() -> None:
    described = OfflineDescriber().describe(picture((300, 300)), "image/png", "IMG_2041_dog-sketch.png")
    assert described.text.startswith("dog sketch, pencil sketch, white") and described.is_offline
    colourful = OfflineDescriber().describe(_red(), "image/png", "")
    assert colourful.text.startswith("an image, picture, red")


def _red() -> bytes:
    """A red picture."""
    out = io.BytesIO()
    Image.new("RGB", (100, 100), (210, 40, 40)).save(out, format="PNG")
    return out.getvalue()
