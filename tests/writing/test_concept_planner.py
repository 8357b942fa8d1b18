"""Claude as the search's concept planner: Converse through langchain-aws against the Bedrock stand-in."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import load_config
from bot.wiring import build_concept_planner
from bot.writing.concept_planner import ClaudeConceptPlanner
from retrieval.adapters.bm25 import Bm25SparseEncoder
from retrieval.adapters.edge_index import EdgePromptIndex
from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
from retrieval.index_ports import SearchMode
from retrieval.search import Retriever
from sandbox.bedrock_converse import ConverseScript
from sandbox.bedrock_runtime import BedrockFault, FakeBedrockRuntime

PROFILE = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
ROBOT = {"concepts": [{"name": "subject", "phrases": ["robot", "android", "mech"]},
                      {"name": "framing", "phrases": ["portrait", "headshot"]}]}  # fmt: skip


def test_the_plan_comes_back_and_is_cached_per_idea(fake: FakeBedrockRuntime, script: ConverseScript) -> None:
    planner = ClaudeConceptPlanner(PROFILE, endpoint_url=fake.url)
    script.push_tool_input(ROBOT)
    plan = planner.plan("a picture of a friendly <machine> man")
    assert plan is not None and plan.source == f"bedrock:{PROFILE}"
    assert [(c.name, c.phrases) for c in plan.concepts] == [
        ("subject", ("robot", "android", "mech")),
        ("framing", ("portrait", "headshot")),
    ]
    assert plan.covered("portrait of an android, oil painting") == ("subject", "framing")
    body = script.last
    assert "<idea>a picture of a friendly &lt;machine&gt; man</idea>" in script.user_text()
    assert "subject" in script.system_text() and body["inferenceConfig"]["temperature"] == 0.0
    assert body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "Plan"
    again = planner.plan("  A picture of a friendly <machine> MAN ")
    assert again is plan and len(script.bodies) == 1  # same idea: no second call


def test_the_stand_ins_plan_names_the_ideas_words(fake: FakeBedrockRuntime, script: ConverseScript) -> None:
    plan = ClaudeConceptPlanner(PROFILE, endpoint_url=fake.url).plan("a lighthouse during a storm")
    assert plan is not None and plan.describe() == "subject: lighthouse; during: during; storm: storm"


def test_failures_and_unusable_answers_give_no_plan(
    fake: FakeBedrockRuntime, script: ConverseScript, caplog: pytest.LogCaptureFixture
) -> None:
    planner = ClaudeConceptPlanner(PROFILE, endpoint_url=fake.url, max_attempts=1)
    script.push_response(BedrockFault(400, "ValidationException", "The model is not ready").response())
    with caplog.at_level(logging.WARNING):
        assert planner.plan("a dog") is None
    assert "searching with the idea's own words" in caplog.text
    script.push_tool_input({"concepts": []})  # breaks the schema (at least one concept)
    assert planner.plan("a dog") is None
    script.push_tool_input({"concepts": [{"name": "subject", "phrases": ["!!", "  "]}]})
    assert planner.plan("a dog") is None  # no phrase a prompt could contain
    assert len(script.bodies) == 3  # failures are not cached: each ask went out


@pytest.fixture
def planned(fake: FakeBedrockRuntime, script: ConverseScript, small_index: Path) -> Iterator[Retriever]:
    """A retriever over the small index with Claude (the stand-in) as its planner."""
    planner = ClaudeConceptPlanner(PROFILE, endpoint_url=fake.url)
    found = Retriever(OnnxMiniLMEmbedder(), Bm25SparseEncoder(), EdgePromptIndex(small_index), planner)
    yield found
    found.close()


def test_the_warm_start_asks_the_planner_nothing(planned: Retriever, script: ConverseScript) -> None:
    planned.warm_up()  # serve's warm start: the embedder, the index, one search and the planner's clients
    assert script.bodies == []  # no paid call before the first turn
    planned.search("a picture of a friendly machine man's face", k=3)
    assert len(script.bodies) == 1


def test_a_search_asks_the_planner_and_ranks_by_its_plan(planned: Retriever, script: ConverseScript) -> None:
    script.push_tool_input(ROBOT)
    hits = planned.search("a picture of a friendly machine man's face", k=5, explain=True)
    assert len(script.bodies) == 1
    assert all(h.explanation and h.explanation.plan.startswith("subject: robot") for h in hits)
    assert sum("subject" in h.explanation.covered for h in hits if h.explanation) >= 3
    planned.search("health check", k=1, mode=SearchMode.SPARSE)  # the health check plans nothing
    for _ in range(2):  # the planner tries twice
        script.push_response(BedrockFault(503, "ServiceUnavailableException", "try later").response())
    fallback = planned.search("a lighthouse", k=3, explain=True)  # Claude down: the idea's own words
    assert len(fallback) == 3 and all(h.explanation and h.explanation.plan == "" for h in fallback)


def test_the_setting_builds_the_planner(monkeypatch: pytest.MonkeyPatch, fake: FakeBedrockRuntime) -> None:
    assert build_concept_planner(load_config()) is None  # off by default
    monkeypatch.setenv("IMAGINE_CONCEPT_PLANNER", f"bedrock:{PROFILE}")
    monkeypatch.setenv("IMAGINE_BEDROCK_ENDPOINT_URL", fake.url)
    planner = build_concept_planner(load_config())
    assert isinstance(planner, ClaudeConceptPlanner) and planner.model_id == f"bedrock:{PROFILE}"
