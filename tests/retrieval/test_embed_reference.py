"""The int8 ONNX MiniLM against the original fp32 all-MiniLM-L6-v2, from vectors stored in tests' data.

tests/retrieval/data/minilm_reference.npz holds 186 texts (library prompts, prompts past 128 and 256 tokens,
ideas, short queries, typos, odd inputs) and the original model's vectors, made by
bench/make_reference_vectors.py in a throwaway venv with torch; this test needs neither torch nor the
network. Floors were set from the measurement on 2026-12-06 (onnxruntime 1.32.0) with a margin: per-text
cosine min 0.99847 and mean 0.99952; query→document ranking over the 60 queries and 118 library texts: top-1
agreement 0.95, reference top-1 at most second in ours, overlap@5 0.98. A wrong truncation (128 tokens: min
0.758), CLS pooling (mean 0.578) or padding counted in the mean (min 0.596) fails them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder

REFERENCE = Path(__file__).resolve().parent / "data" / "minilm_reference.npz"
MIN_COSINE = 0.997
MEAN_COSINE = 0.999
TOP1_AGREEMENT = 0.9
OVERLAP_AT_5 = 0.95
WORST_RANK = 2  # the reference's best document is at most third among ours
QUERY_KINDS = ("idea", "query", "typo")
DOCUMENT_KINDS = ("library", "long")

Floats = npt.NDArray[np.float32]


@pytest.fixture(scope="module")
def reference() -> tuple[list[str], list[str], Floats]:
    """The stored texts, their kinds and the original model's vectors."""
    with np.load(REFERENCE, allow_pickle=False) as data:
        return [str(t) for t in data["texts"]], [str(k) for k in data["kinds"]], data["vectors"]


@pytest.fixture(scope="module")
def ours(reference: tuple[list[str], list[str], Floats]) -> Floats:
    """Our int8 embedder's document vectors of the same texts (batched, sorted by length)."""
    texts, _, _ = reference
    return OnnxMiniLMEmbedder(threads=2).embed_documents_array(texts)


def test_reference_file_is_what_the_floors_were_set_on(
    reference: tuple[list[str], list[str], Floats],
) -> None:
    texts, kinds, vectors = reference
    with np.load(REFERENCE, allow_pickle=False) as data:
        about = json.loads(str(data["about"]))

    assert vectors.shape == (186, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "library": 100,
        "long": 18,
        "idea": 24,
        "query": 16,
        "typo": 20,
        "odd": 8,
    }
    assert len(set(texts)) == len(texts)
    assert about["max_seq_length"] == 256 and "fp32" in about["model"]


def test_each_vector_matches_the_original_model(
    reference: tuple[list[str], list[str], Floats], ours: Floats
) -> None:
    texts, _, expected = reference

    cosines = np.sum(ours.astype(np.float64) * expected, axis=1)
    nearest = np.argmax(ours @ expected.T, axis=1)

    worst = int(np.argmin(cosines))
    assert cosines.min() >= MIN_COSINE, f"{cosines.min():.5f} for {texts[worst]!r}"
    assert cosines.mean() >= MEAN_COSINE, f"mean {cosines.mean():.5f}"
    assert (nearest == np.arange(len(texts))).all()  # same order: each text is nearest its own reference


def test_a_query_is_embedded_as_the_same_text_in_a_batch(
    reference: tuple[list[str], list[str], Floats], ours: Floats
) -> None:
    texts, kinds, expected = reference
    embedder = OnnxMiniLMEmbedder(threads=2)
    picks = [i for i, k in enumerate(kinds) if k in ("typo", "odd")]

    single = np.stack([embedder.embed_query_array(texts[i]) for i in picks])

    assert np.sum(single * expected[picks], axis=1).min() >= MIN_COSINE
    assert np.abs(single - ours[picks]).max() < 1e-5


def test_query_to_document_ranking_agrees_with_the_original(
    reference: tuple[list[str], list[str], Floats], ours: Floats
) -> None:
    _, kinds, expected = reference
    queries = [i for i, k in enumerate(kinds) if k in QUERY_KINDS]
    documents = [i for i, k in enumerate(kinds) if k in DOCUMENT_KINDS]
    want = expected[queries] @ expected[documents].T
    got = ours[queries] @ ours[documents].T

    want_order, got_order = np.argsort(-want, axis=1), np.argsort(-got, axis=1)
    top1 = float(np.mean(want_order[:, 0] == got_order[:, 0]))
    ranks = [int(np.flatnonzero(got_order[q] == want_order[q, 0])[0]) for q in range(len(queries))]
    overlap = float(
        np.mean([len(set(want_order[q, :5]) & set(got_order[q, :5])) / 5 for q in range(len(queries))])
    )

    assert (len(queries), len(documents)) == (60, 118)
    assert top1 >= TOP1_AGREEMENT, top1
    assert max(ranks) <= WORST_RANK, ranks
    assert overlap >= OVERLAP_AT_5, overlap
