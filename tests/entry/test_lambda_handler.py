"""The Lambda entry point end to end: the request guard refuses forged or malformed events before Bolt."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.entry import lambda_handler
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_driver import sign

SECRET = "lambda-signing-secret"
CONTEXT = SimpleNamespace(
    function_name="imagine-bot",
    function_version="$LATEST",
    invoked_function_arn="arn:aws:lambda:us-west-2:123456789012:function:imagine-bot",
    aws_request_id="0",
    log_group_name="/aws/lambda/imagine-bot",
    log_stream_name="x",
    memory_limit_in_mb="2048",
)


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch, fake: FakeSlackApi) -> Iterator[Any]:
    """lambda_handler.handler on a fresh sandbox: env as the secret would set it, module state reset."""
    monkeypatch.setenv("SLACK_API_URL", fake.api_url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", fake.bot_token())
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setattr(lambda_handler, "_handler", None)
    monkeypatch.setattr(lambda_handler, "_guard", None)
    yield lambda_handler.handler
    built = lambda_handler._handler
    if built is not None:
        built.app.listener_runner.listener_executor.shutdown(wait=False)


def event(body: str, *, secret: str | None = SECRET, form: bool = True, b64: bool = False) -> dict[str, Any]:
    """A function-URL event carrying `body`, signed with `secret` (None: no signature headers)."""
    headers = {"content-type": "application/x-www-form-urlencoded" if form else "application/json"}
    if secret is not None:
        stamp = int(time.time())
        headers |= {"x-slack-request-timestamp": str(stamp), "x-slack-signature": sign(secret, body, stamp)}
    return {
        "requestContext": {"http": {"method": "POST"}},
        "rawPath": "/slack/events",
        "headers": headers,
        "body": base64.b64encode(body.encode()).decode() if b64 else body,
        "isBase64Encoded": b64,
    }


COMMAND = urlencode(
    {
        "command": "/imagine",
        "text": "a fox",
        "team_id": "T0SANDBOX",
        "user_id": "U0ALICE",
        "channel_id": "C0GENERAL",
        "trigger_id": "1.2.3",
        "response_url": "http://127.0.0.1:9/none",
    }
)


def test_forged_and_malformed_requests_are_refused_before_bolt(handler: Any, fake: FakeSlackApi) -> None:
    assert handler(event(COMMAND, secret="forged"), CONTEXT)["statusCode"] == 401
    assert handler(event(COMMAND, secret=None), CONTEXT)["statusCode"] == 401
    huge = "text=" + "x" * (3 * 1024 * 1024)
    assert handler(event(huge), CONTEXT)["statusCode"] == 413
    assert handler(event('{"type": "event_callback", "event": 7}', form=False), CONTEXT)["statusCode"] == 400
    broken = event(COMMAND) | {"body": "%%% not base64", "isBase64Encoded": True}
    assert handler(broken, CONTEXT)["statusCode"] == 400
    assert fake.calls_to("chat.postMessage") == []  # nothing reached a listener


def test_what_slack_really_sends_reaches_bolt(handler: Any) -> None:
    challenge = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "t"})
    answer = handler(event(challenge, form=False, b64=True), CONTEXT)
    assert answer["statusCode"] == 200 and "c-123" in answer["body"]
    probe = handler(event("ssl_check=1&token=legacy", secret=None), CONTEXT)
    assert probe["statusCode"] == 200  # Slack's unsigned check of the Request URL: Bolt's own answer
