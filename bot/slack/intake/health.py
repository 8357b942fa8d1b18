"""`GET /healthz`: a WSGI wrapper answering a readiness check (database and index) before Slack routing.

The body is small JSON, e.g. `{"ok": true, "database": "ok", "index": "ok", "elapsed_ms": 3}`; a failed
check makes it 503 with the check named and only the error's class (no messages, which may carry URLs
or paths, and no stack traces): `{"ok": false, "database": "ok", "index": "unavailable", ...}`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
OK = "ok"
Check = Callable[[], object]  # raises when the dependency is not usable
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# retrieval errors named by what they mean; anything else is reported as "error (ClassName)"
_KNOWN_FAILURES = {
    "IndexMissingError": "missing",
    "IndexUnavailableError": "unavailable",
    "IndexMismatchError": "mismatch",
    "OperationalError": "unavailable",
    "TimeoutError": "timeout",
    "WarmingUp": "warming",
}


class WarmingUp(Exception):
    """serve has not finished its warm start yet."""


class Readiness:
    """Ready once serve's warm start is done; until then the "ready" check fails with "warming"."""

    def __init__(self) -> None:
        self._ready = threading.Event()

    def mark_ready(self) -> None:
        """The warm start is done: /healthz may say ok."""
        self._ready.set()

    def check(self) -> None:
        """Raise WarmingUp while not ready."""
        if not self._ready.is_set():
            raise WarmingUp("warming up")


@dataclass(frozen=True)
class HealthReport:
    """The result of every check: "ok" or a short failure word per check name."""

    checks: dict[str, str]
    elapsed_ms: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(result == OK for result in self.checks.values())

    def as_json(self) -> dict[str, Any]:
        """The response body."""
        return {"ok": self.ok, **self.checks, "elapsed_ms": self.elapsed_ms, **self.extra}


def failure_word(exc: BaseException) -> str:
    """A short, secret-free description of a failed check."""
    name = type(exc).__name__
    return _KNOWN_FAILURES.get(name, f"error ({name})")


def run_checks(checks: Mapping[str, Check]) -> HealthReport:
    """Run each check in order, catching every failure (logged at WARNING, without a traceback)."""
    started = time.perf_counter()
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:
            results[name] = failure_word(exc)
            logger.warning("health check %s failed: %s", name, type(exc).__name__)
        else:
            results[name] = OK
    return HealthReport(results, int((time.perf_counter() - started) * 1000))


class HealthRoute:
    """Answers GET/HEAD `/healthz` from `health()`; every other request goes to `inner`."""

    def __init__(self, inner: WsgiApp, health: Callable[[], HealthReport]) -> None:
        self._inner = inner
        self._health = health

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Route one request."""
        if environ.get("PATH_INFO") != HEALTH_PATH:
            return self._inner(environ, start_response)
        method = environ.get("REQUEST_METHOD")
        if method not in ("GET", "HEAD"):
            return _respond(start_response, "405 Method Not Allowed", {"ok": False, "error": "use GET"})
        try:
            report = self._health()
        except Exception as exc:  # a broken health function is itself a failure, still without details
            logger.warning("the health check failed: %s", type(exc).__name__)
            report = HealthReport({"health": failure_word(exc)})
        status = "200 OK" if report.ok else "503 Service Unavailable"
        return _respond(start_response, status, report.as_json(), head=method == "HEAD")


def _respond(
    start_response: StartResponse, status: str, body: dict[str, Any], *, head: bool = False
) -> list[bytes]:
    data = json.dumps(body, sort_keys=True).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [] if head else [data]
