"""Benchmark the local ONNX embedder: batched prompts/s, single-query latency and peak RSS."""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED_DATA = Path(os.environ.get("IMAGINE_SHARED_DATA", REPO.parent / "shared" / "data"))
LIBRARY_FILE = "sd_prompts_real_users.parquet"

logger = logging.getLogger("bench_embed")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="Measure the local ONNX all-MiniLM-L6-v2 embedder on library prompts.",
    )
    parser.add_argument(
        "--library",
        type=Path,
        default=None,
        help=f"parquet with a 'prompt' column (<shared-data>/{LIBRARY_FILE})",
    )
    parser.add_argument(
        "--shared-data",
        type=Path,
        default=DEFAULT_SHARED_DATA,
        help="shared data directory (IMAGINE_SHARED_DATA)",
    )
    parser.add_argument("-n", "--prompts", type=int, default=5000, help="number of library prompts (5000)")
    parser.add_argument(
        "--batch-sizes", default="8,16,32,64", help="comma-separated batch sizes to measure (8,16,32,64)"
    )
    parser.add_argument("--queries", type=int, default=200, help="single queries for the latency run (200)")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (all CPUs)")
    parser.add_argument("--markdown-out", type=Path, default=None, help="also write the table to this file")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the raw results as JSON")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run every measurement in this process (peak RSS then accumulates across rows)",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.library is None:
        args.library = args.shared_data / LIBRARY_FILE
    return args


def load_prompts(library: Path, n: int) -> list[str]:
    """The first n non-empty prompts of the library."""
    import pyarrow.parquet as pq

    column = pq.read_table(library, columns=["prompt"]).column("prompt").to_pylist()
    prompts = [str(p) for p in column if p]
    if len(prompts) < n:
        logger.warning("library has only %d prompts, using all of them", len(prompts))
    return prompts[:n]


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_embedder(threads: int | None, batch_size: int) -> Any:
    """Build the embedder (the repo root goes on sys.path when the project is not installed)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder

    return OnnxMiniLMEmbedder(threads=threads, batch_size=batch_size)


def measure_batch(prompts: list[str], threads: int | None, batch_size: int) -> dict[str, Any]:
    """Embed every prompt at one batch size; return prompts/s and peak RSS."""
    base_rss = peak_rss_mb()
    embedder = make_embedder(threads, batch_size)
    started = time.perf_counter()
    embedder.load()
    load_s = time.perf_counter() - started
    embedder.embed_documents_array(prompts[: batch_size * 2])  # warm-up
    started = time.perf_counter()
    vectors = embedder.embed_documents_array(prompts)
    elapsed = time.perf_counter() - started
    return {
        "kind": "batch",
        "batch_size": batch_size,
        "threads": embedder.threads,
        "n": len(vectors),
        "seconds": elapsed,
        "per_s": len(vectors) / elapsed,
        "load_s": load_s,
        "base_rss_mb": base_rss,
        "peak_rss_mb": peak_rss_mb(),
    }


def measure_queries(prompts: list[str], threads: int | None, count: int) -> dict[str, Any]:
    """Embed `count` prompts one at a time through embed_query; return p50/p95 latency in ms."""
    base_rss = peak_rss_mb()
    embedder = make_embedder(threads, 16)
    queries = prompts[-count:] if count <= len(prompts) else prompts
    for text in queries[:10]:  # warm-up
        embedder.embed_query(text)
    timings: list[float] = []
    for text in queries:
        started = time.perf_counter()
        embedder.embed_query(text)
        timings.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(timings, n=100, method="inclusive")
    return {
        "kind": "query",
        "threads": embedder.threads,
        "n": len(timings),
        "p50_ms": statistics.median(timings),
        "p95_ms": cuts[94],
        "base_rss_mb": base_rss,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Run one measurement described by --worker ('batch:<size>' or 'query')."""
    prompts = load_prompts(args.library, args.prompts)
    if args.worker == "query":
        return measure_queries(prompts, args.threads, args.queries)
    kind, _, size = str(args.worker).partition(":")
    if kind != "batch" or not size.isdigit():
        raise SystemExit(f"bad --worker value {args.worker!r}")
    return measure_batch(prompts, args.threads, int(size))


def run_isolated(args: argparse.Namespace, worker: str) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter so that its peak RSS is its own."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", worker]
    command += ["--library", str(args.library), "-n", str(args.prompts), "--queries", str(args.queries)]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def render(results: list[dict[str, Any]], n: int) -> str:
    """Markdown table of the measurements."""
    threads = results[0]["threads"] if results else "?"
    lines = [
        f"ONNX all-MiniLM-L6-v2 (int8), {n} library prompts, {threads} intra-op threads, "
        f"{os.cpu_count()} CPUs",
        "",
        "| run | batch | prompts/s | time | p50 | p95 | peak RSS | Δ embedder |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r["kind"] == "batch":
            lines.append(
                f"| batched | {r['batch_size']} | {r['per_s']:.0f} | {r['seconds']:.1f} s | | "
                f"| {r['peak_rss_mb']:.0f} MB | +{r['peak_rss_mb'] - r['base_rss_mb']:.0f} MB |"
            )
        else:
            lines.append(
                f"| single query ×{r['n']} | 1 | | | {r['p50_ms']:.2f} ms | {r['p95_ms']:.2f} ms "
                f"| {r['peak_rss_mb']:.0f} MB | +{r['peak_rss_mb'] - r['base_rss_mb']:.0f} MB |"
            )
    lines += [
        "",
        "Δ embedder = peak RSS minus the peak before the model was loaded (Python + pyarrow + prompts).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run every measurement, print the table and optionally write it."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    args = parse_args(argv)
    if args.worker:
        sys.stdout.write(json.dumps(run_worker(args)) + "\n")
        return 0
    if not args.library.exists():
        logger.error("library not found: %s (use --library)", args.library)
        return 2
    sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    workers = [f"batch:{size}" for size in sizes] + ["query"]
    results: list[dict[str, Any]] = []
    prompts = load_prompts(args.library, args.prompts) if args.in_process else []
    for worker in workers:
        logger.info("measuring %s ...", worker)
        if args.in_process:
            if worker == "query":
                results.append(measure_queries(prompts, args.threads, args.queries))
            else:
                results.append(measure_batch(prompts, args.threads, int(worker.split(":")[1])))
        else:
            results.append(run_isolated(args, worker))
    table = render(results, args.prompts)
    sys.stdout.write(table)
    if args.markdown_out is not None:
        args.markdown_out.write_text(table, encoding="utf-8")
        logger.info("wrote %s", args.markdown_out)
    if args.json_out is not None:
        report = {"bench": "embed", "prompts": args.prompts, "library": str(args.library), "results": results}
        args.json_out.write_text(json.dumps(report, indent=2), encoding="utf-8")
        logger.info("wrote %s", args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
