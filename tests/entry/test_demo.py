"""`imagine-bot demo` in-process over a copy of the small index: transcript, images and failing steps."""

from __future__ import annotations

import functools
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from bot.config import Config
from bot.entry.cli.demo import run as demo
from bot.entry.cli.demo.script import BeforeStep
from bot.entry.cli.demo.transcript import Renderer
from bot.entry.cli.main import main
from sandbox.slack_api import FakeSlackApi

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def index_copy(small_index: Path, tmp_path: Path) -> Path:
    """The small index copied where IMAGINE_DATA_DIR (tmp_path/data, see conftest) expects it."""
    target = Config(data_dir=tmp_path / "data").index_dir
    shutil.copytree(small_index, target)
    return target


def error_lines(stderr: str) -> list[str]:
    """The lines of stderr that are the CLI's error message."""
    return [line for line in stderr.splitlines() if line.strip()]


def test_demo_plays_the_whole_conversation(
    index_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["demo", "--out", "out", "--timeout", "30"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    text = captured.out
    assert "> alice types /imagine a cartoon of a little dog" in text
    assert "┃ a cartoon of a little dog" in text  # the thread root quotes the idea
    assert "Closest prompts in the library" in text and "[Use #2]" in text
    assert "> alice clicks [Use #2]" in text and "> alice clicks [Re-roll]" in text
    assert "  │ bob  " in text and "make it watercolor, no text" in text  # bob's reply, inside the thread
    assert "Prompt: a cartoon of a little dog" in text and "watercolor" in text.split("make it watercolor")[1]
    assert "> bob reacts :three:" in text and "> bob clicks [Vote #5]" in text
    assert "(only visible to @bob)" in text
    assert "> alice clicks [Pick winner]" in text and "#3 wins with 2 votes" in text
    assert "Offline preview" in text and "offline composer" in text
    assert "[Re-roll] [Variations] [Edit prompt] [Upscale] [Remove background]" in text
    refine = text.split("make it watercolor, no text", 1)[1]
    assert "🌱 Kept seed" in refine.split("[Re-roll]", 1)[0]  # the refinement kept the thread's seed
    assert "> alice clicks [Upscale]" in text and "Upscaled to 3072×3072" in text
    assert "> bob posts dog-sketch.png into the thread" in text and "📎 dog-sketch.png" in text
    assert "[Use as sketch] [Use as style] [Describe]" in text and "> alice clicks [Use as sketch]" in text
    assert "Drawn from the posted picture as a sketch" in text
    assert "Ready to use as an icon: a 2000×2000 PNG, square, background removed" in text
    assert "*" not in text.split("#general", 1)[1]  # mrkdwn emphasis is gone
    assert "<@U" not in text and "&gt;" not in text
    assert "9 of 9 steps passed" in text
    start = text.split("  │ bob  ")[0]  # the first turn: an enriched prompt and where its look came from
    [first] = [line for line in start.splitlines() if "Prompt: " in line]
    assert first.split("Prompt: ", 1)[1].startswith("a cartoon of a little dog. ")
    assert len(first.split("Prompt: ", 1)[1]) > len("a cartoon of a little dog. ") + 10
    assert re.search(r"📚 Borrowed from #\d(?:,? (?:and )?#\d)*: \w", start), start
    assert text.index("> alice clicks [Use #2]") < text.index("03-use-2.png")

    out = tmp_path / "out"
    names = {path.name for path in out.iterdir()}
    expected = {"01-start.png", "02-refine.png", "03-use-2.png", "04-reroll.png", "05-upscale.png"}
    expected |= {"06-sketch-1.png", "06-sketch-2.png", "07-avatar-sheet.png", "09-winner-sheet.png"}
    assert expected <= names, names
    assert all(path.read_bytes().startswith(PNG_MAGIC) for path in out.glob("*.png"))
    with Image.open(out / "09-winner-2.png") as icon:
        assert icon.mode == "RGBA" and icon.size == (2000, 2000)
    assert (out / "transcript.txt").read_text(encoding="utf-8") == text


def failing_at(step: int, method: str, error: str, times: int) -> BeforeStep:
    """A hook that makes the sandbox refuse `method` from the start of `step`."""

    def before(number: int, fake: FakeSlackApi) -> None:
        if number == step:
            fake.fail_next(method, error=error, status=200, times=times)

    return before


@pytest.mark.parametrize(
    ("step", "error", "times", "expected"),
    [
        (
            1,
            "channel_not_found",
            1,
            "step 1 (alice: /imagine a cartoon of a little dog): the app told alice:",
        ),
        (3, "internal_error", 50, "step 3 (alice clicks Use #2): no new result in the thread after 2 s"),
    ],
)
def test_a_failing_step_exits_1_naming_the_step(
    index_copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    step: int,
    error: str,
    times: int,
    expected: str,
) -> None:
    hook = failing_at(step, "chat.postMessage", error, times)
    played = functools.partial(demo.run_demo, before_step=hook)
    monkeypatch.setattr(demo, "run_demo", played)
    code = main(["demo", "--out", "out", "--timeout", "2"])
    captured = capsys.readouterr()
    assert code == 1
    [line] = error_lines(captured.err)
    assert line.startswith(f"error: {expected}"), line
    assert f"{step - 1} of 9 steps passed" in captured.out  # the transcript so far is still printed
    assert f"✘ {expected}" in captured.out
    assert (tmp_path / "out" / "transcript.txt").exists()


def test_without_an_index_it_says_how_to_build_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--out", "out"]) == 1
    captured = capsys.readouterr()
    [line] = error_lines(captured.err)
    assert line.startswith("error: no prompt index at ") and "make demo" in line and "ingest" in line
    assert captured.out == "" and not (tmp_path / "out").exists()


def test_help_says_what_it_does_and_that_it_is_offline(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "offline" in text.lower() and "--out" in text and "--timeout" in text and "127.0.0.1" in text


def test_demo_settings_force_the_embedded_offline_defaults(tmp_path: Path) -> None:
    configured = Config(
        data_dir=tmp_path,
        chat_model="bedrock:some-model",
        image_model="bedrock:another",
        qdrant_url="http://qdrant.invalid:6333",
    )
    forced = demo.demo_config(configured)
    assert (forced.chat_model, forced.image_model, forced.qdrant_url) == ("offline", "offline", None)
    assert forced.embed_model.startswith("local:") and forced.index_dir == configured.index_dir


def test_mrkdwn_reads_as_plain_text() -> None:
    renderer = Renderer({"U0ALICE": "alice", "C0GENERAL": "general"}, "U0BOT", {})
    text = renderer.mrkdwn(
        ":frame_with_picture: <@U0ALICE> imagined in <#C0GENERAL>:\n>a *bold* &lt;idea&gt; &amp; more\n"
        "_from krea_open_prompts_1k_ · trending_on_artstation · <https://example.com|a link>"
    )
    assert text == (
        "🖼️ @alice imagined in #general:\n┃ a bold <idea> & more\n"
        "from krea_open_prompts_1k · trending_on_artstation · a link (https://example.com)"
    )
