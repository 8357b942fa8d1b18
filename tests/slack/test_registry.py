"""The registrar: with `turns`, the ack listener acks and then submits the slow work there itself, with the
arguments Bolt would give it; a listener asking for an argument Bolt cannot give is refused at
registration; a failing lazy listener is logged. Through a real Bolt app (`App.dispatch` of a signed-less
request, an authorize function: no Slack, no HTTP), as Bolt's own tests drive it."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_bolt import Ack, App, BoltRequest
from slack_bolt.authorization import AuthorizeResult

from bot.slack.handlers.registry import Registrar


def _authorize(**_: Any) -> AuthorizeResult:
    """The installation, without calling auth.test (no Slack here)."""
    return AuthorizeResult(
        enterprise_id=None, team_id="T1", bot_token="xoxb-test", bot_user_id="UB", bot_id="B1"
    )


def _app() -> App:
    return App(
        signing_secret="secret",
        authorize=_authorize,
        request_verification_enabled=False,
        process_before_response=True,
    )


def _command(text: str) -> BoltRequest:
    body = urlencode(
        {"command": "/imagine", "text": text, "team_id": "T1", "user_id": "U1", "channel_id": "C1"}
    )
    return BoltRequest(body=body, headers={"content-type": ["application/x-www-form-urlencoded"]})


def test_the_ack_answers_and_the_slow_work_runs_on_the_given_executor() -> None:
    app = _app()
    seen: dict[str, Any] = {}
    done = threading.Event()

    def acknowledge(ack: Ack, command: dict[str, Any]) -> None:
        ack(text=f"working on {command['text']}")

    def slow(command: dict[str, Any], body: dict[str, Any]) -> None:
        seen.update(thread=threading.current_thread().name, text=command["text"], team=body["team_id"])
        done.set()

    with ThreadPoolExecutor(1, thread_name_prefix="turns") as turns:
        registrar = Registrar(app, turns)
        registrar.command("/imagine", acknowledge, [slow])
        response = app.dispatch(_command("a fox"))
        assert response.status == 200 and "working on a fox" in response.body
        assert done.wait(5)
    assert seen == {"thread": seen["thread"], "text": "a fox", "team": "T1"}
    assert seen["thread"].startswith("turns")
    assert registrar.registered.commands == ["/imagine"]


def test_a_listener_asking_for_what_bolt_cannot_give_is_refused_at_registration() -> None:
    def acknowledge(ack: Ack) -> None:
        ack()

    def slow(command: dict[str, Any], services: object) -> None:
        """`services` is not an argument Bolt gives."""

    with ThreadPoolExecutor(1) as turns, pytest.raises(ValueError, match="services"):
        Registrar(_app(), turns).command("/imagine", acknowledge, [slow])


def test_a_failing_slow_listener_is_logged_and_later_commands_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _app()
    ran: list[str] = []

    def acknowledge(ack: Ack) -> None:
        ack()

    def slow(command: dict[str, Any]) -> None:
        ran.append(command["text"])
        if command["text"] == "boom":
            raise RuntimeError("the engine broke")

    with caplog.at_level(logging.ERROR), ThreadPoolExecutor(1) as turns:
        Registrar(app, turns).command("/imagine", acknowledge, [slow])
        assert app.dispatch(_command("boom")).status == 200
        assert app.dispatch(_command("fine")).status == 200
    assert ran == ["boom", "fine"]
    assert any("failed" in r.getMessage() and r.exc_info for r in caplog.records)


def test_without_turns_the_slow_work_stays_with_bolts_lazy_listeners() -> None:
    app = _app()
    done = threading.Event()

    def acknowledge(ack: Ack) -> None:
        ack()

    def slow(command: dict[str, Any]) -> None:
        done.set()

    Registrar(app).command("/imagine", acknowledge, [slow])
    listener = app._listeners[-1]  # what Bolt was given: our ack listener and our lazy one, unwrapped
    given: object = listener.ack_function  # Bolt types it as returning a BoltResponse; ours returns None
    assert given is acknowledge and list(listener.lazy_functions) == [slow]
    assert app.dispatch(_command("x")).status == 200
    assert done.wait(5)
