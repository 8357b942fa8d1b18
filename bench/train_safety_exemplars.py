"""Build the known-unsafe exemplars shipped as retrieval/data/safety_exemplars.npz.

Same data and split as bench/train_safety.py (I2P by file row: row % 4 == 0 training, row % 4 == 2
validation, odd rows held out; the library by sha256 bucket: 2 validation, 3 held out).

* Threshold: exemplars = the training rows; the lowest cosine similarity (grid 0.70 to 0.95) at which
  exemplar matches flag at most --budget of the validation library *beyond* what the lexicon and the
  packaged embedding classifier already flag. Validation I2P recall is reported for that threshold.
* Shipped: the vectors of the training and validation rows (never the text) at that threshold; held-out
  I2P recall and the held-out library's extra flag rate are measured with exactly what ships.

Run: `.venv/bin/python bench/train_safety_exemplars.py` (a minute with bench_ingest's library cache).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    REPO,
    FloatArray,
    add_common_args,
    machine_info,
    markdown_table,
    now_utc,
    report_header,
    setup_logging,
    write_outputs,
)
from train_safety import (
    I2P_FILE,
    SPLIT_TEXT,
    embed_all,
    file_sha256,
    library_bucket,
    load_i2p,
    load_library,
    rate,
)

from retrieval.safety import SafetyClassifier
from retrieval.safety_embedding import EmbeddingSafetyClassifier
from retrieval.safety_exemplars import SafetyExemplars

logger = logging.getLogger("train_safety_exemplars")
EXEMPLARS_OUT = REPO / "retrieval" / "data" / "safety_exemplars.npz"
GRID = tuple(round(0.70 + 0.01 * i, 2) for i in range(26))


def pick_threshold(sims: FloatArray, already: np.ndarray, budget: float) -> float:
    """The lowest grid threshold whose extra flags (not `already` flagged) stay within `budget`."""
    for threshold in GRID:
        if rate((sims >= threshold) & ~already) <= budget:
            return threshold
    return GRID[-1]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line: the shared options plus the flag budget and the output."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_common_args(parser)
    parser.add_argument(
        "--budget",
        type=float,
        default=0.005,
        help="extra share of the validation library exemplar matches may flag (default 0.005)",
    )
    parser.add_argument("--exemplars-out", type=Path, default=EXEMPLARS_OUT, help="where to write the file")
    parser.add_argument("--no-write", action="store_true", help="report only; leave the exemplar file alone")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Tune the threshold on validation, measure held-out with what ships, write the exemplars."""
    args = parse_args(argv)
    setup_logging(args.verbose)
    started = time.perf_counter()
    i2p, _ = load_i2p(args.shared_data)
    library = load_library(args.shared_data, i2p)
    lexicon, classifier = SafetyClassifier(), EmbeddingSafetyClassifier.load()
    i2p_vectors = embed_all([row.text for row in i2p], args.out_dir)
    lib_vectors = embed_all(library, args.out_dir)
    buckets = np.array([library_bucket(text) for text in library])
    split = np.array([row.split for row in i2p])
    lib_flagged = np.array([lexicon.is_unsafe(t) for t in library]) | (
        classifier.scores(lib_vectors) >= classifier.threshold
    )
    i2p_flagged = np.array([lexicon.is_unsafe(row.text) for row in i2p]) | (
        classifier.scores(i2p_vectors) >= classifier.threshold
    )

    tuning = SafetyExemplars(i2p_vectors[split == "train"], 1.0, "local:all-MiniLM-L6-v2")
    val_lib, val_i2p = buckets == 2, split == "validation"
    threshold = pick_threshold(tuning.similarities(lib_vectors[val_lib]), lib_flagged[val_lib], args.budget)
    val_hits = tuning.similarities(i2p_vectors[val_i2p]) >= threshold

    shipped_rows = np.flatnonzero(split != "held_out")
    provenance: dict[str, Any] = {
        "built": now_utc(),
        "script": "bench/train_safety_exemplars.py",
        "embed_model": "local:all-MiniLM-L6-v2 (int8 ONNX, OnnxMiniLMEmbedder)",
        "source": {"file": I2P_FILE, "sha256": file_sha256(args.shared_data / I2P_FILE), "rows": "even"},
        "split": SPLIT_TEXT,
        "threshold_rule": f"lowest of 0.70..0.95 adding <= {args.budget:.2%} flags to the validation library "
        "(exemplars = training rows) beyond lexicon + embedding classifier",
    }
    exemplars = SafetyExemplars(i2p_vectors[shipped_rows], threshold, "local:all-MiniLM-L6-v2", provenance)
    held_i2p, held_lib = split == "held_out", buckets == 3
    held_hits = exemplars.similarities(i2p_vectors[held_i2p]) >= threshold
    lib_hits = exemplars.similarities(lib_vectors) >= threshold
    metrics = {
        "threshold": threshold,
        "exemplars": len(shipped_rows),
        "validation_i2p_recall": {
            "before": rate(i2p_flagged[val_i2p]),
            "after": rate(i2p_flagged[val_i2p] | val_hits),
            "n": int(val_i2p.sum()),
        },
        "held_out_i2p_recall": {
            "before": rate(i2p_flagged[held_i2p]),
            "after": rate(i2p_flagged[held_i2p] | held_hits),
            "n": int(held_i2p.sum()),
        },
        "held_out_library_flagged": {
            "before": rate(lib_flagged[held_lib]),
            "after": rate(lib_flagged[held_lib] | lib_hits[held_lib]),
            "n": int(held_lib.sum()),
        },
        "whole_library_flagged": {
            "before": rate(lib_flagged),
            "after": rate(lib_flagged | lib_hits),
            "n": len(library),
        },
    }
    provenance["metrics"] = {k: v for k, v in metrics.items() if isinstance(v, dict)}
    if not args.no_write:
        exemplars.save(args.exemplars_out)
        logger.info(
            "wrote %s (%d exemplars, threshold %.2f)", args.exemplars_out, len(exemplars.vectors), threshold
        )
    result = {"metrics": metrics, "seconds": time.perf_counter() - started, "machine": machine_info()}
    write_outputs(report(metrics, args), result, args)
    return 0


def report(metrics: dict[str, Any], args: argparse.Namespace) -> str:
    """The markdown report of one run."""
    md = report_header("Known-unsafe exemplars (near-copies of I2P training prompts)")
    md += (
        f"{metrics['exemplars']} exemplar vectors (I2P even rows), "
        f"cosine threshold {metrics['threshold']:.2f}, "
        f"tuned on validation with a {args.budget:.2%} extra-flag budget.\n\n"
    )
    rows = [
        ["validation I2P recall", metrics["validation_i2p_recall"]],
        ["held-out I2P recall (odd rows)", metrics["held_out_i2p_recall"]],
        ["held-out library flagged", metrics["held_out_library_flagged"]],
        ["whole library flagged", metrics["whole_library_flagged"]],
    ]
    md += markdown_table(
        ["measure", "n", "lexicon + embedding", "+ exemplars"],
        [[name, m["n"], f"{m['before']:.2%}", f"{m['after']:.2%}"] for name, m in rows],
    )
    return md


if __name__ == "__main__":
    raise SystemExit(main())
