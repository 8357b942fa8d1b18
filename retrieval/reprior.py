"""Backfill the craft prior into an existing index: points stored without it, or by an older definition.

Ingest skips prompts already indexed, so an index built before the craft prior existed (or before
`retrieval.craft.CRAFT_VERSION` changed) lacks the `craft` payload field that ranking boosts by. The
prior is a pure function of the prompt text, so it is recomputed from the stored payload and written
back with the stored vectors (no re-embedding); points that already hold the current prior are left
alone, so a second run writes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from retrieval.craft import craft_payload, stored_prior
from retrieval.errors import IndexMissingError
from retrieval.index_ports import IndexPoint, PromptIndex

logger = logging.getLogger(__name__)
BATCH = 256


@dataclass
class RepriorSummary:
    """Points checked, written (prior missing or outdated) and the seconds it took."""

    checked: int = 0
    written: int = 0
    seconds: float = 0.0


def reprior_index(
    index: PromptIndex, *, advance: Callable[[int], None] | None = None, batch_size: int = BATCH
) -> RepriorSummary:
    """Store the current craft prior in every point of the open `index` that lacks it."""
    if index.spec() is None:
        raise IndexMissingError("no prompt index to backfill: run `imagine-bot ingest PATH` first")
    started = time.perf_counter()
    summary = RepriorSummary()
    pending: list[IndexPoint] = []
    for point in index.iter_points(batch_size):
        summary.checked += 1
        if stored_prior(point.payload) is None:
            payload = {**point.payload, **craft_payload(str(point.payload.get("prompt", "")))}
            pending.append(IndexPoint(point.id, point.dense, point.sparse, payload))
        if len(pending) >= batch_size:
            index.upsert(pending)
            summary.written += len(pending)
            pending = []
        if advance is not None and summary.checked % batch_size == 0:
            advance(batch_size)
    if pending:
        index.upsert(pending)
        summary.written += len(pending)
    if summary.written:
        index.finalize()
    summary.seconds = time.perf_counter() - started
    logger.info("craft prior backfill: %d checked, %d written", summary.checked, summary.written)
    return summary
