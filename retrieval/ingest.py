"""The ingest pipeline: read, clean, dedupe, collapse near-duplicates, flag unsafe, embed and index."""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from retrieval.blas import single_threaded_blas
from retrieval.cleaning import clean_prompt, collapse_near_duplicates, dedupe_key, point_id
from retrieval.craft import craft_payload
from retrieval.index_ports import Embedder, IndexPoint, IndexSpec, PromptIndex, SparseEncoder
from retrieval.safety import SafetyClassifier
from retrieval.safety_embedding import EmbeddingSafetyClassifier
from retrieval.safety_exemplars import SafetyExemplars
from retrieval.sources import RawPrompt, count_rows, read_prompts

logger = logging.getLogger(__name__)
# Texts per embed call (and upsert). Larger calls would pad less (1.011x the real tokens at 1024 instead
# of 1.033x), but a text's vector can move in its last bits with the other texts of its batch of 16,
# enough to shift a rounded screen score now and then: the batches, and so the index, stay as they are.
UPSERT_BATCH = 256


class IngestProgress(Protocol):
    """Where the pipeline reports its stages and embedding progress (a rich bar in the CLI)."""

    def stage(self, description: str, total: int | None = None) -> None:
        """Start a new stage, with a known total when there is one."""
        ...

    def advance(self, count: int) -> None:
        """Mark `count` more items of the current stage done."""
        ...


class SilentProgress:
    """An IngestProgress that reports nothing (library use and tests)."""

    def stage(self, description: str, total: int | None = None) -> None:
        """Log the stage at debug level."""
        logger.debug("ingest stage: %s (total=%s)", description, total)

    def advance(self, count: int) -> None:
        """Ignore progress."""


@dataclass(frozen=True)
class IngestOptions:
    """Knobs of one ingest run."""

    limit: int | None = None
    source: str | None = None
    prompt_nsfw_max: float = 0.5
    image_nsfw_max: float = 0.5
    drop_unsafe: bool = False
    collapse_near_duplicates: bool = True
    build_index: bool = True
    batch_size: int = 64


@dataclass
class IngestSummary:
    """What an ingest run did: counts by outcome and timings; flags count the prompts embedded this run."""

    read: int = 0
    kept: int = 0
    already_indexed: int = 0
    embedded: int = 0
    flagged_unsafe: int = 0
    flagged_by: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    embed_seconds: float = 0.0
    index_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view of the summary."""
        return {
            "read": self.read,
            "kept": self.kept,
            "already_indexed": self.already_indexed,
            "embedded": self.embedded,
            "flagged_unsafe": self.flagged_unsafe,
            "flagged_by": dict(self.flagged_by.most_common()),
            "dropped": dict(self.dropped.most_common()),
            "seconds": round(self.seconds, 2),
            "embed_seconds": round(self.embed_seconds, 2),
            "index_seconds": round(self.index_seconds, 2),
        }


@dataclass
class _Candidate:
    """A cleaned prompt on its way into the index."""

    text: str
    metadata: dict[str, Any]


def _too_nsfw(metadata: dict[str, Any], options: IngestOptions) -> bool:
    """Whether the row's own NSFW scores (DiffusionDB style) exceed the configured thresholds."""
    prompt_score = metadata.get("prompt_nsfw")
    image_score = metadata.get("image_nsfw")
    if isinstance(prompt_score, int | float) and prompt_score > options.prompt_nsfw_max:
        return True
    return isinstance(image_score, int | float) and image_score > options.image_nsfw_max


def collect(
    rows: Iterable[RawPrompt], options: IngestOptions, summary: IngestSummary, progress: IngestProgress
) -> list[_Candidate]:
    """Clean rows, drop NSFW-scored and exact duplicates, and return unique candidates in input order."""
    seen: set[str] = set()
    kept: list[_Candidate] = []
    for row in rows:
        if options.limit is not None and summary.read >= options.limit:
            break
        summary.read += 1
        progress.advance(1)
        text, reason = clean_prompt(row.text)
        if text is None:
            summary.dropped[reason or "invalid"] += 1
            continue
        if _too_nsfw(row.metadata, options):
            summary.dropped["nsfw_score"] += 1
            continue
        key = dedupe_key(text)
        if key in seen:
            summary.dropped["duplicate"] += 1
            continue
        seen.add(key)
        metadata = dict(row.metadata)
        if options.source:
            metadata["source"] = options.source
        kept.append(_Candidate(text, metadata))
    return kept


def _collapse(candidates: list[_Candidate], summary: IngestSummary) -> list[_Candidate]:
    """Keep one representative of each group of one-word variants, recording the group size."""
    groups = collapse_near_duplicates([candidate.text for candidate in candidates])
    collapsed: list[_Candidate] = []
    for index, size in groups:
        candidate = candidates[index]
        candidate.metadata["near_duplicates"] = size - 1
        collapsed.append(candidate)
    summary.dropped["near_duplicate"] += len(candidates) - len(collapsed)
    return collapsed


def _payloads(
    candidates: list[_Candidate], classifier: SafetyClassifier, options: IngestOptions, summary: IngestSummary
) -> list[tuple[str, dict[str, Any]]]:
    """Score safety and build (id, payload) pairs; unsafe prompts are flagged, or dropped when asked."""
    prepared: list[tuple[str, dict[str, Any]]] = []
    for candidate in candidates:
        verdict = classifier.classify(candidate.text)
        if verdict.unsafe and options.drop_unsafe:
            summary.dropped["unsafe"] += 1
            continue
        payload = {
            "prompt": candidate.text,
            **candidate.metadata,
            "near_duplicates": candidate.metadata.get("near_duplicates", 0),
            "safe": not verdict.unsafe,
            "nsfw_score": round(verdict.score, 4),
            "nsfw_categories": list(verdict.categories),
            "flagged_by": ["lexicon"] if verdict.unsafe else [],
            **craft_payload(candidate.text),
        }
        prepared.append((point_id(candidate.text), payload))
    return prepared


class VectorScreen(Protocol):
    """A safety check over the vectors ingest computes anyway (classifier or exemplar match)."""

    @property
    def label(self) -> str:
        """The name recorded in flagged_by ("embedding", "exemplar")."""
        ...

    @property
    def payload_key(self) -> str:
        """The payload field its score is stored in."""
        ...

    @property
    def model_id(self) -> str:
        """The embedding model it was built for."""
        ...

    @property
    def dimension(self) -> int:
        """Length of the vectors it screens."""
        ...

    def applies_to(self, model_id: str, dimension: int) -> bool:
        """Whether it was built for this embedding model."""
        ...

    def screen(self, vectors: npt.NDArray[np.float32]) -> list[tuple[float, bool]]:
        """(score, flagged) for each vector."""
        ...


def applicable_screens(
    spec: IndexSpec,
    embedding_classifier: EmbeddingSafetyClassifier | Literal["packaged"] | None = "packaged",
    exemplars: SafetyExemplars | Literal["packaged"] | None = "packaged",
) -> list[VectorScreen]:
    """The vector screens (the packaged ones unless given; None = skip) that fit the embedding model."""
    chosen: list[VectorScreen] = []
    if embedding_classifier is not None:
        chosen.append(
            EmbeddingSafetyClassifier.load() if embedding_classifier == "packaged" else embedding_classifier
        )
    if exemplars is not None:
        chosen.append(SafetyExemplars.load() if exemplars == "packaged" else exemplars)
    fitting: list[VectorScreen] = []
    for screen in chosen:
        if screen.applies_to(spec.embed_model, spec.dimension):
            fitting.append(screen)
        else:
            logger.info(
                "%s safety screen was built for %s, not %s: skipped",
                screen.label,
                screen.model_id,
                spec.embed_model,
            )
    return fitting


def _flag_by_vectors(
    batch: list[tuple[str, dict[str, Any]]],
    dense: Sequence[Sequence[float]],
    screens: Sequence[VectorScreen],
    options: IngestOptions,
    summary: IngestSummary,
) -> list[int]:
    """Score the batch's vectors with every screen and mark unsafe payloads; returns positions to store."""
    matrix = np.asarray(dense, dtype=np.float32)  # once for every screen
    results = [screen.screen(matrix) for screen in screens]
    keep: list[int] = []
    for position, (_, payload) in enumerate(batch):
        flagged_now = []
        for screen, scored in zip(screens, results, strict=True):
            score, flagged = scored[position]
            payload[screen.payload_key] = score
            if flagged:
                summary.flagged_by[screen.label] += 1
                flagged_now.append(screen.label)
        if flagged_now:
            if options.drop_unsafe:
                summary.dropped["unsafe"] += 1
                summary.kept -= 1
                continue
            summary.flagged_unsafe += int(payload["safe"])
            payload["flagged_by"] = [*payload.get("flagged_by", []), *flagged_now]
            payload["safe"] = False
        keep.append(position)
    return keep


class Ingestor:
    """Runs the pipeline from prompt files into a PromptIndex."""

    def __init__(
        self,
        embedder: Embedder,
        sparse: SparseEncoder,
        index: PromptIndex,
        classifier: SafetyClassifier | None = None,
        embedding_classifier: EmbeddingSafetyClassifier | Literal["packaged"] | None = "packaged",
        exemplars: SafetyExemplars | Literal["packaged"] | None = "packaged",
    ) -> None:
        """`classifier` reads the text (lexicon); `embedding_classifier` scores the vectors ingest computes
        anyway and `exemplars` matches them against prompts known to yield unsafe images ("packaged" = the
        files in retrieval/data, used when they fit the embedder; None = skip). A prompt any of them flags
        is stored with safe=False and hidden in safe search."""
        self._embedder = embedder
        self._sparse = sparse
        self._index = index
        self._classifier = classifier or SafetyClassifier()
        spec = IndexSpec(embedder.model_id, embedder.dimension)
        self._screens = applicable_screens(spec, embedding_classifier, exemplars)

    def ingest_files(
        self, paths: Sequence[Path], options: IngestOptions, progress: IngestProgress | None = None
    ) -> IngestSummary:
        """Ingest every file in `paths` (streamed, so bad files fail before any embedding)."""
        streams = [read_prompts(path) for path in paths]  # each file's format is checked here, up front
        totals = [count_rows(path) for path in paths]
        total = None if None in totals else sum(t or 0 for t in totals)
        if total is not None and options.limit is not None:
            total = min(total, options.limit)
        return self.ingest_rows(itertools.chain.from_iterable(streams), options, progress, total_rows=total)

    def ingest_rows(
        self,
        rows: Iterable[RawPrompt],
        options: IngestOptions,
        progress: IngestProgress | None = None,
        total_rows: int | None = None,
    ) -> IngestSummary:
        """Ingest rows from any source; idempotent, and resumes where an interrupted run stopped."""
        progress = progress or SilentProgress()
        summary = IngestSummary()
        started = time.perf_counter()
        spec = IndexSpec(self._embedder.model_id, self._embedder.dimension)
        self._index.open(spec, create=True)
        progress.stage("Reading", total_rows)
        candidates = collect(rows, options, summary, progress)
        if options.collapse_near_duplicates:
            progress.stage("Near-duplicates")
            candidates = _collapse(candidates, summary)
        progress.stage("Safety check")
        prepared = _payloads(candidates, self._classifier, options, summary)
        summary.kept = len(prepared)
        todo = self._not_yet_indexed(prepared, summary)
        lexicon_flags = sum(not payload["safe"] for _, payload in todo)  # stored flags of the rest stay
        summary.flagged_unsafe += lexicon_flags
        summary.flagged_by["lexicon"] += lexicon_flags
        todo.sort(key=lambda item: len(item[1]["prompt"]))  # similar lengths batch with little padding
        progress.stage("Embedding", len(todo))
        with single_threaded_blas():  # the screens' products must not leave BLAS threads spinning
            for start in range(0, len(todo), UPSERT_BATCH):
                self._embed_and_upsert(todo[start : start + UPSERT_BATCH], options, summary)
                progress.advance(len(todo[start : start + UPSERT_BATCH]))
        if options.build_index:
            progress.stage("Building HNSW")
            finalize_started = time.perf_counter()
            self._index.finalize()
            summary.index_seconds += time.perf_counter() - finalize_started
        summary.seconds = time.perf_counter() - started
        logger.info("ingest finished: %s", summary.as_dict())
        return summary

    def _not_yet_indexed(
        self, prepared: list[tuple[str, dict[str, Any]]], summary: IngestSummary
    ) -> list[tuple[str, dict[str, Any]]]:
        """Drop the prompts an earlier run already stored."""
        todo: list[tuple[str, dict[str, Any]]] = []
        for start in range(0, len(prepared), 4096):
            chunk = prepared[start : start + 4096]
            existing = self._index.existing_ids([point for point, _ in chunk])
            todo.extend(item for item in chunk if item[0] not in existing)
        summary.already_indexed = len(prepared) - len(todo)
        return todo

    def _embed_and_upsert(
        self, batch: list[tuple[str, dict[str, Any]]], options: IngestOptions, summary: IngestSummary
    ) -> None:
        """Embed one batch densely and sparsely, flag it by embedding, and write it to the index."""
        texts = [payload["prompt"] for _, payload in batch]
        embed_started = time.perf_counter()
        dense = self._embedder.embed_documents(texts)
        summary.embed_seconds += time.perf_counter() - embed_started
        if self._screens:
            keep = _flag_by_vectors(batch, dense, self._screens, options, summary)
            if len(keep) < len(batch):
                batch, dense, texts = (
                    [batch[i] for i in keep],
                    [dense[i] for i in keep],
                    [texts[i] for i in keep],
                )
        index_started = time.perf_counter()
        points = [
            IndexPoint(id=point, dense=vector, sparse=self._sparse.encode_document(text), payload=payload)
            for (point, payload), vector, text in zip(batch, dense, texts, strict=True)
        ]
        self._index.upsert(points)
        summary.index_seconds += time.perf_counter() - index_started
        summary.embedded += len(points)
