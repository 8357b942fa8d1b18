"""`imagine-bot serve`: the Slack app in Socket Mode (SLACK_APP_TOKEN set) or HTTP mode on a local port."""

from __future__ import annotations

import argparse
import logging
import os
from typing import TYPE_CHECKING, NoReturn

from bot.config import Config, ConfigError
from bot.scheduling.drain import StopSignals, drain_turns
from bot.slack.intake.socket_mode import (
    DEFAULT_CONNECTIONS,
    MAX_CONNECTIONS,
    connection_count,
    run_socket_mode,
)

if TYPE_CHECKING:
    from bot.slack.recovery import RecoveryLoop
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


def run_serve(args: argparse.Namespace, config: Config) -> int:
    """Build the app from config and serve until SIGTERM or Ctrl-C; then let running turns finish."""
    from bot.slack.app import build_app, listener_executor, make_wsgi_server, serving_in_background
    from bot.slack.credentials import load_slack_credentials
    from bot.slack.recovery import RecoveryLoop, client_for_app

    slack = load_slack_credentials()
    app_token = os.environ.get("SLACK_APP_TOKEN", "").strip()
    if app_token and not app_token.startswith("xapp-"):
        raise ConfigError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
    services, close = build_services(config)
    recovery: RecoveryLoop | None = None
    executor = listener_executor()
    abandoned, code = 0, 0
    try:
        app = build_app(slack, services, executor=executor)
        recovery = RecoveryLoop(services, client_for_app(app), config.job_stale_s / 2).start()
        with StopSignals() as signals:
            if app_token:
                logger.warning(
                    "imagine-bot: connecting to Slack in Socket Mode (%d connections)", args.connections
                )
                if slack.oauth:
                    logger.warning("imagine-bot: Socket Mode serves no /slack/install; install in HTTP mode")
                abandoned = run_socket_mode(
                    app, app_token, args.connections, signals, executor, config.drain_s
                )
                code = signals.exit_code()
                return code
            server = make_wsgi_server(
                app,
                args.host,
                args.port,
                signing_secret=slack.signing_secret.get_secret_value(),
                health=build_health(services),
            )
            host, port = server.server_address[:2]
            with serving_in_background(server, poll_interval=0.5):
                logger.warning("imagine-bot: serving Slack at http://%s:%s/slack/events", host, port)
                logger.info("imagine-bot: readiness check at http://%s:%s/healthz", host, port)
                if slack.oauth:
                    logger.warning(
                        "imagine-bot: install into a workspace at http://%s:%s/slack/install", host, port
                    )
                signals.wait()
                logger.warning("imagine-bot: %s; no longer taking requests", signals.reason())
            abandoned = drain_turns(executor, config.drain_s, signals)
            code = signals.exit_code()
            return code
    finally:
        if recovery is not None:
            recovery.stop()
        if abandoned:
            _exit_now(code)
        close()
        executor.shutdown(wait=False)


def _exit_now(code: int) -> NoReturn:
    """Exit without waiting for turns still running (their jobs stay open for recovery to report)."""
    logging.shutdown()
    os._exit(code)
