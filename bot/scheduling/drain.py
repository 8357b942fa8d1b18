"""A graceful stop: on SIGTERM or Ctrl-C the bot stops taking work, then lets running turns finish.

Orchestrators (`docker stop`, ECS, Kubernetes) send SIGTERM and kill the process a grace period later.
Turns run on the app's listener executor; a turn cut short by the kill is reported as interrupted
after the restart (bot.slack.recovery), so draining first spares users that notice and a second image.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import FrameType, TracebackType
from typing import ParamSpec, TypeVar

from bot.scheduling.ack_first import AckFirstGate

logger = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
POLL_S = 0.5  # how often a wait wakes up so that Python runs the signal handlers on the main thread


class DrainingExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor that counts its unfinished tasks and can wait until there are none.

    With a `gate`, each task first waits (on its worker thread) until the Slack intake is quiet."""

    def __init__(
        self, max_workers: int, thread_name_prefix: str = "", gate: AckFirstGate | None = None
    ) -> None:
        super().__init__(max_workers, thread_name_prefix=thread_name_prefix)
        self._idle = threading.Condition()
        self._pending = 0
        self._gate = gate

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run `fn` on a worker thread, counted until it finishes."""
        with self._idle:
            self._pending += 1
        try:
            if self._gate is None:
                future = super().submit(fn, *args, **kwargs)
            else:
                future = super().submit(_after_quiet, self._gate, fn, *args, **kwargs)
        except BaseException:
            self._finished(None)
            raise
        future.add_done_callback(self._finished)
        return future

    def pending(self) -> int:
        """Tasks submitted and not finished (queued or running)."""
        with self._idle:
            return self._pending

    def drain(self, timeout_s: float, interrupt: threading.Event | None = None) -> int:
        """Wait until no task is pending, `timeout_s` passed or `interrupt` is set; return those left."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._idle:
            while self._pending and not (interrupt is not None and interrupt.is_set()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._idle.wait(min(left, POLL_S))
            return self._pending

    def _finished(self, _future: object) -> None:
        """One task less; wake drain()."""
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()


def _after_quiet(gate: AckFirstGate, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn` once the gate lets turns run."""
    gate.wait_for_quiet()
    return fn(*args, **kwargs)


class StopSignals:
    """SIGINT and SIGTERM as events while in use: `first` on the first signal, `again` on any later one.

    Handlers are installed only on the main thread (Python's rule); elsewhere only `stop` ends the wait.
    """

    def __init__(self, stop: threading.Event | None = None) -> None:
        self.first = stop or threading.Event()
        self.again = threading.Event()
        self.received: list[int] = []
        self._previous: dict[signal.Signals, signal._HANDLER] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def wait(self) -> None:
        """Block until the first signal (or the `stop` event)."""
        while not self.first.wait(POLL_S):
            pass

    def reason(self) -> str:
        """What ended the wait, for the log."""
        return signal.Signals(self.received[0]).name if self.received else "stop requested"

    def exit_code(self) -> int:
        """0 after SIGTERM or a programmatic stop (a normal stop); 130 after Ctrl-C, as shells expect."""
        return 128 + signal.SIGINT if self.received[:1] == [signal.SIGINT] else 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        (self.again if self.first.is_set() else self.first).set()


def drain_turns(executor: DrainingExecutor, timeout_s: float, signals: StopSignals) -> int:
    """After intake stopped, wait up to `timeout_s` for running turns (a second signal cuts it short)."""
    pending = executor.pending()
    if not pending:
        return 0
    logger.warning(
        "imagine-bot: waiting up to %.0f s for %d running turn%s to finish (signal again to stop now)",
        timeout_s,
        pending,
        "" if pending == 1 else "s",
    )
    left = executor.drain(timeout_s, signals.again)
    if left:
        logger.warning(
            "imagine-bot: stopping with %d turn%s still running; after the restart each is reported as "
            "interrupted in its thread, with Retry",
            left,
            "" if left == 1 else "s",
        )
    else:
        logger.warning("imagine-bot: every running turn finished")
    return left
