"""`imagine-bot serve`: the Slack app in Socket Mode (SLACK_APP_TOKEN set) or HTTP mode on a local port."""

from __future__ import annotations

import argparse
import logging
import os
import time
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
    from bot.slack.intake.health import Readiness
    from bot.slack.recovery import RecoveryLoop
    from bot.slack.services import Services
    from retrieval.index_share import IndexShareServer
from bot.wiring import build_health, build_index_share, build_services

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
    from bot.scheduling.ack_first import AckFirstGate
    from bot.slack.app import build_app, listener_executor
    from bot.slack.credentials import load_slack_credentials
    from bot.slack.intake.health import Readiness
    from bot.slack.intake.http_server import make_http_server, serving_in_background
    from bot.slack.recovery import RecoveryLoop, client_for_app
    from retrieval.native_heap import cap_arenas

    cap_arenas()  # before any thread starts: a long-running process keeps less freed C heap
    slack = load_slack_credentials()
    app_token = os.environ.get("SLACK_APP_TOKEN", "").strip()
    if app_token and not app_token.startswith("xapp-"):
        raise ConfigError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
    services, close = build_services(config)
    share = start_index_share(config, services)
    recovery: RecoveryLoop | None = None
    gate = AckFirstGate()  # turns start once the acks in flight are out (bench/RESULTS.md, Serving)
    executor = listener_executor(gate)
    abandoned, code = 0, 0
    try:
        app = build_app(slack, services, executor=executor)
        recovery = RecoveryLoop(services, client_for_app(app), config.job_stale_s / 2).start()
        readiness = Readiness()
        with StopSignals() as signals:
            if app_token:
                warm_start(services, config, readiness)  # before connecting: no event arrives before it
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
            server = make_http_server(
                app,
                args.host,
                args.port,
                signing_secret=slack.signing_secret.get_secret_value(),
                health=build_health(services, readiness),
                ack_gate=gate,
            )
            host, port = server.host, server.port
            with serving_in_background(server):
                logger.warning("imagine-bot: serving Slack at http://%s:%s/slack/events", host, port)
                logger.info("imagine-bot: readiness check at http://%s:%s/healthz", host, port)
                warm_start(services, config, readiness)  # /healthz says 503 "warming" until it is done
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
        if share is not None:
            share.stop()
        if abandoned:
            _exit_now(code)
        close()
        executor.shutdown(wait=False)


def start_index_share(config: Config, services: Services) -> IndexShareServer | None:
    """Let `search`, `info` and `ingest` reach the embedded index this process holds (None if it cannot)."""
    from retrieval.errors import RetrievalError

    share = build_index_share(config, services)
    if share is None:
        return None
    try:
        return share.start()
    except (RetrievalError, OSError) as exc:
        logger.warning("imagine-bot: CLI commands cannot share the index while serving: %s", exc)
        return None


def warm_start(services: Services, config: Config, readiness: Readiness) -> None:
    """Load the embedder, open the index, build the model clients and run one search, then mark ready.

    A failure is logged, not fatal: the first turn then pays for it, and /healthz names what is broken.
    """
    if config.warm_up:
        started = time.perf_counter()
        try:
            timings = services.conversation.warm_up()
        except Exception as exc:
            logger.warning("imagine-bot: warm start failed (%s); the first turn will be slower", exc)
        else:
            steps = ", ".join(f"{name} {ms:.0f} ms" for name, ms in timings.items())
            total = (time.perf_counter() - started) * 1000
            logger.warning("imagine-bot: warmed up in %.0f ms (%s)", total, steps)
    readiness.mark_ready()


def _exit_now(code: int) -> NoReturn:
    """Exit without waiting for turns still running (their jobs stay open for recovery to report)."""
    logging.shutdown()
    os._exit(code)
