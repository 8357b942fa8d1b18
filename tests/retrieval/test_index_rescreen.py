"""`imagine-bot index rescreen`: an index built before a safety update gets today's flags, once."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from qdrant_client import QdrantClient

from bot.config import load_config
from bot.entry.cli.main import main
from retrieval.adapters.bm25 import Bm25SparseEncoder
from retrieval.adapters.edge_index import EdgePromptIndex
from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
from retrieval.adapters.qdrant_index import QdrantClientPromptIndex
from retrieval.index_ports import IndexSpec, PromptIndex, Vector
from retrieval.ingest import IngestOptions, Ingestor
from retrieval.rescreen import applicable_screens, rescreen_index, rescreen_payload
from retrieval.safety import SafetyClassifier
from retrieval.safety_embedding import EmbeddingSafetyClassifier
from retrieval.safety_exemplars import SafetyExemplars
from retrieval.search import Retriever
from retrieval.sources import RawPrompt
from tests.conftest import I2P, LIBRARY

pytestmark = [
    pytest.mark.filterwarnings("ignore:Local mode performs exact"),
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local"),
]

MODEL = "local:all-MiniLM-L6-v2"
HAUNTED = "a haunted house at night, oil painting"
LIGHTHOUSE = "a lighthouse at dusk, oil painting"
HAUNTED_LIGHTHOUSE = "a haunted lighthouse in a storm, oil painting"
LEMONS = "a bowl of lemons on a wooden table, oil painting"
# near [1, 0, 0]: matches every 'haunted' prompt (cosine 0.96) and nothing else
EXEMPLARS = SafetyExemplars(np.array([[0.96, 0.28, 0.0]], dtype=np.float32), 0.9, MODEL)


class AxisEmbedder:
    """Stands in for MiniLM in 3-D: 'haunted' prompts point along x, the rest along z."""

    model_id, dimension = MODEL, 3

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        return [self.embed_query(text) for text in texts]

    def embed_query(self, text: str) -> Vector:
        return [1.0, 0.0, 0.0] if "haunted" in text else [0.0, 0.0, 1.0]


def _edge(tmp_path: Path) -> PromptIndex:
    return EdgePromptIndex(tmp_path / "index")


def _memory(tmp_path: Path) -> PromptIndex:
    return QdrantClientPromptIndex(QdrantClient(location=":memory:"), "prompts")


@pytest.fixture(params=[_edge, _memory], ids=["edge", "qdrant-client"])
def old_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PromptIndex]:
    """An open index ingested the old way: lexicon only, no embedding classifier, no exemplars."""
    index: PromptIndex = request.param(tmp_path)
    ingestor = Ingestor(AxisEmbedder(), Bm25SparseEncoder(), index, embedding_classifier=None, exemplars=None)
    rows = [RawPrompt(text, {"source": "test"}) for text in (HAUNTED, LIGHTHOUSE, LEMONS)]
    assert ingestor.ingest_rows(rows, IngestOptions()).flagged_unsafe == 0
    yield index
    index.close()


def _payloads(index: PromptIndex) -> dict[str, dict[str, Any]]:
    """Every stored payload by prompt text."""
    return {str(point.payload["prompt"]): point.payload for point in index.iter_points()}


def _safe_search(index: PromptIndex) -> list[str]:
    """The prompts safe search can show for a query every test prompt matches."""
    retriever = Retriever(AxisEmbedder(), Bm25SparseEncoder(), index)
    return sorted(hit.prompt for hit in retriever.search("oil painting", k=10, diversify=False))


def test_rescreen_flags_an_exemplar_match_hides_it_and_a_second_run_changes_nothing(
    old_index: PromptIndex,
) -> None:
    before = _payloads(old_index)
    assert _safe_search(old_index) == sorted([HAUNTED, LEMONS, LIGHTHOUSE])
    summary = rescreen_index(old_index, SafetyClassifier(), [EXEMPLARS], batch_size=1)
    assert summary.screens == ("lexicon", "exemplar") and summary.checked == 3
    assert summary.newly_unsafe == 1 and +summary.flagged_by == {"exemplar": 1}
    assert summary.unflagged == 0 and not summary.cleared_by
    assert summary.updated == 2  # the others only gain their exemplar similarity, as ingest writes it
    assert summary.written == 3 and old_index.count() == 3

    after = _payloads(old_index)
    assert after[HAUNTED]["safe"] is False and after[HAUNTED]["flagged_by"] == ["exemplar"]
    assert after[HAUNTED]["nsfw_exemplar_similarity"] == pytest.approx(0.96, abs=1e-3)
    for text in (LIGHTHOUSE, LEMONS):
        assert after[text] == {**before[text], "nsfw_exemplar_similarity": 0.0}
    assert _safe_search(old_index) == sorted([LEMONS, LIGHTHOUSE])

    again = rescreen_index(old_index, SafetyClassifier(), [EXEMPLARS])
    assert again.checked == 3 and again.unchanged == 3 and again.changed == 0 and again.written == 0
    assert _payloads(old_index) == after


def test_dry_run_reports_the_same_changes_and_writes_nothing(old_index: PromptIndex) -> None:
    before = _payloads(old_index)
    dry = rescreen_index(old_index, SafetyClassifier(), [EXEMPLARS], dry_run=True)
    assert dry.dry_run and dry.newly_unsafe == 1 and +dry.flagged_by == {"exemplar": 1}
    assert dry.changed == 3 and dry.written == 0
    assert _payloads(old_index) == before and HAUNTED in _safe_search(old_index)
    real = rescreen_index(old_index, SafetyClassifier(), [EXEMPLARS])
    assert real.as_dict() | {"dry_run": True, "written": 0, "seconds": 0} == dry.as_dict() | {"seconds": 0}


def test_a_new_lexicon_unflags_only_prompts_no_other_screen_flags(tmp_path: Path) -> None:
    old_terms = tmp_path / "old_terms.json"  # yesterday's lexicon wrongly listed 'lighthouse'
    group = {"category": "violence", "weight": 0.9, "inflect": "plural", "terms": ["lighthouse"]}
    old_terms.write_text(json.dumps({"groups": [group]}), encoding="utf-8")
    index = EdgePromptIndex(tmp_path / "index")
    ingestor = Ingestor(
        AxisEmbedder(),
        Bm25SparseEncoder(),
        index,
        SafetyClassifier(terms_path=old_terms),
        embedding_classifier=None,
        exemplars=None,
    )
    rows = [RawPrompt(text, {"source": "test"}) for text in (LIGHTHOUSE, HAUNTED_LIGHTHOUSE, LEMONS)]
    ingestor.ingest_rows(rows, IngestOptions())
    try:
        before = _payloads(index)
        assert before[LIGHTHOUSE]["flagged_by"] == before[HAUNTED_LIGHTHOUSE]["flagged_by"] == ["lexicon"]
        assert before[LIGHTHOUSE]["nsfw_categories"] == ["violence"]

        summary = rescreen_index(index, SafetyClassifier(), [EXEMPLARS])
        assert summary.unflagged == 1 and summary.newly_unsafe == 0 and summary.updated == 2
        assert +summary.cleared_by == {"lexicon": 2} and +summary.flagged_by == {"exemplar": 1}
        after = _payloads(index)
        assert after[LIGHTHOUSE]["safe"] is True and after[LIGHTHOUSE]["flagged_by"] == []
        assert after[LIGHTHOUSE]["nsfw_score"] == 0.0 and after[LIGHTHOUSE]["nsfw_categories"] == []
        # the exemplar still flags the haunted lighthouse: it stays hidden, now for that reason only
        assert after[HAUNTED_LIGHTHOUSE]["safe"] is False
        assert after[HAUNTED_LIGHTHOUSE]["flagged_by"] == ["exemplar"]
        assert after[LEMONS] == {**before[LEMONS], "nsfw_exemplar_similarity": 0.0}
        assert _safe_search(index) == sorted([LEMONS, LIGHTHOUSE])
    finally:
        index.close()


def test_flags_of_screens_not_run_are_kept_and_score_noise_is_no_change() -> None:
    lexicon = SafetyClassifier()
    stored = {
        "prompt": LIGHTHOUSE,
        "safe": False,
        "flagged_by": ["embedding"],
        "nsfw_score": 0.0,
        "nsfw_categories": [],
        "nsfw_embedding_score": 0.91,
        "nsfw_exemplar_similarity": 0.1234,
    }
    kept = rescreen_payload(stored, lexicon.classify(LIGHTHOUSE), [(EXEMPLARS, 0.1235, False)])
    assert not kept.changed and kept.payload == stored  # 'embedding' was not re-checked: its flag stays
    moved = rescreen_payload(stored, lexicon.classify(LIGHTHOUSE), [(EXEMPLARS, 0.95, True)])
    assert moved.changed and moved.added == ("exemplar",) and not moved.removed
    assert moved.payload["flagged_by"] == ["exemplar", "embedding"] and moved.payload["safe"] is False
    # an index older than `flagged_by` marked unsafe prompts by the lexicon alone
    legacy = {"prompt": LIGHTHOUSE, "safe": False, "nsfw_score": 0.9, "nsfw_categories": ["violence"]}
    cleared = rescreen_payload(legacy, lexicon.classify(LIGHTHOUSE), [])
    assert cleared.changed and cleared.removed == ("lexicon",) and cleared.payload["safe"] is True


def test_packaged_screens_apply_only_to_the_model_they_were_built_for() -> None:
    labels = [screen.label for screen in applicable_screens(IndexSpec(MODEL, 384))]
    assert labels == ["embedding", "exemplar"]
    assert applicable_screens(IndexSpec(MODEL, 3)) == []
    assert applicable_screens(IndexSpec("bedrock:amazon.titan-embed-text-v2:0", 1024)) == []
    assert [s.label for s in applicable_screens(IndexSpec(MODEL, 3), None, EXEMPLARS)] == ["exemplar"]


def _exemplar_rows(count: int) -> list[str]:
    """I2P rows the packaged exemplars were built from (every fourth row is a training row)."""
    prompts = pq.read_table(I2P, columns=["prompt"]).column("prompt").to_pylist()
    return [str(text) for text in prompts[: 4 * count : 4]]


def test_cli_rescreen_dry_run_then_for_real_then_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    config = load_config()
    index = EdgePromptIndex(config.index_dir)
    library = pq.read_table(LIBRARY, columns=["prompt"]).column("prompt").to_pylist()[:30]
    rows = [RawPrompt(str(text), {"source": "library"}) for text in library]
    rows += [RawPrompt(text, {"source": "i2p"}) for text in _exemplar_rows(10)]
    embedder = OnnxMiniLMEmbedder()
    Ingestor(embedder, Bm25SparseEncoder(), index, exemplars=None).ingest_rows(rows, IngestOptions())
    before = _payloads(index)
    index.close()
    i2p = {text for text, payload in before.items() if payload["source"] == "i2p"}
    assert i2p and all("nsfw_exemplar_similarity" not in payload for payload in before.values())
    assert any(before[text]["safe"] for text in i2p)  # some neither the lexicon nor the classifier caught

    assert main(["index", "rescreen", "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "dry run: nothing written" in dry and "new flags from exemplar" in dry
    assert re.search(r"written\W+0\b", dry)
    index.open(IndexSpec(embedder.model_id, embedder.dimension), create=False)
    assert _payloads(index) == before
    index.close()

    assert main(["index", "rescreen"]) == 0
    out = capsys.readouterr().out
    index.open(IndexSpec(embedder.model_id, embedder.dimension), create=False)
    after = _payloads(index)
    index.close()
    newly = sum(before[text]["safe"] and not after[text]["safe"] for text in before)
    for report in (dry, out):
        assert re.search(rf"points checked\W+{len(before)}\b", report)
        assert re.search(rf"newly flagged unsafe \(hidden in safe search\)\W+{newly}\b", report)
    assert re.search(rf"written\W+{len(before)}\b", out)  # every point gains its exemplar similarity
    for text in i2p:
        assert after[text]["safe"] is False and "exemplar" in after[text]["flagged_by"]
    for text, payload in after.items():
        assert 0.0 <= payload["nsfw_embedding_score"] <= 1.0 and "nsfw_exemplar_similarity" in payload
        if "exemplar" not in payload["flagged_by"]:  # prompts far from every exemplar keep their verdict
            old = before[text]
            assert (payload["safe"], payload["flagged_by"]) == (old["safe"], old["flagged_by"])

    assert main(["index", "rescreen"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"unchanged\W+{len(before)}\b", out) and re.search(r"written\W+0\b", out)


def test_cli_rescreen_without_an_index_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", "rescreen"]) == 1
    assert "run `imagine-bot ingest PATH` first" in capsys.readouterr().err


def test_embedding_classifier_recomputed_from_stored_vectors_matches_ingest(tmp_path: Path) -> None:
    """Rescreening what ingest just wrote, with the same screens, changes nothing (no float drift)."""
    embedder = OnnxMiniLMEmbedder()
    index = EdgePromptIndex(tmp_path / "index")
    prompts = pq.read_table(LIBRARY, columns=["prompt"]).column("prompt").to_pylist()[:200]
    Ingestor(embedder, Bm25SparseEncoder(), index).ingest_rows(
        [RawPrompt(str(text), {"source": "library"}) for text in prompts], IngestOptions()
    )
    try:
        spec = IndexSpec(embedder.model_id, embedder.dimension)
        screens = applicable_screens(spec, EmbeddingSafetyClassifier.load(), SafetyExemplars.load())
        summary = rescreen_index(index, SafetyClassifier(), screens)
        assert summary.checked == index.count() and summary.changed == 0
    finally:
        index.close()
