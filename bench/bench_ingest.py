"""Benchmark the ingest pipeline against the raw embedder, interleaved block by block under the same load.

Two measurements in one process:

1. Whole library (product-realistic): `Ingestor.ingest_files` ingests sd_prompts_real_users.parquet into
   a fresh Qdrant Edge index under bench/out with the product wiring (bot.wiring, explicit Settings),
   HNSW build included. Stage times, the embed/index breakdown, memory and disk come from this run.
2. Interleaved A/B (the goal's measure): the kept prompts, in id order (a fixed shuffle), are split into
   blocks of about --block-size. For each block, the raw embedder (`embed_documents_array` of the same
   embedder, one call) and the ingest's per-block work (`Ingestor.ingest_rows` over the block's prompts
   and their source metadata into a scratch Edge index opened once: cleaning, dedupe, near-duplicates,
   lexicon, id check, embedding, vector screens, BM25, upsert; no HNSW build) run back to back,
   alternating which goes first, so both sides of a block see the same load from other processes.
   Ratio = raw seconds / ingest seconds summed over the blocks (the same prompts on both sides, so it is
   the rate ratio); the spread is the median and min/max of the per-block ratios. Goal: >= 90 %.

The kept prompts, their ids, payloads and raw vectors are cached in bench/out for bench_search.py and
bench_quality.py.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    CpuMonitor,
    CpuShare,
    LibraryCache,
    add_common_args,
    disk_usage_mb,
    fmt,
    fresh_dir,
    interleave,
    library_index_dir,
    library_path,
    machine_info,
    markdown_table,
    peak_rss_mb,
    rate_ratio,
    report_header,
    save_library_cache,
    setup_logging,
    write_outputs,
)

from retrieval.ports import IndexPoint, IndexSpec, PromptIndex

logger = logging.getLogger("bench_ingest")
GOAL_RATIO = 0.90
CONTENDED_CORES = 0.2
BLOCK_SIZE = 4096
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
    """

    def __init__(self, inner: PromptIndex, *, open_once: bool = False) -> None:
        self.inner, self.open_once, self.opened = inner, open_once, False
        self.upsert_seconds = self.finalize_seconds = self.existing_seconds = 0.0
        self.finalize_cpu_seconds = 0.0
        self.batch_sizes: list[int] = []  # points per upsert call = texts per embed call of the Ingestor
        self.ids: list[str] = []
        self.payloads: list[dict[str, Any]] = []

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
        self.payloads.extend(point.payload for point in points)

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

    def count(self) -> int:
        return self.inner.count()

    def close(self) -> None:
        self.inner.close()


class StageClock:
    """An `IngestProgress` that records when each stage starts (wall time per stage)."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []

    def stage(self, description: str, total: int | None = None) -> None:
        logger.info("stage: %s%s", description, f" ({total:,})" if total is not None else "")
        self.marks.append((description, time.perf_counter()))

    def advance(self, count: int) -> None:
        """Progress within a stage is not needed."""

    def durations(self, end: float) -> list[tuple[str, float]]:
        """(stage, seconds) in order; the last stage ends at `end`."""
        out: list[tuple[str, float]] = []
        for i, (name, start) in enumerate(self.marks):
            stop = self.marks[i + 1][1] if i + 1 < len(self.marks) else end
            out.append((name, stop - start))
        return out


def padded_tokens(prompts: Sequence[str], calls: Sequence[int], batch_size: int) -> dict[str, int]:
    """Real tokens, and tokens after padding in the ingest's embed calls (in order) and in one call.

    Inside a call the embedder sorts by token length and pads each batch to its longest text.
    """
    from tokenizers import Tokenizer

    from retrieval.adapters.onnx_embedder import MAX_TOKENS, tokenizer_file

    tokenizer = Tokenizer.from_file(str(tokenizer_file()))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    lengths = [len(enc.ids) for enc in tokenizer.encode_batch(list(prompts))]

    def padded(sizes: Sequence[int]) -> int:
        total, start = 0, 0
        for size in sizes:
            ordered = sorted(lengths[start : start + size])
            start += size
            total += sum(
                len(b) * max(b) for b in (ordered[i : i + batch_size] for i in range(0, size, batch_size))
            )
        return total

    return {
        "real": sum(lengths),
        "ingest_calls": padded(calls),
        "one_call": padded([len(lengths)]),
        "calls": len(calls),
        "call_size": max(calls, default=0),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_common_args(parser)
    parser.add_argument("--limit", type=int, default=None, help="ingest only the first N rows (smoke runs)")
    parser.add_argument(
        "--block-size", type=int, default=BLOCK_SIZE, help=f"prompts per A/B block (default {BLOCK_SIZE:,})"
    )
    parser.add_argument(
        "--ab-prompts",
        type=int,
        default=0,
        help="A/B over the first N kept prompts (id order) instead of all (0 = all, the default; no cache)",
    )
    parser.add_argument(
        "--no-padding-check", action="store_true", help="skip counting the padded tokens of the embed calls"
    )
    parser.add_argument("--no-cache", action="store_true", help="do not write the library cache")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole-library ingest, then the interleaved A/B over its kept prompts; return every number."""
    from bot.settings import Settings
    from bot.wiring import build_embedder, build_index, build_sparse_encoder
    from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
    from retrieval.ingest import IngestOptions, Ingestor
    from retrieval.safety import SafetyClassifier

    library = library_path(args.shared_data)
    out_dir: Path = args.out_dir
    index_dir = library_index_dir(out_dir)
    data_dir = index_dir.parents[1]
    fresh_dir(data_dir, out_dir)
    # Same composition as bot.wiring.build_ingestor, with explicit paths, the embedded Edge index, and
    # the index wrapped to time its calls.
    settings = Settings(data_dir=data_dir, qdrant_url=None, embed_model="local:all-MiniLM-L6-v2")
    embedder = build_embedder(settings)
    assert isinstance(embedder, OnnxMiniLMEmbedder)
    timed = TimedIndex(build_index(settings))
    classifier = SafetyClassifier(threshold=settings.nsfw_threshold)
    ingestor = Ingestor(embedder, build_sparse_encoder(), timed, classifier)
    clock = StageClock()
    rss_before = peak_rss_mb()
    logger.info("ingesting %s into %s", library, index_dir)
    with CpuMonitor() as ingest_cpu:
        started = time.perf_counter()
        summary = ingestor.ingest_files([library], IngestOptions(limit=args.limit), clock)
        ended = time.perf_counter()
    ingest_peak_rss = peak_rss_mb()
    count = timed.count()
    timed.close()
    wall, hnsw = ended - started, timed.finalize_seconds
    apparent_mb, allocated_mb = disk_usage_mb(index_dir)
    logger.info("ingest done: %s", summary.as_dict())

    order = sorted(range(len(timed.ids)), key=lambda i: timed.ids[i])  # by id: a stable, shuffled order
    order = order[: args.ab_prompts] if args.ab_prompts else order
    payloads = [timed.payloads[i] for i in order]
    ab, vectors = interleaved_ab(args, embedder, classifier, payloads)
    if not args.no_cache and not args.ab_prompts:
        prompts = [str(p["prompt"]) for p in payloads]
        save_library_cache(out_dir, LibraryCache([timed.ids[i] for i in order], prompts, payloads, vectors))
    padding = None
    if not args.no_padding_check:
        ingest_order = [str(p["prompt"]) for p in timed.payloads]
        padding = padded_tokens(ingest_order, timed.batch_sizes, embedder.batch_size)
    embedded, raw_rate = summary.embedded, ab["base_rate"]
    ingest_rate_excl = embedded / (wall - hnsw) if wall > hnsw else float("nan")
    return {
        "library": str(library),
        "summary": summary.as_dict(),
        "count_in_index": count,
        "wall_seconds": wall,
        "stages": clock.durations(ended),
        "embed_seconds": summary.embed_seconds,
        "upsert_seconds": timed.upsert_seconds,
        "bm25_and_points_seconds": summary.index_seconds - timed.upsert_seconds - hnsw,
        "existing_ids_seconds": timed.existing_seconds,
        "hnsw_seconds": hnsw,
        "ingest_rate_excl_hnsw": ingest_rate_excl,
        "ingest_rate_incl_hnsw": embedded / wall,
        "embed_only_rate_in_ingest": embedded / summary.embed_seconds if summary.embed_seconds else None,
        "ab": ab,
        "raw_rate": raw_rate,
        "ratio_excl_hnsw": ingest_rate_excl / raw_rate,
        "ratio_incl_hnsw": embedded / wall / raw_rate,
        "padding": padding,
        "hnsw_cpu_seconds": timed.finalize_cpu_seconds,
        "batch_size": embedder.batch_size,
        "threads": embedder.threads,
        "rss_before_mb": rss_before,
        "ingest_peak_rss_mb": ingest_peak_rss,
        "final_peak_rss_mb": peak_rss_mb(),
        "disk_apparent_mb": apparent_mb,
        "disk_allocated_mb": allocated_mb,
        "ingest_cpu": vars(ingest_cpu.share),
        "ingest_contention": ingest_cpu.share.describe(),
        "machine": machine_info(),
    }


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


def render(r: dict[str, Any]) -> str:
    """The markdown report."""
    s = r["summary"]
    dropped = ", ".join(f"{k} {v:,}" for k, v in s["dropped"].items()) or "none"
    lines = [report_header("Ingest: whole library into Qdrant Edge vs the raw embedder", r["machine"])]
    lines.append(
        f"Library `{Path(r['library']).name}`; `Ingestor` with the product wiring (`bot.wiring`, embedded "
        f"Edge index, MiniLM int8 batch {r['batch_size']}, {r['threads']} threads, BM25, lexicon + "
        "embedding-classifier + exemplar safety screens, near-duplicate collapse).\n"
    )
    lines.append(
        markdown_table(
            ["rows read", "kept (indexed)", "in index (count)", "flagged unsafe", "dropped"],
            [[s["read"], s["kept"], r["count_in_index"], s["flagged_unsafe"], dropped]],
        )
    )
    lines += render_ab(r)
    lines.append(
        "\n### Whole-library ingest (product-realistic, into a fresh index)\n\nWall time per stage (s):\n"
    )
    stage_rows: list[list[object]] = [[name, secs] for name, secs in r["stages"]]
    stage_rows.append(["**total wall**", r["wall_seconds"]])
    lines.append(markdown_table(["stage", "seconds"], stage_rows))
    lines.append("\nBreakdown of the embed+index stage (s):\n")
    lines.append(
        markdown_table(
            ["embed (MiniLM)", "BM25 + points", "Edge upsert", "existing-id check", "HNSW build (finalize)"],
            [
                [
                    r["embed_seconds"],
                    r["bm25_and_points_seconds"],
                    r["upsert_seconds"],
                    r["existing_ids_seconds"],
                    r["hnsw_seconds"],
                ]
            ],
        )
    )
    lines.append(
        "\nRates (prompts embedded per second of wall time) against the raw rate of the A/B, which ran "
        "after the ingest: sequential, so a change of load between the two skews these ratios.\n"
    )
    lines.append(
        markdown_table(
            ["measure", "prompts/s", "vs raw embedder (A/B)"],
            [
                ["ingest, excluding HNSW build", r["ingest_rate_excl_hnsw"], pct(r["ratio_excl_hnsw"])],
                ["ingest, including HNSW build", r["ingest_rate_incl_hnsw"], pct(r["ratio_incl_hnsw"])],
                [
                    "embed calls inside the ingest only",
                    r["embed_only_rate_in_ingest"],
                    pct(r["embed_only_rate_in_ingest"] / r["raw_rate"]),
                ],
            ],
        )
    )
    pad = r.get("padding")
    if pad:
        real = pad["real"]
        lines.append(
            f"\nPadding (deterministic, from token counts): the whole-library ingest made {pad['calls']:,} "
            f"embed calls of up to {pad['call_size']:,} prompts; the embedder sorts a call by token length "
            f"and pads per batch of {r['batch_size']}. {real:,} real tokens became {pad['ingest_calls']:,} "
            f"({pad['ingest_calls'] / real:.3f}×) in the ingest's calls; one call would pad them to "
            f"{pad['one_call']:,} ({pad['one_call'] / real:.3f}×).\n"
        )
    lines.append(
        f"\nPeak RSS: {fmt(r['ingest_peak_rss_mb'], 0)} MB after the ingest ({fmt(r['rss_before_mb'], 0)} MB "
        f"before it), {fmt(r['final_peak_rss_mb'], 0)} MB after the A/B. Index on disk: "
        f"{fmt(r['disk_apparent_mb'])} MB apparent, {fmt(r['disk_allocated_mb'])} MB allocated.\n"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report."""
    args = parse_args(argv)
    setup_logging(args.verbose)
    result = run(args)
    write_outputs(render(result), result, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
