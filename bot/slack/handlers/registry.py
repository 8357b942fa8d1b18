"""What the app registers with Bolt (commands, events, actions, views), recorded for the manifest check."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_bolt import App

Listener = Callable[..., Any]


@dataclass
class Registered:
    """The names registered so far, in registration order."""

    commands: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)


@dataclass
class Registrar:
    """Registers ack + lazy listeners on a Bolt app and records each name."""

    app: App
    registered: Registered = field(default_factory=Registered)

    def command(self, name: str, ack: Listener, lazy: Sequence[Listener]) -> None:
        """A slash command."""
        self.app.command(name)(ack=ack, lazy=list(lazy))
        self.registered.commands.append(name)

    def event(self, name: str, ack: Listener, lazy: Sequence[Listener]) -> None:
        """An Events API event type."""
        self.app.event(name)(ack=ack, lazy=list(lazy))
        self.registered.events.append(name)

    def action(self, action_id: str, ack: Listener, lazy: Sequence[Listener] = ()) -> None:
        """A block action by action_id."""
        self.app.action(action_id)(ack=ack, lazy=list(lazy))
        self.registered.actions.append(action_id)

    def view(self, callback_id: str, ack: Listener, lazy: Sequence[Listener] = ()) -> None:
        """A view_submission by callback_id."""
        self.app.view(callback_id)(ack=ack, lazy=list(lazy))
        self.registered.views.append(callback_id)
