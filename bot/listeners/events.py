"""Events: a human reply in a thread the bot started refines it; an @-mention outside a thread starts one."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.flags import FlagError, parse_imagine
from bot.listeners.posting import ThreadTarget, post, run_turn, slack_error
from bot.listeners.registry import Registrar
from bot.ports import ThreadRef
from bot.services import Services
from bot.slack_ids import EVENT_APP_MENTION, EVENT_MESSAGE

MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")


def without_mentions(text: str) -> str:
    """The text with user mentions removed and whitespace folded."""
    return " ".join(MENTION.sub(" ", text).split())


def team_of(body: dict[str, Any], event: dict[str, Any]) -> str:
    """The workspace an event belongs to."""
    return str(body.get("team_id") or event.get("team") or "")


def is_human_reply(event: dict[str, Any]) -> bool:
    """True for a plain message a person posted as a reply in a thread (no bots, edits, joins)."""
    if event.get("subtype") or event.get("bot_id") or event.get("bot_profile") or not event.get("user"):
        return False
    thread_ts = event.get("thread_ts")
    return bool(thread_ts) and thread_ts != event.get("ts")


def refine_reply(services: Services, client: WebClient, body: dict[str, Any]) -> None:
    """Refine the thread the reply was posted in, when the bot started it."""
    event = body.get("event") or {}
    if not is_human_reply(event):
        return
    team, channel, thread_ts = team_of(body, event), str(event["channel"]), str(event["thread_ts"])
    thread = services.threads.find_thread_by_ref(ThreadRef(team, channel, thread_ts))
    instruction = without_mentions(str(event.get("text") or ""))
    if thread is None or not instruction:
        return
    conversation = services.conversation
    run_turn(
        client,
        services,
        ThreadTarget(channel, thread_ts),
        lambda: conversation.refine(team, thread.id, instruction),
    )


def start_from_mention(services: Services, client: WebClient, body: dict[str, Any]) -> None:
    """`@imagine <idea>` outside a thread: start a thread on the mention itself."""
    event = body.get("event") or {}
    if event.get("thread_ts") or event.get("subtype") or event.get("bot_id") or not event.get("user"):
        return  # replies in threads are handled by the message listener
    team, channel, ts = team_of(body, event), str(event["channel"]), str(event["ts"])
    user = str(event["user"])
    target = ThreadTarget(channel, ts)
    try:
        command = parse_imagine(without_mentions(str(event.get("text") or "")))
    except FlagError as exc:
        _reply(services, client, target, blocks.flag_error(str(exc)))
        return
    if not command.idea or command.help or command.idea.lower() == "help":
        _reply(services, client, target, blocks.help_message())
        return
    ref = ThreadRef(team, channel, ts)
    conversation = services.conversation
    if command.avatar:
        run_turn(client, services, target, lambda: conversation.brainstorm(ref, user, command.idea))
        return
    run_turn(
        client,
        services,
        target,
        lambda: conversation.start(ref, user, command.idea, command.options),
        show_hits=True,
    )


def _reply(services: Services, client: WebClient, target: ThreadTarget, payload: blocks.Message) -> None:
    """A reply in the mention's thread; a failure is only logged."""
    try:
        post(client, target, payload)
    except SlackApiError as exc:
        services.logger.warning("could not reply in %s: %s", target.channel, slack_error(exc))


def register(registrar: Registrar, services: Services) -> None:
    """Register the message and app_mention listeners."""

    def acknowledge(ack: Ack) -> None:
        ack()

    def on_message(body: dict[str, Any], client: WebClient) -> None:
        refine_reply(services, client, body)

    def on_mention(body: dict[str, Any], client: WebClient) -> None:
        start_from_mention(services, client, body)

    registrar.event(EVENT_MESSAGE, acknowledge, [on_message])
    registrar.event(EVENT_APP_MENTION, acknowledge, [on_mention])
