"""Choose the re-rank weights of `retrieval.search.Ranking` on the TUNING half of the retrieval ideas only.

For each tuning idea (with and without alias expansion) the first stage's candidates are fetched once
from the whole-library Edge index in safe mode (their payloads carry the craft prior); every
(craft_weight, coverage_weight, craft_gate) of the grid then re-ranks them exactly as `Retriever.search`
does (score = relevance + craft_weight × craft [only within craft_gate of the pool's best coverage] +
coverage_weight × coverage), and the grid is printed with precision@5, craft share and near-duplicate
pairs, then the highest precision@5 among the settings whose craft share reaches `--craft-goal`. The
default is chosen from this grid among the settings that also keep tests/retrieval/test_safety_retrieval.py
green (no held-out I2P prompt in its benign searches), which this script cannot run.

`--mode union` (the default's first stage): dense and BM25 top `--prefetch` each and both again among
crafted prompts, scored by cosine; `--mode dense`: the dense top `--pool`; `--mode hybrid`: hybrid RRF's
top `--pool`, with weights on its score scale. The held-out half is never read.
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
from retrieval.craft import CRAFTED_MIN_PRIOR, stored_prior
from retrieval.index_ports import HybridFusion, IndexHit, IndexQuery, SearchMode

logger = logging.getLogger("tune_retrieval")
CRAFT_WEIGHTS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
COVERAGE_WEIGHTS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
GATES = (None, 0.0, 0.2, 0.3)  # craft counts only within this much of the pool's best coverage (None: always)
# hybrid RRF scores are about 1/20 of the cosine scale (see retrieval.search.DEFAULT_RANKING)
HYBRID_CRAFT_WEIGHTS = (0.0, 0.004, 0.005, 0.006, 0.007, 0.008, 0.01, 0.012)
HYBRID_COVERAGE_WEIGHTS = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.07)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_common_args(parser)
    parser.add_argument("--ideas", type=Path, default=IDEAS, help="evaluation ideas (tuning half is used)")
    parser.add_argument("--index-dir", type=Path, default=None, help="Edge index (default: bench_ingest's)")
    parser.add_argument("--pool", type=int, default=100, help="candidates re-ranked (dense, hybrid)")
    parser.add_argument("--prefetch", type=int, default=50, help="candidates per prefetch (union)")
    parser.add_argument(
        "--mode", choices=["union", "dense", "hybrid"], default="union", help="how the pools are fetched"
    )
    parser.add_argument("--craft-goal", type=float, default=0.80, help="craft share the choice must reach")
    parser.add_argument(
        "--concepts-only",
        action="store_true",
        help="coverage without the idea's size, filler and framing words (Ranking.concepts_only)",
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
        sparse_query = sparse.encode_query(text) if args.mode != SearchMode.DENSE.value else None
        if args.mode == "union":
            query = IndexQuery(
                dense,
                sparse_query,
                SearchMode.HYBRID,
                limit=4 * args.prefetch,
                prefetch=args.prefetch,
                crafted_min=CRAFTED_MIN_PRIOR,
                fusion=HybridFusion.DENSE,
            )
        else:
            query = IndexQuery(dense, sparse_query, SearchMode(args.mode), limit=args.pool)
        index_hits = index.query(query)
        crafts = np.asarray([stored_prior(h.payload) or 0.0 for h in index_hits])
        texts = [str(h.payload.get("prompt", "")) for h in index_hits]
        coverage = np.asarray(scorer.score(item["idea"], texts, args.concepts_only).scores)
        pools[(item["idea"], expand)] = (index_hits, crafts, coverage)
    rows: list[list[object]] = []
    hybrid = args.mode == SearchMode.HYBRID.value
    weights = (HYBRID_CRAFT_WEIGHTS, HYBRID_COVERAGE_WEIGHTS) if hybrid else (CRAFT_WEIGHTS, COVERAGE_WEIGHTS)
    gates = (None,) if hybrid else GATES
    grid = [(e, c, v, g, False) for e, c, v, g in itertools.product((False, True), *weights, gates)]
    grid += [(e, 0.0, 0.0, None, True) for e in (False, True)]  # coverage first, then craft, then relevance
    for expand, craft_w, cover_w, gate, lexicographic in grid:
        scores: list[dict[str, Any]] = []
        for item in ideas:
            hits, crafts, coverage = pools[(item["idea"], expand)]
            relevance = np.asarray([h.score for h in hits])
            best = coverage.max(initial=0.0)
            boosted = np.ones(len(hits)) if gate is None else coverage >= best - gate - 1e-9
            final = relevance + craft_w * crafts * boosted + cover_w * coverage
            if lexicographic:
                key = [(-coverage[i], -crafts[i], -relevance[i], hits[i].id) for i in range(len(hits))]
            else:
                key = [(-final[i], 0.0, 0.0, hits[i].id) for i in range(len(hits))]
            order = sorted(range(len(hits)), key=lambda i: key[i])[:K]
            rule = Rule(list(item["concepts"].values()))
            scores.append(score_hits(rule, [_Hit(hits[i]) for i in order], library))
        precision = float(np.mean([s["relevant_in_top"] / K for s in scores]))
        craft = float(np.mean([s["crafted"] / K for s in scores]))
        dups = sum(s["dup_pairs"] for s in scores) / max(1, sum(s["pairs"] for s in scores))
        shares = [f"{precision:.3f}", f"{craft:.3f}", f"{100 * dups:.1f} %"]
        shown = ["coverage first", "(lexicographic)"] if lexicographic else [f"{craft_w:g}", f"{cover_w:g}"]
        rows.append([expand, *shown, "–" if gate is None else f"{gate:g}", *shares])
    retriever.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the grid on the tuning half."""
    args = parse_args(argv)
    setup_logging(args.verbose)
    rows = run(args)
    sys.stdout.write(
        markdown_table(
            ["expand", "craft_weight", "coverage_weight", "craft_gate", f"P@{K}", "craft", "dup pairs"], rows
        )
    )
    reaching = [r for r in rows if float(str(r[5])) >= args.craft_goal]
    if reaching:
        best = max(reaching, key=lambda r: (float(str(r[4])), float(str(r[5]))))
        sys.stdout.write(f"\nhighest P@{K} with craft >= {args.craft_goal}: {best}\n")
    else:
        sys.stdout.write(f"\nno setting reaches craft {args.craft_goal}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
