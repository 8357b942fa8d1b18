"""The Bolt app: built from SlackCredentials and Services (served by bot/slack/intake/http_server.py)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, RetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from sqlalchemy import Engine

from bot.log_redaction import install_log_redaction
from bot.scheduling.ack_first import AckFirstGate
from bot.scheduling.drain import DrainingExecutor
from bot.slack.credentials import SlackCredentials
from bot.slack.handlers import register_listeners
from bot.slack.oauth import build_oauth_settings, engine_of
from bot.slack.services import Services

logger = logging.getLogger(__name__)
LISTENER_THREADS = 32  # lazy listeners may wait for a fair-use slot, so keep more threads than slots
RATE_LIMIT_RETRIES = 3  # 429: wait Retry-After (+ up to 1 s of jitter) and send again, at most this often
SERVER_ERROR_RETRIES = 1  # 500/503: once more after a short backoff (a lost reply is worse than a repeat)
CONNECTION_RETRIES = 1  # reset or refused connections (slack_sdk's default)


def slack_retry_handlers() -> list[RetryHandler]:
    """slack_sdk retry handlers for every Web API client of the app (Bolt copies them per request)."""
    return [
        ConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
        RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES),
    ]


def build_app(
    credentials: SlackCredentials,
    services: Services,
    *,
    engine: Engine | None = None,
    executor: ThreadPoolExecutor | None = None,
    bolt_lazy: bool = False,
) -> App:
    """A Bolt app acking before slow work (run on `executor`); OAuth installs are kept via `engine`.

    The ack listeners submit the slow work to `executor` themselves; `bolt_lazy` leaves that to Bolt's lazy
    listeners instead (Lambda, where Bolt re-invokes the function for them)."""
    install_log_redaction(credentials.bot_token, credentials.signing_secret, credentials.client_secret)
    oauth_settings = None
    token = None
    if credentials.oauth:
        if credentials.bot_token is not None:
            logger.warning("SLACK_CLIENT_ID is set, so SLACK_BOT_TOKEN is ignored: tokens come from installs")
        oauth_settings = build_oauth_settings(credentials, engine or engine_of(services), services.logger)
    elif credentials.bot_token is not None:
        token = credentials.bot_token.get_secret_value()
    # the token travels in the client (Bolt warns when both are given); OAuth's oauth.v2.access uses it
    # too, and Bolt builds each request's client (the installing team's token) with its retry handlers
    client = WebClient(base_url=credentials.base_url, token=token, retry_handlers=slack_retry_handlers())
    turns = executor or listener_executor()
    app = App(
        signing_secret=credentials.signing_secret.get_secret_value(),
        client=client,
        oauth_settings=oauth_settings,
        process_before_response=True,
        logger=services.logger,
        listener_executor=turns,
    )
    register_listeners(app, services, None if bolt_lazy else turns)
    return app


def listener_executor(gate: AckFirstGate | None = None) -> DrainingExecutor:
    """The threads lazy listeners (the turns) run on, each after `gate` lets it; serve drains them."""
    return DrainingExecutor(LISTENER_THREADS, thread_name_prefix="imagine-listener", gate=gate)
