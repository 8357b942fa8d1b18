"""Readers of prompt files: formats, metadata, and one-line errors for unusable input."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retrieval.errors import IngestError
from retrieval.sources import count_rows, read_prompts


def test_reads_the_shared_library_with_metadata(library_path: Path) -> None:
    rows = read_prompts(library_path)
    first = next(iter(rows))
    assert isinstance(first.text, str) and "kangaroo" in first.text
    assert first.metadata["seed"] == 556046175
    assert first.metadata["timestamp"].startswith("2022-08-08T23:28:05")
    assert first.metadata["source"] == "krea_open_prompts_1k"
    assert "source_repo" not in first.metadata  # only the documented metadata columns are kept
    assert count_rows(library_path) == 78_894


def test_csv_and_jsonl_with_diffusiondb_column_names(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text('prompt,step,cfg_scale,image_nsfw\n"a red fox, snow",50,7.5,0.1\nsecond one here,20,5,\n')
    rows = list(read_prompts(csv))
    assert [r.text for r in rows] == ["a red fox, snow", "second one here"]
    assert rows[0].metadata == {"steps": 50, "cfg": 7.5, "image_nsfw": 0.1}
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(json.dumps({"prompt": "a castle", "seed": 3, "unknown": 1}) + "\n\n")
    assert [(r.text, r.metadata) for r in read_prompts(jsonl)] == [("a castle", {"seed": 3})]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.parquet", None, "no such file"),
        ("notes.txt", "hello", "unsupported file type .txt"),
        ("corrupt.parquet", "PAR1 this is not parquet", "not a readable parquet file"),
        ("bad.jsonl", "{not json\n", "not valid JSON"),
        ("list.jsonl", "[1, 2]\n", "expected a JSON object"),
        ("nokey.jsonl", '{"text": "x"}\n', "no `prompt` key"),
        ("nocol.csv", "text,seed\nhello,1\n", "no `prompt` column"),
    ],
)
def test_unusable_files_fail_with_one_line(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(IngestError, match=message) as error:
        list(read_prompts(path))
    assert "\n" not in str(error.value)


def test_parquet_without_prompt_column_fails_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "noprompt.parquet"
    pq.write_table(pa.table({"text": ["a dog"]}), path)
    with pytest.raises(IngestError, match=r"no `prompt` column \(columns: text\)"):
        read_prompts(path)  # raised when opening, before any row is consumed
