"""Slack listeners by surface: slash commands, events and block actions."""

from __future__ import annotations

from slack_bolt import App

from bot.listeners import actions, commands, events
from bot.services import Services


def register_listeners(app: App, services: Services) -> None:
    """Register every listener of the app."""
    commands.register(app, services)
    events.register(app, services)
    actions.register(app, services)
