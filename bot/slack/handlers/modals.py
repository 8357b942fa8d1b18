"""Modal submissions of the thread: the Edit prompt modal draws the user's own prompt in its thread."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack
from slack_sdk import WebClient

from bot.engine.turns import FOLLOW_UP_IMAGES
from bot.slack.handlers.registry import Registrar
from bot.slack.handlers.thread_start import first_delivery, retry_value, team_of, user_of
from bot.slack.ids import VIEW_EDIT_PROMPT
from bot.slack.reply.modal_views import MAX_ID, PROMPT_BLOCK, parse_edit_submission
from bot.slack.reply.thread_posting import Requester, ThreadTarget, run_turn
from bot.slack.services import Services


def submitted(body: dict[str, Any]) -> tuple[int | None, str, str]:
    """(thread id, prompt, negative prompt) of an Edit prompt submission; a bad thread id gives None."""
    view = body.get("view") if isinstance(body.get("view"), dict) else {}
    state = (view or {}).get("state") if isinstance((view or {}).get("state"), dict) else {}
    values = (state or {}).get("values") if isinstance((state or {}).get("values"), dict) else {}
    try:
        prompt, negative = parse_edit_submission(values or {})
    except (KeyError, TypeError, ValueError, AttributeError):
        prompt, negative = "", ""
    metadata = str((view or {}).get("private_metadata") or "")
    digits = metadata.isascii() and metadata.isdigit() and len(metadata) <= len(str(MAX_ID))
    thread_id = int(metadata) if digits and int(metadata) <= MAX_ID else None
    return thread_id, prompt, negative


def acknowledge_edit(ack: Ack, body: dict[str, Any]) -> None:
    """Close the modal, or keep it open with an error on an empty prompt."""
    thread_id, prompt, _ = submitted(body)
    if not prompt.strip():
        ack(response_action="errors", errors={PROMPT_BLOCK: "Write a prompt to draw."})
    elif thread_id is None:
        ack(response_action="errors", errors={PROMPT_BLOCK: "This editor is out of date; press Edit again."})
    else:
        ack()


def draw_edit(services: Services, client: WebClient, body: dict[str, Any]) -> None:
    """Draw the edited prompt as a new turn in its thread."""
    thread_id, prompt, negative = submitted(body)
    team, user_id = team_of(body), user_of(body)
    thread = (
        services.threads.find_thread(team, thread_id) if thread_id is not None and prompt.strip() else None
    )
    if thread is None or not user_id:
        services.logger.info("an edit for an unknown thread %s of team %s", thread_id, team)
        return
    if not first_delivery(services, team, str(body.get("trigger_id") or ""), "edit"):
        return  # the same submission again (Socket Mode re-delivers an envelope it thinks was not acked)
    channel = thread.ref.channel_id

    def edit(_: object) -> Any:
        defaults = services.defaults.effective_defaults(team, channel, user_id)
        return services.conversation.edit(team, thread.id, prompt, negative, defaults)

    retry = retry_value("edit", text=prompt, negative=negative)
    target = ThreadTarget(channel, thread.ref.thread_ts)
    run_turn(client, services, target, edit, Requester(team, user_id, FOLLOW_UP_IMAGES), retry)


def register(registrar: Registrar, services: Services) -> None:
    """Register the Edit prompt modal's submission."""

    def draw(body: dict[str, Any], client: WebClient) -> None:
        draw_edit(services, client, body)

    registrar.view(VIEW_EDIT_PROMPT, acknowledge_edit, [draw])
