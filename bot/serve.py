"""`imagine-bot serve`: the Slack app in Socket Mode (SLACK_APP_TOKEN set) or HTTP mode on a local port."""

from __future__ import annotations

import argparse
import logging
import os
from typing import TYPE_CHECKING

from bot.settings import Settings, SettingsError
from bot.socket_mode import DEFAULT_CONNECTIONS, MAX_CONNECTIONS, connection_count, run_socket_mode

if TYPE_CHECKING:
    from bot.recovery import RecoveryLoop
from bot.wiring import build_health, build_services

logger = logging.getLogger(__name__)


def add_serve_command(commands: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Register `serve` on the CLI's subparsers."""
    serve = commands.add_parser(
        "serve",
        help="run the Slack app (Socket Mode with SLACK_APP_TOKEN, else HTTP at /slack/events)",
        description="Run the Slack app. Needs SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN (one workspace) or "
        "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (OAuth installs into many workspaces, at /slack/install); "
        "with SLACK_APP_TOKEN it connects in Socket Mode, otherwise it serves HTTP at "
        "http://HOST:PORT/slack/events.",
        epilog=epilog,
    )
    serve.add_argument("--host", default="127.0.0.1", help="HTTP mode: interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=3000, help="HTTP mode: port (default 3000)")
    serve.add_argument(
        "--connections",
        type=connection_count,
        default=DEFAULT_CONNECTIONS,
        metavar="N",
        help=f"Socket Mode only: WebSocket connections to hold open, 1-{MAX_CONNECTIONS} (default "
        f"{DEFAULT_CONNECTIONS}); Slack spreads events over them, so one can refresh while others serve",
    )


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Build the app from settings and serve until interrupted."""
    from bot.app import build_app, make_wsgi_server
    from bot.recovery import RecoveryLoop, client_for_app
    from bot.slack_settings import load_slack_settings

    slack = load_slack_settings()
    app_token = os.environ.get("SLACK_APP_TOKEN", "").strip()
    if app_token and not app_token.startswith("xapp-"):
        raise SettingsError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
    services, close = build_services(settings)
    recovery: RecoveryLoop | None = None
    try:
        app = build_app(slack, services)
        recovery = RecoveryLoop(services, client_for_app(app), settings.job_stale_s / 2).start()
        if app_token:
            logger.warning(
                "imagine-bot: connecting to Slack in Socket Mode (%d connections)", args.connections
            )
            if slack.oauth:
                logger.warning("imagine-bot: Socket Mode serves no /slack/install; install in HTTP mode")
            run_socket_mode(app, app_token, args.connections)
            return 0
        server = make_wsgi_server(
            app,
            args.host,
            args.port,
            signing_secret=slack.signing_secret.get_secret_value(),
            health=build_health(services),
        )
        host, port = server.server_address[:2]
        logger.warning("imagine-bot: serving Slack at http://%s:%s/slack/events", host, port)
        logger.info("imagine-bot: readiness check at http://%s:%s/healthz", host, port)
        if slack.oauth:
            logger.warning("imagine-bot: install into a workspace at http://%s:%s/slack/install", host, port)
        try:
            server.serve_forever()
        finally:
            server.server_close()
    finally:
        if recovery is not None:
            recovery.stop()
        close()
    return 0
