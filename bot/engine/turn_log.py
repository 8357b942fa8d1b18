"""Structured logging: a JSON formatter for IMAGINE_LOG_FORMAT=json and the per-turn record (`bot.turns`).

Every finished turn logs ONE INFO record on the `bot.turns` logger whose `turn` attribute holds team,
thread and turn ids, kind, stage timings in ms (retrieve, compose, draw, store), tokens, models, image
count and an estimated cost (bot/engine/pricing.py). The JSON formatter nests it under "turn".
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from bot.engine.ports import ThreadRecord, TurnRecord
from bot.engine.pricing import estimate_cost
from bot.log_redaction import redact

TURN_LOGGER = "bot.turns"
STAGES = ("retrieve", "compose", "draw", "store")
RETRIEVING_KINDS = ("start", "brainstorm", "describe", "refine")  # turns whose first stage is retrieve
turn_logger = logging.getLogger(TURN_LOGGER)

# LogRecord attributes that are not `extra=` fields
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, any `extra=` fields (e.g. "turn"), exc."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


class StageTimes(threading.local):
    """Milliseconds spent per stage of the turn running on this thread (the engine is shared by threads)."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    def reset(self) -> None:
        """Start a new turn."""
        self.ms = {}

    def begin(self, kind: str) -> None:
        """A turn of `kind` reaches its compose step: a new turn unless it retrieved first."""
        if kind not in RETRIEVING_KINDS:
            self.reset()

    @contextmanager
    def stage(self, name: str, *, first: bool = False) -> Iterator[None]:
        """Add the block's time to stage `name` (stages may repeat); `first` starts a new turn."""
        if first:
            self.reset()
        started = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - started) * 1000


def turn_fields(thread: ThreadRecord, turn: TurnRecord, stages: Mapping[str, float]) -> dict[str, Any]:
    """The per-turn record: ids, kind, stage timings, tokens, models, image count and estimated cost."""
    images = len(turn.images)
    cost = estimate_cost(turn.chat_model, turn.input_tokens, turn.output_tokens, turn.image_model, images)
    return {
        "team": thread.ref.team_id,
        "thread_id": thread.id,
        "turn_id": turn.id,
        "kind": turn.kind,
        "ms": {name: round(stages.get(name, 0.0), 1) for name in STAGES},
        "total_ms": turn.duration_ms,
        "tokens_in": turn.input_tokens,
        "tokens_out": turn.output_tokens,
        "chat_calls": int(turn.params.get("compose_calls") or (1 if turn.chat_model else 0)),
        "chat_model": turn.chat_model,
        "image_model": turn.image_model,
        "images": images,
        "cost_usd": cost.total_usd,
        "cost_priced": cost.priced,
    }


def log_turn(thread: ThreadRecord, turn: TurnRecord, stages: Mapping[str, float]) -> None:
    """Log the finished turn on `bot.turns` at INFO; a logging failure never fails the turn."""
    if not turn_logger.isEnabledFor(logging.INFO):
        return
    try:
        fields = turn_fields(thread, turn, stages)
    except Exception:  # pragma: no cover - defensive: the turn is already stored
        turn_logger.warning("could not build the turn log record", exc_info=True)
        return
    turn_logger.info(
        "turn %s %s in thread %s: %d ms, %d image(s), ~$%.4f",
        fields["turn_id"],
        fields["kind"],
        fields["thread_id"],
        fields["total_ms"],
        fields["images"],
        fields["cost_usd"],
        extra={"turn": fields},
    )
