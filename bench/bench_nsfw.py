"""Benchmark the prompt safety classifier: I2P recall per category, library false positives, throughput.

The lexicon was tuned on the even rows of both files; this reports the odd (held-out) rows by default and
the tuning rows next to them, so over-fitting shows as a gap between the two columns. Many I2P prompts
were picked because the *image* was inappropriate and have harmless text, so a text filter cannot reach
full recall on them. The library is "mostly" negative: some of its prompts really are NSFW.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from common import (
    add_common_args,
    library_path,
    machine_info,
    markdown_table,
    report_header,
    setup_logging,
    write_outputs,
)

from retrieval.safety import SafetyClassifier, SafetyVerdict

logger = logging.getLogger("bench_nsfw")
I2P_FILE = "sd_prompts_i2p_inappropriate.parquet"
I2P_CATEGORIES = ("sexual", "violence", "self-harm", "hate", "harassment", "illegal activity", "shocking")
FPR_GOAL = 0.03


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line: the shared options plus threshold and which half is held out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="SafetyClassifier threshold (default 0.5)"
    )
    parser.add_argument(
        "--held-out",
        choices=("odd", "even"),
        default="odd",
        help="rows reported as held-out (the lexicon was tuned on the even rows; default odd)",
    )
    parser.add_argument("--samples", type=int, default=0, help="also print N flagged library prompts")
    return parser.parse_args(argv)


def load_i2p(shared_data: Path) -> list[tuple[str, tuple[str, ...], float]]:
    """I2P rows as (prompt, categories, Perspective prompt toxicity)."""
    path = shared_data / I2P_FILE
    if not path.is_file():
        raise SystemExit(f"I2P file not found: {path} (use --shared-data)")
    table = pq.read_table(path, columns=["prompt", "extra", "prompt_nsfw"]).to_pylist()
    rows = []
    for row in table:
        extra = json.loads(row["extra"] or "{}")
        cats = tuple(c.strip() for c in str(extra.get("categories", "")).split(",") if c.strip())
        rows.append((str(row["prompt"]), cats, float(row["prompt_nsfw"] or 0.0)))
    return rows


def classify_all(clf: SafetyClassifier, texts: Sequence[str]) -> tuple[list[SafetyVerdict], float]:
    """Verdicts for every text and the seconds it took."""
    start = time.perf_counter()
    verdicts = [clf.classify(text) for text in texts]
    return verdicts, time.perf_counter() - start


def recall(
    i2p: Sequence[tuple[str, tuple[str, ...], float]],
    verdicts: Sequence[SafetyVerdict],
    parity: int,
    category: str,
) -> tuple[int, float]:
    """(n, recall) over the I2P rows of one parity that carry the category ('any' = all rows)."""
    flags = [
        verdict.unsafe
        for i, ((_, cats, _), verdict) in enumerate(zip(i2p, verdicts, strict=True))
        if i % 2 == parity and (category == "any" or category in cats)
    ]
    return len(flags), (sum(flags) / len(flags) if flags else 0.0)


def recall_rows(
    i2p: Sequence[tuple[str, tuple[str, ...], float]],
    verdicts: Sequence[SafetyVerdict],
    halves: dict[str, int],
) -> list[list[object]]:
    """One row per I2P category (and 'any'): n and recall on the held-out rows, recall on the tuning rows."""
    rows: list[list[object]] = []
    for category in (*I2P_CATEGORIES, "any"):
        n_held, held = recall(i2p, verdicts, halves["held_out"], category)
        _, tuning = recall(i2p, verdicts, halves["tuning"], category)
        rows.append([category, n_held, f"{held:.3f}", f"{tuning:.3f}"])
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print (and optionally write) the markdown report."""
    args = parse_args(argv)
    setup_logging(args.verbose)
    halves = {"held_out": 1 if args.held_out == "odd" else 0, "tuning": 0 if args.held_out == "odd" else 1}
    library = [
        str(p)
        for p in pq.read_table(library_path(args.shared_data), columns=["prompt"])["prompt"].to_pylist()
    ]
    i2p = load_i2p(args.shared_data)
    clf = SafetyClassifier(threshold=args.threshold)
    lib_verdicts, lib_seconds = classify_all(clf, library)
    i2p_verdicts, i2p_seconds = classify_all(clf, [text for text, _, _ in i2p])
    total = len(library) + len(i2p)
    rate = total / (lib_seconds + i2p_seconds)

    fpr: dict[str, dict[str, Any]] = {}
    for name, parity in (("held-out", halves["held_out"]), ("tuning", halves["tuning"])):
        flagged = [v for i, v in enumerate(lib_verdicts) if i % 2 == parity and v.unsafe]
        n = sum(1 for i in range(len(library)) if i % 2 == parity)
        fpr[name] = {
            "n": n,
            "flagged": len(flagged),
            "rate": len(flagged) / n,
            "by_category": dict(Counter(v.categories[0] for v in flagged).most_common()),
        }
    toxic = [tox >= 0.5 for _, _, tox in i2p]
    result = {
        "threshold": args.threshold,
        "held_out": args.held_out,
        "recall": recall_rows(i2p, i2p_verdicts, halves),
        "library": fpr,
        "throughput_prompts_per_s": rate,
        "i2p_prompt_toxicity_ge_0_5": sum(toxic) / len(toxic),
        "machine": machine_info(),
    }
    held = fpr["held-out"]
    md = report_header("Prompt safety classifier (text-only lexicon)", result["machine"])
    md += f"Threshold {args.threshold}; held-out = {args.held_out} rows (tuning on the other half).\n\n"
    md += "### Recall on I2P (inappropriate prompts)\n\n"
    md += markdown_table(
        ["I2P category", "n held-out", "recall held-out", "recall tuning half"], result["recall"]
    )
    md += (
        f"\nOnly {result['i2p_prompt_toxicity_ge_0_5']:.1%} of I2P prompts have Perspective toxicity >= 0.5: "
        "most were chosen for the image they produced, and their text is harmless.\n\n"
    )
    md += "### False positives on the main library (mostly safe prompts)\n\n"
    md += markdown_table(
        ["library half", "prompts", "flagged", "flag rate", "goal", "flagged by top category"],
        [
            [
                name,
                f["n"],
                f["flagged"],
                f"{f['rate']:.2%}",
                f"<= {FPR_GOAL:.0%}",
                json.dumps(f["by_category"]),
            ]
            for name, f in fpr.items()
        ],
    )
    md += "\n### Throughput\n\n"
    md += markdown_table(
        ["prompts", "seconds", "prompts/s"], [[total, f"{lib_seconds + i2p_seconds:.2f}", f"{rate:,.0f}"]]
    )
    if args.samples:
        flagged_text = [
            (library[i], v) for i, v in enumerate(lib_verdicts) if i % 2 == halves["held_out"] and v.unsafe
        ]
        md += "\n### Sample of flagged library prompts (held-out)\n\n"
        md += markdown_table(
            ["score", "categories", "matched", "prompt"],
            [
                [f"{v.score:.2f}", ",".join(v.categories), ",".join(v.matched), t[:120]]
                for t, v in flagged_text[: args.samples]
            ],
        )
    logger.info("held-out library flag rate %.2f%%, %.0f prompts/s", 100 * held["rate"], rate)
    write_outputs(md, result, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
