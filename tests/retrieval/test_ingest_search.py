"""The ingest pipeline and the Retriever over real adapters: ONNX embeddings, BM25, Qdrant Edge."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from retrieval.adapters.bm25 import Bm25SparseEncoder
from retrieval.adapters.edge_index import EdgePromptIndex
from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
from retrieval.adapters.qdrant_index import QdrantClientPromptIndex, connect_qdrant
from retrieval.cleaning import point_id
from retrieval.errors import EmptyQueryError, IndexMismatchError, IndexUnavailableError
from retrieval.index_ports import IndexSpec, SearchMode, Vector
from retrieval.ingest import IngestOptions, Ingestor
from retrieval.search import Retriever
from retrieval.sources import RawPrompt

UNSAFE = "explicit nude porn photo of a naked woman, nsfw"


@pytest.fixture(scope="module")
def embedder() -> OnnxMiniLMEmbedder:
    """One loaded local embedder for the module."""
    return OnnxMiniLMEmbedder()


def rows(prompts: Sequence[str]) -> list[RawPrompt]:
    """Raw rows from plain prompt texts."""
    return [RawPrompt(text, {"source": "test"}) for text in prompts]


class InterruptingEmbedder:
    """The real embedder behind a fault switch: raises KeyboardInterrupt after `batches` calls."""

    def __init__(self, inner: OnnxMiniLMEmbedder, batches: int) -> None:
        self.inner, self.left = inner, batches
        self.model_id, self.dimension = inner.model_id, inner.dimension

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> Vector:
        return self.inner.embed_query(text)


def test_summary_accounts_for_every_row(
    embedder: OnnxMiniLMEmbedder, library_slice: list[str], tmp_path: Path
) -> None:
    prompts = [*library_slice[:400], library_slice[0], "  ", "hi", "x" * 5000, UNSAFE]
    index = EdgePromptIndex(tmp_path / "index")
    summary = Ingestor(embedder, Bm25SparseEncoder(), index).ingest_rows(rows(prompts), IngestOptions())
    assert summary.read == len(prompts)
    assert summary.kept + sum(summary.dropped.values()) == summary.read
    assert summary.dropped["duplicate"] >= 1
    assert min(summary.dropped[reason] for reason in ("empty", "too_short", "too_long")) >= 1
    assert summary.flagged_unsafe >= 1
    assert index.count() == summary.kept == summary.embedded
    index.close()


def test_reingest_is_idempotent_and_interrupted_runs_resume(
    embedder: OnnxMiniLMEmbedder, library_slice: list[str], tmp_path: Path
) -> None:
    prompts = library_slice[:700]
    path = tmp_path / "index"
    index = EdgePromptIndex(path)
    with pytest.raises(KeyboardInterrupt):
        Ingestor(InterruptingEmbedder(embedder, batches=1), Bm25SparseEncoder(), index).ingest_rows(
            rows(prompts), IngestOptions()
        )
    stored_before = index.count()
    index.close()
    assert 0 < stored_before < 700
    index = EdgePromptIndex(path)
    resumed = Ingestor(embedder, Bm25SparseEncoder(), index).ingest_rows(rows(prompts), IngestOptions())
    assert resumed.already_indexed == stored_before
    assert resumed.embedded == resumed.kept - stored_before
    again = Ingestor(embedder, Bm25SparseEncoder(), index).ingest_rows(rows(prompts), IngestOptions())
    assert (again.embedded, again.already_indexed) == (0, resumed.kept)
    assert index.count() == resumed.kept
    index.close()


def test_a_rerun_counts_flags_of_the_prompts_it_embeds_only(
    embedder: OnnxMiniLMEmbedder, library_slice: list[str], tmp_path: Path
) -> None:
    first_prompts = [*library_slice[:60], "naked woman lying on a bed, erotic photo"]
    index = EdgePromptIndex(tmp_path / "index")
    first = Ingestor(embedder, Bm25SparseEncoder(), index).ingest_rows(rows(first_prompts), IngestOptions())
    assert first.already_indexed == 0 and first.flagged_unsafe >= 1 and first.flagged_by["lexicon"] >= 1
    again = Ingestor(embedder, Bm25SparseEncoder(), index).ingest_rows(
        rows([*first_prompts, UNSAFE]), IngestOptions()
    )
    assert (again.embedded, again.already_indexed) == (1, first.kept)
    assert again.flagged_unsafe == 1 and again.flagged_by["lexicon"] == 1  # UNSAFE only, not the stored ones
    unchanged = Ingestor(embedder, Bm25SparseEncoder(), index).ingest_rows(
        rows([*first_prompts, UNSAFE]), IngestOptions()
    )
    assert (unchanged.embedded, unchanged.flagged_unsafe, +unchanged.flagged_by) == (0, 0, Counter())
    index.close()


def test_row_scores_above_thresholds_are_dropped(embedder: OnnxMiniLMEmbedder, tmp_path: Path) -> None:
    scored = [
        RawPrompt("a quiet harbour at dawn, oil painting by turner", {"prompt_nsfw": 0.9}),
        RawPrompt("portrait of an astronaut, studio lighting, 85mm", {"image_nsfw": 0.8}),
        RawPrompt("isometric pixel art of a tiny bakery", {"prompt_nsfw": 0.1, "image_nsfw": 0.2}),
    ]
    index = EdgePromptIndex(tmp_path / "index")
    summary = Ingestor(embedder, Bm25SparseEncoder(), index).ingest_rows(scored, IngestOptions())
    assert summary.dropped["nsfw_score"] == 2 and summary.kept == 1
    lenient = IngestOptions(prompt_nsfw_max=0.95, image_nsfw_max=0.95)
    assert Ingestor(embedder, Bm25SparseEncoder(), index).ingest_rows(scored, lenient).kept == 3
    index.close()


def test_near_duplicates_collapse_to_one_with_a_count(embedder: OnnxMiniLMEmbedder, tmp_path: Path) -> None:
    variants = [
        "a red fox sitting in the snow, digital art, trending on artstation",
        "a red fox sitting in the snow, digital painting, trending on artstation",
        "a red fox sitting in the snow, digital art, trending on artstation, 4k",
        "a lighthouse on a cliff during a storm, dramatic, oil painting",
    ]
    index = EdgePromptIndex(tmp_path / "index")
    summary = Ingestor(embedder, Bm25SparseEncoder(), index).ingest_rows(rows(variants), IngestOptions())
    assert summary.dropped["near_duplicate"] == 2
    retriever = Retriever(embedder, Bm25SparseEncoder(), index)
    top = retriever.search("red fox in snow", k=1)[0]
    assert top.id == point_id(variants[0]) and top.payload["near_duplicates"] == 2
    retriever.close()


@pytest.fixture(scope="module")
def built_index(
    embedder: OnnxMiniLMEmbedder, library_slice: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """An Edge index of 3,000 library prompts plus known unsafe ones."""
    path = tmp_path_factory.mktemp("built") / "index"
    index = EdgePromptIndex(path)
    extra = [
        UNSAFE,
        "naked woman lying on a bed, erotic photo",
        "a cartoon dog covered in blood, gore, decapitated",
    ]
    Ingestor(embedder, Bm25SparseEncoder(), index).ingest_rows(
        rows([*library_slice, *extra]), IngestOptions()
    )
    index.close()
    return path


@pytest.fixture
def retriever(embedder: OnnxMiniLMEmbedder, built_index: Path) -> Iterator[Retriever]:
    """A Retriever over the built index, closed after the test (Edge allows one opener)."""
    opened = Retriever(embedder, Bm25SparseEncoder(), EdgePromptIndex(built_index))
    yield opened
    opened.close()


def test_search_is_relevant_distinct_and_safe(retriever: Retriever) -> None:
    for mode in SearchMode:
        hits = retriever.search("a cartoon of a little dog", k=5, mode=mode)
        assert len(hits) == 5 and len({hit.id for hit in hits}) == 5
        assert all(hit.payload["safe"] for hit in hits)
        assert sum(any(w in hit.prompt.lower() for w in ("dog", "pupp", "corgi", "pug")) for hit in hits) >= 2
    unsafe_query = retriever.search("naked woman nude porn", k=10, mode=SearchMode.SPARSE)
    assert all(hit.payload["safe"] for hit in unsafe_query)
    assert any(not h.payload["safe"] for h in retriever.search("naked woman nude porn", k=10, safe=False))
    with pytest.raises(EmptyQueryError):
        retriever.search(" \n ")


def test_mmr_removes_near_copies_that_plain_ranking_keeps(
    embedder: OnnxMiniLMEmbedder, built_index: Path
) -> None:
    retriever = Retriever(embedder, Bm25SparseEncoder(), EdgePromptIndex(built_index))
    worst_plain, worst_mmr = 0.0, 0.0
    for idea in ("portrait of a beautiful woman", "cyberpunk city at night", "a cute cat", "fantasy castle"):
        plain = retriever.search(idea, k=5, diversify=False)
        diverse = retriever.search(idea, k=5, diversify=True)  # MMR is no longer the default
        worst_plain = max(worst_plain, _max_pair_cosine(embedder, [h.prompt for h in plain]))
        worst_mmr = max(worst_mmr, _max_pair_cosine(embedder, [h.prompt for h in diverse]))
    assert worst_mmr < 0.95
    assert worst_mmr <= worst_plain


def _max_pair_cosine(embedder: OnnxMiniLMEmbedder, texts: list[str]) -> float:
    import numpy as np

    vectors = np.asarray(embedder.embed_documents(texts))
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -1.0)
    return float(similarity.max())


def test_an_index_refuses_another_embedding_model(embedder: OnnxMiniLMEmbedder, built_index: Path) -> None:
    index = EdgePromptIndex(built_index)
    with pytest.raises(IndexMismatchError, match="local:all-MiniLM-L6-v2"):
        index.open(IndexSpec("bedrock:amazon.titan-embed-text-v2:0", 1024), create=True)


def test_the_same_pipeline_runs_on_qdrant_client(
    embedder: OnnxMiniLMEmbedder, library_slice: list[str]
) -> None:
    index = QdrantClientPromptIndex(connect_qdrant(":memory:", None, 2.0), "prompts")
    summary = Ingestor(embedder, Bm25SparseEncoder(), index).ingest_rows(
        rows(library_slice[:300]), IngestOptions()
    )
    assert index.count() == summary.kept > 250
    hits = Retriever(embedder, Bm25SparseEncoder(), index).search("portrait of a woman", k=3)
    assert len(hits) == 3 and all("prompt" in hit.payload for hit in hits)
    index.close()


class CountingEmbedder:
    """The real embedder, counting query embeddings."""

    def __init__(self, inner: OnnxMiniLMEmbedder) -> None:
        self.inner, self.queries = inner, 0
        self.model_id, self.dimension = inner.model_id, inner.dimension

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> Vector:
        self.queries += 1
        return self.inner.embed_query(text)


def test_query_embeddings_are_cached(embedder: OnnxMiniLMEmbedder, built_index: Path) -> None:
    counting = CountingEmbedder(embedder)
    retriever = Retriever(counting, Bm25SparseEncoder(), EdgePromptIndex(built_index))
    try:
        first = retriever.search("a cozy cabin in the snow", k=3)
        again = retriever.search("a cozy cabin in the snow", k=3)
        retriever.search("a red fox", k=3)
    finally:
        retriever.close()
    assert [hit.id for hit in first] == [hit.id for hit in again]
    assert counting.queries == 2


class LoadRecordingEmbedder(CountingEmbedder):
    """The real embedder, recording when its load() ran relative to the index being open."""

    def __init__(self, inner: OnnxMiniLMEmbedder, index: EdgePromptIndex) -> None:
        super().__init__(inner)
        self.index: EdgePromptIndex = index
        self.loaded_with_index_open: bool | None = None

    def load(self) -> None:
        try:
            self.index.count()
        except IndexUnavailableError:
            self.loaded_with_index_open = False
        else:
            self.loaded_with_index_open = True
        self.inner.load()


def test_open_loads_a_local_embedder_before_the_index(
    embedder: OnnxMiniLMEmbedder, built_index: Path
) -> None:
    index = EdgePromptIndex(built_index)
    recording = LoadRecordingEmbedder(embedder, index)
    retriever = Retriever(recording, Bm25SparseEncoder(), index)
    try:
        retriever.open()
        assert recording.loaded_with_index_open is False  # loaded, and before the index opened
        assert index.count() > 0 and recording.queries == 0  # the index is open; loading is not a query
    finally:
        retriever.close()


class SlowLoadingEmbedder(CountingEmbedder):
    """The real embedder, with a load() as slow as a first load of the model."""

    def load(self) -> None:
        time.sleep(0.3)
        self.inner.load()


def test_threads_opening_at_once_share_one_open(embedder: OnnxMiniLMEmbedder, built_index: Path) -> None:
    """The warm start, /healthz and the index share may all open the retriever at once."""
    retriever = Retriever(SlowLoadingEmbedder(embedder), Bm25SparseEncoder(), EdgePromptIndex(built_index))
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            retriever.open()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(3)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert errors == []
        assert len(retriever.search("a cozy cabin in the snow", k=3)) == 3
    finally:
        retriever.close()
