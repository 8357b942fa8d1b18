"""A graceful stop: SIGTERM or Ctrl-C stops intake, running turns finish (within IMAGINE_DRAIN_S), and
turns still running past it are left for recovery; both serve modes, as real processes."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

from bot.scheduling.drain import DrainingExecutor
from sandbox.bedrock_image_models import HeldImageCalls
from sandbox.bedrock_runtime import FakeBedrockRuntime
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_driver import SlackDriver
from sandbox.slack_models import ALICE, GENERAL
from tests.entry.test_serve import SECRET, _data_dir, _env, _results, bedrock_env, serving_process
from tests.slack.slack_rig import wait_for
from tests.slack.test_socket_mode import socket_mode_serve


# the executor ------------------------------------------------------------------------------------------
def test_the_executor_counts_unfinished_tasks_and_drains_when_they_finish() -> None:
    release = threading.Event()
    with DrainingExecutor(2) as executor:
        futures = [executor.submit(release.wait, 10) for _ in range(3)]  # one of them waits in the queue
        assert executor.pending() == 3
        assert executor.drain(0.2) == 3  # nothing finished within the timeout
        threading.Timer(0.2, release.set).start()
        started = time.monotonic()
        assert executor.drain(10) == 0
        assert time.monotonic() - started < 5 and all(f.result() for f in futures)
        assert executor.pending() == 0 and executor.drain(0) == 0


def test_a_failing_task_is_counted_out_and_an_interrupt_ends_the_drain_early() -> None:
    release, interrupt = threading.Event(), threading.Event()

    def fail() -> None:
        raise RuntimeError("a turn that failed")

    with DrainingExecutor(2) as executor:
        failed = executor.submit(fail)
        assert isinstance(failed.exception(timeout=5), RuntimeError)
        assert executor.pending() == 0
        executor.submit(release.wait, 10)
        threading.Timer(0.2, interrupt.set).start()
        started = time.monotonic()
        assert executor.drain(30, interrupt) == 1  # the second Ctrl-C
        assert time.monotonic() - started < 5
        release.set()


# serve, both modes -------------------------------------------------------------------------------------
def _refuses_connections(port: int) -> bool:
    """True once nothing listens on the port any more."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return True
    return False


def test_sigterm_in_http_mode_stops_intake_and_lets_the_running_turn_finish(
    small_index: Path, tmp_path: Path
) -> None:
    with FakeSlackApi() as slack, FakeBedrockRuntime() as bedrock, HeldImageCalls() as images:
        bedrock.register("invoke", "stability.sd3", images)
        env = _env(
            _data_dir(small_index, tmp_path), slack, IMAGINE_DRAIN_S="60", **bedrock_env(bedrock, tmp_path)
        )
        with serving_process(env) as (port, process):
            driver = SlackDriver(f"http://127.0.0.1:{port}", SECRET, slack)
            assert driver.slash_command("/imagine", "a lighthouse at dusk", ALICE, GENERAL).status == 200
            assert images.held.wait(60), "the image call never started"
            process.send_signal(signal.SIGTERM)
            wait_for(lambda: _refuses_connections(port), 10)  # no new requests...
            time.sleep(1.0)
            assert process.poll() is None  # ...but the running turn is waited for
            images.release.set()
            assert process.wait(timeout=30) == 0
            stderr = process.stderr.read() if process.stderr else ""
        [root] = slack.messages(GENERAL)
        assert len(_results(slack, str(root["ts"]))) == 1 and len(slack.uploads()) == 1, stderr
        assert "SIGTERM; no longer taking requests" in stderr
        assert "waiting up to 60 s for 1 running turn to finish" in stderr
        assert "every running turn finished" in stderr


def test_ctrl_c_in_socket_mode_gives_up_after_the_drain_time_and_leaves_the_turn_to_recovery(
    small_index: Path, tmp_path: Path
) -> None:
    with FakeBedrockRuntime() as bedrock, HeldImageCalls() as images:
        bedrock.register("invoke", "stability.sd3", images)
        extra = {"IMAGINE_DRAIN_S": "1", **bedrock_env(bedrock, tmp_path)}
        with socket_mode_serve(small_index, tmp_path, connections=1, **extra) as served:
            served.driver.slash_command("/imagine", "a red fox in snow", ALICE, GENERAL)
            assert images.held.wait(60), "the image call never started"
            started = time.monotonic()
            served.process.send_signal(signal.SIGINT)
            assert served.process.wait(timeout=30) == 130, served.stderr()
            assert time.monotonic() - started < 15  # 1 s of drain, then out without joining the turn
            wait_for(lambda: not any(c.open for c in served.socket.connections()))
            log = served.stderr()
        assert "SIGINT; closing 1 Socket Mode connections" in log
        assert "waiting up to 1 s for 1 running turn to finish" in log
        assert "stopping with 1 turn still running" in log
        assert not served.slack.uploads()
