"""The Retry button under a failed turn: its value says what to run again in that thread."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.engine.options import OptionError, parse_imagine
from bot.engine.ports import ThreadRecord, ThreadRef
from bot.engine.turns import FOLLOW_UP_IMAGES
from bot.slack.handlers.buttons import ICON_IMAGES, Click
from bot.slack.handlers.registry import Registrar
from bot.slack.handlers.thread_start import begin, first_delivery
from bot.slack.ids import ACTION_RETRY
from bot.slack.reply import message_blocks
from bot.slack.reply.thread_posting import Operation, Requester, run_turn, slack_error, tell_user
from bot.slack.services import Services

OUT_OF_DATE = "That Retry button is out of date; reply in the thread or run /imagine again."


def thread_operation(
    services: Services, team: str, user: str, thread: ThreadRecord, spec: dict[str, Any]
) -> Operation | None:
    """The engine call a stored retry spec stands for, or None for an unknown one."""
    conversation, op = services.conversation, spec.get("op")
    text, number = str(spec.get("text") or ""), spec.get("n")
    negative = str(spec.get("negative") or "")

    def defaults() -> Any:
        return services.defaults.effective_defaults(team, thread.ref.channel_id, user)

    if op == "refine" and text:
        return lambda _: conversation.refine(team, thread.id, text, defaults())
    if op == "use_hit" and isinstance(number, int):
        return lambda _: conversation.use_hit(team, thread.id, number, defaults())
    if op == "pick" and isinstance(number, int):
        return lambda _: conversation.pick(team, thread.id, number, defaults())
    if op == "vary":
        return lambda _: conversation.vary(team, thread.id, defaults())
    if op == "reroll":
        return lambda _: conversation.reroll(team, thread.id, defaults())
    if op == "edit" and text:
        return lambda _: conversation.edit(team, thread.id, text, negative or None, defaults())
    if op == "upscale" and isinstance(number, int):
        return lambda _: conversation.upscale(team, thread.id, number)
    if op == "cutout" and isinstance(number, int):
        return lambda _: conversation.remove_background(team, thread.id, number)
    if op in ("sketch", "style") and isinstance(number, int):
        return lambda _: conversation.use_picture(
            team, thread.id, number, "sketch" if op == "sketch" else "style"
        )
    if op == "describe" and isinstance(number, int):
        return lambda show: conversation.describe_picture(team, thread.id, number, defaults(), show)
    if op == "icon":
        return lambda _: conversation.make_icon(team, thread.id)
    return None


def on_retry(services: Services, client: WebClient, body: dict[str, Any]) -> None:
    """Run the failed turn again (once per error message), then remove the error message."""
    click = Click(body)
    target = click.target
    if target is None or not click.user_id:
        services.logger.warning("a Retry click without a message or user")
        return
    try:
        spec = json.loads(click.value)
    except ValueError:
        spec = None
    if not isinstance(spec, dict) or not isinstance(spec.get("op"), str):
        tell_user(
            client,
            services,
            target,
            click.user_id,
            message_blocks.error_message("That Retry button is out of date."),
        )
        return
    if not first_delivery(services, click.team_id, f"{target.channel}:{click.message_ts}", "retry"):
        return
    _remove(services, client, target.channel, click.message_ts)
    ref = ThreadRef(click.team_id, target.channel, target.thread_ts)
    if spec["op"] in ("start", "avatar"):
        try:
            command = parse_imagine(str(spec.get("text") or ""), avatar=spec["op"] == "avatar")
        except OptionError as exc:
            tell_user(client, services, target, click.user_id, message_blocks.option_error(str(exc)))
            return
        begin(services, client, target, ref, click.user_id, command)
        return
    thread = services.threads.find_thread_by_ref(ref)
    operation = thread_operation(services, click.team_id, click.user_id, thread, spec) if thread else None
    if operation is None:
        tell_user(
            client,
            services,
            target,
            click.user_id,
            message_blocks.error_message("That Retry button is out of date."),
        )
        return
    images = ICON_IMAGES if spec["op"] == "icon" else FOLLOW_UP_IMAGES  # a start or avatar went to begin()
    requester = Requester(click.team_id, click.user_id, images)
    run_turn(client, services, target, operation, requester, click.value)


def _remove(services: Services, client: WebClient, channel: str, ts: str) -> None:
    """Delete the error message a Retry was clicked on."""
    try:
        client.chat_delete(channel=channel, ts=ts)
    except SlackApiError as exc:
        services.logger.debug("could not remove an error message: %s", slack_error(exc))


def register(registrar: Registrar, services: Services) -> None:
    """Register the Retry button."""

    def acknowledge(ack: Ack) -> None:
        ack()

    def retry(body: dict[str, Any], client: WebClient) -> None:
        try:
            on_retry(services, client, body)
        except Exception:
            services.logger.exception("a Retry failed")

    registrar.action(ACTION_RETRY, acknowledge, [retry])
