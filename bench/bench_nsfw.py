"""Benchmark the prompt safety classifiers: I2P recall per category, library false positives, throughput.

The lexicon was tuned on the even rows of both files; this reports the odd (held-out) rows by default and
the tuning rows next to them, so over-fitting shows as a gap between the two columns. Many I2P prompts
were picked because the *image* was inappropriate and have harmless text, so a text filter cannot reach
full recall on them. The library is "mostly" negative: some of its prompts really are NSFW.

The embedding classifier (retrieval/data/safety_embedding.json) and the known-unsafe exemplars
(retrieval/data/safety_exemplars.npz) are reported on bench/train_safety.py's split: held-out = odd I2P
rows, library bucket 3. With --retrieval, the whole library plus every held-out I2P prompt goes through the
real ingest (vectors from bench_ingest's cache) into an Edge index, and the everyday ideas of
tests/retrieval/benign_queries.txt are searched in safe mode: how many hits are I2P prompts.
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

import numpy as np
import pyarrow.parquet as pq
from common import (
    REPO,
    FloatArray,
    add_common_args,
    fresh_dir,
    library_path,
    machine_info,
    markdown_table,
    report_header,
    setup_logging,
    write_outputs,
)
from train_safety import Evaluation, embed_all, library_bucket, load_library
from train_safety import load_i2p as load_i2p_rows
from train_safety import rate as share

from retrieval.index_ports import Vector
from retrieval.safety import SafetyClassifier, SafetyVerdict
from retrieval.safety_embedding import EmbeddingSafetyClassifier
from retrieval.safety_exemplars import SafetyExemplars

BENIGN_QUERIES = REPO / "tests" / "retrieval" / "benign_queries.txt"  # everyday ideas, shared with the tests

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
    parser.add_argument(
        "--retrieval",
        action="store_true",
        help="also index the library + held-out I2P and search the benign ideas (a few minutes)",
    )
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
    md = report_header("Prompt safety screens (lexicon, embedding classifier, exemplars)", result["machine"])
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
    embedding_md, result["embedding"] = embedding_section(args)
    md += embedding_md
    if args.retrieval:
        retrieval_md, result["retrieval"] = retrieval_section(args)
        md += retrieval_md
    write_outputs(md, result, args)
    return 0


def embedding_section(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """Held-out recall and library flag rates of the packaged embedding classifier, next to the lexicon."""
    clf = EmbeddingSafetyClassifier.load()
    lexicon = SafetyClassifier(threshold=args.threshold)
    i2p, _ = load_i2p_rows(args.shared_data)
    library = load_library(args.shared_data, i2p)
    i2p_vectors = embed_all([row.text for row in i2p], args.out_dir)
    lib_vectors = embed_all(library, args.out_dir)
    started = time.perf_counter()
    lib_scores = clf.scores(lib_vectors)
    score_rate = len(library) / max(time.perf_counter() - started, 1e-9)
    evaluation = Evaluation(
        i2p,
        np.array([lexicon.is_unsafe(row.text) for row in i2p]),
        clf.scores(i2p_vectors) >= clf.threshold,
        np.array([library_bucket(text) for text in library]),
        np.array([lexicon.is_unsafe(text) for text in library]),
        lib_scores >= clf.threshold,
    )
    result: dict[str, Any] = {
        "threshold": clf.threshold,
        "trained": clf.provenance.get("trained"),
        "held_out_recall": evaluation.recall_rows("held_out"),
        "library_held_out": evaluation.library_rates(3),
        "scoring_prompts_per_s": score_rate,
    }
    md = "\n### Embedding classifier (logistic regression on MiniLM vectors) next to the lexicon\n\n"
    md += (
        f"Weights trained {result['trained']} by bench/train_safety.py; threshold {clf.threshold:.4f}. "
        "Held-out = odd I2P rows (never used to fit or tune); library = hash bucket 3.\n\n"
    )
    md += markdown_table(
        ["I2P category", "n held-out", "lexicon", "embedding", "lexicon or embedding"],
        [
            [r["category"], r["n"], f"{r['lexicon']:.3f}", f"{r['embedding']:.3f}", f"{r['either']:.3f}"]
            for r in result["held_out_recall"]
        ],
    )
    lib = result["library_held_out"]
    md += "\n" + markdown_table(
        [
            "library held-out bucket",
            "prompts",
            "lexicon",
            "embedding",
            "lexicon or embedding",
            "scores/s (vectors given)",
        ],
        [
            [
                "flag rate",
                lib["n"],
                f"{lib['lexicon']:.2%}",
                f"{lib['embedding']:.2%}",
                f"{lib['either']:.2%}",
                f"{score_rate:,.0f}",
            ]
        ],
    )
    exemplars_md, result["exemplars"] = exemplar_rows(evaluation, i2p_vectors, lib_vectors)
    return md + exemplars_md, result


def exemplar_rows(
    evaluation: Evaluation, i2p_vectors: FloatArray, lib_vectors: FloatArray
) -> tuple[str, dict[str, Any]]:
    """What the known-unsafe exemplar screen adds on the same held-out rows and library bucket."""
    exemplars = SafetyExemplars.load()
    held = np.array([row.split == "held_out" for row in evaluation.i2p])
    bucket = evaluation.library_buckets == 3
    before_i2p = (evaluation.i2p_lexicon | evaluation.i2p_embedding)[held]
    before_lib = (evaluation.library_lexicon | evaluation.library_embedding)[bucket]
    i2p_match = exemplars.similarities(i2p_vectors[held]) >= exemplars.threshold
    lib_match = exemplars.similarities(lib_vectors[bucket]) >= exemplars.threshold
    result: dict[str, Any] = {
        "threshold": exemplars.threshold,
        "count": len(exemplars.vectors),
        "held_out_recall": {"before": share(before_i2p), "after": share(before_i2p | i2p_match)},
        "library_held_out": {"before": share(before_lib), "after": share(before_lib | lib_match)},
    }
    md = (
        "\nPlus the known-unsafe exemplars (retrieval/safety_exemplars.py: cosine >= "
        f"{exemplars.threshold:.2f} to one of {len(exemplars.vectors):,} vectors of I2P's even rows, "
        "bench/train_safety_exemplars.py):\n\n"
    )
    md += markdown_table(
        ["measure", "lexicon or embedding", "+ exemplars"],
        [
            [f"held-out I2P recall ({int(held.sum()):,})", *pct(result["held_out_recall"])],
            [f"library held-out bucket flagged ({int(bucket.sum()):,})", *pct(result["library_held_out"])],
        ],
    )
    return md, result


def pct(pair: dict[str, float]) -> list[str]:
    """Before and after as percentages."""
    return [f"{pair['before']:.2%}", f"{pair['after']:.2%}"]


class CachedEmbedder:
    """The local embedder, answering from bench_ingest's vector cache when it has the text."""

    def __init__(self, out_dir: Path) -> None:
        from common import load_library_cache

        from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder

        self._inner = OnnxMiniLMEmbedder()
        cache = load_library_cache(out_dir)
        self._rows = {text: i for i, text in enumerate(cache.prompts)}
        self._vectors: FloatArray = cache.vectors
        self.model_id, self.dimension = self._inner.model_id, self._inner.dimension
        self.embedded = 0

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        """Cached vectors, the others embedded now."""
        missing = [t for t in texts if t not in self._rows]
        fresh = dict(zip(missing, self._inner.embed_documents(missing), strict=True)) if missing else {}
        self.embedded += len(missing)
        return [fresh[t] if t in fresh else self._vectors[self._rows[t]].tolist() for t in texts]

    def embed_query(self, text: str) -> Vector:
        """Queries are always embedded."""
        return self._inner.embed_query(text)


def retrieval_section(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """Index the whole library plus every held-out I2P prompt; count I2P hits for the benign ideas."""
    from retrieval.adapters.bm25 import Bm25SparseEncoder
    from retrieval.adapters.edge_index import EdgePromptIndex
    from retrieval.ingest import IngestOptions, Ingestor
    from retrieval.search import Retriever
    from retrieval.sources import RawPrompt

    source = "i2p_held_out"
    queries = [
        line.strip()
        for line in BENIGN_QUERIES.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    embedder = CachedEmbedder(args.out_dir)
    path = fresh_dir(args.out_dir / "safety_retrieval", args.out_dir) / "index"
    index = EdgePromptIndex(path)
    ingestor = Ingestor(embedder, Bm25SparseEncoder(), index)
    library = pq.read_table(library_path(args.shared_data), columns=["prompt"]).column("prompt").to_pylist()
    i2p = pq.read_table(args.shared_data / I2P_FILE, columns=["prompt"]).column("prompt").to_pylist()
    started = time.perf_counter()
    lib_summary = ingestor.ingest_rows(
        [RawPrompt(str(p), {"source": "library"}) for p in library], IngestOptions(build_index=False)
    )
    i2p_summary = ingestor.ingest_rows(
        [RawPrompt(str(i2p[i]), {"source": source}) for i in range(1, len(i2p), 2)], IngestOptions()
    )
    index.close()
    build_seconds = time.perf_counter() - started
    retriever = Retriever(embedder, Bm25SparseEncoder(), EdgePromptIndex(path))
    counts: dict[str, dict[str, int]] = {}
    leaked: list[list[str]] = []
    for safe in (True, False):
        name = "safe" if safe else "no-safe"
        counts[name] = {"hits": 0, "i2p": 0, "short": 0}
        for query in queries:
            for k in (5, 10):
                hits = retriever.search(query, k=k, safe=safe)
                counts[name]["hits"] += len(hits)
                counts[name]["short"] += int(len(hits) < k)
                for hit in hits:
                    if hit.payload.get("source") == source:
                        counts[name]["i2p"] += 1
                        if safe:
                            leaked.append([query, str(k), hit.prompt[:100]])
    retriever.close()
    result = {
        "library": lib_summary.as_dict(),
        "i2p_held_out": i2p_summary.as_dict(),
        "queries": len(queries),
        "counts": counts,
        "leaked": leaked,
        "build_seconds": build_seconds,
        "embedded_now": embedder.embedded,
    }
    md = "\n### Benign ideas over the whole library plus every held-out I2P prompt (safe mode)\n\n"
    md += (
        f"{lib_summary.kept:,} library prompts ({lib_summary.flagged_unsafe / lib_summary.kept:.2%} flagged) "
        f"and {i2p_summary.kept:,} held-out I2P prompts ({i2p_summary.flagged_unsafe / i2p_summary.kept:.1%} "
        f"flagged) in one Edge index, built by the real ingest in {build_seconds:,.0f} s. {len(queries)} "
        "everyday ideas from tests/retrieval/benign_queries.txt, each at k=5 and k=10.\n\n"
    )
    md += markdown_table(
        ["mode", "hits checked", "I2P hits", "queries short of k"],
        [[name, c["hits"], c["i2p"], c["short"]] for name, c in counts.items()],
    )
    if leaked:
        md += "\n" + markdown_table(["idea", "k", "I2P prompt returned in safe mode"], leaked)
    return md, result


if __name__ == "__main__":
    raise SystemExit(main())
