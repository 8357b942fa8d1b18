"""Benchmark retrieval quality on bench/labelled_ideas.json over the whole-library Edge index.

For every labelled idea a library prompt is relevant when each group of the idea's rule has a regex
that matches it (case-insensitive, word-bounded `\\b(?:a|b)\\b`). Methods, all through `Retriever.search`
with the product's safe filter: dense only, BM25 only (SearchMode.SPARSE), hybrid RRF without MMR,
hybrid + MMR (the default before issue 11) and the default search. Reports capped recall@5 (BEIR style),
the near-duplicate rate of the top 5 and the number of distinct prompts in it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    FloatArray,
    LibraryCache,
    add_common_args,
    library_index_dir,
    load_library_cache,
    machine_info,
    markdown_table,
    report_header,
    run_report,
)

from retrieval.cleaning import dedupe_key
from retrieval.index_ports import IndexPoint, SearchMode
from retrieval.search import DEFAULT_MODE, DEFAULT_RANKING, PLAIN, Ranking

logger = logging.getLogger("bench_quality")
K = 5
NEAR_COPY_COSINE = 0.95


@dataclass(frozen=True)
class Method:
    """One way of searching: name, mode, whether MMR diversifies the top k, and the re-rank (`Ranking`).

    `planned`: the re-rank judges coverage by a concept plan, here the evaluation's own concept groups
    (a ceiling for a concept planner such as Claude, not a method the product can run offline), whose
    phrases also join the keyword query unless `plan_keywords` is off."""

    name: str
    mode: SearchMode
    diversify: bool
    ranking: Ranking = PLAIN
    planned: bool = False
    plan_keywords: bool = True


METHODS = (
    Method("dense", SearchMode.DENSE, False),
    Method("BM25", SearchMode.SPARSE, False),
    Method("hybrid RRF", SearchMode.HYBRID, False),
    Method("hybrid + MMR (old default)", SearchMode.HYBRID, True),
    Method("default search (issue 11)", DEFAULT_MODE, False, DEFAULT_RANKING),
)


class Rule:
    """An idea's relevance rule: every group must have a matching word-bounded regex."""

    def __init__(self, groups: list[list[str]]) -> None:
        self.groups = [re.compile(r"\b(?:" + "|".join(group) + r")\b", re.IGNORECASE) for group in groups]

    def __call__(self, text: str) -> bool:
        return all(pattern.search(text) for pattern in self.groups)


def near_copies(a: str, b: str, va: FloatArray | None, vb: FloatArray | None) -> bool:
    """Cosine ≥ 0.95 between the MiniLM vectors, or the same words after dropping one word."""
    if va is not None and vb is not None and float(np.dot(va, vb)) >= NEAR_COPY_COSINE:
        return True
    x, y = dedupe_key(a).split(), dedupe_key(b).split()
    if x == y:
        return True
    if len(x) < len(y):
        x, y = y, x
    if len(x) == len(y) + 1:  # one word more
        return any(x[:i] + x[i + 1 :] == y for i in range(len(x)))
    if len(x) == len(y):  # one word replaced: dropping it from both gives the same words
        return sum(p != q for p, q in zip(x, y, strict=True)) == 1
    return False


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_common_args(parser)
    default_ideas = Path(__file__).resolve().parent / "labelled_ideas.json"
    parser.add_argument("--ideas", type=Path, default=default_ideas, help="labelled ideas")
    parser.add_argument("--index-dir", type=Path, default=None, help="Edge index (default: bench_ingest's)")
    return parser.parse_args(argv)


def build_from_cache(cache: LibraryCache, index_dir: Path) -> None:
    """Build an Edge index from the cached prompts and vectors (when bench_ingest's index is gone)."""
    from retrieval.adapters.bm25 import Bm25SparseEncoder
    from retrieval.adapters.edge_index import EdgePromptIndex
    from retrieval.index_ports import IndexSpec

    encoder = Bm25SparseEncoder()
    index = EdgePromptIndex(index_dir)
    index.open(IndexSpec("local:all-MiniLM-L6-v2", 384), create=True)
    for start in range(0, len(cache), 4096):
        stop = min(start + 4096, len(cache))
        vectors = cache.vectors[start:stop].tolist()
        sparse = [encoder.encode_document(cache.prompts[i]) for i in range(start, stop)]
        index.upsert(
            [
                IndexPoint(cache.ids[i], vectors[i - start], sparse[i - start], cache.payloads[i])
                for i in range(start, stop)
            ]
        )
    index.finalize()
    index.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Search every idea with every method and score the top 5."""
    from retrieval.adapters.bm25 import Bm25SparseEncoder
    from retrieval.adapters.edge_index import EdgePromptIndex
    from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
    from retrieval.search import Retriever

    cache = load_library_cache(args.out_dir)
    index_dir: Path = args.index_dir or library_index_dir(args.out_dir)
    built = False
    if not (index_dir / "imagine_index.json").exists():
        index_dir = args.out_dir / "quality_index"
        if not (index_dir / "imagine_index.json").exists():
            logger.info("no ingest index found: building %s from the cache", index_dir)
            build_from_cache(cache, index_dir)
            built = True
    row_of = {point: i for i, point in enumerate(cache.ids)}
    searchable = [i for i, payload in enumerate(cache.payloads) if payload.get("safe", True)]
    ideas = json.loads(args.ideas.read_text(encoding="utf-8"))["ideas"]
    retriever = Retriever(OnnxMiniLMEmbedder(), Bm25SparseEncoder(), EdgePromptIndex(index_dir))
    retriever.search("warm up the model and the index")
    per_idea: list[dict[str, Any]] = []
    for item in ideas:
        rule = Rule(item["all_of"])
        relevant = sum(1 for i in searchable if rule(cache.prompts[i]))
        entry: dict[str, Any] = {"idea": item["idea"], "relevant": relevant, "methods": {}}
        for method in METHODS:
            started = time.perf_counter()
            hits = retriever.search(
                item["idea"], K, mode=method.mode, diversify=method.diversify, ranking=method.ranking
            )
            ms = (time.perf_counter() - started) * 1000
            texts = [hit.prompt for hit in hits]
            vectors = [cache.vectors[row_of[hit.id]] if hit.id in row_of else None for hit in hits]
            good = sum(1 for text in texts if rule(text))
            pairs = list(itertools.combinations(range(len(hits)), 2))
            dup = {(a, b) for a, b in pairs if near_copies(texts[a], texts[b], vectors[a], vectors[b])}
            distinct = sum(1 for b in range(len(hits)) if not any((a, b) in dup for a in range(b)))
            known = [v for v in vectors if v is not None]
            max_cos = max((float(np.dot(x, y)) for x, y in itertools.combinations(known, 2)), default=0.0)
            entry["methods"][method.name] = {
                "hits": len(hits),
                "relevant_in_top": good,
                "recall": good / min(K, relevant) if relevant else None,
                "dup_rate": len(dup) / len(pairs) if pairs else 0.0,
                "distinct": distinct,
                "max_cos": max_cos,
                "ms": ms,
                "top": texts,
            }
        per_idea.append(entry)
        logger.info(
            "%s: %s",
            item["idea"],
            ", ".join(f"{m.name} {entry['methods'][m.name]['relevant_in_top']}/{K}" for m in METHODS),
        )
    retriever.close()
    averages: dict[str, dict[str, float]] = {}
    for method in METHODS:
        rows = [e["methods"][method.name] for e in per_idea]
        recalls = [r["recall"] for r in rows if r["recall"] is not None]
        averages[method.name] = {
            "recall": float(np.mean(recalls)) if recalls else float("nan"),
            "precision": float(np.mean([r["relevant_in_top"] / K for r in rows])),
            "dup_rate": float(np.mean([r["dup_rate"] for r in rows])),
            "distinct": float(np.mean([r["distinct"] for r in rows])),
            "max_cos": float(np.mean([r["max_cos"] for r in rows])),
            "ms": float(np.mean([r["ms"] for r in rows])),
        }
    return {
        "index_dir": str(index_dir),
        "built_from_cache": built,
        "library_size": len(cache),
        "searchable": len(searchable),
        "ideas": per_idea,
        "averages": averages,
        "machine": machine_info(),
    }


def render(r: dict[str, Any]) -> str:
    """The markdown report."""
    names = [m.name for m in METHODS]
    lines = [report_header("Retrieval quality on the labelled ideas", r["machine"])]
    rebuilt = " rebuilt from the cache" if r["built_from_cache"] else ""
    lines.append(
        f"Index: the Edge index of the whole library ({r['library_size']:,} prompts, {r['searchable']:,} "
        f"searchable with the product's safe filter){rebuilt}. {len(r['ideas'])} ideas from "
        f"`bench/labelled_ideas.json`, searched with `Retriever.search(idea, k={K}, "
        "mode=..., diversify=...)`. A prompt is relevant when every group of the idea's rule has a matching "
        "regex (case-insensitive, `\\b(?:a|b)\\b`); #relevant counts them over the searchable library.\n\n"
        f"* **capped recall@{K}** = relevant in the top {K} / min({K}, #relevant) (BEIR style).\n"
        f"* **near-dup rate** = fraction of the {K * (K - 1) // 2} pairs of the top {K} that are "
        f"near-copies: cosine ≥ {NEAR_COPY_COSINE} between their MiniLM vectors, or the same words after "
        "dropping one word (one word more, or one word replaced).\n"
        f"* **distinct** = results that are not a near-copy of a higher-ranked result (out of {K}).\n"
        f"* **max pairwise cosine** = the highest MiniLM cosine between two of the top {K}, averaged over "
        "ideas (how close the closest pair is).\n"
        "* **ms / search** = wall time of `Retriever.search`; dense runs first for each idea and pays "
        "for embedding the query, the later methods may reuse the Retriever's cached query vector.\n"
        "* **Caveat: the rules are lexical (regexes over the prompt text), which favours BM25**; a dense hit "
        "that says the same thing in other words counts as not relevant.\n"
    )
    lines.append("\nAverages over the ideas:\n")
    lines.append(
        markdown_table(
            [
                "method",
                f"capped recall@{K}",
                f"precision@{K}",
                "near-dup rate",
                f"distinct (of {K})",
                f"max pairwise cosine in top {K}",
                "ms / search",
            ],
            [
                [
                    name,
                    f"{a['recall']:.3f}",
                    f"{a['precision']:.3f}",
                    f"{a['dup_rate']:.3f}",
                    f"{a['distinct']:.2f}",
                    f"{a['max_cos']:.3f}",
                    f"{a['ms']:.1f}",
                ]
                for name, a in r["averages"].items()
            ],
        )
    )
    lines.append(f"\nPer idea: capped recall@{K} (near-dup rate) for each method.\n")
    rows: list[list[object]] = []
    for e in r["ideas"]:
        cells: list[object] = [e["idea"], e["relevant"]]
        for name in names:
            m = e["methods"][name]
            recall = "–" if m["recall"] is None else f"{m['recall']:.2f}"
            cells.append(f"{recall} ({m['dup_rate']:.1f})")
        rows.append(cells)
    lines.append(markdown_table(["idea", "#relevant", *names], rows))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report."""
    return run_report(argv, parse_args, run, render)


if __name__ == "__main__":
    raise SystemExit(main())
