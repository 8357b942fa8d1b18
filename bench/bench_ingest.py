"""Benchmark the ingest pipeline over the whole library, against the raw embedder rate in the same run.

Ingests sd_prompts_real_users.parquet into a fresh Qdrant Edge index under bench/out with the real
`Ingestor` (built by bot.wiring from explicit Settings), then embeds the same kept prompts with
`OnnxMiniLMEmbedder.embed_documents_array` alone. The goal is ingest rate / raw rate >= 90 %.

The kept prompts, their ids, payloads and vectors are cached in bench/out for bench_search.py and
bench_quality.py.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import (
    CpuMonitor,
    LibraryCache,
    Timer,
    add_common_args,
    disk_usage_mb,
    fmt,
    fresh_dir,
    library_index_dir,
    library_path,
    machine_info,
    markdown_table,
    peak_rss_mb,
    report_header,
    save_library_cache,
    setup_logging,
    write_outputs,
)

from retrieval.ports import IndexHit, IndexPoint, IndexQuery, IndexSpec, PromptIndex

logger = logging.getLogger("bench_ingest")
GOAL_RATIO = 0.90
CONTENDED_CORES = 0.2


class TimedIndex:
    """A `PromptIndex` that forwards to another one, timing upsert/finalize and remembering ids + payloads.

    Remembering costs one list append per point (references to payload dicts the Ingestor holds anyway).
    """

    def __init__(self, inner: PromptIndex) -> None:
        self.inner = inner
        self.upsert_seconds = 0.0
        self.finalize_seconds = 0.0
        self.existing_seconds = 0.0
        self.finalize_cpu_seconds = 0.0
        self.batch_sizes: list[int] = []  # points per upsert call = texts per embed call of the Ingestor
        self.ids: list[str] = []
        self.payloads: list[dict[str, Any]] = []

    def open(self, spec: IndexSpec, *, create: bool) -> None:
        self.inner.open(spec, create=create)

    def spec(self) -> IndexSpec | None:
        return self.inner.spec()

    def upsert(self, points: Sequence[IndexPoint]) -> None:
        started = time.perf_counter()
        self.inner.upsert(points)
        self.upsert_seconds += time.perf_counter() - started
        self.batch_sizes.append(len(points))
        for point in points:
            self.ids.append(point.id)
            self.payloads.append(point.payload)

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

    def query(self, query: IndexQuery) -> list[IndexHit]:
        return self.inner.query(query)

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


def token_lengths(prompts: Sequence[str]) -> list[int]:
    """Token count of each prompt as the embedder sees it (same tokenizer, truncation at MAX_TOKENS)."""
    from tokenizers import Tokenizer

    from retrieval.adapters.onnx_embedder import MAX_TOKENS, tokenizer_file

    tokenizer = Tokenizer.from_file(str(tokenizer_file()))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    return [len(enc.ids) for enc in tokenizer.encode_batch(list(prompts))]


def padded(lengths: Sequence[int], calls: Sequence[int], batch_size: int) -> int:
    """Tokens after padding when the texts go to `embed_documents` in calls of these sizes, in order.

    Inside a call the embedder sorts by token length and pads each batch to its longest text.
    """
    total, start = 0, 0
    for size in calls:
        ordered = sorted(lengths[start : start + size])
        start += size
        for b in range(0, len(ordered), batch_size):
            batch = ordered[b : b + batch_size]
            total += len(batch) * max(batch)
    return total


def padding_check(
    ingest_order: list[str], ids: list[str], calls: list[int], batch_size: int
) -> dict[str, Any]:
    """Padding overhead of the Ingestor's actual embed calls, vs one call and vs unsorted calls."""
    lengths = token_lengths(ingest_order)
    by_id = [lengths[i] for i in sorted(range(len(ids)), key=lambda i: ids[i])]  # an arbitrary order
    call = max(calls, default=1)
    return {
        "real_tokens": sum(lengths),
        "calls": len(calls),
        "call_size": call,
        "padded_ingest": padded(lengths, calls, batch_size),
        "padded_one_call": padded(lengths, [len(lengths)], batch_size),
        "padded_unsorted_calls": padded(by_id, [call] * (len(by_id) // call + 1), batch_size),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_common_args(parser)
    parser.add_argument("--limit", type=int, default=None, help="ingest only the first N rows (smoke runs)")
    parser.add_argument(
        "--raw-sample",
        type=int,
        default=0,
        help="raw embedder over the first N kept prompts instead of all of them (0 = all, the default)",
    )
    parser.add_argument(
        "--no-padding-check", action="store_true", help="skip counting the padded tokens of the embed calls"
    )
    parser.add_argument("--no-cache", action="store_true", help="do not write the library cache")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Ingest, then the raw embedder; return every number."""
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
    timed = TimedIndex(build_index(settings))
    classifier = SafetyClassifier(threshold=settings.nsfw_threshold)
    ingestor = Ingestor(build_embedder(settings), build_sparse_encoder(), timed, classifier)
    clock = StageClock()
    options = IngestOptions(limit=args.limit)
    rss_before = peak_rss_mb()
    logger.info("ingesting %s into %s", library, index_dir)
    with CpuMonitor() as ingest_cpu:
        started = time.perf_counter()
        summary = ingestor.ingest_files([library], options, clock)
        ended = time.perf_counter()
    ingest_peak_rss = peak_rss_mb()
    count = timed.count()
    timed.close()
    wall = ended - started
    hnsw = timed.finalize_seconds
    embedded = summary.embedded
    apparent_mb, allocated_mb = disk_usage_mb(index_dir)
    prompts = [str(p["prompt"]) for p in timed.payloads]
    logger.info("ingest done: %s", summary.as_dict())

    raw_prompts = prompts[: args.raw_sample] if args.raw_sample else prompts
    embedder = OnnxMiniLMEmbedder(batch_size=settings.embed_batch_size)
    embedder.load()
    embedder.embed_documents_array(raw_prompts[:256])  # warm-up
    logger.info("raw embedder over %d prompts (batch %d)", len(raw_prompts), embedder.batch_size)
    with CpuMonitor() as raw_cpu, Timer() as raw_timer:
        vectors = embedder.embed_documents_array(raw_prompts)
    raw_rate = len(raw_prompts) / raw_timer.seconds
    padding: dict[str, Any] | None = None
    if not args.no_padding_check:
        padding = padding_check(prompts, timed.ids, timed.batch_sizes, embedder.batch_size)
    if not args.no_cache and not args.raw_sample:
        order = sorted(range(len(prompts)), key=lambda i: timed.ids[i])  # by id: a stable, shuffled order
        save_library_cache(
            out_dir,
            LibraryCache(
                [timed.ids[i] for i in order],
                [prompts[i] for i in order],
                [timed.payloads[i] for i in order],
                vectors[order],
            ),
        )
    own_cpu_excl = ingest_cpu.share.own_cpu_s - timed.finalize_cpu_seconds

    ingest_rate_excl = embedded / (wall - hnsw) if wall > hnsw else float("nan")
    ingest_rate_incl = embedded / wall
    return {
        "library": str(library),
        "index_dir": str(index_dir),
        "summary": summary.as_dict(),
        "count_in_index": count,
        "wall_seconds": wall,
        "stages": clock.durations(ended),
        "embed_seconds": summary.embed_seconds,
        "index_seconds_total": summary.index_seconds,
        "upsert_seconds": timed.upsert_seconds,
        "bm25_and_points_seconds": summary.index_seconds - timed.upsert_seconds - hnsw,
        "existing_ids_seconds": timed.existing_seconds,
        "hnsw_seconds": hnsw,
        "ingest_rate_excl_hnsw": ingest_rate_excl,
        "ingest_rate_incl_hnsw": ingest_rate_incl,
        "embed_only_rate_in_ingest": embedded / summary.embed_seconds if summary.embed_seconds else None,
        "raw_n": len(raw_prompts),
        "raw_scope": "sample" if args.raw_sample else "all kept prompts",
        "raw_seconds": raw_timer.seconds,
        "raw_rate": raw_rate,
        "ratio_excl_hnsw": ingest_rate_excl / raw_rate,
        "ratio_incl_hnsw": ingest_rate_incl / raw_rate,
        "padding": padding,
        "ingest_cpu_ms_per_prompt_excl_hnsw": 1000 * own_cpu_excl / max(embedded, 1),
        "raw_cpu_ms_per_prompt": 1000 * raw_cpu.share.own_cpu_s / max(len(raw_prompts), 1),
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
        "raw_cpu": vars(raw_cpu.share),
        "raw_contention": raw_cpu.share.describe(),
        "machine": machine_info(),
    }


def render(r: dict[str, Any]) -> str:
    """The markdown report."""
    s = r["summary"]
    dropped = ", ".join(f"{k} {v:,}" for k, v in s["dropped"].items()) or "none"
    lines = [report_header("Ingest: whole library into Qdrant Edge vs the raw embedder", r["machine"])]
    lines.append(
        f"Library `{Path(r['library']).name}`; `Ingestor.ingest_files` with the product wiring "
        f"(`bot.wiring.build_ingestor`, embedded Edge index, MiniLM int8 batch {r['batch_size']}, "
        f"{r['threads']} threads, BM25, safety classifier, near-duplicate collapse, HNSW build). "
        f"Raw embedder = `OnnxMiniLMEmbedder.embed_documents_array` over **{r['raw_scope']}** "
        f"({r['raw_n']:,}) in one call, same process, right after the ingest.\n"
    )
    lines.append(
        markdown_table(
            ["rows read", "kept (indexed)", "in index (count)", "flagged unsafe", "dropped"],
            [[s["read"], s["kept"], r["count_in_index"], s["flagged_unsafe"], dropped]],
        )
    )
    stage_rows: list[list[object]] = [[name, secs] for name, secs in r["stages"]]
    stage_rows.append(["**total wall**", r["wall_seconds"]])
    lines.append("\nWall time per ingest stage (s):\n")
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
    ok = "meets" if r["ratio_excl_hnsw"] >= GOAL_RATIO else "misses"
    lines.append("\nRates (prompts embedded per second of wall time):\n")
    lines.append(
        markdown_table(
            ["measure", "prompts/s", "vs raw embedder"],
            [
                ["raw embedder (baseline)", r["raw_rate"], "100 %"],
                [
                    "ingest, excluding HNSW build",
                    r["ingest_rate_excl_hnsw"],
                    f"**{100 * r['ratio_excl_hnsw']:.1f} %**",
                ],
                [
                    "ingest, including HNSW build",
                    r["ingest_rate_incl_hnsw"],
                    f"{100 * r['ratio_incl_hnsw']:.1f} %",
                ],
                [
                    "CPU time per prompt: raw vs ingest excl. HNSW",
                    f"{r['raw_cpu_ms_per_prompt']:.2f} vs {r['ingest_cpu_ms_per_prompt_excl_hnsw']:.2f} ms",
                    f"{100 * r['raw_cpu_ms_per_prompt'] / r['ingest_cpu_ms_per_prompt_excl_hnsw']:.1f} %",
                ],
                [
                    "embed calls inside the ingest only",
                    r["embed_only_rate_in_ingest"],
                    f"{100 * r['embed_only_rate_in_ingest'] / r['raw_rate']:.1f} %",
                ],
            ],
        )
    )
    lines.append(f"\nGoal: ingest rate (excluding HNSW) ≥ {GOAL_RATIO:.0%} of the raw rate: **{ok}** it.\n")
    lines.append(
        f"\nCPU contention (other processes share these {r['machine']['cores']} cores): during the ingest "
        f"{r['ingest_contention']}; during the raw run {r['raw_contention']}. The CPU-time row is less "
        "sensitive to contention than the wall-time rates (not immune: onnxruntime threads spin while "
        "they wait for each other).\n"
    )
    worst = max(
        r["ingest_cpu"]["others_cpu_s"] / r["ingest_cpu"]["wall_s"],
        r["raw_cpu"]["others_cpu_s"] / r["raw_cpu"]["wall_s"],
    )
    if worst > CONTENDED_CORES:
        lines.append(
            f"\n**Warning: other processes kept ≈ {worst:.2f} cores busy during part of this run; with the "
            "embedder using both cores, that can halve its throughput, so the ratio above is skewed.**\n"
        )
    pad = r.get("padding")
    if pad:
        real = pad["real_tokens"]
        lines.append(
            f"\nPadding (deterministic, from token counts): the Ingestor made {pad['calls']:,} "
            f"`embed_documents` calls of up to {pad['call_size']} prompts; the embedder sorts by length "
            f"inside a call and pads per batch of {r['batch_size']}. {real:,} real tokens became "
            f"{pad['padded_ingest']:,} ({pad['padded_ingest'] / real:.3f}×) in the ingest's calls, "
            f"{pad['padded_one_call']:,} ({pad['padded_one_call'] / real:.3f}×) in the raw run's one call, "
            f"and would be {pad['padded_unsorted_calls']:,} ({pad['padded_unsorted_calls'] / real:.3f}×) "
            f"in {pad['call_size']}-prompt calls of unsorted prompts.\n"
        )
    lines.append(
        f"\nPeak RSS: {fmt(r['ingest_peak_rss_mb'], 0)} MB after the ingest "
        f"({fmt(r['rss_before_mb'], 0)} MB before it); "
        f"{fmt(r['final_peak_rss_mb'], 0)} MB after the raw run. Index on disk: "
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
