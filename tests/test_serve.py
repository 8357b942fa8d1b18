"""`imagine-bot serve` in HTTP mode, as a real process, against the Slack sandbox."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from bot.sandbox.driver import SlackDriver
from bot.sandbox.slack_api import FakeSlackApi

SECRET = "sandbox-signing-secret"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_acks_a_signed_imagine_and_posts_into_the_thread(small_index: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "index").mkdir(parents=True)
    os.symlink(small_index, data_dir / "index" / "prompts")
    port = _free_port()
    with FakeSlackApi() as slack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGINE_", "AWS_", "SLACK_"))}
        env.update(
            IMAGINE_DATA_DIR=str(data_dir),
            SLACK_BOT_TOKEN=slack.bot_token(),
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=slack.api_url,
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
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
            driver = SlackDriver(f"http://127.0.0.1:{port}", SECRET, slack)
            started = time.monotonic()
            reply = driver.slash_command(
                "/imagine", "a cartoon of a little dog", user="U0ALICE", channel="C0GENERAL"
            )
            assert reply.status == 200 and time.monotonic() - started < 3
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not slack.uploads():
                time.sleep(0.2)
            assert slack.uploads(), "the image never reached the thread"
            forged = driver.forged().slash_command("/imagine", "a dog", user="U0ALICE", channel="C0GENERAL")
            assert forged.status == 401
        finally:
            server.terminate()
            server.wait(timeout=20)
