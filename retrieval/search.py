"""Searching the prompt library: hybrid dense + BM25 retrieval, safe by default, MMR-diversified."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from retrieval.errors import EmptyQueryError
from retrieval.index_ports import (
    Embedder,
    IndexQuery,
    IndexSpec,
    PromptIndex,
    SearchMode,
    SparseEncoder,
    Vector,
)
from retrieval.mmr import mmr_order

logger = logging.getLogger(__name__)
MAX_QUERY_CHARS = 2000
MAX_K = 50
QUERY_CACHE_SIZE = 512


@dataclass(frozen=True)
class PromptHit:
    """A library prompt found for a query."""

    id: str
    prompt: str
    score: float
    payload: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON view: id, prompt, score and the payload metadata."""
        metadata = {key: value for key, value in self.payload.items() if key != "prompt"}
        return {"id": self.id, "prompt": self.prompt, "score": round(self.score, 6), **metadata}


class Retriever:
    """Finds the closest library prompts for an idea; the conversation engine calls `search`."""

    def __init__(self, embedder: Embedder, sparse: SparseEncoder, index: PromptIndex) -> None:
        self._embedder = embedder
        self._sparse = sparse
        self._index = index
        self._opened = False
        self._query_vectors: OrderedDict[str, Vector] = OrderedDict()
        self._cache_lock = threading.Lock()

    def embed_query(self, text: str) -> Vector:
        """The query's dense vector, from a small LRU cache (re-rolls and refinements repeat queries)."""
        with self._cache_lock:
            cached = self._query_vectors.get(text)
            if cached is not None:
                self._query_vectors.move_to_end(text)
                return cached
        vector = self._embedder.embed_query(text)
        with self._cache_lock:
            self._query_vectors[text] = vector
            while len(self._query_vectors) > QUERY_CACHE_SIZE:
                self._query_vectors.popitem(last=False)
        return vector

    def open(self) -> None:
        """Open the index for reading, checking it was built with this embedder."""
        if not self._opened:
            self._index.open(IndexSpec(self._embedder.model_id, self._embedder.dimension), create=False)
            self._opened = True

    def search(
        self,
        query: str,
        k: int = 5,
        *,
        mode: SearchMode = SearchMode.HYBRID,
        safe: bool = True,
        diversify: bool = True,
        candidates: int = 40,
        exact: bool = False,
        must_match: dict[str, str | int | bool] | None = None,
    ) -> list[PromptHit]:
        """The top k prompts for `query`: fused dense + BM25 ranks, then MMR so they are not near-copies."""
        text = " ".join(str(query).split())[:MAX_QUERY_CHARS]
        if not text:
            raise EmptyQueryError("the search query is empty: describe an idea, e.g. 'a cartoon of a dog'")
        k = max(1, min(int(k), MAX_K))
        self.open()
        dense = self.embed_query(text) if mode != SearchMode.SPARSE or diversify else None
        sparse = self._sparse.encode_query(text) if mode != SearchMode.DENSE else None
        limit = max(candidates, 3 * k) if diversify else k
        hits = self._index.query(
            IndexQuery(
                dense=dense if mode != SearchMode.SPARSE else None,
                sparse=sparse,
                mode=mode,
                limit=limit,
                safe_only=safe,
                exact=exact,
                must_match=dict(must_match or {}),
                with_vectors=diversify,
            )
        )
        if diversify and len(hits) > 1 and all(hit.dense is not None for hit in hits):
            vectors = np.asarray([hit.dense for hit in hits], dtype=np.float32)
            hits = [hits[i] for i in mmr_order([hit.score for hit in hits], vectors, k)]
        return [PromptHit(h.id, str(h.payload.get("prompt", "")), h.score, h.payload) for h in hits[:k]]

    def close(self) -> None:
        """Close the underlying index."""
        self._index.close()
        self._opened = False
