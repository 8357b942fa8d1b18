"""Slack listeners by surface: slash commands, events, block actions, views and the Home tab."""

from __future__ import annotations

from slack_bolt import App

from bot.listeners import actions, commands, events, home, retry, settings, views
from bot.listeners.registry import Registered, Registrar
from bot.services import Services


def register_listeners(app: App, services: Services) -> Registered:
    """Register every listener of the app and return what was registered."""
    registrar = Registrar(app)
    commands.register(registrar, services)
    events.register(registrar, services)
    actions.register(registrar, services)
    views.register(registrar, services)
    retry.register(registrar, services)
    home.register(registrar, services)
    settings.register(registrar, services)
    return registrar.registered
