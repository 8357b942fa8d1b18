"""Known-unsafe exemplars: a prompt whose vector nearly matches a prompt known to yield unsafe images.

The logistic classifier in retrieval.safety_embedding learns what unsafe prompts *mean*; many I2P prompts
read harmlessly ("a cow points at a bucket, far side comic by gary larson") and were picked for the images
Stable Diffusion drew from them. Their near-copies (a re-worded prompt, another artist appended) are still
likely to draw the same thing, so ingest also flags any prompt whose cosine similarity to one of these
exemplars reaches the threshold. The exemplars are MiniLM vectors of I2P's training rows, never their
text; vectors, threshold and provenance live in retrieval/data/safety_exemplars.npz, written by
bench/train_safety_exemplars.py.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["SafetyExemplars"]

_RESOURCE = "safety_exemplars.npz"
FORMAT = "imagine-bot/safety-exemplars/v1"
FloatArray = npt.NDArray[np.float32]
_CHUNK = 2048


@dataclass(frozen=True, eq=False)
class SafetyExemplars:
    """Flags vectors whose best cosine similarity to an exemplar is at least `threshold`."""

    vectors: FloatArray
    threshold: float
    model_id: str
    provenance: dict[str, Any] = field(default_factory=dict)

    label = "exemplar"
    payload_key = "nsfw_exemplar_similarity"

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or not len(self.vectors):
            raise ValueError("safety exemplars need a non-empty (n, dimension) matrix")
        if not np.isfinite(self.vectors).all():
            raise ValueError("safety exemplar vectors must be finite numbers")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"exemplar threshold must be in (0, 1], got {self.threshold}")

    @property
    def dimension(self) -> int:
        """Length of the vectors it compares."""
        return int(self.vectors.shape[1])

    @classmethod
    def load(cls, path: Path | None = None) -> SafetyExemplars:
        """Read an exemplar file (the packaged one unless a path is given)."""
        if path is not None:
            data = Path(path).read_bytes()
        else:
            data = resources.files("retrieval").joinpath("data").joinpath(_RESOURCE).read_bytes()
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            if "meta" not in archive or "vectors" not in archive:
                raise ValueError("not a safety exemplar file (expected arrays 'meta' and 'vectors')")
            meta = json.loads(str(archive["meta"]))
            vectors = np.asarray(archive["vectors"], dtype=np.float32)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"not a safety exemplar file (expected format {FORMAT!r})")
        try:
            threshold, model_id = float(meta["threshold"]), str(meta["model_id"])
            return cls(vectors, threshold, model_id, dict(meta.get("provenance", {})))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"safety exemplar file is incomplete: {exc}") from exc

    def save(self, path: Path) -> None:
        """Write the file `load` reads back (vectors as float16: similarities move by < 1e-3)."""
        meta = {
            "format": FORMAT,
            "model_id": self.model_id,
            "dimension": self.dimension,
            "count": len(self.vectors),
            "threshold": self.threshold,
            "provenance": self.provenance,
        }
        with Path(path).open("wb") as handle:
            vectors = self.vectors.astype(np.float16)
            np.savez_compressed(handle, meta=np.array(json.dumps(meta)), vectors=vectors)

    def applies_to(self, model_id: str, dimension: int) -> bool:
        """Whether vectors of this embedding model can be compared (exemplars only fit their own model)."""
        return model_id == self.model_id and dimension == self.dimension

    def similarities(self, vectors: Any) -> FloatArray:
        """Each vector's highest cosine similarity to an exemplar (vectors are L2-normalized)."""
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of dimension {self.dimension}, got shape {matrix.shape}")
        out = np.empty(len(matrix), dtype=np.float32)
        for start in range(0, len(matrix), _CHUNK):
            out[start : start + _CHUNK] = (matrix[start : start + _CHUNK] @ self.vectors.T).max(axis=1)
        return out

    def screen(self, vectors: Any) -> list[tuple[float, bool]]:
        """(similarity, flagged) for each vector."""
        return [(round(float(s), 4), bool(s >= self.threshold)) for s in self.similarities(vectors)]
