"""Through the real Slack app against the stand-ins (the sandbox workspace, Bedrock Runtime with SD3.5, the
Image Services and Claude): Upscale and Remove background, refinements that keep the seed or edit the
image, a posted sketch used as sketch, style or described, and the avatar winner's icon."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from bot.config import EDIT_MODELS
from bot.drawing.bedrock_edits import BedrockImageEditor
from bot.drawing.bedrock_images import BedrockImageModel
from bot.engine.ports import ThreadRef
from bot.slack.ids import (
    ACTION_DESCRIBE,
    ACTION_PICK_WINNER,
    ACTION_REMOVE_BACKGROUND,
    ACTION_UPSCALE,
    ACTION_USE_SKETCH,
    ACTION_USE_STYLE,
    COMMAND_AVATAR,
)
from bot.writing.claude import BedrockChatModel
from retrieval.search import Retriever
from sandbox.bedrock_converse import ConverseScript, install_converse_handlers
from sandbox.bedrock_image_models import install_image_handlers
from sandbox.bedrock_runtime import FakeBedrockRuntime
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_models import ALICE, BOB, GENERAL
from tests.slack.slack_rig import TEAM, Json, Rig, block_ids, button_value, imagine, results, serve, wait_for

SD35 = "stability.sd3-5-large-v1:0"
CLAUDE = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
SERVICES = {op: model for op, (_, model) in EDIT_MODELS.items()}


@contextmanager
def on_bedrock(
    fake: FakeSlackApi, retriever: Retriever, folder: Path
) -> Iterator[tuple[Rig, FakeBedrockRuntime, ConverseScript]]:
    """The app with SD3.5, the Image Services and Claude, all on the Bedrock Runtime stand-in."""
    with FakeBedrockRuntime() as bedrock:
        install_image_handlers(bedrock)
        script = install_converse_handlers(bedrock)
        url = bedrock.url
        models = {op: (model, f"IMAGINE_{op.upper()}_MODEL") for op, model in SERVICES.items()}
        with serve(
            fake,
            retriever,
            folder,
            images=BedrockImageModel(SD35, "us-east-1", url, max_attempts=1),
            editor=BedrockImageEditor(models, "us-east-1", url, max_attempts=1),
            chat=BedrockChatModel(CLAUDE, endpoint_url=url, max_attempts=1),
        ) as rig:
            yield rig, bedrock, script


def sent_image(bedrock: FakeBedrockRuntime, model_id: str, key: str = "image") -> bytes:
    """The picture the latest request to a model carried."""
    request = bedrock.requests_for("invoke", model_id)[-1]
    assert isinstance(request.body, dict)
    return base64.b64decode(request.body[key])


def upload_of(fake: FakeSlackApi, message: Json) -> bytes:
    """The bytes of the (first) file shared in a message."""
    file_id = message["files"][0]["id"]
    return bytes(next(u for u in fake.uploads() if u["id"] == file_id)["data"])


def new_result(fake: FakeSlackApi, root_ts: str, count: int) -> Json:
    """Wait for the thread's result number `count` and return it."""
    wait_for(lambda: len(results(fake, root_ts)) >= count)
    return results(fake, root_ts)[count - 1]


def image_before(fake: FakeSlackApi, root_ts: str, result: Json) -> Json:
    """The file message uploaded right before a result message."""
    thread = fake.messages(GENERAL, root_ts)
    index = next(i for i, m in enumerate(thread) if m["ts"] == result["ts"])
    return next(m for m in reversed(thread[:index]) if m.get("files"))


def note(result: Json) -> str:
    """The line under an image saying how it was made."""
    return " ".join(shown(b) for b in result["blocks"] if b.get("block_id") == "operation")


def shown(value: object) -> str:
    """JSON of Slack payload parts as people would read them (no \\u escapes)."""
    return json.dumps(value, ensure_ascii=False)


def size_and_mode(data: bytes) -> tuple[tuple[int, int], str]:
    """A picture's size and mode."""
    with Image.open(io.BytesIO(data)) as image:
        return image.size, image.mode


def test_upscale_and_remove_background_act_on_the_latest_image(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path, aws_test_credentials: None
) -> None:
    with on_bedrock(fake, retriever, tmp_path) as (rig, bedrock, _):
        root_ts = imagine(fake, rig, "a lighthouse at dusk")
        first = results(fake, root_ts)[0]
        latest = upload_of(fake, image_before(fake, root_ts, first))
        rig.driver.block_action(
            ACTION_UPSCALE, button_value(first, ACTION_UPSCALE), ALICE, GENERAL, first["ts"]
        )
        upscaled = new_result(fake, root_ts, 2)
        assert sent_image(bedrock, SERVICES["upscale"]) == latest  # the request carries that image
        bigger = upload_of(fake, image_before(fake, root_ts, upscaled))
        assert size_and_mode(bigger)[0] == (4096, 4096) and "Upscaled to 4096×4096" in note(upscaled)

        value = button_value(first, ACTION_REMOVE_BACKGROUND)
        rig.driver.block_action(ACTION_REMOVE_BACKGROUND, value, BOB, GENERAL, first["ts"])
        cut = new_result(fake, root_ts, 3)
        assert sent_image(bedrock, SERVICES["remove_background"]) == latest
        (size, mode) = size_and_mode(upload_of(fake, image_before(fake, root_ts, cut)))
        assert (size, mode) == ((1024, 1024), "RGBA") and "transparent background" in note(cut)
        _, turns = rig.services.conversation.history(TEAM, thread_of(rig, root_ts))
        assert [turn.kind for turn in turns] == ["start", "upscale", "cutout"]


def thread_of(rig: Rig, root_ts: str) -> int:
    """The stored thread id of a thread in #general."""
    found = rig.services.threads.find_thread_by_ref(ThreadRef(TEAM, GENERAL, root_ts))
    assert found is not None
    return found.id


def test_a_reply_keeps_the_seed_and_draws_from_the_image_or_edits_it(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path, aws_test_credentials: None
) -> None:
    with on_bedrock(fake, retriever, tmp_path) as (rig, bedrock, script):
        root_ts = imagine(fake, rig, "a red fox in the snow")
        latest = upload_of(fake, image_before(fake, root_ts, results(fake, root_ts)[0]))
        (first_body,) = [r.body for r in bedrock.requests_for("invoke", SD35)]
        rig.driver.user_posts(GENERAL, "make it watercolor", BOB, thread_ts=root_ts)
        refined = new_result(fake, root_ts, 2)
        body = bedrock.requests_for("invoke", SD35)[-1].body
        assert (body["mode"], body["seed"], body["strength"]) == ("image-to-image", first_body["seed"], 0.55)
        assert base64.b64decode(body["image"]) == latest and "aspect_ratio" not in body
        assert f"Kept seed {first_body['seed']}" in note(refined) and "image-to-image" in note(refined)

        script.push_tool_input(
            {
                "prompt": "a crimson fox in the snow, watercolor",
                "negative_prompt": "",
                "aspect_ratio": "1:1",
                "style": "watercolor",
                "used_hits": [],
                "rationale": "recoloured the fox",
                "edit": "recolor",
                "edit_target": "fox",
                "edit_prompt": "a crimson fox",
            }
        )
        rig.driver.user_posts(GENERAL, "make the fox crimson", BOB, thread_ts=root_ts)
        recoloured = new_result(fake, root_ts, 3)
        refined_image = upload_of(fake, image_before(fake, root_ts, refined))
        recolor = bedrock.requests_for("invoke", SERVICES["recolor"])[-1].body
        assert (recolor["select_prompt"], recolor["prompt"], recolor["seed"]) == (
            "fox",
            "a crimson fox",
            first_body["seed"],
        )
        assert base64.b64decode(recolor["image"]) == refined_image
        assert "recoloured *fox* to *a crimson fox*" in note(recoloured)
        assert len(bedrock.requests_for("invoke", SD35)) == 2  # an edit is one image call, not a redraw


def sketch_png() -> bytes:
    """A pencil sketch: dark lines on white paper."""
    image = Image.new("RGB", (600, 450), "white")
    image.paste((30, 30, 30), (100, 200, 500, 210))
    image.paste((30, 30, 30), (295, 80, 305, 380))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_a_posted_sketch_is_used_as_sketch_style_or_described(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path, aws_test_credentials: None
) -> None:
    with on_bedrock(fake, retriever, tmp_path) as (rig, bedrock, script):
        root_ts = imagine(fake, rig, "a cartoon of a little dog")
        sketch = sketch_png()
        rig.driver.user_posts_file(GENERAL, "dog.png", sketch, BOB, text="my dog", thread_ts=root_ts)
        [choices] = wait_for(
            lambda: [m for m in fake.messages(GENERAL, root_ts) if "picture_actions" in block_ids(m)]
        )
        download = fake.calls_to("file_download")[-1]
        assert download.status == 200 and "dog.png" in shown(choices["blocks"])
        assert "(600×450)" in shown(choices["blocks"])

        def click(action: str, count: int) -> Json:
            value = button_value(choices, action)
            rig.driver.block_action(action, value, ALICE, GENERAL, choices["ts"])
            return new_result(fake, root_ts, count)

        drawn = click(ACTION_USE_SKETCH, 2)
        control = bedrock.requests_for("invoke", SERVICES["sketch"])[-1].body
        assert base64.b64decode(control["image"]) == sketch and control["control_strength"] == 0.7
        assert "dog" in control["prompt"] and "as a sketch" in note(drawn)
        styled = click(ACTION_USE_STYLE, 3)
        assert sent_image(bedrock, SERVICES["style"]) == sketch and "style of the posted picture" in note(
            styled
        )

        hits_before = len([m for m in fake.messages(GENERAL, root_ts) if "hit_1" in block_ids(m)])
        described = click(ACTION_DESCRIBE, 4)
        vision = next(b for b in script.bodies if not b.get("toolConfig"))
        image_block = vision["messages"][0]["content"][0]["image"]
        assert base64.b64decode(image_block["source"]["bytes"]) == sketch  # Converse image block
        assert "<caption>my dog</caption>" in vision["messages"][0]["content"][1]["text"]
        hits_after = len([m for m in fake.messages(GENERAL, root_ts) if "hit_1" in block_ids(m)])
        assert hits_after == hits_before + 1  # the library was searched with the description
        prompt_request = script.bodies[-1]
        assert "my dog, a pale hand-drawn sketch" in script.user_text(prompt_request)
        assert "my dog" in shown(described["blocks"])
        _, turns = rig.services.conversation.history(TEAM, thread_of(rig, root_ts))
        assert [t.kind for t in turns] == ["start", "picture", "sketch", "style", "describe"]


def test_pictures_the_bot_cannot_use_get_a_clear_reply(fake: FakeSlackApi, rig: Rig) -> None:
    root_ts = imagine(fake, rig, "a paper boat")
    rig.driver.user_posts_file(GENERAL, "notes.txt", b"just text", BOB, thread_ts=root_ts)
    rig.driver.user_posts_file(GENERAL, "broken.png", b"\x89PNG not really", BOB, thread_ts=root_ts)
    rig.driver.user_posts_file(GENERAL, "huge.png", b"\x89PNG" + bytes(11 * 2**20), BOB, thread_ts=root_ts)
    theirs = fake.post_file_as_user(GENERAL, "theirs.png", sketch_png(), BOB, thread_ts=root_ts)
    with fake.state() as ws:  # a file this bot token may not read: Slack answers with its sign-in page
        ws.files[theirs["files"][0]["id"]].team_id = "T0OTHER"
    rig.driver.event(rig.driver.message_event(theirs, GENERAL))
    wanted = (
        "I can use pictures (PNG, JPEG, WebP or GIF), not TXT files",
        "broken.png is not a picture I can read",
        "huge.png is 11.0 MB; I take pictures up to 10.0 MB",
        "the app needs the files:read scope",
    )
    wait_for(lambda: len(_errors(fake, root_ts)) >= 4)
    replies = _errors(fake, root_ts)
    for text in wanted:
        assert any(text in reply for reply in replies), (text, replies)
    downloads = [call.params["file_id"] for call in fake.calls_to("file_download")]
    assert len(downloads) == 2  # the text file and the huge one were refused before any download
    assert not any("picture_actions" in block_ids(m) for m in fake.messages(GENERAL, root_ts))


def _errors(fake: FakeSlackApi, root_ts: str) -> list[str]:
    """The texts of the app's error replies in a thread."""
    return [
        json.dumps(m["blocks"])
        for m in fake.messages(GENERAL, root_ts)
        if m.get("text", "").startswith(":x:")
    ]


def test_the_avatar_winner_ends_as_a_square_transparent_icon(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path, aws_test_credentials: None
) -> None:
    with on_bedrock(fake, retriever, tmp_path) as (rig, bedrock, _):
        assert rig.driver.slash_command(COMMAND_AVATAR, "friendly robots --n 2", ALICE, GENERAL).status == 200
        roots = wait_for(lambda: [m for m in fake.messages(GENERAL) if "friendly robots" in json.dumps(m)])
        root_ts = str(roots[-1]["ts"])
        [candidates] = wait_for(
            lambda: [m for m in fake.messages(GENERAL, root_ts) if "brainstorm_actions" in block_ids(m)]
        )
        pick = button_value(candidates, ACTION_PICK_WINNER)
        rig.driver.block_action(ACTION_PICK_WINNER, pick, ALICE, GENERAL, candidates["ts"])
        icon = new_result(fake, root_ts, 2)
        assert "Ready to use as an icon" in note(icon) and icon["text"].startswith("Ready to use as an icon")
        files = image_before(fake, root_ts, icon)["files"]
        data = bytes(next(u for u in fake.uploads() if u["id"] == files[0]["id"])["data"])
        (size, mode) = size_and_mode(data)
        assert mode == "RGBA" and size[0] == size[1] >= 1024
        with Image.open(io.BytesIO(data)) as image:
            assert image.getchannel("A").getextrema() == (0, 255)  # transparent around, opaque inside
        assert len(files) == 2 and files[1]["name"].startswith("sheet-")  # the preview on a checkerboard
        assert len(bedrock.requests_for("invoke", SERVICES["upscale"])) == 1
        assert len(bedrock.requests_for("invoke", SERVICES["remove_background"])) == 1
