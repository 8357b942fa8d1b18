"""Index memory layout: the in-RAM config of indexes before vs compact (4-bit in RAM, originals on disk).

At the real library and at 1M prompts (bench_search.py's dataset: real vectors + noise), for each layout:
the index, built once in its own process and cached (synthetic_index.py: build time and the builder's peak
RSS); then a fresh serving process that does what the bot does: `Retriever(...).open()` on the index, the
bench queries straight against the index (dense, hybrid, filtered, product modes as in bench_search.py),
`Retriever.search` end to end (MiniLM + BM25 query encoding, hybrid, MMR), then a longer run of product
queries near the bench queries. RSS (and its anonymous and file-backed parts) after each step, the index
files resident in the process, VmHWM. Latency comes from one more process that opens both layouts and
alternates them query by query, so both see the same load from other processes (this machine is shared).
Recall@10 of both layouts against exact search, computed once per size in another process (Edge exact
search on the in-RAM index; for dense also checked against numpy brute force over the dataset's vectors).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_search import (
    MODES,
    RECALL_MODES,
    WARMUP,
    make_queries,
    overlap_at,
)
from common import (
    BENCH_DIR,
    Timer,
    add_common_args,
    load_library_cache,
    machine_info,
    markdown_table,
    report_header,
    setup_logging,
    write_outputs,
)
from layout_workers import LONG_RUN, SEARCH_K, WORKERS
from synthetic_index import synthetic_index_dir

from retrieval.adapters.edge_index import OVERSAMPLING, IndexLayout

logger = logging.getLogger("bench_layout")

LAYOUTS = (IndexLayout.IN_RAM, IndexLayout.COMPACT)
LABEL = {IndexLayout.IN_RAM: "in-RAM (before)", IndexLayout.COMPACT: "compact (now the default)"}
GOAL_RSS_MB = 1024.0
GOAL_RECALL = 0.95
GOAL_P50_MS = 10.0


def run_worker(kind: str, config: dict[str, Any], out_dir: Path, tag: str) -> dict[str, Any]:
    """Run one worker in a fresh process and return its JSON result."""
    config_file = out_dir / f"layout_{kind}_{tag}.json"
    result_file = config_file.with_suffix(".result.json")
    result_file.unlink(missing_ok=True)
    config_file.write_text(json.dumps(config), encoding="utf-8")
    logger.info("worker %s %s", kind, tag)
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, str(config_file)]
    with Timer() as wall:
        done = subprocess.run(command, check=False)
    if done.returncode != 0 or not result_file.is_file():
        raise SystemExit(
            f"bench_layout: the {kind} worker for {tag} failed with exit status {done.returncode}"
        )
    result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    result["process_wall_s"] = wall.seconds
    return result


# ------------------------------------------------------------------------------------------ orchestration


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build, truth and serve for every size; returns the raw results."""
    from bench_search import parse_sizes

    out_dir: Path = args.out_dir
    sizes = parse_sizes(args.sizes, len(load_library_cache(out_dir)))
    queries = make_queries(out_dir, BENCH_DIR / "labelled_ideas.json", args.queries)
    queries_file = out_dir / "layout_queries.json"
    queries_file.write_text(json.dumps(queries), encoding="utf-8")
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    for size in sizes:
        row: dict[str, Any] = {"size": size, "builds": {}, "serve": {}}
        for layout in LAYOUTS:
            config = {"out_dir": str(out_dir), "size": size, "layout": layout.value}
            row["builds"][layout.value] = run_worker("build", config, out_dir, f"{layout.value}_{size}")
        base = {"out_dir": str(out_dir), "size": size, "queries_file": str(queries_file)}
        in_ram = synthetic_index_dir(out_dir, size, IndexLayout.IN_RAM) / "index"
        row["truth"] = run_worker("truth", {**base, "index": str(in_ram)}, out_dir, str(size))
        paths = {
            layout.value: str(synthetic_index_dir(out_dir, size, layout) / "index") for layout in LAYOUTS
        }
        for layout in LAYOUTS:
            served = run_worker(
                "serve", {**base, "index": paths[layout.value]}, out_dir, f"{layout.value}_{size}"
            )
            served["recall"] = {
                mode: overlap_at(served["ids"][mode], row["truth"]["exact"][mode]) for mode in RECALL_MODES
            }
            del served["ids"]
            row["serve"][layout.value] = served
        row["latency"] = run_worker("latency", {**base, "indexes": paths}, out_dir, str(size))
        del row["truth"]["exact"]
        results.append(row)
    return {
        "sizes": sizes,
        "runs": results,
        "queries": {k: v for k, v in queries.items() if k not in ("dense", "sparse")},
        "oversampling": OVERSAMPLING,
        "wall_s": time.perf_counter() - started,
        "machine": machine_info(),
    }


# ------------------------------------------------------------------------------------------ report


def goal_line(row: dict[str, Any]) -> str:
    """The 1M goals against the compact layout's numbers."""
    s = row["serve"][IndexLayout.COMPACT.value]
    served = s["memory"]["queries"]
    peak, recall = s["memory"]["search"]["VmHWM"], s["recall"]["dense"]
    p50 = row["latency"]["latency"][IndexLayout.COMPACT.value]["dense"]["p50_ms"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    parts = [
        f"RSS after open + the index queries {served['VmRSS']:,.0f} MB ({served['RssAnon']:,.0f} anonymous, "
        f"{served['RssFile']:,.0f} file-backed) ≤ {GOAL_RSS_MB:,.0f}: "
        + verdict(served["VmRSS"] <= GOAL_RSS_MB),
        f"peak RSS of the whole serving process with the embedder and `Retriever.search` {peak:,.0f} MB ≤ "
        f"{GOAL_RSS_MB:,.0f}: {verdict(peak <= GOAL_RSS_MB)}",
        f"dense recall@10 {recall:.3f} ≥ {GOAL_RECALL}: {verdict(recall >= GOAL_RECALL)}",
        f"dense p50 {p50:.2f} ms ≤ {GOAL_P50_MS:.0f}: {verdict(p50 <= GOAL_P50_MS)}",
    ]
    return (
        f"\nGoals at {row['size']:,} prompts, compact layout: "
        + "; ".join(parts)
        + ". File-backed pages are "
        "clean page cache of the mmap'd index files, which the kernel reclaims under memory pressure; they "
        f"grow with the distinct prompts read (see the row after {LONG_RUN:,} more queries).\n"
    )


def size_table(row: dict[str, Any]) -> str:
    """One size: both layouts side by side, then the resident index files."""
    builds, served, lat = row["builds"], row["serve"], row["latency"]["latency"]
    cols = [layout.value for layout in LAYOUTS]

    def line(label: str, fn: Any) -> list[str]:
        return [label, *(fn(builds[c], served[c], lat[c]) for c in cols)]

    def mem(step: str) -> Any:
        return lambda _b, x, _l: (
            f"{x['memory'][step]['VmRSS']:,.0f} ({x['memory'][step]['RssAnon']:,.0f} / "
            f"{x['memory'][step]['RssFile']:,.0f})"
        )

    n = row["n_queries"]
    lines = [
        line("stored layout (read back from the index)", lambda _b, x, _l: str(x["layout"])),
        line(
            "index build s (upsert + HNSW/quantization)",
            lambda x, _s, _l: (
                f"{x['build_s']:,.0f} ({x['upsert_s']:,.0f} + {x['finalize_s']:,.0f})"
                + (" cached" if x.get("reused") else "")
            ),
        ),
        line("builder peak RSS MB", lambda x, _s, _l: f"{x['builder_peak_rss_mb']:,.0f}"),
        line(
            "disk MB (apparent / allocated)",
            lambda x, _s, _l: f"{x['disk_mb'][0]:,.0f} / {x['disk_mb'][1]:,.0f}",
        ),
        line("open + count s", lambda _b, x, _l: f"{x['open_s']:.2f}"),
        line("RSS MB (anonymous / file-backed): Python + imports", mem("start")),
        line("… after open", mem("open")),
        line(f"… after {len(MODES)} × {n} index queries", mem("queries")),
        line(f"… after {n} `Retriever.search` (embedder loaded)", mem("search")),
        line(f"… after {LONG_RUN:,} more product-like queries", mem("long")),
        line(
            f"**peak RSS MB (VmHWM) of the serving process, after the {n} searches**",
            lambda _b, x, _l: f"**{x['memory']['search']['VmHWM']:,.0f}**",
        ),
        line("first query after open ms", lambda _b, x, _l: f"{x['first_query_ms']:.1f}"),
    ]
    for mode in MODES:
        lines.append(
            line(
                f"{mode} p50 / p95 ms (A/B)",
                lambda _b, _s, x, m=mode: f"{x[m]['p50_ms']:.2f} / {x[m]['p95_ms']:.2f}",
            )
        )
    lines.append(
        line(
            f"`Retriever.search` k={SEARCH_K} p50 / p95 ms (A/B; embed + hybrid + MMR)",
            lambda _b, _s, x: f"{x['search']['p50_ms']:.1f} / {x['search']['p95_ms']:.1f}",
        )
    )
    for mode in RECALL_MODES:
        lines.append(line(f"{mode} recall@10 vs exact", lambda _b, x, _l, m=mode: f"{x['recall'][m]:.3f}"))
    table = markdown_table(["", *(LABEL[layout] for layout in LAYOUTS)], lines)
    parts = sorted(
        {p for c in cols for key in ("resident_files_mb", "resident_files_long_mb") for p in served[c][key]}
    )
    files = markdown_table(
        [
            f"index files resident, MB: after the bench queries / after {LONG_RUN:,} more",
            *(LABEL[layout] for layout in LAYOUTS),
        ],
        [
            [
                p,
                *(
                    f"{served[c]['resident_files_mb'].get(p, 0.0):,.0f} / "
                    f"{served[c]['resident_files_long_mb'].get(p, 0.0):,.0f}"
                    for c in cols
                ),
            ]
            for p in parts
        ],
    )
    others = row["latency"]["cpu"]["others_cpu_s"] / max(row["latency"]["cpu"]["wall_s"], 1e-9)
    return (
        table + f"\nA/B = both layouts open in one process, alternated query by query (other processes used "
        f"≈ {others:.2f} cores meanwhile). Resident index files (mmap'd, from /proc/self/smaps; pinned "
        "parts such as the 4-bit codes and the in-RAM layout's BM25 index are anonymous memory):\n\n" + files
    )


def render(r: dict[str, Any]) -> str:
    """The markdown section."""
    md = report_header(
        "Index memory layout: in-RAM (before) vs compact (4-bit in RAM, originals on disk)", r["machine"]
    )
    md += (
        "* **in-RAM** = the Edge config every index had before: float32 dense vectors resident "
        "(`InRamMmap`), BM25 index, payload indexes and id tracker in RAM. **compact** = "
        "`retrieval.adapters.edge_index.edge_config`'s default for new indexes: 4-bit TurboQuant codes "
        "pinned in RAM; float32 originals, payloads, on-disk payload indexes (a cached build made before "
        "them is moved by `finalize()`, as `imagine-bot ingest` does), BM25 inverted index and id tracker "
        "in cold mmaps (read as needed); HNSW graph mmap'd and pre-warmed; the serving process caps glibc's "
        "malloc arenas and `Retriever.open()` loads the embedder before the index and trims the C heap "
        "after it (`retrieval/native_heap.py`), as `imagine-bot serve` does; queries "
        f"rescore their quantized candidates with the originals (oversampling {r['oversampling']:g}).\n"
        "* Each size: the same data in both layouts (bench_search.py's dataset; the synthetic points are "
        "real vectors + noise), built once per layout in its own process and cached under the out dir. "
        "The serving process is fresh per layout and does what the bot does: `Retriever.open()` on the "
        "product's default `EdgePromptIndex(path)` (an in-RAM index keeps its layout when opened), the "
        f"{len(r['queries']['texts'])} bench queries per mode against the index (modes as in the search "
        f"section; {WARMUP} warm-up queries each), then `Retriever.search` end to end.\n"
        "* Recall@10 = overlap with Edge exact search (`IndexQuery(exact=True)`, quantization ignored) on "
        "the in-RAM index, computed in another process.\n"
    )
    for row in r["runs"]:
        row["n_queries"] = len(r["queries"]["texts"])
        kind = (
            "real library" if row["size"] == r["sizes"][0] and row["size"] < 100_000 else "real + synthetic"
        )
        md += f"\n### {row['size']:,} prompts ({kind})\n\n" + size_table(row)
        md += (
            f"\nExact dense top 10 of the engine vs numpy brute force over the dataset's vectors: "
            f"{row['truth']['engine_vs_numpy_dense']:.3f} overlap.\n"
        )
        if row["size"] >= 1_000_000:
            md += goal_line(row)
    md += f"\nWhole layout benchmark: {r['wall_s'] / 60:.1f} min wall.\n"
    return md


def main(argv: list[str] | None = None) -> int:
    """Entry point: orchestrate, or run one worker."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_common_args(parser)
    parser.add_argument(
        "--sizes", default="library,1m", help="index sizes: 'library', N, 500k, 1m (library,1m)"
    )
    parser.add_argument("--queries", type=int, default=200, help="queries per mode (200)")
    parser.add_argument("--worker", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if args.worker is not None:
        kind, config_file = args.worker
        result = WORKERS[kind](json.loads(Path(config_file).read_text(encoding="utf-8")))
        Path(config_file).with_suffix(".result.json").write_text(json.dumps(result), encoding="utf-8")
        return 0
    result = run(args)
    write_outputs(render(result), result, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
