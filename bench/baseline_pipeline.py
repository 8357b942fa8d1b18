"""The steps of the AWS sample's pipeline and of ours that bench_baseline.py runs, each in a fresh process.

Baseline, as in aws-samples/stable-diffusion-prompt-rag's imgrag_prep.py / imgrag_lib.py (see
bench_baseline.py for what is reproduced and what differs on purpose). Each step takes a JSON-able config
and returns a JSON-able result, including its own peak RSS (VmHWM).
"""

from __future__ import annotations

import csv
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import Timer

SAMPLE = "aws-samples/stable-diffusion-prompt-rag"
MIN_WORDS = 10  # imgrag_prep.py: filter_strings_with_word_count
THRESHOLD = 10  # imgrag_prep.py: similarity_threshold
KEEP = 1000  # imgrag_prep.py: prompts_unique[0:1000]
BASELINE_K = 4  # LangChain's default k of similarity_search
IDEAS = ("a cartoon of a little dog", "a cozy cabin in a snowy forest at night", "logo for a coffee shop")
EXTRAS = ("faiss", "langchain_community", "Levenshtein")


def missing_extras() -> list[str]:
    """The optional `bench` extra's modules that are not importable."""
    import importlib.util

    return [name for name in EXTRAS if importlib.util.find_spec(name) is None]


def vm_hwm_mb() -> float:
    """Peak RSS of this process (VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ------------------------------------------------------------------------------------------ the sample


def first_rows(library: Path, rows: int) -> list[str]:
    """`raw_df['prompt'][0:rows]` of the library (pyarrow instead of pandas; same rows, same order)."""
    import pyarrow.parquet as pq

    table = pq.read_table(library, columns=["prompt"])
    return [str(p) for p in table.column("prompt").slice(0, rows).to_pylist()]


def library_rows(library: Path) -> int:
    """Rows in the parquet library."""
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(library).metadata.num_rows)


def filter_strings_with_word_count(strings: list[str]) -> list[str]:
    """The sample's word-count filter (>= 10 whitespace-separated words)."""
    return [text for text in strings if len(text.split()) >= MIN_WORDS]


def remove_similar_strings(strings: list[str], threshold: int) -> tuple[list[str], int]:
    """The sample's O(n²) dedupe: keep a string unless it is within `threshold` edits of a kept one.

    Faithful to imgrag_prep.py, including the thread pool that runs one check at a time. Also returns the
    number of `Levenshtein.distance` calls.
    """
    import concurrent.futures

    import Levenshtein

    unique_strings: list[str] = []
    calls = 0

    def is_unique(s: str) -> bool:
        nonlocal calls
        for us in unique_strings:
            calls += 1
            if Levenshtein.distance(s, us) <= threshold:
                return False
        return True

    with concurrent.futures.ThreadPoolExecutor() as executor:
        for s in strings:
            if executor.submit(is_unique, s).result():
                unique_strings.append(s)
    return unique_strings, calls


def write_sample_csv(path: Path, strings: list[str]) -> None:
    """Write `prompts_unique.csv` as the sample does: one `prompt example` column."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt example"])
        for string in strings:
            writer.writerow([string])


def baseline_prep(config: dict[str, Any]) -> dict[str, Any]:
    """imgrag_prep.py on our library: read, filter, dedupe, write prompts_unique.csv."""
    out: dict[str, Any] = {}
    with Timer() as read:
        raw = first_rows(Path(config["library"]), int(config["rows"]))
    with Timer() as filt:
        filtered = filter_strings_with_word_count(raw)
    with Timer() as dedupe:
        unique, calls = remove_similar_strings(filtered, THRESHOLD)
    write_sample_csv(Path(config["csv"]), unique[:KEEP])
    out.update(
        rows=len(raw),
        filtered=len(filtered),
        unique=len(unique),
        kept=min(KEEP, len(unique)),
        read_s=read.seconds,
        filter_s=filt.seconds,
        dedupe_s=dedupe.seconds,
        levenshtein_calls=calls,
        peak_rss_mb=vm_hwm_mb(),
    )
    return out


def baseline_prep_all(config: dict[str, Any]) -> dict[str, Any]:
    """The sample's prep over every library row WITHOUT the O(n²) dedupe: read, filter, write the CSV."""
    with Timer() as read:
        raw = first_rows(Path(config["library"]), int(config["rows"]))
    with Timer() as filt:
        filtered = filter_strings_with_word_count(raw)
    write_sample_csv(Path(config["csv"]), filtered)
    return {
        "rows": len(raw),
        "filtered": len(filtered),
        "distinct": len(set(filtered)),
        "read_s": read.seconds,
        "filter_s": filt.seconds,
        "peak_rss_mb": vm_hwm_mb(),
    }


class LangChainMiniLM:
    """Our OnnxMiniLMEmbedder as a LangChain `Embeddings` (same model on both sides)."""

    def __new__(cls) -> Any:  # built lazily so importing this module does not need langchain-core
        from langchain_core.embeddings import Embeddings

        from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder

        class _Wrapped(Embeddings):
            def __init__(self) -> None:
                self.inner = OnnxMiniLMEmbedder()

            def embed_documents(self, texts: list[str]) -> list[list[float]]:
                return [list(map(float, v)) for v in self.inner.embed_documents_array(texts).tolist()]

            def embed_query(self, text: str) -> list[float]:
                return [float(x) for x in self.inner.embed_query(text)]

        return _Wrapped()


def read_sample_csv(csv_path: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The sample's CSV as CSVLoader reads it: page_content "column: value", metadata file and row."""
    texts: list[str] = []
    metadatas: list[dict[str, Any]] = []
    with Path(csv_path).open(newline="", encoding="utf-8") as handle:
        for i, row in enumerate(csv.DictReader(handle)):
            texts.append("\n".join(f"{k.strip()}: {v.strip()}" for k, v in row.items()))
            metadatas.append({"source": csv_path, "row": i})
    return texts, metadatas


def import_faiss_store() -> Any:
    """langchain-community's FAISS vector store (its sunset warning silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "langchain-community is being sunset"
        from langchain_community.vectorstores import FAISS
    return FAISS


def _session(
    config: dict[str, Any], index_key: str, ready: Callable[[Any, Any], tuple[Any, int]]
) -> dict[str, Any]:
    """A session of the sample: import, load the embedder, `ready` the FAISS store, similarity_search."""
    started = time.perf_counter()
    faiss_store = import_faiss_store()
    imported = time.perf_counter()
    embeddings = LangChainMiniLM()
    embeddings.inner.load()
    loaded = time.perf_counter()
    index, documents = ready(faiss_store, embeddings)
    indexed = time.perf_counter()
    hits = index.similarity_search(config["idea"])
    answered = time.perf_counter()
    return {
        "documents": documents,
        "import_s": imported - started,
        "model_load_s": loaded - imported,
        index_key: indexed - loaded,
        "search_ms": (answered - indexed) * 1000,
        "answer_s": answered - started,
        "hits": [h.page_content for h in hits],
        "peak_rss_mb": vm_hwm_mb(),
    }


def baseline_session(config: dict[str, Any]) -> dict[str, Any]:
    """One session of imgrag_lib.py: load the CSV, FAISS.from_texts (re-embed), similarity_search."""

    def build(faiss_store: Any, embeddings: Any) -> tuple[Any, int]:
        texts, metadatas = read_sample_csv(config["csv"])
        return faiss_store.from_texts(texts, embeddings, metadatas=metadatas), len(texts)

    return _session(config, "embed_index_s", build)


def baseline_persist(config: dict[str, Any]) -> dict[str, Any]:
    """The sample with a persisted index, one-time step: embed the CSV once and `FAISS.save_local` it."""
    faiss_store = import_faiss_store()
    embeddings = LangChainMiniLM()
    with Timer() as build:
        texts, metadatas = read_sample_csv(config["csv"])
        index = faiss_store.from_texts(texts, embeddings, metadatas=metadatas)
    with Timer() as save:
        index.save_local(config["faiss_dir"])
    size = sum(f.stat().st_size for f in Path(config["faiss_dir"]).iterdir()) / 1e6
    return {
        "documents": len(texts),
        "embed_index_s": build.seconds,
        "save_s": save.seconds,
        "disk_mb": size,
        "peak_rss_mb": vm_hwm_mb(),
    }


def baseline_persisted_session(config: dict[str, Any]) -> dict[str, Any]:
    """One session of the sample with a persisted index: `FAISS.load_local`, then similarity_search."""

    def load(faiss_store: Any, embeddings: Any) -> tuple[Any, int]:
        # the pickle of the docstore is ours (written by baseline_persist), hence the flag
        index = faiss_store.load_local(config["faiss_dir"], embeddings, allow_dangerous_deserialization=True)
        return index, int(index.index.ntotal)

    return _session(config, "load_index_s", load)


# ------------------------------------------------------------------------------------------ ours


def ours_ingest(config: dict[str, Any]) -> dict[str, Any]:
    """Our ingest of the same first rows into a fresh Edge index (as bench_ingest.py composes it)."""
    from bot.config import Config
    from bot.wiring import build_embedder, build_index, build_sparse_encoder
    from retrieval.ingest import IngestOptions, Ingestor
    from retrieval.safety import SafetyClassifier

    ours = Config(data_dir=Path(config["data_dir"]), qdrant_url=None, embed_model="local:all-MiniLM-L6-v2")
    index = build_index(ours)
    ingestor = Ingestor(
        build_embedder(ours),
        build_sparse_encoder(),
        index,
        SafetyClassifier(threshold=ours.nsfw_threshold),
    )
    with Timer() as wall:
        summary = ingestor.ingest_files([Path(config["library"])], IngestOptions(limit=int(config["rows"])))
    count = index.count()
    index.close()
    return {
        "rows": summary.read,
        "kept": summary.kept,
        "indexed": count,
        "embedded": summary.embedded,
        "ingest_s": wall.seconds,
        "embed_s": summary.embed_seconds,
        "peak_rss_mb": vm_hwm_mb(),
    }


def ours_session(config: dict[str, Any]) -> dict[str, Any]:
    """One session of ours: open the persisted index, load the embedder, answer (hybrid + MMR)."""
    started = time.perf_counter()
    from retrieval.adapters.bm25 import Bm25SparseEncoder
    from retrieval.adapters.edge_index import EdgePromptIndex
    from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
    from retrieval.search import Retriever

    imported = time.perf_counter()
    embedder = OnnxMiniLMEmbedder()
    embedder.load()
    loaded = time.perf_counter()
    retriever = Retriever(embedder, Bm25SparseEncoder(), EdgePromptIndex(Path(config["index"])))
    retriever.open()
    opened = time.perf_counter()
    hits = retriever.search(config["idea"], k=5)
    answered = time.perf_counter()
    retriever.close()
    return {
        "import_s": imported - started,
        "model_load_s": loaded - imported,
        "open_s": opened - loaded,
        "search_ms": (answered - opened) * 1000,
        "answer_s": answered - started,
        "hits": [h.prompt for h in hits],
        "peak_rss_mb": vm_hwm_mb(),
    }
