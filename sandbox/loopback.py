"""A loopback HTTP server for the stand-ins: bound to 127.0.0.1 port 0, served from a daemon thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

logger = logging.getLogger(__name__)

# (verb, target, headers, body) -> (status, headers, body)
Handle = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


class QuietServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with daemon threads that logs dropped connections at debug level."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log instead of printing a traceback to stderr (clients close idle connections at will)."""
        logger.debug("loopback: connection from %s ended with an error", client_address, exc_info=True)


def make_request_handler(handle: Handle, name: str) -> type[BaseHTTPRequestHandler]:
    """A request-handler class that answers GET and POST with `handle(verb, target, headers, body)`."""

    class _RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self._serve()

        def do_GET(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug(f"{name}: " + format, *args)

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, headers, payload = handle(self.command, self.path, dict(self.headers.items()), raw)
            self.send_response(status)
            for header, value in headers.items():
                self.send_header(header, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return _RequestHandler


class LoopbackServer:
    """Start/stop/context-manager plumbing shared by the stand-ins; subclasses implement `serve_http`."""

    def __init__(self, host: str, name: str) -> None:
        """Remember where to bind; nothing is bound until `start()`."""
        self._host = host
        self._name = name
        self._server: QuietServer | None = None
        self._thread: threading.Thread | None = None

    def serve_http(
        self, verb: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one HTTP request."""
        raise NotImplementedError

    def _started(self) -> None:
        """Called once the port is bound, before requests are served."""

    def start(self) -> Self:
        """Bind a free port and serve in a daemon thread."""
        if self._server is None:
            server = QuietServer((self._host, 0), make_request_handler(self.serve_http, self._name))
            self._server = server
            self._started()
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=self._name, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        """Start on entering the context."""
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop on leaving the context."""
        self.stop()

    @property
    def root(self) -> str:
        """http://HOST:PORT of the running server."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"
