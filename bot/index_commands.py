"""`imagine-bot index export|import`: move a prompt index between Qdrant Edge and a Qdrant server.

No re-embedding: the file carries every point's id, dense vector, BM25 sparse vector and payload, plus
the spec (embedding model and dimension) the index was built with. The format is gzip-compressed JSON
lines: a header line `{"format": "imagine-index-export", "version": 1, "spec": {...}, "count": N}`
followed by one `{"id", "dense", "sparse": {"indices", "values"}, "payload"}` object per point. Both
directions stream (a page of points at a time), so an index larger than memory moves fine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from rich.console import Console

from bot.settings import Settings
from retrieval.adapters.index_common import mismatch_message, spec_from_record, spec_record
from retrieval.errors import IndexMismatchError, IndexMissingError, IngestError
from retrieval.ports import IndexPoint, IndexSpec, PromptIndex, SparseVector

FORMAT = "imagine-index-export"
VERSION = 1
BATCH = 256
Advance = Callable[[int], None]


def add_index_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Register `index export PATH` and `index import PATH` on the CLI's subparsers."""
    index = commands.add_parser(
        "index",
        help="export the prompt index to a file, or import one (moves Edge <-> Qdrant server)",
        description="Move the prompt index between the embedded Qdrant Edge store and a Qdrant server "
        "without re-embedding. The configured index is IMAGINE_QDRANT_URL's collection when set, "
        "else the embedded one under IMAGINE_DATA_DIR.",
        epilog=epilog,
    )
    actions = index.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export", help="write every point (vectors + payload) to PATH (.jsonl.gz)", epilog=epilog
    )
    export.add_argument("path", type=Path, metavar="PATH", help="file to write, e.g. prompts.jsonl.gz")
    imported = actions.add_parser(
        "import",
        help="load PATH into the configured index (refuses another embedding model)",
        epilog=epilog,
    )
    imported.add_argument("path", type=Path, metavar="PATH", help="a file written by `index export`")


def run_index(args: argparse.Namespace, settings: Settings) -> int:
    """`imagine-bot index export|import PATH` against the configured index."""
    from bot.commands import _mine_modifiers, _progress
    from bot.wiring import build_embedder, build_index

    index = build_index(settings)
    console = Console(stderr=True)
    try:
        with _progress() as progress:
            if args.index_command == "export":
                spec = index.spec()
                if spec is None:
                    raise IndexMissingError("no prompt index to export: run `imagine-bot ingest PATH` first")
                index.open(spec, create=False)
                task = progress.add_task("Exporting", total=index.count())
                written = export_index(index, args.path, lambda n: progress.advance(task, n))
                console.print(f"exported {written:,} prompts ({spec.embed_model}, {spec.dimension}-d)")
                return 0
            embedder = build_embedder(settings)
            wanted = IndexSpec(embedder.model_id, embedder.dimension)
            task = progress.add_task("Importing", total=read_header(args.path)[1] or None)
            loaded = import_index(index, args.path, wanted, lambda n: progress.advance(task, n))
            modifiers = _mine_modifiers(index, settings)
        console.print(f"imported {loaded:,} prompts; {modifiers} modifiers mined for the offline composer")
        return 0
    finally:
        index.close()


def export_index(index: PromptIndex, path: Path, advance: Advance | None = None) -> int:
    """Write every point of the open `index` to `path` (atomically); returns how many were written."""
    spec = index.spec()
    if spec is None:
        raise IndexMissingError("no prompt index to export: run `imagine-bot ingest PATH` first")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    written = 0
    try:
        with gzip.open(tmp, "wt", encoding="utf-8") as out:
            header = {"format": FORMAT, "version": VERSION, "spec": spec_record(spec), "count": index.count()}
            out.write(json.dumps(header) + "\n")
            for point in index.iter_points(BATCH):
                out.write(json.dumps(_record(point), ensure_ascii=False) + "\n")
                written += 1
                if advance is not None and written % BATCH == 0:
                    advance(BATCH)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if advance is not None:
        advance(written % BATCH)
    return written


def read_header(path: Path) -> tuple[IndexSpec, int]:
    """The spec and point count recorded in an export file; IngestError when it is not one."""
    try:
        with _open(path) as lines:
            first = next(lines, "")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise IngestError(f"cannot read {path}: {type(exc).__name__}") from exc
    try:
        header = json.loads(first)
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise IngestError(
            f"{path} is not an imagine-bot index export (written by `imagine-bot index export`)"
        )
    if header.get("version") != VERSION:
        raise IngestError(f"{path} has export format version {header.get('version')}; expected {VERSION}")
    spec = spec_from_record(header.get("spec"))
    if spec is None:
        raise IngestError(f"{path} has no valid index spec in its header")
    count = header.get("count")
    return spec, count if isinstance(count, int) else 0


def import_index(index: PromptIndex, path: Path, wanted: IndexSpec, advance: Advance | None = None) -> int:
    """Load an export into `index` (created when missing); IndexMismatchError on another model/dimension.

    `wanted` is the configured embedder's spec: an index built with another model could be loaded but
    never searched, so that is refused before anything is written. The target index's own spec is
    checked by `open()` (an existing index built with another model is refused too).
    """
    spec, _ = read_header(path)
    if spec != wanted:
        raise IndexMismatchError(mismatch_message(str(path), spec, wanted))
    index.open(spec, create=True)
    loaded = 0
    batch: list[IndexPoint] = []
    try:
        with _open(path) as lines:
            next(lines, None)
            for number, line in enumerate(lines, start=2):
                if not line.strip():
                    continue
                batch.append(_point(line, path, number, spec.dimension))
                if len(batch) >= BATCH:
                    index.upsert(batch)
                    loaded += len(batch)
                    if advance is not None:
                        advance(len(batch))
                    batch = []
    except (OSError, EOFError, UnicodeDecodeError) as exc:  # a truncated or corrupt file
        raise IngestError(f"cannot read {path} after {loaded:,} points: {type(exc).__name__}") from exc
    if batch:
        index.upsert(batch)
        loaded += len(batch)
        if advance is not None:
            advance(len(batch))
    index.finalize()
    return loaded


def _open(path: Path) -> IO[str]:
    """The lines of a (gzip or plain) export file, as a context manager."""
    try:
        with open(path, "rb") as probe:
            gzipped = probe.read(2) == b"\x1f\x8b"
    except OSError as exc:
        raise IngestError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _record(point: IndexPoint) -> dict[str, Any]:
    return {
        "id": point.id,
        "dense": point.dense,
        "sparse": {"indices": point.sparse.indices, "values": point.sparse.values},
        "payload": point.payload,
    }


def _point(line: str, path: Path, number: int, dimension: int) -> IndexPoint:
    try:
        record = json.loads(line)
        sparse = record["sparse"]
        point = IndexPoint(
            id=str(record["id"]),
            dense=[float(x) for x in record["dense"]],
            sparse=SparseVector([int(i) for i in sparse["indices"]], [float(v) for v in sparse["values"]]),
            payload=dict(record["payload"]),
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise IngestError(f"{path} line {number} is not an exported point ({type(exc).__name__})") from None
    if len(point.dense) != dimension:
        raise IngestError(
            f"{path} line {number} has a {len(point.dense)}-d vector; the header says {dimension}"
        )
    return point
