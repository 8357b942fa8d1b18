"""A WSGI guard in front of Bolt: size cap, signature first, and only well-formed Slack bodies get through.

Bolt parses a body before it checks the signature and assumes UTF-8 JSON objects, and slack_sdk's verifier
does int() on the timestamp header, so garbage (even unsigned) would surface as a 500. The guard answers
401 for a bad or missing signature, 413 for an oversized body and 400 for a signed body that is not a Slack
payload; GET requests (the OAuth install pages) pass through untouched.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from slack_bolt.context import BoltContext
from slack_bolt.request.internals import build_context

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024  # Slack's payloads stay far below this; views are the largest
MAX_SKEW_S = 300  # Slack's advice: reject requests more than five minutes old

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _answer(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    """A short plain-text answer."""
    body = text.encode()
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _is_slack_payload(body: bytes, content_type: str) -> bool:
    """True when Bolt can parse the body: a JSON object, or form fields whose `payload` is a JSON object."""
    try:
        text = body.decode("utf-8")
        if content_type.startswith("application/json"):
            payload = json.loads(text)
            return isinstance(payload, dict) and _well_formed(payload)
        fields = parse_qs(text, keep_blank_values=True)
        if "payload" in fields:
            payload = json.loads(fields["payload"][0])
            return isinstance(payload, dict) and _well_formed(payload)
        return bool(fields)
    except (UnicodeDecodeError, ValueError):
        return False


def _optional(payload: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> bool:
    """The key is absent, null, or of the given type."""
    return payload.get(key) is None or isinstance(payload.get(key), kind)


def _bolt_can_read(payload: dict[str, Any]) -> bool:
    """Bolt's own context extraction (enterprise, team, user, channel, authorizations) does not raise."""
    try:
        build_context(BoltContext({}), payload)
    except Exception:
        return False
    return True


def _well_formed(payload: dict[str, Any]) -> bool:
    """The fields Bolt reads before any listener runs have the types Slack sends."""
    if not (_optional(payload, "user", (dict, str)) and _optional(payload, "team", (dict, str))):
        return False
    if not _bolt_can_read(payload):
        return False
    if payload.get("type") == "event_callback":
        event = payload.get("event")
        return isinstance(event, dict) and _optional(event, "user", str) and _optional(event, "type", str)
    if "actions" in payload:
        actions = payload["actions"]
        if not isinstance(actions, list) or not actions:
            return False
        if not all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions):
            return False
    if "view" in payload or payload.get("type") in ("view_submission", "view_closed"):
        view = payload.get("view")
        return isinstance(view, dict) and isinstance(view.get("type"), str)
    return True


class SlackRequestGuard:
    """Wraps the Bolt WSGI handler; `signing_secret` None leaves the signature to Bolt alone."""

    def __init__(
        self, inner: WsgiApp, signing_secret: str | None, clock: Callable[[], float] = time.time
    ) -> None:
        self._inner = inner
        self._secret = signing_secret.encode() if signing_secret else None  # v0 HMAC over the raw bytes
        self._clock = clock

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Check a POST, then hand it to Bolt with its body restored."""
        if environ.get("REQUEST_METHOD") != "POST":
            return self._call_inner(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _answer(start_response, "400 Bad Request", "bad Content-Length")
        if length > MAX_BODY_BYTES:
            return _answer(start_response, "413 Payload Too Large", "request body too large")
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        if not self._signed(environ, body):
            return _answer(start_response, "401 Unauthorized", "invalid request signature")
        if not _is_slack_payload(body, str(environ.get("CONTENT_TYPE") or "")):
            logger.warning("a signed request whose body is not a Slack payload (%d bytes)", len(body))
            return _answer(start_response, "400 Bad Request", "not a Slack payload")
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self._call_inner(environ, start_response)

    def _signed(self, environ: dict[str, Any], body: bytes) -> bool:
        """A numeric, fresh timestamp and (with a secret) a matching v0 signature."""
        stamp = str(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or "")
        if not stamp.isascii() or not stamp.isdigit() or abs(self._clock() - int(stamp)) > MAX_SKEW_S:
            return False
        if self._secret is None:
            return True
        signature = str(environ.get("HTTP_X_SLACK_SIGNATURE") or "")
        digest = hmac.new(self._secret, b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(f"v0={digest}", signature)

    def _call_inner(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Bolt's handler; an exception becomes a logged 400 rather than a 500."""
        try:
            return self._inner(environ, start_response)
        except Exception:
            logger.exception("the Slack request handler failed")
            return _answer(start_response, "400 Bad Request", "could not handle this request")
