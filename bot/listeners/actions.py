"""Buttons under hits and results: Use #n, Re-roll and Variations run the engine lazily in the thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack
from slack_sdk import WebClient

from bot.blocks_modals import parse_action_value
from bot.errors import BotError
from bot.listeners.posting import ThreadTarget, run_turn
from bot.listeners.registry import Registrar
from bot.services import Services
from bot.slack_ids import ACTION_REROLL, ACTION_USE_HIT, ACTION_VARY
from bot.turns import TurnResult


def clicked_thread(body: dict[str, Any]) -> ThreadTarget | None:
    """The channel and thread of the message whose button was clicked."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    thread_ts = container.get("thread_ts") or message.get("thread_ts") or container.get("message_ts")
    return ThreadTarget(str(channel), str(thread_ts)) if channel and thread_ts else None


def operation_for(services: Services, action_id: str, team_id: str, value: str) -> Callable[[], TurnResult]:
    """The engine call a button stands for; BotError for a malformed value."""
    try:
        thread_id, number = parse_action_value(value)
    except ValueError as exc:
        raise BotError("that button is out of date; run /imagine again") from exc
    conversation = services.conversation
    if action_id == ACTION_USE_HIT:
        if number is None:
            raise BotError("that button does not say which library prompt to use")
        return lambda: conversation.use_hit(team_id, thread_id, number)
    if action_id == ACTION_VARY:
        return lambda: conversation.vary(team_id, thread_id)
    return lambda: conversation.reroll(team_id, thread_id)


def run_action(services: Services, client: WebClient, body: dict[str, Any]) -> None:
    """Run the clicked button's operation and post its result in the clicked message's thread."""
    target = clicked_thread(body)
    actions = body.get("actions") or []
    if target is None or not actions:
        services.logger.warning("a button click without a message or action")
        return
    action = actions[0]
    team_id = str((body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id") or "")

    def operation() -> TurnResult:
        return operation_for(services, str(action.get("action_id")), team_id, str(action.get("value")))()

    run_turn(client, services, target, operation, show_hits=False)


def register(registrar: Registrar, services: Services) -> None:
    """Register the Use #n, Re-roll and Variations buttons."""

    def acknowledge(ack: Ack) -> None:
        ack()

    def on_click(body: dict[str, Any], client: WebClient) -> None:
        run_action(services, client, body)

    for action_id in (ACTION_USE_HIT, ACTION_REROLL, ACTION_VARY):
        registrar.action(action_id, acknowledge, [on_click])
