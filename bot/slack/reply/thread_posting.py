"""Posting into Slack threads: status lines, library hits, uploaded images and result messages."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.engine.conversation import OnHits
from bot.engine.ports import HitForPrompt, ThreadRecord, ThreadRef
from bot.engine.turn_errors import BotError
from bot.engine.turns import TurnResult
from bot.scheduling.fair_use import QueueFullError, QuotaReachedError
from bot.scheduling.job_journal import JobHandle, WaitingHandle
from bot.slack.ids import COMMAND_AVATAR, COMMAND_IMAGINE
from bot.slack.reply import failure_text, image_blocks, message_blocks
from bot.slack.reply.message_blocks import Message
from bot.slack.services import Services
from retrieval.errors import RetrievalError
from storage.db_errors import StorageError

logger = logging.getLogger(__name__)
MAX_FILES = 10  # files_upload_v2 shares at most ten files in one message
ALT_TEXT_CHARS = 1000
TITLE_CHARS = 200
CANT_POST = ("not_in_channel", "channel_not_found", "is_archived", "restricted_action")
MESSAGE_GONE = (*CANT_POST, "message_not_found", "invalid_auth", "token_revoked", "account_inactive")
UPLOAD_FAILED = (
    "Slack would not take the picture just now ({why}), so only the prompt is above; "
    "press Re-roll to draw it again."
)
UNEXPECTED = failure_text.UNEXPECTED
SUGGESTION_CHARS = 1500
# what a Slack call raises once slack_sdk's retry handlers give up: an error answer, or the network's error
SLACK_FAILURES = (SlackClientError, URLError, ConnectionError, TimeoutError)
# how a Retry spec's text is typed again: (slash command, label of the suggestion line)
_RETYPED = {
    "start": (COMMAND_IMAGINE, "Try"),
    "avatar": (COMMAND_AVATAR, "Try"),
    "refine": ("", "Try replying in this thread with"),
    "edit": ("", "Try Edit prompt with"),
}


@dataclass(frozen=True)
class ThreadTarget:
    """Where replies go: a channel and the ts of the thread's root."""

    channel: str
    thread_ts: str


def slack_error(exc: SlackApiError) -> str:
    """The Slack error code of a failed Web API call."""
    return failure_text.slack_code(exc)


def post(client: WebClient, target: ThreadTarget, payload: Message) -> str:
    """Post a payload as a reply in the thread; return its ts."""
    response = client.chat_postMessage(
        channel=target.channel, thread_ts=target.thread_ts, text=payload["text"], blocks=payload["blocks"]
    )
    return str(response["ts"])


def _upload(client: WebClient, target: ThreadTarget, paths: list[Path], title: str) -> None:
    """Upload image files into the thread with files_upload_v2 (one call, one message)."""
    name = message_blocks.one_line(title)
    uploads: list[dict[str, Any]] = [
        {
            "file": str(path),
            "filename": path.name,
            "title": message_blocks.clip(name, TITLE_CHARS) or "imagine",
            "alt_txt": message_blocks.clip(name, ALT_TEXT_CHARS) or "generated image",
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
        # the numbered contact sheet first, then each candidate (at most 1 + 9 files)
        title = f"avatar candidates: {result.thread.idea}"
        refused = _upload_or_reason(client, target, shown[:MAX_FILES], title) if shown else None
        uploaded()
        ts = post(
            client, target, message_blocks.brainstorm_message(result.thread.id, result.drafts, result.labels)
        )
        _offer_votes(client, target.channel, ts, len(result.drafts))
    else:
        paths = [image.path for image in result.images]
        paths += [result.contact_sheet] if result.contact_sheet else []  # an icon's preview on a checkerboard
        refused = _upload_or_reason(client, target, paths[:MAX_FILES], prompt) if paths else None
        uploaded()
        details = message_blocks.result_message(result.thread.id, result)
        post(client, target, image_blocks.with_operation_note(details, result.turn))
    if refused is not None:  # the turn is stored and its buttons work; say why the picture is missing
        why = "it asked me to slow down" if refused == "ratelimited" else refused
        post(client, target, message_blocks.error_message(UPLOAD_FAILED.format(why=why)))


def _upload_or_reason(client: WebClient, target: ThreadTarget, paths: list[Path], title: str) -> str | None:
    """Upload; None when done, else why Slack would not take the files even after its retries (logged).

    A failure that also stops posting (the bot left the channel …) is raised: the message would fail too.
    """
    try:
        _upload(client, target, paths, title)
        return None
    except SlackApiError as exc:
        code = slack_error(exc)
        if code in CANT_POST:
            raise
        logger.warning("Slack refused an image upload in %s: %s", target.channel, code)
        return code
    except SLACK_FAILURES as exc:  # the upload URL's POST, or the network after slack_sdk's retries
        logger.warning("an image upload to Slack failed in %s: %s", target.channel, exc)
        return "the upload did not go through"


def _offer_votes(client: WebClient, channel: str, ts: str, candidates: int) -> None:
    """React 1️⃣…N️⃣ on the candidates so a vote is one click (the bot's own reactions are not votes)."""
    for name in message_blocks.VOTE_EMOJI[: max(0, candidates)]:
        try:
            client.reactions_add(channel=channel, timestamp=ts, name=name)
        except SlackApiError as exc:
            code = slack_error(exc)
            logger.debug("could not add the :%s: reaction: %s", name, code)
            if code in MESSAGE_GONE:  # the rest would fail the same way (already_reacted etc. would not)
                return


@dataclass(frozen=True)
class Requester:
    """Who a job is for: the team and user (fair use, ephemerals) and how many images it will draw.

    `images` is what the quota reserves until the drawn images are counted, so every caller states it.
    """

    team_id: str
    user_id: str
    images: int


Operation = Callable[[OnHits], TurnResult]


def run_turn(
    client: WebClient,
    services: Services,
    target: ThreadTarget,
    operation: Operation,
    requester: Requester,
    retry: str | None = None,
) -> TurnResult | None:
    """Wait for the thread's turn and a fair-use slot, run one operation, post its outcome in the thread."""
    status: list[str | None] = [None]

    def queued(position: int) -> None:
        status[0] = _status(client, services, target, message_blocks.queued(position))

    ref = ThreadRef(requester.team_id, target.channel, target.thread_ts)
    team_id, user_id, images = requester.team_id, requester.user_id, requester.images
    # one turn at a time per thread (arrival order), journaled `waiting` only when another is ahead of it;
    # then journaled `queued` (a fresh row replacing that one) before the fair-use checks
    try:
        with (
            services.sequencer.turn(ref, _waiting(services, ref, user_id, retry)) as waited,
            _journal(services, ref, user_id, retry, images, waited) as job,
            services.fair_use.slot(team_id, user_id, images, queued, job.id or None),  # 0: no journal
        ):
            if services.jobs is not None:
                services.jobs.start(job)
            result = _run(client, services, target, operation, requester, status, retry, job.id or None)
            job.failed = result is None
            return result
    except (QueueFullError, QuotaReachedError) as exc:
        services.logger.info("fair use refused a job of %s: %s", requester.user_id, exc)
        notice = message_blocks.quota_reached(exc.limit) if isinstance(exc, QuotaReachedError) else None
        tell_user(
            client, services, target, requester.user_id, notice or message_blocks.error_message(str(exc))
        )
    except Exception as exc:  # a storage failure journaling or admitting it; never leave the user in silence
        _fail(client, services, target, exc, retry, "could not admit a job")
    finally:
        _delete(client, services, target, status[0])
    return None


def _waiting(
    services: Services, ref: ThreadRef, user_id: str, retry: str | None
) -> Callable[[], AbstractContextManager[WaitingHandle]] | None:
    """The journal row of a turn waiting behind another of its thread (None without a journal).

    A kill while it waits leaves a stale `waiting` row, reported with Retry like a queued job's; fair use
    never counts it, so a burst of replies in one thread waits its turn instead of meeting the user's cap.
    """
    jobs = services.jobs
    if jobs is None:
        return None
    return lambda: jobs.waiting(ref, user_id, retry)


def _journal(
    services: Services,
    ref: ThreadRef,
    user_id: str,
    retry: str | None,
    images: int,
    waited: WaitingHandle | None,
) -> AbstractContextManager[JobHandle]:
    """The job journal around one turn drawing `images`, replacing its waiting row (nothing without one)."""
    if services.jobs is None:
        return nullcontext(JobHandle(0))
    return services.jobs.track(ref, user_id, retry, images, replaces=waited)


def _run(
    client: WebClient,
    services: Services,
    target: ThreadTarget,
    operation: Operation,
    requester: Requester,
    status: list[str | None],
    retry: str | None,
    job_id: int | None,
) -> TurnResult | None:
    """Run the operation holding a slot; `status[0]` is the status line's ts (deleted by the caller)."""
    if status[0] is None:
        status[0] = _status(client, services, target, message_blocks.working_status("draw"))
    else:
        _set_status(client, services, target, status[0], "draw")

    def show_hits(thread: ThreadRecord, hits: tuple[HitForPrompt, ...]) -> None:
        post(client, target, message_blocks.hits_message(thread.id, hits))

    try:
        result = operation(show_hits)
        services.fair_use.count(requester.team_id, requester.user_id, result.images_drawn, job_id)
        _set_status(client, services, target, status[0], "upload")
        post_result(client, target, result, lambda: _delete(client, services, target, status[0]))
        status[0] = None
        return result
    except Exception as exc:
        _fail(client, services, target, exc, retry, "turn failed")
    return None


def _fail(
    client: WebClient,
    services: Services,
    target: ThreadTarget,
    exc: Exception,
    retry: str | None,
    what: str,
) -> None:
    """Log a failed turn once, at the level its cause deserves, and explain it in the thread."""
    channel = target.channel
    if isinstance(exc, BotError):  # the adapter that raised it logged the operator's line
        services.logger.info("%s in %s: %s", what, channel, exc)
    elif isinstance(exc, SlackApiError):
        services.logger.warning("%s in %s: Slack refused a call: %s", what, channel, slack_error(exc))
    elif isinstance(exc, (RetrievalError, StorageError, *SLACK_FAILURES)):
        services.logger.warning("%s in %s (%s): %s", what, channel, type(exc).__name__, exc)
    else:
        services.logger.exception("%s in %s: unexpected failure", what, channel)
    attempted, command, label = _attempted(retry)
    fault = failure_text.describe(exc, attempted, command)
    _post_error(client, services, target, fault.text, retry if fault.retry else None, fault.suggestion, label)


def _attempted(retry: str | None) -> tuple[str | None, str, str]:
    """What the user asked for (from the Retry spec), the command to type it again and its label."""
    try:
        spec = json.loads(retry) if retry else None
    except ValueError:
        spec = None
    if not isinstance(spec, dict) or spec.get("op") not in _RETYPED or not spec.get("text"):
        return None, "", ""
    command, label = _RETYPED[str(spec["op"])]
    return str(spec["text"]), command, label


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
    client: WebClient,
    services: Services,
    target: ThreadTarget,
    text: str,
    retry: str | None = None,
    suggestion: str | None = None,
    label: str = "Try",
) -> None:
    """An error message in the thread (Retry when `retry` is given, a suggestion to copy); failures logged."""
    payload = message_blocks.error_message(text, retry)
    if suggestion:
        line = message_blocks.user_line(suggestion.replace("`", "'"), SUGGESTION_CHARS)
        hint = message_blocks.section(f":bulb: {label}: `{line}`", block_id="fault_suggestion")
        payload = message_blocks.message([payload["blocks"][0], hint, *payload["blocks"][1:]])
    try:
        post(client, target, payload)
    except SLACK_FAILURES as exc:
        services.logger.warning("could not post an error in %s: %s", target.channel, _why(exc))


def _status(client: WebClient, services: Services, target: ThreadTarget, payload: Message) -> str | None:
    """Post a status line (working or queued) in the thread; None when it cannot be posted."""
    try:
        return post(client, target, payload)
    except SLACK_FAILURES as exc:  # a status line is a courtesy: the turn goes on without it
        services.logger.warning("could not post a status in %s: %s", target.channel, _why(exc))
        return None


def _set_status(
    client: WebClient, services: Services, target: ThreadTarget, ts: str | None, stage: str
) -> None:
    """Move the status line to a new stage."""
    if ts is None:
        return
    payload = message_blocks.working_status(stage)
    try:
        client.chat_update(channel=target.channel, ts=ts, text=payload["text"], blocks=payload["blocks"])
    except SLACK_FAILURES as exc:
        services.logger.debug("could not update a status: %s", _why(exc))


def _delete(client: WebClient, services: Services, target: ThreadTarget, ts: str | None) -> None:
    """Remove the status line once the turn is done."""
    if ts is None:
        return
    try:
        client.chat_delete(channel=target.channel, ts=ts)
    except SLACK_FAILURES as exc:
        services.logger.debug("could not delete a status: %s", _why(exc))


def _why(exc: BaseException) -> str:
    """The Slack error code of a refused call, or the client's own message (network, upload URL)."""
    return slack_error(exc) if isinstance(exc, SlackApiError) else str(exc) or type(exc).__name__
