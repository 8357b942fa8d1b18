"""Events: thread replies refine, @-mentions and DMs start threads, number reactions vote."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.engine.options import OptionError, clean_text, parse_imagine
from bot.engine.ports import ThreadRecord, ThreadRef
from bot.engine.turns import FOLLOW_UP_IMAGES
from bot.slack.handlers.pictures import is_shared_picture, picture_reply
from bot.slack.handlers.registry import Registrar
from bot.slack.handlers.thread_start import begin, first_delivery, retry_value, team_of
from bot.slack.ids import EVENT_APP_MENTION, EVENT_MESSAGE, EVENT_REACTION_ADDED, EVENT_REACTION_REMOVED
from bot.slack.reply import message_blocks
from bot.slack.reply.modal_views import vote_number
from bot.slack.reply.thread_posting import Requester, ThreadTarget, post, run_turn, slack_error
from bot.slack.services import Services

MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")


def without_mentions(text: str) -> str:
    """The text made plain (entities, control and invisible characters) with user mentions removed."""
    return clean_text(MENTION.sub(" ", text))


HUMAN_SUBTYPES = frozenset({"thread_broadcast"})  # a reply also sent to the channel is still a reply


def is_human(event: dict[str, Any]) -> bool:
    """True for a message a person posted (no bots, edits, joins; a reply "also sent to channel" counts)."""
    subtype = event.get("subtype")
    person = not (event.get("bot_id") or event.get("bot_profile")) and bool(event.get("user"))
    return person and (not subtype or subtype in HUMAN_SUBTYPES)


def is_reply(event: dict[str, Any]) -> bool:
    """True for a message posted inside a thread (not the thread's root)."""
    thread_ts = event.get("thread_ts")
    return bool(thread_ts) and thread_ts != event.get("ts")


def refine_reply(services: Services, client: WebClient, team: str, event: dict[str, Any]) -> None:
    """Refine the thread the reply was posted in, when the bot started it."""
    channel, thread_ts, user = str(event["channel"]), str(event["thread_ts"]), str(event["user"])
    thread = services.threads.find_thread_by_ref(ThreadRef(team, channel, thread_ts))
    instruction = without_mentions(str(event.get("text") or ""))
    if thread is None or not instruction:
        return
    conversation = services.conversation

    def refine(_: object) -> Any:
        defaults = services.defaults.effective_defaults(team, channel, user)
        return conversation.refine(team, thread.id, instruction, defaults)

    retry = retry_value("refine", text=instruction)
    requester = Requester(team, user, FOLLOW_UP_IMAGES)  # one image, whatever the thread's --n
    run_turn(client, services, ThreadTarget(channel, thread_ts), refine, requester, retry)


def start_here(services: Services, client: WebClient, team: str, event: dict[str, Any]) -> None:
    """`@imagine <idea>` in a channel or a DM to the bot: start a thread on that message."""
    channel, ts, user = str(event["channel"]), str(event["ts"]), str(event["user"])
    target = ThreadTarget(channel, ts)
    try:
        command = parse_imagine(without_mentions(str(event.get("text") or "")))
    except OptionError as exc:
        _reply(services, client, target, message_blocks.option_error(str(exc)))
        return
    if command.defaults:
        _reply(
            services,
            client,
            target,
            message_blocks.option_error("use `/imagine --defaults` in the channel itself"),
        )
        return
    if not command.idea or command.help or command.idea.lower() == "help":
        _reply(services, client, target, message_blocks.help_message())
        return
    begin(services, client, target, ThreadRef(team, channel, ts), user, command)


def on_message(services: Services, client: WebClient, body: dict[str, Any]) -> None:
    """A human message: a reply in a bot thread refines it (a picture gets choices); a DM starts a thread."""
    event = body.get("event") or {}
    picture = is_shared_picture(event)
    if not (is_human(event) or picture) or not event.get("channel") or not event.get("ts"):
        return
    team = team_of(body)
    if not first_delivery(services, team, str(body.get("event_id") or ""), "event"):
        return
    if picture:  # a picture or sketch posted in a thread: offer what to do with it
        if is_reply(event):
            picture_reply(services, client, team, event)
    elif is_reply(event):
        refine_reply(services, client, team, event)
    elif event.get("channel_type") == "im":
        start_here(services, client, team, event)


def on_mention(services: Services, client: WebClient, body: dict[str, Any]) -> None:
    """An @-mention outside a thread starts one (replies in threads arrive as message events too)."""
    event = body.get("event") or {}
    if event.get("thread_ts") or not is_human(event) or not event.get("channel") or not event.get("ts"):
        return
    team = team_of(body)
    if first_delivery(services, team, str(body.get("event_id") or ""), "event"):
        start_here(services, client, team, event)


def voted_thread(
    services: Services, client: WebClient, team: str, item: dict[str, Any]
) -> ThreadRecord | None:
    """The brainstorm thread a reacted-to message belongs to (its root or any reply in it)."""
    channel, ts = str(item.get("channel") or ""), str(item.get("ts") or "")
    if item.get("type") != "message" or not channel or not ts:
        return None
    thread = services.threads.find_thread_by_ref(ThreadRef(team, channel, ts))
    if thread is None:
        try:
            replies = client.conversations_replies(channel=channel, ts=ts, limit=1)
        except SlackApiError as exc:
            services.logger.info("cannot read the reacted message in %s: %s", channel, slack_error(exc))
            return None
        messages = replies.get("messages") or []
        root = str(messages[0].get("thread_ts") or "") if messages else ""
        thread = services.threads.find_thread_by_ref(ThreadRef(team, channel, root)) if root else None
    return thread if thread is not None and thread.mode == "avatar" else None


def on_reaction(services: Services, client: WebClient, body: dict[str, Any], added: bool) -> None:
    """A 1️⃣…9️⃣ reaction in a brainstorm thread casts (or takes back) a vote."""
    event = body.get("event") or {}
    number = vote_number(str(event.get("reaction") or ""))
    user, item = str(event.get("user") or ""), event.get("item")
    if number is None or not user or not isinstance(item, dict):
        return
    team = team_of(body)
    if not first_delivery(services, team, str(body.get("event_id") or ""), "event"):
        return
    thread = voted_thread(services, client, team, item)
    if thread is None:
        return
    if added:
        services.feedback.vote(team, thread.id, user, number)
    else:
        services.feedback.unvote(team, thread.id, user, number)


def _reply(
    services: Services, client: WebClient, target: ThreadTarget, payload: message_blocks.Message
) -> None:
    """A reply in the message's thread; a failure is only logged."""
    try:
        post(client, target, payload)
    except SlackApiError as exc:
        services.logger.warning("could not reply in %s: %s", target.channel, slack_error(exc))


def register(registrar: Registrar, services: Services) -> None:
    """Register the message, app_mention and reaction listeners."""

    def acknowledge(ack: Ack) -> None:
        ack()

    def message(body: dict[str, Any], client: WebClient) -> None:
        on_message(services, client, body)

    def mention(body: dict[str, Any], client: WebClient) -> None:
        on_mention(services, client, body)

    def reaction_added(body: dict[str, Any], client: WebClient) -> None:
        on_reaction(services, client, body, added=True)

    def reaction_removed(body: dict[str, Any], client: WebClient) -> None:
        on_reaction(services, client, body, added=False)

    registrar.event(EVENT_MESSAGE, acknowledge, [message])
    registrar.event(EVENT_APP_MENTION, acknowledge, [mention])
    registrar.event(EVENT_REACTION_ADDED, acknowledge, [reaction_added])
    registrar.event(EVENT_REACTION_REMOVED, acknowledge, [reaction_removed])
