"""Readers of prompt libraries: parquet, CSV and JSONL files with a `prompt` column and optional metadata."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from retrieval.errors import IngestError

# Metadata kept as payload, with the column names other libraries use for them.
METADATA_COLUMNS: dict[str, str] = {
    "seed": "seed",
    "steps": "steps",
    "step": "steps",
    "cfg": "cfg",
    "cfg_scale": "cfg",
    "sampler": "sampler",
    "width": "width",
    "height": "height",
    "prompt_nsfw": "prompt_nsfw",
    "image_nsfw": "image_nsfw",
    "timestamp": "timestamp",
    "source": "source",
    "license": "license",
    "model": "model",
}
READ_BATCH_ROWS = 65_536
SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class RawPrompt:
    """One row of an input file: the raw prompt text and its metadata."""

    text: object
    metadata: dict[str, Any] = field(default_factory=dict)


def file_format(path: Path) -> str:
    """The reader to use for `path`, by suffix."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise IngestError(
            f"{path}: unsupported file type {path.suffix or '(none)'}; use .parquet, .csv or .jsonl"
        )
    return kind


def _json_value(value: Any) -> Any:
    """Make a metadata value JSON-friendly (timestamps as ISO strings, NaN as None)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _metadata(row: dict[str, Any]) -> dict[str, Any]:
    """Pick the known metadata columns of a row, dropping nulls."""
    kept: dict[str, Any] = {}
    for column, name in METADATA_COLUMNS.items():
        value = _json_value(row.get(column))
        if value is not None and name not in kept:
            kept[name] = value
    return kept


def _table_rows(batches: Iterator[pa.RecordBatch], path: Path) -> Iterator[RawPrompt]:
    """Rows of Arrow record batches that hold a `prompt` column."""
    for batch in batches:
        if "prompt" not in batch.schema.names:
            raise IngestError(f"{path}: no `prompt` column (columns: {', '.join(batch.schema.names[:12])})")
        wanted = [name for name in batch.schema.names if name == "prompt" or name in METADATA_COLUMNS]
        for row in batch.select(wanted).to_pylist():
            yield RawPrompt(row.get("prompt"), _metadata(row))


def _parquet_rows(path: Path) -> Iterator[RawPrompt]:
    """Check a parquet file's schema now, then stream it in batches of the columns we keep."""
    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"{path}: not a readable parquet file ({exc})") from None
    if "prompt" not in names:
        raise IngestError(f"{path}: no `prompt` column (columns: {', '.join(names[:12])})")
    columns = [name for name in names if name == "prompt" or name in METADATA_COLUMNS]
    return _guarded(
        _table_rows(parquet.iter_batches(batch_size=READ_BATCH_ROWS, columns=columns), path), path
    )


def _csv_rows(path: Path) -> Iterator[RawPrompt]:
    """Check a CSV file's header now, then stream it."""
    try:
        reader = pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=1 << 22))
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"{path}: not a readable CSV file ({exc})") from None
    if "prompt" not in reader.schema.names:
        raise IngestError(f"{path}: no `prompt` column (columns: {', '.join(reader.schema.names[:12])})")
    return _guarded(_table_rows(iter(reader), path), path)


def _guarded(rows: Iterator[RawPrompt], path: Path) -> Iterator[RawPrompt]:
    """Turn Arrow errors met while streaming into IngestError."""
    try:
        yield from rows
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"{path}: corrupt data ({exc})") from None


def _jsonl_rows(path: Path) -> Iterator[RawPrompt]:
    """Check the first JSON Lines record now, then stream the file."""
    rows = _jsonl_stream(path)
    try:
        first = next(rows)
    except StopIteration:
        return iter(())
    return _prepend(first, rows)


def _prepend(first: RawPrompt, rest: Iterator[RawPrompt]) -> Iterator[RawPrompt]:
    """Yield `first`, then the rest."""
    yield first
    yield from rest


def _jsonl_stream(path: Path) -> Iterator[RawPrompt]:
    """Stream a JSON Lines file of objects with a `prompt` key."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise IngestError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise IngestError(f"{path}:{number}: expected a JSON object with a `prompt` key")
            if "prompt" not in row:
                raise IngestError(f"{path}:{number}: no `prompt` key (keys: {', '.join(list(row)[:12])})")
            yield RawPrompt(row.get("prompt"), _metadata(row))


def read_prompts(path: Path) -> Iterator[RawPrompt]:
    """Stream the rows of one prompt file, raising IngestError with a one-line reason when it is unusable."""
    if not path.exists():
        raise IngestError(f"{path}: no such file")
    if not path.is_file():
        raise IngestError(f"{path}: not a file")
    readers = {"parquet": _parquet_rows, "csv": _csv_rows, "jsonl": _jsonl_rows}
    return readers[file_format(path)](path)


def count_rows(path: Path) -> int | None:
    """Row count when it is cheap to know (parquet footers), else None."""
    if file_format(path) != "parquet":
        return None
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (pa.ArrowException, OSError):
        return None
