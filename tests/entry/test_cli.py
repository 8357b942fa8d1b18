"""The `imagine-bot` CLI end to end in subprocesses: ingest, search, info, and one-line errors."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import LIBRARY

SLICE_ROWS = 600


def run_cli(
    *args: str, data_dir: Path, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `imagine-bot ARGS` with an isolated data dir and no cloud credentials."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGINE_", "AWS_", "SLACK_"))}
    clean.update({"IMAGINE_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", "COLUMNS": "200", **env})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=clean,
        timeout=300,
        input=stdin if stdin is not None else "",
    )


@pytest.fixture(scope="module")
def slice_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A parquet slice of the library plus rows that must be filtered or flagged."""
    table = pq.read_table(LIBRARY).slice(0, SLICE_ROWS)
    extra = pa.table(
        {
            "prompt": [
                "a cute cartoon puppy with big eyes, sticker art, vector illustration",
                "explicit nude porn photo of a woman, nsfw",
                "a dog portrait, scored as nsfw by its source",
            ],
            "prompt_nsfw": [0.0, 0.1, 0.97],
        }
    )
    path = tmp_path_factory.mktemp("lib") / "slice.parquet"
    pq.write_table(
        pa.concat_tables([table.select(["prompt", "source", "seed"]), extra], promote_options="default"), path
    )
    return path


@pytest.fixture(scope="module")
def ingested(
    slice_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A data dir with the slice ingested once through the CLI."""
    data_dir = tmp_path_factory.mktemp("data")
    result = run_cli("ingest", str(slice_file), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    return data_dir, result


def test_ingest_shows_progress_and_a_summary(ingested: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    _, result = ingested
    assert "Embedding" in result.stderr and "Building HNSW" in result.stderr
    assert "Ingest summary" in result.stdout
    assert re.search(rf"read\W+{SLICE_ROWS + 3}\b", result.stdout)
    assert "nsfw score" in result.stdout  # the row whose own prompt_nsfw was 0.97
    assert "Traceback" not in result.stderr


def test_reingest_is_idempotent(
    ingested: tuple[Path, subprocess.CompletedProcess[str]], slice_file: Path
) -> None:
    data_dir, first = ingested
    again = run_cli("ingest", str(slice_file), data_dir=data_dir)
    assert again.returncode == 0, again.stderr
    assert re.search(r"newly embedded\W+0\b", again.stdout)
    kept = re.search(r"kept\W+(\d+)", first.stdout)
    assert kept and re.search(rf"already in the index\W+{kept.group(1)}\b", again.stdout)
    flagged = r"flagged unsafe \(hidden in safe search\)\W+(\d+)"
    first_flags, again_flags = re.search(flagged, first.stdout), re.search(flagged, again.stdout)
    assert first_flags and int(first_flags.group(1)) >= 1  # the explicit row of the slice
    assert again_flags and again_flags.group(1) == "0"  # nothing embedded, nothing counted
    assert "index rescreen" not in first.stdout
    assert "keep their stored safety flags" in " ".join(again.stdout.split())
    assert "imagine-bot index rescreen" in " ".join(again.stdout.split())
    info = run_cli("info", data_dir=data_dir)
    assert "local:all-MiniLM-L6-v2 (384-d)" in info.stdout


def test_search_json_returns_distinct_relevant_safe_hits(
    ingested: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    data_dir, _ = ingested
    result = run_cli("search", "a cartoon of a little dog", "--json", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert len(hits) == 5
    assert all({"id", "prompt", "score", "safe"} <= set(hit) for hit in hits)
    assert len({hit["prompt"].lower() for hit in hits}) == 5
    assert all(hit["safe"] for hit in hits)
    assert any(hit["prompt"].startswith("a cute cartoon puppy") for hit in hits)
    assert not any("nude" in hit["prompt"] for hit in hits)


def test_search_explain_shows_the_concept_plan_when_claude_plans(
    ingested: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    from sandbox.bedrock_converse import install_converse_handlers
    from sandbox.bedrock_runtime import FakeBedrockRuntime

    data_dir, _ = ingested
    with FakeBedrockRuntime() as fake:
        script = install_converse_handlers(fake)
        script.push_tool_input({"concepts": [{"name": "subject", "phrases": ["puppy", "dog"]}]})
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
        env |= {"IMAGINE_CONCEPT_PLANNER": "bedrock:us.anthropic.claude-haiku-4-5-20251001-v1:0"}
        env |= {"IMAGINE_BEDROCK_ENDPOINT_URL": fake.url}
        result = run_cli("search", "a smol doggo", "--explain", "-k", "3", data_dir=data_dir, **env)
    assert result.returncode == 0, result.stderr
    assert "concept plan: subject: puppy, dog" in result.stdout
    assert "(covers: subject)" in result.stdout and len(script.bodies) == 1
    plain = run_cli("search", "a smol doggo", "--explain", "-k", "3", data_dir=data_dir)
    assert "concept plan" not in plain.stdout  # off by default


def test_unsafe_prompts_only_with_no_safe(ingested: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    data_dir, _ = ingested
    query = ("nude photo of a woman", "--json", "-k", "10", "--mode", "sparse")
    safe = json.loads(run_cli("search", *query, data_dir=data_dir).stdout)
    unsafe = json.loads(run_cli("search", *query, "--no-safe", data_dir=data_dir).stdout)
    assert all(hit["safe"] for hit in safe)
    assert any(not hit["safe"] and "nude" in hit["prompt"] for hit in unsafe)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], dict[str, str], str]]:
    no_prompt = tmp / "noprompt.parquet"
    pq.write_table(pa.table({"text": ["a dog"]}), no_prompt)
    corrupt = tmp / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1" + b"\x00garbage" * 10)
    return {
        "missing file": (["ingest", str(tmp / "nope.parquet")], {}, "no such file"),
        "no prompt column": (["ingest", str(no_prompt)], {}, "no `prompt` column"),
        "corrupt parquet": (["ingest", str(corrupt)], {}, "not a readable parquet file"),
        "no paths": (["ingest"], {}, "nothing to ingest"),
        "empty query": (["search", "   "], {}, "query is empty"),
        "other embedding model": (
            ["search", "a dog"],
            {
                "IMAGINE_EMBED_MODEL": "bedrock:amazon.titan-embed-text-v2:0",
                "IMAGINE_EMBED_DIMENSIONS": "256",
            },
            "was built with local:all-MiniLM-L6-v2",
        ),
        "unreachable qdrant": (
            ["search", "a dog"],
            {"IMAGINE_QDRANT_URL": f"http://127.0.0.1:{_closed_port()}", "IMAGINE_QDRANT_TIMEOUT_S": "2"},
            "IMAGINE_QDRANT_URL",
        ),
        "bad setting": (["search", "a dog"], {"IMAGINE_EMBED_MODEL": "minilm"}, "IMAGINE_EMBED_MODEL"),
        "diffusiondb offline": (["ingest", "--diffusiondb", "2m"], {}, "HF_HUB_OFFLINE is set"),
        "diffusiondb unreachable": (
            ["ingest", "--diffusiondb", "large"],
            {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"},
            "run `imagine-bot ingest /path/to/metadata-large.parquet`",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "no prompt column",
        "corrupt parquet",
        "no paths",
        "empty query",
        "other embedding model",
        "unreachable qdrant",
        "bad setting",
        "diffusiondb offline",
        "diffusiondb unreachable",
    ],
)
def test_bad_input_gets_one_line_and_nonzero_exit(
    case: str, ingested: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    data_dir, _ = ingested
    args, env, message = _bad_inputs(tmp_path)[case]
    result = run_cli(*args, data_dir=data_dir, **env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0]


def test_search_before_ingest_says_what_to_do(tmp_path: Path) -> None:
    result = run_cli("search", "a dog", data_dir=tmp_path / "empty")
    assert result.returncode == 1
    assert "imagine-bot ingest" in result.stderr and "Traceback" not in result.stderr


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_cli("--help", data_dir=tmp_path)
    assert result.returncode == 0
    assert all(command in result.stdout for command in ("ingest", "search", "info"))
    usage = run_cli("search", "--help", data_dir=tmp_path).stdout
    assert "--no-safe" in usage and "--mode" in usage and "--json" in usage


def test_imagine_writes_an_image_and_prints_hits_and_prompt(
    ingested: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    data_dir, _ = ingested
    result = run_cli(
        "imagine", "a cartoon of a little dog", "--ar", "3:2", "--no", "text", "--json", data_dir=data_dir
    )
    assert result.returncode == 0, result.stderr
    turn = json.loads(result.stdout)
    assert len(turn["hits"]) == 5 and "dog" in turn["prompts"][0]["prompt"]
    assert turn["prompts"][0]["aspect_ratio"] == "3:2" and "text" in turn["prompts"][0]["negative_prompt"]
    image = Path(turn["images"][0]["path"])
    assert image.exists() and image.read_bytes().startswith(b"\x89PNG")
    assert any("offline" in label for label in turn["labels"])
    cited = " | ".join(h["prompt"].lower() for h in turn["hits"] if h["number"] in turn["used_hits"])
    assert turn["borrowed"] and all(phrase in cited for phrase in turn["borrowed"])
    assert all(phrase in turn["prompts"][0]["prompt"].lower() for phrase in turn["borrowed"])
    human = run_cli("imagine", "a lighthouse in a storm", "--out", str(tmp_path / "out"), data_dir=data_dir)
    assert "Closest prompts from the library" in human.stdout and "#1" in human.stdout
    assert "offline composer" in human.stdout and len(list((tmp_path / "out").glob("*.png"))) == 1
    assert re.search(r"Borrowed from #\d", human.stdout)


def test_chat_refines_over_three_turns_and_resumes(
    ingested: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    data_dir, _ = ingested
    first = run_cli(
        "chat", "a red fox in the snow", data_dir=data_dir, stdin="make it watercolor\nno text\n/quit\n"
    )
    assert first.returncode == 0, first.stderr
    match = re.search(r"chat --thread (\d+)", first.stdout)
    assert match, first.stdout
    assert "watercolor" in first.stdout.lower()
    resumed = run_cli("chat", "--thread", match.group(1), data_dir=data_dir, stdin="wider\n/history\n/quit\n")
    assert resumed.returncode == 0, resumed.stderr
    assert "Resumed thread" in resumed.stdout
    kinds = re.findall(r"^(?:thread \d+> )?(start|refine) ", resumed.stdout, flags=re.MULTILINE)
    assert kinds == ["start", "refine", "refine", "refine"]
    unknown = run_cli("chat", "--thread", "999999", data_dir=data_dir, stdin="/quit\n")
    assert unknown.returncode == 1 and "not found" in unknown.stderr


def test_piped_output_never_wraps_or_cuts_paths_and_every_script_command_has_json(
    ingested: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    """A script reads whole lines: a narrow COLUMNS must not fold the image path, and --json parses."""
    data_dir, _ = ingested
    out = tmp_path / ("a-deliberately-long-folder-name-" * 3) / "out"
    human = run_cli("imagine", "a lighthouse in a storm", "--out", str(out), data_dir=data_dir, COLUMNS="40")
    assert human.returncode == 0, human.stderr
    [line] = [line for line in human.stdout.splitlines() if line.startswith("image ")]
    path = Path(line.split()[1])
    assert path.is_file() and len(str(path)) > 40  # the whole path on one line, though wider than COLUMNS
    assert any(line.startswith("prompt: ") for line in human.stdout.splitlines())
    info = json.loads(run_cli("info", "--json", data_dir=data_dir).stdout)
    assert info["embed_model"] == "local:all-MiniLM-L6-v2" and info["prompts"] > 0
    rescreen = json.loads(run_cli("index", "rescreen", "--dry-run", "--json", data_dir=data_dir).stdout)
    assert rescreen["dry_run"] is True and rescreen["checked"] == info["prompts"]
    reprior = json.loads(run_cli("index", "reprior", "--json", data_dir=data_dir).stdout)
    assert reprior["checked"] == info["prompts"] and reprior["written"] == 0  # ingest stored today's prior
    exported = run_cli("index", "export", str(tmp_path / "x.jsonl.gz"), "--json", data_dir=data_dir)
    assert json.loads(exported.stdout)["exported"] == info["prompts"]
