"""The Edge index of bench_search.py's dataset at one size and memory layout, built once and cached.

Used by bench_slack.py (the serving app at 1M prompts) and bench_layout.py (in-RAM vs compact layout). The
index lives in `synthetic_<layout>_<size>/index` under the out dir; `bench_complete.json` next to it says
it was finished (a build that died leaves no marker and is redone) and records the build's time and peak
RSS. A cached index whose shard configuration differs from what `edge_config` gives today is rebuilt. A
`.building` file holding the builder's pid makes a second bench wait instead of building twice.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from common import Timer, fresh_dir

from retrieval.adapters.edge_index import IndexLayout, edge_config

logger = logging.getLogger("synthetic_index")

MARKER = "bench_complete.json"
EDGE_CONFIG = "edge_config.json"


def current_config(dimension: int, layout: IndexLayout) -> Any:
    """The shard configuration Edge stores for a new index in `layout` today (as parsed JSON)."""
    from qdrant_edge import EdgeShard

    with tempfile.TemporaryDirectory() as folder:
        EdgeShard.create(folder, edge_config(dimension, layout)).close()
        return json.loads((Path(folder) / EDGE_CONFIG).read_text(encoding="utf-8"))


def covers(stored: Any, wanted: Any) -> bool:
    """True when `stored` has every value of `wanted` (Edge adds resolved defaults to what it stores)."""
    if isinstance(wanted, dict):
        return isinstance(stored, dict) and all(
            k in stored and covers(stored[k], v) for k, v in wanted.items()
        )
    return bool(stored == wanted)


def synthetic_index_dir(out_dir: Path, size: int, layout: IndexLayout) -> Path:
    """Where the index of `size` prompts in `layout` is cached (the index itself is in `index/`)."""
    return out_dir / f"synthetic_{layout.value}_{size}"


def ensure_synthetic_index(out_dir: Path, size: int, layout: IndexLayout) -> tuple[Path, dict[str, Any]]:
    """The cached index directory and its build record (`reused` says whether it was built now)."""
    from bench_search import LOAD_CHUNK, SPEC, build_dataset

    from retrieval.adapters.bm25 import Bm25SparseEncoder
    from retrieval.adapters.edge_index import EdgePromptIndex
    from retrieval.index_ports import IndexPoint

    index_dir = synthetic_index_dir(out_dir, size, layout)
    marker = index_dir / MARKER
    lock = out_dir / f"{index_dir.name}.building"
    while lock.is_file() and Path(f"/proc/{lock.read_text(encoding='utf-8').strip()}").exists():
        logger.info("another process is building %s; waiting", index_dir)
        time.sleep(10)
    stored = index_dir / "index" / EDGE_CONFIG
    if marker.is_file() and covers(json.loads(stored.read_text()), current_config(SPEC.dimension, layout)):
        info: dict[str, Any] = json.loads(marker.read_text(encoding="utf-8"))
        info["reused"] = True
        return index_dir, info
    fresh_dir(index_dir, out_dir)
    lock.write_text(str(os.getpid()), encoding="utf-8")
    with Timer() as total:
        data = build_dataset(out_dir, size)
        encoder = Bm25SparseEncoder()
        index = EdgePromptIndex(index_dir / "index", layout=layout)
        index.open(SPEC, create=True)
        with Timer() as upsert:
            for start in range(0, size, LOAD_CHUNK):
                stop = min(start + LOAD_CHUNK, size)
                vectors = data.vectors[start:stop].tolist()
                sparse = [encoder.encode_document(data.texts[i]) for i in range(start, stop)]
                index.upsert(
                    [
                        IndexPoint(data.ids[i], vectors[i - start], sparse[i - start], data.payloads[i])
                        for i in range(start, stop)
                    ]
                )
                if (start // LOAD_CHUNK) % 50 == 0:
                    logger.info("%s index %d: %d/%d upserted", layout.value, size, stop, size)
        del data
        gc.collect()
        with Timer() as build:
            index.finalize()
        count = index.count()
        index.close()
    info = {
        "size": size,
        "layout": layout.value,
        "count": count,
        "build_s": total.seconds,
        "upsert_s": upsert.seconds,
        "finalize_s": build.seconds,
        "builder_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    marker.write_text(json.dumps(info), encoding="utf-8")
    lock.unlink(missing_ok=True)
    info["reused"] = False
    return index_dir, info
