"""The processes of bench_layout.py: build, exact truth, serving (RSS) and the interleaved latency A/B.

Each runs in a fresh process (`bench_layout.py --worker KIND CONFIG`) and returns a JSON-able result.
"""

from __future__ import annotations

import gc
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_search import MODES, RECALL_MODES, SPEC, WARMUP, build_dataset, index_queries, overlap_at
from common import CpuMonitor, Timer, disk_usage_mb, latency_summary
from synthetic_index import ensure_synthetic_index

from retrieval.adapters.edge_index import IndexLayout

SEARCH_K = 5
LONG_RUN = 3_000  # product queries after the bench ones: how file-backed RSS grows with use
LONG_RUN_NOISE = 0.05
# what each index file under segments/<uuid>/ holds, for the resident-memory breakdown
PARTS = (
    ("quantized", "quantized vectors"),
    ("vector_storage-dense", "float32 vectors"),
    ("vector_index-dense", "HNSW graph"),
    ("bm25", "BM25 index + vectors"),
    ("payload_storage", "payloads"),
    ("payload_index", "payload indexes"),
    ("id_tracker", "id tracker"),
    ("/wal/", "write-ahead log"),
)


def memory() -> dict[str, float]:
    """VmRSS, RssAnon, RssFile and VmHWM of this process in MB."""
    out: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def resident_index_files(root: Path) -> dict[str, float]:
    """MB of each kind of index file (PARTS) resident in this process, from /proc/self/smaps."""
    totals: dict[str, float] = {}
    current: str | None = None
    prefix = str(root.resolve())  # smaps names files by their absolute, resolved path
    header = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")
    for line in Path("/proc/self/smaps").read_text(encoding="utf-8").splitlines():
        if header.match(line):
            path = line.split(maxsplit=5)[5] if len(line.split(maxsplit=5)) == 6 else ""
            current = path if path.startswith(prefix) else None
        elif current is not None and line.startswith("Rss:"):
            part = next((label for key, label in PARTS if key in current), "other index files")
            totals[part] = totals.get(part, 0.0) + int(line.split()[1]) / 1024
    return totals


# ------------------------------------------------------------------------------------------ workers


def worker_build(config: dict[str, Any]) -> dict[str, Any]:
    """Build (or find cached) the index of one size and layout."""
    out_dir = Path(config["out_dir"])
    index_dir, info = ensure_synthetic_index(out_dir, int(config["size"]), IndexLayout(config["layout"]))
    info["disk_mb"] = disk_usage_mb(index_dir / "index")
    return info


def worker_truth(config: dict[str, Any]) -> dict[str, Any]:
    """Exact top-10 ids per recall mode on the in-RAM index; dense also by numpy over the dataset."""
    from retrieval.adapters.edge_index import EdgePromptIndex

    queries = json.loads(Path(config["queries_file"]).read_text(encoding="utf-8"))
    index = EdgePromptIndex(Path(config["index"]), layout=IndexLayout.IN_RAM)
    index.open(SPEC, create=False)
    exact = {
        mode: [[h.id for h in index.query(q)] for q in index_queries(queries, mode, exact=True)]
        for mode in RECALL_MODES
    }
    index.close()
    data = build_dataset(Path(config["out_dir"]), int(config["size"]))
    scores = np.asarray(queries["dense"], dtype=np.float32) @ data.vectors.T
    numpy_ids = [[data.ids[j] for j in np.argsort(-row)[:10]] for row in scores]
    return {"exact": exact, "engine_vs_numpy_dense": overlap_at(exact["dense"], numpy_ids)}


def worker_serve(config: dict[str, Any]) -> dict[str, Any]:
    """Open the index as the bot does, run the bench queries, Retriever.search, then a long product run."""
    from retrieval.adapters.bm25 import Bm25SparseEncoder
    from retrieval.adapters.edge_index import EdgePromptIndex
    from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
    from retrieval.index_ports import IndexQuery, SearchMode
    from retrieval.native_heap import cap_arenas
    from retrieval.search import Retriever

    cap_arenas()  # as `imagine-bot serve` does first
    queries = json.loads(Path(config["queries_file"]).read_text(encoding="utf-8"))
    index_dir = Path(config["index"])
    gc.collect()
    mem: dict[str, dict[str, float]] = {"start": memory()}
    index = EdgePromptIndex(index_dir)  # the product's default instance, as bot.wiring builds it
    retriever = Retriever(OnnxMiniLMEmbedder(), Bm25SparseEncoder(), index)
    with Timer() as opening:
        retriever.open()
        count = index.count()
    mem["open"] = memory()
    with Timer() as cold:
        index.query(index_queries(queries, "dense")[0])
    ids: dict[str, list[list[str]]] = {}
    for mode in MODES:
        ids[mode] = [[h.id for h in index.query(q)] for q in index_queries(queries, mode)]
    mem["queries"] = memory()
    files = resident_index_files(index_dir)
    for text in queries["texts"]:
        retriever.search(text, k=SEARCH_K)
    mem["search"] = memory()
    rng = np.random.default_rng(LONG_RUN)
    base = np.asarray(queries["dense"], dtype=np.float32)
    dimension: int = base.shape[1]
    for i in range(int(config.get("long_run", LONG_RUN))):
        vector = base[i % len(base)] + LONG_RUN_NOISE * rng.standard_normal(dimension).astype(np.float32)
        vector /= np.linalg.norm(vector)
        index.query(IndexQuery(vector.tolist(), None, SearchMode.DENSE, limit=40, with_vectors=True))
    mem["long"] = memory()
    files_long = resident_index_files(index_dir)
    retriever.close()
    layout = index.layout()
    return {
        "layout": layout.value if layout else None,
        "count": count,
        "open_s": opening.seconds,
        "first_query_ms": cold.seconds * 1000,
        "ids": {mode: ids[mode] for mode in RECALL_MODES},
        "memory": mem,
        "resident_files_mb": files,
        "resident_files_long_mb": files_long,
    }


def worker_latency(config: dict[str, Any]) -> dict[str, Any]:
    """Both layouts open in this process, alternated query by query (the order rotates), per mode."""
    from retrieval.adapters.bm25 import Bm25SparseEncoder
    from retrieval.adapters.edge_index import EdgePromptIndex
    from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
    from retrieval.search import Retriever

    queries = json.loads(Path(config["queries_file"]).read_text(encoding="utf-8"))
    embedder = OnnxMiniLMEmbedder()
    indexes = {name: EdgePromptIndex(Path(path)) for name, path in config["indexes"].items()}
    retrievers = {name: Retriever(embedder, Bm25SparseEncoder(), index) for name, index in indexes.items()}
    for retriever in retrievers.values():
        retriever.open()
    names = list(retrievers)
    timings: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    with CpuMonitor() as cpu:
        for mode in [*MODES, "search"]:
            batch: list[Any] = queries["texts"] if mode == "search" else index_queries(queries, mode)
            for i, item in enumerate(batch):
                for name in names[i % 2 :] + names[: i % 2]:
                    started = time.perf_counter()
                    if mode == "search":
                        retrievers[name].search(item, k=SEARCH_K)
                    else:
                        indexes[name].query(item)
                    if i >= WARMUP:
                        timings[name].setdefault(mode, []).append((time.perf_counter() - started) * 1000)
    for retriever in retrievers.values():
        retriever.close()
    return {
        "latency": {
            name: {mode: latency_summary(ms) for mode, ms in by_mode.items()}
            for name, by_mode in timings.items()
        },
        "cpu": vars(cpu.share),
    }


WORKERS = {"build": worker_build, "truth": worker_truth, "serve": worker_serve, "latency": worker_latency}


WORKERS = {"build": worker_build, "truth": worker_truth, "serve": worker_serve, "latency": worker_latency}
