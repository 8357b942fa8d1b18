"""The Bolt app: built from SlackSettings and Services, served over WSGI on a local port."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from bot.listeners import register_listeners
from bot.services import Services
from bot.slack_settings import SlackSettings

logger = logging.getLogger(__name__)
LISTENER_THREADS = 32  # lazy listeners may wait for a fair-use slot, so keep more threads than slots


def build_app(settings: SlackSettings, services: Services) -> App:
    """A Bolt app in HTTP mode that acks before slow work (which runs in lazy listeners)."""
    token = settings.bot_token.get_secret_value()
    client = WebClient(base_url=settings.base_url, token=token)
    app = App(  # the token travels in the client (Bolt warns when both are given)
        signing_secret=settings.signing_secret.get_secret_value(),
        client=client,
        process_before_response=True,
        logger=services.logger,
        listener_executor=ThreadPoolExecutor(LISTENER_THREADS, thread_name_prefix="imagine-listener"),
    )
    register_listeners(app, services)
    return app


class _LoggingHandler(WSGIRequestHandler):
    """wsgiref's handler, logging requests through `logging` instead of stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


def make_wsgi_server(app: App, host: str = "127.0.0.1", port: int = 0) -> WSGIServer:
    """A wsgiref server answering Slack at /slack/events (call serve_forever; port 0 picks a free one)."""
    return make_server(host, port, SlackRequestHandler(app), handler_class=_LoggingHandler)
