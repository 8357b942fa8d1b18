"""`imagine-bot serve` in HTTP mode, as a real process, against the Slack sandbox and the Bedrock stand-in."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandbox.bedrock_converse import install_converse_handlers
from sandbox.bedrock_image_models import install_image_handlers
from sandbox.bedrock_runtime import FakeBedrockRuntime
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_driver import SlackDriver
from sandbox.slack_models import ALICE, BOB, GENERAL

SECRET = "sandbox-signing-secret"
CHAT = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
IMAGE = "stability.sd3-5-large-v1:0"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _until(probe: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll until `probe` returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def _data_dir(small_index: Path, tmp_path: Path) -> Path:
    """A data dir whose index is the session's small index."""
    data_dir = tmp_path / "data"
    (data_dir / "index").mkdir(parents=True, exist_ok=True)
    if not (data_dir / "index" / "prompts").exists():
        os.symlink(small_index, data_dir / "index" / "prompts")
    return data_dir


@contextmanager
def serving(env: dict[str, str]) -> Iterator[int]:
    """`imagine-bot serve --port P` as a subprocess until the block ends; yields the port."""
    with serving_process(env) as (port, _):
        yield port


@contextmanager
def serving_process(env: dict[str, str]) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """Like serving(), yielding the port and the process (to kill it)."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                time.sleep(0.2)
        yield port, server
    finally:
        if server.poll() is None:
            server.terminate()
        server.wait(timeout=20)


def _env(data_dir: Path, slack: FakeSlackApi, **extra: str) -> dict[str, str]:
    """The process environment: ours only, nothing from the developer's shell."""
    return slack.app_env(data_dir, SECRET, **extra)


def bedrock_env(bedrock: FakeBedrockRuntime, tmp_path: Path) -> dict[str, str]:
    """The variables that point a serve process's image model at the stand-in, with dummy AWS keys."""
    return {
        "IMAGINE_IMAGE_MODEL": f"bedrock:{IMAGE}",
        "IMAGINE_BEDROCK_ENDPOINT_URL": bedrock.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }


def _results(slack: FakeSlackApi, root_ts: str) -> list[dict[str, Any]]:
    """Result messages (with the button row) in a #general thread."""
    return [
        m
        for m in slack.messages(GENERAL, root_ts)
        if any(b.get("block_id") == "result_actions" for b in m.get("blocks") or [])
    ]


def test_serve_acks_a_signed_imagine_and_posts_into_the_thread(small_index: Path, tmp_path: Path) -> None:
    with FakeSlackApi() as slack, serving(_env(_data_dir(small_index, tmp_path), slack)) as port:
        driver = SlackDriver(f"http://127.0.0.1:{port}", SECRET, slack)
        started = time.monotonic()
        reply = driver.slash_command("/imagine", "a cartoon of a little dog", user=ALICE, channel=GENERAL)
        assert reply.status == 200 and time.monotonic() - started < 3
        assert _until(slack.uploads), "the image never reached the thread"
        forged = driver.forged().slash_command("/imagine", "a dog", user=ALICE, channel=GENERAL)
        assert forged.status == 401 and driver.stale().slash_command("/imagine", "a dog").status == 401


def _healthz(port: int) -> dict[str, Any] | None:
    """GET /healthz's body when it is 200, else None."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return dict(json.loads(response.read()))
    except (urllib.error.URLError, OSError):
        return None


def test_serve_warms_up_before_it_says_ready_without_calling_a_model(
    small_index: Path, tmp_path: Path
) -> None:
    data_dir = _data_dir(small_index, tmp_path)
    with FakeSlackApi() as slack, FakeBedrockRuntime() as bedrock:
        install_image_handlers(bedrock)
        install_converse_handlers(bedrock)
        env = _env(data_dir, slack, IMAGINE_CHAT_MODEL=f"bedrock:{CHAT}", **bedrock_env(bedrock, tmp_path))
        with serving_process(env) as (port, process):
            ready = _until(lambda: _healthz(port))
            assert ready["ready"] == "ok" and ready["index"] == "ok"
            assert bedrock.requests == []  # the warm start builds clients; it never calls a paid model
        log = process.stderr.read() if process.stderr else ""
    [warmed] = [line for line in log.splitlines() if "warmed up in" in line]
    assert all(step in warmed for step in ("search", "policy", "chat model", "image model")), warmed


def test_serve_on_bedrock_refines_across_a_restart(small_index: Path, tmp_path: Path) -> None:
    data_dir = _data_dir(small_index, tmp_path)
    with FakeSlackApi() as slack, FakeBedrockRuntime() as bedrock:
        install_image_handlers(bedrock)
        script = install_converse_handlers(bedrock)
        env = _env(
            data_dir,
            slack,
            IMAGINE_CHAT_MODEL=f"bedrock:{CHAT}",
            **bedrock_env(bedrock, tmp_path),
        )
        with serving(env) as port:
            driver = SlackDriver(f"http://127.0.0.1:{port}", SECRET, slack)
            started = time.monotonic()
            assert driver.slash_command("/imagine", "a lighthouse at dusk", ALICE, GENERAL).status == 200
            acked = time.monotonic() - started
            [root] = _until(lambda: slack.messages(GENERAL))
            root_ts = str(root["ts"])
            [first] = _until(lambda: _results(slack, root_ts))
            thread = json.dumps(slack.messages(GENERAL, root_ts))
            assert "hit_1" in thread and "Use #1" in thread  # the hits arrived, with their buttons
            for button in ("Re-roll", "Variations", "Edit prompt", "Save to library"):
                assert button in json.dumps(first["blocks"])
            assert f"bedrock:{IMAGE}" in json.dumps(first["blocks"]) and len(slack.uploads()) == 1
            driver.user_posts(GENERAL, "make it watercolor", BOB, thread_ts=root_ts)
            _until(lambda: len(_results(slack, root_ts)) == 2)
        assert acked < 3, f"the ack took {acked:.2f} s"
        with serving(env) as port:  # a new process: the thread's memory comes from SQL, not from Slack
            driver = SlackDriver(f"http://127.0.0.1:{port}", SECRET, slack)
            driver.user_posts(GENERAL, "no text, and at night", ALICE, thread_ts=root_ts)
            _until(lambda: len(_results(slack, root_ts)) == 3)
        asked = script.user_text()  # the third turn's Converse request carries the whole thread
        assert "watercolor" in asked and "lighthouse" in asked and "at night" in asked
        assert len(slack.uploads()) == 3


def test_cli_search_info_and_ingest_work_while_serve_holds_the_index(
    small_index: Path, tmp_path: Path
) -> None:
    """Qdrant Edge has one opener: the CLI asks the running serve, and an ingest there needs no restart."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.entry.test_cli import run_cli

    data_dir = tmp_path / "data"
    shutil.copytree(small_index, data_dir / "index" / "prompts")  # this test writes to it
    new = (
        "a zebra-striped teapot floating above the moon, oil painting, dramatic rim lighting, highly detailed"
    )
    library = tmp_path / "new.parquet"
    pq.write_table(pa.table({"prompt": [new]}), library)
    with FakeSlackApi() as slack, serving(_env(data_dir, slack)) as _port:
        assert (data_dir / "index" / "prompts.sock").exists()
        before = json.loads(run_cli("info", "--json", data_dir=data_dir).stdout)
        assert before["prompts"] > 0 and before["embed_model"] == "local:all-MiniLM-L6-v2"
        ingested = run_cli("ingest", str(library), "--json", data_dir=data_dir)
        assert ingested.returncode == 0, ingested.stderr
        assert json.loads(ingested.stdout)["embedded"] == 1 and "held by a running `serve`" in ingested.stderr
        after = json.loads(run_cli("info", "--json", data_dir=data_dir).stdout)
        assert after["prompts"] == before["prompts"] + 1
        found = json.loads(
            run_cli("search", "striped teapot on the moon", "--json", data_dir=data_dir).stdout
        )
        assert found[0]["prompt"] == new  # searched in the serving process, which sees it at once
    assert not (data_dir / "index" / "prompts.sock").exists()  # removed when serve stops
    alone = json.loads(run_cli("search", "striped teapot on the moon", "--json", data_dir=data_dir).stdout)
    assert alone[0]["prompt"] == new  # and it is on disk for the next opener
