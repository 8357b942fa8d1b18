"""Socket Mode over several connections: one SocketModeHandler per connection, all on the one Bolt app.

Slack lets an app hold up to 10 Socket Mode connections and spreads envelopes over them, so while one
connection is being refreshed (Slack's periodic `disconnect`) the others keep taking events. An envelope
Slack re-delivers on another connection reaches the same app, whose processed-ids ledger
(bot.slack.handlers.thread_start.first_delivery) lets it through once.
"""

from __future__ import annotations

import argparse
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bot.config import ConfigError
from bot.engine.turn_errors import UpstreamError
from bot.scheduling.drain import DrainingExecutor, StopSignals, drain_turns

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_bolt.adapter.socket_mode import SocketModeHandler

logger = logging.getLogger(__name__)

MAX_CONNECTIONS = 10  # Slack's limit per app
DEFAULT_CONNECTIONS = 2
PING_INTERVAL = 10.0  # seconds between the client's pings (Bolt's default)
_TOKEN_ERRORS = ("not_authed", "invalid_auth", "not_allowed_token_type", "token_revoked", "token_expired")


def connection_count(value: str) -> int:
    """argparse type of --connections: a whole number from 1 to MAX_CONNECTIONS."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if not 1 <= number <= MAX_CONNECTIONS:
        raise argparse.ArgumentTypeError(
            f"must be from 1 to {MAX_CONNECTIONS} (Slack allows at most {MAX_CONNECTIONS} Socket Mode "
            f"connections per app), got {number}"
        )
    return number


class SocketModeConnections:
    """N Socket Mode connections to Slack, each with its own SocketModeClient, sharing one Bolt app."""

    def __init__(self, app: App, app_token: str, count: int, *, ping_interval: float = PING_INTERVAL) -> None:
        """Build the handlers (nothing connects until `connect()`)."""
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        if not 1 <= count <= MAX_CONNECTIONS:
            raise ValueError(f"Socket Mode connections must be from 1 to {MAX_CONNECTIONS}, got {count}")
        self.handlers: list[SocketModeHandler] = [
            SocketModeHandler(
                app, app_token, logger=logging.getLogger(f"{__name__}.{n}"), ping_interval=ping_interval
            )
            for n in range(1, count + 1)
        ]

    def connect(self) -> None:
        """Open every connection, each on its own apps.connections.open URL; on failure close them all."""
        try:
            for number, handler in enumerate(self.handlers, 1):
                handler.connect()  # type: ignore[no-untyped-call]
                if not handler.client.is_connected():  # its client keeps retrying every ping interval
                    logger.warning("Socket Mode connection %d/%d is not up yet", number, len(self.handlers))
        except SlackApiError as error:
            self.close()
            code = str(error.response.get("error") or error)
            if code in _TOKEN_ERRORS:
                raise ConfigError(
                    f"Slack refused SLACK_APP_TOKEN at apps.connections.open ({code})"
                ) from None
            raise UpstreamError(
                f"could not open a Socket Mode connection (apps.connections.open: {code})"
            ) from None
        except BaseException:
            self.close()
            raise

    def connected(self) -> int:
        """How many connections are up right now."""
        return sum(1 for handler in self.handlers if handler.client.is_connected())

    def close(self) -> None:
        """Close every connection at once (each client takes up to a second to stop its threads)."""
        with ThreadPoolExecutor(len(self.handlers), thread_name_prefix="socket-mode-close") as pool:
            list(pool.map(_close, self.handlers))


def _close(handler: SocketModeHandler) -> None:
    """Close one handler; a failure is logged, so that the others still close."""
    try:
        handler.close()  # type: ignore[no-untyped-call]
    except Exception:
        logger.warning("could not close a Socket Mode connection cleanly", exc_info=True)


def run_socket_mode(
    app: App,
    app_token: str,
    count: int,
    signals: StopSignals,
    executor: DrainingExecutor,
    drain_s: float,
) -> int:
    """Open `count` connections, serve until a stop signal, close them all, then drain running turns.

    Returns how many turns were still running when the drain gave up (0: all finished).
    """
    connections = SocketModeConnections(app, app_token, count)
    connections.connect()
    logger.info(
        "imagine-bot: connected to Slack in Socket Mode (%d of %d connections up)",
        connections.connected(),
        count,
    )
    try:
        signals.wait()
        logger.warning("imagine-bot: %s; closing %d Socket Mode connections", signals.reason(), count)
    finally:
        connections.close()
    return drain_turns(executor, drain_s, signals)
