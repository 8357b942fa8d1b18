"""A loopback stand-in of a Qdrant server that holds one imagine-bot collection, `prompts`.

Subclasses of `QdrantStubHandler` decide how data calls are answered; `serve_qdrant_stub` fills in the
collection info (from a local-mode collection created by our adapter) and serves the handler on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from qdrant_client import QdrantClient

from retrieval.adapters.qdrant_index import QdrantClientPromptIndex
from retrieval.index_ports import IndexSpec

COLLECTION = "prompts"


class QdrantStubHandler(BaseHTTPRequestHandler):
    """Base handler: quiet, with the collection's info (GET /collections/prompts) ready to send."""

    collection_info: bytes = b"{}"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def send_json(self, status: int, body: bytes) -> None:
        """Answer with a JSON body."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_result(self, result: object) -> None:
        """Answer 200 with Qdrant's envelope around `result`."""
        self.send_json(200, json.dumps({"result": result, "status": "ok", "time": 0}).encode())


@contextmanager
def serve_qdrant_stub(handler: type[QdrantStubHandler], spec: IndexSpec) -> Iterator[str]:
    """Serve `handler` on a free loopback port and yield its URL; the collection was built for `spec`."""
    local = QdrantClient(":memory:")
    QdrantClientPromptIndex(local, COLLECTION).open(spec, create=True)
    info = local.get_collection(COLLECTION).model_dump(mode="json", exclude_none=True)
    handler.collection_info = json.dumps({"result": info, "status": "ok", "time": 0}).encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
