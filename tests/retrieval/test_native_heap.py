"""The C heap helpers: on glibc (this machine, the Docker image) they reach malloc; a trim after freeing
a large block hands it back and returns True."""

from __future__ import annotations

import ctypes

from retrieval.native_heap import cap_arenas, release_free_heap


def test_capping_the_arenas_is_accepted_by_glibc() -> None:
    assert cap_arenas() is True
    assert cap_arenas(8) is True


def test_a_trim_after_freeing_heap_memory_releases_pages() -> None:
    blocks = [ctypes.create_string_buffer(64 * 1024) for _ in range(2000)]  # ~128 MB below mmap's threshold
    del blocks[:-1]  # freed, but the last block pins the top of the heap, so only a trim hands them back
    assert release_free_heap() is True
