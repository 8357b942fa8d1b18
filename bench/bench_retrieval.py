"""Benchmark retrieval on the Slack-style ideas of bench/data/retrieval_ideas.json, one row per lever.

Over the whole-library Edge index in safe mode, every method (a search mode plus a `Ranking`, see
`retrieval.search`) searches every idea of the chosen halves for k=5 and is scored on:

* precision@5: relevant hits / 5, where a hit is relevant when every concept group of the idea matches
  (bench_quality's `Rule`: case-insensitive, word-bounded regexes);
* craft share: hits that are crafted by `retrieval.craft.assess_craft` (the definition ranking uses);
* near-duplicate pairs: share of the 10 pairs of the top 5 that are near-copies (bench_quality's
  `near_copies`: MiniLM cosine ≥ 0.95, or the same words but one);
* unsafe hits: hits whose payload is not safe (must stay 0: every idea is benign);
* latency per search: p50/p95 with the query embedding (first call) and without it (the same call again,
  the query vector cached), so the second is index + re-rank time.

`--split tuning` is what levers and weights are chosen on; the held-out half is run only to report.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bench_quality import Method, Rule, near_copies
from common import (
    FloatArray,
    add_common_args,
    library_index_dir,
    machine_info,
    markdown_table,
    percentile,
    report_header,
    run_report,
)

from retrieval.craft import assess_craft
from retrieval.index_ports import SearchMode
from retrieval.search import DEFAULT_RANKING, DENSE_RANKING, PLAIN, Ranking

logger = logging.getLogger("bench_retrieval")
K = 5
SPLITS = ("tuning", "heldout")
IDEAS = Path(__file__).resolve().parent / "data" / "retrieval_ideas.json"


_CRAFT = Ranking(pool=DEFAULT_RANKING.pool, craft_weight=DEFAULT_RANKING.craft_weight)
_COVER = Ranking(pool=DEFAULT_RANKING.pool, coverage_weight=DEFAULT_RANKING.coverage_weight)
_BOTH = Ranking(DEFAULT_RANKING.pool, DEFAULT_RANKING.craft_weight, DEFAULT_RANKING.coverage_weight)
DEFAULT_NAME = "hybrid + expansion + coverage + craft (default)"
DENSE_NAME = "dense + expansion + coverage + craft"
OLD_DEFAULT_NAME = "hybrid RRF + MMR (old default)"
METHODS = (
    Method("dense", SearchMode.DENSE, False, PLAIN),
    Method("BM25", SearchMode.SPARSE, False, PLAIN),
    Method("hybrid RRF", SearchMode.HYBRID, False, PLAIN),
    Method(OLD_DEFAULT_NAME, SearchMode.HYBRID, True, PLAIN),
    Method("hybrid + craft boost", SearchMode.HYBRID, False, _CRAFT),
    Method("hybrid + coverage", SearchMode.HYBRID, False, _COVER),
    Method("hybrid + coverage + craft", SearchMode.HYBRID, False, _BOTH),
    Method(DEFAULT_NAME, SearchMode.HYBRID, False, DEFAULT_RANKING),
    Method(DENSE_NAME, SearchMode.DENSE, False, DENSE_RANKING),
    Method("default + MMR", SearchMode.HYBRID, True, DEFAULT_RANKING),
)


@dataclass
class Library:
    """The searchable (safe) prompts of the index and every stored vector by id."""

    safe_prompts: list[str]
    vectors: dict[str, FloatArray]
    size: int


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_common_args(parser)
    parser.add_argument("--ideas", type=Path, default=IDEAS, help="evaluation ideas")
    parser.add_argument("--index-dir", type=Path, default=None, help="Edge index (default: bench_ingest's)")
    parser.add_argument("--split", choices=[*SPLITS, "both"], default="both", help="which half to run")
    parser.add_argument("--methods", default=None, help="comma-separated method names (default: all)")
    return parser.parse_args(argv)


def load_library(index: Any) -> Library:
    """Scroll the index once: safe prompt texts (for #relevant) and dense vectors (for near-copies)."""
    prompts: list[str] = []
    vectors: dict[str, FloatArray] = {}
    size = 0
    for point in index.iter_points(1024):
        size += 1
        vectors[point.id] = np.asarray(point.dense, dtype=np.float32)
        if point.payload.get("safe", True):
            prompts.append(str(point.payload.get("prompt", "")))
    return Library(prompts, vectors, size)


def score_hits(rule: Rule, hits: Sequence[Any], library: Library) -> dict[str, Any]:
    """Precision, craft, near-duplicate pairs and unsafe count of one top k."""
    texts = [hit.prompt for hit in hits]
    vectors = [library.vectors.get(hit.id) for hit in hits]
    pairs = list(itertools.combinations(range(len(hits)), 2))
    dups = sum(1 for a, b in pairs if near_copies(texts[a], texts[b], vectors[a], vectors[b]))
    return {
        "relevant_in_top": sum(1 for text in texts if rule(text)),
        "crafted": sum(1 for text in texts if assess_craft(text).crafted),
        "dup_pairs": dups,
        "pairs": len(pairs),
        "unsafe": sum(1 for hit in hits if hit.payload.get("safe") is not True),
        "top": texts,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Search every idea of the chosen halves with every chosen method and score the top 5."""
    from retrieval.adapters.bm25 import Bm25SparseEncoder
    from retrieval.adapters.edge_index import EdgePromptIndex
    from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
    from retrieval.search import Retriever

    index_dir: Path = args.index_dir or library_index_dir(args.out_dir)
    splits = SPLITS if args.split == "both" else (args.split,)
    ideas = [i for i in json.loads(args.ideas.read_text(encoding="utf-8"))["ideas"] if i["split"] in splits]
    wanted = {m.strip() for m in args.methods.split(",")} if args.methods else None
    methods = [m for m in METHODS if wanted is None or m.name in wanted]
    embedder, sparse, index = OnnxMiniLMEmbedder(), Bm25SparseEncoder(), EdgePromptIndex(index_dir)
    Retriever(embedder, sparse, index).open()
    library = load_library(index)
    rules = {item["idea"]: Rule(list(item["concepts"].values())) for item in ideas}
    relevant = {idea: sum(1 for p in library.safe_prompts if rule(p)) for idea, rule in rules.items()}
    logger.info(
        "library: %d points, %d searchable; %d ideas", library.size, len(library.safe_prompts), len(ideas)
    )
    rows: dict[str, dict[str, Any]] = {}
    for method in methods:
        retriever = Retriever(embedder, sparse, index)  # a fresh query-vector cache per method
        retriever.search("warm up the model and the index", mode=method.mode, ranking=method.ranking)
        per_idea: dict[str, Any] = {}
        for item in ideas:
            call = {"mode": method.mode, "diversify": method.diversify, "ranking": method.ranking}
            started = time.perf_counter()
            retriever.search(item["idea"], K, **call)
            cold_ms = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            hits = retriever.search(item["idea"], K, **call)
            warm_ms = (time.perf_counter() - started) * 1000
            per_idea[item["idea"]] = {
                **score_hits(rules[item["idea"]], hits, library),
                "ms": cold_ms,
                "ms_cached_vector": warm_ms,
            }
        rows[method.name] = per_idea
        logger.info(
            "%s: %s", method.name, summarize(ideas, per_idea, "tuning" if "tuning" in splits else "heldout")
        )
    return {
        "index_dir": str(index_dir),
        "library_size": library.size,
        "searchable": len(library.safe_prompts),
        "ideas": ideas,
        "relevant": relevant,
        "methods": {m.name: describe(m) for m in methods},
        "rows": rows,
        "summary": {
            name: {split: summarize(ideas, per_idea, split) for split in splits}
            for name, per_idea in rows.items()
        },
        "by_kind": {
            name: {
                split: {
                    kind: summarize([i for i in ideas if i["kind"] == kind], per_idea, split)
                    for kind in sorted({i["kind"] for i in ideas})
                }
                for split in splits
            }
            for name, per_idea in rows.items()
        },
        "machine": machine_info(),
    }


def describe(method: Method) -> str:
    """A method's settings in words, for the table."""
    r = method.ranking
    parts = [f"mode={method.mode.value}"]
    if r.pool:
        parts.append(f"pool={r.pool}")
    if r.craft_weight:
        parts.append(f"craft_weight={r.craft_weight}")
    if r.coverage_weight:
        parts.append(f"coverage_weight={r.coverage_weight}")
    if r.expand:
        parts.append("expand")
    if method.diversify:
        parts.append("MMR")
    return ", ".join(parts)


def summarize(ideas: list[dict[str, Any]], per_idea: dict[str, Any], split: str) -> dict[str, float]:
    """Averages over one half's ideas."""
    chosen = [per_idea[i["idea"]] for i in ideas if i["split"] == split and i["idea"] in per_idea]
    if not chosen:
        return {}
    ms = [r["ms"] for r in chosen]
    warm = [r["ms_cached_vector"] for r in chosen]
    return {
        "ideas": float(len(chosen)),
        "precision": float(np.mean([r["relevant_in_top"] / K for r in chosen])),
        "craft": float(np.mean([r["crafted"] / K for r in chosen])),
        "dup_pairs": float(sum(r["dup_pairs"] for r in chosen) / max(1, sum(r["pairs"] for r in chosen))),
        "unsafe": float(sum(r["unsafe"] for r in chosen)),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p50_ms_cached": percentile(warm, 50),
        "p95_ms_cached": percentile(warm, 95),
    }


def render(r: dict[str, Any]) -> str:
    """The markdown report: the ablation table on both halves, then per kind."""
    lines = [report_header("Retrieval quality: Slack-style ideas, one row per lever", r["machine"])]
    splits = [s for s in SPLITS if any(s in v for v in r["summary"].values())]
    counts = {s: sum(1 for i in r["ideas"] if i["split"] == s) for s in splits}
    low = sorted((n, idea) for idea, n in r["relevant"].items() if n < K)
    lines.append(
        f"Index: the whole-library Edge index ({r['library_size']:,} prompts, {r['searchable']:,} searchable "
        f"in safe mode). Ideas: `bench/data/retrieval_ideas.json`, "
        + ", ".join(f"{counts[s]} {s}" for s in splits)
        + f"; each searched with `Retriever.search(idea, k={K}, mode=..., ranking=..., diversify=...)`. "
        "Levers and weights were chosen on the tuning half only; the held-out half is reported, "
        "not tuned on.\n\n"
        f"* **P@{K}** = relevant hits / {K} (every concept group of the idea matches; see "
        "bench/data/README.md).\n"
        "* **craft** = share of hits that are crafted (`retrieval.craft.assess_craft`: three or more "
        "medium/style/artist/lighting/camera/color/quality phrases beyond the subject, not broken text).\n"
        "* **dup pairs** = near-copy pairs / all pairs of the top 5 (bench_quality's `near_copies`).\n"
        "* **unsafe** = hits not marked safe (all ideas are benign; must be 0).\n"
        "* **ms** = wall time of one search including the query embedding; **ms cached** = the same search "
        "again with the query vector cached (index + re-rank only).\n"
        f"* Ideas the library cannot fully answer (fewer than {K} relevant searchable prompts): "
        + ("; ".join(f'"{idea}" ({n})' for n, idea in low) if low else "none")
        + ".\n"
    )
    lines.append(_reading(r))
    for split in splits:
        lines.append(f"\n### {split} half ({counts[split]} ideas)\n")
        table: list[list[object]] = []
        for name, by_split in r["summary"].items():
            a = by_split.get(split)
            if not a:
                continue
            table.append(
                [
                    name,
                    r["methods"][name],
                    f"{a['precision']:.3f}",
                    f"{a['craft']:.3f}",
                    f"{100 * a['dup_pairs']:.1f} %",
                    int(a["unsafe"]),
                    f"{a['p50_ms']:.1f} / {a['p95_ms']:.1f}",
                    f"{a['p50_ms_cached']:.1f} / {a['p95_ms_cached']:.1f}",
                ]
            )
        lines.append(
            markdown_table(
                [
                    "method",
                    "settings",
                    f"P@{K}",
                    "craft",
                    "dup pairs",
                    "unsafe",
                    "ms p50 / p95",
                    "ms cached p50 / p95",
                ],
                table,
            )
        )
    for split in splits:
        kinds = sorted({i["kind"] for i in r["ideas"]})
        lines.append(f"\nP@{K} / craft by kind of idea, {split} half:\n")
        rows = [
            [name, *(_pc(r["by_kind"][name][split].get(kind)) for kind in kinds)] for name in r["by_kind"]
        ]
        lines.append(markdown_table(["method", *kinds], rows))
    return "\n".join(lines)


def _reading(r: dict[str, Any]) -> str:
    """How the default was chosen, and what the tuning half says of the alternatives (from the numbers)."""
    tuning = {name: by_split.get("tuning") for name, by_split in r["summary"].items()}
    default = next(m for m in METHODS if m.name == DEFAULT_NAME)
    text = (
        f"\nDefault (`retrieval.search.DEFAULT_MODE` and `DEFAULT_RANKING`): {describe(default)}. "
        "Chosen on the tuning half with `bench/tune_retrieval.py --mode hybrid` (a grid over craft and "
        "coverage weights on the RRF scale, with and without expansion) among the settings that bring no "
        "held-out I2P prompt into tests/test_safety_retrieval.py's benign searches: the highest craft share "
        "with P@5 within 0.025 of the best such setting, away from the settings that leaked."
    )
    dense, mixed, mmr = tuning.get(DENSE_NAME), tuning.get(DEFAULT_NAME), tuning.get(OLD_DEFAULT_NAME)
    if dense and mixed and mmr:
        text += (
            " The same levers over dense search (`DENSE_RANKING`) reach P@5 "
            f"{dense['precision']:.3f} and craft {dense['craft']:.3f} on the tuning half against "
            f"{mixed['precision']:.3f} and {mixed['craft']:.3f}, but dense search brings held-out I2P "
            "prompts (prompts known to yield unsafe images that the screens miss) into benign results, "
            "which BM25's vote in hybrid search keeps out, so it is not the default. MMR (langchain_core) "
            "takes the old "
            f"hybrid default to P@5 {mmr['precision']:.3f} with no near-duplicate pairs to remove, so it is "
            "off by default."
        )
    return text + "\n"


def _pc(a: dict[str, float] | None) -> str:
    return f"{a['precision']:.2f} / {a['craft']:.2f}" if a else "–"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report."""
    return run_report(argv, parse_args, run, render)


if __name__ == "__main__":
    raise SystemExit(main())
