"""Qdrant Edge prompt index and the BM25 encoder, over real library prompts and seeded dense vectors."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from qdrant_edge import EdgeShard

from retrieval.adapters.bm25 import Bm25SparseEncoder
from retrieval.adapters.edge_index import EdgePromptIndex
from retrieval.adapters.index_common import SPEC_FILE
from retrieval.errors import IndexMismatchError, IndexMissingError, IndexUnavailableError
from retrieval.index_ports import IndexPoint, IndexQuery, IndexSpec, SearchMode

DIM = 32
SPEC = IndexSpec(embed_model="local:all-MiniLM-L6-v2", dimension=DIM)
ENCODER = Bm25SparseEncoder()


def _unit(v: np.ndarray) -> list[float]:
    return [float(x) for x in v / np.linalg.norm(v)]


def make_points(prompts: list[str], seed: int = 3) -> list[IndexPoint]:
    """Unique prompts as points: clustered unit vectors, BM25 vectors, 1 in 5 unsafe, 1 in 13 unflagged."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(10, DIM))
    unique = list(dict.fromkeys(prompts))
    points = []
    for i, text in enumerate(unique):
        payload: dict[str, object] = {
            "prompt": text,
            "source": "diffusiondb" if i % 3 else "lexica",
            "near_duplicates": i % 4,
        }
        if i % 13 != 0:
            payload["safe"] = i % 5 != 0
        dense = _unit(centers[i % 10] + 0.4 * rng.normal(size=DIM))
        point_id = str(uuid.uuid5(uuid.NAMESPACE_URL, text))
        points.append(IndexPoint(point_id, dense, ENCODER.encode_document(text), payload))
    return points


@pytest.fixture(scope="module")
def points(library_slice: list[str]) -> list[IndexPoint]:
    """800 real prompts as index points."""
    return make_points(library_slice[:800])


def _build(path: Path, points: list[IndexPoint]) -> EdgePromptIndex:
    idx = EdgePromptIndex(path)
    idx.open(SPEC, create=True)
    idx.upsert(points)
    idx.finalize()
    return idx


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, points: list[IndexPoint]) -> Iterator[EdgePromptIndex]:
    """A finalized Edge index of the points, shared by the read-only tests."""
    idx = _build(tmp_path_factory.mktemp("edge") / "index", points)
    yield idx
    idx.close()


@pytest.fixture
def index(tmp_path: Path, points: list[IndexPoint]) -> Iterator[EdgePromptIndex]:
    """A finalized Edge index of the points, for a test that changes or closes it."""
    idx = _build(tmp_path / "index", points)
    yield idx
    idx.close()


def _query(
    points: list[IndexPoint],
    mode: SearchMode,
    *,
    limit: int = 20,
    safe_only: bool = True,
    exact: bool = False,
    must_match: dict[str, str | int | bool] | None = None,
    words: str | None = None,
) -> IndexQuery:
    """A query near points[7]: its vector and (unless `words`) the first five words of its prompt."""
    target = points[7]
    words = words or " ".join(str(target.payload["prompt"]).split()[:5])
    return IndexQuery(
        dense=target.dense,
        sparse=ENCODER.encode_query(words),
        mode=mode,
        limit=limit,
        safe_only=safe_only,
        exact=exact,
        must_match=must_match or {},
    )


def test_bm25_stems_drops_stopwords_and_weights_terms() -> None:
    doc = ENCODER.encode_document("The cats and the dogs, cats everywhere")
    query = ENCODER.encode_query("a cat")
    assert query.values == [1.0]
    assert query.indices[0] in doc.indices  # "cat" matches "cats"
    weights = dict(zip(doc.indices, doc.values, strict=True))
    dog = ENCODER.encode_query("dog").indices[0]
    assert weights[query.indices[0]] > weights[dog] > 0  # tf 2 weighs more than tf 1
    assert len(doc.indices) == 3  # cat, dog, everywhere: stopwords dropped
    assert ENCODER.encode_document("the of and").indices == []


def test_missing_index_raises_missing(tmp_path: Path) -> None:
    idx = EdgePromptIndex(tmp_path / "none")
    assert idx.spec() is None
    with pytest.raises(IndexMissingError, match=r"no prompt index at .*none: run `imagine-bot ingest PATH`"):
        idx.open(SPEC, create=False)
    assert not (tmp_path / "none").exists()


def test_spec_mismatch_names_both_models(tmp_path: Path) -> None:
    idx = EdgePromptIndex(tmp_path / "ix")
    idx.open(SPEC, create=True)
    idx.close()
    other = IndexSpec("bedrock:amazon.titan-embed-text-v2:0", 1024)
    with pytest.raises(IndexMismatchError) as err:
        EdgePromptIndex(tmp_path / "ix").open(other, create=True)
    message = str(err.value)
    assert "local:all-MiniLM-L6-v2 (32-d)" in message
    assert "bedrock:amazon.titan-embed-text-v2:0 (1024-d)" in message
    assert "IMAGINE_COLLECTION or IMAGINE_DATA_DIR" in message
    assert EdgePromptIndex(tmp_path / "ix").spec() == SPEC


def test_reopen_is_fast_and_keeps_everything(tmp_path: Path, points: list[IndexPoint]) -> None:
    first = EdgePromptIndex(tmp_path / "ix")
    first.open(SPEC, create=True)
    first.upsert(points)
    first.finalize()
    query = _query(points, SearchMode.HYBRID, exact=True)
    before = first.query(query)
    first.close()

    started = time.perf_counter()
    again = EdgePromptIndex(tmp_path / "ix")
    again.open(SPEC, create=False)
    assert time.perf_counter() - started < 2.0
    assert again.count() == len(points)
    after = again.query(query)
    assert [(h.id, h.score) for h in after] == [(h.id, h.score) for h in before]
    stored = {p.id: p.payload for p in points}
    assert all(h.payload == stored[h.id] for h in after)
    again.close()
    schema = EdgeShard.load(str(tmp_path / "ix"))
    try:
        assert {"safe", "source", "near_duplicates"} <= set(schema.info().payload_schema)
    finally:
        schema.close()


def test_upserts_survive_a_crash_before_finalize(tmp_path: Path) -> None:
    script = f"""
import os, sys, uuid
from pathlib import Path
from retrieval.adapters.edge_index import EdgePromptIndex
from retrieval.index_ports import IndexPoint, IndexSpec, SparseVector
idx = EdgePromptIndex(Path({str(tmp_path / "ix")!r}))
idx.open(IndexSpec("m", 2), create=True)
idx.upsert([IndexPoint(str(uuid.UUID(int=i + 1)), [1.0, float(i)], SparseVector([i], [1.0]), {{}})
            for i in range(40)])
os._exit(0)
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).parents[2], timeout=30)
    idx = EdgePromptIndex(tmp_path / "ix")
    idx.open(IndexSpec("m", 2), create=False)
    assert idx.count() == 40
    assert idx.existing_ids([str(uuid.UUID(int=1)), str(uuid.UUID(int=41))]) == {str(uuid.UUID(int=1))}
    idx.close()


def test_second_open_in_same_process_is_refused_until_close(index: EdgePromptIndex) -> None:
    other = EdgePromptIndex(index.path)
    with pytest.raises(IndexUnavailableError, match="already open by another process or another index"):
        other.open(SPEC, create=False)
    index.close()
    other.open(SPEC, create=False)
    assert other.count() > 0
    other.close()


def test_second_open_from_another_process_is_refused(index: EdgePromptIndex) -> None:
    script = f"""
from pathlib import Path
from retrieval.adapters.edge_index import EdgePromptIndex
from retrieval.errors import IndexUnavailableError
from retrieval.index_ports import IndexSpec
try:
    EdgePromptIndex(Path({str(index.path)!r})).open(IndexSpec({SPEC.embed_model!r}, {DIM}), create=False)
except IndexUnavailableError as exc:
    print("refused:", exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
        timeout=30,
    )
    assert "refused:" in done.stdout and "already open" in done.stdout, done.stderr


def test_corrupt_or_foreign_directory_is_unavailable(tmp_path: Path, index: EdgePromptIndex) -> None:
    index.close()
    (index.path / SPEC_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexUnavailableError, match="is corrupt"):
        EdgePromptIndex(index.path).open(SPEC, create=False)
    (index.path / SPEC_FILE).unlink()
    with pytest.raises(IndexUnavailableError, match=r"without imagine_index\.json"):
        EdgePromptIndex(index.path).open(SPEC, create=True)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / SPEC_FILE).write_text('{"embed_model": "local:all-MiniLM-L6-v2", "dimension": 32}')
    (broken / "edge_config.json").write_text("garbage")
    with pytest.raises(IndexUnavailableError, match="cannot open prompt index"):
        EdgePromptIndex(broken).open(SPEC, create=False)


def test_count_existing_ids_and_idempotent_reupsert(index: EdgePromptIndex, points: list[IndexPoint]) -> None:
    assert index.count() == len(points)
    unknown = str(uuid.uuid4())
    assert index.existing_ids([points[0].id, points[5].id, unknown]) == {points[0].id, points[5].id}
    assert index.existing_ids([]) == set()
    changed = IndexPoint(
        points[0].id, points[0].dense, points[0].sparse, {**points[0].payload, "source": "x"}
    )
    index.upsert([changed, *points[1:50]])
    assert index.count() == len(points)
    hits = index.query(IndexQuery(dense=points[0].dense, sparse=None, mode=SearchMode.DENSE, safe_only=False))
    assert hits[0].id == points[0].id and hits[0].payload["source"] == "x"


@pytest.mark.parametrize("mode", list(SearchMode))
def test_unsafe_and_unflagged_points_never_returned_in_safe_mode(
    shared: EdgePromptIndex, points: list[IndexPoint], mode: SearchMode
) -> None:
    unsafe = {p.id for p in points if p.payload.get("safe") is not True}
    common = "portrait of a beautiful woman, highly detailed digital art"
    safe_hits = shared.query(_query(points, mode, limit=300, words=common))
    assert len(safe_hits) >= 50
    assert all(h.payload["safe"] is True for h in safe_hits)
    assert not unsafe & {h.id for h in safe_hits}
    all_hits = shared.query(_query(points, mode, limit=300, safe_only=False, words=common))
    assert unsafe & {h.id for h in all_hits}


def test_must_match_filters_on_keyword_integer_and_bool(
    shared: EdgePromptIndex, points: list[IndexPoint]
) -> None:
    query = _query(
        points, SearchMode.HYBRID, limit=100, must_match={"source": "lexica", "near_duplicates": 2}
    )
    hits = shared.query(query)
    assert hits and all(h.payload["source"] == "lexica" and h.payload["near_duplicates"] == 2 for h in hits)
    flagged = shared.query(
        _query(points, SearchMode.DENSE, limit=100, safe_only=False, must_match={"safe": False})
    )
    assert flagged and all(h.payload["safe"] is False for h in flagged)


def test_dense_query_finds_the_point_and_returns_its_vector(
    shared: EdgePromptIndex, points: list[IndexPoint]
) -> None:
    target = points[11]
    hits = shared.query(IndexQuery(dense=target.dense, sparse=None, mode=SearchMode.DENSE, with_vectors=True))
    assert hits[0].id == target.id
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].dense == pytest.approx(target.dense, abs=1e-5)
    assert shared.query(IndexQuery(dense=target.dense, sparse=None, mode=SearchMode.DENSE))[0].dense is None


def test_sparse_query_ranks_matching_prompts_and_default_search_agrees_with_exact(
    shared: EdgePromptIndex, points: list[IndexPoint]
) -> None:
    hits = shared.query(
        IndexQuery(dense=None, sparse=ENCODER.encode_query("portrait"), mode=SearchMode.SPARSE)
    )
    assert hits and all("portrait" in str(h.payload["prompt"]).lower() for h in hits)
    assert (
        shared.query(IndexQuery(dense=None, sparse=ENCODER.encode_query("the"), mode=SearchMode.SPARSE)) == []
    )
    # the compact layout searches 4-bit codes and rescores with the originals, without oversampling
    # (the product's queries fetch a pool of 100-200 to keep 5): recall@10 is the promise, not the order
    found = 0
    for point in points[:20]:
        approx = shared.query(IndexQuery(dense=point.dense, sparse=None, mode=SearchMode.DENSE, limit=10))
        exact = shared.query(
            IndexQuery(dense=point.dense, sparse=None, mode=SearchMode.DENSE, limit=10, exact=True)
        )
        assert approx[0].id == exact[0].id  # the nearest one is never lost
        found += len({h.id for h in approx} & {h.id for h in exact})
    assert found / (20 * 10) >= 0.95


def test_hybrid_scores_are_rrf_with_k_60(shared: EdgePromptIndex, points: list[IndexPoint]) -> None:
    hybrid = shared.query(_query(points, SearchMode.HYBRID, limit=20, exact=True))
    expected: dict[str, float] = {}
    for mode in (SearchMode.DENSE, SearchMode.SPARSE):
        for rank, hit in enumerate(shared.query(_query(points, mode, limit=80, exact=True))):
            expected[hit.id] = expected.get(hit.id, 0.0) + 1 / (60 + rank)
    assert len(hybrid) == 20
    assert hybrid[0].score == pytest.approx(max(expected.values()), rel=1e-5)
    for hit in hybrid:
        assert hit.score == pytest.approx(expected[hit.id], rel=1e-5)


def test_repeated_and_concurrent_queries_give_identical_answers(
    shared: EdgePromptIndex, points: list[IndexPoint]
) -> None:
    queries = [_query(points[k:], mode, limit=10) for k in range(0, 40, 5) for mode in SearchMode]
    first = [[(h.id, h.score) for h in shared.query(q)] for q in queries]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            again = list(pool.map(lambda q: [(h.id, h.score) for h in shared.query(q)], queries))
            assert again == first


def test_wrong_dimension_and_closed_index_are_refused(
    index: EdgePromptIndex, points: list[IndexPoint]
) -> None:
    bad = IndexPoint(str(uuid.uuid4()), [1.0, 0.0], points[0].sparse, {"safe": True})
    with pytest.raises(IndexMismatchError, match="2-d vector"):
        index.upsert([bad])
    with pytest.raises(IndexMismatchError, match="3 dimensions"):
        index.query(IndexQuery(dense=[1.0, 0.0, 0.0], sparse=None, mode=SearchMode.DENSE))
    index.close()
    index.close()
    with pytest.raises(IndexUnavailableError, match="is not open"):
        index.count()
