"""Maximal Marginal Relevance: pick relevant hits that are not near-copies of each other."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NEAR_COPY_COSINE = 0.95


def mmr_order(
    relevance: Sequence[float],
    vectors: np.ndarray,
    k: int,
    lambda_mult: float = 0.7,
    near_copy_cosine: float = NEAR_COPY_COSINE,
) -> list[int]:
    """Indices of up to k candidates, greedily maximizing λ·relevance − (1−λ)·max-similarity-to-chosen.

    Relevance is min-max scaled to [0, 1]; candidates whose cosine to an already chosen one reaches
    `near_copy_cosine` are only used when nothing else is left.
    """
    count = len(relevance)
    if count == 0 or k <= 0:
        return []
    scores = np.asarray(relevance, dtype=np.float64)
    spread = scores.max() - scores.min()
    scaled = (scores - scores.min()) / spread if spread > 0 else np.ones(count)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    chosen: list[int] = []
    max_sim = np.full(count, -1.0)
    available = np.ones(count, dtype=bool)
    while len(chosen) < min(k, count):
        value = lambda_mult * scaled - (1.0 - lambda_mult) * np.maximum(max_sim, 0.0)
        fresh = available & (max_sim < near_copy_cosine)
        pool = fresh if fresh.any() else available
        best = int(np.argmax(np.where(pool, value, -np.inf)))
        chosen.append(best)
        available[best] = False
        max_sim = np.maximum(max_sim, similarity[best])
    return chosen
