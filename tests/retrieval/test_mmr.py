"""MMR re-ranking: relevance first, near-copies pushed down."""

from __future__ import annotations

import numpy as np

from retrieval.mmr import mmr_order


def test_near_copies_are_skipped_while_others_remain() -> None:
    base = np.array([1.0, 0.0, 0.0])
    copy = np.array([0.999, 0.04, 0.0])
    other = np.array([0.6, 0.8, 0.0])
    third = np.array([0.6, 0.0, 0.8])
    vectors = np.stack([base, copy, other, third])
    order = mmr_order([1.0, 0.99, 0.8, 0.7], vectors, k=3)
    assert order[0] == 0
    assert 1 not in order  # the near-copy of the best hit gives way to distinct ones
    assert set(order) == {0, 2, 3}


def test_falls_back_to_near_copies_when_nothing_else_is_left() -> None:
    vectors = np.array([[1.0, 0.0], [1.0, 0.001], [1.0, 0.002]])
    assert sorted(mmr_order([0.9, 0.8, 0.7], vectors, k=3)) == [0, 1, 2]


def test_lambda_one_is_plain_relevance_order_among_distinct_vectors() -> None:
    vectors = np.eye(4)
    assert mmr_order([0.1, 0.9, 0.5, 0.7], vectors, k=4, lambda_mult=1.0) == [1, 3, 2, 0]


def test_edge_cases() -> None:
    assert mmr_order([], np.zeros((0, 3)), k=5) == []
    assert mmr_order([0.5], np.ones((1, 3)), k=0) == []
    assert mmr_order([0.5, 0.5], np.eye(2), k=5) in ([0, 1], [1, 0])
