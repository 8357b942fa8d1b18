"""One turn at a time per thread, first come first served, so concurrent replies never share a history."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Hashable, Iterator
from contextlib import contextmanager


class ThreadSequencer:
    """A FIFO lock per key (a thread); keys without waiters are forgotten."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._queues: dict[Hashable, deque[object]] = {}

    @contextmanager
    def turn(self, key: Hashable) -> Iterator[None]:
        """Hold the key's turn; callers queue in arrival order."""
        ticket = object()
        with self._lock:
            queue = self._queues.setdefault(key, deque())
            queue.append(ticket)
            self._lock.wait_for(lambda: queue[0] is ticket)
        try:
            yield
        finally:
            with self._lock:
                queue.popleft()
                if not queue:
                    del self._queues[key]
                self._lock.notify_all()

    def waiting(self, key: Hashable) -> int:
        """Turns queued or running for the key."""
        with self._lock:
            return len(self._queues.get(key, ()))
