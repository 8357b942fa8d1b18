"""Posting into Slack threads: status lines, library hits, uploaded images and result messages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.blocks import Message
from bot.errors import BotError
from bot.services import Services
from bot.turns import TurnResult

ALT_TEXT_CHARS = 1000
TITLE_CHARS = 200
CANT_POST = ("not_in_channel", "channel_not_found", "is_archived", "restricted_action")
UNEXPECTED = "Something went wrong on my side; please try again in a moment."


@dataclass(frozen=True)
class ThreadTarget:
    """Where replies go: a channel and the ts of the thread's root."""

    channel: str
    thread_ts: str


def slack_error(exc: SlackApiError) -> str:
    """The Slack error code of a failed Web API call."""
    response = getattr(exc, "response", None)
    try:
        return str(response["error"]) if response is not None else "unknown_error"
    except (KeyError, TypeError):
        return "unknown_error"


def post(client: WebClient, target: ThreadTarget, payload: Message) -> str:
    """Post a payload as a reply in the thread; return its ts."""
    response = client.chat_postMessage(
        channel=target.channel, thread_ts=target.thread_ts, text=payload["text"], blocks=payload["blocks"]
    )
    return str(response["ts"])


def _upload(client: WebClient, target: ThreadTarget, paths: list[Path], title: str) -> None:
    """Upload image files into the thread with files_upload_v2 (one call, one message)."""
    name = blocks.one_line(title)
    uploads: list[dict[str, Any]] = [
        {
            "file": str(path),
            "filename": path.name,
            "title": blocks.clip(name, TITLE_CHARS) or "imagine",
            "alt_txt": blocks.clip(name, ALT_TEXT_CHARS) or "generated image",
        }
        for path in paths
    ]
    client.files_upload_v2(channel=target.channel, thread_ts=target.thread_ts, file_uploads=uploads)


def post_hits(client: WebClient, target: ThreadTarget, result: TurnResult) -> None:
    """The numbered library prompts with their 'Use #n' buttons."""
    post(client, target, blocks.hits_message(result.thread.id, result.hits))


def post_result(
    client: WebClient,
    target: ThreadTarget,
    result: TurnResult,
    uploaded: Callable[[], None] = lambda: None,
) -> None:
    """Upload a turn's image(s) (or a brainstorm's contact sheet), call `uploaded`, post the message."""
    prompt = result.turn.prompt or (result.drafts[0].prompt if result.drafts else "imagine")
    if result.turn.kind == "brainstorm":
        sheet = result.contact_sheet
        shown = [sheet] if sheet else [image.path for image in result.images]
        if shown:
            _upload(client, target, shown, f"avatar candidates: {result.thread.idea}")
        uploaded()
        post(client, target, blocks.brainstorm_message(result.thread.id, result.drafts, result.labels))
        return
    if result.images:
        _upload(client, target, [image.path for image in result.images], prompt)
    uploaded()
    post(client, target, blocks.result_message(result.thread.id, result))


def run_turn(
    client: WebClient,
    services: Services,
    target: ThreadTarget,
    operation: Callable[[], TurnResult],
    *,
    show_hits: bool = False,
) -> TurnResult | None:
    """Show a status, run one engine operation, post its outcome (or an error) into the thread."""
    status_ts = _status(client, services, target, "draw")
    try:
        result = operation()
        if show_hits:
            post_hits(client, target, result)
        _set_status(client, services, target, status_ts, "upload")
        post_result(client, target, result, lambda: _delete(client, services, target, status_ts))
        status_ts = None
        return result
    except BotError as exc:
        services.logger.info("turn failed in %s: %s", target.channel, exc)
        _post_error(client, services, target, str(exc))
    except SlackApiError as exc:
        services.logger.warning("Slack refused a post in %s: %s", target.channel, slack_error(exc))
        _post_error(client, services, target, f"Slack refused my reply ({slack_error(exc)}).")
    except Exception:
        services.logger.exception("unexpected failure of a turn in %s", target.channel)
        _post_error(client, services, target, UNEXPECTED)
    finally:
        _delete(client, services, target, status_ts)
    return None


def _post_error(client: WebClient, services: Services, target: ThreadTarget, text: str) -> None:
    """An error message in the thread; a failure to post it is only logged."""
    try:
        post(client, target, blocks.error_message(text))
    except SlackApiError as exc:
        services.logger.warning("could not post an error in %s: %s", target.channel, slack_error(exc))


def _status(client: WebClient, services: Services, target: ThreadTarget, stage: str) -> str | None:
    """Post a working status in the thread; None when it cannot be posted."""
    try:
        return post(client, target, blocks.working_status(stage))
    except SlackApiError as exc:
        services.logger.warning("could not post a status in %s: %s", target.channel, slack_error(exc))
        return None


def _set_status(
    client: WebClient, services: Services, target: ThreadTarget, ts: str | None, stage: str
) -> None:
    """Move the status line to a new stage."""
    if ts is None:
        return
    payload = blocks.working_status(stage)
    try:
        client.chat_update(channel=target.channel, ts=ts, text=payload["text"], blocks=payload["blocks"])
    except SlackApiError as exc:
        services.logger.debug("could not update a status: %s", slack_error(exc))


def _delete(client: WebClient, services: Services, target: ThreadTarget, ts: str | None) -> None:
    """Remove the status line once the turn is done."""
    if ts is None:
        return
    try:
        client.chat_delete(channel=target.channel, ts=ts)
    except SlackApiError as exc:
        services.logger.debug("could not delete a status: %s", slack_error(exc))
