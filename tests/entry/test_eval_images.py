"""`imagine-bot eval images --live` end to end on the Bedrock stand-in: drawn, judged blind, reported."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.config import Config
from bot.entry.cli.eval_images import wilson
from bot.entry.cli.eval_prompts import IDEAS_PATH
from bot.entry.cli.main import main
from sandbox.bedrock_converse import ConverseScript, install_converse_handlers
from sandbox.bedrock_image_models import install_image_handlers, stability_v2
from sandbox.bedrock_runtime import FakeBedrockRuntime, FakeResponse, RecordedRequest

PROFILE = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
SD35 = "stability.sd3-5-large-v1:0"


def colour(prompt: str) -> tuple[int, int, int]:
    """The colour the test's image handler paints a prompt in."""
    digest = hashlib.sha256(prompt.encode()).digest()
    return digest[0], digest[1], digest[2]


def by_prompt(request: RecordedRequest) -> FakeResponse:
    """Stability v2 as the stand-in answers it, but each prompt gets its own colour (one seed, two images)."""
    answer = stability_v2(request)
    out = io.BytesIO()
    Image.new("RGB", (64, 64), colour(request.body["prompt"])).save(out, format="PNG")
    answer.body["images"] = [base64.b64encode(out.getvalue()).decode()]
    return answer


@pytest.fixture
def bedrock(
    small_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_test_credentials: None
) -> Iterator[tuple[FakeBedrockRuntime, ConverseScript]]:
    """Claude and SD3.5 on the stand-in, configured through IMAGINE_*, over a copy of the small index."""
    shutil.copytree(small_index, Config(data_dir=tmp_path / "data").index_dir)
    with FakeBedrockRuntime() as fake:
        install_image_handlers(fake)
        fake.register("invoke", "stability.sd3", by_prompt)
        monkeypatch.setenv("IMAGINE_CHAT_MODEL", f"bedrock:{PROFILE}")
        monkeypatch.setenv("IMAGINE_IMAGE_MODEL", f"bedrock:{SD35}")
        monkeypatch.setenv("IMAGINE_BEDROCK_ENDPOINT_URL", fake.url)
        yield fake, install_converse_handlers(fake)


def test_offline_models_are_refused_and_live_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "images", "--live", "--n", "2", "--yes"]) == 1
    assert capsys.readouterr().err.startswith("error: eval images needs a Bedrock image and chat model")
    assert main(["eval", "images", "--n", "2"]) == 2
    assert "run it with --live" in capsys.readouterr().err


def test_without_yes_only_the_estimate_is_printed(
    bedrock: tuple[FakeBedrockRuntime, ConverseScript], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fake, _ = bedrock
    assert main(["eval", "images", "--live", "--n", "20", "--out", str(tmp_path / "run")]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Estimated cost: $") and "for 20 ideas: 40 images $3.20" in out[0]
    assert "--yes" in out[1] and fake.requests == [] and not (tmp_path / "run").exists()


def test_pairs_are_drawn_with_one_seed_and_judged_blind_in_both_orders(
    bedrock: tuple[FakeBedrockRuntime, ConverseScript], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fake, script = bedrock
    raw_colours: list[tuple[int, int, int]] = []

    def judge(images: list[bytes], body: dict[str, Any]) -> dict[str, Any]:
        """Prefer whichever image is not the raw idea's colour (the composed prompt) on both criteria."""
        pixels = [Image.open(io.BytesIO(image)).convert("RGB").getpixel((0, 0)) for image in images]
        composed = "second" if pixels[0] in raw_colours else "first"
        return {"adherence": composed, "appeal": composed, "reason": "it follows the idea"}

    script.judge = judge
    idea_texts = [i["idea"] for i in json.loads(IDEAS_PATH.read_text(encoding="utf-8"))["ideas"]]
    raw_colours += [colour(text) for text in idea_texts]
    out_dir = tmp_path / "run"
    assert main(["eval", "images", "--live", "--n", "3", "--yes", "--out", str(out_dir)]) == 0
    stdout = capsys.readouterr().out
    assert stdout.startswith("Estimated cost: $")
    assert "| adherence | 3 | 0 | 0 | 100% |" in stdout and "| appeal | 3 | 0 | 0 | 100% |" in stdout

    draws = [r.body for r in fake.requests_for("invoke")]
    assert len(draws) == 6
    for raw, composed in zip(draws[::2], draws[1::2], strict=True):
        assert raw["seed"] == composed["seed"] and raw["prompt"] != composed["prompt"]
        assert "negative_prompt" not in raw and composed["prompt"].startswith(raw["prompt"])
    judged = [b for b in script.bodies if "adherence" in json.dumps(b.get("toolConfig", {}))]
    assert len(judged) == 6
    orders = []
    for body in judged:
        blocks = [blk for blk in body["messages"][0]["content"] if "image" in blk]
        assert [blk["image"]["format"] for blk in blocks] == ["png", "png"]
        shown = [Image.open(io.BytesIO(base64.b64decode(blk["image"]["source"]["bytes"]))) for blk in blocks]
        assert all(max(image.size) <= 512 for image in shown)
        orders.append(shown[0].convert("RGB").getpixel((0, 0)) in raw_colours)
        assert "adherence" in script.system_text(body) and "<idea>" in script.user_text(body)
    assert all(orders[i] != orders[i + 1] for i in range(0, 6, 2))  # each idea seen in both orders

    report = json.loads((out_dir / "report.json").read_text())
    assert report["adherence"]["wins"] == 3 and report["adherence"]["win_rate"] == 1.0
    assert report["adherence"]["interval95"][0] > 0.4 and report["cost_usd"] > 0
    for item in report["per_idea"]:
        sheet = Path(item["sheet"])
        width, height = Image.open(sheet).size
        assert width > height  # two tiles side by side
        assert len(item["verdicts"]) == 2
    assert len(list(out_dir.glob("*-raw.png"))) == 3 and (out_dir / "report.md").exists()


def test_wilson_interval() -> None:
    low, high = wilson(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.49, 0.943)
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(5, 5)[1] == 1.0 and wilson(0, 5)[0] == 0.0
