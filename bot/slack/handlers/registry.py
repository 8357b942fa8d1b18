"""What the app registers with Bolt (commands, events, actions, views), recorded for the manifest check.

Each registration is an ack listener (answered on the request thread) and lazy listeners (the slow work).
On Lambda the lazy listeners are Bolt's (it re-invokes the function for each); a long-running server
gives `turns`, an executor, and the ack listener submits them there itself once it has acked: Bolt's own
lazy start re-parses and deep-copies the whole request on the request thread (~0.6 ms of each ~1.1 ms
ack, profiled), time every other ack of a burst waits for.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from slack_bolt import App, Args

Listener = Callable[..., Any]
logger = logging.getLogger(__name__)
ARG_NAMES = frozenset(inspect.signature(Args.__init__).parameters) - {"self", "next", "kwargs"}


def _argument_names(listener: Listener) -> list[str]:
    """The arguments a listener takes, found as Bolt finds them; each must be one Bolt can give."""
    names = list(inspect.getfullargspec(inspect.unwrap(listener)).args)
    unknown = [name for name in names if name not in ARG_NAMES]
    if unknown:
        raise ValueError(
            f"{getattr(listener, '__qualname__', listener)} takes {unknown}, which Bolt does not give"
        )
    return names


def _run_logged(listener: Listener, kwargs: dict[str, Any]) -> None:
    """One lazy listener; a failure is logged (as Bolt's lazy runner does), never raised into the pool."""
    try:
        listener(**kwargs)
    except Exception:
        logger.exception("lazy listener %s failed", getattr(listener, "__qualname__", listener))


def ack_then_submit(ack: Listener, lazy: Sequence[Listener], turns: Executor) -> Listener:
    """An ack listener that runs `ack`, then submits each lazy listener to `turns` with its arguments."""
    wanted = [(listener, _argument_names(listener)) for listener in lazy]
    ack_names = _argument_names(ack)

    def acknowledge_then_start(args: Args) -> None:
        ack(**{name: getattr(args, name) for name in ack_names})
        for listener, names in wanted:
            turns.submit(_run_logged, listener, {name: getattr(args, name) for name in names})

    acknowledge_then_start.__qualname__ = f"ack_then_submit({getattr(ack, '__qualname__', ack)})"
    return acknowledge_then_start


@dataclass
class Registered:
    """The names registered so far, in registration order."""

    commands: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)


@dataclass
class Registrar:
    """Registers ack + lazy listeners on a Bolt app and records each name.

    `turns`: where the lazy listeners run, submitted by the ack listener; None: as Bolt's lazy listeners."""

    app: App
    turns: Executor | None = None
    registered: Registered = field(default_factory=Registered)

    def _listeners(self, ack: Listener, lazy: Sequence[Listener]) -> dict[str, Any]:
        """Bolt's keyword arguments for one registration."""
        if self.turns is None or not lazy:
            return {"ack": ack, "lazy": list(lazy)}
        return {"ack": ack_then_submit(ack, lazy, self.turns), "lazy": []}

    def command(self, name: str, ack: Listener, lazy: Sequence[Listener]) -> None:
        """A slash command."""
        self.app.command(name)(**self._listeners(ack, lazy))
        self.registered.commands.append(name)

    def event(self, name: str, ack: Listener, lazy: Sequence[Listener]) -> None:
        """An Events API event type."""
        self.app.event(name)(**self._listeners(ack, lazy))
        self.registered.events.append(name)

    def action(self, action_id: str, ack: Listener, lazy: Sequence[Listener] = ()) -> None:
        """A block action by action_id."""
        self.app.action(action_id)(**self._listeners(ack, lazy))
        self.registered.actions.append(action_id)

    def view(self, callback_id: str, ack: Listener, lazy: Sequence[Listener] = ()) -> None:
        """A view_submission by callback_id."""
        self.app.view(callback_id)(**self._listeners(ack, lazy))
        self.registered.views.append(callback_id)
