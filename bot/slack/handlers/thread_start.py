"""Starting a thread from /imagine, an @-mention or a DM, and the once-only guard for Slack deliveries."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from slack_sdk import WebClient

from bot.engine.options import ImagineCommand, escape_slack
from bot.engine.ports import ThreadRef, UserDefaults
from bot.engine.turns import TurnOptions, TurnResult
from bot.slack.reply.thread_posting import Requester, ThreadTarget, run_turn
from bot.slack.services import Services

BUTTON_VALUE_CHARS = 2000  # Slack's limit on a button's value


def retry_value(op: str, **fields: str | int) -> str | None:
    """A Retry button value for `op` in the thread it is posted in; None when it would not fit."""
    value = json.dumps({"op": op, **fields}, separators=(",", ":"), ensure_ascii=False)
    return value if len(value) <= BUTTON_VALUE_CHARS else None


def options_summary(options: TurnOptions, model: str | None = None) -> str:
    """The options in effect, as the user would type them."""
    parts = [f"--ar {options.aspect_ratio}"] if options.aspect_ratio else []
    parts += [f"--seed {options.seed}"] if options.seed is not None else []
    parts += [f"--no {', '.join(options.negative)}"] if options.negative else []
    parts += [f'--style "{options.style}"'] if options.style else []
    parts += [f"--n {options.count}"] if options.count > 1 else []
    parts += [f"--model {model}"] if model else []
    return " ".join(parts)


def first_delivery(services: Services, team_id: str, delivery_id: str, kind: str) -> bool:
    """True the first time a delivery (event id, trigger id, click key) is seen; Slack retries get False."""
    if not delivery_id:
        return True
    try:
        claimed = services.ledger.claim(team_id or "-", _ledger_key(kind, delivery_id), kind)
    except Exception:  # the ledger is a guard, not a gate: a storage hiccup must not drop the request
        services.logger.exception("could not record %s %s; handling it anyway", kind, delivery_id)
        return True
    if not claimed:
        services.logger.info("ignoring a repeated %s %s", kind, delivery_id)
    return claimed


def forget_delivery(services: Services, team_id: str, delivery_id: str, kind: str) -> None:
    """Let a delivery whose work failed be asked for again (the same click after an error)."""
    try:
        services.ledger.release(team_id or "-", _ledger_key(kind, delivery_id))
    except Exception:
        services.logger.warning("could not release %s %s", kind, delivery_id, exc_info=True)


def _ledger_key(kind: str, delivery_id: str) -> str:
    """The processed-events key of a delivery."""
    return f"{kind}:{delivery_id}"[:255]


def team_of(body: dict[str, Any]) -> str:
    """The installation's workspace of any Slack payload, in the order Bolt reads it.

    In a Slack Connect channel an event's `team_id` is the acting user's org; the installation that
    received it is `authorizations[0].team_id`, so that comes first (as in Bolt's context).
    """
    view = body.get("view")
    if isinstance(view, dict) and view.get("app_installed_team_id"):
        return str(view["app_installed_team_id"])
    team = body.get("team")
    if isinstance(team, str) and team:
        return team
    if isinstance(team, dict) and team.get("id"):
        return str(team["id"])
    authorizations = body.get("authorizations")
    first = authorizations[0] if isinstance(authorizations, list) and authorizations else None
    if isinstance(first, dict) and first.get("team_id"):
        return str(first["team_id"])
    if body.get("team_id"):
        return str(body["team_id"])
    event = body.get("event")
    if isinstance(event, dict) and (event.get("team") or event.get("team_id")):
        return str(event.get("team") or event.get("team_id"))
    user = body.get("user")
    if isinstance(user, dict) and user.get("team_id"):
        return str(user["team_id"])
    return str(view.get("team_id") or "") if isinstance(view, dict) else ""


def user_of(body: dict[str, Any]) -> str:
    """The user of an interaction payload (an object per Slack; a bare id is tolerated)."""
    user = body.get("user")
    return str((user.get("id") if isinstance(user, dict) else user) or "")


def retry_text(command: ImagineCommand) -> str:
    """The command as the user would type it again (escaped like Slack, so it parses back the same)."""
    if command.avatar:
        return escape_slack(f"{command.idea} --n {command.options.count}")
    return escape_slack(f"{command.idea} {options_summary(command.options, command.model)}")


def begin(
    services: Services,
    client: WebClient,
    target: ThreadTarget,
    ref: ThreadRef,
    user_id: str,
    command: ImagineCommand,
) -> TurnResult | None:
    """Start (or brainstorm) in the thread at `target`, with the user's and channel's defaults."""
    conversation = services.conversation

    def defaults() -> UserDefaults:
        return services.defaults.effective_defaults(ref.team_id, ref.channel_id, user_id)

    if command.avatar:
        count = command.options.count
        requester = Requester(ref.team_id, user_id, count)
        return run_turn(
            client,
            services,
            target,
            lambda _: conversation.brainstorm(ref, user_id, command.idea, count, defaults()),
            requester,
            retry_value("avatar", text=retry_text(command)),
        )
    options = replace(command.options, model=command.model or command.options.model)
    requester = Requester(ref.team_id, user_id, max(1, options.count))
    return run_turn(
        client,
        services,
        target,
        lambda show_hits: conversation.start(ref, user_id, command.idea, options, defaults(), show_hits),
        requester,
        retry_value("start", text=retry_text(command)),
    )
