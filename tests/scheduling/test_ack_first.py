"""The ack-first gate: a turn's work waits while the guard is answering a Slack request, then runs; a
quiet window follows each answer; a turn never waits past the gate's bound; no traffic, no wait."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterable
from typing import Any

from bot.scheduling.ack_first import AckFirstGate
from bot.scheduling.drain import DrainingExecutor
from bot.slack.intake.request_guard import SlackRequestGuard


class _SlowAck:
    """A WSGI app standing in for Bolt: answers 200 once `release` is set."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.entered.set()
        self.release.wait(10)
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]


def _answer_in_background(guard: SlackRequestGuard) -> threading.Thread:
    """A GET through the guard (no signature needed), answered on its own thread."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/slack/install", "wsgi.input": io.BytesIO()}
    thread = threading.Thread(target=lambda: list(guard(environ, lambda status, headers, info=None: None)))
    thread.start()
    return thread


def test_a_turn_waits_while_a_request_is_answered_and_runs_after_it() -> None:
    gate = AckFirstGate(quiet_s=0.01, max_wait_s=30)
    inner = _SlowAck()
    guard = SlackRequestGuard(inner, None, gate=gate)
    ran = threading.Event()
    with DrainingExecutor(2, gate=gate) as executor:
        request = _answer_in_background(guard)
        assert inner.entered.wait(5)
        assert gate.in_flight() == 1
        future = executor.submit(ran.set)
        assert not ran.wait(0.3)  # the ack is still being answered
        inner.release.set()
        request.join(5)
        future.result(timeout=5)
        assert ran.is_set() and gate.in_flight() == 0


def test_a_turn_waits_out_the_quiet_window_after_an_answer() -> None:
    gate = AckFirstGate(quiet_s=0.3, max_wait_s=30)
    with gate.answering():
        pass
    assert gate.wait_for_quiet() >= 0.25


def test_a_turn_is_never_held_past_the_bound() -> None:
    gate = AckFirstGate(quiet_s=0.01, max_wait_s=0.2)
    inner = _SlowAck()
    request = _answer_in_background(SlackRequestGuard(inner, None, gate=gate))
    try:
        assert inner.entered.wait(5)
        started = time.monotonic()
        with DrainingExecutor(1, gate=gate) as executor:
            assert executor.submit(lambda: gate.in_flight()).result(timeout=5) == 1  # ran while in flight
        assert time.monotonic() - started >= 0.15
    finally:
        inner.release.set()
        request.join(5)


def test_without_traffic_a_turn_starts_at_once() -> None:
    gate = AckFirstGate(quiet_s=0.02, max_wait_s=30)
    assert gate.wait_for_quiet() < 5  # far below the bound: nothing was ever answered
    assert gate.in_flight() == 0
