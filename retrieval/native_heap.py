"""The C heap of a long-running process: fewer malloc arenas, and free pages handed back to the OS.

Opening a 1M-prompt index and loading the embedder allocate and free hundreds of MB in native code (Qdrant
Edge, onnxruntime); glibc keeps freed memory in per-thread arenas, and it stays in the process's RSS.
Measured at 1M prompts (bench/bench_layout.py): capping the arenas and trimming after the index opens take
~100 MB off the serving process. Both are glibc calls; elsewhere (macOS, musl) they do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import cache

M_ARENA_MAX = -8  # mallopt parameter (malloc.h)


@cache
def _glibc() -> ctypes.CDLL | None:
    """glibc, or None when the C library is another one."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
    except (OSError, AttributeError):
        return None
    return libc


def cap_arenas(arenas: int | None = None) -> bool:
    """Let malloc keep at most `arenas` arenas (default: one per core, at least 2); call before threads."""
    libc = _glibc()
    if libc is None:
        return False
    count = arenas if arenas is not None else max(2, os.cpu_count() or 2)
    return bool(libc.mallopt(M_ARENA_MAX, count))


def release_free_heap() -> bool:
    """Hand the heap's free pages back to the OS (glibc's malloc_trim); True if any were released."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))
