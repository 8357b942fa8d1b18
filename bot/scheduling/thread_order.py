"""One turn at a time per thread, first come first served, so concurrent replies never share a history."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TypeVar

T = TypeVar("T")


class ThreadSequencer:
    """A FIFO lock per key (a thread); keys without waiters are forgotten."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._queues: dict[Hashable, deque[object]] = {}

    @contextmanager
    def turn(
        self, key: Hashable, on_wait: Callable[[], AbstractContextManager[T]] | None = None
    ) -> Iterator[T | None]:
        """Hold the key's turn; callers queue in arrival order.

        A caller with another turn of the key ahead of it enters `on_wait()` (e.g. a journal row that makes
        a killed process's waiting turn reportable) before it waits and leaves it when its turn ends; the
        block gets what that context yields, None when the turn did not wait. on_wait runs without the
        lock held (it may write to a database), so it may also run for a turn whose go came meanwhile.
        """
        ticket = object()
        with self._lock:
            queue = self._queues.setdefault(key, deque())
            queue.append(ticket)
            ahead = queue[0] is not ticket
        try:
            with on_wait() if ahead and on_wait is not None else nullcontext() as waited:
                with self._lock:
                    self._lock.wait_for(lambda: queue[0] is ticket)
                yield waited
        finally:
            with self._lock:
                queue.remove(ticket)  # the head after its turn; anywhere when on_wait raised
                if not queue:
                    del self._queues[key]
                self._lock.notify_all()

    def waiting(self, key: Hashable) -> int:
        """Turns queued or running for the key."""
        with self._lock:
            return len(self._queues.get(key, ()))
