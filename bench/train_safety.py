"""Train the embedding safety classifier shipped as retrieval/data/safety_embedding.json.

Data and split (fixed, so a re-run reproduces the file):

* Positives: the I2P prompts (`sd_prompts_i2p_inappropriate.parquet`), cleaned as ingest cleans them
  (rows ingest would drop, e.g. one-word prompts, are left out). By file row: row % 4 == 0 is training,
  row % 4 == 2 validation, and the odd rows are held out (never used to fit or tune; the lexicon was
  tuned on the even rows too, and bench_nsfw.py reports the odd ones).
* Negatives: the real-user prompts (`sd_prompts_real_users.parquet`), cleaned and de-duplicated as
  ingest does, minus any prompt that also occurs in I2P. Bucket = sha256(cleaned text) % 4: buckets 0-1
  are the training pool, 2 validation, 3 held out. The training negatives are a seeded sample of the pool
  without the prompts the lexicon flags (the library holds some NSFW prompts, which must not teach the
  model "safe"). The library has no per-row NSFW scores (prompt_nsfw/image_nsfw are only set for I2P),
  so the lexicon is the only cleaning of the negatives.
* Features: the all-MiniLM-L6-v2 vectors ingest computes (OnnxMiniLMEmbedder). The library vectors come
  from bench_ingest.py's cache in --out-dir when present (same model, same cleaned text); the rest is
  embedded here.
* Model: L2-regularized, class-balanced logistic regression fitted by Newton steps (IRLS) in numpy;
  lambda picked from a small grid by validation recall at the target flag rate.
* Threshold: the one at which "lexicon or embedding" flags --target-flag-rate of the validation library.

Writes the weights with their provenance (files and checksums, split, seed, date, metrics) into the JSON
and prints a markdown report. Run: `.venv/bin/python bench/train_safety.py` (about a minute with the
library cache, ten on a cold machine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from common import (
    CACHE_META,
    CACHE_VECTORS,
    REPO,
    FloatArray,
    add_common_args,
    library_path,
    machine_info,
    markdown_table,
    now_utc,
    report_header,
    setup_logging,
    write_outputs,
)

from retrieval.cleaning import clean_prompt, dedupe_key
from retrieval.safety import SafetyClassifier
from retrieval.safety_embedding import EmbeddingSafetyClassifier

logger = logging.getLogger("train_safety")
I2P_FILE = "sd_prompts_i2p_inappropriate.parquet"
I2P_CATEGORIES = ("sexual", "violence", "self-harm", "hate", "harassment", "illegal activity", "shocking")
WEIGHTS_OUT = REPO / "retrieval" / "data" / "safety_embedding.json"
LAMBDAS = (1e-5, 1e-4, 1e-3, 1e-2)
SPLIT_TEXT = (
    "I2P by file row: row%4==0 train, row%4==2 validation, odd rows held out. Library (cleaned, deduped, "
    "minus prompts also in I2P) by sha256(text)%4: 0-1 train pool, 2 validation, 3 held out; training "
    "negatives = seeded sample of the pool without lexicon-flagged prompts."
)


@dataclass(frozen=True)
class I2PRow:
    """One cleaned I2P prompt with its file row and I2P categories."""

    row: int
    text: str
    categories: tuple[str, ...]

    @property
    def split(self) -> str:
        """'train', 'validation' or 'held_out' (the odd rows)."""
        if self.row % 2 == 1:
            return "held_out"
        return "train" if self.row % 4 == 0 else "validation"


def load_i2p(shared_data: Path) -> tuple[list[I2PRow], int]:
    """The I2P prompts ingest would keep, and how many rows it would drop."""
    path = shared_data / I2P_FILE
    if not path.is_file():
        raise SystemExit(f"I2P file not found: {path} (use --shared-data)")
    rows: list[I2PRow] = []
    dropped = 0
    for i, record in enumerate(pq.read_table(path, columns=["prompt", "extra"]).to_pylist()):
        text, _ = clean_prompt(str(record["prompt"] or ""))
        if text is None:
            dropped += 1
            continue
        extra = json.loads(record["extra"] or "{}")
        cats = tuple(c.strip() for c in str(extra.get("categories", "")).split(",") if c.strip())
        rows.append(I2PRow(i, text, cats))
    return rows, dropped


def library_bucket(text: str) -> int:
    """0-1 training pool, 2 validation, 3 held out (stable: depends on the cleaned text only)."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % 4


def load_library(shared_data: Path, i2p: Sequence[I2PRow]) -> list[str]:
    """The library's cleaned, de-duplicated prompts, without those that also occur in I2P."""
    excluded = {dedupe_key(row.text) for row in i2p}
    seen: set[str] = set()
    texts: list[str] = []
    for raw in pq.read_table(library_path(shared_data), columns=["prompt"]).column("prompt").to_pylist():
        text, _ = clean_prompt(str(raw or ""))
        if text is None:
            continue
        key = dedupe_key(text)
        if key in seen or key in excluded:
            continue
        seen.add(key)
        texts.append(text)
    return texts


def file_sha256(path: Path) -> str:
    """Checksum of a data file, for the provenance."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def embed_all(texts: Sequence[str], out_dir: Path) -> FloatArray:
    """MiniLM vectors of `texts`: from bench_ingest's library cache where it has them, else embedded now."""
    from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder

    cached: dict[str, int] = {}
    vectors_path, meta_path = out_dir / CACHE_VECTORS, out_dir / CACHE_META
    cache_vectors: FloatArray | None = None
    if vectors_path.is_file() and meta_path.is_file():
        with meta_path.open(encoding="utf-8") as handle:
            for i, line in enumerate(handle):
                cached[json.loads(line)["prompt"]] = i
        cache_vectors = np.load(vectors_path, mmap_mode="r")
        logger.info("library cache: %d vectors in %s", len(cached), out_dir)
    out = np.empty((len(texts), 384), dtype=np.float32)
    missing = [i for i, text in enumerate(texts) if text not in cached]
    hits = [i for i, text in enumerate(texts) if text in cached]
    if hits and cache_vectors is not None:
        out[hits] = cache_vectors[[cached[texts[i]] for i in hits]]
    if missing:
        logger.info("embedding %d prompts (%d came from the cache)", len(missing), len(hits))
        embedder = OnnxMiniLMEmbedder()
        started = time.perf_counter()
        for start in range(0, len(missing), 4096):
            chunk = missing[start : start + 4096]
            out[chunk] = embedder.embed_documents_array([texts[i] for i in chunk])
            logger.info(
                "  %d / %d (%.0f prompts/s)",
                start + len(chunk),
                len(missing),
                (start + len(chunk)) / (time.perf_counter() - started),
            )
    return out


def fit_logistic(x: FloatArray, y: FloatArray, lam: float, iterations: int = 50) -> tuple[FloatArray, float]:
    """Class-balanced L2 logistic regression by Newton steps; returns (weights, bias)."""
    n_pos, n_neg = float(y.sum()), float(len(y) - y.sum())
    sample_w = np.where(y > 0.5, 0.5 / n_pos, 0.5 / n_neg)  # each class carries half the loss
    design = np.hstack([x.astype(np.float64), np.ones((len(x), 1))])
    theta = np.zeros(design.shape[1])
    ridge = np.full(design.shape[1], lam)
    ridge[-1] = 0.0  # the bias is not regularized
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ theta, -30, 30)))
        grad = design.T @ (sample_w * (p - y)) + ridge * theta
        hessian = (design * (sample_w * p * (1 - p))[:, None]).T @ design + np.diag(ridge + 1e-9)
        step = np.linalg.solve(hessian, grad)
        theta -= step
        if float(np.abs(step).max()) < 1e-7:
            break
    return theta[:-1].astype(np.float32), float(theta[-1])


def union_threshold(emb_scores: FloatArray, lexicon_flags: np.ndarray, target: float) -> float:
    """The embedding threshold at which 'lexicon or embedding' flags `target` of these (safe) prompts."""
    lexicon_rate = float(lexicon_flags.mean())
    extra = target - lexicon_rate
    if extra <= 0:
        raise SystemExit(f"the lexicon alone flags {lexicon_rate:.2%} (>= target {target:.2%})")
    rest = np.sort(emb_scores[~lexicon_flags])[::-1]
    count = round(extra * len(emb_scores))
    return float(rest[min(count, len(rest) - 1)]) + 1e-7


def rate(flags: np.ndarray) -> float:
    """Share of True values (0 for none)."""
    return float(flags.mean()) if len(flags) else 0.0


@dataclass
class Evaluation:
    """Flags of both classifiers on the I2P rows and the library, to report recall and flag rates."""

    i2p: list[I2PRow]
    i2p_lexicon: np.ndarray
    i2p_embedding: np.ndarray
    library_buckets: np.ndarray
    library_lexicon: np.ndarray
    library_embedding: np.ndarray

    def recall_rows(self, split: str) -> list[dict[str, Any]]:
        """Recall per I2P category on one split: lexicon, embedding and either."""
        rows = []
        in_split = np.array([row.split == split for row in self.i2p])
        for category in (*I2P_CATEGORIES, "any"):
            mask = in_split & np.array([category == "any" or category in row.categories for row in self.i2p])
            rows.append(
                {
                    "category": category,
                    "n": int(mask.sum()),
                    "lexicon": rate(self.i2p_lexicon[mask]),
                    "embedding": rate(self.i2p_embedding[mask]),
                    "either": rate((self.i2p_lexicon | self.i2p_embedding)[mask]),
                }
            )
        return rows

    def library_rates(self, bucket: int) -> dict[str, Any]:
        """Flag rates on one library bucket."""
        mask = self.library_buckets == bucket
        lex, emb = self.library_lexicon[mask], self.library_embedding[mask]
        return {
            "n": int(mask.sum()),
            "lexicon": rate(lex),
            "embedding": rate(emb),
            "either": rate(lex | emb),
            "embedding_only": rate(emb & ~lex),
        }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line: the shared options plus seed, sample size, target rate and output."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--seed", type=int, default=20261125, help="seed of the negative sample")
    parser.add_argument("--negatives", type=int, default=20000, help="training negatives (library sample)")
    parser.add_argument(
        "--target-flag-rate",
        type=float,
        default=0.08,
        help="share of the validation library flagged by lexicon OR embedding (default 0.08)",
    )
    parser.add_argument("--weights-out", type=Path, default=WEIGHTS_OUT, help="where to write the JSON")
    parser.add_argument("--no-write", action="store_true", help="report only; leave the weights file alone")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Load, embed, fit, pick lambda and threshold on validation, report held-out, write the weights."""
    args = parse_args(argv)
    setup_logging(args.verbose)
    started = time.perf_counter()
    i2p, i2p_dropped = load_i2p(args.shared_data)
    library = load_library(args.shared_data, i2p)
    logger.info(
        "I2P: %d prompts (%d dropped by cleaning); library: %d prompts", len(i2p), i2p_dropped, len(library)
    )
    lexicon = SafetyClassifier()
    lib_lexicon = np.array([lexicon.is_unsafe(text) for text in library])
    i2p_lexicon = np.array([lexicon.is_unsafe(row.text) for row in i2p])
    buckets = np.array([library_bucket(text) for text in library])
    i2p_vectors = embed_all([row.text for row in i2p], args.out_dir)
    lib_vectors = embed_all(library, args.out_dir)

    split = np.array([row.split for row in i2p])
    rng = np.random.default_rng(args.seed)
    pool = np.flatnonzero((buckets < 2) & ~lib_lexicon)
    negatives = np.sort(rng.choice(pool, size=min(args.negatives, len(pool)), replace=False))
    positives = np.flatnonzero(split == "train")
    x = np.vstack([i2p_vectors[positives], lib_vectors[negatives]])
    y = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
    val_lib = buckets == 2

    def sigmoid_scores(weights: FloatArray, bias: float) -> Callable[[FloatArray], FloatArray]:
        def scores(vectors: FloatArray) -> FloatArray:
            out: FloatArray = 1.0 / (1.0 + np.exp(-(vectors @ weights + bias)))
            return out

        return scores

    trials: list[dict[str, Any]] = []
    best: tuple[float, float, FloatArray, float, float] | None = None
    for lam in LAMBDAS:
        weights, bias = fit_logistic(x, y, lam)
        score = sigmoid_scores(weights, bias)
        threshold = union_threshold(score(lib_vectors[val_lib]), lib_lexicon[val_lib], args.target_flag_rate)
        val_rows = split == "validation"
        recall = rate((score(i2p_vectors[val_rows]) >= threshold) | i2p_lexicon[val_rows])
        trials.append({"lambda": lam, "threshold": threshold, "validation_recall_either": recall})
        logger.info("lambda %g: threshold %.4f, validation recall (either) %.3f", lam, threshold, recall)
        if best is None or recall > best[0]:
            best = (recall, lam, weights, bias, threshold)
    assert best is not None
    _, lam, weights, bias, threshold = best
    score = sigmoid_scores(weights, bias)
    evaluation = Evaluation(
        i2p,
        i2p_lexicon,
        score(i2p_vectors) >= threshold,
        buckets,
        lib_lexicon,
        score(lib_vectors) >= threshold,
    )
    metrics = {
        "held_out_i2p_recall": evaluation.recall_rows("held_out"),
        "validation_i2p_recall": evaluation.recall_rows("validation"),
        "library_validation": evaluation.library_rates(2),
        "library_held_out": evaluation.library_rates(3),
        "library_all": {
            "n": len(library),
            "lexicon": rate(lib_lexicon),
            "embedding": rate(evaluation.library_embedding),
            "either": rate(lib_lexicon | evaluation.library_embedding),
        },
        "lambda_trials": trials,
    }
    provenance = {
        "trained": now_utc(),
        "script": "bench/train_safety.py",
        "embed_model": "local:all-MiniLM-L6-v2 (int8 ONNX, OnnxMiniLMEmbedder)",
        "data": {
            "positives": {
                "file": I2P_FILE,
                "sha256": file_sha256(args.shared_data / I2P_FILE),
                "rows_kept": len(i2p),
                "rows_dropped_by_cleaning": i2p_dropped,
            },
            "negatives": {
                "file": library_path(args.shared_data).name,
                "sha256": file_sha256(library_path(args.shared_data)),
                "prompts_after_cleaning": len(library),
            },
        },
        "split": SPLIT_TEXT,
        "seed": args.seed,
        "train": {"positives": len(positives), "negatives": len(negatives), "lambda": lam},
        "threshold_rule": f"lexicon OR embedding flags {args.target_flag_rate:.2%} of the validation library",
        "metrics": _rounded(metrics),
    }
    classifier = EmbeddingSafetyClassifier(
        weights=tuple(round(float(w), 6) for w in weights),
        bias=round(bias, 6),
        threshold=round(threshold, 6),
        model_id="local:all-MiniLM-L6-v2",
        provenance=provenance,
    )
    if not args.no_write:
        args.weights_out.write_text(json.dumps(classifier.to_dict(), indent=1) + "\n", encoding="utf-8")
        logger.info("wrote %s", args.weights_out)
    result = {"provenance": provenance, "seconds": time.perf_counter() - started, "machine": machine_info()}
    write_outputs(report(provenance, args), result, args)
    return 0


def _rounded(value: Any) -> Any:
    """Floats rounded to 4 significant digits, recursively (keeps the JSON readable)."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


def report(provenance: dict[str, Any], args: argparse.Namespace) -> str:
    """The markdown report of one training run."""
    metrics = provenance["metrics"]
    md = report_header("Embedding safety classifier (training)")
    md += (
        f"Split: {provenance['split']} Seed {provenance['seed']}; lambda {provenance['train']['lambda']:g}; "
    )
    md += f"threshold rule: {provenance['threshold_rule']}.\n\n"
    md += "### Recall on held-out I2P (odd rows, never used to fit or tune)\n\n"
    md += markdown_table(
        ["I2P category", "n", "lexicon", "embedding", "lexicon or embedding"],
        [
            [r["category"], r["n"], f"{r['lexicon']:.3f}", f"{r['embedding']:.3f}", f"{r['either']:.3f}"]
            for r in metrics["held_out_i2p_recall"]
        ],
    )
    md += "\n### Library flag rate (mostly safe prompts)\n\n"
    md += markdown_table(
        ["library part", "prompts", "lexicon", "embedding", "lexicon or embedding"],
        [
            [name, m["n"], f"{m['lexicon']:.2%}", f"{m['embedding']:.2%}", f"{m['either']:.2%}"]
            for name, m in (
                ("validation bucket", metrics["library_validation"]),
                ("held-out bucket", metrics["library_held_out"]),
                ("whole library", metrics["library_all"]),
            )
        ],
    )
    return md


if __name__ == "__main__":
    raise SystemExit(main())
