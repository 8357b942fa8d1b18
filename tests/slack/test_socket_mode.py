"""`imagine-bot serve --connections N` in Socket Mode, as a real process, against the loopback Socket Mode
stand-in (FakeSlackSocket) and the Slack sandbox: real Bolt app, real slack_sdk SocketModeClients."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.entry.cli.main import main
from bot.slack.ids import COMMAND_IMAGINE
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_models import ALICE, BOB, CAROL, DEFAULT_BOT_TOKEN, GENERAL
from sandbox.slack_socket import FakeSlackSocket, SocketModeDriver
from tests.entry.test_serve import _data_dir, _env
from tests.slack.slack_rig import results, settle, wait_for

PEOPLE = (ALICE, BOB, CAROL)  # fair use queues at most 3 jobs per person
ACK_DEADLINE = 3.0


@dataclass
class SocketServe:
    """A `serve` process in Socket Mode, the stand-ins it talks to, and a driver over its connections."""

    process: subprocess.Popen[str]
    slack: FakeSlackApi
    socket: FakeSlackSocket
    driver: SocketModeDriver
    log: Path

    def stderr(self) -> str:
        """What the process logged so far."""
        return self.log.read_text(errors="replace")


@contextmanager
def socket_mode_serve(
    small_index: Path, tmp_path: Path, connections: int, **extra: str
) -> Iterator[SocketServe]:
    """`imagine-bot serve --connections N` with SLACK_APP_TOKEN (and `extra` env), once all N said hello."""
    with FakeSlackApi() as slack, FakeSlackSocket() as socket:
        slack.attach_socket_mode(socket.issue_url)
        env = _env(_data_dir(small_index, tmp_path), slack, SLACK_APP_TOKEN=slack.app_token(), **extra)
        log = tmp_path / "serve.log"
        with log.open("w") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot", "-v", "serve", "--connections", str(connections)],
                env=env,
                stderr=sink,
                text=True,
            )
        served = SocketServe(process, slack, socket, SocketModeDriver(socket, slack), log)
        try:
            wait_for(lambda: len(socket.live()) == connections or process.poll() is not None, 60)
            assert process.poll() is None, served.stderr()
            yield served
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=20)


def imagine_roots(slack: FakeSlackApi) -> list[str]:
    """The ts of every /imagine thread root in #general."""
    return [str(m["ts"]) for m in slack.messages(GENERAL) if "imagined" in m.get("text", "")]


def imagine_on(served: SocketServe, connection: int | None, idea: str, user: str) -> None:
    """Send /imagine (on one connection, or the next one round-robin) and check the ack came in time."""
    started = time.monotonic()
    driver = served.driver.on(connection) if connection is not None else served.driver
    reply = driver.slash_command(COMMAND_IMAGINE, idea, user, GENERAL)
    assert reply.status == 200, f"no ack for {idea!r}: {reply.body}\n{served.stderr()}"
    assert time.monotonic() - started < ACK_DEADLINE


def every_thread_finished(served: SocketServe, count: int) -> None:
    """Wait until `count` /imagine threads each have their result (root + uploaded image)."""
    slack = served.slack
    wait_for(lambda: len(imagine_roots(slack)) >= count, 30)
    for root in imagine_roots(slack):
        wait_for(partial(results, slack, root), 30)
    settle(slack)
    assert len(imagine_roots(slack)) == count and len(slack.uploads()) == count


# the fake's apps.connections.open and the stand-in's wire format ----------------------------------------
def test_apps_connections_open_wants_an_app_level_bearer_token(fake: FakeSlackApi) -> None:
    with FakeSlackSocket() as socket:
        web = WebClient(base_url=fake.api_url)
        with pytest.raises(SlackApiError) as refused:
            web.apps_connections_open(app_token=fake.app_token())  # nothing attached: a set-up mistake
        assert refused.value.response["error"] == "fatal_error"
        fake.attach_socket_mode(socket.issue_url)
        url = web.apps_connections_open(app_token=fake.app_token())["url"]
        assert url.startswith(socket.url + "/link/?ticket=")
        for token, error in [
            (DEFAULT_BOT_TOKEN, "not_allowed_token_type"),
            ("xapp-1-A0OTHER-1-unknown", "invalid_auth"),
        ]:
            with pytest.raises(SlackApiError) as refused:
                web.apps_connections_open(app_token=token)
            assert refused.value.response["error"] == error
        form = urllib.parse.urlencode({"token": fake.app_token()}).encode()
        request = urllib.request.Request(fake.api_url + "apps.connections.open", data=form, method="POST")
        with urllib.request.urlopen(request, timeout=5) as reply:  # the form field is no longer accepted
            assert json.loads(reply.read()) == {"ok": False, "error": "invalid_auth"}
        fake.revoke(fake.app_token())
        with pytest.raises(SlackApiError) as refused:
            web.apps_connections_open(app_token=fake.app_token())
        assert refused.value.response["error"] == "token_revoked"


def test_the_stand_in_says_hello_takes_acks_and_each_ticket_opens_one_connection() -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with FakeSlackSocket() as socket:
        url = socket.issue_url()
        with connect(url) as first, connect(socket.issue_url()) as second:
            hello = json.loads(first.recv(timeout=5))
            assert hello["type"] == "hello" and hello["num_connections"] == 1
            assert hello["connection_info"] == {"app_id": "A0IMAGINE"} and "host" in hello["debug_info"]
            assert json.loads(second.recv(timeout=5))["num_connections"] == 2
            wait_for(lambda: len(socket.live()) == 2)
            command = socket.deliver("slash_commands", {"command": "/imagine"}, connection=1)
            event = socket.deliver(
                "events_api", {"event_id": "Ev1"}, connection=2, retry_attempt=1, retry_reason="timeout"
            )
            sent = json.loads(first.recv(timeout=5))
            assert sent["type"] == "slash_commands" and sent["accepts_response_payload"] is True
            assert "retry_attempt" not in sent  # only events_api envelopes carry the retry fields
            sent = json.loads(second.recv(timeout=5))
            assert (sent["retry_attempt"], sent["retry_reason"]) == (1, "timeout")
            first.send(json.dumps({"envelope_id": command.envelope_id, "payload": {"text": "ok"}}))
            second.send(json.dumps({"envelope_id": event.envelope_id}))
            assert (ack := socket.wait_ack(command.envelope_id)) and ack.payload == {"text": "ok"}
            assert socket.wait_ack(event.envelope_id) is not None
            assert socket.acks(1) == [ack] and [a.envelope_id for a in socket.acks(2)] == [event.envelope_id]
            socket.request_refresh(1)
            assert json.loads(first.recv(timeout=5)) == {
                "type": "disconnect",
                "reason": "refresh_requested",
                "debug_info": {"host": "applink-sandbox-1"},
            }
            assert socket.live() == [2]
        with pytest.raises(InvalidStatus):  # the ticket was used up by the first connection
            connect(url).close()
        assert socket.stray_messages() == []


# serve --connections N -----------------------------------------------------------------------------------
def test_serve_spreads_imagine_over_three_connections_and_closes_them_on_sigterm(
    small_index: Path, tmp_path: Path
) -> None:
    with socket_mode_serve(small_index, tmp_path, connections=3) as served:
        assert len(served.slack.calls_to("apps.connections.open")) == 3
        ideas = ["a lighthouse at dusk", "a red fox in snow", "a castle on a hill"]
        for n, idea in enumerate(ideas * 2):
            imagine_on(served, None, f"{idea} {n}", PEOPLE[n % 3])  # round-robin over the connections
        envelopes = served.socket.envelopes()
        assert {e.connection for e in envelopes} == {1, 2, 3}
        for envelope in envelopes:
            ack = served.socket.wait_ack(envelope.envelope_id)
            assert ack is not None and ack.at - envelope.at < ACK_DEADLINE
        every_thread_finished(served, 6)
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=20) == 0, served.stderr()
        wait_for(lambda: not any(c.open for c in served.socket.connections()))
        assert "SIGTERM; closing 3 Socket Mode connections" in served.stderr()
        assert served.socket.stray_messages() == []


def test_an_event_redelivered_on_another_connection_runs_one_turn(small_index: Path, tmp_path: Path) -> None:
    with socket_mode_serve(small_index, tmp_path, connections=2) as served:
        slack, socket = served.slack, served.socket
        message = slack.post_as_user(GENERAL, "<@U0BOT> a lighthouse at dusk", ALICE)
        mention = served.driver.app_mention_event(message, GENERAL)
        first = served.driver.on(1).event(mention, event_id="EvSOCKET0001")
        assert first.status == 200
        [envelope] = socket.envelopes()
        again = socket.deliver(  # Slack re-sends the same envelope on the other connection
            "events_api",
            envelope.message["payload"],
            connection=2,
            envelope_id=envelope.envelope_id,
            retry_attempt=1,
            retry_reason="timeout",
        )
        wait_for(lambda: socket.acks(2), ACK_DEADLINE)
        assert again.envelope_id in [a.envelope_id for a in socket.acks(2)]
        wait_for(lambda: results(slack, str(message["ts"])), 30)
        settle(slack)
        assert len(results(slack, str(message["ts"]))) == 1 and len(slack.uploads()) == 1
        assert "ignoring a repeated event EvSOCKET0001" in served.stderr()  # the ledger said no


def test_a_slash_command_redelivered_on_another_connection_starts_one_thread(
    small_index: Path, tmp_path: Path
) -> None:
    with socket_mode_serve(small_index, tmp_path, connections=2) as served:
        socket = served.socket
        imagine_on(served, 1, "a red fox in snow", ALICE)
        [envelope] = socket.envelopes()
        assert envelope.message["payload"]["trigger_id"]  # what the app's ledger dedupes commands by
        socket.deliver(
            "slash_commands", envelope.message["payload"], connection=2, envelope_id=envelope.envelope_id
        )
        wait_for(lambda: socket.acks(2), ACK_DEADLINE)
        every_thread_finished(served, 1)
        trigger = envelope.message["payload"]["trigger_id"]
        assert f"ignoring a repeated command {trigger}" in served.stderr()  # the ledger said no


def test_a_refresh_reconnects_while_the_other_connections_keep_serving(
    small_index: Path, tmp_path: Path
) -> None:
    with socket_mode_serve(small_index, tmp_path, connections=3) as served:
        socket = served.socket
        first, second, third = socket.live()
        socket.request_refresh(first)
        imagine_on(served, second, "a lighthouse at dusk", ALICE)  # while the first one reconnects
        imagine_on(served, third, "a red fox in snow", BOB)
        fresh = wait_for(lambda: [n for n in socket.live() if n > third], 15)
        wait_for(lambda: not socket.connections()[first - 1].open, 15)  # the app let the old one go
        assert sorted(socket.live()) == [second, third, *fresh] and len(fresh) == 1
        assert len(served.slack.calls_to("apps.connections.open")) == 4
        for n, connection in enumerate(socket.live()):
            imagine_on(served, connection, f"a castle on a hill {n}", PEOPLE[n])
        every_thread_finished(served, 5)
        assert all(socket.wait_ack(e.envelope_id) for e in socket.envelopes())


def test_a_refused_app_token_stops_serve_with_a_clear_error(small_index: Path, tmp_path: Path) -> None:
    with FakeSlackApi() as slack, FakeSlackSocket() as socket:
        slack.attach_socket_mode(socket.issue_url)
        env = _env(_data_dir(small_index, tmp_path), slack, SLACK_APP_TOKEN="xapp-1-A0IMAGINE-1-wrong")
        done = subprocess.run(
            [sys.executable, "-m", "bot", "serve", "--connections", "2"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1
        assert "error: Slack refused SLACK_APP_TOKEN at apps.connections.open (invalid_auth)" in done.stderr
        assert socket.connections() == []


@pytest.mark.parametrize("value", ["0", "11", "two"])
def test_connections_outside_one_to_ten_fail_clearly(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--connections", value])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "argument --connections" in error
    assert ("must be from 1 to 10" if value.isdigit() else "expected a whole number") in error


def test_serve_help_says_connections_is_socket_mode_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "Socket Mode only" in " ".join(capsys.readouterr().out.split())
