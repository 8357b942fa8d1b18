"""Known-unsafe exemplars: the packaged file, near-copy matching, and ingest flagging by exemplar."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from retrieval.adapters.bm25 import Bm25SparseEncoder
from retrieval.adapters.edge_index import EdgePromptIndex
from retrieval.index_ports import Vector
from retrieval.ingest import IngestOptions, Ingestor
from retrieval.safety_exemplars import SafetyExemplars
from retrieval.search import Retriever
from retrieval.sources import RawPrompt
from tests.conftest import I2P

MODEL = "local:all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def packaged() -> SafetyExemplars:
    return SafetyExemplars.load()


def test_packaged_exemplars_carry_their_provenance(packaged: SafetyExemplars) -> None:
    assert packaged.applies_to(MODEL, 384)
    assert not packaged.applies_to("bedrock:amazon.titan-embed-text-v2:0", 1024)
    assert 2000 <= len(packaged.vectors) <= 2300  # I2P's even rows that survive cleaning
    assert 0.7 <= packaged.threshold <= 0.95
    prov = packaged.provenance
    assert prov["source"]["file"] == I2P.name and prov["source"]["rows"] == "even"
    held_out = prov["metrics"]["held_out_i2p_recall"]
    assert held_out["after"] > held_out["before"]
    library = prov["metrics"]["held_out_library_flagged"]
    assert library["after"] - library["before"] <= 0.01
    norms = np.linalg.norm(packaged.vectors, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-2)  # float16 storage keeps them unit length


def test_an_exemplar_and_its_near_copies_match_and_a_far_vector_does_not(packaged: SafetyExemplars) -> None:
    exemplar = packaged.vectors[0]
    rng = np.random.default_rng(3)
    nudged = exemplar + 0.02 * rng.standard_normal(exemplar.shape).astype(np.float32)
    nudged /= np.linalg.norm(nudged)
    far = -exemplar
    screened = packaged.screen([exemplar, nudged, far])
    assert [flag for _, flag in screened] == [True, True, False]
    assert screened[0][0] == pytest.approx(1.0, abs=2e-3)
    with pytest.raises(ValueError, match="dimension 384"):
        packaged.similarities([[0.0] * 10])


def test_save_and_load_round_trip_and_bad_files(tmp_path: Path) -> None:
    vectors = np.eye(3, dtype=np.float32)
    made = SafetyExemplars(vectors, 0.9, "m", {"note": "unit test"})
    path = tmp_path / "exemplars.npz"
    made.save(path)
    loaded = SafetyExemplars.load(path)
    assert loaded.threshold == 0.9 and loaded.model_id == "m" and loaded.provenance == {"note": "unit test"}
    assert np.array_equal(loaded.vectors, vectors)
    np.savez(path, vectors=vectors)
    with pytest.raises(ValueError, match="not a safety exemplar file"):
        SafetyExemplars.load(path)
    with pytest.raises(ValueError, match="threshold"):
        SafetyExemplars(vectors, 1.5, "m")
    with pytest.raises(ValueError, match="non-empty"):
        SafetyExemplars(np.zeros((0, 3), dtype=np.float32), 0.9, "m")


class AxisEmbedder:
    """Stands in for MiniLM in 3-D: 'haunted' prompts point along x, the rest along z."""

    model_id, dimension = MODEL, 3

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        return [self.embed_query(text) for text in texts]

    def embed_query(self, text: str) -> Vector:
        return [1.0, 0.0, 0.0] if "haunted" in text else [0.0, 0.0, 1.0]


PROMPTS = ["a haunted house at night, oil painting", "a lighthouse at dusk, oil painting"]


def test_ingest_flags_near_copies_of_exemplars_and_says_so(tmp_path: Path) -> None:
    exemplars = SafetyExemplars(np.array([[0.96, 0.28, 0.0]], dtype=np.float32), 0.9, MODEL)
    index = EdgePromptIndex(tmp_path / "index")
    ingestor = Ingestor(AxisEmbedder(), Bm25SparseEncoder(), index, exemplars=exemplars)
    summary = ingestor.ingest_rows([RawPrompt(text, {"source": "test"}) for text in PROMPTS], IngestOptions())
    assert +summary.flagged_by == {"exemplar": 1} and summary.flagged_unsafe == 1
    retriever = Retriever(AxisEmbedder(), Bm25SparseEncoder(), index)
    hits = {hit.prompt: hit.payload for hit in retriever.search("oil painting", k=5, safe=False)}
    assert hits[PROMPTS[0]]["flagged_by"] == ["exemplar"] and not hits[PROMPTS[0]]["safe"]
    assert hits[PROMPTS[0]]["nsfw_exemplar_similarity"] == pytest.approx(0.96, abs=1e-3)
    assert hits[PROMPTS[1]]["safe"] and hits[PROMPTS[1]]["nsfw_exemplar_similarity"] == 0.0
    assert [hit.prompt for hit in retriever.search("oil painting", k=5)] == [PROMPTS[1]]
    retriever.close()


def test_exemplars_of_another_model_are_skipped(tmp_path: Path) -> None:
    exemplars = SafetyExemplars(np.array([[1.0, 0.0, 0.0]], dtype=np.float32), 0.9, "local:another-model")
    index = EdgePromptIndex(tmp_path / "index")
    summary = Ingestor(AxisEmbedder(), Bm25SparseEncoder(), index, exemplars=exemplars).ingest_rows(
        [RawPrompt(text, {"source": "test"}) for text in PROMPTS], IngestOptions()
    )
    assert summary.flagged_unsafe == 0 and "exemplar" not in summary.flagged_by
    index.close()
