"""Shared pieces of the two PromptIndex adapters: vector names, spec records, checks and tie-breaking."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from retrieval.errors import IndexMismatchError
from retrieval.index_ports import IndexHit, IndexPoint, IndexQuery, IndexSpec, SearchMode, SparseVector

DENSE_VECTOR = "dense"
SPARSE_VECTOR = "bm25"
RRF_K = 60
TIE_MARGIN = 10  # extra hits fetched so that exact ties at the cut are settled by id, not by the engine
CRAFT_FIELD = "craft"  # retrieval.craft.CRAFT_FIELD: the payload field score boosting reads
SPEC_FILE = "imagine_index.json"
SPEC_FORMAT = 1
UPSERT_BATCH = 512
RETRIEVE_BATCH = 1024


def prefetch_limit(limit: int) -> int:
    """How many candidates each signal contributes to a hybrid query by default."""
    return max(50, 4 * limit)


def signal_prefetch(query: IndexQuery) -> int:
    """How many candidates each signal (and each crafted-only prefetch) contributes to a hybrid query."""
    return query.prefetch if query.prefetch is not None else prefetch_limit(query.limit)


def mismatch_message(where: str, recorded: IndexSpec, wanted: IndexSpec) -> str:
    """The one-line message of IndexMismatchError, naming both models and dimensions."""
    return (
        f"index at {where} was built with {recorded.embed_model} ({recorded.dimension}-d); "
        f"IMAGINE_EMBED_MODEL is {wanted.embed_model} ({wanted.dimension}-d): "
        "re-ingest into another IMAGINE_COLLECTION or IMAGINE_DATA_DIR"
    )


def spec_record(spec: IndexSpec) -> dict[str, Any]:
    """The JSON record of a spec, stored next to (or inside) an index."""
    names = {"dense_vector": DENSE_VECTOR, "sparse_vector": SPARSE_VECTOR}
    return {"format": SPEC_FORMAT, "embed_model": spec.embed_model, "dimension": spec.dimension, **names}


def spec_from_record(record: object) -> IndexSpec | None:
    """Parse a spec record; None when it is not one."""
    if not isinstance(record, dict):
        return None
    model, dimension = record.get("embed_model"), record.get("dimension")
    if not isinstance(model, str) or not isinstance(dimension, int) or isinstance(dimension, bool):
        return None
    return IndexSpec(embed_model=model, dimension=dimension)


def stable_top(hits: list[IndexHit], limit: int) -> list[IndexHit]:
    """The best `limit` hits, exact score ties ordered by id (engines order them arbitrarily)."""
    return sorted(hits, key=lambda h: (-h.score, h.id))[:limit]


def check_query(query: IndexQuery, dimension: int, where: str) -> None:
    """Reject a query that lacks the vectors its mode needs or whose dense vector has the wrong size."""
    if query.limit < 1:
        raise ValueError(f"query limit must be at least 1, got {query.limit}")
    if query.prefetch is not None and query.prefetch < 1:
        raise ValueError(f"query prefetch must be at least 1, got {query.prefetch}")
    if query.mode in (SearchMode.DENSE, SearchMode.HYBRID) and query.dense is None:
        raise ValueError(f"a {query.mode.value} query needs a dense vector")
    if query.mode in (SearchMode.SPARSE, SearchMode.HYBRID) and query.sparse is None:
        raise ValueError(f"a {query.mode.value} query needs a sparse vector")
    if query.dense is not None and len(query.dense) != dimension:
        raise IndexMismatchError(
            f"query vector has {len(query.dense)} dimensions but the index at {where} "
            f"holds {dimension}-d vectors"
        )


def check_points(points: Sequence[IndexPoint], dimension: int, where: str) -> None:
    """Reject points whose dense vector does not match the index dimension."""
    for point in points:
        if len(point.dense) != dimension:
            raise IndexMismatchError(
                f"point {point.id} has a {len(point.dense)}-d vector but the index at {where} "
                f"holds {dimension}-d vectors"
            )


def one_line(exc: BaseException) -> str:
    """An exception as one line of text."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def canonical_id(point_id: str) -> str:
    """The canonical form of a UUID point id; ValueError when it is not a UUID."""
    try:
        return str(uuid.UUID(point_id))
    except ValueError as exc:
        raise ValueError(f"point id {point_id!r} is not a UUID string") from exc


def dense_of(vector: object) -> list[float] | None:
    """The "dense" vector of a returned point's named vectors, if present."""
    if isinstance(vector, dict):
        dense = vector.get(DENSE_VECTOR)
        if isinstance(dense, list):
            return [float(x) for x in dense]
    return None


def point_of(point_id: str, vector: object, payload: dict[str, Any] | None) -> IndexPoint:
    """An IndexPoint from a scrolled record's named vectors (a missing sparse vector is an empty one)."""
    named = vector if isinstance(vector, dict) else {}
    sparse = named.get(SPARSE_VECTOR)
    return IndexPoint(
        id=point_id,
        dense=dense_of(named) or [],
        sparse=SparseVector(
            [int(i) for i in getattr(sparse, "indices", [])],
            [float(v) for v in getattr(sparse, "values", [])],
        ),
        payload=dict(payload or {}),
    )
