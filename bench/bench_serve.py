"""Serving: slash-command ack latency by HTTP server at 1/10/50 concurrent, and the warm start.

Three processes, so no two share a GIL: this one runs the Slack sandbox (and the Bedrock stand-in); the
app runs in `bench/serve_variant.py` (built as `imagine-bot serve` builds it) behind wsgiref (the old
server), waitress (the product's) or cheroot; the load comes from `bench/ack_load.py`, one process per burst
of N simultaneous signed `/imagine` commands from distinct users. Between bursts the app is left to finish
its turns (no Slack call for 0.5 s), so every burst meets the same idle app.

Warm start: `imagine-bot serve` itself (HTTP, chat and image models on the Bedrock stand-in, answering at
once), restarted several times with IMAGINE_WARM_UP=false and true; after /healthz is ready, one `/imagine`;
reported: ms from the command to the hits message in the thread, and to the first Converse request at the
stand-in (the chat model's call leaving the app).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import (
    BENCH_DIR,
    REPO,
    add_common_args,
    fresh_dir,
    library_path,
    markdown_table,
    percentile,
    report_header,
    run_report,
)

logger = logging.getLogger("bench_serve")
SECRET = "bench-serve-signing-secret"
SERVERS = ("wsgiref", "waitress-ungated", "waitress", "cheroot")
CHAT = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
IMAGE = "stability.sd3-5-large-v1:0"


SERVER_LABELS = {
    "wsgiref": "wsgiref, ungated (old)",
    "waitress-ungated": "waitress, ungated",
    "waitress": "waitress, gated (serve)",
    "cheroot": "cheroot, gated",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_args(parser)
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated (default all four)")
    parser.add_argument("--levels", default="1,10,50", help="concurrent commands per burst")
    parser.add_argument("--samples", type=int, default=150, help="acks per level (bursts = samples / level)")
    parser.add_argument("--rows", type=int, default=5000, help="library rows in the bench index")
    parser.add_argument("--restarts", type=int, default=3, help="serve restarts per warm-start setting")
    return parser.parse_args(argv)


# --- processes --------------------------------------------------------------------------------------------
def _env(data_dir: Path, slack: Any, **extra: str) -> dict[str, str]:
    """serve's environment: ours only, nothing from the shell."""
    return dict(slack.app_env(data_dir, SECRET, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO), **extra))


def build_index(args: argparse.Namespace, data_dir: Path) -> None:
    """An index of the first `--rows` library prompts (the product's ingest, in a subprocess)."""
    command = [
        sys.executable,
        "-m",
        "bot",
        "ingest",
        str(library_path(args.shared_data)),
        "--limit",
        str(args.rows),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGINE_")} | {
        "IMAGINE_DATA_DIR": str(data_dir)
    }
    subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)


@contextmanager
def variant(kind: str, env: dict[str, str]) -> Iterator[int]:
    """bench/serve_variant.py KIND until the block ends; yields its port."""
    process = subprocess.Popen(
        [sys.executable, str(BENCH_DIR / "serve_variant.py"), kind],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("PORT "):
            raise SystemExit(f"{kind} did not start (exit {process.poll()})")
        yield int(line.split()[1])
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def ack_levels(fake: Any, port: int, levels: list[int], samples: int, users: list[str]) -> dict[str, Any]:
    """Ack latency per level, each burst from bench/ack_load.py in its own process."""
    url = f"http://127.0.0.1:{port}/slack/events"
    response_url = f"{fake.url}/response/none"
    out: dict[str, Any] = {}
    for level in levels:
        ms: list[float] = []
        statuses: list[int] = []
        uploads_before = len(fake.uploads())
        for burst in range(max(1, samples // level)):
            done = subprocess.run(
                [sys.executable, str(BENCH_DIR / "ack_load.py"), url, response_url, SECRET, str(level),
                 f"{level}-{burst}", *users[:level]],
                capture_output=True, text=True, check=True, cwd=REPO,
            )  # fmt: skip
            answer = json.loads(done.stdout)
            ms += answer["ms"]
            statuses += answer["status"]
            fake.wait_until_quiet(0.5, 600.0)  # the app finished this burst's turns
        out[str(level)] = {
            "n": len(ms),
            "p50_ms": round(percentile(ms, 50), 1),
            "p99_ms": round(percentile(ms, 99), 1),
            "max_ms": round(max(ms), 1),
            "ok": sum(1 for s in statuses if s == 200),
            "images": len(fake.uploads()) - uploads_before,  # turns that went on to post their image
        }
        logger.info(
            "level %d: p50 %.1f ms, p99 %.1f ms", level, out[str(level)]["p50_ms"], out[str(level)]["p99_ms"]
        )
    return out


# --- warm start -------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _until(probe: Callable[[], Any], timeout: float = 120.0, step: float = 0.002) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(step)
    raise SystemExit("timed out")


def first_turn(data_dir: Path, warm: bool, restarts: int) -> list[dict[str, float]]:
    """Restart `imagine-bot serve` `restarts` times; ms to the hits and to the first Converse call."""
    from sandbox.bedrock_converse import install_converse_handlers
    from sandbox.bedrock_image_models import install_image_handlers
    from sandbox.bedrock_runtime import FakeBedrockRuntime
    from sandbox.slack_api import FakeSlackApi
    from sandbox.slack_driver import SlackDriver
    from sandbox.slack_models import ALICE, GENERAL

    rows = []
    for run in range(restarts):
        with FakeSlackApi() as slack, FakeBedrockRuntime() as bedrock:
            install_image_handlers(bedrock)
            install_converse_handlers(bedrock)
            port = _free_port()
            env = _env(
                data_dir,
                slack,
                IMAGINE_CHAT_MODEL=f"bedrock:{CHAT}",
                IMAGINE_IMAGE_MODEL=f"bedrock:{IMAGE}",
                IMAGINE_BEDROCK_ENDPOINT_URL=bedrock.url,
                IMAGINE_WARM_UP="true" if warm else "false",
                AWS_ACCESS_KEY_ID="bench",
                AWS_SECRET_ACCESS_KEY="bench",
                AWS_CONFIG_FILE=str(data_dir / "no-aws-config"),
                AWS_SHARED_CREDENTIALS_FILE=str(data_dir / "no-aws-credentials"),
            )
            server = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve", "--port", str(port)],
                env=env, cwd=REPO, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                _until(lambda port=port: _ready(port), timeout=300, step=0.05)  # type: ignore[misc]
                driver = SlackDriver(f"http://127.0.0.1:{port}", SECRET, slack)
                sent = time.monotonic()
                driver.slash_command("/imagine", f"a lighthouse at dusk {run}", ALICE, GENERAL)
                [root] = _until(lambda: slack.messages(GENERAL))

                def hits(root_ts: str = str(root["ts"])) -> Any:
                    return [m for m in slack.messages(GENERAL, root_ts) if "hit_1" in json.dumps(m)]

                _until(hits)
                hits_ms = (time.monotonic() - sent) * 1000
                converse = _until(lambda: bedrock.requests_for("converse"))
                rows.append({"hits_ms": hits_ms, "llm_ms": (converse[0].received_at - sent) * 1000})
                _until(lambda: slack.uploads(), timeout=120)
            finally:
                server.terminate()
                server.wait(timeout=60)
        logger.info("warm=%s run %d: %s", warm, run, rows[-1])
    return rows


# --- the report -------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both measurements."""
    from sandbox.slack_api import FakeSlackApi
    from sandbox.slack_models import GENERAL

    out_dir = Path(args.out_dir).resolve()  # the servers' symlinks and data dirs must not depend on a cwd
    scratch = fresh_dir(out_dir / "serve_bench", out_dir)
    data_dir = scratch / "data"
    build_index(args, data_dir)
    levels = [int(x) for x in args.levels.split(",")]
    users = [f"U0LOAD{n:03d}" for n in range(max(levels))]
    servers: dict[str, Any] = {}
    for kind in args.servers.split(","):
        run_dir = scratch / kind
        (run_dir / "index").mkdir(parents=True)
        os.symlink(data_dir / "index" / "prompts", run_dir / "index" / "prompts")
        with FakeSlackApi() as fake:
            for user in users:
                fake.add_user(user, user.lower())
                fake.set_member(GENERAL, user)
            with variant(kind, _env(run_dir, fake)) as port:
                servers[kind] = ack_levels(fake, port, levels, args.samples, users)
    warm = {str(w): first_turn(data_dir, w, args.restarts) for w in (False, True)}
    return {"servers": servers, "levels": levels, "warm_start": warm, "rows": args.rows}


def render(result: dict[str, Any]) -> str:
    """The markdown section."""
    md = report_header("Serving: ack latency by HTTP server, and the warm start")
    md += (
        f"The app as `imagine-bot serve` builds it (offline models, an index of the first {result['rows']:,} "
        "library prompts, default fair use) in its own process, behind each server; the Slack sandbox in the "
        "bench process; the load from `bench/ack_load.py` in a third process per burst of N simultaneous "
        "signed `/imagine` commands from N users, the app left idle between bursts. Ack = send to HTTP "
        "answer.\n\n"
    )
    rows = []
    for kind, levels in result["servers"].items():
        for level in result["levels"]:
            row = levels[str(level)]
            label = SERVER_LABELS.get(kind, kind)
            images = row.get("images", "")
            rows.append(
                [label, level, row["n"], row["p50_ms"], row["p99_ms"], row["max_ms"], row["ok"], images]
            )
    md += markdown_table(
        ["server", "concurrent", "acks", "p50 ms", "p99 ms", "max ms", "HTTP 200", "images posted"], rows
    )
    from bot.scheduling.ack_first import MAX_WAIT_S, QUIET_S

    md += (
        "\n\n*gated* = `serve`'s ack-first gate (`bot/scheduling/ack_first.py`): a turn's work starts once "
        f"no Slack request is being answered and none was for {QUIET_S * 1000:.0f} ms "
        f"(at most {MAX_WAIT_S:g} s later); *images posted* = turns of those commands that went on to upload "
        "their image (each command is one turn).\n"
    )
    md += "\n\nWarm start (`imagine-bot serve`, chat and image models on the Bedrock stand-in, which answers "
    md += "at once): one `/imagine` after each restart, once /healthz says ready.\n\n"
    warm_rows = []
    for setting, runs in result["warm_start"].items():
        label = "IMAGINE_WARM_UP=true (default)" if setting == "True" else "IMAGINE_WARM_UP=false (before)"
        hits = [r["hits_ms"] for r in runs]
        llm = [r["llm_ms"] for r in runs]
        warm_rows.append(
            [
                label,
                len(runs),
                round(statistics.median(hits)),
                round(max(hits)),
                round(statistics.median(llm)),
                round(max(llm)),
            ]
        )
    md += markdown_table(
        ["setting", "restarts", "hits median ms", "hits max ms", "first LLM call median ms", "max ms"],
        warm_rows,
    )
    return md + "\n"


if __name__ == "__main__":
    raise SystemExit(run_report(None, parse_args, run, render))
