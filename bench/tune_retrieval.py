"""Choose the re-rank weights of `retrieval.search.Ranking` on the TUNING half of the retrieval ideas only.

For each tuning idea (with and without alias expansion) the dense top `--pool` candidates are fetched
once from the whole-library Edge index in safe mode (plain cosine order, their payloads carry the craft
prior); every (craft_weight, coverage_weight) of the grid then re-ranks them exactly as
`Retriever.search` does (score = cosine + craft_weight × craft + coverage_weight × coverage), and the
grid is printed with precision@5, craft share and near-duplicate pairs. `--mode hybrid` fetches the
pools by hybrid RRF instead, with weights on its score scale. The held-out half is never read.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
from bench_quality import Rule
from bench_retrieval import IDEAS, K, load_library, score_hits
from common import add_common_args, library_index_dir, markdown_table, setup_logging

from retrieval.aliases import expanded_query
from retrieval.craft import stored_prior
from retrieval.index_ports import IndexHit, IndexQuery, SearchMode

logger = logging.getLogger("tune_retrieval")
CRAFT_WEIGHTS = (0.0, 0.05, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25)
COVERAGE_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8)
# hybrid RRF scores are about 1/20 of the cosine scale (see retrieval.search.DEFAULT_RANKING)
HYBRID_CRAFT_WEIGHTS = (0.0, 0.004, 0.005, 0.006, 0.007, 0.008, 0.01, 0.012)
HYBRID_COVERAGE_WEIGHTS = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.07)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_common_args(parser)
    parser.add_argument("--ideas", type=Path, default=IDEAS, help="evaluation ideas (tuning half is used)")
    parser.add_argument("--index-dir", type=Path, default=None, help="Edge index (default: bench_ingest's)")
    parser.add_argument("--pool", type=int, default=100, help="candidates re-ranked")
    parser.add_argument(
        "--mode", choices=["dense", "hybrid"], default="hybrid", help="how the pools are fetched"
    )
    return parser.parse_args(argv)


class _Hit:
    """The fields score_hits reads."""

    def __init__(self, hit: IndexHit) -> None:
        self.id, self.payload = hit.id, hit.payload
        self.prompt = str(hit.payload.get("prompt", ""))


def run(args: argparse.Namespace) -> list[list[object]]:
    """Fetch the pools once, then score every grid point; returns the table rows."""
    from retrieval.adapters.bm25 import Bm25SparseEncoder
    from retrieval.adapters.edge_index import EdgePromptIndex
    from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
    from retrieval.coverage import CoverageScorer
    from retrieval.search import Retriever

    ideas = [i for i in json.loads(args.ideas.read_text(encoding="utf-8"))["ideas"] if i["split"] == "tuning"]
    index = EdgePromptIndex(args.index_dir or library_index_dir(args.out_dir))
    sparse = Bm25SparseEncoder()
    retriever = Retriever(OnnxMiniLMEmbedder(), sparse, index)
    retriever.open()
    library = load_library(index)
    scorer = CoverageScorer(sparse)
    pools: dict[tuple[str, bool], tuple[list[IndexHit], np.ndarray, np.ndarray]] = {}
    for item, expand in itertools.product(ideas, (False, True)):
        text = expanded_query(item["idea"]) if expand else item["idea"]
        dense = retriever.embed_query(text)
        sparse_query = sparse.encode_query(text) if args.mode == SearchMode.HYBRID.value else None
        mode = SearchMode(args.mode)
        index_hits = index.query(IndexQuery(dense, sparse_query, mode, limit=args.pool))
        crafts = np.asarray([stored_prior(h.payload) or 0.0 for h in index_hits])
        texts = [str(h.payload.get("prompt", "")) for h in index_hits]
        coverage = np.asarray(scorer.score(item["idea"], texts).scores)
        pools[(item["idea"], expand)] = (index_hits, crafts, coverage)
    rows: list[list[object]] = []
    hybrid = args.mode == SearchMode.HYBRID.value
    weights = (HYBRID_CRAFT_WEIGHTS, HYBRID_COVERAGE_WEIGHTS) if hybrid else (CRAFT_WEIGHTS, COVERAGE_WEIGHTS)
    for expand, craft_w, cover_w in itertools.product((False, True), *weights):
        scores: list[dict[str, Any]] = []
        for item in ideas:
            hits, crafts, coverage = pools[(item["idea"], expand)]
            relevance = np.asarray([h.score for h in hits])
            final = relevance + craft_w * crafts + cover_w * coverage
            order = sorted(range(len(hits)), key=lambda i: (-final[i], hits[i].id))[:K]
            rule = Rule(list(item["concepts"].values()))
            scores.append(score_hits(rule, [_Hit(hits[i]) for i in order], library))
        precision = float(np.mean([s["relevant_in_top"] / K for s in scores]))
        craft = float(np.mean([s["crafted"] / K for s in scores]))
        dups = sum(s["dup_pairs"] for s in scores) / max(1, sum(s["pairs"] for s in scores))
        shares = [f"{precision:.3f}", f"{craft:.3f}", f"{100 * dups:.1f} %"]
        rows.append([expand, f"{craft_w:g}", f"{cover_w:g}", *shares])
    retriever.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the grid on the tuning half."""
    args = parse_args(argv)
    setup_logging(args.verbose)
    rows = run(args)
    sys.stdout.write(
        markdown_table(["expand", "craft_weight", "coverage_weight", f"P@{K}", "craft", "dup pairs"], rows)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
