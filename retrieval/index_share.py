"""The embedded index shared while `serve` holds it: Qdrant Edge allows one opener per directory.

The serving process listens on a Unix socket beside the index (`<index dir>.sock`, mode 0600) and answers
`info`, `search` and `ingest` from the index it has open; the CLI finds the socket and asks it instead of
opening the index itself. Ingest runs in the serving process, one at a time (the single writer), on the
same open index the bot searches, so new prompts are found at once and nothing needs a restart; it streams
its progress back. One request per connection, newline-delimited JSON. Without a serving process the CLI
opens the index directly, as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import socket
import socketserver
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from retrieval.errors import IndexUnavailableError, RetrievalError
from retrieval.index_ports import IndexHit, IndexPoint, IndexQuery, IndexSpec, PromptIndex, SearchMode
from retrieval.ingest import IngestOptions, Ingestor, IngestProgress, IngestSummary
from retrieval.search import PromptHit, Retriever

logger = logging.getLogger(__name__)

MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 108 bytes on Linux
CONNECT_TIMEOUT_S = 2.0


def socket_path(index_dir: Path) -> Path:
    """Where a serving process listens for the index in `index_dir`."""
    return index_dir.parent / f"{index_dir.name}.sock"


class HeldIndex:
    """A PromptIndex kept open by its owner: open() with the owner's spec and close() do nothing."""

    def __init__(self, inner: PromptIndex, spec: IndexSpec) -> None:
        self._inner = inner
        self._spec = spec

    def open(self, spec: IndexSpec, *, create: bool) -> None:
        """Already open; another spec is refused like the index itself would."""
        if spec != self._spec:
            self._inner.open(spec, create=create)  # raises IndexMismatchError naming both

    def spec(self) -> IndexSpec | None:
        """The owner's spec."""
        return self._spec

    def upsert(self, points: Sequence[IndexPoint]) -> None:
        """Insert or replace points by id."""
        self._inner.upsert(points)

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of these ids are already stored."""
        return self._inner.existing_ids(ids)

    def set_payload(self, fields: dict[str, Any], ids: Sequence[str]) -> None:
        """Set payload fields on stored points."""
        self._inner.set_payload(fields, ids)

    def finalize(self) -> None:
        """Build search structures and persist."""
        self._inner.finalize()

    def query(self, query: IndexQuery) -> list[IndexHit]:
        """Run a query."""
        return self._inner.query(query)

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The whole payload of each stored id."""
        return self._inner.payloads(ids)

    def count(self) -> int:
        """Number of prompts stored."""
        return self._inner.count()

    def iter_prompts(self, batch_size: int = 1024) -> Iterator[str]:
        """Every stored prompt text."""
        return self._inner.iter_prompts(batch_size)

    def iter_points(self, batch_size: int = 256) -> Iterator[IndexPoint]:
        """Every stored point."""
        return self._inner.iter_points(batch_size)

    def close(self) -> None:
        """The owner closes the index, not its borrowers."""


# --- the serving side -----------------------------------------------------------------------------------
class _Progress:
    """IngestProgress written to the client as JSON lines."""

    def __init__(self, send: Callable[[dict[str, Any]], None]) -> None:
        self._send = send

    def stage(self, description: str, total: int | None = None) -> None:
        """A new stage."""
        self._send({"event": "stage", "description": description, "total": total})

    def advance(self, count: int) -> None:
        """Progress within the stage."""
        self._send({"event": "advance", "count": count})


class IndexShareServer:
    """Answers the CLI's info, search and ingest over a Unix socket, from the serving process's index."""

    def __init__(
        self,
        path: Path,
        retriever: Retriever,
        ingestor: Callable[[], Ingestor],
        after_ingest: Callable[[], object] | None = None,
    ) -> None:
        self._path = path
        self._retriever = retriever
        self._ingestor = ingestor
        self._after_ingest = after_ingest
        self._writer = threading.Lock()  # one ingest at a time: the index has a single writer
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> Path:
        """The socket's path."""
        return self._path

    def start(self) -> IndexShareServer:
        """Listen (a stale socket file from a killed process is replaced); a second server is refused."""
        if len(str(self._path)) > MAX_SOCKET_PATH:
            raise IndexUnavailableError(
                f"{self._path} is too long for a Unix socket: shorten IMAGINE_DATA_DIR"
            )
        if is_served(self._path):
            raise IndexUnavailableError(
                f"another imagine-bot process already serves the index ({self._path})"
            )
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
        share = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                share._handle(self.rfile.readline(), self.wfile)

        self._server = socketserver.ThreadingUnixStreamServer(str(self._path), Handler)
        self._server.daemon_threads = True
        os.chmod(self._path, 0o600)  # the same user only, like the index directory itself
        self._thread = threading.Thread(target=self._server.serve_forever, name="index-share", daemon=True)
        self._thread.start()
        logger.info("sharing the prompt index with CLI commands at %s", self._path)
        return self

    def stop(self) -> None:
        """Stop listening and remove the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()

    def _handle(self, line: bytes, out: Any) -> None:
        """One request: parse, run, answer (errors become one error line, never a traceback)."""

        def send(message: dict[str, Any]) -> None:
            out.write(json.dumps(message, ensure_ascii=False).encode() + b"\n")
            out.flush()

        try:
            request = json.loads(line)
            operation = request.get("op")
            if operation == "info":
                send({"event": "done", "result": self._info()})
            elif operation == "search":
                send({"event": "done", "result": self._search(request)})
            elif operation == "ingest":
                send({"event": "done", "result": self._ingest(request, _Progress(send))})
            else:
                send({"event": "error", "message": f"unknown operation {operation!r}"})
        except (BrokenPipeError, ConnectionResetError):
            logger.info("index share: the client went away")
        except RetrievalError as exc:
            send({"event": "error", "message": str(exc)})
        except Exception as exc:
            logger.exception("index share: %s failed", line[:80])
            with contextlib.suppress(OSError):
                send({"event": "error", "message": f"the serving process failed: {type(exc).__name__}"})

    def _info(self) -> dict[str, Any]:
        self._retriever.open()
        spec = self._retriever.index.spec()
        if spec is None:
            raise IndexUnavailableError("the serving process has no index")
        count = self._retriever.index.count()
        return {"embed_model": spec.embed_model, "dimension": spec.dimension, "prompts": count}

    def _search(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        options = {k: v for k, v in request.get("options", {}).items() if k in _SEARCH_OPTIONS}
        if "mode" in options:
            options["mode"] = SearchMode(options["mode"])
        hits = self._retriever.search(str(request["query"]), int(request.get("k", 5)), **options)
        return [hit.as_dict() for hit in hits]

    def _ingest(self, request: dict[str, Any], progress: IngestProgress) -> dict[str, Any]:
        options = IngestOptions(
            **{k: v for k, v in request.get("options", {}).items() if k in _INGEST_FIELDS}
        )
        paths = [Path(p) for p in request["paths"]]
        if not self._writer.acquire(blocking=False):
            progress.stage("Waiting for another ingest to finish")
            self._writer.acquire()
        try:
            summary = self._ingestor().ingest_files(paths, options, progress)
            if self._after_ingest is not None:
                progress.stage("Mining modifiers")
            extra = self._after_ingest() if self._after_ingest is not None else None
        finally:
            self._writer.release()
        return {**summary.as_dict(), "after": extra}


_SEARCH_OPTIONS = ("mode", "safe", "exact", "explain", "diversify")
_INGEST_FIELDS = tuple(f.name for f in dataclasses.fields(IngestOptions))


# --- the CLI side ---------------------------------------------------------------------------------------
def is_served(path: Path) -> bool:
    """Whether a serving process answers on `path`."""
    if not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(CONNECT_TIMEOUT_S)
            probe.connect(str(path))
    except OSError:
        return False
    return True


class IndexShareClient:
    """The CLI's view of an index held by a serving process."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def info(self) -> dict[str, Any]:
        """Model, dimension and size of the served index."""
        return dict(self._call({"op": "info"}))

    def search(self, query: str, k: int = 5, **options: Any) -> list[PromptHit]:
        """The serving process's search (its defaults unless options say otherwise)."""
        sent = {k: (v.value if isinstance(v, SearchMode) else v) for k, v in options.items()}
        found = self._call({"op": "search", "query": query, "k": k, "options": sent})
        return [_hit(item) for item in found]

    def ingest(
        self, paths: Sequence[Path], options: IngestOptions, progress: IngestProgress
    ) -> tuple[IngestSummary, int]:
        """Ingest in the serving process, reporting its progress here; the summary and modifiers mined."""
        request = {
            "op": "ingest",
            "paths": [str(Path(p).resolve()) for p in paths],
            "options": dataclasses.asdict(options),
        }
        result = self._call(request, progress)
        return _summary(result), int(result.get("after") or 0)

    def _call(self, request: dict[str, Any], progress: IngestProgress | None = None) -> Any:
        """Send one request and read events until its result (or error)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(CONNECT_TIMEOUT_S)
            try:
                conn.connect(str(self._path))
            except OSError as exc:
                raise IndexUnavailableError(f"the serving process at {self._path} is gone: {exc}") from exc
            conn.settimeout(None)  # an ingest may run for minutes
            conn.sendall(json.dumps(request).encode() + b"\n")
            with conn.makefile("rb") as replies:
                for line in replies:
                    event = json.loads(line)
                    kind = event.get("event")
                    if kind == "done":
                        return event.get("result")
                    if kind == "error":
                        raise IndexUnavailableError(f"the serving process refused: {event.get('message')}")
                    if progress is not None and kind == "stage":
                        progress.stage(str(event.get("description")), event.get("total"))
                    elif progress is not None and kind == "advance":
                        progress.advance(int(event.get("count") or 0))
        raise IndexUnavailableError("the serving process closed the connection without an answer")


def _hit(item: dict[str, Any]) -> PromptHit:
    """A PromptHit from its JSON view (the explanation, if any, stays in the payload)."""
    payload = {k: v for k, v in item.items() if k not in ("id", "score")}
    return PromptHit(str(item["id"]), str(item["prompt"]), float(item["score"]), payload)


def _summary(data: dict[str, Any]) -> IngestSummary:
    """An IngestSummary from its JSON view."""
    known = {f.name for f in dataclasses.fields(IngestSummary)}
    values = {k: v for k, v in data.items() if k in known}
    for key in ("flagged_by", "dropped"):
        values[key] = Counter(values.get(key) or {})
    return IngestSummary(**values)
