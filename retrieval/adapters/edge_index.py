"""`PromptIndex` on Qdrant Edge: an in-process Rust shard in one directory, with HNSW and BM25 (IDF).

Memory layout of a new index (`IndexLayout.COMPACT`, see `edge_config`): the dense vectors are kept twice,
as 4-bit TurboQuant codes pinned in RAM (192 bytes per 384-d prompt, what HNSW and the first scoring pass
read) and as the float32 originals in a memory-mapped file that is not pre-loaded (`Memory.Cold`): a query
reads only the originals of its candidates, to rescore them exactly. The HNSW graph is mmap'd and
pre-warmed (`Memory.Cached`); payloads, the payload indexes (`on_disk`: ~200 MB less anonymous memory at
1M prompts), the BM25 inverted index and the id tracker are mmap'd cold (a query reads the pages it
needs). Pages read from the cold files stay in the process's RSS as file-backed page cache, which the
kernel drops under memory pressure. `IndexLayout.IN_RAM` is the layout of indexes created before (every
float32 vector resident); bench/bench_layout.py measures both at 1M prompts (bench/RESULTS.md).

An index built with the in-RAM layout opens and serves as before (its layout is stored in the shard); the
next `finalize()` - every `imagine-bot ingest`, which skips the prompts already stored, ends with one - loads
it with the compact configuration and re-optimizes it, a full HNSW rebuild; it also moves payload indexes
kept in RAM to disk (seconds: ~19 s at 1M prompts).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import numpy as np
from qdrant_edge import (
    BoolIndexParams,
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    Expression,
    FieldCondition,
    Filter,
    FloatIndexParams,
    Formula,
    Fusion,
    HnswIndexConfig,
    IntegerIndexParams,
    KeywordIndexParams,
    MatchValue,
    Memory,
    Modifier,
    PayloadSchemaType,
    Point,
    Prefetch,
    QuantizationSearchParams,
    Query,
    QueryRequest,
    RangeFloat,
    ScrollRequest,
    SearchParams,
    TurboQuantBitSize,
    TurboQuantQuantizationConfig,
    UpdateOperation,
)
from qdrant_edge import SparseVector as EdgeSparseVector

if TYPE_CHECKING:
    from qdrant_edge import ConditionType, NamedVector

from retrieval.adapters.index_common import (
    CRAFT_FIELD,
    DENSE_VECTOR,
    RETRIEVE_BATCH,
    RRF_K,
    SPARSE_VECTOR,
    SPEC_FILE,
    TIE_MARGIN,
    UPSERT_BATCH,
    canonical_id,
    check_points,
    check_query,
    dense_of,
    mismatch_message,
    one_line,
    point_of,
    signal_prefetch,
    spec_from_record,
    spec_record,
    stable_top,
)
from retrieval.errors import IndexMismatchError, IndexMissingError, IndexUnavailableError
from retrieval.index_ports import (
    HybridFusion,
    IndexHit,
    IndexPoint,
    IndexQuery,
    IndexSpec,
    SearchMode,
    SparseVector,
)

logger = logging.getLogger(__name__)

_EDGE_CONFIG_FILE = "edge_config.json"
# Quantized candidates per hit asked for, rescored with the originals. The queries already fetch more than
# they keep (TIE_MARGIN, the hybrid prefetch pools); at 1M prompts 2.0 gave the same dense recall@10 as
# 1.0 (0.991) and read ~140 MB more of the originals per 800 queries (scratch sweep, 2026-12-06).
OVERSAMPLING = 1.0
# Every approximate query rescores with the originals (Edge does not by default when they are on disk);
# an exact query scans the originals only. Both are no-ops on a segment without quantized vectors.
_SEARCH_PARAMS = SearchParams(quantization=QuantizationSearchParams(rescore=True, oversampling=OVERSAMPLING))
_EXACT_PARAMS = SearchParams(exact=True, quantization=QuantizationSearchParams(ignore=True))
_PAYLOAD_INDEXES = (
    ("safe", PayloadSchemaType.Bool),
    ("source", PayloadSchemaType.Keyword),
    ("near_duplicates", PayloadSchemaType.Integer),
    (CRAFT_FIELD, PayloadSchemaType.Float),  # crafted-only prefetches filter on it
)


def field_index(schema: PayloadSchemaType, layout: IndexLayout | None) -> Any:
    """How a payload field is indexed in `layout`: in RAM (the in-RAM layout), else mmap'd on disk."""
    if layout is IndexLayout.IN_RAM:
        return schema
    if schema == PayloadSchemaType.Bool:
        return BoolIndexParams(on_disk=True)
    if schema == PayloadSchemaType.Keyword:
        return KeywordIndexParams(on_disk=True)
    if schema == PayloadSchemaType.Integer:
        return IntegerIndexParams(lookup=True, range=True, on_disk=True)
    return FloatIndexParams(on_disk=True)


def _on_disk(info: Any) -> bool:
    """Whether a payload index (an entry of the shard's `payload_schema`) is mmap'd from disk."""
    return bool(getattr(info.params, "on_disk", False))


class IndexLayout(StrEnum):
    """Where an Edge index keeps its parts: what `edge_config` builds."""

    COMPACT = "compact"  # 4-bit vectors in RAM; originals, payloads, BM25 on disk (mmap); rescoring
    IN_RAM = "in_ram"  # every float32 vector resident: the layout of indexes created before COMPACT


def edge_config(dimension: int, layout: IndexLayout = IndexLayout.COMPACT) -> EdgeConfig:
    """The shard configuration of an index of `dimension`-d vectors in `layout`."""
    if layout is IndexLayout.IN_RAM:
        return EdgeConfig(
            vectors={DENSE_VECTOR: EdgeVectorParams(size=dimension, distance=Distance.Cosine)},
            sparse_vectors={SPARSE_VECTOR: EdgeSparseVectorParams(modifier=Modifier.Idf)},
            hnsw_config=_hnsw(None),
        )
    quantized = TurboQuantQuantizationConfig(bits=TurboQuantBitSize.Bits4, memory=Memory.Pinned)
    dense = EdgeVectorParams(
        size=dimension, distance=Distance.Cosine, memory=Memory.Cold, quantization_config=quantized
    )
    return EdgeConfig(
        vectors={DENSE_VECTOR: dense},
        sparse_vectors={SPARSE_VECTOR: EdgeSparseVectorParams(modifier=Modifier.Idf, memory=Memory.Cold)},
        hnsw_config=_hnsw(Memory.Cached),
        payload_memory=Memory.Cold,
        id_tracker_memory=Memory.Cold,
    )


def _hnsw(memory: Memory | None) -> HnswIndexConfig:
    # full_scan_threshold is in KB: segments below ~6,500 384-d vectors are scanned, not graphed
    return HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10_000, memory=memory)


class EdgePromptIndex:
    """`PromptIndex` stored by Qdrant Edge (`EdgeShard`) in the directory `path`.

    Layout: the shard files (`edge_config.json`, `segments/`, `wal/`) plus `imagine_index.json`, the
    spec (embedding model and dimension) the index was built with. Vectors: "dense" (cosine) and
    "bm25" (sparse, IDF applied at query time); payload indexes on `safe`, `source`, `near_duplicates`.
    A new index gets the memory `layout` (compact by default, see the module docstring); an existing one
    keeps its own until `finalize()` converts it.

    One opener at a time: Edge locks the shard's write-ahead log, so a second `open()` of the same
    directory, from this process (another instance) or from another process, raises
    IndexUnavailableError ("... is already open ...") until the first one calls `close()` (or is
    garbage-collected). One open instance may be shared by the threads of a process.
    """

    def __init__(self, path: Path, layout: IndexLayout = IndexLayout.COMPACT) -> None:
        """Remember where the index lives and its layout; nothing is read until `open()` or `spec()`."""
        self._path = Path(path)
        self._layout = layout
        self._shard: EdgeShard | None = None
        self._spec: IndexSpec | None = None

    @property
    def path(self) -> Path:
        """The index directory."""
        return self._path

    def open(self, spec: IndexSpec, *, create: bool) -> None:
        """Open the index; create it when missing and `create`; raise IndexMismatchError on another spec."""
        self.close()
        recorded = self.spec()
        has_shard = (self._path / _EDGE_CONFIG_FILE).exists()
        if recorded is None and has_shard:
            raise IndexUnavailableError(
                f"{self._path} holds a Qdrant Edge shard without {SPEC_FILE} (not an imagine-bot index, "
                "or its creation was interrupted): delete the directory and run `imagine-bot ingest PATH`"
            )
        if recorded is not None and recorded != spec:
            raise IndexMismatchError(mismatch_message(str(self._path), recorded, spec))
        if not has_shard:
            if not create:
                raise IndexMissingError(
                    f"no prompt index at {self._path}: run `imagine-bot ingest PATH` first"
                )
            self._create(spec)
        else:
            started = time.perf_counter()
            self._shard = self._edge_call(EdgeShard.load)
            logger.info("opened prompt index at %s in %.2f s", self._path, time.perf_counter() - started)
            self._add_payload_indexes(self._shard)
            stored = self.layout()
            if stored is not None and stored is not self._layout:
                logger.warning(
                    "prompt index at %s has the %s memory layout, not %s (at 1M prompts the in-RAM one "
                    "keeps ~1.5 GB more resident): an `imagine-bot ingest`, even of prompts already "
                    "stored, ends by converting it",
                    self._path,
                    stored.value,
                    self._layout.value,
                )
        self._spec = spec

    def layout(self) -> IndexLayout | None:
        """The memory layout stored in the shard's configuration; None when there is no readable one."""
        try:
            record = json.loads((self._path / _EDGE_CONFIG_FILE).read_text(encoding="utf-8"))
            dense = record["vectors"][DENSE_VECTOR]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        quantized = isinstance(dense, dict) and dense.get("quantization_config") is not None
        return IndexLayout.COMPACT if quantized else IndexLayout.IN_RAM

    def spec(self) -> IndexSpec | None:
        """The spec recorded in an existing index, or None when there is no index yet."""
        spec_path = self._path / SPEC_FILE
        try:
            text = spec_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IndexUnavailableError(f"cannot read {spec_path}: {one_line(exc)}") from exc
        try:
            spec = spec_from_record(json.loads(text))
        except json.JSONDecodeError:
            spec = None
        if spec is None:
            raise IndexUnavailableError(
                f"{spec_path} is corrupt: delete {self._path} and run `imagine-bot ingest PATH`"
            )
        return spec

    def upsert(self, points: Sequence[IndexPoint]) -> None:
        """Insert or replace points by id."""
        shard, spec = self._require_open()
        check_points(points, spec.dimension, str(self._path))
        for start in range(0, len(points), UPSERT_BATCH):
            batch = [
                Point(canonical_id(p.id), _vectors(p), dict(p.payload))
                for p in points[start : start + UPSERT_BATCH]
            ]
            with self._guard("upsert"):
                shard.update(UpdateOperation.upsert_points(batch))

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of these ids are already stored (lets an interrupted ingest resume)."""
        shard, _ = self._require_open()
        by_key = {canonical_id(i): i for i in ids}
        keys = list(by_key)
        found: set[str] = set()
        for start in range(0, len(keys), RETRIEVE_BATCH):
            with self._guard("retrieve"):
                records = shard.retrieve(list(keys[start : start + RETRIEVE_BATCH]), False, False)
            found.update(by_key[str(r.id)] for r in records if str(r.id) in by_key)
        return found

    def set_payload(self, fields: dict[str, Any], ids: Sequence[str]) -> None:
        """Set these payload fields on these stored points (no vector is rewritten, no graph rebuilt)."""
        shard, _ = self._require_open()
        keys: list[int | UUID | str] = [canonical_id(i) for i in ids]
        for start in range(0, len(keys), RETRIEVE_BATCH):
            with self._guard("set payload"):
                shard.update(UpdateOperation.set_payload(keys[start : start + RETRIEVE_BATCH], dict(fields)))

    def finalize(self) -> None:
        """Build the HNSW graph and payload structures (blocking), then flush everything to disk.

        An index in another layout than this instance's is first reloaded with this layout's
        configuration, so the optimization rebuilds every segment in it.
        """
        shard, spec = self._require_open()
        started = time.perf_counter()
        stored = self.layout()
        with self._guard("optimize"):
            if stored is not None and stored is not self._layout:
                logger.info("converting prompt index at %s to the %s layout", self._path, self._layout.value)
                self._shard = None
                shard.flush()
                shard.close()
                shard = self._edge_call(EdgeShard.load, edge_config(spec.dimension, self._layout))
                self._shard = shard
            self._payload_indexes_to_disk(shard)
            shard.optimize()
            shard.flush()
        logger.info("optimized prompt index at %s in %.2f s", self._path, time.perf_counter() - started)

    def payload_indexes_on_disk(self) -> dict[str, bool]:
        """Each indexed payload field, and whether its index is mmap'd from disk (else held in RAM)."""
        shard, _ = self._require_open()
        with self._guard("info"):
            schema = shard.info().payload_schema
        return {field: _on_disk(info) for field, info in schema.items()}

    def _payload_indexes_to_disk(self, shard: EdgeShard) -> None:
        """In the compact layout, re-create each payload index kept in RAM as an on-disk one."""
        if self._layout is IndexLayout.IN_RAM:
            return
        schema_of = dict(_PAYLOAD_INDEXES)
        for field, info in shard.info().payload_schema.items():
            if field in schema_of and not _on_disk(info):
                logger.info("moving the payload index of %r in %s to disk", field, self._path)
                shard.update(UpdateOperation.delete_field_index(field))
                shard.update(
                    UpdateOperation.create_field_index(field, field_index(schema_of[field], self._layout))
                )

    def query(self, query: IndexQuery) -> list[IndexHit]:
        """Run a dense, sparse or hybrid (RRF, k=60) query; exact score ties come ordered by id."""
        shard, spec = self._require_open()
        check_query(query, spec.dimension, str(self._path))
        if query.mode is SearchMode.SPARSE and query.sparse is not None and not query.sparse.indices:
            return []
        query_filter = _filter(query)
        params = _EXACT_PARAMS if query.exact else _SEARCH_PARAMS
        scoring, prefetches = _scoring(query, query_filter, params)
        request = QueryRequest(
            limit=query.limit + TIE_MARGIN,
            query=scoring,
            prefetches=prefetches,
            filter=query_filter,
            params=params,
            with_payload=list(query.payload_fields) if query.payload_fields is not None else True,
            with_vector=[DENSE_VECTOR] if query.with_vectors else False,
        )
        with self._guard("query"):
            scored = shard.query(request)
        hits = [
            IndexHit(
                id=str(p.id),
                score=float(p.score),
                payload=dict(p.payload or {}),
                dense=dense_of(p.vector) if query.with_vectors else None,
            )
            for p in scored
        ]
        return stable_top(hits, query.limit)

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The whole payload of each stored id (ids not stored are left out)."""
        shard, _ = self._require_open()
        by_key = {canonical_id(i): i for i in ids}
        with self._guard("retrieve"):
            records = shard.retrieve(list(by_key), True, False)
        return {by_key[str(r.id)]: dict(r.payload or {}) for r in records if str(r.id) in by_key}

    def count(self) -> int:
        """Number of prompts stored."""
        shard, _ = self._require_open()
        with self._guard("count"):
            return int(shard.count(CountRequest(exact=True)))

    def iter_prompts(self, batch_size: int = 1024) -> Iterator[str]:
        """Every stored prompt text, scrolled in pages of `batch_size`."""
        shard, _ = self._require_open()
        offset: Any = None
        while True:
            with self._guard("scroll"):
                records, offset = shard.scroll(
                    ScrollRequest(offset=offset, limit=batch_size, with_payload=["prompt"], with_vector=False)
                )
            yield from (str((r.payload or {}).get("prompt", "")) for r in records)
            if offset is None or not records:
                return

    def iter_points(self, batch_size: int = 256) -> Iterator[IndexPoint]:
        """Every stored point with its vectors and payload, scrolled in pages of `batch_size`."""
        shard, _ = self._require_open()
        offset: Any = None
        while True:
            with self._guard("scroll"):
                records, offset = shard.scroll(
                    ScrollRequest(offset=offset, limit=batch_size, with_payload=True, with_vector=True)
                )
            yield from (point_of(str(r.id), r.vector, r.payload) for r in records)
            if offset is None or not records:
                return

    def close(self) -> None:
        """Flush and release the shard (and its lock); calling it again does nothing."""
        shard, self._shard = self._shard, None
        if shard is None:
            return
        try:
            shard.flush()
        except Exception as exc:  # the WAL still holds every update
            logger.warning("flushing the prompt index at %s failed: %s", self._path, one_line(exc))
        shard.close()

    def _create(self, spec: IndexSpec) -> None:
        config = edge_config(spec.dimension, self._layout)
        with self._guard("create"):
            self._path.mkdir(parents=True, exist_ok=True)
            _write_json_atomic(self._path / SPEC_FILE, spec_record(spec))
            shard = self._edge_call(EdgeShard.create, config)
            try:
                for field, schema in _PAYLOAD_INDEXES:
                    shard.update(UpdateOperation.create_field_index(field, field_index(schema, self._layout)))
                shard.flush()
            except BaseException:
                shard.close()
                raise
        self._shard = shard
        logger.info(
            "created prompt index at %s (%s, %d-d, %s layout)",
            self._path,
            spec.embed_model,
            spec.dimension,
            self._layout.value,
        )

    def _add_payload_indexes(self, shard: EdgeShard) -> None:
        """Index the payload fields an older index lacks (the craft prior: ~1 s at 79k prompts, once)."""
        try:
            present = set(shard.info().payload_schema)
            missing = [(field, schema) for field, schema in _PAYLOAD_INDEXES if field not in present]
            layout = self.layout()
            for field, schema in missing:
                shard.update(UpdateOperation.create_field_index(field, field_index(schema, layout)))
            if missing:
                shard.flush()
                logger.info("indexed payload fields %s of %s", [f for f, _ in missing], self._path)
        except Exception as exc:  # filters still work without the index, only slower
            logger.warning("cannot index payload fields of %s: %s", self._path, one_line(exc))

    def _edge_call(self, opener: Callable[..., EdgeShard], *args: Any) -> EdgeShard:
        try:
            shard = opener(str(self._path), *args)
        except Exception as exc:
            message = one_line(exc)
            if "WouldBlock" in message:
                raise IndexUnavailableError(
                    f"prompt index at {self._path} is already open by another process or another index "
                    "instance (Qdrant Edge allows one opener per directory): stop the other imagine-bot "
                    "process or use another IMAGINE_DATA_DIR"
                ) from exc
            raise IndexUnavailableError(
                f"cannot open prompt index at {self._path}: {message} "
                "(delete the directory and run `imagine-bot ingest PATH` if it is corrupt)"
            ) from exc
        return shard

    def _require_open(self) -> tuple[EdgeShard, IndexSpec]:
        if self._shard is None or self._spec is None:
            raise IndexUnavailableError(f"prompt index at {self._path} is not open: call open() first")
        return self._shard, self._spec

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except (IndexUnavailableError, IndexMismatchError, IndexMissingError):
            raise
        except Exception as exc:
            raise IndexUnavailableError(
                f"Qdrant Edge {action} failed on the prompt index at {self._path}: {one_line(exc)}"
            ) from exc


def _vectors(point: IndexPoint) -> dict[str, NamedVector]:
    # a prompt of stopwords only has no sparse vector at all: it stays out of the IDF statistics
    vectors: dict[str, NamedVector] = {DENSE_VECTOR: list(point.dense)}
    if point.sparse.indices:
        vectors[SPARSE_VECTOR] = _edge_sparse(point.sparse)
    return vectors


def _match(value: str | int | bool) -> MatchValue:
    # qdrant-edge 0.9 converts a Python bool to the integer 1/0, which never matches a bool field;
    # numpy.bool_ is not an int, so it reaches Rust as a real bool
    if isinstance(value, bool):
        return MatchValue(cast(bool, np.bool_(value)))
    return MatchValue(value)


def _edge_sparse(vector: SparseVector) -> EdgeSparseVector:
    return EdgeSparseVector(list(vector.indices), [float(v) for v in vector.values])


def _filter(query: IndexQuery, *, crafted: bool = False) -> Filter | None:
    conditions: list[ConditionType] = []
    if query.safe_only:
        conditions.append(FieldCondition(key="safe", match=_match(True)))
    conditions.extend(FieldCondition(key=k, match=_match(v)) for k, v in query.must_match.items())
    if crafted and query.crafted_min is not None:
        conditions.append(FieldCondition(key=CRAFT_FIELD, range=RangeFloat(gte=query.crafted_min)))
    return Filter(must=conditions) if conditions else None


def _scoring(
    query: IndexQuery, query_filter: Filter | None, params: SearchParams | None
) -> tuple[Query | Fusion | Formula, list[Prefetch] | None]:
    """The mode's scoring, wrapped in score boosting by the craft prior when `craft_weight` is set."""
    scoring, prefetches = _mode_scoring(query, query_filter, params)
    if query.craft_weight <= 0:
        return scoring, prefetches
    ranked = Prefetch(
        limit=query.limit + TIE_MARGIN,
        query=scoring,
        prefetches=prefetches,
        filter=query_filter,
        params=params,
    )
    craft = Expression.Mult([Expression.Constant(query.craft_weight), Expression.Variable(CRAFT_FIELD)])
    boosted = Formula(Expression.Sum([Expression.Variable("$score"), craft]), defaults={CRAFT_FIELD: 0.0})
    return boosted, [ranked]


def _mode_scoring(
    query: IndexQuery, query_filter: Filter | None, params: SearchParams | None
) -> tuple[Query | Fusion, list[Prefetch] | None]:
    # check_query() made sure the vectors the mode needs are there
    dense = Query.Nearest(list(query.dense or []), using=DENSE_VECTOR)
    if query.mode is SearchMode.DENSE:
        return dense, None
    sparse = Query.Nearest(_edge_sparse(query.sparse or SparseVector([], [])), using=SPARSE_VECTOR)
    if query.mode is SearchMode.SPARSE:
        return sparse, None
    pool = signal_prefetch(query)
    filters = [query_filter] if query.crafted_min is None else [query_filter, _filter(query, crafted=True)]
    prefetches = [
        Prefetch(limit=pool, query=signal, filter=where, params=params)
        for where in filters
        for signal in (dense, sparse)
    ]
    if query.fusion is HybridFusion.DENSE:  # the union, each candidate scored by its cosine to the query
        return dense, prefetches
    # the stubs do not declare Fusion.Rrf as a Fusion, although QueryRequest accepts it
    return cast(Fusion, Fusion.Rrf(k=RRF_K)), prefetches


def _write_json_atomic(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
