"""Memory layout of the prompt index: new indexes are compact (4-bit in RAM, originals on disk, rescoring);
old in-RAM Edge indexes open unchanged and `finalize()` converts them; server collections are created so."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pytest

from retrieval.adapters.edge_index import EdgePromptIndex, IndexLayout
from retrieval.adapters.qdrant_index import QdrantClientPromptIndex, connect_qdrant
from retrieval.index_ports import IndexPoint, IndexQuery, IndexSpec, SearchMode, SparseVector
from tests.fakes.qdrant_stub import QdrantStubHandler, serve_qdrant_stub

pytestmark = [pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local")]

DIM = 384
SPEC = IndexSpec(embed_model="local:all-MiniLM-L6-v2", dimension=DIM)
# Edge builds HNSW and the quantized vectors only for segments over 10,000 KB: 7,000 384-d vectors
GRAPHED = 7_000
QUERIES = 20

Floats = npt.NDArray[np.float32]


def clustered(count: int, seed: int = 5) -> Floats:
    """Unit vectors around 50 centres, like sentence embeddings (random ones defeat any graph index)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, 50, count)] + 0.35 * rng.standard_normal((count, DIM)).astype(
        np.float32
    )
    result: Floats = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return result


def points_of(vectors: Floats) -> list[IndexPoint]:
    """Dense-only points with a minimal payload."""
    empty = SparseVector([], [])
    return [
        IndexPoint(str(uuid.UUID(int=i + 1)), v.tolist(), empty, {"prompt": f"prompt {i}", "safe": True})
        for i, v in enumerate(vectors)
    ]


def dense_query(vector: Floats, *, exact: bool = False) -> IndexQuery:
    """Top 10 by the dense vector, no filter."""
    return IndexQuery(vector.tolist(), None, SearchMode.DENSE, limit=10, safe_only=False, exact=exact)


def test_a_new_index_is_compact_and_an_old_one_keeps_its_layout_on_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fresh = EdgePromptIndex(tmp_path / "new")
    fresh.open(SPEC, create=True)
    fresh.close()
    old = EdgePromptIndex(tmp_path / "old", layout=IndexLayout.IN_RAM)
    old.open(SPEC, create=True)
    old.upsert(points_of(clustered(50)))
    old.close()

    reopened = EdgePromptIndex(tmp_path / "old")
    with caplog.at_level(logging.WARNING, logger="retrieval.adapters.edge_index"):
        reopened.open(SPEC, create=False)
    count = reopened.count()
    reopened.close()

    assert fresh.layout() is IndexLayout.COMPACT
    assert reopened.layout() is IndexLayout.IN_RAM
    assert count == 50
    assert "has the in_ram memory layout, not compact" in caplog.text
    assert EdgePromptIndex(tmp_path / "missing").layout() is None


def test_payload_indexes_are_on_disk_in_the_compact_layout_and_finalize_moves_old_ones(
    tmp_path: Path,
) -> None:
    fields = {"safe", "source", "near_duplicates", "craft"}
    fresh = EdgePromptIndex(tmp_path / "new")
    fresh.open(SPEC, create=True)
    assert fresh.payload_indexes_on_disk() == dict.fromkeys(fields, True)
    fresh.close()
    old = EdgePromptIndex(tmp_path / "old", layout=IndexLayout.IN_RAM)
    old.open(SPEC, create=True)
    old.upsert(points_of(clustered(50)))
    assert old.payload_indexes_on_disk() == dict.fromkeys(fields, False)
    old.close()

    index = EdgePromptIndex(tmp_path / "old")
    index.open(SPEC, create=False)
    assert index.payload_indexes_on_disk() == dict.fromkeys(fields, False)  # opening changes nothing
    index.finalize()
    moved = index.payload_indexes_on_disk()
    safe_only = IndexQuery(
        clustered(1, seed=9)[0].tolist(), None, SearchMode.DENSE, limit=100, safe_only=True
    )
    found = len(index.query(safe_only))
    index.close()
    assert moved == dict.fromkeys(fields, True)
    assert found == 50  # the filter on `safe` still works on the moved index


def test_finalize_converts_an_in_ram_index_and_queries_rescore_with_the_originals(tmp_path: Path) -> None:
    vectors = clustered(GRAPHED)
    ids = [str(uuid.UUID(int=i + 1)) for i in range(GRAPHED)]
    rng = np.random.default_rng(11)
    probes = vectors[rng.choice(GRAPHED, QUERIES, replace=False)] + 0.05 * rng.standard_normal(
        (QUERIES, DIM)
    ).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    cosines = probes @ vectors.T
    truth = [[ids[j] for j in np.argsort(-row)[:10]] for row in cosines]
    path = tmp_path / "index"
    old = EdgePromptIndex(path, layout=IndexLayout.IN_RAM)
    old.open(SPEC, create=True)
    old.upsert(points_of(vectors))
    old.finalize()
    old.close()

    index = EdgePromptIndex(path)
    index.open(SPEC, create=False)
    before = [[h.id for h in index.query(dense_query(p))] for p in probes]
    index.finalize()
    hits = [index.query(dense_query(p)) for p in probes]
    exact = [[h.id for h in index.query(dense_query(p, exact=True))] for p in probes]
    count = index.count()
    index.close()

    recall = np.mean(
        [len(set(h.id for h in got) & set(want)) / 10 for got, want in zip(hits, truth, strict=True)]
    )
    score_error = max(
        abs(h.score - float(cosines[q, ids.index(h.id)])) for q, got in enumerate(hits) for h in got
    )
    assert index.layout() is IndexLayout.COMPACT
    assert list(path.glob("segments/*/vector_storage-dense/quantized.data"))  # 4-bit copies were built
    assert count == GRAPHED
    assert exact == truth
    assert before == truth
    assert recall >= 0.95, recall
    assert score_error < 1e-5, score_error  # rescored: 4-bit scores alone are off by ~1e-3


class _RecordingQdrant(QdrantStubHandler):
    """Creates the collection, answers queries with no points, records the request bodies."""

    created = False
    bodies: ClassVar[dict[str, list[dict[str, Any]]]] = {}

    def _record(self) -> str:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        path = self.path.split("?")[0]
        type(self).bodies.setdefault(path, []).append(body)
        return path

    def do_GET(self) -> None:
        """Existence (after the PUT), the collection's info, the collections list."""
        path = self.path.split("?")[0]
        if path == "/collections/prompts/exists":
            self.send_result({"exists": type(self).created})
        elif path == "/collections/prompts":
            self.send_json(200, self.collection_info)
        else:
            self.send_result({"collections": []})

    def do_PUT(self) -> None:
        """Collection creation and payload indexes."""
        if self._record() == "/collections/prompts":
            type(self).created = True
            self.send_result(True)
        else:
            self.send_result({"operation_id": 1, "status": "completed"})

    def do_POST(self) -> None:
        """Queries find nothing."""
        self._record()
        self.send_result({"points": []})


def test_a_new_server_collection_gets_the_compact_layout_and_queries_rescore() -> None:
    with serve_qdrant_stub(_RecordingQdrant, SPEC) as url:
        index = QdrantClientPromptIndex(connect_qdrant(url, None, 2.0), "prompts")
        index.open(SPEC, create=True)
        probe = clustered(1)[0]
        assert index.query(dense_query(probe)) == []
        index.query(dense_query(probe, exact=True))
        index.close()
    [created] = _RecordingQdrant.bodies["/collections/prompts"]
    approximate, exact = _RecordingQdrant.bodies["/collections/prompts/points/query"]

    assert created["vectors"]["dense"]["on_disk"] is True
    assert created["quantization_config"] == {"turbo": {"bits": "bits4", "always_ram": True}}
    assert created["sparse_vectors"]["bm25"] == {"index": {"on_disk": True}, "modifier": "idf"}
    assert created["on_disk_payload"] is True
    assert approximate["params"]["quantization"] == {"rescore": True, "oversampling": 1.0}
    assert not approximate["params"].get("exact")
    assert exact["params"]["exact"] is True and exact["params"]["quantization"]["ignore"] is True
