"""Re-run the safety screens over an existing index from its stored vectors, and fix the flags that changed.

Ingest skips prompts already indexed, so an index built before a safety update (a lexicon change, a new
embedding classifier, new known-unsafe exemplars) keeps its old flags. Rescreening recomputes every
point's safety fields exactly as ingest writes them (`safe`, `flagged_by`, the lexicon's `nsfw_score` and
`nsfw_categories`, and each vector screen's score under its payload key), using the stored dense vector
(no re-embedding), and writes back only the points whose fields changed. Screens that are not run here
(not configured, or built for another embedding model: `applicable_screens` skips them) cannot be
re-checked, so their flags are kept: rescreening never unflags a prompt on a screen it did not run.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from retrieval.errors import IndexMissingError
from retrieval.index_ports import IndexPoint, PromptIndex
from retrieval.ingest import VectorScreen, applicable_screens
from retrieval.safety import SafetyClassifier, SafetyVerdict

__all__ = ["RescreenSummary", "Rescreened", "applicable_screens", "rescreen_index", "rescreen_payload"]

logger = logging.getLogger(__name__)

LEXICON = "lexicon"
BATCH = 256
# Stored vector-screen scores are rounded to 4 places; scoring the stored float32 vector again may move the
# last place, which is not a change worth rewriting a point for.
SCORE_TOLERANCE = 5e-4
Advance = Callable[[int], None]
ScreenResult = tuple[VectorScreen, float, bool]  # (screen, score, flagged) for one point
_MISSING = object()


@dataclass
class RescreenSummary:
    """What a rescreen found: points checked, flags added and removed by screen, points written."""

    screens: tuple[str, ...] = ()
    dry_run: bool = False
    checked: int = 0
    newly_unsafe: int = 0
    unflagged: int = 0
    updated: int = 0
    unchanged: int = 0
    written: int = 0
    without_vector: int = 0
    flagged_by: Counter[str] = field(default_factory=Counter)
    cleared_by: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        """Points whose safety fields changed (written unless this was a dry run)."""
        return self.checked - self.unchanged

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view of the summary."""
        return {
            "screens": list(self.screens),
            "dry_run": self.dry_run,
            "checked": self.checked,
            "changed": self.changed,
            "newly_unsafe": self.newly_unsafe,
            "unflagged": self.unflagged,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "written": self.written,
            "without_vector": self.without_vector,
            "flagged_by": dict(self.flagged_by.most_common()),
            "cleared_by": dict(self.cleared_by.most_common()),
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class Rescreened:
    """One point's recomputed payload and how its flags moved."""

    payload: dict[str, Any]
    changed: bool
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


def _stored_labels(payload: dict[str, Any]) -> list[str]:
    """The screens that flagged a stored point (an index older than `flagged_by` had the lexicon only)."""
    labels = payload.get("flagged_by")
    if isinstance(labels, list):
        return [str(label) for label in labels]
    return [LEXICON] if payload.get("safe") is False else []


def _same(old: Any, new: Any, tolerance: float) -> bool:
    """Whether a stored field equals its recomputed value (scores within `tolerance`)."""
    if old is _MISSING:
        return False
    numbers = (int, float)
    if isinstance(old, numbers) and isinstance(new, numbers) and not isinstance(old, bool):
        return abs(float(old) - float(new)) <= tolerance
    return bool(old == new)


def rescreen_payload(
    payload: dict[str, Any], lexicon: SafetyVerdict, vector_results: Sequence[ScreenResult]
) -> Rescreened:
    """Recompute a payload's safety fields as ingest would, keeping flags of screens not run here."""
    old_labels = _stored_labels(payload)
    checked = {LEXICON, *(screen.label for screen, _, _ in vector_results)}
    labels = [LEXICON] if lexicon.unsafe else []
    labels += [screen.label for screen, _, flagged in vector_results if flagged]
    labels += [label for label in old_labels if label not in checked]
    if set(labels) == set(old_labels) and isinstance(payload.get("flagged_by"), list):
        labels = list(payload["flagged_by"])  # same flags: keep the stored order
    fields: dict[str, tuple[Any, float]] = {
        "safe": (not labels, 0.0),
        "flagged_by": (labels, 0.0),
        "nsfw_score": (round(lexicon.score, 4), 0.0),
        "nsfw_categories": (list(lexicon.categories), 0.0),
    }
    for screen, score, _ in vector_results:
        fields[screen.payload_key] = (score, SCORE_TOLERANCE)
    changed = not all(_same(payload.get(key, _MISSING), *spec) for key, spec in fields.items())
    updated = {**payload, **{key: value for key, (value, _) in fields.items()}} if changed else dict(payload)
    added = tuple(label for label in labels if label not in old_labels)
    removed = tuple(label for label in old_labels if label not in labels)
    return Rescreened(updated, changed, added, removed)


class _Run:
    """One pass over the index: screens pages of points, tallies them and writes the changed ones."""

    def __init__(
        self,
        index: PromptIndex,
        classifier: SafetyClassifier,
        screens: Sequence[VectorScreen],
        dimension: int,
        summary: RescreenSummary,
        batch_size: int,
    ) -> None:
        self._index = index
        self._batch_size = batch_size
        self._classifier = classifier
        self._screens = screens
        self._dimension = dimension
        self._summary = summary
        self._pending: list[IndexPoint] = []

    def page(self, points: Sequence[IndexPoint]) -> None:
        """Rescreen one page of points and queue the changed ones for writing."""
        with_vector = [i for i, point in enumerate(points) if len(point.dense) == self._dimension]
        per_point: list[list[ScreenResult]] = [[] for _ in points]
        if with_vector and self._screens:
            vectors = np.asarray([points[i].dense for i in with_vector], dtype=np.float32)
            for screen in self._screens:
                for i, (score, flagged) in zip(with_vector, screen.screen(vectors), strict=True):
                    per_point[i].append((screen, score, flagged))
        self._summary.without_vector += len(points) - len(with_vector)
        for point, results in zip(points, per_point, strict=True):
            verdict = self._classifier.classify(str(point.payload.get("prompt", "")))
            self._tally(point, rescreen_payload(point.payload, verdict, results))

    def _tally(self, point: IndexPoint, result: Rescreened) -> None:
        summary = self._summary
        summary.checked += 1
        if not result.changed:
            summary.unchanged += 1
            return
        was_safe = point.payload.get("safe") is True
        now_safe = result.payload["safe"] is True
        summary.newly_unsafe += int(was_safe and not now_safe)
        summary.unflagged += int(now_safe and not was_safe)
        summary.updated += int(was_safe == now_safe)  # flags or scores moved, visibility did not
        summary.flagged_by.update(result.added)
        summary.cleared_by.update(result.removed)
        if not summary.dry_run:
            self._pending.append(IndexPoint(point.id, point.dense, point.sparse, result.payload))
            if len(self._pending) >= self._batch_size:
                self.flush()

    def flush(self) -> None:
        """Write the queued points back (same id and vectors, updated payload)."""
        if self._pending:
            self._index.upsert(self._pending)
            self._summary.written += len(self._pending)
            self._pending = []


def rescreen_index(
    index: PromptIndex,
    classifier: SafetyClassifier,
    screens: Sequence[VectorScreen],
    *,
    dry_run: bool = False,
    advance: Advance | None = None,
    batch_size: int = BATCH,
) -> RescreenSummary:
    """Rescreen every point of the open `index` and write back the changed ones (none when `dry_run`)."""
    spec = index.spec()
    if spec is None:
        raise IndexMissingError("no prompt index to rescreen: run `imagine-bot ingest PATH` first")
    started = time.perf_counter()
    fitting = [screen for screen in screens if screen.applies_to(spec.embed_model, spec.dimension)]
    if len(fitting) < len(screens):
        logger.info(
            "skipped %d safety screens built for another embedding model", len(screens) - len(fitting)
        )
    summary = RescreenSummary(screens=(LEXICON, *(screen.label for screen in fitting)), dry_run=dry_run)
    run = _Run(index, classifier, fitting, spec.dimension, summary, batch_size)
    page: list[IndexPoint] = []
    for point in index.iter_points(batch_size):
        page.append(point)
        if len(page) >= batch_size:
            run.page(page)
            if advance is not None:
                advance(len(page))
            page = []
    if page:
        run.page(page)
        if advance is not None:
            advance(len(page))
    run.flush()
    if summary.written:
        index.finalize()
    if summary.without_vector:
        logger.warning(
            "%d points have no dense vector: only the lexicon rescreened them", summary.without_vector
        )
    summary.seconds = time.perf_counter() - started
    logger.info("rescreen finished: %s", summary.as_dict())
    return summary
