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

Before the rows, the recall ceiling of each first stage (`POOLS`): the precision@5 a perfect re-rank of
its candidates would reach (relevant candidates, capped at 5), and the same counting only relevant AND
crafted candidates, which is what both goals at once need.

`--split tuning` is what levers and weights are chosen on; the held-out half is run only to report.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
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

from retrieval.aliases import expanded_query
from retrieval.concept_plan import ConceptPlan
from retrieval.craft import CRAFTED_MIN_PRIOR, assess_craft
from retrieval.index_ports import HybridFusion, IndexQuery, SearchMode
from retrieval.search import CRAFT_GOAL_RANKING, DEFAULT_RANKING, PLAIN, PLANNED_RANKING, RRF_RANKING, Ranking

logger = logging.getLogger("bench_retrieval")
K = 5
GOAL = 0.80  # issue 11: precision@5 and craft share on the held-out half
SPLITS = ("tuning", "heldout")
IDEAS = Path(__file__).resolve().parent / "data" / "retrieval_ideas.json"


_UNION = Ranking(pool=100, expand=True, prefetch=50, fusion=HybridFusion.DENSE)
_CRAFTED = replace(_UNION, pool=200, crafted_prefetch=True)
_D = DEFAULT_RANKING
DEFAULT_NAME = "union + crafted prefetch + coverage + craft (default)"
ROUND1_NAME = "hybrid RRF + expansion + coverage + craft (round 1 default)"
CRAFT_GOAL_NAME = "default with the craft-goal weights"
UNGATED_NAME = "default without the craft gate"
STOPLIST_NAME = "default + concept stoplist (size, filler and framing words are not concepts)"
STOPLIST_TUNED_NAME = "default + concept stoplist, re-tuned (craft 0.4, coverage 0.8, no expansion)"
# the stoplist's own choice on the tuning half (tune_retrieval.py --concepts-only, round 1's rule among the
# settings that pass the safety test); not the default: see retrieval.search.Ranking
STOPLIST_TUNED = replace(
    DEFAULT_RANKING, craft_weight=0.4, coverage_weight=0.8, expand=False, concepts_only=True
)
LIBRARY_CEILING = "the whole searchable library (every prompt a candidate)"
PLANNED_NAME = "default first stage, evaluation's groups as the concept plan (planner ceiling)"
PLANNED_BLEND_NAME = "the same with the default's weights (planner ceiling)"
PLANNED_BARE_NAME = "the same without the plan's phrases in the keyword query (planner ceiling)"
METHODS = (
    Method("dense", SearchMode.DENSE, False, PLAIN),
    Method("BM25", SearchMode.SPARSE, False, PLAIN),
    Method("hybrid RRF", SearchMode.HYBRID, False, PLAIN),
    Method(ROUND1_NAME, SearchMode.HYBRID, False, RRF_RANKING),
    Method("union dense ∪ BM25, by cosine", SearchMode.HYBRID, False, _UNION),
    Method("union + crafted prefetch", SearchMode.HYBRID, False, _CRAFTED),
    Method(
        "union + crafted + craft boost",
        SearchMode.HYBRID,
        False,
        replace(_CRAFTED, craft_weight=_D.craft_weight),
    ),
    Method(
        "union + crafted + coverage",
        SearchMode.HYBRID,
        False,
        replace(_CRAFTED, coverage_weight=_D.coverage_weight),
    ),
    Method(
        "union + coverage + craft (no crafted prefetch)",
        SearchMode.HYBRID,
        False,
        replace(_D, pool=100, crafted_prefetch=False),
    ),
    Method(
        "union + crafted: coverage first (lexicographic)",
        SearchMode.HYBRID,
        False,
        replace(_D, coverage_first=True),
    ),
    Method(DEFAULT_NAME, SearchMode.HYBRID, False, _D),
    Method(UNGATED_NAME, SearchMode.HYBRID, False, replace(_D, craft_gate=None)),
    Method("default with prefetch 100", SearchMode.HYBRID, False, replace(_D, pool=400, prefetch=100)),
    Method("default without expansion", SearchMode.HYBRID, False, replace(_D, expand=False)),
    Method(CRAFT_GOAL_NAME, SearchMode.HYBRID, False, CRAFT_GOAL_RANKING),
    Method(STOPLIST_NAME, SearchMode.HYBRID, False, replace(_D, concepts_only=True)),
    Method(STOPLIST_TUNED_NAME, SearchMode.HYBRID, False, STOPLIST_TUNED),
    Method("default + MMR", SearchMode.HYBRID, True, _D),
    Method(PLANNED_NAME, SearchMode.HYBRID, False, PLANNED_RANKING, planned=True),
    Method(PLANNED_BLEND_NAME, SearchMode.HYBRID, False, _D, planned=True),
    Method(PLANNED_BARE_NAME, SearchMode.HYBRID, False, PLANNED_RANKING, planned=True, plan_keywords=False),
)


@dataclass(frozen=True)
class Pool:
    """A first stage whose recall ceiling is measured: mode, query expansion and the index query's size."""

    name: str
    mode: SearchMode
    expand: bool
    limit: int
    prefetch: int | None = None
    crafted: bool = False
    fusion: HybridFusion = HybridFusion.RRF


POOLS = (
    Pool("dense top 50", SearchMode.DENSE, False, 50),
    Pool("dense top 100, expanded", SearchMode.DENSE, True, 100),
    Pool("dense top 200, expanded", SearchMode.DENSE, True, 200),
    Pool("BM25 top 100, expanded", SearchMode.SPARSE, True, 100),
    Pool("hybrid RRF top 100, expanded (round 1 default)", SearchMode.HYBRID, True, 100),
    Pool(
        "union dense ∪ BM25, 50 each, expanded", SearchMode.HYBRID, True, 100, 50, fusion=HybridFusion.DENSE
    ),
    Pool(
        "union dense ∪ BM25, 150 each, expanded", SearchMode.HYBRID, True, 300, 150, fusion=HybridFusion.DENSE
    ),
    Pool(
        "union + crafted prefetch, 50 each (default)",
        SearchMode.HYBRID,
        True,
        200,
        50,
        True,
        HybridFusion.DENSE,
    ),
    Pool("union + crafted prefetch, 100 each", SearchMode.HYBRID, True, 400, 100, True, HybridFusion.DENSE),
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
    parser.add_argument(
        "--no-ceiling", action="store_true", help="skip the recall ceilings of the first stages"
    )
    parser.add_argument(
        "--planner",
        default=None,
        metavar="bedrock:MODEL_ID",
        help="also run the default search with Claude as its concept planner (needs Bedrock: AWS "
        "credentials, IMAGINE_AWS_REGION, optionally IMAGINE_BEDROCK_ENDPOINT_URL)",
    )
    return parser.parse_args(argv)


def evaluation_plan(groups: dict[str, list[str]], keywords: bool) -> ConceptPlan:
    """An idea's evaluation groups as a concept plan (the planner ceiling), with readable phrases for the
    keyword query when `keywords` ('pupp(?:y|ies)' → 'puppy', 'cel[- ]shaded' → 'cel shaded')."""
    phrases = {name: [readable(p) for p in patterns] for name, patterns in groups.items()}
    return ConceptPlan.from_patterns(groups, "evaluation", phrases if keywords else None)


def readable(pattern: str) -> str:
    """A regex of the evaluation set as the plain phrase it mostly matches (first alternatives kept)."""
    text = _GROUP_RE.sub(r"\1", pattern)
    text = _CLASS_RE.sub(r"\1", text).replace("?", "").replace("\\", "")
    return " ".join(_NOT_WORD_RE.sub(" ", text.lower()).split())


_GROUP_RE = re.compile(r"\(\?:([^|)]*)(?:\|[^)]*)?\)\??")
_CLASS_RE = re.compile(r"\[([^\]])[^\]]*\]\??")
_NOT_WORD_RE = re.compile(r"[^a-z0-9']+")


def planner_row(value: str) -> tuple[Method, Any]:
    """The row that searches with Claude's concept plans, and its planner (`--planner bedrock:<id>`, built
    as serve builds it for IMAGINE_CONCEPT_PLANNER, with the rest of the settings from the environment)."""
    from bot.config import load_config
    from bot.wiring import build_concept_planner

    planner = build_concept_planner(load_config().model_copy(update={"concept_planner": value}))
    if planner is None:
        raise SystemExit("--planner needs bedrock:<model-id>")
    return Method(
        f"default, Claude's concept plan ({value})", SearchMode.HYBRID, False, PLANNED_RANKING
    ), planner


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
    planned_by, planner = planner_row(args.planner) if args.planner else (None, None)
    if planned_by is not None:
        methods.append(planned_by)
    embedder, sparse, index = OnnxMiniLMEmbedder(), Bm25SparseEncoder(), EdgePromptIndex(index_dir)
    Retriever(embedder, sparse, index).open()
    library = load_library(index)
    rules = {item["idea"]: Rule(list(item["concepts"].values())) for item in ideas}
    matches = {idea: [p for p in library.safe_prompts if rule(p)] for idea, rule in rules.items()}
    relevant = {idea: len(found) for idea, found in matches.items()}
    logger.info(
        "library: %d points, %d searchable; %d ideas", library.size, len(library.safe_prompts), len(ideas)
    )
    ceilings = (
        {}
        if args.no_ceiling
        else {
            LIBRARY_CEILING: library_ceiling(ideas, matches, len(library.safe_prompts)),
            **measure_ceilings(Retriever(embedder, sparse, index), index, ideas, splits, rules),
        }
    )
    rows: dict[str, dict[str, Any]] = {}
    for method in methods:
        # a fresh query-vector cache per method; the planner row plans each idea (no plan: the default)
        claude = method is planned_by
        retriever = Retriever(embedder, sparse, index, planner if claude else None)
        ranking = None if claude else method.ranking
        retriever.search("warm up the model and the index", mode=method.mode, ranking=ranking)
        per_idea: dict[str, Any] = {}
        for item in ideas:
            search = partial(
                retriever.search,
                item["idea"],
                K,
                mode=method.mode,
                diversify=method.diversify,
                ranking=ranking,
                plan=evaluation_plan(item["concepts"], method.plan_keywords) if method.planned else None,
            )
            started = time.perf_counter()
            search()
            cold_ms = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            hits = search()
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
        "ceilings": ceilings,
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


def library_ceiling(
    ideas: list[dict[str, Any]], matches: dict[str, list[str]], searchable: int
) -> dict[str, dict[str, float]]:
    """The library's own ceiling per half: every searchable prompt a candidate (no first stage passes it)."""
    per_split: dict[str, list[tuple[float, float]]] = {}
    for item in ideas:
        found = matches[item["idea"]]
        both = sum(1 for prompt in found if assess_craft(prompt).crafted)
        per_split.setdefault(item["split"], []).append((min(K, len(found)) / K, min(K, both) / K))
    return {
        split: {
            "candidates": float(searchable),
            "ceiling": float(np.mean([v[0] for v in values])),
            "ceiling_crafted": float(np.mean([v[1] for v in values])),
        }
        for split, values in per_split.items()
    }


def measure_ceilings(
    retriever: Any, index: Any, ideas: list[dict[str, Any]], splits: Sequence[str], rules: dict[str, Rule]
) -> dict[str, dict[str, dict[str, float]]]:
    """Per first stage and half: mean pool size, perfect re-rank P@5, and counting relevant+crafted only."""
    crafted: dict[str, bool] = {}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for pool in POOLS:
        per_split: dict[str, list[tuple[int, float, float]]] = {split: [] for split in splits}
        for item in ideas:
            text = expanded_query(item["idea"]) if pool.expand else item["idea"]
            dense = retriever.embed_query(text) if pool.mode is not SearchMode.SPARSE else None
            sparse = (
                retriever.sparse_encoder.encode_query(text) if pool.mode is not SearchMode.DENSE else None
            )
            query = IndexQuery(
                dense,
                sparse,
                pool.mode,
                limit=pool.limit,
                payload_fields=("prompt",),
                prefetch=pool.prefetch,
                crafted_min=CRAFTED_MIN_PRIOR if pool.crafted else None,
                fusion=pool.fusion,
            )
            texts = [str(hit.payload.get("prompt", "")) for hit in index.query(query)]
            relevant = [t for t in texts if rules[item["idea"]](t)]
            for t in relevant:
                if t not in crafted:
                    crafted[t] = assess_craft(t).crafted
            both = sum(1 for t in relevant if crafted[t])
            per_split[item["split"]].append((len(texts), min(K, len(relevant)) / K, min(K, both) / K))
        out[pool.name] = {
            split: {
                "candidates": float(np.mean([v[0] for v in values])),
                "ceiling": float(np.mean([v[1] for v in values])),
                "ceiling_crafted": float(np.mean([v[2] for v in values])),
            }
            for split, values in per_split.items()
            if values
        }
        logger.info("ceiling of %s: %s", pool.name, out[pool.name])
    return out


def describe(method: Method) -> str:
    """A method's settings in words, for the table."""
    r = method.ranking
    parts = [f"mode={method.mode.value}"]
    if r.pool:
        parts.append(f"pool={r.pool}")
    if r.prefetch:
        parts.append(f"prefetch={r.prefetch}")
    if r.crafted_prefetch:
        parts.append("crafted prefetch")
    if method.mode is SearchMode.HYBRID and r.pool:
        parts.append(f"fusion={r.fusion.value}")
    if r.craft_weight:
        parts.append(f"craft_weight={r.craft_weight}")
    if r.craft_gate is not None and r.craft_weight:
        parts.append(f"craft_gate={r.craft_gate}")
    if r.coverage_weight:
        parts.append(f"coverage_weight={r.coverage_weight}")
    if r.expand:
        parts.append("expand")
    if r.coverage_first:
        parts.append("coverage first")
    if r.concepts_only:
        parts.append("concepts only")
    if method.diversify:
        parts.append("MMR")
    if method.planned:
        parts.append("plan = the idea's evaluation groups" + (" and phrases" if method.plan_keywords else ""))
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
    if r.get("ceilings"):
        lines.append(
            "\n### Recall ceiling of each first stage\n\nWhat a perfect re-rank of the first stage's "
            f"candidates would reach: P@{K} ceiling = relevant candidates (capped at {K}) / {K}; crafted "
            "ceiling = the same counting relevant AND crafted candidates only (both goals at once). The "
            "first row is the library's own ceiling: some ideas have fewer than five prompts that are both "
            "relevant and crafted in the whole searchable library, which no ranking can make up for.\n"
        )
        ceiling_table = [
            [
                name,
                *(
                    f"{v[s]['candidates']:.0f} / {v[s]['ceiling']:.3f} / {v[s]['ceiling_crafted']:.3f}"
                    if s in v
                    else "–"
                    for s in splits
                ),
            ]
            for name, v in r["ceilings"].items()
        ]
        heads = [f"{s}: candidates / P@{K} ceiling / crafted ceiling" for s in splits]
        lines.append(markdown_table(["first stage", *heads], ceiling_table))
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
        f"\nDefault (`retrieval.search.DEFAULT_MODE` and `DEFAULT_RANKING`): {describe(default)}. The first "
        "stage is one Qdrant query: four prefetches (dense and BM25 over the expanded idea, and both again "
        "among crafted prompts only, a payload range filter on the stored craft prior) whose union the index "
        "scores by cosine. The re-rank adds coverage_weight × the share of the idea's concepts a candidate "
        "covers, and craft_weight × its stored craft prior only if its coverage is within craft_gate of the "
        "best candidate's (the craft gate: a crafted prompt outranks a bare one only when it says about as "
        "much of the idea). Weights and gate chosen on the tuning half with `bench/tune_retrieval.py` "
        "(expansion on) among the settings that bring no held-out I2P prompt into "
        "tests/retrieval/test_safety_retrieval.py's benign searches: the highest craft share among those "
        "within 0.025 of the best P@5 (round 1's rule, relevance first)."
    )
    new, old, lexi = (
        tuning.get(DEFAULT_NAME),
        tuning.get(ROUND1_NAME),
        tuning.get("union + crafted: coverage first (lexicographic)"),
    )
    if new and old:
        text += (
            f" On the tuning half it reaches P@5 {new['precision']:.3f} and craft {new['craft']:.3f}, "
            f"against {old['precision']:.3f} and {old['craft']:.3f} for round 1's default."
        )
    heldout = {name: by_split.get("heldout") for name, by_split in r["summary"].items()}
    new_h, old_h = heldout.get(DEFAULT_NAME), heldout.get(ROUND1_NAME)
    if new_h and old_h:
        ceilings = {m.name for m in METHODS if m.planned}
        reached = [
            name
            for name, a in heldout.items()
            if a and a["precision"] >= GOAL and a["craft"] >= GOAL and name not in ceilings
        ]
        text += (
            f" On the held-out half: P@5 {new_h['precision']:.3f} and craft {new_h['craft']:.3f}, against "
            f"{old_h['precision']:.3f} and {old_h['craft']:.3f} for round 1's default; "
            + (
                f"the goals ({GOAL:.2f} each) are reached by {', '.join(reached)}."
                if reached
                else f"no row reaches the goals (P@5 and craft ≥ {GOAL:.2f}) there."
            )
        )
    ungated = tuning.get(UNGATED_NAME)
    if ungated:
        text += (
            " Without the gate (the craft prior boosts every candidate, in the index) the same weights give "
            f"P@5 {ungated['precision']:.3f} and craft {ungated['craft']:.3f} on the tuning half, and "
            "crafted I2P prompts that cover only part of an idea ('an anthropomorphic fox aiming a handgun' "
            "for 'a red fox in an autumn forest') come into the safety test's benign results."
        )
    goal = tuning.get(CRAFT_GOAL_NAME)
    if goal:
        g = CRAFT_GOAL_RANKING
        weights = f"craft_weight={g.craft_weight}, coverage_weight={g.coverage_weight}"
        text += (
            f" The craft-goal weights (`CRAFT_GOAL_RANKING`: {weights}, craft_gate={g.craft_gate}; the "
            "highest P@5 among the settings that pass the safety test and whose craft share reaches 0.80) "
            "trade precision for craft: "
            f"P@5 {goal['precision']:.3f}, craft {goal['craft']:.3f} on the tuning half."
        )
    if lexi:
        text += (
            " Ordering by coverage first (full coverage before partial, then craft, then similarity) reaches "
            f"P@5 {lexi['precision']:.3f}: the idea's words as typed are a poorer judge of relevance than "
            "the embedding (an 'old man with a long beard' covers more of 'an old wizard with a long beard' "
            "than a wizard does), so coverage is a weighted signal, not the first sort key."
        )
    stoplist, retuned = tuning.get(STOPLIST_NAME), tuning.get(STOPLIST_TUNED_NAME)
    stoplist_h, retuned_h = heldout.get(STOPLIST_NAME), heldout.get(STOPLIST_TUNED_NAME)
    if stoplist and retuned and stoplist_h and retuned_h:
        text += (
            " Leaving the idea's size, chat-filler and framing words out of its concepts (the concept "
            "stoplist, `retrieval.coverage.NOT_CONCEPTS`: 'a little girl' no longer covers 'a cartoon of a "
            f"little dog' as well as a cartoon dog does) gives P@5 {stoplist['precision']:.3f} and craft "
            f"{stoplist['craft']:.3f} on the tuning half with the default's weights, and "
            f"{retuned['precision']:.3f} / {retuned['craft']:.3f} with the weights chosen for it there; on "
            f"the held-out half {stoplist_h['precision']:.3f} / {stoplist_h['craft']:.3f} and "
            f"{retuned_h['precision']:.3f} / {retuned_h['craft']:.3f}. It is not the default: with the "
            "re-tuned settings as the default (commit 28004f2, bench/bench_compose.py) the offline "
            "composer's score did not rise on its tuning half and fell on PartiPrompts."
        )
    planned, blend, bare = (tuning.get(n) for n in (PLANNED_NAME, PLANNED_BLEND_NAME, PLANNED_BARE_NAME))
    if planned and blend and bare:
        planned_h = heldout.get(PLANNED_NAME)
        text += (
            "\n\nThe planner-ceiling rows are a ceiling, not a method: they judge coverage by the idea's own "
            "evaluation groups (the subject and each concept with its synonyms, `retrieval.concept_plan`), "
            "and add the groups' phrases to the keyword (BM25) query, standing in for a concept planner such "
            "as Claude (`IMAGINE_CONCEPT_PLANNER=bedrock:<id>`, which this machine cannot call; `--planner` "
            "measures it where Bedrock is reachable). With such a plan the default search reaches, on the "
            f"tuning half, P@5 {planned['precision']:.3f} and craft {planned['craft']:.3f} with coverage "
            "sorted first (the order `PLANNED_RANKING` uses), against "
            f"{blend['precision']:.3f} / {blend['craft']:.3f} with the default's weights and "
            f"{bare['precision']:.3f} / {bare['craft']:.3f} without the phrases in the keyword query"
            + (
                f"; on the held-out half {planned_h['precision']:.3f} / {planned_h['craft']:.3f}"
                if planned_h
                else ""
            )
            + ". So the offline search's shortfall is understanding the idea (which of its words are the "
            "concepts, and what else names them: a corgi is a dog, pixar is a cartoon), not its first stage "
            "or its ranking rule; and the craft share stays near the library's own crafted ceiling (first "
            "row of the table below), which no ranking can pass."
        )
    return text + "\n"


def _pc(a: dict[str, float] | None) -> str:
    return f"{a['precision']:.2f} / {a['craft']:.2f}" if a else "–"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report."""
    return run_report(argv, parse_args, run, render)


if __name__ == "__main__":
    raise SystemExit(main())
