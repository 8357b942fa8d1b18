"""End-to-end CLI latency: a cold `imagine-bot search --json` and `imagine-bot imagine` on the 79k index.

Each run is a fresh process (Python start, imports, model load, index open, query, output), as a user
types it. Uses the Edge index that bench_ingest.py built under bench/out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    add_common_args,
    latency_summary,
    library_index_dir,
    markdown_table,
    report_header,
    setup_logging,
    write_outputs,
)

IDEAS = ("a cartoon of a little dog", "a cozy cabin in a snowy forest at night", "logo for a coffee shop")


def _run(args: list[str], data_dir: Path) -> tuple[float, str]:
    """Wall seconds and stdout of one CLI process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGINE_", "AWS_", "SLACK_"))}
    env["IMAGINE_DATA_DIR"] = str(data_dir)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"`imagine-bot {' '.join(args)}` failed: {done.stderr.strip()}")
    return elapsed, done.stdout


def main() -> int:
    """Time cold CLI runs and write a markdown section."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_args(parser)
    parser.add_argument("--runs", type=int, default=10, help="cold runs per command (default 10)")
    args = parser.parse_args()
    setup_logging(args.verbose)
    index = library_index_dir(args.out_dir)
    if not index.exists():
        raise SystemExit(f"no library index at {index}: run bench/bench_ingest.py first")
    data_dir = index.parents[1]
    rows = []
    result: dict[str, Any] = {}
    checks = []
    for label, command in (
        ("search --json (hybrid + MMR, k=5)", ["search", "{idea}", "--json"]),
        ("imagine (offline composer + preview image)", ["imagine", "{idea}", "--json"]),
    ):
        times = []
        for run in range(args.runs):
            idea = IDEAS[run % len(IDEAS)]
            seconds, out = _run([part.format(idea=idea) for part in command], data_dir)
            times.append(seconds * 1000)
            if command[0] == "search":
                hits = json.loads(out)
                checks.append(
                    (idea, len(hits), len({h["prompt"] for h in hits}), all(h["safe"] for h in hits))
                )
        summary = latency_summary(times)
        result[label] = summary
        rows.append((label, args.runs, summary["p50_ms"], summary["p95_ms"], min(times), summary["max_ms"]))
    markdown = report_header("CLI end to end (cold process per run)")
    markdown += (
        f"Index: {index} (the 79k library built by bench_ingest.py). Ideas cycled: {', '.join(IDEAS)}.\n\n"
    )
    markdown += markdown_table(("command", "runs", "p50 ms", "p95 ms", "min ms", "max ms"), rows) + "\n\n"
    distinct = all(n == 5 and d == 5 and safe for _, n, d, safe in checks)
    markdown += f"Every search returned 5 distinct, safe prompts: {'yes' if distinct else 'NO'}.\n"
    write_outputs(markdown, result, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
