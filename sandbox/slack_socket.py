"""FakeSlackSocket: Slack's Socket Mode on ws://127.0.0.1:<free port>, and a driver that plays Slack over it.

Wire format as Slack's: `hello` on connect, envelopes {envelope_id, type, payload, accepts_response_payload
(+ retry_attempt, retry_reason for events_api)}, acks {envelope_id, payload?}, and `disconnect` to refresh.
URLs come from FakeSlackApi's apps.connections.open; `websockets` (dev extra) is imported on start().
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

from sandbox.slack_api import FakeSlackApi
from sandbox.slack_driver import Delivery, DriverResponse, SlackDriver
from sandbox.slack_models import APP_ID, DEFAULT_TEAM_ID, Json

if TYPE_CHECKING:
    from websockets.http11 import Request, Response
    from websockets.sync.server import Server, ServerConnection

logger = logging.getLogger(__name__)

EnvelopeType = Literal["events_api", "slash_commands", "interactive"]
DEBUG_HOST = "applink-sandbox-1"  # debug_info.host in hello and disconnect messages
ACK_DEADLINE = 3.0  # seconds Slack waits for an ack


@dataclass(frozen=True)
class Ack:
    """An acknowledgement from the app: the envelope it answers, its payload, its connection and time."""

    envelope_id: str
    payload: Json | None
    connection: int
    at: float  # time.monotonic()


@dataclass(frozen=True)
class Envelope:
    """One envelope sent to the app: the whole message and the connection it went out on."""

    envelope_id: str
    type: str
    message: Json
    connection: int
    at: float  # time.monotonic()


@dataclass(frozen=True)
class SocketConnection:
    """A snapshot of one connection: open (hello sent, not closed), asked to refresh, its acks."""

    number: int
    open: bool
    refreshing: bool
    acks: tuple[Ack, ...]


@dataclass
class _Link:
    """The live state of one connection (read and changed under the server's lock)."""

    number: int
    socket: ServerConnection
    ready: bool = False
    refreshing: bool = False
    closed: bool = False
    acks: list[Ack] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)


class FakeSlackSocket:
    """Socket Mode server on 127.0.0.1: one-time tickets, hello, envelopes, acks per connection, refresh."""

    def __init__(self, host: str = "127.0.0.1", app_id: str = APP_ID) -> None:
        """Remember where to bind; nothing is bound until `start()`."""
        self._host = host
        self._app_id = app_id
        self._lock = threading.Condition()
        self._tickets: set[str] = set()
        self._links: dict[int, _Link] = {}
        self._numbers = itertools.count(1)
        self._turn = 0
        self._envelopes: list[Envelope] = []
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> Self:
        """Bind a free port and accept connections in a daemon thread."""
        if self._server is not None:
            return self
        try:
            from websockets.sync.server import serve
        except ImportError as error:  # the runtime package does not depend on websockets
            raise RuntimeError("FakeSlackSocket needs `websockets` (pip install -e '.[dev]')") from error
        self._server = serve(
            self._serve,
            self._host,
            0,
            process_request=self._admit,
            compression=None,
            close_timeout=1,
            logger=logging.getLogger(f"{__name__}.server"),
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-slack-socket", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every connection (1001 going away), stop serving and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        with self._lock:
            sockets = [link.socket for link in self._links.values() if not link.closed]
        for socket in sockets:
            socket.close(1001, "server stopping")
        server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        """Start on entering the context."""
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop on leaving the context."""
        self.stop()

    @property
    def url(self) -> str:
        """ws://HOST:PORT of the running server."""
        if self._server is None:
            raise RuntimeError("FakeSlackSocket is not started")
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}"

    def issue_url(self) -> str:
        """A WebSocket URL with a fresh one-time ticket (what apps.connections.open returns)."""
        ticket = uuid.uuid4().hex
        with self._lock:
            self._tickets.add(ticket)
        return f"{self.url}/link/?ticket={ticket}&app_id={self._app_id}"

    # what the app sees -----------------------------------------------------------------------------------
    def deliver(
        self,
        kind: EnvelopeType,
        payload: Json,
        *,
        connection: int | None = None,
        envelope_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> Envelope:
        """Send an envelope on `connection` (default: the next open one, round-robin) and return it."""
        message: Json = {
            "envelope_id": envelope_id or str(uuid.uuid4()),
            "payload": payload,
            "type": kind,
            "accepts_response_payload": _accepts_response_payload(kind, payload),
        }
        if kind == "events_api":
            message.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        with self._lock:
            link = self._pick(connection)
        envelope = Envelope(message["envelope_id"], kind, message, link.number, time.monotonic())
        link.socket.send(json.dumps(message))
        with self._lock:
            self._envelopes.append(envelope)
        logger.debug("fake slack socket: %s %s on #%d", kind, envelope.envelope_id, link.number)
        return envelope

    def request_refresh(self, connection: int, reason: str = "refresh_requested") -> None:
        """Send `disconnect` on a connection, as Slack does before recycling it; it gets no new envelopes."""
        with self._lock:
            link = self._links[connection]
            link.refreshing = True
        link.socket.send(
            json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": DEBUG_HOST}})
        )

    # recorded state --------------------------------------------------------------------------------------
    def connections(self) -> list[SocketConnection]:
        """Every connection so far, oldest first."""
        with self._lock:
            return [
                SocketConnection(n, link.ready and not link.closed, link.refreshing, tuple(link.acks))
                for n, link in sorted(self._links.items())
            ]

    def live(self) -> list[int]:
        """Numbers of the open connections that get new envelopes (hello sent, not asked to refresh)."""
        return [c.number for c in self.connections() if c.open and not c.refreshing]

    def envelopes(self) -> list[Envelope]:
        """Every envelope sent, oldest first."""
        with self._lock:
            return list(self._envelopes)

    def acks(self, connection: int | None = None) -> list[Ack]:
        """Acks received on one connection or on all, in arrival order per connection."""
        with self._lock:
            links = [self._links[connection]] if connection is not None else list(self._links.values())
            return [ack for link in links for ack in link.acks]

    def stray_messages(self) -> list[str]:
        """Messages from the app that were no ack (a client bug if any)."""
        with self._lock:
            return [text for link in self._links.values() for text in link.stray]

    def wait_ack(self, envelope_id: str, timeout: float = ACK_DEADLINE) -> Ack | None:
        """The ack of an envelope, waiting up to `timeout` seconds for it (None if it never came)."""

        def found() -> Ack | None:
            return next(
                (a for link in self._links.values() for a in link.acks if a.envelope_id == envelope_id), None
            )

        with self._lock:
            self._lock.wait_for(lambda: found() is not None, timeout)
            return found()

    # WebSocket -------------------------------------------------------------------------------------------
    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """Accept only /link/ with an unused ticket (the handshake of anything else gets 401)."""
        target = urlsplit(request.path)
        ticket = parse_qs(target.query).get("ticket", [""])[0]
        with self._lock:
            if target.path.rstrip("/") != "/link" or ticket not in self._tickets:
                logger.info("fake slack socket: refused %s", target.path)
                return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid or used ticket\n")
            self._tickets.discard(ticket)
        return None

    def _serve(self, socket: ServerConnection) -> None:
        """One connection: hello, then record what the app sends until it goes away."""
        from websockets.exceptions import ConnectionClosed

        with self._lock:
            link = _Link(next(self._numbers), socket)
            self._links[link.number] = link
            count = sum(1 for other in self._links.values() if not other.closed)
        try:
            socket.send(json.dumps(self._hello(count)))
            with self._lock:
                link.ready = True
                self._lock.notify_all()
            for raw in socket:
                self._received(link, raw if isinstance(raw, str) else raw.decode("utf-8", "replace"))
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                link.closed = True
                self._lock.notify_all()
            logger.debug("fake slack socket: #%d closed", link.number)

    def _hello(self, count: int) -> Json:
        """The first message on every connection."""
        debug = {"host": DEBUG_HOST, "build_number": 1, "approximate_connection_time": 18060}
        info = {"app_id": self._app_id}
        return {"type": "hello", "num_connections": count, "debug_info": debug, "connection_info": info}

    def _received(self, link: _Link, raw: str) -> None:
        """Record an ack (or, for anything else, a stray message)."""
        try:
            message: Any = json.loads(raw)
        except ValueError:
            message = None
        with self._lock:
            if isinstance(message, dict) and message.get("envelope_id"):
                payload = message["payload"] if isinstance(message.get("payload"), dict) else None
                link.acks.append(Ack(str(message["envelope_id"]), payload, link.number, time.monotonic()))
                self._lock.notify_all()
                return
            link.stray.append(raw)
        logger.warning("fake slack socket: #%d sent a message that is no ack: %.200s", link.number, raw)

    def _pick(self, connection: int | None) -> _Link:
        """The requested open connection, or the next live one round-robin (lock held)."""
        if connection is not None:
            link = self._links.get(connection)
            if link is None or not link.ready or link.closed:
                raise LookupError(f"Socket Mode connection #{connection} is not open")
            return link
        live = [
            link
            for _, link in sorted(self._links.items())
            if link.ready and not (link.closed or link.refreshing)
        ]
        if not live:
            raise LookupError("no open Socket Mode connection")
        self._turn += 1
        return live[(self._turn - 1) % len(live)]


def _accepts_response_payload(kind: EnvelopeType, payload: Json) -> bool:
    """Whether the ack may carry a payload: slash commands, options loads and view submissions."""
    if kind == "slash_commands":
        return True
    return kind == "interactive" and payload.get("type") in ("block_suggestion", "view_submission")


class SocketModeDriver(SlackDriver):
    """SlackDriver's people and payloads, sent as Socket Mode envelopes; each answer is the envelope's ack."""

    def __init__(
        self,
        socket: FakeSlackSocket,
        api: FakeSlackApi,
        team_id: str = DEFAULT_TEAM_ID,
        *,
        connection: int | None = None,
        timeout: float = ACK_DEADLINE,
    ) -> None:
        """Deliver on `connection` (default: round-robin over the live ones), waiting `timeout` s for acks."""
        super().__init__(socket.url, "", api, team_id, timeout=timeout)
        self.socket = socket
        self.connection = connection
        self._sent_lock = threading.Lock()
        self._sent: list[Delivery] = []

    def on(self, connection: int) -> SocketModeDriver:
        """A driver that delivers on one connection (shares recordings with this one)."""
        twin = copy.copy(self)
        twin.connection = connection
        return twin

    @property
    def deliveries(self) -> list[Delivery]:
        """Every envelope sent so far with the ack's status (200, or 504 when none came) and payload."""
        with self._sent_lock:
            return list(self._sent)

    def post(
        self, kind: str, payload: Json, body: str, content_type: str, extra: dict[str, str]
    ) -> DriverResponse:
        """Deliver the payload in an envelope and wait for its ack (the signed body is not used)."""
        retry = int(extra.get("X-Slack-Retry-Num", "0"))
        envelope = self.socket.deliver(
            _envelope_type(kind),
            payload,
            connection=self.connection,
            retry_attempt=retry,
            retry_reason=extra.get("X-Slack-Retry-Reason", "") if retry else "",
        )
        ack = self.socket.wait_ack(envelope.envelope_id, self.timeout)
        if ack is None:
            response = DriverResponse(504, f"no ack within {self.timeout:g} s")
        else:
            response = DriverResponse(200, json.dumps(ack.payload) if ack.payload is not None else "")
        with self._sent_lock:
            self._sent.append(Delivery(kind, payload, response.status, response.body))
        return response

    def post_raw(
        self,
        body: str | bytes,
        content_type: str = "application/json",
        *,
        signed: bool = True,
        headers: dict[str, str] | None = None,
        kind: str = "raw",
    ) -> DriverResponse:
        """Socket Mode carries JSON envelopes only: raw HTTP bodies cannot be sent."""
        raise NotImplementedError("Socket Mode has no raw HTTP requests; use FakeSlackSocket.deliver")


def _envelope_type(kind: str) -> EnvelopeType:
    """The envelope type of a driver delivery kind ("command:/imagine", "event:message", "block_actions")."""
    if kind.startswith("command:"):
        return "slash_commands"
    if kind.startswith("event:"):
        return "events_api"
    if kind == "url_verification":
        raise ValueError("Socket Mode apps get no url_verification")
    return "interactive"
