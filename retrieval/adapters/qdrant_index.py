"""`PromptIndex` on qdrant-client (a Qdrant server, or local `:memory:` mode for tests) via the Query API."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ApiException, UnexpectedResponse

from retrieval.adapters.index_common import (
    CRAFT_FIELD,
    DENSE_VECTOR,
    RETRIEVE_BATCH,
    RRF_K,
    SPARSE_VECTOR,
    TIE_MARGIN,
    UPSERT_BATCH,
    canonical_id,
    check_points,
    check_query,
    dense_of,
    mismatch_message,
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

METADATA_KEY = "imagine_index"
MEMORY_URL = ":memory:"
OVERSAMPLING = 1.0  # as the Edge index: quantized candidates per hit asked for, rescored with the originals
# The compact layout of the Edge index, in the flags a Qdrant v1.18 server (compose.yaml) understands:
# 4-bit TurboQuant copies of the dense vectors always in RAM; float32 originals, payloads and the sparse
# index on disk (mmap).
_QUANTIZATION = models.TurboQuantization(
    turbo=models.TurboQuantQuantizationConfig(bits=models.TurboQuantBitSize.BITS4, always_ram=True)
)
_SEARCH_PARAMS = models.SearchParams(
    quantization=models.QuantizationSearchParams(rescore=True, oversampling=OVERSAMPLING)
)
_EXACT_PARAMS = models.SearchParams(exact=True, quantization=models.QuantizationSearchParams(ignore=True))
_PAYLOAD_INDEXES = (
    ("safe", models.PayloadSchemaType.BOOL),
    ("source", models.PayloadSchemaType.KEYWORD),
    ("near_duplicates", models.PayloadSchemaType.INTEGER),
    (CRAFT_FIELD, models.PayloadSchemaType.FLOAT),  # crafted-only prefetches filter on it
)
# what a Qdrant call may raise: HTTP/transport errors, and ValueError/RuntimeError from local mode
_CLIENT_ERRORS = (ApiException, httpx.HTTPError, OSError, ValueError, RuntimeError)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, UnexpectedResponse):
        detail = exc.content.decode("utf-8", "replace")[:200]
        text = f"HTTP {exc.status_code} {exc.reason_phrase} {detail}"
    else:
        source = getattr(exc, "source", None)  # ResponseHandlingException wraps the transport error
        text = str(source if isinstance(source, BaseException) else exc)
    text = " ".join(text.split())
    return text or type(exc).__name__


def _unreachable(exc: BaseException) -> bool:
    """True for a connection or timeout failure (no answer from Qdrant), not an error Qdrant answered."""
    source = getattr(exc, "source", None)  # ResponseHandlingException wraps the transport error
    cause = source if isinstance(source, BaseException) else exc
    return isinstance(cause, httpx.TransportError | ConnectionError | TimeoutError)


def connect_qdrant(url: str, api_key: str | None, timeout_s: float) -> QdrantClient:
    """A client that has answered one cheap call; IndexUnavailableError when Qdrant cannot be reached."""
    if url == MEMORY_URL:
        return QdrantClient(location=MEMORY_URL)
    started = time.perf_counter()
    try:
        client = QdrantClient(
            url=url,
            api_key=api_key,
            timeout=max(1, math.ceil(timeout_s)),
            check_compatibility=False,
        )
    except (*_CLIENT_ERRORS, TypeError) as exc:
        raise IndexUnavailableError(
            f"cannot reach Qdrant at {url} (IMAGINE_QDRANT_URL): {_one_line(exc)}"
        ) from exc
    try:
        client.get_collections()
    except _CLIENT_ERRORS as exc:
        client.close()
        raise IndexUnavailableError(
            f"cannot reach Qdrant at {url} (IMAGINE_QDRANT_URL): {_one_line(exc)}"
        ) from exc
    logger.info("connected to Qdrant at %s in %.2f s", url, time.perf_counter() - started)
    return client


class QdrantClientPromptIndex:
    """`PromptIndex` in the Qdrant collection `collection`, reached through `client`.

    Same layout as the Edge index: named vectors "dense" (cosine) and "bm25" (sparse, IDF modifier),
    payload indexes on `safe`, `source`, `near_duplicates`; hybrid queries fuse a dense and a sparse
    prefetch with RRF (k=60). The spec lives in the collection's metadata under "imagine_index", so it
    never shows up in search results. `close()` closes the client unless `close_client=False`.
    Local mode ignores payload indexes, quantization and search params (it is always exact); a server
    builds HNSW in the background, so `finalize()` has nothing to do.

    A new collection gets the Edge index's compact memory layout (4-bit TurboQuant vectors always in RAM,
    originals `on_disk`, `on_disk_payload`, sparse index `on_disk`; queries rescore the quantized
    candidates with the originals). A collection created before keeps its in-RAM layout and works as before;
    a server converts its dense vectors in the background after `PATCH /collections/NAME` with
    `{"vectors": {"dense": {"on_disk": true}}, "quantization_config": {"turbo": {"bits": "bits4",
    "always_ram": true}}}` (`QdrantClient.update_collection`); a re-import (`imagine-bot index export`,
    then `index import` into a new collection) gives it the whole layout.
    """

    def __init__(
        self,
        client: QdrantClient,
        collection: str,
        *,
        close_client: bool = True,
        shard_number: int = 1,
        replication_factor: int = 1,
    ) -> None:
        """Use `collection` on `client` (created with these shards and replicas); read only on `open()`."""
        self._client = client
        self._shard_number = shard_number
        self._replication_factor = replication_factor
        self._collection = collection
        self._close_client = close_client
        self._spec: IndexSpec | None = None
        self._closed = False

    def open(self, spec: IndexSpec, *, create: bool) -> None:
        """Open the index; create it when missing and `create`; raise IndexMismatchError on another spec."""
        self._spec, self._closed = None, False
        with self._guard("open"):
            exists = self._client.collection_exists(self._collection)
        if not exists:
            if not create:
                raise IndexMissingError(
                    f"no prompt index in Qdrant collection '{self._collection}': "
                    "run `imagine-bot ingest PATH` first"
                )
            self._create(spec)
        recorded = self.spec()
        if recorded is None and not exists:
            raise IndexUnavailableError(
                f"Qdrant did not keep the metadata of the new collection '{self._collection}' "
                "(a server too old for collection metadata?): upgrade Qdrant"
            )
        if recorded is None:
            raise IndexMismatchError(
                f"Qdrant collection '{self._collection}' exists but was not built by imagine-bot "
                f"(no '{METADATA_KEY}' metadata): choose another IMAGINE_COLLECTION"
            )
        if recorded != spec:
            raise IndexMismatchError(mismatch_message(f"collection '{self._collection}'", recorded, spec))
        if exists:
            self._add_payload_indexes()
        self._spec = spec

    def _add_payload_indexes(self) -> None:
        """Index the payload fields an older collection lacks (the craft prior the crafted prefetch reads)."""
        try:
            present = set(self._client.get_collection(self._collection).payload_schema or {})
            for field, schema in _PAYLOAD_INDEXES:
                if field not in present:
                    self._client.create_payload_index(self._collection, field, field_schema=schema, wait=True)
                    logger.info("indexed payload field %s of collection '%s'", field, self._collection)
        except _CLIENT_ERRORS as exc:  # filters still work without the index, only slower
            logger.warning(
                "cannot index payload fields of collection '%s': %s", self._collection, _one_line(exc)
            )

    def spec(self) -> IndexSpec | None:
        """The spec recorded in the collection metadata, or None when there is no collection yet."""
        with self._guard("open"):
            if not self._client.collection_exists(self._collection):
                return None
            info = self._client.get_collection(self._collection)
        metadata = info.config.metadata or {}
        return spec_from_record(metadata.get(METADATA_KEY))

    def upsert(self, points: Sequence[IndexPoint]) -> None:
        """Insert or replace points by id."""
        spec = self._require_open()
        check_points(points, spec.dimension, f"collection '{self._collection}'")
        for start in range(0, len(points), UPSERT_BATCH):
            batch = [
                models.PointStruct(id=canonical_id(p.id), vector=_vectors(p), payload=dict(p.payload))
                for p in points[start : start + UPSERT_BATCH]
            ]
            with self._guard("upsert"):
                self._client.upsert(self._collection, points=batch, wait=True)

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of these ids are already stored (lets an interrupted ingest resume)."""
        self._require_open()
        by_key = {canonical_id(i): i for i in ids}
        keys = list(by_key)
        found: set[str] = set()
        for start in range(0, len(keys), RETRIEVE_BATCH):
            with self._guard("retrieve"):
                records = self._client.retrieve(
                    self._collection,
                    ids=list(keys[start : start + RETRIEVE_BATCH]),
                    with_payload=False,
                    with_vectors=False,
                )
            found.update(by_key[str(r.id)] for r in records if str(r.id) in by_key)
        return found

    def set_payload(self, fields: dict[str, Any], ids: Sequence[str]) -> None:
        """Set these payload fields on these stored points (no vector is rewritten)."""
        self._require_open()
        keys = [canonical_id(i) for i in ids]
        for start in range(0, len(keys), RETRIEVE_BATCH):
            with self._guard("set payload"):
                self._client.set_payload(
                    self._collection,
                    dict(fields),
                    points=list(keys[start : start + RETRIEVE_BATCH]),
                    wait=True,
                )

    def finalize(self) -> None:
        """Nothing to build: a Qdrant server indexes in the background and persists on its own."""
        self._require_open()

    def query(self, query: IndexQuery) -> list[IndexHit]:
        """Run a dense, sparse or hybrid (RRF, k=60) query; exact score ties come ordered by id."""
        spec = self._require_open()
        check_query(query, spec.dimension, f"collection '{self._collection}'")
        if query.mode is SearchMode.SPARSE and query.sparse is not None and not query.sparse.indices:
            return []
        query_filter = _filter(query)
        params = _EXACT_PARAMS if query.exact else _SEARCH_PARAMS
        dense = list(query.dense) if query.dense is not None else None
        sparse = _sparse(query.sparse) if query.sparse is not None else None
        prefetch: list[models.Prefetch] | None = None
        using: str | None
        scoring: models.Query | list[float] | models.SparseVector
        if query.mode is SearchMode.DENSE and dense is not None:
            scoring, using = dense, DENSE_VECTOR
        elif query.mode is SearchMode.SPARSE and sparse is not None:
            scoring, using = sparse, SPARSE_VECTOR
        elif dense is not None and sparse is not None:
            pool = signal_prefetch(query)
            filters = [query_filter]
            if query.crafted_min is not None:
                filters.append(_filter(query, crafted=True))
            prefetch = [
                models.Prefetch(query=signal, using=name, limit=pool, filter=where, params=params)
                for where in filters
                for signal, name in ((dense, DENSE_VECTOR), (sparse, SPARSE_VECTOR))
            ]
            if query.fusion is HybridFusion.DENSE:  # the union, each candidate scored by its cosine
                scoring, using = dense, DENSE_VECTOR
            else:
                scoring, using = models.RrfQuery(rrf=models.Rrf(k=RRF_K)), None
        else:
            raise ValueError(f"a {query.mode.value} query needs both a dense and a sparse vector")
        if query.craft_weight > 0:  # score boosting over the mode's best points, as the Edge adapter does
            prefetch = [
                models.Prefetch(
                    query=scoring,
                    using=using,
                    prefetch=prefetch,
                    filter=query_filter,
                    params=params,
                    limit=query.limit + TIE_MARGIN,
                )
            ]
            scoring, using = _craft_formula(query.craft_weight), None
        with self._guard("query"):
            response = self._client.query_points(
                self._collection,
                query=scoring,
                using=using,
                prefetch=prefetch,
                query_filter=query_filter,
                search_params=params,
                limit=query.limit + TIE_MARGIN,
                with_payload=list(query.payload_fields) if query.payload_fields is not None else True,
                with_vectors=[DENSE_VECTOR] if query.with_vectors else False,
            )
        hits = [
            IndexHit(
                id=str(p.id),
                score=float(p.score),
                payload=dict(p.payload or {}),
                dense=dense_of(p.vector) if query.with_vectors else None,
            )
            for p in response.points
        ]
        return stable_top(hits, query.limit)

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The whole payload of each stored id (ids not stored are left out)."""
        self._require_open()
        by_key = {canonical_id(i): i for i in ids}
        with self._guard("retrieve"):
            records = self._client.retrieve(
                self._collection, ids=list(by_key), with_payload=True, with_vectors=False
            )
        return {by_key[str(r.id)]: dict(r.payload or {}) for r in records if str(r.id) in by_key}

    def count(self) -> int:
        """Number of prompts stored."""
        self._require_open()
        with self._guard("count"):
            return int(self._client.count(self._collection, exact=True).count)

    def iter_prompts(self, batch_size: int = 1024) -> Iterator[str]:
        """Every stored prompt text, scrolled in pages of `batch_size`."""
        self._require_open()
        offset: models.ExtendedPointId | None = None
        while True:
            with self._guard("scroll"):
                records, offset = self._client.scroll(
                    self._collection,
                    limit=batch_size,
                    offset=offset,
                    with_payload=["prompt"],
                    with_vectors=False,
                )
            yield from (str((r.payload or {}).get("prompt", "")) for r in records)
            if offset is None or not records:
                return

    def iter_points(self, batch_size: int = 256) -> Iterator[IndexPoint]:
        """Every stored point with its vectors and payload, scrolled in pages of `batch_size`."""
        self._require_open()
        offset: models.ExtendedPointId | None = None
        while True:
            with self._guard("scroll"):
                records, offset = self._client.scroll(
                    self._collection, limit=batch_size, offset=offset, with_payload=True, with_vectors=True
                )
            yield from (point_of(str(r.id), r.vector, r.payload) for r in records)
            if offset is None or not records:
                return

    def close(self) -> None:
        """Forget the open index and close the client (when owned); calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._spec = None
        if self._close_client:
            try:
                self._client.close()
            except _CLIENT_ERRORS as exc:
                logger.warning("closing the Qdrant client failed: %s", _one_line(exc))

    def _create(self, spec: IndexSpec) -> None:
        with self._guard("create"):
            try:
                self._client.create_collection(
                    self._collection,
                    vectors_config={DENSE_VECTOR: _dense_params(spec.dimension)},
                    sparse_vectors_config={
                        SPARSE_VECTOR: models.SparseVectorParams(
                            modifier=models.Modifier.IDF, index=models.SparseIndexParams(on_disk=True)
                        )
                    },
                    quantization_config=_QUANTIZATION,
                    on_disk_payload=True,
                    metadata={METADATA_KEY: spec_record(spec)},
                    shard_number=self._shard_number,
                    replication_factor=self._replication_factor,
                )
            except UnexpectedResponse as exc:
                if exc.status_code != 409:  # 409: another ingest created it first; open() checks its spec
                    raise
            for field, schema in _PAYLOAD_INDEXES:
                self._client.create_payload_index(self._collection, field, field_schema=schema, wait=True)
        logger.info(
            "created Qdrant collection '%s' (%s, %d-d, %d shard(s), replication %d)",
            self._collection,
            spec.embed_model,
            spec.dimension,
            self._shard_number,
            self._replication_factor,
        )

    def _require_open(self) -> IndexSpec:
        if self._spec is None:
            raise IndexUnavailableError(
                f"Qdrant collection '{self._collection}' is not open: call open() first"
            )
        return self._spec

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except _CLIENT_ERRORS as exc:
            if _unreachable(exc):  # the server is down or the URL is wrong: say which setting to check
                raise IndexUnavailableError(
                    f"cannot reach Qdrant ({action} on collection '{self._collection}'): {_one_line(exc)}; "
                    "check that Qdrant is running at IMAGINE_QDRANT_URL"
                ) from exc
            raise IndexUnavailableError(
                f"Qdrant {action} failed on collection '{self._collection}': {_one_line(exc)}"
            ) from exc


def _dense_params(dimension: int) -> models.VectorParams:
    return models.VectorParams(size=dimension, distance=models.Distance.COSINE, on_disk=True)


def _vectors(point: IndexPoint) -> dict[str, models.Vector]:
    # as in the Edge index: a prompt of stopwords only gets no sparse vector, keeping IDF statistics equal
    vectors: dict[str, models.Vector] = {DENSE_VECTOR: list(point.dense)}
    if point.sparse.indices:
        vectors[SPARSE_VECTOR] = _sparse(point.sparse)
    return vectors


def _sparse(vector: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=list(vector.indices), values=[float(v) for v in vector.values])


def _craft_formula(weight: float) -> models.FormulaQuery:
    """score + weight × payload craft prior (0 when missing)."""
    craft = models.MultExpression(mult=[weight, CRAFT_FIELD])
    return models.FormulaQuery(
        formula=models.SumExpression(sum=["$score", craft]), defaults={CRAFT_FIELD: 0.0}
    )


def _filter(query: IndexQuery, *, crafted: bool = False) -> models.Filter | None:
    conditions: list[models.Condition] = []
    if query.safe_only:
        conditions.append(models.FieldCondition(key="safe", match=models.MatchValue(value=True)))
    conditions.extend(
        models.FieldCondition(key=k, match=models.MatchValue(value=v)) for k, v in query.must_match.items()
    )
    if crafted and query.crafted_min is not None:
        conditions.append(models.FieldCondition(key=CRAFT_FIELD, range=models.Range(gte=query.crafted_min)))
    return models.Filter(must=conditions) if conditions else None
