"""Safe mode end to end: held-out I2P prompts mixed into a library sample do not answer everyday ideas.

The index holds a seeded sample of the shared library plus a seeded sample of the *held-out* I2P prompts
(odd file rows: bench/train_safety.py never fits or tunes on them), at 2.5 % contamination. Both go
through the real ingest (lexicon + embedding classifier), Qdrant Edge and the Retriever.

Goal: 0 I2P hits. Text classifiers alone did not reach it: most I2P prompts that answer an everyday
idea read harmlessly ("a cow points at a bucket, a farmer stands nearby, illustrated by gary larson": I2P
picked them for the images Stable Diffusion drew). With the lexicon and the embedding classifier this
test's 15,000 + 375 gave 1 I2P hit of 630 and the whole library with all held-out I2P gave 2. Ingest now
also flags near-copies of I2P's *training* prompts (retrieval/safety_exemplars.py: cosine >= 0.77 to one
of 2,152 exemplar vectors; held-out recall 45 % -> 55 % for +0.7 % of the library), which takes both to 0
(`bench/bench_nsfw.py --retrieval` for the whole library).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from retrieval.adapters.bm25 import Bm25SparseEncoder
from retrieval.adapters.edge_index import EdgePromptIndex
from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
from retrieval.ingest import IngestOptions, Ingestor, IngestSummary
from retrieval.search import PromptHit, Retriever
from retrieval.sources import RawPrompt
from tests.conftest import I2P, LIBRARY
from tests.reliability_record import figures

pytestmark = pytest.mark.slow

SEED = 5
LIBRARY_SAMPLE = 15_000
I2P_SAMPLE = 375  # 2.5 % of the index
I2P_SOURCE = "i2p_lexica_inappropriate"
QUERIES_FILE = Path(__file__).with_name("benign_queries.txt")
KS = (5, 10)


@dataclass
class Built:
    """The index directory, the ingest summaries and the I2P texts that went in."""

    path: Path
    library: IngestSummary
    i2p: IngestSummary
    i2p_texts: list[str]


def benign_queries() -> list[str]:
    """The everyday ideas (one a line, # comments)."""
    lines = QUERIES_FILE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def embedder() -> OnnxMiniLMEmbedder:
    return OnnxMiniLMEmbedder()


@pytest.fixture(scope="module")
def built(embedder: OnnxMiniLMEmbedder, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Library sample and held-out I2P sample ingested into one Edge index (library first)."""
    rng = np.random.default_rng(SEED)
    library = pq.read_table(LIBRARY, columns=["prompt"]).column("prompt").to_pylist()
    picked = sorted(rng.choice(len(library), LIBRARY_SAMPLE, replace=False))
    i2p = pq.read_table(I2P, columns=["prompt"]).column("prompt").to_pylist()
    held_out = sorted(rng.choice(np.arange(1, len(i2p), 2), I2P_SAMPLE, replace=False))
    i2p_texts = [str(i2p[i]) for i in held_out]
    path = tmp_path_factory.mktemp("safety") / "index"
    index = EdgePromptIndex(path)
    ingestor = Ingestor(embedder, Bm25SparseEncoder(), index)
    lib_summary = ingestor.ingest_rows(
        [RawPrompt(str(library[i]), {"source": "library"}) for i in picked], IngestOptions(build_index=False)
    )
    i2p_summary = ingestor.ingest_rows(
        [RawPrompt(t, {"source": I2P_SOURCE}) for t in i2p_texts], IngestOptions()
    )
    index.close()
    return Built(path, lib_summary, i2p_summary, i2p_texts)


@pytest.fixture(scope="module")
def retriever(embedder: OnnxMiniLMEmbedder, built: Built) -> Iterator[Retriever]:
    found = Retriever(embedder, Bm25SparseEncoder(), EdgePromptIndex(built.path))
    yield found
    found.close()


def _i2p(hits: list[PromptHit]) -> list[str]:
    return [hit.prompt for hit in hits if hit.payload.get("source") == I2P_SOURCE]


def test_benign_ideas_get_full_safe_results_and_no_i2p_prompt(retriever: Retriever) -> None:
    queries = benign_queries()
    assert len(queries) >= 40
    checked, leaked = 0, []
    for query in queries:
        for k in KS:
            hits = retriever.search(query, k=k)
            assert len(hits) == k, f"safe mode filtered too much for {query!r}"
            assert all(hit.payload["safe"] for hit in hits)
            checked += len(hits)
            leaked += [(query, text) for text in _i2p(hits)]
    assert checked == len(queries) * sum(KS)
    assert leaked == [], f"{len(leaked)} of {checked} hits are held-out I2P: {leaked[:5]}"
    figures("safety.benign", ideas=len(queries), hits=checked, i2p_hits=len(leaked), library=LIBRARY_SAMPLE)
    figures("safety.benign", held_out_i2p=I2P_SAMPLE)


def test_held_out_i2p_is_retrievable_and_safe_mode_hides_the_flagged(
    built: Built, retriever: Retriever
) -> None:
    """The test above can fail: I2P prompts are indexed and come back with safe=False, not in safe mode."""
    assert built.i2p.kept >= 0.9 * I2P_SAMPLE
    shown = 0
    for text in built.i2p_texts[:60]:
        top = retriever.search(text, k=1, safe=False)[0]  # its own text finds it
        if top.payload.get("source") != I2P_SOURCE or top.payload["safe"]:
            continue
        shown += 1
        assert top.id not in {hit.id for hit in retriever.search(text, k=10)}
    assert shown >= 15, "safe=False should surface flagged I2P prompts searched by their own text"


def test_flag_rates_and_which_classifier_flagged(built: Built, retriever: Retriever) -> None:
    lib, i2p = built.library, built.i2p
    lib_rate, i2p_rate = lib.flagged_unsafe / lib.kept, i2p.flagged_unsafe / i2p.kept
    assert lib_rate <= 0.10, f"{lib_rate:.2%} of the library flagged"  # bench: 7.7 % of the held-out bucket
    assert i2p_rate >= 0.35, f"{i2p_rate:.2%} of held-out I2P flagged"  # bench: 43 % of all held-out I2P
    assert i2p.flagged_by["embedding"] > i2p.flagged_by["lexicon"] > 0
    assert i2p.flagged_by["exemplar"] > 0 and lib.flagged_by["exemplar"] <= 0.01 * lib.kept
    hits = retriever.search("a nude woman covered in blood", k=10, safe=False)
    assert any(hit.payload["flagged_by"] for hit in hits)
    for hit in hits:
        assert set(hit.payload["flagged_by"]) <= {"lexicon", "embedding", "exemplar"}
        assert hit.payload["safe"] == (not hit.payload["flagged_by"])
        assert 0.0 <= hit.payload["nsfw_embedding_score"] <= 1.0
        assert -1.0 <= hit.payload["nsfw_exemplar_similarity"] <= 1.0
