"""The request guard on its own: what reaches Bolt, and the status of everything that does not."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import Clock

from bot.slack.intake.request_guard import MAX_BODY_BYTES, NOT_SLACK, TOO_LARGE, UNSIGNED, RequestGuard
from sandbox.slack_driver import sign

SECRET = "guard-test-secret"


class FixedClock(Clock):
    """A clock stopped at `now`."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        """The fixed time."""
        return self._now


def headers(
    body: str, *, secret: str = SECRET, stamp: int | None = None, json_body: bool = False
) -> dict[str, str]:
    """Headers Slack would send with `body`, signed with `secret` at `stamp` (default: now)."""
    when = int(time.time()) if stamp is None else stamp
    kind = "application/json" if json_body else "application/x-www-form-urlencoded"
    return {
        "Content-Type": kind,
        "X-Slack-Request-Timestamp": str(when),
        "X-Slack-Signature": sign(secret, body, when),
    }


GUARD = RequestGuard(SECRET)
COMMAND = urlencode({"command": "/imagine", "text": "a fox", "team_id": "T1", "user_id": "U1"})


def test_a_signed_command_passes_and_a_forged_or_stale_one_is_401() -> None:
    assert GUARD.refusal(COMMAND.encode(), headers(COMMAND)) is None
    assert GUARD.refusal(COMMAND.encode(), headers(COMMAND, secret="not-the-secret")) == UNSIGNED
    stale = int(time.time()) - 600
    assert GUARD.refusal(COMMAND.encode(), headers(COMMAND, stamp=stale)) == UNSIGNED
    then = RequestGuard(SECRET, FixedClock(stale + 10))  # slack_sdk's verifier reads the injected clock
    assert then.refusal(COMMAND.encode(), headers(COMMAND, stamp=stale)) is None
    unsigned = {"Content-Type": "application/x-www-form-urlencoded"}
    assert GUARD.refusal(COMMAND.encode(), unsigned) == UNSIGNED


@pytest.mark.parametrize("stamp", ["", "12.5", "١٢٣", "-5", "1e9", "now"])
def test_a_timestamp_that_is_not_a_number_is_401_not_a_crash(stamp: str) -> None:
    sent = {**headers(COMMAND), "X-Slack-Request-Timestamp": stamp}
    assert GUARD.refusal(COMMAND.encode(), sent) == UNSIGNED


def test_slacks_unsigned_ssl_check_reaches_bolt_but_nothing_else_unsigned_does() -> None:
    probe = "ssl_check=1&token=legacy"
    assert GUARD.refusal(probe.encode(), {"Content-Type": "application/x-www-form-urlencoded"}) is None
    sneaky = urlencode({"ssl_check": "1", "command": "/imagine", "text": "x"})
    assert GUARD.refusal(sneaky.encode(), {"Content-Type": "application/x-www-form-urlencoded"}) == UNSIGNED


def test_size_cap_and_shapes() -> None:
    big = "x" * (MAX_BODY_BYTES + 1)
    assert GUARD.refusal(big.encode(), headers(big)) == TOO_LARGE
    for body in ('{"type": "event_callback", "event": "a string"}', "[1, 2]", '{"team": 5}'):
        assert GUARD.refusal(body.encode(), headers(body, json_body=True)) == NOT_SLACK
    bad_block = "payload=" + json.dumps({"type": "block_actions", "actions": [{"value": "no id"}]})
    assert GUARD.refusal(bad_block.encode(), headers(bad_block)) == NOT_SLACK


def test_a_legacy_interactive_message_is_left_to_bolt() -> None:
    """Its actions carry `name`, not `action_id`: no listener of ours matches, so Bolt answers 404."""
    payload = {"type": "interactive_message", "actions": [{"name": "choice", "type": "button", "value": "1"}]}
    body = "payload=" + json.dumps(payload)
    assert GUARD.refusal(body.encode(), headers(body)) is None


def test_header_names_are_matched_whatever_their_case() -> None:
    lower = {k.lower(): v for k, v in headers(COMMAND).items()}
    assert GUARD.refusal(COMMAND.encode(), lower) is None
