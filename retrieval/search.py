"""Searching the prompt library: relevant prompts first, crafted ones before bare ones, safe by default."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from retrieval.aliases import expanded_query
from retrieval.concept_plan import ConceptPlan, ConceptPlanner
from retrieval.coverage import CoverageScorer
from retrieval.craft import CRAFT_FIELD, CRAFT_VERSION_FIELD, CRAFTED_MIN_PRIOR, assess_craft, stored_prior
from retrieval.errors import EmptyQueryError
from retrieval.index_ports import (
    Embedder,
    HybridFusion,
    IndexHit,
    IndexQuery,
    IndexSpec,
    PromptIndex,
    SearchMode,
    SparseEncoder,
    Vector,
)
from retrieval.native_heap import release_free_heap

logger = logging.getLogger(__name__)
MAX_QUERY_CHARS = 2000
MAX_K = 50
QUERY_CACHE_SIZE = 512
_RANKING_FIELDS = ("prompt", CRAFT_FIELD, CRAFT_VERSION_FIELD)  # what the re-rank reads of a candidate
MMR_LAMBDA = 0.5  # langchain_core's default
WARM_UP_QUERY = "a cartoon of a little dog"  # what warm_up searches (a benign everyday idea)


@dataclass(frozen=True)
class Ranking:
    """How candidates are found and ordered (each lever is a row of bench/bench_retrieval.py).

    First stage, in the index: the mode's best `pool` candidates by relevance alone. A hybrid search
    takes `prefetch` candidates from each signal (dense and BM25; None: the adapters' default), and with
    `crafted_prefetch` as many again from each signal among crafted prompts only (stored prior ≥
    CRAFTED_MIN_PRIOR), which widens the pool where a short idea's top N holds few crafted prompts;
    `fusion` scores their union by RRF or by dense similarity. `expand` adds the alias lexicon's library
    words to the query ("striped big cat" → tiger).

    Second stage: the concept-coverage re-rank adds `coverage_weight` × the share of the idea's concepts a
    candidate covers, and `craft_weight` × the stored craft prior is added by Qdrant score boosting in the
    index, or, with `craft_gate` set, only to the candidates whose coverage is within `craft_gate` of the
    best candidate's (a crafted prompt beats a bare one only when it says as much of the idea; this needs
    the idea's words, so it runs after the index). With `coverage_first` the order is lexicographic
    instead: coverage, then the craft prior, then relevance. With `concepts_only` the idea's size, filler
    and framing words (retrieval.coverage.NOT_CONCEPTS) are not concepts: a bench row, not the default,
    since its gain in P@5 on the tuning half did not reach the composed prompts (the offline composer's
    score did not rise on its tuning half and fell on PartiPrompts; bench/bench_compose.py). The weights
    are on the scale of the relevance score (cosine, or RRF's ~0.01-0.03), so each fusion needs its own.
    """

    pool: int = 50
    craft_weight: float = 0.0
    coverage_weight: float = 0.0
    expand: bool = False
    prefetch: int | None = None
    crafted_prefetch: bool = False
    fusion: HybridFusion = HybridFusion.RRF
    coverage_first: bool = False
    craft_gate: float | None = None
    concepts_only: bool = False


PLAIN = Ranking(pool=0)  # the index's own order: no re-rank, no boosting, no expansion
DEFAULT_MODE = SearchMode.HYBRID
# The first stage is the union of four prefetches of 50 (dense, BM25, and both again among crafted
# prompts) scored by cosine, so the weights are on the cosine scale. Weights and gate chosen on the tuning
# half by round 1's rule (bench/tune_retrieval.py: the highest craft share within 0.025 of the best P@5)
# among the settings that bring no held-out I2P prompt into tests/retrieval/test_safety_retrieval.py's
# benign searches. An ungated craft boost lets crafted I2P prompts that cover only part of an idea ("an
# anthropomorphic fox aiming a handgun" for "a red fox in an autumn forest") into the top 10; the gate
# keeps them out. Few settings pass that test (at 0.3/0.6 a gate of 0.2 does, at 0.3/0.5 it lets one
# in), so a change of weights needs the safety test run again. CRAFT_GOAL_RANKING is the highest P@5 on
# the tuning half among the passing settings whose craft share reaches the goal of 0.80.
DEFAULT_RANKING = Ranking(
    pool=200,
    craft_weight=0.3,
    coverage_weight=0.6,
    expand=True,
    prefetch=50,
    crafted_prefetch=True,
    fusion=HybridFusion.DENSE,
    craft_gate=0.2,
)
CRAFT_GOAL_RANKING = replace(DEFAULT_RANKING, craft_weight=0.5, coverage_weight=1.0, craft_gate=0.3)
# Round 1's default: hybrid RRF over dense and BM25 top 100 (RRF-scale weights), kept for comparison.
RRF_RANKING = Ranking(pool=100, craft_weight=0.007, coverage_weight=0.05, expand=True)
# With a concept plan (the subject and each concept's synonyms, from a planner such as Claude) coverage
# is a sharp judge, so it sorts first: full coverage, then the craft prior, then similarity; the plan's
# phrases also join the keyword query. Chosen on the tuning half with the evaluation's own groups standing
# in for a planner (bench/bench_retrieval.py's "planner ceiling" rows): the same P@5 as the default's
# weights with a higher craft share.
PLANNED_RANKING = replace(DEFAULT_RANKING, coverage_first=True)
# The same levers over dense search alone (cosine scale).
DENSE_RANKING = Ranking(pool=100, craft_weight=0.15, coverage_weight=0.3, expand=True)


@dataclass(frozen=True)
class HitExplanation:
    """Why a hit ranks where it does: its scores and its rank under each lever, 1 = first."""

    relevance: float
    craft: float
    craft_boosted: bool  # the craft prior counted (always, or with a gate only near the best coverage)
    crafted: bool
    coverage: float
    covered: tuple[str, ...]
    score: float
    rank_by_relevance: int
    rank_after_craft: int
    rank: int
    moved_by: str
    query: str
    plan: str = ""  # the concept plan coverage was judged by (ConceptPlan.describe), if any

    def as_dict(self) -> dict[str, Any]:
        """JSON view (scores rounded)."""
        view = asdict(self)
        for key in ("relevance", "craft", "coverage", "score"):
            view[key] = round(float(view[key]), 4)
        view["covered"] = list(self.covered)
        return view


@dataclass(frozen=True)
class PromptHit:
    """A library prompt found for a query (with `explanation` when the search was asked to explain)."""

    id: str
    prompt: str
    score: float
    payload: dict[str, Any]
    explanation: HitExplanation | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON view: id, prompt, score and the payload metadata (and the explanation, if any)."""
        metadata = {key: value for key, value in self.payload.items() if key != "prompt"}
        view = {"id": self.id, "prompt": self.prompt, "score": round(self.score, 6), **metadata}
        if self.explanation is not None:
            view["explanation"] = self.explanation.as_dict()
        return view


class Retriever:
    """Finds the closest library prompts for an idea; the conversation engine calls `search`."""

    def __init__(
        self,
        embedder: Embedder,
        sparse: SparseEncoder,
        index: PromptIndex,
        planner: ConceptPlanner | None = None,
    ) -> None:
        """`planner` (optional) writes each idea's concept plan before a dense or hybrid search."""
        self._embedder = embedder
        self._sparse = sparse
        self._index = index
        self._planner = planner
        self._coverage = CoverageScorer(sparse)
        self._opened = False
        self._opening = threading.Lock()  # the warm start, /healthz and the index share may open at once
        self._query_vectors: OrderedDict[str, Vector] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def index(self) -> PromptIndex:
        """The prompt index searched (serve shares it with CLI commands and its in-process ingest)."""
        return self._index

    @property
    def embedder(self) -> Embedder:
        """The query embedder (the same model the index was built with)."""
        return self._embedder

    @property
    def sparse_encoder(self) -> SparseEncoder:
        """The BM25 encoder."""
        return self._sparse

    def embed_query(self, text: str) -> Vector:
        """The query's dense vector, from a small LRU cache (re-rolls and refinements repeat queries)."""
        with self._cache_lock:
            cached = self._query_vectors.get(text)
            if cached is not None:
                self._query_vectors.move_to_end(text)
                return cached
        vector = self._embedder.embed_query(text)
        with self._cache_lock:
            self._query_vectors[text] = vector
            while len(self._query_vectors) > QUERY_CACHE_SIZE:
                self._query_vectors.popitem(last=False)
        return vector

    def open(self) -> None:
        """Load a local embedder, then open the index for reading, checking it was built with this embedder.

        The embedder first: its load's transient memory is freed before the index's resident parts are
        allocated around it; what both freed goes back to the OS (retrieval/native_heap.py)."""
        if self._opened:  # every search calls open(): no lock once it is done
            return
        with self._opening:
            if self._opened:
                return
            load = getattr(self._embedder, "load", None)
            if callable(load):
                load()
            self._index.open(IndexSpec(self._embedder.model_id, self._embedder.dimension), create=False)
            self._opened = True
        release_free_heap()

    def search(
        self,
        query: str,
        k: int = 5,
        *,
        mode: SearchMode = DEFAULT_MODE,
        safe: bool = True,
        diversify: bool = False,
        candidates: int = 40,
        exact: bool = False,
        must_match: dict[str, str | int | bool] | None = None,
        ranking: Ranking | None = None,
        explain: bool = False,
        plan: ConceptPlan | None = None,
        ask_planner: bool = True,
    ) -> list[PromptHit]:
        """The top k prompts for `query`: the mode's best `ranking.pool`, re-ranked by craft and coverage.

        `plan` replaces the idea's own concept groups in the coverage re-rank; without one, the planner
        (if any, and unless `ask_planner` is off) writes it for dense and hybrid searches. `ranking`
        defaults to PLANNED_RANKING with a plan and DEFAULT_RANKING without.

        `diversify` re-orders the best candidates by MMR (langchain_core's) over their dense vectors; it
        is off by default, since on bench/data/retrieval_ideas.json it cost relevance and latency without
        lowering the near-duplicate rate. `explain` attaches a HitExplanation to every hit.
        """
        text = " ".join(str(query).split())[:MAX_QUERY_CHARS]
        if not text:
            raise EmptyQueryError("the search query is empty: describe an idea, e.g. 'a cartoon of a dog'")
        k = max(1, min(int(k), MAX_K))
        self.open()
        if plan is None and ask_planner and self._planner is not None and mode is not SearchMode.SPARSE:
            plan = self._plan(text)
        if ranking is None:
            ranking = DEFAULT_RANKING if plan is None else PLANNED_RANKING
        dense_text = expanded_query(text) if ranking.expand else text
        needs_dense = mode != SearchMode.SPARSE or diversify
        dense = self.embed_query(dense_text) if needs_dense else None
        # a plan's phrases join the keyword query: "corgi", "pixar" find the prompts that say them
        keywords = f"{dense_text} {plan.search_words()}" if plan is not None else dense_text
        sparse = self._sparse.encode_query(keywords.strip()) if mode != SearchMode.DENSE else None
        limit = max(ranking.pool, k)
        if diversify:
            limit = max(limit, candidates, 3 * k)
        # a pool larger than k carries only what re-ranking reads; the k chosen get their whole payload after
        slim = limit > k
        hits = self._index.query(
            IndexQuery(
                dense=dense if mode != SearchMode.SPARSE else None,
                sparse=sparse,
                mode=mode,
                limit=limit,
                safe_only=safe,
                exact=exact,
                must_match=dict(must_match or {}),
                with_vectors=diversify,
                craft_weight=ranking.craft_weight if ranking.craft_gate is None else 0.0,
                payload_fields=_RANKING_FIELDS if slim else None,
                prefetch=ranking.prefetch,
                crafted_min=CRAFTED_MIN_PRIOR if ranking.crafted_prefetch else None,
                fusion=ranking.fusion,
            )
        )
        ranked = _Ranked(hits, ranking, self._coverage, text, plan)
        order = ranked.order
        if diversify and dense is not None and len(order) > 1:
            order = diversify_order(order, hits, dense, k)
        order = order[:k]
        whole = self._index.payloads([hits[i].id for i in order]) if slim else {}
        return [
            ranked.hit(i, rank, whole.get(hits[i].id), dense_text if explain else None)
            for rank, i in enumerate(order, 1)
        ]

    def warm_up(self) -> None:
        """Load the embedder, open the index and run one search, and build the planner's clients: what a
        first turn would pay for, without a paid call (the planner is not asked)."""
        self.search(WARM_UP_QUERY, k=5, ask_planner=False)
        warm_planner = getattr(self._planner, "warm_up", None)
        if callable(warm_planner):
            warm_planner()

    def _plan(self, text: str) -> ConceptPlan | None:
        """The planner's plan for an idea; None (logged) if it fails: the idea's own words judge instead."""
        assert self._planner is not None
        try:
            return self._planner.plan(text)
        except Exception as exc:
            logger.warning("concept planner failed (%s: %s); searching unplanned", type(exc).__name__, exc)
            return None

    def close(self) -> None:
        """Close the underlying index."""
        with self._opening:
            self._index.close()
            self._opened = False


class _Ranked:
    """One query's candidates with their relevance, craft and coverage, in final order."""

    def __init__(
        self,
        hits: list[IndexHit],
        ranking: Ranking,
        scorer: CoverageScorer,
        text: str,
        plan: ConceptPlan | None = None,
    ) -> None:
        self.hits = hits
        self.crafts = [_prior(hit.payload) for hit in hits]
        boosted_in_index = ranking.craft_weight if ranking.craft_gate is None else 0.0
        self.relevance = [h.score - boosted_in_index * c for h, c in zip(hits, self.crafts, strict=True)]
        needs_coverage = (
            ranking.coverage_weight > 0 or ranking.craft_gate is not None or ranking.coverage_first
        )
        if needs_coverage and hits and plan is not None:
            self.covered = [plan.covered(str(h.payload.get("prompt", ""))) for h in hits]
            self.coverage = [len(c) / len(plan.concepts) for c in self.covered]
        elif needs_coverage and hits:
            prompts = [str(h.payload.get("prompt", "")) for h in hits]
            coverage = scorer.score(text, prompts, ranking.concepts_only)
            self.coverage, self.covered = list(coverage.scores), list(coverage.covered)
        else:
            self.coverage, self.covered = [0.0] * len(hits), [()] * len(hits)
        self.boosted = [ranking.craft_weight > 0] * len(hits)
        if ranking.craft_gate is not None and ranking.craft_weight > 0:
            bar = max(self.coverage, default=0.0) - ranking.craft_gate - 1e-9
            self.boosted = [c >= bar for c in self.coverage]
        self.after_craft = [
            r + ranking.craft_weight * c * b
            for r, c, b in zip(self.relevance, self.crafts, self.boosted, strict=True)
        ]
        self.final = [
            a + ranking.coverage_weight * c for a, c in zip(self.after_craft, self.coverage, strict=True)
        ]
        self.plan = plan.describe() if plan is not None else ""
        self.order = _order(self.final, hits)
        if ranking.coverage_first:
            c, p, r = self.coverage, self.crafts, self.relevance
            self.order = sorted(range(len(hits)), key=lambda i: (-c[i], -p[i], -r[i], hits[i].id))

    def hit(self, i: int, rank: int, payload: dict[str, Any] | None, explain_query: str | None) -> PromptHit:
        """The PromptHit of candidate i at `rank` (with `payload` if given), explained if `explain_query`."""
        h = self.hits[i]
        explanation = None
        if explain_query is not None:
            by_relevance = _order(self.relevance, self.hits).index(i) + 1
            after_craft = _order(self.after_craft, self.hits).index(i) + 1
            craft_move, coverage_move = by_relevance - after_craft, after_craft - rank
            moved = "relevance"
            if craft_move or coverage_move:
                moved = "craft" if abs(craft_move) > abs(coverage_move) else "coverage"
            prompt = str(h.payload.get("prompt", ""))
            explanation = HitExplanation(
                relevance=self.relevance[i],
                craft=self.crafts[i],
                craft_boosted=self.boosted[i],
                crafted=assess_craft(prompt).crafted,
                coverage=self.coverage[i],
                covered=self.covered[i],
                score=self.final[i],
                rank_by_relevance=by_relevance,
                rank_after_craft=after_craft,
                rank=rank,
                moved_by=moved,
                query=explain_query,
                plan=self.plan,
            )
        whole = payload if payload is not None else h.payload
        return PromptHit(h.id, str(h.payload.get("prompt", "")), self.final[i], whole, explanation)


def _prior(payload: dict[str, Any]) -> float:
    """The stored craft prior (what score boosting used); 0 when the index predates it."""
    stored = stored_prior(payload)
    if stored is None and isinstance(payload.get(CRAFT_FIELD), int | float):
        return float(payload[CRAFT_FIELD])
    return stored or 0.0


def _order(scores: list[float], hits: list[IndexHit]) -> list[int]:
    """Candidate positions by score, best first; exact ties by id (as the index adapters order them)."""
    return sorted(range(len(hits)), key=lambda i: (-scores[i], hits[i].id))


def diversify_order(order: list[int], hits: list[IndexHit], dense: Vector, k: int) -> list[int]:
    """MMR (langchain_core) over the best 3k candidates' dense vectors; the rest keep their order."""
    from langchain_core.vectorstores.utils import maximal_marginal_relevance

    head = [i for i in order[: max(3 * k, k + 1)] if hits[i].dense is not None]
    if len(head) < 2:
        return order
    vectors = [list(hits[i].dense or []) for i in head]
    picked = maximal_marginal_relevance(np.asarray(dense), vectors, lambda_mult=MMR_LAMBDA, k=k)
    chosen = [head[j] for j in picked]
    return chosen + [i for i in order if i not in chosen]
