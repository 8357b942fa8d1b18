"""Slash commands `/imagine` and `/avatar`: ack at once, then post the thread and run the engine lazily."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.blocks import Message
from bot.flags import FlagError, ImagineCommand, parse_imagine
from bot.listeners.posting import CANT_POST, ThreadTarget, run_turn, slack_error
from bot.listeners.registry import Registrar
from bot.ports import ThreadRef
from bot.services import Services
from bot.slack_ids import COMMAND_AVATAR, COMMAND_IMAGINE
from bot.turns import TurnOptions, TurnResult

SETTINGS_LATER = "Channel settings are not available yet; use flags such as `--ar 3:2` for now."


def immediate_reply(text: str) -> Message | None:
    """The ephemeral the ack carries (help, a flag error), or None when the command goes ahead."""
    try:
        command = parse_imagine(text)
    except FlagError as exc:
        return blocks.flag_error(str(exc))
    if command.settings:
        return blocks.message([blocks.section(SETTINGS_LATER)])
    if command.help or not command.idea or command.idea.lower() == "help":
        return blocks.help_message()
    return None


def options_summary(options: TurnOptions) -> str:
    """The flags in effect, shown under the thread root."""
    parts = [f"--ar {options.aspect_ratio}"] if options.aspect_ratio else []
    parts += [f"--seed {options.seed}"] if options.seed is not None else []
    parts += [f"--no {', '.join(options.negative)}"] if options.negative else []
    parts += [f"--style {options.style}"] if options.style else []
    parts += [f"--n {options.count}"] if options.count > 1 else []
    return " ".join(parts)


def start_thread(
    services: Services,
    client: WebClient,
    respond: Respond,
    team_id: str,
    channel: str,
    user: str,
    command: ImagineCommand,
    avatar: bool,
) -> TurnResult | None:
    """Post the thread root (or tell the user why not), then start or brainstorm in its thread."""
    root = blocks.thread_root(command.idea, user, options_summary(command.options))
    try:
        posted = client.chat_postMessage(channel=channel, text=root["text"], blocks=root["blocks"])
    except SlackApiError as exc:
        code = slack_error(exc)
        services.logger.info("cannot post in %s: %s", channel, code)
        if code in CANT_POST:
            reply = blocks.not_in_channel(channel, services.bot_name)
        else:
            reply = blocks.error_message(f"I couldn't post in this channel (Slack said {code}).")
        respond(text=reply["text"], blocks=reply["blocks"], response_type="ephemeral")
        return None
    target = ThreadTarget(channel, str(posted["ts"]))
    ref = ThreadRef(team_id, channel, target.thread_ts)
    conversation = services.conversation
    if avatar:
        return run_turn(client, services, target, lambda: conversation.brainstorm(ref, user, command.idea))
    return run_turn(
        client,
        services,
        target,
        lambda: conversation.start(ref, user, command.idea, command.options),
        show_hits=True,
    )


def register(registrar: Registrar, services: Services) -> None:
    """Register `/imagine` and `/avatar`."""

    def acknowledge(ack: Ack, command: dict[str, Any]) -> None:
        reply = immediate_reply(str(command.get("text") or ""))
        if reply is None:
            ack()
        else:
            ack(text=reply["text"], blocks=reply["blocks"], response_type="ephemeral")

    def imagine(command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        name, text = str(command.get("command")), str(command.get("text") or "")
        if immediate_reply(text) is not None:
            return
        parsed = parse_imagine(text)
        avatar = parsed.avatar or name == COMMAND_AVATAR
        team, channel, user = str(command["team_id"]), str(command["channel_id"]), str(command["user_id"])
        start_thread(services, client, respond, team, channel, user, parsed, avatar)

    for name in (COMMAND_IMAGINE, COMMAND_AVATAR):
        registrar.command(name, acknowledge, [imagine])
