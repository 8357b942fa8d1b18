"""Interleaved A/B of bench_ingest.py: the raw embedder vs the ingest's per-block work, and its report."""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from common import CpuShare, fresh_dir, markdown_table
from interleaved import interleave, rate_ratio

from retrieval.index_ports import IndexHit, IndexPoint, IndexQuery, IndexSpec, PromptIndex

logger = logging.getLogger("bench_ingest")  # the A/B runs inside bench_ingest.py and logs as it
GOAL_RATIO = 0.90
CONTENDED_CORES = 0.2
SCRATCH = "edge_ab"  # the A/B's scratch index under the out dir, deleted after the run
# Payload fields the Ingestor adds; the rest is the row's own metadata (source, license, seed, ...).
INGEST_FIELDS = frozenset(
    {"prompt", "near_duplicates", "safe", "nsfw_score", "nsfw_categories", "flagged_by"}
    | {"nsfw_embedding_score", "nsfw_exemplar_similarity"}
)


class TimedIndex:
    """A `PromptIndex` that forwards to another one, timing its calls and remembering ids + payloads.

    Remembering costs one list append per point (references to payload dicts the Ingestor holds anyway).
    With `open_once`, only the first `open` reaches the inner index (the A/B's scratch index stays open).
    The calls the Ingestor does not make (spec, set_payload, query, ...) forward untimed.
    """

    def __init__(self, inner: PromptIndex, *, open_once: bool = False) -> None:
        self.inner, self.open_once, self.opened = inner, open_once, False
        self.upsert_seconds = self.finalize_seconds = self.existing_seconds = 0.0
        self.finalize_cpu_seconds = 0.0
        self.batch_sizes: list[int] = []  # points per upsert call = texts per embed call of the Ingestor
        self.ids: list[str] = []
        self.upserted_payloads: list[dict[str, Any]] = []  # `payloads` is the index method

    def open(self, spec: IndexSpec, *, create: bool) -> None:
        if not (self.open_once and self.opened):
            self.inner.open(spec, create=create)
            self.opened = True

    def upsert(self, points: Sequence[IndexPoint]) -> None:
        started = time.perf_counter()
        self.inner.upsert(points)
        self.upsert_seconds += time.perf_counter() - started
        self.batch_sizes.append(len(points))
        self.ids.extend(point.id for point in points)
        self.upserted_payloads.extend(point.payload for point in points)

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        started = time.perf_counter()
        found = self.inner.existing_ids(ids)
        self.existing_seconds += time.perf_counter() - started
        return found

    def finalize(self) -> None:
        started, cpu = time.perf_counter(), time.process_time()
        self.inner.finalize()
        self.finalize_seconds += time.perf_counter() - started
        self.finalize_cpu_seconds += time.process_time() - cpu

    def spec(self) -> IndexSpec | None:
        return self.inner.spec()

    def set_payload(self, fields: dict[str, Any], ids: Sequence[str]) -> None:
        self.inner.set_payload(fields, ids)

    def query(self, query: IndexQuery) -> list[IndexHit]:
        return self.inner.query(query)

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self.inner.payloads(ids)

    def count(self) -> int:
        return self.inner.count()

    def iter_prompts(self, batch_size: int = 1024) -> Iterator[str]:
        return self.inner.iter_prompts(batch_size)

    def iter_points(self, batch_size: int = 256) -> Iterator[IndexPoint]:
        return self.inner.iter_points(batch_size)

    def close(self) -> None:
        self.inner.close()


def interleaved_ab(
    args: argparse.Namespace, embedder: Any, classifier: Any, payloads: list[dict[str, Any]]
) -> tuple[dict[str, Any], Any]:
    """Raw embedder vs the ingest's per-block work, block by block (see the module docstring).

    Returns the ratios and the raw vectors of the prompts, in the order of `payloads`.
    """
    from bot.wiring import build_sparse_encoder
    from retrieval.adapters.edge_index import EdgePromptIndex
    from retrieval.ingest import IngestOptions, Ingestor
    from retrieval.sources import RawPrompt

    prompts = [str(p["prompt"]) for p in payloads]
    rows = [RawPrompt(p["prompt"], {k: v for k, v in p.items() if k not in INGEST_FIELDS}) for p in payloads]
    blocks = np.array_split(np.arange(len(rows)), max(1, round(len(rows) / args.block_size)))
    vectors = np.empty((len(rows), embedder.dimension), dtype=np.float32)
    scratch_dir = fresh_dir(args.out_dir / SCRATCH, args.out_dir)
    scratch = TimedIndex(EdgePromptIndex(scratch_dir), open_once=True)  # opened once, here, not per block
    scratch.open(IndexSpec(embedder.model_id, embedder.dimension), create=True)
    ingestor = Ingestor(embedder, build_sparse_encoder(), scratch, classifier)
    options = IngestOptions(build_index=False)
    embed_seconds = [0.0]

    def raw(block: Any) -> int:
        vectors[block] = embedder.embed_documents_array([prompts[i] for i in block])
        return len(block)

    def ingest(block: Any) -> int:
        done = ingestor.ingest_rows([rows[i] for i in block], options)
        embed_seconds[0] += done.embed_seconds
        return done.embedded

    embedder.embed_documents_array(prompts[:256])  # warm-up (the session is warm from the ingest anyway)
    logger.info("interleaved A/B over %d prompts in %d blocks", len(rows), len(blocks))
    try:
        sides = interleave(blocks, {"raw": raw, "ingest": ingest})
    finally:
        scratch.close()
        shutil.rmtree(scratch_dir, ignore_errors=True)
    ab = rate_ratio(sides["ingest"], sides["raw"])
    ab.update(embed_seconds=embed_seconds[0], block_size=args.block_size)
    return ab, vectors


def pct(value: float) -> str:
    """A ratio as a percentage with one decimal."""
    return f"{100 * value:.1f} %"


def render_ab(r: dict[str, Any]) -> list[str]:
    """The interleaved A/B section: the goal's measure, its spread and the load during it."""
    ab = r["ab"]
    raw_cpu, ingest_cpu = CpuShare(**ab["base_cpu"]), CpuShare(**ab["test_cpu"])
    embed_rate = ab["test_items"] / ab["embed_seconds"]
    ok = "meets" if ab["ratio"] >= GOAL_RATIO else "misses"
    lines = [
        "\n### Interleaved A/B: ingest vs the raw embedder under the same load (the goal's measure)\n",
        f"The {ab['base_items']:,} kept prompts, in id order (a fixed shuffle), in {ab['blocks']} blocks of "
        f"≈ {ab['base_items'] // ab['blocks']:,}. For each block, back to back, alternating which goes "
        "first: the raw embedder (`OnnxMiniLMEmbedder.embed_documents_array` of the ingest's own embedder, "
        "one call per block) and the ingest's per-block work (`Ingestor.ingest_rows` over the block's "
        "prompts with their source metadata, into a scratch Edge index opened once: cleaning, dedupe, "
        "near-duplicates, lexicon, id check, embedding, vector screens, BM25, upsert; no HNSW build). "
        "Both sides of a block see the same load from other processes. Ratio = raw seconds / ingest "
        "seconds summed over the blocks (same prompts on both sides); spread = the per-block ratios.\n",
        markdown_table(
            ["measure", "raw embedder", "ingest (per-block work)", "ingest vs raw"],
            [
                ["prompts", ab["base_items"], ab["test_items"], ""],
                ["seconds, summed over the blocks", ab["base_seconds"], ab["test_seconds"], ""],
                ["prompts/s", ab["base_rate"], ab["test_rate"], f"**{pct(ab['ratio'])}**"],
                [
                    "per-block ratio: median (min – max)",
                    "",
                    "",
                    f"{pct(ab['median'])} ({pct(ab['min'])} – {pct(ab['max'])})",
                ],
                [
                    "CPU ms per prompt (this process)",
                    f"{1000 * raw_cpu.own_cpu_s / ab['base_items']:.2f}",
                    f"{1000 * ingest_cpu.own_cpu_s / ab['test_items']:.2f}",
                    pct(ab["ratio_cpu"]),
                ],
                [
                    "embed calls only, prompts/s",
                    ab["base_rate"],
                    embed_rate,
                    pct(embed_rate / ab["base_rate"]),
                ],
            ],
        ),
        f"\nGoal: ingest rate ≥ {GOAL_RATIO:.0%} of the raw embedder rate (interleaved): **{ok}** it.\n",
        f"\nCPU contention (other processes share these {r['machine']['cores']} cores), summed over the "
        f"blocks: raw side: {raw_cpu.describe()}; ingest side: {ingest_cpu.describe()}. During the "
        f"whole-library ingest: {r['ingest_contention']}.\n",
    ]
    worst = max(raw_cpu.others_cores, ingest_cpu.others_cores, CpuShare(**r["ingest_cpu"]).others_cores)
    if worst > CONTENDED_CORES:
        lines.append(
            f"\n**Warning: other processes kept ≈ {worst:.2f} cores busy during part of this run; with the "
            "embedder on both cores that can halve its throughput. The interleaved ratio shares that load "
            "between its two sides (the per-block spread shows how unevenly); the whole-library rates "
            "below do not.**\n"
        )
    return lines
