"""Benchmark the ingest pipeline against the raw embedder, interleaved block by block under the same load.

Two measurements in one process:

1. Whole library (product-realistic): `Ingestor.ingest_files` ingests sd_prompts_real_users.parquet into
   a fresh Qdrant Edge index under bench/out with the product wiring (bot.wiring, explicit Config),
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
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import (
    CpuMonitor,
    LibraryCache,
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
from ingest_ab import TimedIndex, interleaved_ab, pct, render_ab

logger = logging.getLogger("bench_ingest")
BLOCK_SIZE = 4096


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
    from bot.config import Config
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
    config = Config(data_dir=data_dir, qdrant_url=None, embed_model="local:all-MiniLM-L6-v2")
    embedder = build_embedder(config)
    assert isinstance(embedder, OnnxMiniLMEmbedder)
    timed = TimedIndex(build_index(config))
    classifier = SafetyClassifier(threshold=config.nsfw_threshold)
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
    payloads = [timed.upserted_payloads[i] for i in order]
    ab, vectors = interleaved_ab(args, embedder, classifier, payloads)
    if not args.no_cache and not args.ab_prompts:
        prompts = [str(p["prompt"]) for p in payloads]
        save_library_cache(out_dir, LibraryCache([timed.ids[i] for i in order], prompts, payloads, vectors))
    padding = None
    if not args.no_padding_check:
        ingest_order = [str(p["prompt"]) for p in timed.upserted_payloads]
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
