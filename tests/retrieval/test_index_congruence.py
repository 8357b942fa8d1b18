"""Edge and qdrant-client indexes fed the same points answer the same queries with the same ranking.

Both adapters order exact score ties by id, so results must match id for id. Ties *inside* a signal
(twin BM25 weights) are another matter: each engine orders its prefetch lists arbitrarily before RRF,
which then gives the twins different fused scores. So the main fixture scales each prompt's BM25
weights by a distinct factor in [1, 1.05), which also keeps f32 (Edge) and f64 (local mode) from
ordering near-ties differently; the raw BM25 vectors are checked separately (same scores).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from retrieval.adapters.bm25 import Bm25SparseEncoder
from retrieval.adapters.edge_index import EdgePromptIndex
from retrieval.adapters.index_common import TIE_MARGIN
from retrieval.adapters.qdrant_index import QdrantClientPromptIndex, connect_qdrant
from retrieval.index_ports import (
    HybridFusion,
    IndexHit,
    IndexPoint,
    IndexQuery,
    IndexSpec,
    PromptIndex,
    SearchMode,
    SparseVector,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:Local mode performs exact"),
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local"),
]

DIM = 64
SPEC = IndexSpec(embed_model="local:all-MiniLM-L6-v2", dimension=DIM)
ENCODER = Bm25SparseEncoder()
PHRASES = [
    "portrait of a beautiful woman, highly detailed",
    "cyberpunk city at night, neon lights",
    "a cute cat",
    "landscape painting by greg rutkowski",
    "the of and",  # stopwords only: the sparse signal is empty
]
Queries = list[tuple[list[float], SparseVector]]
FILTERS: list[tuple[bool, dict[str, str | int | bool]]] = [
    (True, {}),
    (False, {}),
    (True, {"source": "lexica"}),
    (False, {"safe": False, "near_duplicates": 2}),
]


class TermSpace:
    """Dense vectors that follow the text: a random direction per BM25 term, plus a cluster and noise."""

    def __init__(self, seed: int) -> None:
        """Seed the cluster centers and the noise."""
        self._rng = np.random.default_rng(seed)
        self._centers = self._rng.normal(size=(16, DIM))
        self._terms: dict[int, np.ndarray] = {}

    def vector(self, sparse: SparseVector, cluster: int, noise: float) -> list[float]:
        """A unit vector near the prompt's terms."""
        v = 0.5 * self._centers[cluster % 16] + noise * self._rng.normal(size=DIM)
        for index, weight in zip(sparse.indices, sparse.values, strict=True):
            if index not in self._terms:
                self._terms[index] = np.random.default_rng(index).normal(size=DIM)
            v = v + weight * self._terms[index]
        return [float(x) for x in v / np.linalg.norm(v)]


def make_points(prompts: list[str], *, jitter: bool) -> tuple[list[IndexPoint], TermSpace]:
    """Unique prompts with text-following unit vectors and BM25 vectors (optionally tie-breaking scaled)."""
    space = TermSpace(11)
    unique = list(dict.fromkeys(prompts))
    points = []
    for i, text in enumerate(unique):
        sparse = ENCODER.encode_document(text)
        dense = space.vector(sparse, i, noise=1.0)
        if jitter:
            factor = 1.0 + 0.05 * i / len(unique)
            sparse = SparseVector(sparse.indices, [v * factor for v in sparse.values])
        payload: dict[str, object] = {"prompt": text, "source": "lexica" if i % 3 == 0 else "diffusiondb"}
        payload["near_duplicates"] = i % 5
        if i % 7 != 0:  # some points predate the craft prior: score boosting treats them as 0
            payload["craft"] = (i % 6) / 5
        if i % 11 != 0:
            payload["safe"] = i % 4 != 0
        points.append(IndexPoint(str(uuid.uuid5(uuid.NAMESPACE_URL, text)), dense, sparse, payload))
    return points, space


def make_queries(points: list[IndexPoint], space: TermSpace) -> Queries:
    """Pairs of (dense, sparse) query vectors for fixed phrases and real prompt openings."""
    openings = (5, 777, 2222)
    texts = [" ".join(str(points[i % len(points)].payload["prompt"]).split()[:6]) for i in openings]
    queries = []
    for n, text in enumerate([*PHRASES, *texts]):
        sparse = ENCODER.encode_query(text)
        queries.append((space.vector(sparse, n, noise=0.5), sparse))
    return queries


def tie_groups(hits: list[IndexHit], rel: float = 1e-5) -> list[frozenset[str]]:
    """Ids grouped by equal score, best first: the order inside a group of exact ties is arbitrary."""
    groups: list[tuple[float, set[str]]] = []
    for hit in hits:
        if groups and abs(groups[-1][0] - hit.score) <= rel * abs(hit.score):
            groups[-1][1].add(hit.id)
        else:
            groups.append((hit.score, {hit.id}))
    return [frozenset(ids) for _, ids in groups]


def assert_same_ranking(edge: list[IndexHit], qdrant: list[IndexHit], *, ties: bool) -> None:
    """Same scores in the same order and the same ids (per tie group when `ties`)."""
    assert [h.score for h in edge] == pytest.approx([h.score for h in qdrant], rel=1e-5)
    if ties:
        # the last group may be cut by the limit at a different member in each engine
        assert tie_groups(edge)[:-1] == tie_groups(qdrant)[:-1]
    else:
        assert [h.id for h in edge] == [h.id for h in qdrant]
    by_id = {h.id: h.payload for h in qdrant}
    assert all(h.payload == by_id.get(h.id, h.payload) for h in edge)


def _open_pair(path: Path, points: list[IndexPoint]) -> tuple[EdgePromptIndex, QdrantClientPromptIndex]:
    edge = EdgePromptIndex(path)
    qdrant = QdrantClientPromptIndex(connect_qdrant(":memory:", None, 1.0), "prompts")
    index: PromptIndex
    for index in (edge, qdrant):
        index.open(SPEC, create=True)
        for start in range(0, len(points), 500):
            index.upsert(points[start : start + 500])
        index.finalize()
    return edge, qdrant


@pytest.fixture(scope="module")
def data(library_slice: list[str]) -> tuple[list[IndexPoint], Queries]:
    """The 3,000-prompt slice with tie-breaking BM25 weights, and the queries."""
    points, space = make_points(library_slice, jitter=True)
    return points, make_queries(points, space)


@pytest.fixture(scope="module")
def points(data: tuple[list[IndexPoint], Queries]) -> list[IndexPoint]:
    """The points of both indexes."""
    return data[0]


@pytest.fixture(scope="module")
def queries(
    data: tuple[list[IndexPoint], Queries],
) -> Queries:
    """The (dense, sparse) query pairs."""
    return data[1]


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, points: list[IndexPoint]
) -> Iterator[tuple[EdgePromptIndex, QdrantClientPromptIndex]]:
    """Both adapters holding the same points."""
    edge, qdrant = _open_pair(tmp_path_factory.mktemp("congruence") / "edge", points)
    yield edge, qdrant
    edge.close()
    qdrant.close()


def test_same_contents(
    pair: tuple[EdgePromptIndex, QdrantClientPromptIndex], points: list[IndexPoint]
) -> None:
    edge, qdrant = pair
    assert edge.count() == qdrant.count() == len(points) > 2500
    probe = [p.id for p in points[::97]] + [str(uuid.uuid4())]
    assert edge.existing_ids(probe) == qdrant.existing_ids(probe) == set(probe[:-1])


def test_both_scroll_every_prompt_once(
    pair: tuple[EdgePromptIndex, QdrantClientPromptIndex], points: list[IndexPoint]
) -> None:
    edge, qdrant = pair
    expected = sorted(str(p.payload["prompt"]) for p in points)
    assert sorted(edge.iter_prompts(batch_size=700)) == expected
    assert sorted(qdrant.iter_prompts(batch_size=700)) == expected


@pytest.mark.parametrize(("safe_only", "must_match"), FILTERS)
@pytest.mark.parametrize("mode", list(SearchMode))
def test_same_top10(
    pair: tuple[EdgePromptIndex, QdrantClientPromptIndex],
    queries: Queries,
    mode: SearchMode,
    safe_only: bool,
    must_match: dict[str, str | int | bool],
) -> None:
    edge, qdrant = pair
    answered = 0
    for dense, sparse in queries:
        query = IndexQuery(
            dense, sparse, mode, limit=10, safe_only=safe_only, exact=True, must_match=must_match
        )
        edge_hits, qdrant_hits = edge.query(query), qdrant.query(query)
        assert_same_ranking(edge_hits, qdrant_hits, ties=False)
        answered += bool(edge_hits)
        if safe_only:
            assert all(h.payload["safe"] is True for h in edge_hits)
        assert all(h.payload.get(k) == v for h in edge_hits for k, v in must_match.items())
    assert answered >= len(queries) - 1  # only the stopword query may come back empty (sparse mode)


@pytest.mark.parametrize("mode", list(SearchMode))
def test_same_ranking_with_craft_boosting(
    pair: tuple[EdgePromptIndex, QdrantClientPromptIndex], queries: Queries, mode: SearchMode
) -> None:
    """Score boosting (score + w × payload craft, 0 when missing) re-orders the same best points alike.

    In hybrid mode RRF gives many points equal fused scores, and each engine cuts such a tie at the edge of
    the boosted pool at a different member, so there each engine is checked on its own.
    """
    edge, qdrant = pair
    moved = 0
    for dense, sparse in queries:
        plain = IndexQuery(dense, sparse, mode, limit=20, exact=True)
        boosted = IndexQuery(dense, sparse, mode, limit=20, exact=True, craft_weight=0.3)
        edge_hits = edge.query(boosted)
        if mode is not SearchMode.HYBRID:
            assert_same_ranking(edge_hits, qdrant.query(boosted), ties=False)
        # boosting re-scores the mode's best points (the limit plus the tie margin) and adds no others;
        # a hybrid query's RRF pools grow with its limit, so there the plain query keeps the same limit
        wider = 20 if mode is SearchMode.HYBRID else 20 + TIE_MARGIN
        base = {h.id: h for h in edge.query(replace(plain, limit=wider))}
        if mode is not SearchMode.HYBRID:
            assert {h.id for h in edge_hits} <= set(base)
        checked = [hit for hit in edge_hits if hit.id in base]
        assert len(checked) >= min(10, len(edge_hits))
        for hit in checked:
            craft = float(base[hit.id].payload.get("craft", 0.0))
            assert hit.score == pytest.approx(base[hit.id].score + 0.3 * craft, rel=1e-5)
        moved += [h.id for h in edge_hits] != list(base)[:20]
    assert moved > 0


def test_same_vectors_returned(
    pair: tuple[EdgePromptIndex, QdrantClientPromptIndex], queries: Queries
) -> None:
    edge, qdrant = pair
    dense, sparse = queries[0]
    query = IndexQuery(dense, sparse, SearchMode.DENSE, limit=5, exact=True, with_vectors=True)
    for edge_hit, qdrant_hit in zip(edge.query(query), qdrant.query(query), strict=True):
        assert edge_hit.dense is not None and qdrant_hit.dense is not None
        assert edge_hit.dense == pytest.approx(qdrant_hit.dense, abs=1e-5)


def test_raw_bm25_scores_agree(tmp_path: Path, library_slice: list[str]) -> None:
    raw, space = make_points(library_slice[:1500], jitter=False)
    edge, qdrant = _open_pair(tmp_path / "edge", raw)
    try:
        for _, sparse in make_queries(raw, space):
            query = IndexQuery(None, sparse, SearchMode.SPARSE, limit=10, exact=True, safe_only=False)
            assert_same_ranking(edge.query(query), qdrant.query(query), ties=True)
    finally:
        edge.close()
        qdrant.close()


def test_exact_ties_come_ordered_by_id(tmp_path: Path) -> None:
    sparse = ENCODER.encode_document("a red fox in the snow")
    twins = [
        IndexPoint(str(uuid.UUID(int=n)), [1.0] + [0.0] * (DIM - 1), sparse, {"safe": True, "n": n})
        for n in (9, 3, 7, 1, 5)
    ]
    edge, qdrant = _open_pair(tmp_path / "edge", twins)
    # twins tie in each signal; in hybrid mode each prefetch's (arbitrary) order of the twins decides
    # which RRF score each gets, and Edge's two prefetches need not agree (its dense prefetch rescores
    # quantized candidates), so a fused score is only known to be 1/(60+i) + 1/(60+j) for twin ranks i, j
    rrf = [1 / (60 + i) + 1 / (60 + j) for i in range(5) for j in range(5)]
    try:
        for mode in SearchMode:
            query = IndexQuery([1.0] * DIM, ENCODER.encode_query("fox"), mode, limit=3)
            edge_hits, qdrant_hits = edge.query(query), qdrant.query(query)
            if mode is SearchMode.HYBRID:
                assert all(min(abs(h.score - r) for r in rrf) < 1e-6 for h in [*edge_hits, *qdrant_hits])
                assert {h.id for h in [*edge_hits, *qdrant_hits]} <= {t.id for t in twins}
                continue
            assert [h.score for h in edge_hits] == pytest.approx([h.score for h in qdrant_hits], rel=1e-5)
            expected = [str(uuid.UUID(int=n)) for n in (1, 3, 5)]
            assert [h.id for h in edge_hits] == [h.id for h in qdrant_hits] == expected
    finally:
        edge.close()
        qdrant.close()


def test_same_union_with_crafted_prefetches_scored_by_cosine(
    pair: tuple[EdgePromptIndex, QdrantClientPromptIndex], queries: Queries
) -> None:
    """The default's first stage: dense and BM25 top N, both again among crafted points, scored by cosine."""
    edge, qdrant = pair
    widened = 0
    for n, (dense, sparse) in enumerate(queries[:2]):  # qdrant's local mode takes ~2 s per such query
        union = IndexQuery(
            dense, sparse, SearchMode.HYBRID, limit=40, exact=True, prefetch=10, fusion=HybridFusion.DENSE
        )
        crafted = replace(union, crafted_min=0.6, craft_weight=0.3 if n else 0.0)
        edge_hits = edge.query(crafted)
        assert_same_ranking(edge_hits, qdrant.query(crafted), ties=False)
        every = IndexQuery(dense, sparse, SearchMode.DENSE, limit=3000, safe_only=False, exact=True)
        cosine = {h.id: h.score for h in edge.query(every)}
        for hit in edge_hits:  # scored by cosine (plus the boost by the craft prior)
            boost = crafted.craft_weight * float(hit.payload.get("craft", 0.0))
            assert hit.score == pytest.approx(cosine[hit.id] + boost, rel=1e-5)
        assert len(edge_hits) <= 40 and all(h.payload["safe"] is True for h in edge_hits)
        plain = {h.id for h in edge.query(union)}
        extra = [h for h in edge_hits if h.id not in plain]
        assert all(float(h.payload["craft"]) >= 0.6 for h in extra)  # what the crafted prefetches add
        widened += bool(extra)
    assert widened > 0


def test_set_payload_alike_without_touching_vectors(tmp_path: Path) -> None:
    points, space = make_points([f"{phrase} {n}" for n in range(30) for phrase in PHRASES[:2]], jitter=False)
    edge, qdrant = _open_pair(tmp_path / "edge", points)
    dense, sparse = make_queries(points, space)[0]
    chosen = [p.id for p in points[:7]]
    query = IndexQuery(dense, sparse, SearchMode.DENSE, limit=60, safe_only=False, exact=True)
    for index in (edge, qdrant):
        before = {h.id: h.score for h in index.query(query)}
        index.set_payload({"craft": 1.0, "craft_version": 9}, chosen)
        payloads = index.payloads(chosen)
        assert all(payloads[i]["craft"] == 1.0 and payloads[i]["craft_version"] == 9 for i in chosen)
        assert all("prompt" in payloads[i] for i in chosen)  # the other fields stay
        after = {h.id: h.score for h in index.query(query)}
        assert after == pytest.approx(before)  # vectors untouched
    edge.close()
    qdrant.close()
