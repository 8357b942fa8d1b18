"""Slack handlers by surface: slash commands, messages, buttons, modals, the Home tab and channel defaults."""

from __future__ import annotations

from concurrent.futures import Executor

from slack_bolt import App

from bot.slack.handlers import (
    buttons,
    channel_defaults,
    home,
    messages,
    modals,
    retry_button,
    slash_commands,
)
from bot.slack.handlers.registry import Registered, Registrar
from bot.slack.services import Services


def register_listeners(app: App, services: Services, turns: Executor | None = None) -> Registered:
    """Register every listener of the app and return what was registered (`turns`: see Registrar)."""
    registrar = Registrar(app, turns)
    slash_commands.register(registrar, services)
    messages.register(registrar, services)
    buttons.register(registrar, services)
    modals.register(registrar, services)
    retry_button.register(registrar, services)
    home.register(registrar, services)
    channel_defaults.register(registrar, services)
    return registrar.registered
