"""Per-query search latency at the same size: the AWS sample's FAISS store (LangChain) vs our index.

Both sides hold exactly the prompts of our index with the same MiniLM vectors: the FAISS store is built by
`FAISS.from_embeddings` from the vectors stored in our index (no re-embedding; LangChain's default
`IndexFlatL2`, exact brute force, as the sample uses). One process, the same query texts, the four
methods run back to back for every query in an order that rotates from query to query:

* FAISS `similarity_search(text, k)`: embed the query + flat search (what the sample runs per question);
* FAISS `similarity_search_by_vector(vector, k)`: the flat search alone;
* ours `Retriever.search(text, k)` with the default ranking: embed + dense and BM25 prefetches (and both
  again among crafted prompts) over HNSW + the coverage and craft re-rank, safe prompts only (what the bot
  runs per idea);
* ours `PromptIndex.query`, dense top k, the vector given: the HNSW search alone (payloads included).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from baseline_pipeline import LangChainMiniLM, import_faiss_store
from common import BENCH_DIR, latency_summary, markdown_table

K = 5
WARMUP = 3
METHODS = {
    "faiss_text": "FAISS `similarity_search` (embed + flat search)",
    "faiss_vector": "FAISS `similarity_search_by_vector` (flat search only)",
    "ours_text": "ours `Retriever.search` (embed + hybrid + MMR)",
    "ours_vector": "ours `PromptIndex.query` dense (HNSW search only)",
}


def query_texts(prompts: list[str], count: int) -> list[str]:
    """The labelled ideas, then first phrases of prompts spread evenly over the index (deterministic)."""
    ideas = [i["idea"] for i in json.loads((BENCH_DIR / "labelled_ideas.json").read_text())["ideas"]]
    texts = ideas[:count]
    step = max(1, len(prompts) // max(1, count))
    for prompt in prompts[::step]:
        phrase = prompt.split(",")[0].strip()
        if len(texts) >= count:
            break
        if len(phrase.split()) >= 2 and phrase not in texts:
            texts.append(phrase)
    return texts


def search_latency(config: dict[str, Any]) -> dict[str, Any]:
    """Build the FAISS store from our index's vectors, then time the four methods query by query."""
    from retrieval.adapters.bm25 import Bm25SparseEncoder
    from retrieval.adapters.edge_index import EdgePromptIndex
    from retrieval.index_ports import IndexQuery, SearchMode
    from retrieval.search import Retriever

    embeddings = LangChainMiniLM()
    index = EdgePromptIndex(Path(config["index"]))
    retriever = Retriever(embeddings.inner, Bm25SparseEncoder(), index)
    retriever.open()
    points = list(index.iter_points())
    prompts = [str(p.payload.get("prompt", "")) for p in points]
    started = time.perf_counter()
    store = import_faiss_store().from_embeddings(
        [(text, point.dense) for text, point in zip(prompts, points, strict=True)], embeddings
    )
    build_s = time.perf_counter() - started
    del points
    texts = query_texts(prompts, int(config["queries"]))
    vectors = [embeddings.inner.embed_query(text) for text in texts]

    def run(method: str, i: int) -> None:
        if method == "faiss_text":
            store.similarity_search(texts[i], k=K)
        elif method == "faiss_vector":
            store.similarity_search_by_vector(vectors[i], k=K)
        elif method == "ours_text":
            retriever.search(texts[i], k=K)
        else:
            index.query(IndexQuery(vectors[i], None, SearchMode.DENSE, limit=K, safe_only=False))

    methods = list(METHODS)
    for i in range(WARMUP):
        for method in methods:
            run(method, i)
    timings: dict[str, list[float]] = {method: [] for method in methods}
    for i in range(WARMUP, len(texts)):  # the warm-up texts are not timed (the Retriever caches vectors)
        shift = i % len(methods)
        for method in methods[shift:] + methods[:shift]:
            begun = time.perf_counter()
            run(method, i)
            timings[method].append((time.perf_counter() - begun) * 1000)
    retriever.close()
    return {
        "documents": int(store.index.ntotal),
        "faiss_index": type(store.index).__name__,
        "faiss_build_s": build_s,
        "queries": len(texts) - WARMUP,
        "latency": {method: latency_summary(ms) for method, ms in timings.items()},
    }


def render_latency(rows: list[dict[str, Any]]) -> str:
    """The same-size latency table: one column pair per size."""
    headers = ["p50 / p95 ms", *(f"{r['documents']:,} prompts" for r in rows)]
    table = [
        [label, *(f"{r['latency'][m]['p50_ms']:.2f} / {r['latency'][m]['p95_ms']:.2f}" for r in rows)]
        for m, label in METHODS.items()
    ]
    for label, ours, theirs in (
        ("ours ÷ FAISS, what each runs per question (p50)", "ours_text", "faiss_text"),
        ("ours ÷ FAISS, the search alone (p50)", "ours_vector", "faiss_vector"),
    ):
        table.append(
            [label, *(f"{r['latency'][ours]['p50_ms'] / r['latency'][theirs]['p50_ms']:.2f}×" for r in rows)]
        )
    return markdown_table(headers, table)


def latency_headline(rows: list[dict[str, Any]]) -> str:
    """One sentence per size: who is faster, end to end and search only (for the summary)."""
    parts = []
    for r in rows:
        lat = r["latency"]
        ft, ot = lat["faiss_text"]["p50_ms"], lat["ours_text"]["p50_ms"]
        fv, ov = lat["faiss_vector"]["p50_ms"], lat["ours_vector"]["p50_ms"]
        parts.append(
            f"at {r['documents']:,} prompts FAISS answers a question in {ft:.1f} ms p50 vs our "
            f"{ot:.1f} ms ({'ours slower' if ot > ft else 'ours faster'}, {max(ft, ot) / min(ft, ot):.1f}×; "
            f"ours adds BM25, crafted prefetches and a re-rank), search alone {fv:.2f} ms FAISS flat vs "
            f"{ov:.2f} ms our HNSW "
            f"({'ours slower' if ov > fv else 'ours faster'}, {max(fv, ov) / min(fv, ov):.1f}×)"
        )
    return "; ".join(parts)
