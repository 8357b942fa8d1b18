"""Embedding-based unsafe-prompt classifier: logistic regression over the prompt's MiniLM vector.

It complements the lexicon in retrieval.safety: the lexicon catches explicit words, this model catches
prompts whose *meaning* resembles prompts known to produce inappropriate images (the I2P benchmark), even
when no listed word occurs. Ingest already embeds every prompt, so scoring costs one dot product per
prompt. The weights, threshold and training provenance (data, split, seed, date, metrics) live in
retrieval/data/safety_embedding.json, written by bench/train_safety.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["EmbeddingSafetyClassifier", "EmbeddingVerdict"]

_RESOURCE = "safety_embedding.json"
FORMAT = "imagine-bot/safety-embedding-logreg/v1"
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class EmbeddingVerdict:
    """One prompt's probability of being unsafe and whether it reaches the threshold."""

    score: float
    unsafe: bool


@dataclass(frozen=True)
class EmbeddingSafetyClassifier:
    """p(unsafe) = sigmoid(w . v + b) for an L2-normalized vector v of the model it was trained on."""

    weights: tuple[float, ...]
    bias: float
    threshold: float
    model_id: str
    provenance: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    label = "embedding"
    payload_key = "nsfw_embedding_score"

    def __post_init__(self) -> None:
        if not self.weights:
            raise ValueError("an embedding safety classifier needs weights")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if not all(math.isfinite(w) for w in (*self.weights, self.bias)):
            raise ValueError("embedding safety weights must be finite numbers")

    @property
    def dimension(self) -> int:
        """Length of the vectors the classifier scores."""
        return len(self.weights)

    @classmethod
    def load(cls, path: Path | None = None) -> EmbeddingSafetyClassifier:
        """Read a weights file (the packaged one unless a path is given)."""
        if path is not None:
            text = Path(path).read_text(encoding="utf-8")
        else:
            text = (
                resources.files("retrieval").joinpath("data").joinpath(_RESOURCE).read_text(encoding="utf-8")
            )
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: Any) -> EmbeddingSafetyClassifier:
        """Build from the JSON document written by `to_dict` (ValueError when it is not one)."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not an embedding safety classifier file (expected format {FORMAT!r})")
        try:
            return cls(
                weights=tuple(float(w) for w in data["weights"]),
                bias=float(data["bias"]),
                threshold=float(data["threshold"]),
                model_id=str(data["model_id"]),
                provenance=dict(data.get("provenance", {})),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"embedding safety classifier file is incomplete: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """The JSON document `load` reads back."""
        return {
            "format": FORMAT,
            "model_id": self.model_id,
            "dimension": self.dimension,
            "threshold": self.threshold,
            "bias": self.bias,
            "weights": list(self.weights),
            "provenance": self.provenance,
        }

    def applies_to(self, model_id: str, dimension: int) -> bool:
        """Whether vectors of this embedding model can be scored (weights only fit their own model)."""
        return model_id == self.model_id and dimension == self.dimension

    def scores(self, vectors: Sequence[Sequence[float]] | FloatArray) -> FloatArray:
        """p(unsafe) for each vector, as a float32 array."""
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of dimension {self.dimension}, got shape {matrix.shape}")
        logits = matrix @ np.asarray(self.weights, dtype=np.float32) + np.float32(self.bias)
        result: FloatArray = (1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))).astype(np.float32)
        return result

    def classify_vectors(self, vectors: Sequence[Sequence[float]] | FloatArray) -> list[EmbeddingVerdict]:
        """A verdict for each vector."""
        return [EmbeddingVerdict(round(float(s), 4), bool(s >= self.threshold)) for s in self.scores(vectors)]

    def screen(self, vectors: Sequence[Sequence[float]] | FloatArray) -> list[tuple[float, bool]]:
        """(score, flagged) for each vector (the ingest screen protocol)."""
        return [(verdict.score, verdict.unsafe) for verdict in self.classify_vectors(vectors)]
