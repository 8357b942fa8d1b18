"""The Slack app served the way `imagine-bot serve` builds it, behind a chosen HTTP server, for bench_serve.

    python bench/serve_variant.py waitress|waitress-ungated|wsgiref|cheroot

waitress is the product's server (bot/slack/intake/http_server.py) with `serve`'s ack-first gate (turns
start once the acks in flight are out: bot/scheduling/ack_first.py); waitress-ungated is the same server
without the gate (each turn starts as soon as its ack is sent); wsgiref is the server `serve` used
before that (a threaded reference server, ungated: its code is kept here so the old and new servers are
measured in one run); cheroot (CherryPy's thread-pool server) is the other candidate, gated like waitress.
Config comes from the environment as for `serve`; the process prints `PORT <n>` once it listens and serves
until stdin closes.
"""

from __future__ import annotations

import logging
import sys
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bot.config import load_config
from bot.scheduling.ack_first import AckFirstGate
from bot.slack.app import build_app, listener_executor
from bot.slack.credentials import load_slack_credentials
from bot.slack.intake.health import Readiness
from bot.slack.intake.http_server import HttpServer, slack_wsgi_app
from bot.wiring import build_health, build_services


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """The old server: wsgiref answering each request on its own thread."""

    daemon_threads = True
    request_queue_size = 256


class _QuietHandler(WSGIRequestHandler):
    """wsgiref's handler without its per-request line on stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        """Drop the access log."""


def main(kind: str) -> int:
    """Serve until stdin closes."""
    logging.basicConfig(level=logging.WARNING)
    config = load_config()
    slack = load_slack_credentials()
    services, close = build_services(config)
    readiness = Readiness()
    gate = None if kind in ("wsgiref", "waitress-ungated") else AckFirstGate()
    app = build_app(slack, services, executor=listener_executor(gate))
    services.conversation.warm_up()
    readiness.mark_ready()
    health = build_health(services, readiness)
    wsgi = slack_wsgi_app(app, slack.signing_secret.get_secret_value(), health, gate)
    stop: threading.Event = threading.Event()
    if kind in ("waitress", "waitress-ungated"):
        server = HttpServer(wsgi)
        port, serve, halt = server.port, server.serve, server.close
    elif kind == "wsgiref":
        old = make_server(
            "127.0.0.1", 0, wsgi, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        port, serve, halt = old.server_port, old.serve_forever, old.shutdown
    elif kind == "cheroot":
        from cheroot import wsgi as cheroot_wsgi

        pool = cheroot_wsgi.Server(("127.0.0.1", 0), wsgi, numthreads=16, request_queue_size=1024)
        pool.prepare()
        port, serve, halt = pool.bind_addr[1], pool.serve, pool.stop
    else:
        raise SystemExit(f"unknown server {kind!r}: waitress, waitress-ungated, wsgiref or cheroot")
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    sys.stdin.read()  # the bench closes our stdin to stop us
    stop.set()
    halt()
    close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "waitress"))
