"""MMR re-ordering (langchain_core's maximal_marginal_relevance): relevant first, near-copies pushed down."""

from __future__ import annotations

import uuid

from retrieval.index_ports import IndexHit
from retrieval.search import diversify_order


def _hits(vectors: list[list[float]]) -> list[IndexHit]:
    return [IndexHit(str(uuid.UUID(int=i)), 1.0 - i / 10, {}, v) for i, v in enumerate(vectors)]


def test_near_copies_are_skipped_while_others_remain() -> None:
    query = [1.0, 0.0, 0.05]
    hits = _hits([[1.0, 0.0, 0.0], [0.999, 0.04, 0.0], [0.6, 0.8, 0.0], [0.6, 0.0, 0.8]])
    order = diversify_order([0, 1, 2, 3], hits, query, k=3)
    assert order[0] == 0
    assert 1 not in order[:3]  # the near-copy of the best hit gives way to distinct ones
    assert set(order[:3]) == {0, 2, 3}
    assert sorted(order) == [0, 1, 2, 3]  # nothing is lost: the rest follows


def test_without_vectors_the_order_is_kept() -> None:
    hits = [IndexHit(str(uuid.UUID(int=i)), 1.0, {}) for i in range(3)]
    assert diversify_order([2, 0, 1], hits, [1.0, 0.0], k=2) == [2, 0, 1]
