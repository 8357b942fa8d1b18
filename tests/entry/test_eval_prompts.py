"""`imagine-bot eval prompts` end to end: the offline composer on the small index, Claude on the stand-in."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import Config
from bot.entry.cli.main import main
from bot.writing.grounding import occurs
from sandbox.bedrock_converse import ConverseScript, install_converse_handlers
from sandbox.bedrock_runtime import FakeBedrockRuntime

PROFILE = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


@pytest.fixture
def index_copy(small_index: Path, tmp_path: Path) -> Path:
    """The small index copied where IMAGINE_DATA_DIR (tmp_path/data, see conftest) expects it."""
    target = Config(data_dir=tmp_path / "data").index_dir
    shutil.copytree(small_index, target)
    return target


@pytest.fixture
def claude(monkeypatch: pytest.MonkeyPatch, aws_test_credentials: None) -> Iterator[ConverseScript]:
    """Claude on the Bedrock stand-in, configured through IMAGINE_* like a real deployment."""
    with FakeBedrockRuntime() as fake:
        monkeypatch.setenv("IMAGINE_CHAT_MODEL", f"bedrock:{PROFILE}")
        monkeypatch.setenv("IMAGINE_BEDROCK_ENDPOINT_URL", fake.url)
        yield install_converse_handlers(fake)


def test_offline_report_per_set_and_dialect(index_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "prompts", "--limit", "2", "--parti-n", "2", "--json"]) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert report["chat_model"] == "offline"
    groups = [(row["group"], row["dialect"]) for row in report["summary"]]
    assert groups == [(g, d) for g in ("tuning", "heldout", "parti") for d in ("tags", "prose", "nova")]
    for row in report["summary"]:
        assert row["ideas"] == 2 and row["errors"] == 0 and row["subject_kept"] == 1.0
    assert len(report["prompts"]) == 18
    for item in report["prompts"]:
        assert item["prompt"] and len(item["hits"]) == 5 and item["within_limit"]
        for added in item["added"]:  # grounded phrases name the hits that hold them
            assert all(occurs(added["phrase"], item["hits"][n - 1]) for n in added["hits"])
    assert [item["no"] is not None for item in report["prompts"][::3][:2]] == [False, True]  # every 2nd idea
    assert "eval prompts: 6 ideas × 3 dialect(s) with offline" in out.err

    one = ["--split", "heldout", "--limit", "1", "--no-parti", "--dialect", "nova"]
    assert main(["eval", "prompts", *one]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# Prompt evaluation: offline") and "| heldout | nova | 1 |" in text
    assert "| tuning |" not in text and "| parti |" not in text and "Examples:" in text


def test_claude_on_the_stand_in_is_measured_the_same_way(
    index_copy: Path, claude: ConverseScript, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["eval", "prompts", "--limit", "2", "--no-parti", "--dialect", "nova", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["chat_model"] == f"bedrock:{PROFILE}"
    assert len(claude.bodies) == 6  # a call per idea (2 tuning, 2 held-out), one more per 2nd idea's --no
    assert [("must not appear" in claude.user_text(body)) for body in claude.bodies].count(True) == 2
    assert all("NEVER put a negation" in claude.system_text(body) for body in claude.bodies)
    assert all("(dialect: nova)" in claude.user_text(body) for body in claude.bodies)
    for row in report["summary"]:
        assert row["input_tokens_mean"] > 0 and row["output_tokens_mean"] > 0 and row["latency_p50_ms"] > 0
        assert row["subject_kept"] == 1.0 and row["errors"] == 0
    # the stand-in borrows the last phrase of hit #1: a grounded phrase in every prompt
    assert all(any(a["hits"] for a in item["added"]) for item in report["prompts"])


def test_bad_input_gets_one_line_and_exit_1(
    index_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "prompts", "--ideas", str(tmp_path / "none.json")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot read the idea set")
    assert main(["eval", "prompts", "--parti", str(tmp_path / "none.parquet")]) == 1
    assert capsys.readouterr().err.strip() == f"error: no PartiPrompts file at {tmp_path / 'none.parquet'}"
    with pytest.raises(SystemExit) as exited:
        main(["eval", "prompts", "--split", "both"])
    assert exited.value.code == 2


def test_help_explains_the_measures(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["eval", "prompts", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("grounded", "subject kept", "--split", "--limit", "--dialect", "--json", "PartiPrompts"):
        assert phrase in text, phrase
