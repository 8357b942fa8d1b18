"""The one request guard of every HTTP entry point (the WSGI server and Lambda): size, signature, shape.

Bolt parses a body before its own signature check and assumes UTF-8 JSON objects of Slack's shape, so
garbage (even unsigned) could surface as a 500. The guard answers 413 for an oversized body, 401 for a bad
or missing signature (slack_sdk's `SignatureVerifier`, after checking the timestamp is a number, since the
verifier calls int() on it) and 400 for a signed body that is not a Slack payload. What Bolt answers
itself passes untouched: Slack's unsigned `ssl_check=1` probe of the Request URL (Bolt answers 200), GET
requests (the OAuth install pages, /healthz), and payloads no listener matches (Bolt answers 404).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import Clock, SignatureVerifier

from bot.scheduling.ack_first import AckFirstGate

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024  # Slack's payloads stay far below this; views are the largest

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class Refusal:
    """Why a request does not reach Bolt: the HTTP status and a short plain-text reason."""

    status: int
    reason: str


TOO_LARGE = Refusal(413, "request body too large")
UNSIGNED = Refusal(401, "invalid request signature")
NOT_SLACK = Refusal(400, "not a Slack payload")


def _optional(payload: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> bool:
    """The key is absent, null, or of the given type."""
    return payload.get(key) is None or isinstance(payload.get(key), kind)


_ID_HOLDERS = ("team", "enterprise", "user", "channel")  # a string id, or an object whose "id" is one
_ID_STRINGS = ("team_id", "enterprise_id", "user_id", "channel_id", "api_app_id", "app_installed_team_id",
               "thread_ts", "type")  # fmt: skip
_NESTED = ("event", "item", "assistant_thread", "message", "previous_message", "container", "view")


def _ids_readable(payload: Mapping[str, Any], depth: int = 0) -> bool:
    """The fields Bolt reads for its context (team, enterprise, user, channel, thread, authorizations, and
    the same inside event / item / message / view ...) have Slack's types, so reading them cannot raise."""
    for key in _ID_HOLDERS:
        value = payload.get(key)
        if value is not None and not (
            isinstance(value, str) or (isinstance(value, dict) and _optional(value, "id", str))
        ):
            return False
    if not all(_optional(payload, key, str) for key in _ID_STRINGS):
        return False
    authorizations = payload.get("authorizations")
    if authorizations is not None and not (
        isinstance(authorizations, list)
        and all(isinstance(a, dict) and _ids_readable(a, depth + 1) for a in authorizations)
    ):
        return False
    for key in _NESTED:
        nested = payload.get(key)
        if nested is None:
            continue
        if not isinstance(nested, dict) or (depth < 3 and not _ids_readable(nested, depth + 1)):
            return False
    return True


def well_formed(payload: Mapping[str, Any]) -> bool:
    """A JSON payload whose fields Bolt and our listeners read before any check have Slack's types."""
    if not _ids_readable(payload):
        return False
    if payload.get("type") == "event_callback":
        event = payload.get("event")
        return isinstance(event, dict) and _optional(event, "text", str)
    if payload.get("type") == "block_actions":  # legacy interactive_message actions carry `name` instead
        actions = payload.get("actions")
        return (
            isinstance(actions, list)
            and bool(actions)
            and all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions)
        )
    if payload.get("type") in ("view_submission", "view_closed"):
        view = payload.get("view")
        return isinstance(view, dict) and isinstance(view.get("type"), str)
    return True


def _is_slack_payload(body: bytes, content_type: str) -> bool:
    """True when Bolt can parse the body: a JSON object, or form fields whose `payload` is a JSON object."""
    try:
        text = body.decode("utf-8")
        if content_type.startswith("application/json"):
            payload = json.loads(text)
            return isinstance(payload, dict) and well_formed(payload)
        fields = parse_qs(text, keep_blank_values=True)
        if "payload" in fields:
            payload = json.loads(fields["payload"][0])
            return isinstance(payload, dict) and well_formed(payload)
        return bool(fields)
    except (UnicodeDecodeError, ValueError):
        return False


def _is_ssl_check(body: bytes, content_type: str) -> bool:
    """Slack's unsigned probe of the Request URL: a form body with ssl_check=1 (Bolt answers it with 200)."""
    if content_type.startswith("application/json"):
        return False
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return False
    return fields.get("ssl_check") == ["1"] and "payload" not in fields and "command" not in fields


class RequestGuard:
    """Checks one POST body and its headers; None means hand it to Bolt."""

    def __init__(self, signing_secret: str | None, clock: Clock | None = None) -> None:
        self._verifier = SignatureVerifier(signing_secret, clock or Clock()) if signing_secret else None

    def refusal(self, body: bytes, headers: Mapping[str, str]) -> Refusal | None:
        """Why this request must not reach Bolt, or None; `headers` are matched case-insensitively."""
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        if len(body) > MAX_BODY_BYTES:
            return TOO_LARGE
        content_type = lowered.get("content-type", "")
        if _is_ssl_check(body, content_type):
            return None
        if not self._signed(body, lowered):
            return UNSIGNED
        if not _is_slack_payload(body, content_type):
            logger.warning("a signed request whose body is not a Slack payload (%d bytes)", len(body))
            return NOT_SLACK
        return None

    def _signed(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """A numeric timestamp and (with a secret) a signature slack_sdk's verifier accepts."""
        stamp = headers.get("x-slack-request-timestamp", "")
        if not stamp.isascii() or not stamp.isdigit():
            return False
        if self._verifier is None:
            return True
        try:  # the verifier decodes the body as UTF-8: bytes that are not cannot be signed by Slack
            return self._verifier.is_valid(body, stamp, headers.get("x-slack-signature", ""))
        except UnicodeDecodeError:
            return False


def _answer(start_response: StartResponse, refusal: Refusal) -> list[bytes]:
    """A short plain-text answer."""
    body = refusal.reason.encode()
    phrase = {400: "Bad Request", 401: "Unauthorized", 413: "Payload Too Large"}.get(refusal.status, "Error")
    start_response(
        f"{refusal.status} {phrase}",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _wsgi_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """The request headers of a WSGI environ, by their HTTP names."""
    headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    return headers


class SlackRequestGuard:
    """WSGI middleware: the RequestGuard in front of Bolt's WSGI handler (`signing_secret` None: no HMAC).

    With `gate`, each request Bolt answers is counted there, so turns wait until the acks are out."""

    def __init__(
        self,
        inner: WsgiApp,
        signing_secret: str | None,
        clock: Clock | None = None,
        gate: AckFirstGate | None = None,
    ) -> None:
        self._inner = inner
        self._guard = RequestGuard(signing_secret, clock)
        self._gate = gate

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Check a POST, then hand it to Bolt with its body restored."""
        if environ.get("REQUEST_METHOD") != "POST":
            return self._call_inner(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _answer(start_response, Refusal(400, "bad Content-Length"))
        if length > MAX_BODY_BYTES:
            return _answer(start_response, TOO_LARGE)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        refusal = self._guard.refusal(body, _wsgi_headers(environ))
        if refusal is not None:
            return _answer(start_response, refusal)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self._call_inner(environ, start_response)

    def _call_inner(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Bolt's handler; an exception becomes a logged 400 rather than a 500."""
        try:
            if self._gate is None:
                return self._inner(environ, start_response)
            with self._gate.answering():
                return list(self._inner(environ, start_response))  # Bolt's answer is built by now
        except Exception:
            logger.exception("the Slack request handler failed")
            return _answer(start_response, Refusal(400, "could not handle this request"))
