"""Searching the prompt library: relevant prompts first, crafted ones before bare ones, safe by default."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from retrieval.aliases import expanded_query
from retrieval.coverage import CoverageScorer
from retrieval.craft import CRAFT_FIELD, CRAFT_VERSION_FIELD, assess_craft, stored_prior
from retrieval.errors import EmptyQueryError
from retrieval.index_ports import (
    Embedder,
    IndexHit,
    IndexQuery,
    IndexSpec,
    PromptIndex,
    SearchMode,
    SparseEncoder,
    Vector,
)

logger = logging.getLogger(__name__)
MAX_QUERY_CHARS = 2000
MAX_K = 50
QUERY_CACHE_SIZE = 512
_RANKING_FIELDS = ("prompt", CRAFT_FIELD, CRAFT_VERSION_FIELD)  # what the re-rank reads of a candidate
MMR_LAMBDA = 0.5  # langchain_core's default


@dataclass(frozen=True)
class Ranking:
    """How candidates are ordered after the index finds them (each lever is a row of bench_retrieval).

    `pool` candidates come from the index by relevance alone (the mode's score: cosine, BM25 or RRF);
    Qdrant score boosting adds `craft_weight` × the stored craft prior; the concept-coverage re-rank adds
    `coverage_weight` × the share of the idea's concepts a candidate covers; `expand` adds the alias
    lexicon's library words to the query ("striped big cat" → tiger). The weights are on the scale of
    the mode's score, so each mode needs its own (see DEFAULT_RANKING and DENSE_RANKING).
    """

    pool: int = 50
    craft_weight: float = 0.0
    coverage_weight: float = 0.0
    expand: bool = False


PLAIN = Ranking(pool=0)  # the index's own order: no re-rank, no boosting, no expansion
# Hybrid RRF scores (1/(60 + rank) summed over dense and BM25) span about 0.01-0.03 in a pool of 100, hence
# the small weights. Chosen on the tuning half (bench/tune_retrieval.py --mode hybrid) among the settings
# with no held-out I2P prompt in tests/test_safety_retrieval.py's benign searches.
DEFAULT_MODE = SearchMode.HYBRID
DEFAULT_RANKING = Ranking(pool=100, craft_weight=0.007, coverage_weight=0.05, expand=True)
# The same levers over dense search (cosine scale): more crafted hits on the tuning half, but dense search
# brings held-out I2P prompts into benign results that BM25's vote in hybrid search keeps out.
DENSE_RANKING = Ranking(pool=100, craft_weight=0.15, coverage_weight=0.3, expand=True)


@dataclass(frozen=True)
class HitExplanation:
    """Why a hit ranks where it does: its scores and its rank under each lever, 1 = first."""

    relevance: float
    craft: float
    crafted: bool
    coverage: float
    covered: tuple[str, ...]
    score: float
    rank_by_relevance: int
    rank_after_craft: int
    rank: int
    moved_by: str
    query: str

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

    def __init__(self, embedder: Embedder, sparse: SparseEncoder, index: PromptIndex) -> None:
        self._embedder = embedder
        self._sparse = sparse
        self._index = index
        self._coverage = CoverageScorer(sparse)
        self._opened = False
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
        """Open the index for reading, checking it was built with this embedder."""
        if not self._opened:
            self._index.open(IndexSpec(self._embedder.model_id, self._embedder.dimension), create=False)
            self._opened = True

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
        ranking: Ranking = DEFAULT_RANKING,
        explain: bool = False,
    ) -> list[PromptHit]:
        """The top k prompts for `query`: the mode's best `ranking.pool`, re-ranked by craft and coverage.

        `diversify` re-orders the best candidates by MMR (langchain_core's) over their dense vectors; it
        is off by default, since on bench/data/retrieval_ideas.json it cost relevance and latency without
        lowering the near-duplicate rate. `explain` attaches a HitExplanation to every hit.
        """
        text = " ".join(str(query).split())[:MAX_QUERY_CHARS]
        if not text:
            raise EmptyQueryError("the search query is empty: describe an idea, e.g. 'a cartoon of a dog'")
        k = max(1, min(int(k), MAX_K))
        self.open()
        dense_text = expanded_query(text) if ranking.expand else text
        needs_dense = mode != SearchMode.SPARSE or diversify
        dense = self.embed_query(dense_text) if needs_dense else None
        sparse = self._sparse.encode_query(dense_text) if mode != SearchMode.DENSE else None
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
                craft_weight=ranking.craft_weight,
                payload_fields=_RANKING_FIELDS if slim else None,
            )
        )
        ranked = _Ranked(hits, ranking, self._coverage, text)
        order = ranked.order
        if diversify and dense is not None and len(order) > 1:
            order = diversify_order(order, hits, dense, k)
        order = order[:k]
        whole = self._index.payloads([hits[i].id for i in order]) if slim else {}
        return [
            ranked.hit(i, rank, whole.get(hits[i].id), dense_text if explain else None)
            for rank, i in enumerate(order, 1)
        ]

    def close(self) -> None:
        """Close the underlying index."""
        self._index.close()
        self._opened = False


class _Ranked:
    """One query's candidates with their relevance, craft and coverage, in final order."""

    def __init__(self, hits: list[IndexHit], ranking: Ranking, scorer: CoverageScorer, text: str) -> None:
        self.hits = hits
        self.crafts = [_prior(hit.payload) for hit in hits]
        self.relevance = [h.score - ranking.craft_weight * c for h, c in zip(hits, self.crafts, strict=True)]
        if ranking.coverage_weight > 0 and hits:
            coverage = scorer.score(text, [str(h.payload.get("prompt", "")) for h in hits])
            self.coverage, self.covered = list(coverage.scores), list(coverage.covered)
        else:
            self.coverage, self.covered = [0.0] * len(hits), [()] * len(hits)
        self.final = [h.score + ranking.coverage_weight * c for h, c in zip(hits, self.coverage, strict=True)]
        self.order = _order(self.final, hits)

    def hit(self, i: int, rank: int, payload: dict[str, Any] | None, explain_query: str | None) -> PromptHit:
        """The PromptHit of candidate i at `rank` (with `payload` if given), explained if `explain_query`."""
        h = self.hits[i]
        explanation = None
        if explain_query is not None:
            by_relevance = _order(self.relevance, self.hits).index(i) + 1
            after_craft = _order([x.score for x in self.hits], self.hits).index(i) + 1
            craft_move, coverage_move = by_relevance - after_craft, after_craft - rank
            moved = "relevance"
            if craft_move or coverage_move:
                moved = "craft" if abs(craft_move) > abs(coverage_move) else "coverage"
            prompt = str(h.payload.get("prompt", ""))
            explanation = HitExplanation(
                relevance=self.relevance[i],
                craft=self.crafts[i],
                crafted=assess_craft(prompt).crafted,
                coverage=self.coverage[i],
                covered=self.covered[i],
                score=self.final[i],
                rank_by_relevance=by_relevance,
                rank_after_craft=after_craft,
                rank=rank,
                moved_by=moved,
                query=explain_query,
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
