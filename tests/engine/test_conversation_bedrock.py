"""The engine against the Bedrock Runtime stand-in: real botocore and ChatBedrockConverse, SQL memory."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.drawing.bedrock_images import BedrockImageModel
from bot.engine.conversation import Conversation
from bot.engine.ports import ThreadRef
from bot.engine.turn_errors import ContentFilteredError, ThrottledError
from bot.engine.turns import TurnOptions
from bot.writing.claude import BedrockChatModel
from retrieval.adapters.bm25 import Bm25SparseEncoder
from retrieval.adapters.edge_index import EdgePromptIndex
from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
from retrieval.search import Retriever
from sandbox.bedrock_converse import ConverseScript, install_converse_handlers
from sandbox.bedrock_image_models import install_image_handlers
from sandbox.bedrock_runtime import FakeBedrockRuntime
from storage.db import create_db_engine, migrate, session_factory
from storage.thread_store import SqlThreadStore

TEAM = "T1"
CHAT = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
IMAGE = "stability.sd3-5-large-v1:0"


@pytest.fixture
def fake(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[FakeBedrockRuntime, ConverseScript]]:
    """A Bedrock stand-in with Claude and Stability handlers, reached via boto3's standard variable."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    from botocore.retries import bucket, standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    monkeypatch.setattr(bucket.TokenBucket, "_sleep_amount", lambda self, amount: 0.0)
    with FakeBedrockRuntime() as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.url)
        install_image_handlers(server)
        yield server, install_converse_handlers(server)


def make(small_index: Path, url: str, images: Path) -> tuple[Conversation, Any, Retriever]:
    """The engine over Claude and SD3.5 on the stand-in and a SQLite file."""
    engine = create_db_engine(url)
    migrate(engine)
    retriever = Retriever(OnnxMiniLMEmbedder(), Bm25SparseEncoder(), EdgePromptIndex(small_index))
    chat = BedrockChatModel(CHAT, region="us-east-1")
    conversation = Conversation(
        retriever,
        chat,
        BedrockImageModel(IMAGE, region="us-east-1"),
        SqlThreadStore(session_factory(engine)),
        images,
    )
    return conversation, engine, retriever


def test_the_third_chat_request_carries_the_earlier_turns_across_a_restart(
    fake: tuple[FakeBedrockRuntime, ConverseScript], small_index: Path, tmp_path: Path
) -> None:
    server, script = fake
    url = f"sqlite:///{tmp_path / 'imagine.db'}"
    conversation, engine, retriever = make(small_index, url, tmp_path / "images")
    first = conversation.start(
        ThreadRef(TEAM, "C1", "1.0"), "U1", "a cartoon of a little dog", TurnOptions(seed=5)
    )
    conversation.refine(TEAM, first.thread.id, "make it watercolor")
    engine.dispose()
    retriever.close()

    conversation, engine, retriever = make(small_index, url, tmp_path / "images")
    third = conversation.refine(TEAM, first.thread.id, "no text")
    converse = server.requests_for("converse", CHAT)
    assert len(converse) == 3  # exactly one chat call per turn
    last_user = script.user_text(converse[-1].body)
    assert (
        "a cartoon of a little dog" in last_user
        and "make it watercolor" in last_user
        and "no text" in last_user
    )
    assert "<library_prompt" in last_user
    assert 'max_prompt_chars="1000"' in last_user
    invokes = server.requests_for("invoke", IMAGE)
    assert len(invokes) == 3
    body = invokes[0].body
    assert set(body) <= {"prompt", "negative_prompt", "mode", "aspect_ratio", "seed", "output_format"}
    assert body["seed"] == 5 and body["output_format"] == "png" and body["mode"] == "text-to-image"
    _, turns = conversation.history(TEAM, first.thread.id)
    assert [t.kind for t in turns] == ["start", "refine", "refine"]
    assert turns[-1].input_tokens > 0 and turns[-1].chat_model == f"bedrock:{CHAT}"
    assert third.images[0].record.model_id == f"bedrock:{IMAGE}"
    engine.dispose()
    retriever.close()


def test_filtered_and_throttled_turns_leave_nothing_half_written(
    fake: tuple[FakeBedrockRuntime, ConverseScript], small_index: Path, tmp_path: Path
) -> None:
    server, _ = fake
    conversation, engine, retriever = make(small_index, f"sqlite:///{tmp_path / 'i.db'}", tmp_path / "images")
    first = conversation.start(ThreadRef(TEAM, "C1", "2.0"), "U1", "a red fox in the snow")
    with pytest.raises(ContentFilteredError) as filtered:
        conversation.edit(TEAM, first.thread.id, "FILTERME a red fox")
    assert filtered.value.reason == "prompt" and "prompt" in str(filtered.value)
    server.fail_next(status=400, error_type="ThrottlingException", message="Too many requests", times=10)
    with pytest.raises(ThrottledError, match="try again"):
        conversation.refine(TEAM, first.thread.id, "make it blue")
    _, turns = conversation.history(TEAM, first.thread.id)
    assert [t.kind for t in turns] == ["start"]  # neither failed turn was stored
    assert json.dumps(turns[0].params)  # the stored turn is intact
    engine.dispose()
    retriever.close()


def test_prompt_length_follows_the_image_model() -> None:
    from bot.engine.turns import prompt_limit

    assert prompt_limit("bedrock:stability.stable-diffusion-xl-v1") < 400
    assert prompt_limit("sagemaker:my-sdxl-endpoint") < 400
    assert prompt_limit("bedrock:amazon.nova-canvas-v1:0") <= 1024
    assert prompt_limit("bedrock:stability.sd3-5-large-v1:0") == prompt_limit("offline") == 1000


def test_a_start_stores_the_borrowed_phrases_and_the_extra_call_of_a_lost_subject(
    fake: tuple[FakeBedrockRuntime, ConverseScript], small_index: Path, tmp_path: Path
) -> None:
    _, script = fake
    conversation, engine, retriever = make(small_index, f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "img")
    lost = {
        "prompt": "a castle on a hill, matte painting",
        "negative_prompt": "",
        "aspect_ratio": "1:1",
        "style": "",
        "used_hits": [],
        "rationale": "oops",
    }
    script.push_tool_input(lost)

    def again(body: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
        """The second answer keeps the subject and borrows two words of library example 1."""
        hit = re.search(r'<library_prompt n="1">(.*?)</library_prompt>', script.user_text(body))
        assert hit is not None
        phrase = " ".join(hit.group(1).split()[:2])
        return {**lost, "prompt": f"a red fox in the snow, {phrase}", "used_hits": [1], "borrowed": [phrase]}

    script.default = again
    try:
        result = conversation.start(ThreadRef(TEAM, "C1", "9.9"), "U1", "a red fox in the snow")
    finally:
        retriever.close()
        engine.dispose()
    first, second = script.bodies
    assert "<retry>" in script.user_text(second) and "(dialect: prose)" in script.user_text(first)
    assert result.drafts[0].prompt.startswith("a red fox in the snow")
    params = result.turn.params
    assert params["compose_calls"] == 2
    assert params["borrowed"] == [" ".join(result.hits[0].prompt.split()[:2])]
    assert params["used_hits"] == [1]
