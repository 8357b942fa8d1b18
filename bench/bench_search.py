"""Benchmark search: Qdrant Edge (HNSW) vs qdrant-client local mode, through the `PromptIndex` port.

Sizes: the real library (the kept prompts cached by bench_ingest.py: real MiniLM vectors, real BM25,
real payloads) and synthetic libraries built from it (real vectors + small gaussian noise, renormalized;
texts = the base prompt's first phrase + random comma-separated phrases of other real prompts).
Engines: `EdgePromptIndex` (HNSW after `finalize()`), `QdrantClientPromptIndex` on `QdrantClient(":memory:")`
and on `QdrantClient(path=...)`. Each engine and size runs in its own subprocess so its RSS is its own;
reopening a persistent index runs in yet another fresh subprocess.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import shutil
import subprocess
import sys
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    FloatArray,
    Timer,
    add_common_args,
    current_rss_mb,
    disk_usage_mb,
    fresh_dir,
    latency_summary,
    load_library_cache,
    machine_info,
    markdown_table,
    peak_rss_mb,
    report_header,
    setup_logging,
    write_outputs,
)

from retrieval.index_ports import IndexPoint, IndexQuery, IndexSpec, PromptIndex, SearchMode, SparseVector

logger = logging.getLogger("bench_search")

ENGINES = ("edge", "local-memory", "local-path")
ENGINE_LABEL = {
    "edge": "Edge (HNSW)",
    "local-memory": "local `:memory:`",
    "local-path": "local `path=`",
}
MODES = ("dense", "hybrid", "filtered", "product")
MODE_LABEL = {
    "dense": "dense, top 10, no filter",
    "hybrid": "hybrid RRF, top 10, no filter",
    "filtered": "dense, top 10, `source` = X and safe",
    "product": "hybrid, top 40 + vectors, safe (what `Retriever.search` sends)",
}
RECALL_MODES = ("dense", "filtered", "hybrid")
SPEC = IndexSpec("local:all-MiniLM-L6-v2", 384)
COLLECTION = "prompts"
NOISE_SIGMA = 0.025  # per dimension; cosine to the base vector ≈ 0.90
SYNTH_SEED = 20261125
QUERY_SEED = 7
LOAD_CHUNK = 4096
WARMUP = 3
LARGE = 200_000  # sizes above this get --local-queries-large queries in local mode
PATH_BUDGET_S = 900.0  # skip local path= at a size whose estimated upsert time exceeds this
FILTER_SOURCES = 6  # the filtered queries cycle through the N most common sources
MIN_QUERIES = 10  # local mode runs at least this many queries per mode, whatever its time budget


# ------------------------------------------------------------------------------------------ data


@dataclass
class Dataset:
    """Points to index: ids, texts, payloads and unit dense vectors."""

    ids: list[str]
    texts: list[str]
    payloads: list[dict[str, Any]]
    vectors: FloatArray
    n_real: int
    mean_cos_to_base: float | None = None


def build_dataset(out_dir: Path, size: int) -> Dataset:
    """The first `size` real prompts, or all of them plus synthetic points up to `size` (deterministic)."""
    cache = load_library_cache(out_dir)
    n_real = min(size, len(cache))
    if size <= len(cache):
        return Dataset(
            cache.ids[:size], cache.prompts[:size], cache.payloads[:size], cache.vectors[:size], n_real
        )
    rng = np.random.default_rng(SYNTH_SEED)
    n_syn = size - n_real
    vectors = np.empty((size, cache.vectors.shape[1]), dtype=np.float32)
    vectors[:n_real] = cache.vectors
    base = rng.integers(0, n_real, size=n_syn)
    cosines: list[float] = []
    for start in range(0, n_syn, 100_000):
        stop = min(start + 100_000, n_syn)
        chunk = cache.vectors[base[start:stop]]
        noisy = chunk + rng.standard_normal(chunk.shape, dtype=np.float32) * np.float32(NOISE_SIGMA)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        cosines.append(float(np.mean(np.sum(noisy * chunk, axis=1))))
        vectors[n_real + start : n_real + stop] = noisy
    phrases = [p.strip() for prompt in cache.prompts for p in prompt.split(",") if p.strip()]
    firsts = [prompt.split(",")[0].strip() for prompt in cache.prompts]
    extra_counts = rng.integers(1, 6, size=n_syn)
    picks = rng.integers(0, len(phrases), size=int(extra_counts.sum()))
    ids = list(cache.ids)
    texts = list(cache.prompts)
    payloads = list(cache.payloads)
    cursor = 0
    for i in range(n_syn):
        b = int(base[i])
        k = int(extra_counts[i])
        text = ", ".join([firsts[b], *(phrases[j] for j in picks[cursor : cursor + k].tolist())])
        cursor += k
        texts.append(text)
        ids.append(str(uuid.UUID(int=(1 << 100) + i)))
        src = cache.payloads[b]
        payloads.append(
            {
                "prompt": text,
                "source": src.get("source", "unknown"),
                "safe": bool(src.get("safe", True)),
                "near_duplicates": 0,
                "synthetic": True,
            }
        )
    return Dataset(ids, texts, payloads, vectors, n_real, float(np.mean(cosines)))


def make_queries(out_dir: Path, ideas_file: Path, count: int) -> dict[str, Any]:
    """`count` library-derived ideas (the labelled ideas + first phrases of random prompts), embedded."""
    from retrieval.adapters.bm25 import Bm25SparseEncoder
    from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder

    cache = load_library_cache(out_dir)
    ideas = [item["idea"] for item in json.loads(ideas_file.read_text(encoding="utf-8"))["ideas"]]
    rng = np.random.default_rng(QUERY_SEED)
    texts = ideas[:count]
    seen = set(texts)
    while len(texts) < count:
        phrase = cache.prompts[int(rng.integers(0, len(cache)))].split(",")[0].strip()
        if len(phrase.split()) >= 2 and phrase not in seen:
            seen.add(phrase)
            texts.append(phrase)
    embedder = OnnxMiniLMEmbedder()
    sparse = Bm25SparseEncoder()
    embedder.load()
    for text in texts[:5]:
        embedder.embed_query(text)
    dense: list[list[float]] = []
    sparse_vectors: list[dict[str, list[Any]]] = []
    embed_ms: list[float] = []
    bm25_ms: list[float] = []
    for text in texts:
        with Timer() as t:
            dense.append(embedder.embed_query(text))
        embed_ms.append(t.seconds * 1000)
        with Timer() as t:
            vector = sparse.encode_query(text)
        bm25_ms.append(t.seconds * 1000)
        sparse_vectors.append({"indices": vector.indices, "values": vector.values})
    counts: dict[str, int] = {}
    for payload in cache.payloads:
        source = str(payload.get("source", "unknown"))
        counts[source] = counts.get(source, 0) + 1
    sources = sorted(counts, key=lambda s: -counts[s])[:FILTER_SOURCES]
    return {
        "texts": texts,
        "dense": dense,
        "sparse": sparse_vectors,
        "filter_sources": sources,
        "source_share": {s: counts[s] / len(cache) for s in sources},
        "embed": latency_summary(embed_ms),
        "bm25": latency_summary(bm25_ms),
    }


def index_queries(queries: dict[str, Any], mode: str, *, exact: bool = False) -> list[IndexQuery]:
    """The IndexQuery objects of one mode."""
    out: list[IndexQuery] = []
    sources = queries["filter_sources"]
    for i, dense in enumerate(queries["dense"]):
        raw = queries["sparse"][i]
        sparse = SparseVector(list(raw["indices"]), list(raw["values"]))
        if mode == "dense":
            q = IndexQuery(dense, None, SearchMode.DENSE, limit=10, safe_only=False, exact=exact)
        elif mode == "hybrid":
            q = IndexQuery(dense, sparse, SearchMode.HYBRID, limit=10, safe_only=False, exact=exact)
        elif mode == "filtered":
            source = sources[i % len(sources)]
            q = IndexQuery(
                dense,
                None,
                SearchMode.DENSE,
                limit=10,
                safe_only=True,
                must_match={"source": source},
                exact=exact,
            )
        else:
            q = IndexQuery(dense, sparse, SearchMode.HYBRID, limit=40, safe_only=True, with_vectors=True)
        out.append(q)
    return out


# ------------------------------------------------------------------------------------------ workers


def open_engine(engine: str, index_dir: Path, *, create: bool) -> PromptIndex:
    """An opened PromptIndex for the engine (fresh when `create`)."""
    if engine == "edge":
        from retrieval.adapters.edge_index import EdgePromptIndex

        edge = EdgePromptIndex(index_dir)
        edge.open(SPEC, create=create)
        return edge
    from qdrant_client import QdrantClient

    from retrieval.adapters.qdrant_index import QdrantClientPromptIndex

    client = QdrantClient(":memory:") if engine == "local-memory" else QdrantClient(path=str(index_dir))
    index = QdrantClientPromptIndex(client, COLLECTION)
    index.open(SPEC, create=create)
    return index


def run_queries(
    index: PromptIndex, queries: list[IndexQuery], warmup: int = WARMUP, budget_s: float | None = None
) -> tuple[dict[str, float], list[list[str]]]:
    """Latency summary and the returned ids of each query (after a short warm-up).

    With `budget_s`, stops once the timed queries took that long and at least MIN_QUERIES ran.
    """
    for q in queries[:warmup]:
        index.query(q)
    timings: list[float] = []
    ids: list[list[str]] = []
    for q in queries:
        started = time.perf_counter()
        hits = index.query(q)
        timings.append((time.perf_counter() - started) * 1000)
        ids.append([h.id for h in hits])
        if budget_s is not None and len(timings) >= MIN_QUERIES and sum(timings) / 1000 > budget_s:
            break
    return latency_summary(timings), ids


def overlap_at(a: list[list[str]], b: list[list[str]], k: int = 10) -> float:
    """Mean |top-k(a) ∩ top-k(b)| / |top-k(b)| over queries (b is the reference)."""
    scores = [len(set(x[:k]) & set(y[:k])) / len(y[:k]) for x, y in zip(a, b, strict=False) if y]
    return float(np.mean(scores)) if scores else float("nan")


def worker_build(config: dict[str, Any]) -> dict[str, Any]:
    """Index one dataset with one engine, then time the queries (and Edge recall vs exact)."""
    from retrieval.adapters.bm25 import Bm25SparseEncoder

    engine, size = config["engine"], int(config["size"])
    out_dir, index_dir = Path(config["out_dir"]), Path(config["index_dir"])
    queries = json.loads(Path(config["queries_file"]).read_text(encoding="utf-8"))
    n_queries = int(config["n_queries"])
    queries = {**queries, "dense": queries["dense"][:n_queries], "sparse": queries["sparse"][:n_queries]}
    rss_start = current_rss_mb()
    with Timer() as gen:
        data = build_dataset(out_dir, size)
    encoder = Bm25SparseEncoder()
    gc.collect()
    rss_data = current_rss_mb()
    if engine != "local-memory":
        fresh_dir(index_dir, out_dir)
    index = open_engine(engine, index_dir, create=True)
    upsert_s = prepare_s = 0.0
    for start in range(0, size, LOAD_CHUNK):
        stop = min(start + LOAD_CHUNK, size)
        with Timer() as prep:
            vectors = data.vectors[start:stop].tolist()
            points = [
                IndexPoint(
                    data.ids[i], vectors[i - start], encoder.encode_document(data.texts[i]), data.payloads[i]
                )
                for i in range(start, stop)
            ]
        prepare_s += prep.seconds
        with Timer() as up:
            index.upsert(points)
        upsert_s += up.seconds
        if (start // LOAD_CHUNK) % 50 == 0:
            logger.info("%s %d: upserted %d/%d (%.0f s)", engine, size, stop, size, upsert_s)
    del points, vectors
    gc.collect()
    rss_upsert = current_rss_mb()
    with Timer() as fin:
        index.finalize()
    gc.collect()
    rss_final = current_rss_mb()
    logger.info("%s %d: upsert %.1f s, finalize %.1f s", engine, size, upsert_s, fin.seconds)
    latency: dict[str, Any] = {}
    result_ids: dict[str, list[list[str]]] = {}
    for mode in MODES:
        with Timer() as t:
            warmup = WARMUP if engine == "edge" or size <= LARGE else 1
            budget = None if engine == "edge" else config.get("local_budget_s")
            latency[mode], result_ids[mode] = run_queries(index, index_queries(queries, mode), warmup, budget)
        logger.info("%s %d %s: p50 %.2f ms (%.0f s)", engine, size, mode, latency[mode]["p50_ms"], t.seconds)
    recall: dict[str, Any] = {}
    if engine == "edge":
        for mode in RECALL_MODES:
            summary, exact_ids = run_queries(index, index_queries(queries, mode, exact=True))
            recall[mode] = {"recall_at_10": overlap_at(result_ids[mode], exact_ids), "exact": summary}
            logger.info("edge %d %s recall@10 %.3f", size, mode, recall[mode]["recall_at_10"])
    rss_queries = current_rss_mb()
    count = index.count()
    index.close()
    disk = disk_usage_mb(index_dir) if engine != "local-memory" else None
    return {
        "engine": engine,
        "size": size,
        "count": count,
        "n_real": data.n_real,
        "mean_cos_to_base": data.mean_cos_to_base,
        "n_queries": n_queries,
        "generate_s": gen.seconds,
        "prepare_s": prepare_s,
        "upsert_s": upsert_s,
        "finalize_s": fin.seconds,
        "rss_start_mb": rss_start,
        "rss_data_mb": rss_data,
        "rss_growth_upsert_mb": rss_upsert - rss_data,
        "rss_growth_final_mb": rss_final - rss_data,
        "rss_growth_queries_mb": rss_queries - rss_data,
        "peak_rss_mb": peak_rss_mb(),
        "latency": latency,
        "ids": {mode: [ids[:10] for ids in result_ids[mode]] for mode in ("dense", "filtered")},
        "recall": recall,
        "disk_mb": disk,
    }


def worker_reopen(config: dict[str, Any]) -> dict[str, Any]:
    """Reopen a persistent index in a fresh process: time and RSS of open + count, then a few queries."""
    engine, index_dir = config["engine"], Path(config["index_dir"])
    queries = json.loads(Path(config["queries_file"]).read_text(encoding="utf-8"))
    n = int(config["n_queries"])
    queries = {**queries, "dense": queries["dense"][:n], "sparse": queries["sparse"][:n]}
    dense_q, filtered_q = index_queries(queries, "dense"), index_queries(queries, "filtered")
    if engine != "edge":
        from qdrant_client import QdrantClient  # import cost is not part of the reopen

        del QdrantClient
    from retrieval.adapters.edge_index import EdgePromptIndex

    del EdgePromptIndex
    gc.collect()
    rss0 = current_rss_mb()
    with Timer() as t:
        index = open_engine(engine, index_dir, create=False)
        count = index.count()
    rss_open = current_rss_mb()
    first_started = time.perf_counter()
    index.query(dense_q[0])
    first_ms = (time.perf_counter() - first_started) * 1000
    dense, _ = run_queries(index, dense_q)
    filtered, _ = run_queries(index, filtered_q)
    rss_q = current_rss_mb()
    index.close()
    return {
        "engine": engine,
        "count": count,
        "reopen_s": t.seconds,
        "rss_growth_open_mb": rss_open - rss0,
        "rss_growth_queries_mb": rss_q - rss0,
        "peak_rss_mb": peak_rss_mb(),
        "first_query_ms": first_ms,
        "dense": dense,
        "filtered": filtered,
    }


def run_worker(kind: str, config: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run a worker subprocess (logs go to our stderr) and return its JSON result."""
    out_dir = Path(config["out_dir"])
    config_file = out_dir / f"search_{kind}_{config['engine']}_{config['size']}.json"
    result_file = config_file.with_suffix(".result.json")
    result_file.unlink(missing_ok=True)
    config_file.write_text(json.dumps(config), encoding="utf-8")
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        kind,
        "--worker-config",
        str(config_file),
    ]
    logger.info("worker: %s %s size %s", kind, config["engine"], config["size"])
    started = time.perf_counter()
    try:
        subprocess.run(command, check=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {
            "error": f"timed out after {timeout:.0f} s",
            "engine": config["engine"],
            "size": config["size"],
        }
    except subprocess.CalledProcessError as exc:
        return {"error": f"exit status {exc.returncode}", "engine": config["engine"], "size": config["size"]}
    result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    result["process_wall_s"] = time.perf_counter() - started
    return result


# ------------------------------------------------------------------------------------------ orchestration


def path_estimate(
    first: dict[str, float], size: int, memory_run: dict[str, Any] | None, budget: float
) -> str:
    """Why local path= is skipped at `size` ('' when its estimated time fits the budget).

    Estimate = upsert at the rate measured at the first size + the query time local :memory: took at
    this size + the reopen time scaled linearly from the first size.
    """
    upsert = size / (first["size"] / max(first["upsert_s"], 1e-9))
    queries = 0.0
    if memory_run is not None:
        queries = sum(s["mean_ms"] * s["n"] for s in memory_run["latency"].values()) / 1000
    reopen = first["reopen_s"] * size / first["size"]
    total = upsert + queries + reopen
    if total <= budget:
        return ""
    return (
        f"skipped: estimated {total / 60:.0f} min > budget {budget / 60:.0f} min (upsert "
        f"{upsert / 60:.0f} min at the {first['size'] / first['upsert_s']:,.0f} points/s measured at "
        f"{int(first['size']):,}, queries "
        f"{queries / 60:.0f} min as local :memory: took at this size, reopen {reopen / 60:.1f} min scaled "
        "linearly; its reopen loads everything into RAM, which at this size risks exhausting the machine)"
    )


def parse_sizes(text: str, library_size: int) -> list[int]:
    """'library,1000000' -> [len(library), 1000000]; 'library' means every cached real prompt."""
    sizes: list[int] = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        if not part:
            continue
        if part == "library":
            sizes.append(library_size)
        elif part.endswith("k"):
            sizes.append(int(float(part[:-1]) * 1000))
        elif part.endswith("m"):
            sizes.append(int(float(part[:-1]) * 1_000_000))
        else:
            sizes.append(int(part))
    return sizes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_common_args(parser)
    parser.add_argument(
        "--sizes",
        default="library,1m",
        help="index sizes: 'library' (all real prompts), N, 500k, 1m (library,1m)",
    )
    parser.add_argument("--queries", type=int, default=200, help="queries per mode (200)")
    parser.add_argument(
        "--local-queries-large",
        type=int,
        default=20,
        help=f"queries per mode for local mode at sizes above {LARGE:,} (20)",
    )
    parser.add_argument(
        "--local-budget",
        type=float,
        default=150.0,
        help=f"local mode: stop a mode's queries after this many s (at least {MIN_QUERIES} queries; 150)",
    )
    parser.add_argument("--reopen-queries", type=int, default=20, help="queries per mode after a reopen (20)")
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help=f"comma-separated subset of {','.join(ENGINES)}"
    )
    parser.add_argument(
        "--path-budget",
        type=float,
        default=PATH_BUDGET_S,
        help="skip local path= at a size whose estimated upsert time exceeds this many seconds (900)",
    )
    parser.add_argument(
        "--keep-indexes", action="store_true", help="keep the indexes under the out dir (deleted by default)"
    )
    parser.add_argument("--worker-timeout", type=float, default=3600.0, help="seconds per worker process")
    parser.add_argument(
        "--ideas",
        type=Path,
        default=Path(__file__).resolve().parent / "labelled_ideas.json",
        help="labelled ideas",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-config", type=Path, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every engine at every size; returns the raw results."""
    out_dir: Path = args.out_dir
    library_size = len(load_library_cache(out_dir))
    sizes = parse_sizes(args.sizes, library_size)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = set(engines) - set(ENGINES)
    if bad:
        raise SystemExit(f"unknown engines {sorted(bad)}; choose from {ENGINES}")
    logger.info("embedding %d queries", args.queries)
    queries = make_queries(out_dir, args.ideas, args.queries)
    queries_file = out_dir / "search_queries.json"
    queries_file.write_text(json.dumps(queries), encoding="utf-8")
    runs: list[dict[str, Any]] = []
    reopens: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    path_first: dict[str, float] | None = None  # local path= at its first size: size, upsert s, reopen s
    started = time.perf_counter()
    for size in sizes:
        for engine in engines:
            n_queries = args.queries
            if engine != "edge" and size > LARGE:
                n_queries = min(args.queries, args.local_queries_large)
            if engine == "local-path" and path_first is not None:
                note = path_estimate(path_first, size, _find(runs, "local-memory", size), args.path_budget)
                if note:
                    logger.info("local-path %d %s", size, note)
                    skipped.append({"engine": engine, "size": size, "note": note})
                    continue
            config = {
                "engine": engine,
                "size": size,
                "out_dir": str(out_dir),
                "index_dir": str(out_dir / f"search_{engine}_{size}"),
                "queries_file": str(queries_file),
                "n_queries": n_queries,
                "local_budget_s": args.local_budget,
            }
            result = run_worker("build", config, args.worker_timeout)
            runs.append(result)
            if "error" in result:
                logger.error("%s %d failed: %s", engine, size, result["error"])
                continue
            if engine in ("edge", "local-path"):
                reopen_config = {**config, "n_queries": min(args.reopen_queries, n_queries)}
                reopen = run_worker("reopen", reopen_config, args.worker_timeout)
                reopen["size"] = size
                reopens.append(reopen)
                if engine == "local-path" and path_first is None and "error" not in reopen:
                    path_first = {
                        "size": size,
                        "upsert_s": result["upsert_s"],
                        "reopen_s": reopen["reopen_s"],
                    }
            if engine != "local-memory" and not args.keep_indexes:
                shutil.rmtree(config["index_dir"], ignore_errors=True)
    return {
        "sizes": sizes,
        "engines": engines,
        "queries": {k: v for k, v in queries.items() if k not in ("dense", "sparse")},
        "runs": runs,
        "reopens": reopens,
        "skipped": skipped,
        "wall_s": time.perf_counter() - started,
        "machine": machine_info(),
        "noise_sigma": NOISE_SIGMA,
        "local_budget_s": args.local_budget,
    }


# ------------------------------------------------------------------------------------------ report


def _find(rows: list[dict[str, Any]], engine: str, size: int) -> dict[str, Any] | None:
    for row in rows:
        if row.get("engine") == engine and row.get("size") == size and "error" not in row:
            return row
    return None


def _lat(row: dict[str, Any] | None, mode: str) -> str:
    if row is None:
        return "–"
    s = row["latency"][mode]
    n = int(s["n"])
    more = f" (n={n})" if n != row["n_queries"] else ""
    return f"{s['p50_ms']:.2f} / {s['p95_ms']:.2f}{more}"


def render(r: dict[str, Any]) -> str:
    """The markdown report."""
    q = r["queries"]
    lines = [
        report_header(
            "Search: Qdrant Edge vs qdrant-client local mode (through the PromptIndex port)", r["machine"]
        )
    ]
    shares = ", ".join(f"{s} {100 * v:.1f} %" for s, v in q["source_share"].items())
    lines.append(
        f"* Queries: {len(q['texts'])} library-derived ideas (the {min(24, len(q['texts']))} labelled "
        "ideas + "
        "first phrases of random library prompts). Query embedding is not part of the index latency: "
        f"MiniLM `embed_query` p50 {q['embed']['p50_ms']:.2f} / p95 {q['embed']['p95_ms']:.2f} ms, "
        f"BM25 `encode_query` p50 {q['bm25']['p50_ms']:.3f} / p95 {q['bm25']['p95_ms']:.3f} ms.\n"
        "* Modes: " + "; ".join(f"**{m}** = {MODE_LABEL[m]}" for m in MODES) + ". "
        f"Filtered queries cycle through the {len(q['filter_sources'])} largest sources ({shares}).\n"
        "* Latency = wall time of `PromptIndex.query` (adapter + engine, payloads included), "
        f"{WARMUP} warm-up queries first (1 for local mode above {LARGE:,}). Cells are p50 / p95 in ms; "
        f"local mode stops a mode after {r.get('local_budget_s', 0):.0f} s of queries (at least "
        f"{MIN_QUERIES}), and (n=…) then says how many ran.\n"
        f"* Synthetic sizes: all real prompts first, then synthetic points: vector = a random real "
        f"library vector + gaussian noise (σ = {r['noise_sigma']} per dimension), renormalized, so the "
        "data is clustered like real embeddings; text = that prompt's first phrase + 1–5 random "
        "comma-separated phrases of other real prompts (real BM25 statistics); payload `source`/`safe` "
        "copied from the base prompt.\n"
        "* Each engine and size runs in its own subprocess (RSS growth is measured from after the data is "
        "in memory); reopen runs in a fresh subprocess.\n"
    )
    for size in r["sizes"]:
        rows = {e: _find(r["runs"], e, size) for e in r["engines"]}
        any_row = next((row for row in rows.values() if row), None)
        real = any_row["n_real"] if any_row else size
        kind = "real library" if real == size else f"{real:,} real + {size - real:,} synthetic"
        lines.append(f"\n### {size:,} prompts ({kind})\n")
        if any_row and any_row.get("mean_cos_to_base"):
            lines.append(
                f"Mean cosine of a synthetic vector to its base vector: {any_row['mean_cos_to_base']:.3f}.\n"
            )
        headers = ["", *[ENGINE_LABEL[e] for e in r["engines"]]]

        def cell(engine: str, fn: Any, rows: dict[str, dict[str, Any] | None] = rows) -> str:
            row = rows[engine]
            return str(fn(row)) if row else "–"

        table: list[list[object]] = []
        table.append(["queries per mode", *[cell(e, lambda x: x["n_queries"]) for e in r["engines"]]])
        for mode in MODES:
            table.append([f"{mode} p50 / p95 ms", *[_lat(rows[e], mode) for e in r["engines"]]])
        table.append(["upsert (s)", *[cell(e, lambda x: f"{x['upsert_s']:.1f}") for e in r["engines"]]])
        table.append(
            [
                "upsert rate (points/s)",
                *[cell(e, lambda x: f"{x['size'] / x['upsert_s']:,.0f}") for e in r["engines"]],
            ]
        )
        table.append(
            [
                "HNSW build (`finalize`, s)",
                *[
                    cell(e, lambda x: f"{x['finalize_s']:.1f}" if x["engine"] == "edge" else "n/a")
                    for e in r["engines"]
                ],
            ]
        )
        table.append(
            [
                "RSS growth after upsert (MB)",
                *[cell(e, lambda x: f"{x['rss_growth_upsert_mb']:,.0f}") for e in r["engines"]],
            ]
        )
        table.append(
            [
                "RSS growth after build + queries (MB)",
                *[cell(e, lambda x: f"{x['rss_growth_queries_mb']:,.0f}") for e in r["engines"]],
            ]
        )
        table.append(
            [
                "process peak RSS (MB, incl. data)",
                *[cell(e, lambda x: f"{x['peak_rss_mb']:,.0f}") for e in r["engines"]],
            ]
        )
        table.append(
            [
                "disk (apparent / allocated MB)",
                *[
                    cell(
                        e,
                        lambda x: f"{x['disk_mb'][0]:,.0f} / {x['disk_mb'][1]:,.0f}" if x["disk_mb"] else "–",
                    )
                    for e in r["engines"]
                ],
            ]
        )
        reopen_row = {e: _find(r["reopens"], e, size) for e in r["engines"]}
        table.append(
            [
                "reopen + count (s)",
                *[cell(e, lambda x: f"{x['reopen_s']:.2f}", reopen_row) for e in r["engines"]],
            ]
        )
        table.append(
            [
                "RSS growth of reopen (MB)",
                *[cell(e, lambda x: f"{x['rss_growth_open_mb']:,.0f}", reopen_row) for e in r["engines"]],
            ]
        )
        table.append(
            [
                "after reopen: first query ms; dense / filtered p50 ms",
                *[
                    cell(
                        e,
                        lambda x: (
                            f"{x['first_query_ms']:.1f}; {x['dense']['p50_ms']:.2f} / "
                            f"{x['filtered']['p50_ms']:.2f}"
                        ),
                        reopen_row,
                    )
                    for e in r["engines"]
                ],
            ]
        )
        lines.append(markdown_table(headers, table))
        for skip in r["skipped"]:
            if skip["size"] == size:
                lines.append(f"\n{ENGINE_LABEL[skip['engine']]}: {skip['note']}.\n")
        for row in r["runs"]:
            if row.get("size") == size and "error" in row:
                lines.append(f"\n{ENGINE_LABEL[row['engine']]} failed: {row['error']}.\n")
        edge = rows.get("edge")
        if edge and edge["recall"]:
            rec_rows = []
            for mode in RECALL_MODES:
                rec = edge["recall"][mode]
                rec_rows.append(
                    [
                        mode,
                        f"{rec['recall_at_10']:.3f}",
                        f"{rec['exact']['p50_ms']:.2f} / {rec['exact']['p95_ms']:.2f}",
                    ]
                )
            lines.append("\nEdge HNSW vs exact search (`IndexQuery(exact=True)`), same queries:\n")
            lines.append(markdown_table(["mode", "recall@10", "exact p50 / p95 ms"], rec_rows))
            for other in ("local-memory", "local-path"):
                local = rows.get(other)
                if local:
                    agree = overlap_at(edge["ids"]["dense"], local["ids"]["dense"])
                    agree_f = overlap_at(edge["ids"]["filtered"], local["ids"]["filtered"])
                    lines.append(
                        f"\nEdge HNSW top 10 vs {ENGINE_LABEL[other]} (exact brute force) top 10, first "
                        f"{local['n_queries']} queries: overlap {agree:.3f} dense, {agree_f:.3f} filtered.\n"
                    )
    lines.append(f"\nWhole search benchmark: {r['wall_s'] / 60:.1f} min wall.\n")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point: orchestrate, or run one worker."""
    args = parse_args(argv)
    setup_logging(args.verbose)
    warnings.filterwarnings("ignore", message="Local mode is not recommended")
    if args.worker:
        config = json.loads(args.worker_config.read_text(encoding="utf-8"))
        result = worker_build(config) if args.worker == "build" else worker_reopen(config)
        args.worker_config.with_suffix(".result.json").write_text(json.dumps(result), encoding="utf-8")
        return 0
    result = run(args)
    write_outputs(render(result), result, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
