"""Backfill the craft prior into an existing index: points stored without it, or by an older definition.

Ingest skips prompts already indexed, so an index built before the craft prior existed (or before
`retrieval.craft.CRAFT_VERSION` changed) lacks the `craft` payload field that ranking boosts by and the
crafted-only prefetch filters on. The prior is a pure function of the prompt text, so it is recomputed
from the stored payload and set on the stored points as payload only (no re-embedding, no vector
rewritten, no HNSW rebuild: seconds for the 79k library); points that already hold the current prior are
left alone, so a second run writes nothing.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from retrieval.craft import craft_payload, stored_prior
from retrieval.errors import IndexMissingError
from retrieval.index_ports import PromptIndex

logger = logging.getLogger(__name__)
BATCH = 256
FLUSH_EVERY = 8192  # points held before their new priors are written


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
    pending: dict[tuple[tuple[str, object], ...], list[str]] = defaultdict(list)  # new fields -> point ids

    def write() -> None:
        for fields, ids in pending.items():  # a handful of distinct priors: one call per prior and batch
            index.set_payload(dict(fields), ids)
            summary.written += len(ids)
        pending.clear()

    held = 0
    for point in index.iter_points(batch_size):
        summary.checked += 1
        if stored_prior(point.payload) is None:
            fields = craft_payload(str(point.payload.get("prompt", "")))
            pending[tuple(sorted(fields.items()))].append(point.id)
            held += 1
        if held >= FLUSH_EVERY:
            write()
            held = 0
        if advance is not None and summary.checked % batch_size == 0:
            advance(batch_size)
    write()
    summary.seconds = time.perf_counter() - started
    logger.info("craft prior backfill: %d checked, %d written", summary.checked, summary.written)
    return summary
