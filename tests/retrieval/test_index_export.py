"""`imagine-bot index export|import`: Edge -> qdrant-client (local mode) -> Edge without re-embedding."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from bot.config import load_config
from bot.entry.cli.index import FORMAT, export_index, import_index, read_header
from bot.entry.cli.main import main
from bot.wiring import build_index
from retrieval.adapters.bm25 import Bm25SparseEncoder
from retrieval.adapters.edge_index import EdgePromptIndex
from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
from retrieval.adapters.qdrant_index import QdrantClientPromptIndex
from retrieval.errors import IndexMismatchError, IngestError
from retrieval.index_ports import IndexSpec, PromptIndex, SearchMode
from retrieval.search import Retriever

pytestmark = [
    pytest.mark.filterwarnings("ignore:Local mode performs exact"),
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local"),
]

EMBEDDER = OnnxMiniLMEmbedder()
SPEC = IndexSpec(EMBEDDER.model_id, EMBEDDER.dimension)
QUERIES = ("a cartoon of a little dog", "portrait of an old sailor, oil painting", "cyberpunk city at night")


def _top(index: PromptIndex, k: int = 8) -> list[list[tuple[str, float]]]:
    """Ids and scores of exact dense and sparse (BM25) searches over `index` (the caller closes it).

    Hybrid is left out: RRF fuses ranks, and engines order exact BM25 score ties differently.
    """
    retriever = Retriever(EMBEDDER, Bm25SparseEncoder(), index)
    retriever.open()
    return [
        [
            (hit.id, round(hit.score, 4))
            for hit in retriever.search(q, k=k, mode=mode, exact=True, diversify=False)
        ]
        for q in QUERIES
        for mode in (SearchMode.DENSE, SearchMode.SPARSE)
    ]


def _memory_index() -> QdrantClientPromptIndex:
    return QdrantClientPromptIndex(QdrantClient(location=":memory:"), "prompts")


def test_edge_to_qdrant_client_and_back_keeps_every_point_and_result(
    small_index: Path, tmp_path: Path
) -> None:
    edge = EdgePromptIndex(small_index)
    edge.open(SPEC, create=False)
    try:
        dump = tmp_path / "prompts.jsonl.gz"
        advanced: list[int] = []
        written = export_index(edge, dump, advanced.append)
        assert written == edge.count() == sum(advanced) and written > 1000
        expected = _top(edge)
        edge_points = {p.id: p for p in edge.iter_points()}
    finally:
        edge.close()
    assert read_header(dump) == (SPEC, written)
    with gzip.open(dump, "rt", encoding="utf-8") as lines:
        header = json.loads(next(lines))
        first = json.loads(next(lines))
    assert header["format"] == FORMAT and set(first) == {"id", "dense", "sparse", "payload"}
    assert len(first["dense"]) == SPEC.dimension and "prompt" in first["payload"]

    server = _memory_index()
    try:
        assert import_index(server, dump, SPEC) == written
        assert server.count() == written and server.spec() == SPEC
        assert _top(server) == expected  # same vectors, same BM25 statistics: same search results
        back = tmp_path / "back.jsonl.gz"
        assert export_index(server, back) == written
    finally:
        server.close()

    again = EdgePromptIndex(tmp_path / "edge-again")
    try:
        assert import_index(again, back, SPEC) == written
        assert again.count() == written and _top(again) == expected
        for point in again.iter_points():
            original = edge_points[point.id]
            assert point.payload == original.payload and point.sparse == original.sparse
            assert point.dense == pytest.approx(original.dense, abs=1e-6)
    finally:
        again.close()


def _tiny_dump(tmp_path: Path, spec: IndexSpec = SPEC) -> Path:
    """An export of a few points written by hand, with `spec` in its header."""
    from tests.retrieval.test_index_qdrant_client import make_points

    points = make_points([f"a red fox number {i}" for i in range(7)])
    source = _memory_index()
    source.open(IndexSpec(spec.embed_model, 32), create=True)
    source.upsert(points)
    path = tmp_path / f"tiny-{spec.dimension}.jsonl.gz"
    export_index(source, path)
    source.close()
    return path


def test_import_refuses_another_embedding_model_with_one_line(tmp_path: Path) -> None:
    dump = _tiny_dump(tmp_path)  # 32-d vectors recorded as MiniLM but 32-d: not the configured 384-d
    target = EdgePromptIndex(tmp_path / "target")
    with pytest.raises(IndexMismatchError) as refused:
        import_index(target, dump, SPEC)
    assert "\n" not in str(refused.value) and "384-d" in str(refused.value) and "32-d" in str(refused.value)
    assert not (tmp_path / "target").exists()  # nothing was written
    # the target's own spec is checked too: an existing index of another dimension is refused
    other = IndexSpec(SPEC.embed_model, 32)
    target.open(IndexSpec("local:other-model", 32), create=True)
    target.close()
    with pytest.raises(IndexMismatchError):
        import_index(target, dump, other)


def test_import_rejects_a_file_that_is_not_an_export(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"prompt": "a dog"}\n', encoding="utf-8")
    with pytest.raises(IngestError, match="not an imagine-bot index export"):
        import_index(_memory_index(), junk, SPEC)
    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(_tiny_dump(tmp_path).read_bytes()[:60])
    with pytest.raises(IngestError):
        import_index(_memory_index(), truncated, IndexSpec(SPEC.embed_model, 32))


def test_cli_export_and_import(
    small_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config()
    shutil.copytree(small_index, config.index_dir)
    dump = tmp_path / "cli.jsonl.gz"
    assert main(["index", "export", str(dump)]) == 0
    assert "exported 1," in capsys.readouterr().err
    monkeypatch.setenv("IMAGINE_DATA_DIR", str(tmp_path / "other"))
    assert main(["index", "import", str(dump)]) == 0
    assert "imported 1," in capsys.readouterr().err
    assert main(["info"]) == 0 and "prompts: 1," in capsys.readouterr().out
    monkeypatch.setenv("IMAGINE_QDRANT_URL", ":memory:")
    assert main(["index", "import", str(dump)]) == 0
    monkeypatch.setenv("IMAGINE_EMBED_MODEL", "bedrock:amazon.titan-embed-text-v2:0")
    assert main(["index", "import", str(dump)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: index at ") and "amazon.titan-embed-text-v2:0" in err


class RecordingClient(QdrantClient):
    """A local-mode client remembering create_collection's keyword arguments (local mode drops them)."""

    created: list[dict[str, Any]]

    def create_collection(self, collection_name: str, **kwargs: Any) -> bool:  # type: ignore[override]
        self.created = [*getattr(self, "created", []), kwargs]
        return super().create_collection(collection_name, **kwargs)


def test_server_collections_get_shards_and_replication_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGINE_QDRANT_URL", ":memory:")
    monkeypatch.setenv("IMAGINE_QDRANT_SHARDS", "4")
    monkeypatch.setenv("IMAGINE_QDRANT_REPLICATION", "2")
    built = build_index(load_config())
    assert isinstance(built, QdrantClientPromptIndex)
    built.close()
    client = RecordingClient(location=":memory:")
    index = QdrantClientPromptIndex(client, "prompts", shard_number=4, replication_factor=2)
    index.open(SPEC, create=True)
    [kwargs] = client.created
    assert kwargs["shard_number"] == 4 and kwargs["replication_factor"] == 2
    index.close()
    defaults = RecordingClient(location=":memory:")
    QdrantClientPromptIndex(defaults, "prompts").open(SPEC, create=True)
    assert defaults.created[0]["shard_number"] == 1 and defaults.created[0]["replication_factor"] == 1


def test_shard_settings_default_to_one_and_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config()
    assert config.qdrant_shards == 1 and config.qdrant_replication == 1
    monkeypatch.setenv("IMAGINE_QDRANT_SHARDS", "0")
    from bot.config import ConfigError

    with pytest.raises(ConfigError, match="IMAGINE_QDRANT_SHARDS"):
        load_config()
