"""Single-threaded BLAS while ingest embeds: its small matrix products run between embedding calls.

numpy's OpenBLAS threads keep spinning for a while after a product; interleaved with onnxruntime's own
threads on a 2-core machine they slowed the embedding calls of ingest by 6-10 % (bench_ingest: the
exemplar screen's 256 x 384 x 2,152 product per batch). One thread does these products as fast here and
leaves the cores to the embedder.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]


@cache
def _controller() -> ThreadpoolController:
    """The process's thread-pool controller (it inspects loaded libraries once, on first use)."""
    return ThreadpoolController()


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with BLAS limited to one thread, then restore the previous limits."""
    with _controller().limit(limits=1, user_api="blas"):
        yield
