"""qdrant-client prompt index: local `:memory:` mode for behaviour, a stub HTTP server for failures."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from retrieval.adapters.bm25 import Bm25SparseEncoder
from retrieval.adapters.qdrant_index import METADATA_KEY, QdrantClientPromptIndex, connect_qdrant
from retrieval.errors import IndexMismatchError, IndexMissingError, IndexUnavailableError
from retrieval.index_ports import IndexPoint, IndexQuery, IndexSpec, SearchMode
from tests.fakes.qdrant_stub import QdrantStubHandler, serve_qdrant_stub

pytestmark = [
    pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection"),
    pytest.mark.filterwarnings("ignore:Local mode performs exact"),
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local"),
]

DIM = 32
SPEC = IndexSpec(embed_model="local:all-MiniLM-L6-v2", dimension=DIM)
ENCODER = Bm25SparseEncoder()
COMMON = "portrait of a beautiful woman, highly detailed digital art"


def make_points(prompts: list[str], seed: int = 5) -> list[IndexPoint]:
    """Unique prompts as points: clustered unit vectors, BM25 vectors, 1 in 5 unsafe, 1 in 13 unflagged."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(10, DIM))
    points = []
    for i, text in enumerate(dict.fromkeys(prompts)):
        payload: dict[str, object] = {"prompt": text, "source": "lexica" if i % 3 == 0 else "diffusiondb"}
        payload["near_duplicates"] = i % 4
        if i % 13 != 0:
            payload["safe"] = i % 5 != 0
        dense = centers[i % 10] + 0.4 * rng.normal(size=DIM)
        dense /= np.linalg.norm(dense)
        points.append(
            IndexPoint(
                str(uuid.uuid5(uuid.NAMESPACE_URL, text)),
                [float(x) for x in dense],
                ENCODER.encode_document(text),
                payload,
            )
        )
    return points


@pytest.fixture(scope="module")
def points(library_slice: list[str]) -> list[IndexPoint]:
    """600 real prompts as index points."""
    return make_points(library_slice[:600])


def _build(points: list[IndexPoint]) -> QdrantClientPromptIndex:
    idx = QdrantClientPromptIndex(connect_qdrant(":memory:", None, 1.0), "prompts")
    idx.open(SPEC, create=True)
    idx.upsert(points)
    idx.finalize()
    return idx


@pytest.fixture(scope="module")
def shared(points: list[IndexPoint]) -> Iterator[QdrantClientPromptIndex]:
    """An in-memory index of the points, shared by the read-only tests."""
    idx = _build(points)
    yield idx
    idx.close()


@pytest.fixture
def index(points: list[IndexPoint]) -> Iterator[QdrantClientPromptIndex]:
    """An in-memory index of the points, for a test that changes or closes it."""
    idx = _build(points)
    yield idx
    idx.close()


def _query(points: list[IndexPoint], mode: SearchMode, words: str = COMMON, **kw: Any) -> IndexQuery:
    return IndexQuery(dense=points[3].dense, sparse=ENCODER.encode_query(words), mode=mode, **kw)


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def test_connect_fails_fast_on_a_closed_port() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    started = time.perf_counter()
    with pytest.raises(IndexUnavailableError) as err:
        connect_qdrant(url, "secret", 2.0)
    assert time.perf_counter() - started < 3.0
    message = str(err.value)
    assert message.startswith(f"cannot reach Qdrant at {url} (IMAGINE_QDRANT_URL): ")
    assert "refused" in message.lower() and "\n" not in message and "secret" not in message


def test_connect_times_out_on_a_silent_server() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        started = time.perf_counter()
        with pytest.raises(IndexUnavailableError, match=r"cannot reach Qdrant at .*: timed out"):
            connect_qdrant(f"http://127.0.0.1:{silent.getsockname()[1]}", None, 1.0)
        assert time.perf_counter() - started < 3.0
    finally:
        silent.close()


def test_missing_mismatched_and_foreign_collections() -> None:
    client = QdrantClient(":memory:")
    with pytest.raises(
        IndexMissingError, match=r"no prompt index in Qdrant collection 'p'.*imagine-bot ingest"
    ):
        QdrantClientPromptIndex(client, "p", close_client=False).open(SPEC, create=False)
    assert not client.collection_exists("p")

    QdrantClientPromptIndex(client, "p", close_client=False).open(SPEC, create=True)
    other = IndexSpec("bedrock:amazon.titan-embed-text-v2:0", 1024)
    with pytest.raises(IndexMismatchError) as err:
        QdrantClientPromptIndex(client, "p", close_client=False).open(other, create=True)
    assert "collection 'p' was built with local:all-MiniLM-L6-v2 (32-d)" in str(err.value)
    assert "bedrock:amazon.titan-embed-text-v2:0 (1024-d)" in str(err.value)

    client.create_collection(
        "foreign", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
    )
    foreign = QdrantClientPromptIndex(client, "foreign", close_client=False)
    assert foreign.spec() is None
    with pytest.raises(IndexMismatchError, match="not built by imagine-bot"):
        foreign.open(SPEC, create=True)


def test_spec_lives_in_collection_metadata_not_in_points(points: list[IndexPoint]) -> None:
    client = QdrantClient(":memory:")
    index = QdrantClientPromptIndex(client, "prompts", close_client=False)
    index.open(SPEC, create=True)
    index.upsert(points[:100])
    metadata = client.get_collection("prompts").config.metadata or {}
    assert metadata[METADATA_KEY]["embed_model"] == SPEC.embed_model
    assert metadata[METADATA_KEY]["dimension"] == DIM
    records, _ = client.scroll("prompts", limit=10_000, with_payload=True)
    assert len(records) == index.count() == 100
    assert not any("embed_model" in (r.payload or {}) for r in records)
    assert index.spec() == SPEC


def test_count_existing_ids_and_idempotent_reupsert(
    index: QdrantClientPromptIndex, points: list[IndexPoint]
) -> None:
    assert index.count() == len(points)
    unknown = str(uuid.uuid4())
    assert index.existing_ids([points[1].id, points[9].id, unknown]) == {points[1].id, points[9].id}
    changed = IndexPoint(
        points[1].id, points[1].dense, points[1].sparse, {**points[1].payload, "source": "x"}
    )
    index.upsert([changed, *points[2:60]])
    assert index.count() == len(points)
    hits = index.query(IndexQuery(dense=points[1].dense, sparse=None, mode=SearchMode.DENSE, safe_only=False))
    assert hits[0].id == points[1].id and hits[0].payload["source"] == "x"


@pytest.mark.parametrize("mode", list(SearchMode))
def test_unsafe_and_unflagged_points_never_returned_in_safe_mode(
    shared: QdrantClientPromptIndex, points: list[IndexPoint], mode: SearchMode
) -> None:
    unsafe = {p.id for p in points if p.payload.get("safe") is not True}
    safe_hits = shared.query(_query(points, mode, limit=300))
    assert len(safe_hits) >= 50
    assert all(h.payload["safe"] is True for h in safe_hits)
    assert unsafe & {h.id for h in shared.query(_query(points, mode, limit=300, safe_only=False))}


def test_must_match_and_vectors(shared: QdrantClientPromptIndex, points: list[IndexPoint]) -> None:
    hits = shared.query(_query(points, SearchMode.HYBRID, limit=80, must_match={"source": "lexica"}))
    assert hits and all(h.payload["source"] == "lexica" and h.payload["safe"] is True for h in hits)
    flagged = shared.query(
        _query(
            points,
            SearchMode.SPARSE,
            limit=80,
            safe_only=False,
            must_match={"safe": False, "near_duplicates": 1},
        )
    )
    assert flagged and all(h.payload["safe"] is False and h.payload["near_duplicates"] == 1 for h in flagged)
    target = points[4]
    top = shared.query(IndexQuery(dense=target.dense, sparse=None, mode=SearchMode.DENSE, with_vectors=True))
    assert top[0].id == target.id and top[0].dense == pytest.approx(target.dense, abs=1e-5)


def test_hybrid_scores_are_rrf_with_k_60(shared: QdrantClientPromptIndex, points: list[IndexPoint]) -> None:
    hybrid = shared.query(_query(points, SearchMode.HYBRID, limit=15))
    expected: dict[str, float] = {}
    for mode in (SearchMode.DENSE, SearchMode.SPARSE):
        for rank, hit in enumerate(shared.query(_query(points, mode, limit=60))):
            expected[hit.id] = expected.get(hit.id, 0.0) + 1 / (60 + rank)
    assert len(hybrid) == 15
    assert hybrid[0].score == pytest.approx(max(expected.values()), rel=1e-9)
    for hit in hybrid:
        assert hit.score == pytest.approx(expected[hit.id], rel=1e-9)


def test_close_is_idempotent_and_can_leave_the_client_open(points: list[IndexPoint]) -> None:
    client = QdrantClient(":memory:")
    idx = QdrantClientPromptIndex(client, "p", close_client=False)
    idx.open(SPEC, create=True)
    idx.upsert(points[:5])
    idx.close()
    idx.close()
    with pytest.raises(IndexUnavailableError, match="is not open"):
        idx.count()
    assert client.count("p").count == 5
    owned = QdrantClientPromptIndex(client, "p")
    owned.open(SPEC, create=False)
    owned.close()
    with pytest.raises(IndexUnavailableError):
        owned.open(SPEC, create=False)


class _FailingQdrant(QdrantStubHandler):
    """Answers the calls that open an index, then fails every data call with HTTP 500."""

    def do_GET(self) -> None:
        """Collections list, existence and info succeed."""
        if self.path.startswith("/collections/prompts/exists"):
            self.send_result({"exists": True})
        elif self.path.startswith("/collections/prompts"):
            self.send_json(200, self.collection_info)
        else:
            self.send_result({"collections": [{"name": "prompts"}]})

    def do_POST(self) -> None:
        """Every query, count or retrieve fails."""
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_json(500, b'{"status": {"error": "Service internal error: disk\\nfull"}, "time": 0}')

    do_PUT = do_POST


@pytest.fixture
def failing_url() -> Iterator[str]:
    """URL of a stub Qdrant that holds an imagine-bot collection but fails every data call."""
    with serve_qdrant_stub(_FailingQdrant, SPEC) as url:
        yield url


def test_server_errors_become_one_line_unavailable_errors(failing_url: str, points: list[IndexPoint]) -> None:
    idx = QdrantClientPromptIndex(connect_qdrant(failing_url, None, 2.0), "prompts")
    idx.open(SPEC, create=False)
    calls: list[Callable[[], object]] = [
        lambda: idx.query(_query(points, SearchMode.HYBRID)),
        lambda: idx.upsert(points[:3]),
        idx.count,
        lambda: idx.existing_ids([points[0].id]),
    ]
    for call in calls:
        with pytest.raises(IndexUnavailableError) as err:
            call()
        message = str(err.value)
        assert message.startswith("Qdrant ") and "collection 'prompts'" in message
        assert "HTTP 500" in message and "\n" not in message
    idx.close()
