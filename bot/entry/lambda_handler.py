"""AWS Lambda entry point: the Bolt app in HTTP mode behind a Lambda function URL.

`handler` is what Lambda calls (`bot.entry.lambda_handler.handler`). Nothing happens at import: the first call
(the cold start) reads the Slack secrets from Secrets Manager when IMAGINE_SLACK_SECRET_ARN is set, then
the config, then builds the services and the Bolt app. Bolt's AWS Lambda adapter runs lazy listeners by
invoking this same function asynchronously (`lambda:InvokeFunction` on itself, granted by
deploy/template.yaml), so every slow step runs in its own invocation after Slack got its ack.

On Lambda the index must be a Qdrant server (IMAGINE_QDRANT_URL) and the database a server
(IMAGINE_DATABASE_URL): an embedded index or a SQLite file would live in one sandbox's /tmp and vanish.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from bot.config import ConfigError

if TYPE_CHECKING:
    from slack_bolt.adapter.aws_lambda import SlackRequestHandler

    from bot.slack.intake.request_guard import Refusal, RequestGuard
    from bot.slack.services import Services

logger = logging.getLogger(__name__)

SECRET_ARN_VARIABLE = "IMAGINE_SLACK_SECRET_ARN"
# the keys a secret may hold; each becomes the environment variable of the same name
SECRET_KEYS = frozenset(
    {
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_CLIENT_ID",
        "SLACK_CLIENT_SECRET",
        "IMAGINE_DATABASE_URL",
        "IMAGINE_QDRANT_API_KEY",
    }
)

SecretFetcher = Callable[[str], str]


def fetch_secret_string(secret_arn: str) -> str:
    """The SecretString of `secret_arn` from Secrets Manager (boto3 is imported only here)."""
    import boto3

    client = boto3.client("secretsmanager")
    response = client.get_secret_value(SecretId=secret_arn)
    return str(response["SecretString"])


def load_secrets_into_env(
    environ: MutableMapping[str, str] | None = None, fetch: SecretFetcher = fetch_secret_string
) -> list[str]:
    """Copy the JSON secret named by IMAGINE_SLACK_SECRET_ARN into `environ`; returns the names set.

    The secret is a JSON object such as {"SLACK_BOT_TOKEN": "xoxb-…", "SLACK_SIGNING_SECRET": "…"}; only
    the keys in SECRET_KEYS are accepted (anything else is a ConfigError naming it). A variable already
    set to a non-empty value wins over the secret. Without IMAGINE_SLACK_SECRET_ARN nothing is fetched.
    """
    env: MutableMapping[str, str] = os.environ if environ is None else environ
    secret_arn = env.get(SECRET_ARN_VARIABLE, "").strip()
    if not secret_arn:
        return []
    try:
        values = json.loads(fetch(secret_arn))
    except json.JSONDecodeError:
        raise ConfigError(f"{SECRET_ARN_VARIABLE}: the secret is not a JSON object") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{SECRET_ARN_VARIABLE}: the secret is not a JSON object")
    unknown = sorted(set(values) - SECRET_KEYS)
    if unknown:
        raise ConfigError(
            f"{SECRET_ARN_VARIABLE}: unexpected keys {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(SECRET_KEYS))})"
        )
    applied = []
    for name, value in sorted(values.items()):
        if not isinstance(value, str):
            raise ConfigError(f"{SECRET_ARN_VARIABLE}: {name} must be a string")
        if env.get(name, "").strip():
            continue
        env[name] = value
        applied.append(name)
    return applied


def require_servers(environ: Mapping[str, str]) -> None:
    """On Lambda (AWS_LAMBDA_FUNCTION_NAME set), refuse the embedded index and SQLite."""
    if not environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return
    missing = [name for name in ("IMAGINE_QDRANT_URL", "IMAGINE_DATABASE_URL") if not environ.get(name)]
    if missing:
        raise ConfigError(
            f"{' and '.join(missing)} must be set on AWS Lambda (an embedded index or SQLite file "
            "does not outlive one sandbox)"
        )
    if environ["IMAGINE_DATABASE_URL"].startswith("sqlite"):
        raise ConfigError("IMAGINE_DATABASE_URL must be a database server on AWS Lambda, not SQLite")


def build_handler(
    *, fetch: SecretFetcher = fetch_secret_string, services: Services | None = None
) -> SlackRequestHandler:
    """Secrets → config → services → Bolt app → Bolt's Lambda adapter (no Slack call is made here)."""
    from slack_bolt.adapter.aws_lambda import SlackRequestHandler

    from bot.config import load_config
    from bot.slack.app import build_app
    from bot.slack.credentials import load_slack_credentials

    applied = load_secrets_into_env(fetch=fetch)
    if applied:
        logger.info("imagine-bot: read %s from Secrets Manager", ", ".join(applied))
    require_servers(os.environ)
    slack = load_slack_credentials()
    if services is None:
        from bot.wiring import build_services

        # the services live as long as the sandbox: Lambda freezes it between calls, never closes it
        services, _close = build_services(load_config())
    return SlackRequestHandler(build_app(slack, services, bolt_lazy=True))


def event_body(event: Mapping[str, Any]) -> bytes | None:
    """The raw request body of a function-URL / API Gateway event (base64 decoded), or None if unreadable."""
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        return None
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return None
    return body.encode("utf-8")


def guarded_response(guard: RequestGuard, event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The refusal the request guard gives a POST event (as a Lambda response), or None to let Bolt answer.

    The same guard as HTTP mode's server: size cap, slack_sdk's signature check, Slack payload shapes.
    Bolt's own lazy re-invocations of this function carry the original request, so they pass it too.
    """
    from bot.slack.intake.request_guard import NOT_SLACK

    http = (event.get("requestContext") or {}).get("http") or {}
    method = str(http.get("method") or event.get("httpMethod") or "POST")
    if method.upper() != "POST":
        return None
    body, headers = event_body(event), event.get("headers") or {}
    if body is None or not isinstance(headers, dict):
        refusal: Refusal | None = NOT_SLACK
    else:
        refusal = guard.refusal(body, headers)
    if refusal is None:
        return None
    logger.info("imagine-bot: refused a request: %s (%d)", refusal.reason, refusal.status)
    return {
        "statusCode": refusal.status,
        "headers": {"content-type": "text/plain; charset=utf-8"},
        "body": refusal.reason,
    }


_handler: SlackRequestHandler | None = None
_guard: RequestGuard | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point: builds the app on the first call of a sandbox, guards every request, then
    hands it to Bolt."""
    global _handler, _guard
    if _handler is None or _guard is None:
        from bot.slack.intake.request_guard import RequestGuard

        logging.basicConfig(level=logging.INFO)
        _handler = build_handler()
        _guard = RequestGuard(os.environ.get("SLACK_SIGNING_SECRET") or None)
    refused = guarded_response(_guard, event)
    if refused is not None:
        return refused
    response: dict[str, Any] = _handler.handle(event, context)  # type: ignore[no-untyped-call]
    return response
