"""Slash commands `/imagine` and `/avatar`: ack at once, then post the thread and run the engine lazily."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.engine.options import ImagineCommand, OptionError, parse_imagine
from bot.engine.ports import ThreadRef
from bot.engine.turn_errors import RefusedError
from bot.engine.turns import TurnResult
from bot.scheduling.fair_use import QueueFullError, QuotaReachedError
from bot.slack.handlers.channel_defaults import open_channel_settings
from bot.slack.handlers.registry import Registrar
from bot.slack.handlers.thread_start import begin, first_delivery, options_summary, team_of
from bot.slack.ids import COMMAND_AVATAR, COMMAND_IMAGINE
from bot.slack.reply import message_blocks
from bot.slack.reply.message_blocks import Message
from bot.slack.reply.thread_posting import CANT_POST, ThreadTarget, slack_error
from bot.slack.services import Services


def immediate_reply(text: str, avatar: bool = False) -> Message | None:
    """The ephemeral the ack carries (help, an option error), or None when the command goes ahead."""
    try:
        command = parse_imagine(text, avatar)
    except OptionError as exc:
        return message_blocks.option_error(str(exc))
    if command.defaults:
        return None
    if command.help or not command.idea or command.idea.lower() == "help":
        return message_blocks.help_message()
    return None


def start_thread(
    services: Services,
    client: WebClient,
    respond: Respond,
    team_id: str,
    channel: str,
    user: str,
    command: ImagineCommand,
) -> TurnResult | None:
    """Post the thread root (or tell the user why not), then start or brainstorm in its thread."""
    images = max(1, command.options.count)
    try:
        services.conversation.screen(team_id, command.idea)  # never post a refused idea in the channel
        services.fair_use.check_admission(team_id, user, images)
    except (QueueFullError, QuotaReachedError, RefusedError) as exc:
        notice = message_blocks.quota_reached(exc.limit) if isinstance(exc, QuotaReachedError) else None
        notice = notice or message_blocks.error_message(str(exc))
        respond(text=notice["text"], blocks=notice["blocks"], response_type="ephemeral")
        return None
    root = message_blocks.thread_root(command.idea, user, options_summary(command.options, command.model))
    try:
        posted = client.chat_postMessage(channel=channel, text=root["text"], blocks=root["blocks"])
    except SlackApiError as exc:
        code = slack_error(exc)
        services.logger.info("cannot post in %s: %s", channel, code)
        if code in CANT_POST:
            reply = message_blocks.not_in_channel(channel, services.bot_name)
        else:
            reply = message_blocks.error_message(f"I couldn't post in this channel (Slack said {code}).")
        respond(text=reply["text"], blocks=reply["blocks"], response_type="ephemeral")
        return None
    target = ThreadTarget(channel, str(posted["ts"]))
    return begin(services, client, target, ThreadRef(team_id, channel, target.thread_ts), user, command)


def register(registrar: Registrar, services: Services) -> None:
    """Register `/imagine` and `/avatar`."""

    def acknowledge(ack: Ack, command: dict[str, Any]) -> None:
        reply = immediate_reply(str(command.get("text") or ""), command.get("command") == COMMAND_AVATAR)
        if reply is None:
            ack()
        else:
            ack(text=reply["text"], blocks=reply["blocks"], response_type="ephemeral")

    def imagine(body: dict[str, Any], command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        name, text = str(command.get("command")), str(command.get("text") or "")
        if immediate_reply(text, name == COMMAND_AVATAR) is not None:
            return
        team = team_of(body)
        channel, user = str(command.get("channel_id") or ""), str(command.get("user_id") or "")
        trigger = str(body.get("trigger_id") or "")
        if not channel or not user or not first_delivery(services, team, trigger, "command"):
            return
        parsed = parse_imagine(text, avatar=name == COMMAND_AVATAR)
        if parsed.defaults:
            open_channel_settings(services, client, trigger, team, channel, user)
            return
        start_thread(services, client, respond, team, channel, user, parsed)

    for name in (COMMAND_IMAGINE, COMMAND_AVATAR):
        registrar.command(name, acknowledge, [imagine])
