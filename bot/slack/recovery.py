"""Turns a killed process left behind (in a thread's line, queued or running): stale heartbeats, reported."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.engine.ports import JobRecord
from bot.slack.reply import message_blocks
from bot.slack.services import Services

logger = logging.getLogger(__name__)
STATUS_CLOCK_SLACK_S = 5.0  # Slack's ts and the database's clock may differ a little
INTERRUPTED = (
    "I was restarted while working on this, so it did not finish "
    "(it does not count against your images today)."
)

ClientFor = Callable[[str], WebClient | None]


def client_for_app(app: App) -> ClientFor:
    """A Web API client for a team: the app's own token, or the team's installed bot token (OAuth)."""

    def client_for(team_id: str) -> WebClient | None:
        if app.client.token:
            return app.client
        store = app.installation_store
        bot = store.find_bot(enterprise_id=None, team_id=team_id) if store is not None else None
        if bot is None or not bot.bot_token:
            return None
        return WebClient(
            token=bot.bot_token, base_url=app.client.base_url, retry_handlers=app.client.retry_handlers
        )

    return client_for


def report_interrupted(services: Services, client_for: ClientFor) -> int:
    """Claim interrupted turns (waiting, queued or running), say so in their threads with Retry; count."""
    if services.jobs is None:
        return 0
    reported = 0
    bot_ids: dict[str, str | None] = {}  # auth.test once per team, not per job
    for job in services.jobs.interrupted():
        client = client_for(job.ref.team_id)
        logger.warning(
            "job %s of %s in %s/%s was interrupted (worker %s stopped beating)",
            job.id,
            job.user_id,
            job.ref.team_id,
            job.ref.channel_id,
            job.worker,
        )
        if client is None:
            continue
        if not job.waiting:  # a waiting turn has no line; the newest one may be a live turn's
            if job.ref.team_id not in bot_ids:
                bot_ids[job.ref.team_id] = _bot_id(client)
            remove_status_line(client, job, bot_ids[job.ref.team_id])
        notice = message_blocks.error_message(INTERRUPTED, job.retry)
        try:
            client.chat_postMessage(
                channel=job.ref.channel_id,
                thread_ts=job.ref.thread_ts,
                text=notice["text"],
                blocks=notice["blocks"],
            )
            reported += 1
        except SlackApiError as exc:
            logger.warning("could not report job %s: %s", job.id, exc.response.get("error"))
    return reported


def _bot_id(client: WebClient) -> str | None:
    """The app's bot id in the client's workspace (None when auth.test fails: no line is removed)."""
    try:
        return client.auth_test().get("bot_id")
    except SlackApiError as exc:
        logger.info("auth.test failed, so no status line is removed: %s", exc.response.get("error"))
        return None


def remove_status_line(client: WebClient, job: JobRecord, bot_id: str | None) -> None:
    """Delete the dead turn's "Drawing…" or "Queued" line: the app's first status line since the job began."""
    if bot_id is None:
        return
    since = (job.started_utc or datetime.now(UTC)).replace(tzinfo=UTC).timestamp() - STATUS_CLOCK_SLACK_S
    try:
        replies = client.conversations_replies(channel=job.ref.channel_id, ts=job.ref.thread_ts, limit=200)
        for message in replies.get("messages") or []:
            ids = {block.get("block_id") for block in message.get("blocks") or [] if isinstance(block, dict)}
            if "status" in ids and message.get("bot_id") == bot_id and float(message["ts"]) >= since:
                client.chat_delete(channel=job.ref.channel_id, ts=message["ts"])
                return
    except (SlackApiError, KeyError, TypeError, ValueError) as exc:  # a courtesy: the notice still goes out
        logger.info("could not remove the status line of job %s: %s", job.id, exc)


class RecoveryLoop:
    """report_interrupted now and every `interval_s` (a surviving replica reports a dead one's jobs)."""

    def __init__(self, services: Services, client_for: ClientFor, interval_s: float) -> None:
        self._services = services
        self._client_for = client_for
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="imagine-recovery", daemon=True)

    def start(self) -> RecoveryLoop:
        """Start the loop thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop thread."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        """Report, wait, repeat; never let a failure end the loop."""
        while True:
            try:
                report_interrupted(self._services, self._client_for)
                if self._services.jobs is not None:
                    self._services.jobs.purge_finished()
            except Exception:
                logger.exception("the interrupted-job scan failed; trying again later")
            if self._stop.wait(self._interval_s):
                return
