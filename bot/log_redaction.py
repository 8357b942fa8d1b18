"""Secrets never reach the logs: Slack tokens, AWS key ids and the configured secrets are masked.

At DEBUG, libraries log what they send and receive: slack_sdk logs oauth.v2.access's response (the new bot
token), SQLAlchemy logs statement parameters (installations hold tokens), botocore logs request headers
(`Credential=AKIA…`, `X-Amz-Security-Token`). `SecretsFilter` rewrites a record's message (and its
traceback text) with every secret masked; `install_log_redaction` applies it to every record created from
then on, through the log record factory. A filter attached to a logger would miss records of its child
loggers, and one attached to handlers would miss handlers added later (basicConfig, pytest's capture), so
the factory is the one place every record passes through.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import traceback
from collections.abc import Iterable
from typing import Any

MASK = "***"
MIN_LITERAL_CHARS = 16  # shorter values ("testing") are too likely to be ordinary words to mask everywhere
ENV_SECRETS = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_CLIENT_SECRET",
    "SLACK_APP_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_BEARER_TOKEN_BEDROCK",
    "IMAGINE_QDRANT_API_KEY",
)
# xoxb-, xoxp-, xoxa-2-, xoxe.xoxp-1-, xoxe-1- (refresh), xoxr-, xoxs-, and app-level xapp-1- tokens
_SLACK_TOKEN = re.compile(r"\b(xox[a-z](?:\.xox[a-z])?|xapp)-[A-Za-z0-9-]+")
# AWS access key ids: AKIA (long-term), ASIA (temporary) and the other documented unique-id prefixes
_AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z0-9]{16}\b")
_BEARER = re.compile(r"\b(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_AWS_SESSION = re.compile(
    r"((?:X-Amz-Security-Token|aws_session_token)['\"]?\s*[:=]\s*b?['\"]?)[^'\"\s,}]{16,}", re.IGNORECASE
)

_lock = threading.Lock()
_literals: tuple[str, ...] = ()
_installed = False


def _value(secret: Any) -> str:
    """The plain value of a secret (pydantic SecretStr or str); '' for None."""
    if secret is None:
        return ""
    getter = getattr(secret, "get_secret_value", None)
    return str(getter() if callable(getter) else secret)


def add_secrets(secrets: Iterable[Any]) -> None:
    """Mask these values literally from now on (values shorter than MIN_LITERAL_CHARS are left out)."""
    global _literals
    values = {_value(secret).strip() for secret in secrets}
    fresh = {value for value in values if len(value) >= MIN_LITERAL_CHARS}
    with _lock:
        _literals = tuple(sorted(set(_literals) | fresh, key=len, reverse=True))  # longest first


def redact(text: str) -> str:
    """The text with Slack tokens, AWS key ids, bearer and session tokens and known secrets masked."""
    for literal in _literals:
        if literal in text:
            text = text.replace(literal, MASK)
    text = _SLACK_TOKEN.sub(lambda match: f"{match.group(1)}-{MASK}", text)
    text = _AWS_KEY_ID.sub(lambda match: f"{match.group(1)}{MASK}", text)
    text = _BEARER.sub(lambda match: f"{match.group(1)}{MASK}", text)
    return _AWS_SESSION.sub(lambda match: f"{match.group(1)}{MASK}", text)


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask secrets in a record's message, traceback and stack, in place (arguments are merged in)."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed log call: leave it for the handler to report
        return record
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if redact(text) != text:
            record.exc_text = redact(text)  # formatters use exc_text instead of formatting exc_info
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class SecretsFilter(logging.Filter):
    """A logging filter that masks secrets in each record it sees and lets every record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drops it."""
        redact_record(record)
        return True


def install_log_redaction(*secrets: Any) -> None:
    """Mask `secrets` (str or SecretStr), secrets from ENV_SECRETS and token patterns in every log record."""
    global _installed
    add_secrets([*secrets, *(os.environ.get(name) for name in ENV_SECRETS)])
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return redact_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed = True
