"""Acks before turns: the slow work of a turn waits until no Slack request is being answered.

Slack wants every request answered within 3 s, and a burst of slash commands is answered one after the
other on the GIL. Measured in bench/bench_serve.py: with each command's turn starting at once, the turns'
CPU (SQL, Slack calls, embedding, drawing) interleaves with the acks still to send, and the 50th ack of a
burst of 50 waits ~200 ms; holding the turns until the intake has been quiet for a moment brings it under
100 ms. A turn never waits longer than `max_wait_s`, so steady traffic cannot starve it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

QUIET_S = 0.02  # the intake must have been idle this long before a turn starts
MAX_WAIT_S = 1.0  # a turn starts after this long whatever the traffic


class AckFirstGate:
    """Counts the Slack requests being answered; turns wait for a quiet intake (bounded)."""

    def __init__(self, quiet_s: float = QUIET_S, max_wait_s: float = MAX_WAIT_S) -> None:
        self._quiet_s = quiet_s
        self._max_wait_s = max_wait_s
        self._changed = threading.Condition()
        self._in_flight = 0
        self._last_done = float("-inf")

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Around the answer to one Slack request."""
        with self._changed:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._changed:
                self._in_flight -= 1
                self._last_done = time.monotonic()
                self._changed.notify_all()

    def in_flight(self) -> int:
        """Requests being answered now."""
        with self._changed:
            return self._in_flight

    def wait_for_quiet(self) -> float:
        """Block until no request is in flight and none ended in the last `quiet_s` (at most `max_wait_s`).

        Returns the seconds waited."""
        started = time.monotonic()
        deadline = started + self._max_wait_s
        with self._changed:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    break
                if self._in_flight:
                    self._changed.wait(deadline - now)
                    continue
                quiet_left = self._last_done + self._quiet_s - now
                if quiet_left <= 0:
                    break
                self._changed.wait(min(quiet_left, deadline - now))
        return time.monotonic() - started
