"""Ports owned by the retrieval package: the embedder, the sparse encoder and the prompt index."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

Vector = list[float]


class SearchMode(StrEnum):
    """Which signals a query uses."""

    HYBRID = "hybrid"
    DENSE = "dense"
    SPARSE = "sparse"


class HybridFusion(StrEnum):
    """How a hybrid query scores the union of its dense and BM25 candidates."""

    RRF = "rrf"  # reciprocal rank fusion (k=60) of the two rankings
    DENSE = "dense"  # every candidate, whichever signal found it, scored by dense (cosine) similarity


@dataclass(frozen=True)
class SparseVector:
    """A sparse term vector (BM25 weights by hashed token id)."""

    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class IndexSpec:
    """What built an index: the embedding model and its dimension; mixing them is refused."""

    embed_model: str
    dimension: int


@dataclass(frozen=True)
class IndexPoint:
    """One prompt ready for the index: stable id, vectors and payload (payload['prompt'] holds the text)."""

    id: str
    dense: Vector
    sparse: SparseVector
    payload: dict[str, Any]


@dataclass(frozen=True)
class IndexQuery:
    """A query against the index; `safe_only` hides points whose payload has safe=False.

    A hybrid query takes `prefetch` candidates from each signal (None: `prefetch_limit(limit)`), and with
    `crafted_min` set another `prefetch` from each signal among the points whose payload["craft"] is at
    least `crafted_min` (crafted prompts, which an unfiltered top N of a short idea holds few of); the
    union is scored by `fusion`. With `craft_weight` > 0 the mode's best points (`limit`, plus the
    adapters' tie margin) are re-scored in the index by Qdrant score boosting: score + craft_weight ×
    payload["craft"] (0 when a point has none), best first.
    """

    dense: Vector | None
    sparse: SparseVector | None
    mode: SearchMode = SearchMode.HYBRID
    limit: int = 20
    safe_only: bool = True
    exact: bool = False
    must_match: dict[str, str | int | bool] = field(default_factory=dict)
    with_vectors: bool = False
    craft_weight: float = 0.0
    payload_fields: tuple[str, ...] | None = None  # None: the whole payload
    prefetch: int | None = None
    crafted_min: float | None = None
    fusion: HybridFusion = HybridFusion.RRF


@dataclass(frozen=True)
class IndexHit:
    """A point returned by the index with its fused score (and dense vector when asked)."""

    id: str
    score: float
    payload: dict[str, Any]
    dense: Vector | None = None


class Embedder(Protocol):
    """Turns texts into dense, L2-normalized vectors."""

    @property
    def model_id(self) -> str:
        """Provider string of the model, e.g. 'local:all-MiniLM-L6-v2'."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector this embedder returns."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        """Embed a batch of library prompts."""
        ...

    def embed_query(self, text: str) -> Vector:
        """Embed one search query."""
        ...


class SparseEncoder(Protocol):
    """Turns texts into BM25 sparse vectors (IDF is applied by the index)."""

    def encode_document(self, text: str) -> SparseVector:
        """Term-frequency weights of an indexed prompt."""
        ...

    def encode_query(self, text: str) -> SparseVector:
        """Unit weights of the query's terms."""
        ...


class PromptIndex(Protocol):
    """A vector index of library prompts with dense + sparse vectors and payload filters."""

    def open(self, spec: IndexSpec, *, create: bool) -> None:
        """Open the index; create it when missing and `create`; raise IndexMismatchError on another spec."""
        ...

    def spec(self) -> IndexSpec | None:
        """The spec recorded in an existing index, or None when there is no index yet."""
        ...

    def upsert(self, points: Sequence[IndexPoint]) -> None:
        """Insert or replace points by id."""
        ...

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of these ids are already stored (lets an interrupted ingest resume)."""
        ...

    def set_payload(self, fields: dict[str, Any], ids: Sequence[str]) -> None:
        """Set these payload fields on these stored points (vectors and other fields untouched)."""
        ...

    def finalize(self) -> None:
        """Build search structures (HNSW) after a bulk ingest and persist everything."""
        ...

    def query(self, query: IndexQuery) -> list[IndexHit]:
        """Run a dense, sparse or hybrid (RRF) query."""
        ...

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The whole payload of each stored id (ids not stored are left out)."""
        ...

    def count(self) -> int:
        """Number of prompts stored."""
        ...

    def iter_prompts(self, batch_size: int = 1024) -> Iterator[str]:
        """Every stored prompt text, in no particular order (for mining library statistics)."""
        ...

    def iter_points(self, batch_size: int = 256) -> Iterator[IndexPoint]:
        """Every stored point with its dense and sparse vectors and payload, in no particular order."""
        ...

    def close(self) -> None:
        """Release files and connections."""
        ...
