"""Run every benchmark and write bench/RESULTS.md: command, machine, date and numbers of each section.

Order: ingest (builds the library cache and index the others use), search, the index memory layout,
quality, then the embedder and safety-classifier benches when they exist. Each bench runs in its own
process, one after the other (they are CPU-bound on a small machine); CPU use by other processes during
each bench is recorded, since it skews the timings. `--out-dir` puts the caches and indexes (several GB at
1M prompts) outside the repository; `--quick` is a smoke run of a few minutes in <out dir>/quick. Paths
in the report are shown relative to the repository.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baseline_latency import latency_headline
from common import (
    BENCH_DIR,
    OUT_DIR,
    REPO,
    default_shared_data,
    git_commit,
    machine_busy_seconds,
    machine_info,
    machine_markdown,
    markdown_table,
    now_utc,
    repo_relative,
    setup_logging,
)

logger = logging.getLogger("run_all")


@dataclass(frozen=True)
class Bench:
    """One benchmark script with its full and quick arguments (flags it lacks are left out)."""

    name: str
    script: str
    title: str
    full: list[str] = field(default_factory=list)
    quick: list[str] = field(default_factory=list)
    uses_out_dir: bool = True


BENCHES = (
    Bench("ingest", "bench_ingest.py", "Ingest", quick=["--limit", "5000", "--block-size", "1000"]),
    Bench(
        "search",
        "bench_search.py",
        "Search",
        quick=["--sizes", "library,20000", "--queries", "20", "--reopen-queries", "5"],
    ),
    Bench(
        "layout", "bench_layout.py", "Index memory layout", quick=["--sizes", "library", "--queries", "20"]
    ),
    Bench("quality", "bench_quality.py", "Quality"),
    Bench("retrieval", "bench_retrieval.py", "Retrieval quality"),
    Bench("compose", "bench_compose.py", "Composition", quick=["--parti-n", "20"]),
    Bench(
        "embed",
        "bench_embed.py",
        "Embedder",
        quick=["--prompts", "500", "--batch-sizes", "16", "--queries", "20"],
        uses_out_dir=False,
    ),
    Bench("nsfw", "bench_nsfw.py", "Safety classifier", full=["--retrieval"]),
    Bench("cli", "bench_cli.py", "CLI end to end", quick=["--runs", "3"]),
    Bench(
        "baseline",
        "bench_baseline.py",
        "AWS sample vs ours",
        full=["--whole-library", "--sessions", "3"],  # whole-library sessions measured: ≈ 15-25 min
        quick=["--rows", "2000", "--sessions", "2"],
    ),
    Bench(
        "serve",
        "bench_serve.py",
        "Serving",
        quick=["--levels", "1,10", "--samples", "20", "--rows", "1000", "--restarts", "1"],
    ),
    Bench(
        "slack",
        "bench_slack.py",
        "Slack app latency and memory",
        quick=["--sizes", "library", "--ack-samples", "10", "--answers", "4"],
    ),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out", type=Path, default=BENCH_DIR / "RESULTS.md", help="report (bench/RESULTS.md)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run in a few minutes (bench/out/quick)")
    parser.add_argument(
        "--only", default=None, help=f"comma-separated subset of {','.join(b.name for b in BENCHES)}"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="use a section's previous output (from an earlier run_all run) instead of running it again",
    )
    parser.add_argument(
        "--splice",
        action="store_true",
        help="with --only: replace just those benches' sections (and headline lines) in the existing --out",
    )
    parser.add_argument(
        "--shared-data", type=Path, default=default_shared_data(), help="shared data directory"
    )
    parser.add_argument(
        "--out-dir", type=Path, default=OUT_DIR, help="caches, indexes and section outputs (bench/out)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def supported_flags(script: Path) -> str:
    """The --help text of a bench script ('' when it fails), to pass only flags it knows."""
    try:
        done = subprocess.run(
            [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def filter_flags(args: list[str], help_text: str) -> list[str]:
    """Drop flags (and their values) that the script's --help does not mention."""
    out: list[str] = []
    skip_value = False
    for i, arg in enumerate(args):
        if skip_value:
            skip_value = False
            continue
        if arg.startswith("-"):
            if arg in help_text:
                out.append(arg)
            else:
                logger.info("flag %s not supported, left out", arg)
                skip_value = i + 1 < len(args) and not args[i + 1].startswith("-")
        else:
            out.append(arg)
    return out


def run_bench(bench: Bench, args: argparse.Namespace, sections: Path, out_dir: Path) -> dict[str, Any]:
    """Run one bench script and return what happened (command, exit status, times, outputs)."""
    script = BENCH_DIR / bench.script
    markdown = sections / f"{bench.name}.md"
    json_out = sections / f"{bench.name}.json"
    log = sections / f"{bench.name}.log"
    meta_file = sections / f"{bench.name}.meta.json"
    if args.reuse and meta_file.is_file() and markdown.is_file():
        meta: dict[str, Any] = json.loads(meta_file.read_text(encoding="utf-8"))
        meta["reused"] = True
        logger.info("%s: reusing %s", bench.name, markdown)
        return meta
    if not script.is_file():
        return {"name": bench.name, "missing": True, "note": f"bench/{bench.script} does not exist (yet)"}
    help_text = supported_flags(script)
    extra = list(bench.quick if args.quick else bench.full)
    wanted = [*extra, "--markdown-out", str(markdown), "--json-out", str(json_out)]
    wanted += ["--shared-data", str(args.shared_data)]
    if bench.uses_out_dir:
        wanted += ["--out-dir", str(out_dir)]
    # the benches run from the repository root
    flags = [repo_relative(a) for a in filter_flags(wanted, help_text)]
    command = [sys.executable, str(script), *flags]
    shown = " ".join([".venv/bin/python", f"bench/{bench.script}", *flags])
    for stale in (markdown, json_out):
        stale.unlink(missing_ok=True)
    logger.info("%s: %s", bench.name, shown)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before = machine_busy_seconds()[0]
    started = time.perf_counter()
    date = now_utc()
    with log.open("w", encoding="utf-8") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO, check=False)
    wall = time.perf_counter() - started
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = (children_after.ru_utime - children_before.ru_utime) + (
        children_after.ru_stime - children_before.ru_stime
    )
    others = max(0.0, machine_busy_seconds()[0] - busy_before - child_cpu)
    meta = {
        "name": bench.name,
        "command": shown,
        "date": date,
        "returncode": done.returncode,
        "wall_s": wall,
        "bench_cpu_s": child_cpu,
        "others_cpu_s": others,
        "others_cores": others / wall if wall > 0 else 0.0,
        "markdown": str(markdown),
        "json": str(json_out),
        "log": str(log),
        "has_markdown_flag": "--markdown-out" in help_text,
    }
    if done.returncode != 0:
        logger.error("%s failed with exit status %d: see %s", bench.name, done.returncode, log)
    elif not markdown.is_file():  # a bench without --markdown-out: keep its stdout
        text = log.read_text(encoding="utf-8", errors="replace")
        markdown.write_text("\n".join(line for line in text.splitlines() if line.startswith("|")) + "\n")
    meta_file.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return meta


def _load(meta: dict[str, Any]) -> dict[str, Any] | None:
    path = Path(str(meta.get("json", "")))
    if meta.get("returncode") == 0 and path.is_file():
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return loaded
    return None


# Reference numbers of the shared docs' platform-notes.md section 3 (random vectors, qdrant only).
REFERENCE: dict[str, Any] = {
    "edge_hnsw_ms": (1.38, 1.76),  # p50 at 100k and 500k
    "local_memory_ms_100k": 68.0,  # local mode :memory: p50 at 100k
    "local_filtered_ms_100k": 654.0,
    "edge_reopen_s": (0.16, 0.41),
}


def reference_check(search: dict[str, Any]) -> str:
    """Our numbers next to the platform notes' (plausibility check)."""
    library = min(search["sizes"])
    big = max(search["sizes"])

    def p50(engine: str, size: int, mode: str) -> str:
        for row in search["runs"]:
            if row.get("engine") == engine and row.get("size") == size and "error" not in row:
                return f"{row['latency'][mode]['p50_ms']:.2f} ms"
        return "–"

    ref = REFERENCE
    return (
        "\n* Plausibility vs `platform-notes.md` §3 (random 384-d vectors, raw qdrant calls): Edge HNSW "
        f"dense p50 there {ref['edge_hnsw_ms'][0]} ms at 100k / {ref['edge_hnsw_ms'][1]} ms at 500k, here "
        f"{p50('edge', library, 'dense')} at {library:,} / {p50('edge', big, 'dense')} at {big:,}; local "
        f"`:memory:` dense p50 there {ref['local_memory_ms_100k']:.0f} ms at 100k, here "
        f"{p50('local-memory', library, 'dense')} at {library:,}; local filtered there "
        f"{ref['local_filtered_ms_100k']:.0f} ms at 100k, here {p50('local-memory', library, 'filtered')} "
        "(our filter is `source` + `safe`)."
    )


INGEST_HEADLINE = "* **Ingest**"


def _busy(share: dict[str, float]) -> float:
    """Cores other processes used on average during one side of the A/B."""
    return share["others_cpu_s"] / share["wall_s"] if share["wall_s"] else 0.0


def ingest_summary(ingest: dict[str, Any]) -> str:
    """Headline of bench_ingest: the interleaved A/B against the raw embedder, and the whole library."""
    ab = ingest["ab"]
    return (
        f"{INGEST_HEADLINE} vs the raw embedder, interleaved block by block under the same load: "
        f"{ab['test_rate']:.0f} vs {ab['base_rate']:.0f} prompts/s over {ab['base_items']:,} prompts in "
        f"{ab['blocks']} blocks = **{100 * ab['ratio']:.1f} %** (goal ≥ 90 %; per-block median "
        f"{100 * ab['median']:.1f} %, min–max {100 * ab['min']:.1f}–{100 * ab['max']:.1f} %; by CPU time "
        f"{100 * ab['ratio_cpu']:.1f} %). Other processes used ≈ {_busy(ab['base_cpu']):.2f} / "
        f"{_busy(ab['test_cpu']):.2f} cores during the raw / ingest sides. Whole library "
        f"({ingest['summary']['read']:,} rows, {ingest['summary']['kept']:,} kept) into a fresh index: "
        f"{ingest['wall_seconds']:.0f} s wall, of which HNSW build {ingest['hnsw_seconds']:.0f} s; "
        f"peak RSS {ingest['ingest_peak_rss_mb']:.0f} MB."
    )


def summary(metas: dict[str, dict[str, Any]]) -> str:
    """Headline numbers taken from the benches' JSON outputs."""
    lines: list[str] = []

    ingest = _load(metas.get("ingest", {}))
    if ingest and "ab" in ingest:
        lines.append(ingest_summary(ingest))
    search = _load(metas.get("search", {}))
    if search:
        rows: list[list[object]] = []
        for size in search["sizes"]:
            cells: list[object] = [f"{size:,}"]
            for engine in ("edge", "local-memory", "local-path"):
                row = next(
                    (
                        r
                        for r in search["runs"]
                        if r.get("engine") == engine and r.get("size") == size and "error" not in r
                    ),
                    None,
                )
                for mode in ("hybrid", "filtered"):
                    cells.append(f"{row['latency'][mode]['p50_ms']:.2f}" if row else "–")
            edge = next(
                (r for r in search["runs"] if r.get("engine") == "edge" and r.get("size") == size), None
            )
            recall = (
                edge["recall"].get("dense", {}).get("recall_at_10") if edge and "recall" in edge else None
            )
            cells.append(f"{recall:.3f}" if recall is not None else "–")
            rows.append(cells)
        lines.append("* **Search** p50 latency in ms (index only, query embedding excluded):\n")
        lines.append(
            markdown_table(
                [
                    "prompts",
                    "Edge hybrid",
                    "Edge filtered",
                    "local `:memory:` hybrid",
                    "local `:memory:` filtered",
                    "local `path=` hybrid",
                    "local `path=` filtered",
                    "Edge dense recall@10 vs exact",
                ],
                rows,
            )
        )
        lines.append(reference_check(search))
    layout = _load(metas.get("layout", {}))
    if layout and layout.get("runs"):
        lines.append(layout_summary(layout))
    quality = _load(metas.get("quality", {}))
    if quality:
        lines.append(quality_summary(quality))
    retrieval = _load(metas.get("retrieval", {}))
    if retrieval:
        lines.append(retrieval_summary(retrieval))
    compose = _load(metas.get("compose", {}))
    if compose:
        lines.append(compose_summary(compose))
    baseline = _load(metas.get("baseline", {}))
    if baseline and "baseline_prep" in baseline:
        lines.append(baseline_summary(baseline))
    serve = _load(metas.get("serve", {}))
    if serve and serve.get("servers"):
        lines.append(serve_summary(serve))
    slack = _load(metas.get("slack", {}))
    if slack and slack.get("runs"):
        lines.append(slack_summary(slack))
    return "\n".join(lines) + "\n"


def layout_summary(r: dict[str, Any]) -> str:
    """Headline of bench_layout: in-RAM (before) vs compact (now) at each size."""
    parts = []
    for row in r["runs"]:
        before, after = row["serve"]["in_ram"], row["serve"]["compact"]
        lat = row["latency"]["latency"]
        recall = {m: (before["recall"][m], after["recall"][m]) for m in ("dense", "hybrid", "filtered")}
        modes = ", ".join(
            f"{mode} {lat['in_ram'][mode]['p50_ms']:.2f} → {lat['compact'][mode]['p50_ms']:.2f}"
            for mode in ("dense", "hybrid", "filtered", "product")
        )
        peak = (before["memory"]["search"]["VmHWM"], after["memory"]["search"]["VmHWM"])
        used = (before["memory"]["queries"]["VmRSS"], after["memory"]["queries"]["VmRSS"])
        parts.append(
            f"{row['size']:,} prompts: peak RSS of the serving process {peak[0]:,.0f} → "
            f"**{peak[1]:,.0f} MB** "
            f"(after open + queries {used[0]:,.0f} → {used[1]:,.0f} MB); "
            f"recall@10 vs exact dense {recall['dense'][0]:.3f} → **{recall['dense'][1]:.3f}**, hybrid "
            f"{recall['hybrid'][0]:.3f} → {recall['hybrid'][1]:.3f}, filtered {recall['filtered'][0]:.3f} → "
            f"{recall['filtered'][1]:.3f}; p50 ms {modes}; "
            f"`Retriever.search` p50 {lat['in_ram']['search']['p50_ms']:.1f} → "
            f"{lat['compact']['search']['p50_ms']:.1f} ms"
        )
    return (
        "\n* **Index memory layout**, in-RAM (the config before) → compact (4-bit in RAM, originals on disk; "
        "the default for new indexes), same data, serving process = open + bench queries + "
        "`Retriever.search`, latency A/B in one process: " + "; ".join(parts) + "."
    )


QUALITY_HEADLINE = "* **Quality**"


def quality_summary(quality: dict[str, Any]) -> str:
    """Headline of bench_quality: capped recall@5 per method on the labelled ideas."""
    parts = [
        f"{name} {a['recall']:.2f} (near-dup rate {a['dup_rate']:.2f})"
        for name, a in quality["averages"].items()
    ]
    return (
        f"\n{QUALITY_HEADLINE}, capped recall@5 over {len(quality['ideas'])} labelled ideas (lexical rules, "
        "which favour BM25): " + "; ".join(parts) + "."
    )


RETRIEVAL_HEADLINE = "* **Retrieval**"
COMPOSE_HEADLINE = "* **Composition**"
LAYOUT_HEADLINE = "* **Index memory layout**"
SERVE_HEADLINE = "* **Serving**"
SLACK_HEADLINE = "* **Slack app**"
ACK_GOAL_MS = 100  # issue 14: ack p99 at 50 concurrent commands


def serve_summary(s: dict[str, Any]) -> str:
    """Headline of bench_serve: ack p99 at the highest level per server, and the warm start."""
    top = str(max(s["levels"]))
    p99 = {kind: levels[top]["p99_ms"] for kind, levels in s["servers"].items()}
    ours = p99.get("waitress")
    verdict = (
        "" if ours is None else f" (goal ≤ {ACK_GOAL_MS} ms: {'met' if ours <= ACK_GOAL_MS else 'missed'})"
    )
    acks = ", ".join(f"{kind} {ms:.0f} ms" for kind, ms in p99.items())
    warm = {
        setting: (
            statistics.median(r["hits_ms"] for r in runs),
            statistics.median(r["llm_ms"] for r in runs),
        )
        for setting, runs in s["warm_start"].items()
    }
    cold, hot = warm.get("False"), warm.get("True")
    start = (
        f"; first turn after a restart: hits {hot[0]:.0f} ms, first LLM call {hot[1]:.0f} ms with the warm "
        f"start (without: {cold[0]:.0f} / {cold[1]:.0f} ms)"
        if cold and hot
        else ""
    )
    return f"\n{SERVE_HEADLINE}: slash-command ack p99 at {top} concurrent: {acks}{verdict}{start}."


def compose_summary(c: dict[str, Any]) -> str:
    """Headline of bench_compose: the offline composer before and after on the held-out half."""
    parts = []
    for row in c["rows"]:
        if row["group"] == "heldout" and row["dialect"] == "prose" and "dense" not in row["composer"]:
            parts.append(
                f"{row['composer']}: {row['meets_floor']:.0%} of held-out ideas keep their subject with 3+ "
                f"grounded phrases ({row['meets_clean_floor']:.0%} counting no incantation or conflict), "
                f"{row['pair_conflicts']} conflicting pairs, {row['incantations']} incantations"
            )
    return (
        f"\n{COMPOSE_HEADLINE}, offline composer on {c['ideas']['heldout']} held-out Slack-style ideas "
        "(prose dialect; goal ≥ 80 % with no conflicting pair): " + " — ".join(parts) + "."
    )


def retrieval_summary(r: dict[str, Any]) -> str:
    """Headline of bench_retrieval: the default search against plain dense, on both halves."""
    parts = []
    for name in r["summary"]:
        if name == "dense" or name.endswith("(default)"):
            halves = "; ".join(
                f"{split} P@5 {a['precision']:.2f}, craft {a['craft']:.2f}, search p50 {a['p50_ms']:.0f} ms"
                for split, a in r["summary"][name].items()
            )
            parts.append(f"{name}: {halves}")
    return (
        f"\n{RETRIEVAL_HEADLINE} on {len(r['ideas'])} Slack-style ideas (`bench/data/retrieval_ideas.json`; "
        "goals on the held-out half: P@5 ≥ 0.80, craft ≥ 0.80): " + " — ".join(parts) + "."
    )


def _median(rows: list[dict[str, Any]], key: str) -> float:
    values = sorted(float(r[key]) for r in rows)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _session_medians(part: dict[str, Any]) -> tuple[float, float, float, float]:
    """Median first-answer seconds and peak RSS of the baseline's and our sessions (b, ours, b, ours)."""
    bs, os_ = part["baseline_sessions"], part["ours_sessions"]
    return (
        _median(bs, "process_s"),
        _median(os_, "process_s"),
        _median(bs, "peak_rss_mb"),
        _median(os_, "peak_rss_mb"),
    )


def baseline_summary(b: dict[str, Any]) -> str:
    """Headline of bench_baseline: the AWS sample's pipeline vs ours."""
    prep, ingest = b["baseline_prep"], b["ours_ingest"]
    first_b, first_o, rss_b, rss_o = _session_medians(b)
    return (
        f"\n* **AWS sample vs ours** on the first {prep['rows']:,} library rows, same MiniLM embedder: the "
        f"sample's O(n²) Levenshtein dedupe took {prep['dedupe_s']:.0f} s ({prep['levenshtein_calls']:,} "
        f"calls) without embedding anything, vs {ingest['ingest_s']:.0f} s for our whole ingest "
        f"(embed + index {ingest['indexed']:,} prompts, persisted); time to first answer in a new session "
        f"(fresh process) median {first_b:.2f} s (re-embeds {prep['kept']:,} prompts into FAISS) vs "
        f"{first_o:.2f} s = **{first_b / first_o:.1f}×** faster; peak RSS {rss_b:.0f} vs {rss_o:.0f} MB."
        + _persisted_summary(b)
        + _whole_library_summary(b.get("whole_library"))
    )


def _persisted_summary(part: dict[str, Any]) -> str:
    """The sample with a persisted FAISS index, and the same-size search latency (honest either way)."""
    text = ""
    if part.get("persisted_sessions"):
        persisted = _median(part["persisted_sessions"], "process_s")
        ours = _median(part["ours_sessions"], "process_s")
        text += (
            f" With its index persisted (embedded once, `FAISS.load_local` per session) the sample answers a "
            f"new session in {persisted:.2f} s vs our {ours:.2f} s ({persisted / ours:.1f}×)."
        )
    if part.get("latency"):
        text += " Per query at the same size, same vectors: " + latency_headline([part["latency"]]) + "."
    return text


def _whole_library_summary(whole: dict[str, Any] | None) -> str:
    """The baseline's per-session path measured over the whole library (bench_baseline --whole-library)."""
    if not whole:
        return ""
    first_b, first_o, rss_b, rss_o = _session_medians(whole)
    return (
        f" At the whole library ({whole['baseline_prep']['rows']:,} rows; the baseline without its dedupe, "
        f"re-embedding {whole['baseline_prep']['filtered']:,} prompts per session): first answer median "
        f"{first_b:.0f} s vs {first_o:.2f} s = **{first_b / first_o:.0f}×**; peak RSS {rss_b:.0f} vs "
        f"{rss_o:.0f} MB." + _persisted_summary(whole)
    )


def slack_summary(s: dict[str, Any]) -> str:
    """Headline of bench_slack: acks, first answer, upload, RSS."""
    parts: list[str] = []
    for run in s["runs"]:
        if "error" in run:
            parts.append(f"{run['size']:,} prompts: failed")
            continue
        acks = run.get("acks") or {}
        ack = ", ".join(
            f"{level}: p50 {a['p50_ms']:.0f} / p99 {a['p99_ms']:.0f} ms" for level, a in acks.items()
        )
        answers = "; ".join(
            f"{models} hits p50 {m['warm']['hits_ms']['p50_ms']:.0f} ms, upload p50 "
            f"{m['warm']['upload_ms']['p50_ms']:.0f} ms"
            for models, m in run["models"].items()
        )
        parts.append(
            f"{run['size']:,} prompts: {('ack at ' + ack + '; ') if ack else ''}{answers}; peak RSS "
            f"{run['memory']['peak_rss_mb']:.0f} MB"
        )
    return "\n* **Slack app** (real Bolt app over HTTP, sandbox Slack): " + " — ".join(parts) + "."


def render(metas: dict[str, dict[str, Any]], args: argparse.Namespace, started: str, wall: float) -> str:
    """The whole RESULTS.md."""
    info = machine_info()
    reused = [name for name, meta in metas.items() if meta.get("reused")]
    argv = " ".join(repo_relative(a) for a in sys.argv[1:])
    lines = [
        "# imagine-bot benchmark results\n",
        f"* Generated by: `{' '.join(['.venv/bin/python bench/run_all.py', argv]).strip()}`",
        (
            f"* Assembled: {started} from sections run earlier by run_all (reused: {', '.join(reused)}); "
            "each section says when it ran"
            if reused
            else f"* Started: {started}; whole run {wall / 60:.1f} min"
        )
        + (" (QUICK smoke run)" if args.quick else ""),
        f"* Commit: {git_commit()}"
        + (" (reused sections name their own)" if reused else " (every section below)"),
        f"* Machine: {machine_markdown(info)}",
        "* Library: `sd_prompts_real_users.parquet` from the shared data directory (read in place).",
        "* Each section below names its exact command and date. Numbers are single runs on a shared "
        "2-core machine; the CPU used by *other* processes during each bench is noted, since it inflates "
        "timings.\n",
        "## Headline numbers\n",
        summary(metas),
    ]
    for bench in BENCHES:
        meta = metas.get(bench.name)
        if meta is not None:
            lines.append("\n---\n")
            lines.append(section(bench, meta))
    return "\n".join(lines)


def section(bench: Bench, meta: dict[str, Any]) -> str:
    """One bench's section of RESULTS.md: its report with the run_all line under its heading."""
    if meta.get("missing"):
        return f"## {bench.title}\n\nNot run: {meta['note']}.\n"
    markdown = Path(meta["markdown"])
    body = markdown.read_text(encoding="utf-8") if markdown.is_file() else ""
    run_line = (
        f"Run by run_all: `{meta['command']}` on {meta['date']}, exit status {meta['returncode']}, "
        f"{meta['wall_s'] / 60:.1f} min wall; other processes used ≈ {meta['others_cores']:.2f} cores "
        f"on average meanwhile{' (reused from an earlier run)' if meta.get('reused') else ''}."
    )
    if not body.startswith("## "):
        body = f"## {bench.title} (`bench/{bench.script}`)\n\n{body}"
    head, _, rest = body.partition("\n")
    text = f"{head}\n\n{run_line}\n{rest}"
    if meta["returncode"] != 0:
        log = Path(meta["log"])
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:] if log.is_file() else []
        text += "\n**Failed.** Last lines of its log:\n\n```\n" + "\n".join(tail) + "\n```\n"
    return text


# the headline lines a splice refreshes: (bench, the line's prefix, its summary, a key the result needs)
SPLICED_HEADLINES: tuple[tuple[str, str, Callable[[dict[str, Any]], str], str | None], ...] = (
    ("ingest", INGEST_HEADLINE, ingest_summary, "ab"),
    ("quality", QUALITY_HEADLINE, quality_summary, None),
    ("retrieval", RETRIEVAL_HEADLINE, retrieval_summary, None),
    ("compose", COMPOSE_HEADLINE, compose_summary, None),
    ("layout", LAYOUT_HEADLINE, layout_summary, "runs"),
    ("serve", SERVE_HEADLINE, serve_summary, "servers"),
    ("slack", SLACK_HEADLINE, slack_summary, "runs"),
)


def splice(existing: str, metas: dict[str, dict[str, Any]]) -> str:
    """The existing RESULTS.md with the sections (and headline lines) of the benches just run replaced."""
    chunks = existing.split("\n---\n")
    for bench in BENCHES:
        meta = metas.get(bench.name)
        if meta is None:
            continue
        new = "\n" + section(bench, meta)
        at = next((i for i, c in enumerate(chunks) if f"bench/{bench.script} " in c), None)
        if at is not None:
            chunks[at] = new
            continue
        earlier = [b.script for b in BENCHES[: BENCHES.index(bench)]]
        before = [i for i, c in enumerate(chunks) if any(f"bench/{script} " in c for script in earlier)]
        chunks.insert((max(before) if before else len(chunks) - 1) + 1, new)
    for name, prefix, summarize, needed in SPLICED_HEADLINES:
        result = _load(metas.get(name, {}))
        if result and (needed is None or result.get(needed)):
            chunks[0] = _put_headline(chunks[0], prefix, summarize(result))
    chunks[0] = note_spliced(chunks[0], dict.fromkeys(metas, git_commit()))
    return "\n---\n".join(chunks)


def note_spliced(head: str, spliced: dict[str, str]) -> str:
    """`head` with its Commit line naming the sections spliced in after the whole run, and their commits
    (a report assembled from reused sections already says that each section names its own)."""
    lines = head.split("\n")
    at = next((i for i, text in enumerate(lines) if text.startswith("* Commit: ")), None)
    if at is None or not spliced or "(reused sections name their own)" in lines[at]:
        return head
    base, _, rest = lines[at].removeprefix("* Commit: ").partition(" ")
    _, marker, earlier = rest.partition("spliced later: ")
    later = dict(_SPLICED_RE.findall(earlier)) if marker else {}
    later.update(spliced)
    named = ", ".join(f"{name} at {commit}" for name, commit in later.items())
    lines[at] = f"* Commit: {base} (every other section; spliced later: {named})"
    return "\n".join(lines)


_SPLICED_RE = re.compile(r"([\w-]+) at (\w+)")


def _put_headline(head: str, prefix: str, line: str) -> str:
    """`head` with its headline line starting with `prefix` replaced by `line` in place (so a splice keeps
    the order and the blank lines), or `line` inserted above the AWS sample's headline when it has none."""
    lines = head.split("\n")
    at = next((i for i, text in enumerate(lines) if text.startswith(prefix)), None)
    if at is not None:
        lines[at] = line.strip()
        return "\n".join(lines)
    at = next((i for i, text in enumerate(lines) if text.startswith("* **AWS sample")), len(lines))
    return "\n".join([*lines[:at], line.strip(), "", *lines[at:]])


def main(argv: list[str] | None = None) -> int:
    """Run the benches and write the report."""
    args = parse_args(argv)
    setup_logging(args.verbose)
    out_dir = args.out_dir / "quick" if args.quick else args.out_dir
    sections = out_dir / "sections"
    sections.mkdir(parents=True, exist_ok=True)
    chosen = {name.strip() for name in args.only.split(",")} if args.only else {b.name for b in BENCHES}
    unknown = chosen - {b.name for b in BENCHES}
    if unknown:
        raise SystemExit(f"unknown benches {sorted(unknown)}")
    started, clock = now_utc(), time.perf_counter()
    metas: dict[str, dict[str, Any]] = {}
    for bench in BENCHES:
        if bench.name in chosen:
            metas[bench.name] = run_bench(bench, args, sections, out_dir)
    if args.splice and args.out.is_file():
        report = splice(args.out.read_text(encoding="utf-8"), metas)
    else:
        report = render(metas, args, started, time.perf_counter() - clock)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    logger.info("wrote %s", args.out)
    failed = [name for name, meta in metas.items() if meta.get("returncode", 0) != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
