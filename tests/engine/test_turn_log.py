"""Structured logs: one `bot.turns` record per finished turn, JSON lines with IMAGINE_LOG_FORMAT=json."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.drawing.offline_images import OfflinePreviewImageModel
from bot.engine.contact_sheet import contact_sheet
from bot.engine.conversation import Conversation
from bot.engine.ports import ThreadRef
from bot.engine.pricing import estimate_cost, image_price, token_prices
from bot.engine.turn_log import STAGES, TURN_LOGGER, JsonFormatter
from bot.entry.cli.main import _configure_logging, main
from bot.writing.offline_composer import OfflineComposer
from retrieval.search import Retriever
from storage.db import create_db_engine, migrate, session_factory
from storage.thread_store import SqlThreadStore

TEAM = "T0TURNS"


@pytest.fixture
def conversation(retriever: Retriever, tmp_path: Path) -> Iterator[Conversation]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    migrate(engine)
    yield Conversation(
        retriever,
        OfflineComposer(None),
        OfflinePreviewImageModel(),
        SqlThreadStore(session_factory(engine)),
        tmp_path / "images",
        contact_sheet=contact_sheet,
    )
    engine.dispose()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    turns_level = logging.getLogger(TURN_LOGGER).level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger(TURN_LOGGER).setLevel(turns_level)


def _turns(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [r.turn for r in caplog.records if r.name == TURN_LOGGER]  # type: ignore[attr-defined]


def test_each_finished_turn_logs_one_record(
    conversation: Conversation, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=TURN_LOGGER)
    started = conversation.start(ThreadRef(TEAM, "C1", "1.0"), "U1", "a cartoon of a little dog")
    [turn] = _turns(caplog)
    assert turn["team"] == TEAM and turn["thread_id"] == started.thread.id
    assert turn["turn_id"] == started.turn.id and turn["kind"] == "start"
    timings = turn["ms"]
    assert isinstance(timings, dict) and set(timings) == set(STAGES)
    assert all(isinstance(v, float) and v >= 0 for v in timings.values()) and timings["retrieve"] > 0
    assert turn["chat_model"] == "offline" and turn["image_model"] == "offline"
    assert turn["tokens_in"] == 0 and turn["tokens_out"] == 0 and turn["images"] == 1
    assert turn["chat_calls"] == 1  # a re-ask after a draft lost the subject would make it 2
    assert turn["cost_usd"] == 0 and turn["cost_priced"] is True

    caplog.clear()
    conversation.reroll(TEAM, started.thread.id)
    [reroll] = _turns(caplog)
    assert reroll["kind"] == "reroll" and reroll["chat_model"] is None and reroll["chat_calls"] == 0
    assert reroll["ms"]["retrieve"] == 0 and reroll["ms"]["compose"] == 0  # type: ignore[index]
    caplog.clear()
    conversation.refine(TEAM, started.thread.id, "make it watercolor")
    [refine] = _turns(caplog)
    assert refine["kind"] == "refine" and refine["ms"]["retrieve"] > 0  # type: ignore[index]
    caplog.clear()
    brainstorm = conversation.brainstorm(ThreadRef(TEAM, "C1", "2.0"), "U1", "robot avatars", count=3)
    [many] = _turns(caplog)
    assert many["kind"] == "brainstorm" and many["images"] == len(brainstorm.images) == 3


def test_prices_are_estimates_per_model() -> None:
    assert image_price("bedrock:stability.sd3-5-large-v1:0") == 0.08
    assert image_price("stability.stable-image-ultra-v1:1") == 0.14
    assert image_price("us.stability.stable-image-core-v1:1") == 0.04
    assert image_price("amazon.nova-canvas-v1:0") == 0.04
    assert image_price("stability.stable-diffusion-xl-v1") == 0.04
    assert image_price("offline") == 0 and image_price("unknown.model") is None
    assert token_prices("us.anthropic.claude-haiku-4-5-20251001-v1:0") == (1.0, 5.0)
    assert token_prices("anthropic.claude-sonnet-4-5-20250929-v1:0") == (3.0, 15.0)
    cost = estimate_cost(
        "us.anthropic.claude-haiku-4-5-20251001-v1:0", 2000, 400, "stability.sd3-5-large-v1:0", 2
    )
    assert cost.priced and cost.total_usd == pytest.approx(0.002 + 0.002 + 0.16)
    unknown = estimate_cost("some-other-llm", 1000, 1000, "offline", 1)
    assert not unknown.priced and unknown.total_usd == 0


def test_json_formatter_nests_the_turn_fields() -> None:
    record = logging.LogRecord(TURN_LOGGER, logging.INFO, __file__, 1, "turn %s", (7,), None)
    record.turn = {"team": TEAM, "ms": {"draw": 1.5}}
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "turn 7" and entry["level"] == "INFO" and entry["logger"] == TURN_LOGGER
    assert entry["turn"] == {"team": TEAM, "ms": {"draw": 1.5}} and entry["ts"].endswith("+00:00")


def test_cli_log_format_json(
    restore_logging: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure_logging(0, "json")
    logging.getLogger("bot.somewhere").warning("hello %s", "world")
    logging.getLogger(TURN_LOGGER).info("a turn", extra={"turn": {"kind": "start"}})
    logging.getLogger("bot.somewhere").info("not shown at the default level")
    lines = capsys.readouterr().err.strip().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["message"] for e in entries] == ["hello world", "a turn"]
    assert entries[1]["turn"] == {"kind": "start"}

    _configure_logging(0)  # the default stays the human format
    logging.getLogger("bot.somewhere").warning("plain")
    assert capsys.readouterr().err.strip() == "WARNING bot.somewhere: plain"

    monkeypatch.setenv("IMAGINE_LOG_FORMAT", "json")
    assert main(["info"]) == 0
    assert isinstance(logging.getLogger().handlers[0].formatter, JsonFormatter)
    monkeypatch.setenv("IMAGINE_LOG_FORMAT", "xml")
    assert main(["info"]) == 1 and "IMAGINE_LOG_FORMAT" in capsys.readouterr().err
