"""Posting into Slack threads: status lines, library hits, uploaded images and result messages."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.blocks import Message
from bot.conversation import OnHits
from bot.errors import BotError, ThrottledError, UpstreamError
from bot.fair_use import QueueFullError, QuotaReachedError
from bot.ports import HitForPrompt, ThreadRecord
from bot.services import Services
from bot.turns import TurnResult

logger = logging.getLogger(__name__)
MAX_FILES = 10  # files_upload_v2 shares at most ten files in one message
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
        shown = [*([sheet] if sheet else []), *(image.path for image in result.images)]
        if shown:  # the numbered contact sheet first, then each candidate (at most 1 + 9 files)
            _upload(client, target, shown[:MAX_FILES], f"avatar candidates: {result.thread.idea}")
        uploaded()
        ts = post(client, target, blocks.brainstorm_message(result.thread.id, result.drafts, result.labels))
        _offer_votes(client, target.channel, ts, len(result.drafts))
        return
    if result.images:
        _upload(client, target, [image.path for image in result.images], prompt)
    uploaded()
    post(client, target, blocks.result_message(result.thread.id, result))


def _offer_votes(client: WebClient, channel: str, ts: str, candidates: int) -> None:
    """React 1️⃣…N️⃣ on the candidates so a vote is one click (the bot's own reactions are not votes)."""
    for name in blocks.VOTE_EMOJI[: max(0, candidates)]:
        try:
            client.reactions_add(channel=channel, timestamp=ts, name=name)
        except SlackApiError as exc:
            logger.debug("could not add the :%s: reaction: %s", name, slack_error(exc))
            return


@dataclass(frozen=True)
class Requester:
    """Who a job is for: the team and user (fair use, ephemerals) and how many images it will draw."""

    team_id: str
    user_id: str
    images: int = 1


Operation = Callable[[OnHits], TurnResult]


def run_turn(
    client: WebClient,
    services: Services,
    target: ThreadTarget,
    operation: Operation,
    requester: Requester,
    retry: str | None = None,
) -> TurnResult | None:
    """Wait for a fair-use slot, run one engine operation, post its outcome (or an error) in the thread."""
    status: list[str | None] = [None]

    def queued(position: int) -> None:
        status[0] = _status(client, services, target, blocks.queued(position))

    try:
        with services.fair_use.slot(requester.team_id, requester.user_id, requester.images, queued):
            return _run(client, services, target, operation, requester, status, retry)
    except (QueueFullError, QuotaReachedError) as exc:
        services.logger.info("fair use refused a job of %s: %s", requester.user_id, exc)
        notice = blocks.quota_reached(exc.limit) if isinstance(exc, QuotaReachedError) else None
        tell_user(client, services, target, requester.user_id, notice or blocks.error_message(str(exc)))
    except Exception:  # a storage failure in the quota check; never leave the user in silence
        services.logger.exception("could not admit a job in %s", target.channel)
        _post_error(client, services, target, UNEXPECTED, retry)
    finally:
        _delete(client, services, target, status[0])
    return None


def _run(
    client: WebClient,
    services: Services,
    target: ThreadTarget,
    operation: Operation,
    requester: Requester,
    status: list[str | None],
    retry: str | None,
) -> TurnResult | None:
    """Run the operation holding a slot; `status[0]` is the status line's ts (deleted by the caller)."""
    if status[0] is None:
        status[0] = _status(client, services, target, blocks.working_status("draw"))
    else:
        _set_status(client, services, target, status[0], "draw")

    def show_hits(thread: ThreadRecord, hits: tuple[HitForPrompt, ...]) -> None:
        post(client, target, blocks.hits_message(thread.id, hits))

    try:
        result = operation(show_hits)
        services.fair_use.count(requester.team_id, requester.user_id, len(result.images))
        _set_status(client, services, target, status[0], "upload")
        post_result(client, target, result, lambda: _delete(client, services, target, status[0]))
        status[0] = None
        return result
    except BotError as exc:
        services.logger.info("turn failed in %s: %s", target.channel, exc)
        transient = isinstance(exc, ThrottledError | UpstreamError)
        _post_error(client, services, target, str(exc), retry if transient else None)
    except SlackApiError as exc:
        services.logger.warning("Slack refused a post in %s: %s", target.channel, slack_error(exc))
        _post_error(client, services, target, f"Slack refused my reply ({slack_error(exc)}).", retry)
    except Exception:
        services.logger.exception("unexpected failure of a turn in %s", target.channel)
        _post_error(client, services, target, UNEXPECTED, retry)
    return None


def tell_user(
    client: WebClient, services: Services, target: ThreadTarget | None, user_id: str, payload: Message
) -> None:
    """An ephemeral note to one user in the thread; a failure (or nowhere to say it) is only logged."""
    if target is None:
        services.logger.info("nowhere to tell %s: %s", user_id, payload["text"])
        return
    try:
        client.chat_postEphemeral(
            channel=target.channel,
            user=user_id,
            thread_ts=target.thread_ts,
            text=payload["text"],
            blocks=payload["blocks"],
        )
    except SlackApiError as exc:
        services.logger.warning("could not tell %s in %s: %s", user_id, target.channel, slack_error(exc))


def _post_error(
    client: WebClient, services: Services, target: ThreadTarget, text: str, retry: str | None = None
) -> None:
    """An error message in the thread (with Retry when `retry` is given); a failure to post it is logged."""
    try:
        post(client, target, blocks.error_message(text, retry))
    except SlackApiError as exc:
        services.logger.warning("could not post an error in %s: %s", target.channel, slack_error(exc))


def _status(client: WebClient, services: Services, target: ThreadTarget, payload: Message) -> str | None:
    """Post a status line (working or queued) in the thread; None when it cannot be posted."""
    try:
        return post(client, target, payload)
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
