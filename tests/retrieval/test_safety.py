"""Tests of retrieval.safety (lexicon) and retrieval.safety_embedding, and how ingest applies both."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.adapters.bm25 import Bm25SparseEncoder
from retrieval.adapters.edge_index import EdgePromptIndex
from retrieval.index_ports import Vector
from retrieval.ingest import IngestOptions, Ingestor
from retrieval.safety import CATEGORIES, SafetyClassifier, SafetyVerdict
from retrieval.safety_embedding import EmbeddingSafetyClassifier
from retrieval.search import Retriever
from retrieval.sources import RawPrompt
from tests.conftest import I2P, LIBRARY

# Measured with the packaged lexicon (threshold 0.5): recall 0.234 on all 895 I2P "sexual" prompts and
# 0.097 on the 710 "violence" ones; 2.74 % of the first 5,000 library prompts flagged (that slice holds
# DiffusionDB and krea Discord prompts, some of them really NSFW). Floors and ceiling leave a margin.
SEXUAL_RECALL_FLOOR = 0.20
VIOLENCE_RECALL_FLOOR = 0.07
LIBRARY_FLAG_CEILING = 0.035


@pytest.fixture(scope="module")
def clf() -> SafetyClassifier:
    return SafetyClassifier()


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("a nude woman on a beach", "sexual"),
        ("NAKED man, oil painting", "sexual"),
        ("topless model, 8k photo", "sexual"),
        ("explicit porn scene", "sexual"),
        ("nsfw, highly detailed", "sexual"),
        ("beautiful woman in lingerie lying on her bed", "sexual"),
        ("sexy girl in a bikini, seductive pose", "sexual"),
        ("couple making love in the moonlight", "sexual"),
        ("a girl undressing in front of a mirror", "sexual"),
        ("a 12 year old girl in a bikini", "minors"),
        ("1 2 - year - old girl, sexy pose", "minors"),
        ("teen girl in lingerie", "minors"),
        ("loli anime art", "minors"),
        ("decapitated body in a pool of blood", "violence"),
        ("a man shot in the head, photo", "violence"),
        ("soldiers torturing a prisoner", "violence"),
        ("gore, corpses everywhere, horror art", "violence"),
        ("woman with blood dripping from her mouth", "violence"),
        ("two men in a bloody fistfight", "violence"),
        ("a girl cutting her wrists in the bathroom", "self_harm"),
        ("man hanging himself from a tree", "self_harm"),
        ("portrait of a suicidal teenager", "self_harm"),
        ("kkk rally at night, photo", "hate"),
        ("heil hitler, propaganda poster", "hate"),
        ("a man snorting cocaine in a club", "drugs"),
    ],
)
def test_unsafe_terms_are_flagged_with_category(clf: SafetyClassifier, text: str, category: str) -> None:
    verdict = clf.classify(text)
    assert verdict.unsafe, verdict
    assert category in verdict.categories
    assert 0.5 <= verdict.score <= 1.0
    assert clf.is_unsafe(text)


@pytest.mark.parametrize(
    "text",
    [
        "nude lipstick on a fashion model, studio photo",
        "a nude pink color palette, minimalist interior",
        "nude tones, beige and cream, product shot",
        "blood orange on a marble table, food photography",
        "a blood moon over the mountains",
        "close up shot of a hummingbird, 85mm lens",
        "fashion photo shoot on a rooftop, golden hour",
        "a shooting star over the desert at night",
        "killer whale jumping out of the ocean",
        "portrait of david lynch, black and white",
        "moby dick painting, stormy sea",
        "chicken breasts grilled on a barbecue",
        "a bottomless pit in a fantasy cave",
        "portrait of a woman, no nudity, renaissance style",
        "summa cum laude graduation photo",
        "bikini atoll island from the air",
        "a cat sleeping in a cozy bed",
        "brawl stars character concept art",
        "street fighter ryu, pixel art",
        "a sword fight between two knights, fantasy art",
        "graceful ballet dancer on a stage, soft light",
        "Essex countryside in the rain, watercolor",
        "therapist office with plants, calm mood",
        "a cocktail glass, grapefruit slice, studio light",
    ],
)
def test_benign_look_alikes_are_not_flagged(clf: SafetyClassifier, text: str) -> None:
    verdict = clf.classify(text)
    assert not verdict.unsafe, verdict
    assert verdict.categories == ()


@pytest.mark.parametrize(
    "text",
    ["n*de woman on a beach", "s3xy girl, s3x appeal", "p0rn star", "n u d e beach", "nuuude woman", "NÜDE"],
)
def test_common_obfuscations_are_caught(clf: SafetyClassifier, text: str) -> None:
    assert clf.classify(text).categories[:1] == ("sexual",)


def test_inflections_and_plurals(clf: SafetyClassifier) -> None:
    for text in ("nudes", "nipples", "corpses piled up", "stabbing", "stabbed", "murderers", "orgies"):
        assert clf.is_unsafe(text), text


def test_weak_terms_need_company(clf: SafetyClassifier) -> None:
    assert not clf.is_unsafe("a woman in a bikini on the beach at sunset")
    assert clf.is_unsafe("a seductive woman in a bikini on the beach at sunset")
    assert not clf.is_unsafe("a knight fighting a dragon")
    assert not clf.is_unsafe("a baby lying in a hospital bed")  # minor + bed is not sexual evidence


def test_extra_terms_form_a_workspace_denylist() -> None:
    clf = SafetyClassifier(extra_terms=["Project Falcon", "clown", "blood orange"])
    verdict = clf.classify("a poster for project falcon, minimal design")
    assert verdict.unsafe and verdict.categories == ("workspace",) and verdict.score == 1.0
    assert clf.is_unsafe("three scary clowns at a birthday party")
    assert clf.is_unsafe("blood orange on a table")  # a workspace term beats a built-in suppressor
    assert not SafetyClassifier().is_unsafe("a poster for project falcon, minimal design")


def test_threshold_moves_the_cut() -> None:
    text = "a woman in a bikini on the beach"
    strict, lax = SafetyClassifier(threshold=0.3), SafetyClassifier(threshold=0.9)
    assert strict.is_unsafe(text) and not lax.is_unsafe(text)
    assert strict.classify(text).score == lax.classify(text).score
    with pytest.raises(ValueError, match="threshold"):
        SafetyClassifier(threshold=0.0)


def test_custom_terms_file(tmp_path: Path) -> None:
    path = tmp_path / "terms.json"
    path.write_text(json.dumps({"groups": [{"category": "hate", "weight": 0.8, "terms": ["grumpkin"]}]}))
    clf = SafetyClassifier(terms_path=path)
    assert clf.classify("two grumpkins").categories == ("hate",)
    assert not clf.is_unsafe("a nude woman")
    path.write_text(json.dumps({"groups": [{"category": "nonsense", "weight": 0.8, "terms": ["x"]}]}))
    with pytest.raises(ValueError, match="unknown safety category"):
        SafetyClassifier(terms_path=path)


def test_verdict_shape(clf: SafetyClassifier) -> None:
    assert clf.classify("") == SafetyVerdict(0.0, (), False)
    verdict = clf.classify("gore and blood, a nude figure")
    assert set(verdict.categories) <= set(CATEGORIES)
    assert verdict.categories[0] in ("sexual", "violence")
    assert "nude" in verdict.matched


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_classify_never_raises(text: str) -> None:
    verdict = SAFE_CLF.classify(text)
    assert 0.0 <= verdict.score <= 1.0
    assert verdict.unsafe == (verdict.score >= SAFE_CLF.threshold)
    assert verdict.unsafe == bool(verdict.categories)


SAFE_CLF = SafetyClassifier()


@pytest.mark.slow
def test_quality_on_shared_data(clf: SafetyClassifier) -> None:
    rows = pq.read_table(I2P, columns=["prompt", "extra"]).to_pylist()
    cats = [json.loads(r["extra"])["categories"] for r in rows]
    sexual = [str(r["prompt"]) for r, c in zip(rows, cats, strict=True) if "sexual" in c]
    violence = [str(r["prompt"]) for r, c in zip(rows, cats, strict=True) if "violence" in c]
    assert len(sexual) == 895 and len(violence) == 710
    assert sum(map(clf.is_unsafe, sexual)) / len(sexual) >= SEXUAL_RECALL_FLOOR
    assert sum(map(clf.is_unsafe, violence)) / len(violence) >= VIOLENCE_RECALL_FLOOR

    library = [str(p) for p in pq.read_table(LIBRARY, columns=["prompt"])["prompt"].to_pylist()[:5000]]
    flagged = sum(map(clf.is_unsafe, library))
    assert flagged / len(library) <= LIBRARY_FLAG_CEILING  # throughput is measured in bench/bench_nsfw.py


# ------------------------------------------------------------------------------------- embedding classifier


@pytest.fixture(scope="module")
def packaged() -> EmbeddingSafetyClassifier:
    return EmbeddingSafetyClassifier.load()


def test_packaged_weights_carry_their_provenance(packaged: EmbeddingSafetyClassifier) -> None:
    assert packaged.applies_to("local:all-MiniLM-L6-v2", 384)
    assert not packaged.applies_to("bedrock:amazon.titan-embed-text-v2:0", 1024)
    assert 0.0 < packaged.threshold < 1.0
    prov = packaged.provenance
    assert {"trained", "script", "data", "split", "seed", "train", "threshold_rule", "metrics"} <= set(prov)
    assert prov["data"]["positives"]["file"] == I2P.name
    assert prov["data"]["negatives"]["file"] == LIBRARY.name
    assert "odd rows held out" in prov["split"]
    held_out = {row["category"]: row for row in prov["metrics"]["held_out_i2p_recall"]}
    assert held_out["any"]["either"] > held_out["any"]["lexicon"]
    assert prov["metrics"]["library_held_out"]["either"] <= 0.10
    assert EmbeddingSafetyClassifier.from_dict(packaged.to_dict()) == packaged


def test_scores_follow_the_weights(packaged: EmbeddingSafetyClassifier) -> None:
    toward = unit(packaged.weights)
    verdicts = packaged.classify_vectors([toward, [-x for x in toward]])
    assert verdicts[0].unsafe and verdicts[0].score > packaged.threshold
    assert not verdicts[1].unsafe and verdicts[1].score < 0.5
    with pytest.raises(ValueError, match="dimension 384"):
        packaged.scores([[0.0] * 10])


def test_bad_weight_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.json"
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not an embedding safety classifier"):
        EmbeddingSafetyClassifier.load(path)
    good = EmbeddingSafetyClassifier((1.0, 0.0), 0.0, 0.5, "m").to_dict()
    path.write_text(json.dumps({**good, "threshold": 1.5}))
    with pytest.raises(ValueError, match="threshold"):
        EmbeddingSafetyClassifier.load(path)
    path.write_text(json.dumps({key: value for key, value in good.items() if key != "bias"}))
    with pytest.raises(ValueError, match="incomplete"):
        EmbeddingSafetyClassifier.load(path)


def unit(values: Sequence[float]) -> list[float]:
    norm = sum(v * v for v in values) ** 0.5
    return [v / norm for v in values]


class DirectionEmbedder:
    """Stands in for MiniLM: prompts containing 'ominous' point along the classifier's weights."""

    def __init__(self, weights: Sequence[float], model_id: str = "local:all-MiniLM-L6-v2") -> None:
        self.model_id, self.dimension = model_id, len(weights)
        self._unsafe = unit(weights)
        self.calls = 0

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        self.calls += 1
        return [self.embed_query(text) for text in texts]

    def embed_query(self, text: str) -> Vector:
        sign = 1.0 if "ominous" in text else -1.0
        return [sign * x for x in self._unsafe]


PROMPTS = [
    "an ominous figure in a doorway, oil painting",  # embedding only
    "a nude woman on a beach, ominous sky",  # lexicon and embedding
    "a nude woman on a beach at sunset",  # lexicon only
    "a lighthouse at dusk, oil painting",  # neither
]


def ingest(
    embedder: DirectionEmbedder, path: Path, *, drop_unsafe: bool = False
) -> tuple[Retriever, dict[str, Any]]:
    index = EdgePromptIndex(path)
    summary = Ingestor(embedder, Bm25SparseEncoder(), index).ingest_rows(
        [RawPrompt(text, {"source": "test"}) for text in PROMPTS], IngestOptions(drop_unsafe=drop_unsafe)
    )
    return Retriever(embedder, Bm25SparseEncoder(), index), summary.as_dict()


def test_ingest_flags_by_either_classifier_and_records_which(
    packaged: EmbeddingSafetyClassifier, tmp_path: Path
) -> None:
    embedder = DirectionEmbedder(packaged.weights)
    retriever, summary = ingest(embedder, tmp_path / "index")
    assert embedder.calls == 1  # the vectors ingest computes are the ones scored: no second pass
    assert summary["flagged_unsafe"] == 3
    assert summary["flagged_by"] == {"lexicon": 2, "embedding": 2}
    hits = {hit.prompt: hit.payload for hit in retriever.search("painting beach", k=10, safe=False)}
    assert [hits[p]["flagged_by"] for p in PROMPTS] == [
        ["embedding"],
        ["lexicon", "embedding"],
        ["lexicon"],
        [],
    ]
    assert [hits[p]["safe"] for p in PROMPTS] == [False, False, False, True]
    assert (
        hits[PROMPTS[0]]["nsfw_embedding_score"]
        >= packaged.threshold
        > hits[PROMPTS[3]]["nsfw_embedding_score"]
    )
    assert [hit.prompt for hit in retriever.search("painting beach", k=10)] == [PROMPTS[3]]
    retriever.close()


def test_drop_unsafe_drops_what_either_flags(packaged: EmbeddingSafetyClassifier, tmp_path: Path) -> None:
    retriever, summary = ingest(DirectionEmbedder(packaged.weights), tmp_path / "index", drop_unsafe=True)
    assert summary["kept"] == 1 and summary["embedded"] == 1
    assert summary["dropped"]["unsafe"] == 3 and summary["read"] == 4
    retriever.close()


def test_other_embedding_models_get_the_lexicon_only(
    packaged: EmbeddingSafetyClassifier, tmp_path: Path
) -> None:
    embedder = DirectionEmbedder(packaged.weights, model_id="local:another-model")
    retriever, summary = ingest(embedder, tmp_path / "index")
    assert summary["flagged_by"] == {"lexicon": 2}
    hits = retriever.search("ominous figure", k=10, safe=False)
    assert all("nsfw_embedding_score" not in hit.payload for hit in hits)
    retriever.close()
