"""`imagine-bot index export|import|rescreen|reprior`: move, rescreen or craft-prior-backfill the index.

No re-embedding: the file carries every point's id, dense vector, BM25 sparse vector and payload, plus
the spec (embedding model and dimension) the index was built with. The format is gzip-compressed JSON
lines: a header line `{"format": "imagine-index-export", "version": 1, "spec": {...}, "count": N}`
followed by one `{"id", "dense", "sparse": {"indices", "values"}, "payload"}` object per point. Both
directions stream (a page of points at a time), so an index larger than memory moves fine. `rescreen`
re-runs the safety screens over the stored points (the logic lives in retrieval.rescreen); `reprior`
stores today's craft prior in the points that lack it (retrieval.reprior).
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich.table import Table

from bot.config import Config
from bot.entry.cli import output
from retrieval.adapters.index_common import mismatch_message, spec_from_record, spec_record
from retrieval.errors import IndexMismatchError, IndexMissingError, IngestError
from retrieval.index_ports import IndexPoint, IndexSpec, PromptIndex, SparseVector

if TYPE_CHECKING:
    from retrieval.rescreen import RescreenSummary

FORMAT = "imagine-index-export"
VERSION = 1
BATCH = 256
Advance = Callable[[int], None]


def add_index_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Register `index export PATH`, `index import PATH`, `index rescreen` and `index reprior`."""
    index = commands.add_parser(
        "index",
        help="export the prompt index to a file, import one (moves Edge <-> Qdrant server), rescreen it, "
        "or backfill its craft prior",
        description="Move the prompt index between the embedded Qdrant Edge store and a Qdrant server "
        "without re-embedding, or re-run the safety screens over it. The configured index is "
        "IMAGINE_QDRANT_URL's collection when set, else the embedded one under IMAGINE_DATA_DIR.",
        epilog=epilog,
    )
    actions = index.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export", help="write every point (vectors + payload) to PATH (.jsonl.gz)", epilog=epilog
    )
    export.add_argument("path", type=Path, metavar="PATH", help="file to write, e.g. prompts.jsonl.gz")
    export.add_argument("--json", action="store_true", help="print what was written as JSON")
    imported = actions.add_parser(
        "import",
        help="load PATH into the configured index (refuses another embedding model)",
        epilog=epilog,
    )
    imported.add_argument("path", type=Path, metavar="PATH", help="a file written by `index export`")
    imported.add_argument("--json", action="store_true", help="print what was loaded as JSON")
    rescreen = actions.add_parser(
        "rescreen",
        help="re-run the safety screens over every stored prompt and fix flags that changed",
        description="Recompute every stored prompt's safety flags with the current lexicon and the "
        "embedding classifier and known-unsafe exemplars built for the index's embedding model, from the "
        "stored vectors (no re-embedding), and write back only the prompts whose flags or scores changed. "
        "Run it after a safety update: `ingest` skips prompts already indexed, so they keep their old "
        "flags. A flag from a screen that does not fit the index's model is kept. Running it twice "
        "changes nothing the second time.",
        epilog=epilog,
    )
    rescreen.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
    rescreen.add_argument("--json", action="store_true", help="print the summary as JSON")
    reprior = actions.add_parser(
        "reprior",
        help="store today's craft prior in every stored prompt that lacks it (fast, no re-embedding)",
        description="Compute the craft prior (how many borrowable style, medium, lighting, artist... "
        "phrases a prompt has; what search ranks crafted prompts by) from every stored prompt's text and "
        "store it where it is missing or was computed by an older definition. Payload only: no vector is "
        "rewritten. Run it after an update: `ingest` skips prompts already indexed. Running it twice "
        "writes nothing the second time.",
        epilog=epilog,
    )
    reprior.add_argument("--json", action="store_true", help="print the summary as JSON")


def run_index(args: argparse.Namespace, config: Config) -> int:
    """`imagine-bot index export|import PATH` or `index rescreen` against the configured index."""
    from bot.entry.cli.library import _mine_modifiers, _progress
    from bot.wiring import build_embedder, build_index

    index = build_index(config)
    console = output.console(stderr=True)
    try:
        if args.index_command == "rescreen":
            return run_rescreen(index, config, dry_run=args.dry_run, as_json=args.json)
        if args.index_command == "reprior":
            return run_reprior(index, as_json=args.json)
        if args.index_command == "export":
            spec = index.spec()
            if spec is None:
                raise IndexMissingError("no prompt index to export: run `imagine-bot ingest PATH` first")
            index.open(spec, create=False)
            with _progress() as progress:
                task = progress.add_task("Exporting", total=index.count())
                written = export_index(index, args.path, lambda n: progress.advance(task, n))
            if args.json:
                output.print_json({"exported": written, "path": str(args.path), "model": spec.embed_model})
            else:
                console.print(f"exported {written:,} prompts ({spec.embed_model}, {spec.dimension}-d)")
            return 0
        embedder = build_embedder(config)
        wanted = IndexSpec(embedder.model_id, embedder.dimension)
        with _progress() as progress:
            task = progress.add_task("Importing", total=read_header(args.path)[1] or None)
            loaded = import_index(index, args.path, wanted, lambda n: progress.advance(task, n))
            modifiers = _mine_modifiers(index, config)
        if args.json:
            output.print_json({"imported": loaded, "path": str(args.path), "modifiers": modifiers})
        else:
            console.print(f"imported {loaded:,} prompts; {modifiers} modifiers mined for the offline writer")
        return 0
    finally:
        index.close()


def run_rescreen(index: PromptIndex, config: Config, *, dry_run: bool, as_json: bool = False) -> int:
    """`imagine-bot index rescreen [--dry-run]`: rescreen the configured index and print a summary."""
    from bot.entry.cli.library import _progress
    from retrieval.rescreen import applicable_screens, rescreen_index
    from retrieval.safety import SafetyClassifier

    spec = index.spec()
    if spec is None:
        raise IndexMissingError("no prompt index to rescreen: run `imagine-bot ingest PATH` first")
    index.open(spec, create=False)
    classifier = SafetyClassifier(threshold=config.nsfw_threshold)  # the lexicon ingest uses
    screens = applicable_screens(spec)
    with _progress() as progress:
        task = progress.add_task("Rescreening" + (" (dry run)" if dry_run else ""), total=index.count())
        summary = rescreen_index(
            index, classifier, screens, dry_run=dry_run, advance=lambda n: progress.advance(task, n)
        )
    if as_json:
        output.print_json(summary.as_dict())
    else:
        output.console().print(_rescreen_table(summary))
    return 0


def run_reprior(index: PromptIndex, *, as_json: bool = False) -> int:
    """`imagine-bot index reprior`: backfill the craft prior of the configured index and print a summary."""
    from bot.entry.cli.library import _progress
    from retrieval.reprior import reprior_index

    spec = index.spec()
    if spec is None:
        raise IndexMissingError("no prompt index to backfill: run `imagine-bot ingest PATH` first")
    index.open(spec, create=False)
    with _progress() as progress:
        task = progress.add_task("Craft prior", total=index.count())
        summary = reprior_index(index, advance=lambda n: progress.advance(task, n))
    if as_json:
        output.print_json(dataclasses.asdict(summary))
    else:
        output.console().print(
            f"craft prior: {summary.checked:,} prompts checked, {summary.written:,} written "
            f"in {summary.seconds:,.1f} s"
        )
    return 0


def _rescreen_table(summary: RescreenSummary) -> Table:
    """A rich table of what a rescreen changed (or would change, in a dry run)."""
    title = "Rescreen summary" + (" (dry run: nothing written)" if summary.dry_run else "")
    caption = "A prompt is hidden in safe search while any screen flags it."
    table = Table(title=title, caption=caption, show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("screens", ", ".join(summary.screens))
    table.add_row("points checked", f"{summary.checked:,}")
    table.add_row("newly flagged unsafe (hidden in safe search)", f"{summary.newly_unsafe:,}")
    for label, count in summary.flagged_by.most_common():
        table.add_row(f"  new flags from {label}", f"{count:,}")
    table.add_row("unflagged (shown in safe search again)", f"{summary.unflagged:,}")
    for label, count in summary.cleared_by.most_common():
        table.add_row(f"  flags cleared from {label}", f"{count:,}")
    table.add_row("scores or flags updated, visibility unchanged", f"{summary.updated:,}")
    table.add_row("unchanged", f"{summary.unchanged:,}")
    if summary.without_vector:
        table.add_row("without a dense vector (lexicon only)", f"{summary.without_vector:,}")
    table.add_row("written", f"{summary.written:,}")
    table.add_row("seconds", f"{summary.seconds:,.1f}")
    return table


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
