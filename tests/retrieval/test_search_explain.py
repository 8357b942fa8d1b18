"""`Retriever.search(..., explain=True)`, the craft prior backfill, and the hits' phrases worth borrowing."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.adapters.bm25 import Bm25SparseEncoder
from retrieval.adapters.edge_index import EdgePromptIndex
from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
from retrieval.cleaning import point_id
from retrieval.craft import CRAFT_VERSION, borrowable_phrases
from retrieval.index_ports import IndexPoint, IndexSpec
from retrieval.reprior import reprior_index
from retrieval.search import DEFAULT_RANKING, PLAIN, Retriever

IDEA = "a cartoon of a little dog"


def test_explain_gives_scores_and_ranks_under_each_lever(retriever: Retriever) -> None:
    hits = retriever.search(IDEA, k=5, explain=True)
    plain = retriever.search(IDEA, k=5)
    assert [h.id for h in hits] == [h.id for h in plain]  # explaining changes nothing
    for rank, hit in enumerate(hits, 1):
        why = hit.explanation
        assert why is not None and why.rank == rank
        assert why.score == hit.score
        weights = DEFAULT_RANKING
        craft = weights.craft_weight * why.craft * why.craft_boosted
        expected = why.relevance + craft + weights.coverage_weight * why.coverage
        assert why.score == pytest.approx(expected, abs=1e-6)
        assert 0.0 <= why.craft <= 1.0 and 0.0 <= why.coverage <= 1.0
        assert why.rank_by_relevance >= 1 and why.rank_after_craft >= 1
        assert why.moved_by in {"relevance", "craft", "coverage"}
        assert set(why.covered) <= {"cartoon", "little", "dog"}
        assert why.query == IDEA  # nothing in the alias lexicon
        assert hit.as_dict()["explanation"]["rank"] == rank
    assert any(h.explanation and h.explanation.moved_by != "relevance" for h in hits)
    # the craft prior counts only for the hits covering about as much of the idea as the best candidate
    whys = [h.explanation for h in hits if h.explanation]
    counted = [w.coverage for w in whys if w.craft_boosted]
    assert counted and max((w.coverage for w in whys if not w.craft_boosted), default=-1.0) < min(counted)
    assert plain[0].explanation is None and "explanation" not in plain[0].as_dict()


def test_default_hits_are_more_crafted_than_plain_dense(retriever: Retriever) -> None:
    default = retriever.search(IDEA, k=5, explain=True)
    dense = retriever.search(IDEA, k=5, ranking=PLAIN, explain=True)
    crafted = sum(bool(h.explanation and h.explanation.crafted) for h in default)
    assert crafted > sum(bool(h.explanation and h.explanation.crafted) for h in dense)
    assert all(
        h.payload.get("source") == "test" for h in default
    )  # the chosen hits carry their whole payload
    assert all(borrowable_phrases(h.prompt) for h in default if h.explanation and h.explanation.crafted)


def test_backfill_stores_the_prior_once(tmp_path: Path) -> None:
    embedder, sparse = OnnxMiniLMEmbedder(), Bm25SparseEncoder()
    texts = ["a fox in the snow", "a fox in the snow, watercolor, soft light, by beatrix potter, 8k"]
    index = EdgePromptIndex(tmp_path / "index")
    index.open(IndexSpec(embedder.model_id, embedder.dimension), create=True)
    old = [  # as an index built before the craft prior stored them
        IndexPoint(point_id(t), v, sparse.encode_document(t), {"prompt": t, "safe": True})
        for t, v in zip(texts, embedder.embed_documents(texts), strict=True)
    ]
    index.upsert(old)
    first = reprior_index(index)
    assert (first.checked, first.written) == (2, 2)
    payloads = index.payloads([p.id for p in old])
    assert [payloads[p.id]["craft"] for p in old] == [0.0, 0.8]
    assert all(payloads[p.id]["craft_version"] == CRAFT_VERSION for p in old)
    assert all(
        payloads[p.id]["safe"] is True and payloads[p.id]["prompt"] == p.payload["prompt"] for p in old
    )
    assert reprior_index(index).written == 0
    index.close()
