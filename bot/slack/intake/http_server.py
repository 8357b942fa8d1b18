"""The HTTP server of `serve`: waitress (a maintained production WSGI server) in front of Bolt's WSGI adapter.

waitress was chosen by measurement against wsgiref (the old server) and cheroot: bench/bench_serve.py runs
the same app behind each and reports slash-command ack latency at 1/10/50 concurrent commands in
bench/RESULTS.md. It runs in this one process (the embedded index has one opener) with a small pool of
request threads; the turns themselves run on the app's listener executor, never on a request thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.scheduling.ack_first import AckFirstGate
from bot.slack.intake.health import HealthReport, HealthRoute
from bot.slack.intake.request_guard import SlackRequestGuard, WsgiApp

logger = logging.getLogger(__name__)

REQUEST_THREADS = 16  # acks are short; more threads than cores only helps requests that wait on I/O
CONNECTION_LIMIT = 512  # waitress's default (100) would refuse part of a burst of slash commands
LOOP_TIMEOUT_S = 0.5  # poll timeout of the I/O loop (close() wakes it at once through the trigger)
FINISH_S = 5.0  # after close(), how long requests already received may take to get their answer


def slack_wsgi_app(
    app: App,
    signing_secret: str | None,
    health: Callable[[], HealthReport] | None = None,
    ack_gate: AckFirstGate | None = None,
) -> WsgiApp:
    """Bolt's WSGI adapter behind the request guard, with GET /healthz in front when `health` is given.

    `ack_gate`: the gate of the app's listener executor, told of every request being answered."""
    guarded = SlackRequestGuard(SlackRequestHandler(app), signing_secret, gate=ack_gate)
    return HealthRoute(guarded, health) if health is not None else guarded


class HttpServer:
    """A waitress server bound at construction (port 0 picks a free port); serve() blocks until close()."""

    def __init__(self, wsgi: WsgiApp, host: str = "127.0.0.1", port: int = 0) -> None:
        import waitress

        self._server = waitress.create_server(
            wsgi,
            host=host,
            port=port,
            threads=REQUEST_THREADS,
            connection_limit=CONNECTION_LIMIT,
            backlog=1024,
            asyncore_use_poll=True,
            ident="imagine-bot",
        )
        self._closing = threading.Event()

    @property
    def host(self) -> str:
        """The bound address."""
        return str(self._server.effective_host)

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.effective_port)

    def serve(self) -> None:
        """Answer requests until close(); then stop listening and let requests in flight finish.

        waitress's own run() loops until its socket map is empty, and closing it from another thread
        races its poll; so this thread drives the loop and closes the sockets itself when told to stop.
        """
        from waitress import wasyncore

        server = self._server
        sockets = server._map  # waitress keeps its listening socket, trigger and channels here
        while not self._closing.is_set():
            wasyncore.loop(timeout=LOOP_TIMEOUT_S, map=sockets, use_poll=True, count=1)
        server.close()  # the listening socket and the trigger: new connections are refused from here
        deadline = time.monotonic() + FINISH_S
        while time.monotonic() < deadline and any(c.requests for c in list(server.active_channels.values())):
            wasyncore.loop(timeout=LOOP_TIMEOUT_S, map=sockets, use_poll=True, count=1)
        wasyncore.close_all(sockets)
        server.task_dispatcher.shutdown()

    def close(self) -> None:
        """Ask serve() to stop (it wakes at once); safe from any thread, and more than once."""
        if not self._closing.is_set():
            self._closing.set()
            with contextlib.suppress(OSError):
                self._server.trigger.pull_trigger()


def make_http_server(
    app: App,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    signing_secret: str | None = None,
    health: Callable[[], HealthReport] | None = None,
    ack_gate: AckFirstGate | None = None,
) -> HttpServer:
    """The production server for /slack/events, the OAuth install pages and (with `health`) /healthz."""
    return HttpServer(slack_wsgi_app(app, signing_secret, health, ack_gate), host, port)


@contextmanager
def serving_in_background(server: HttpServer, name: str = "imagine-http") -> Iterator[HttpServer]:
    """Serve on a daemon thread until the block ends, then close the server."""
    thread = threading.Thread(target=server.serve, name=name, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.close()
        thread.join(timeout=5)
