"""Buttons: Use #n, Re-roll, Variations, Upscale, Remove background, Edit prompt, Save, 👍/👎, Vote, Pick
winner, and the choices for a person's picture (Use as sketch, Use as style, Describe)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.engine.ports import ThreadRecord, TurnRecord, UserDefaults
from bot.engine.turn_errors import BotError
from bot.engine.turns import FOLLOW_UP_IMAGES, TurnResult
from bot.slack.handlers.registry import Registrar
from bot.slack.handlers.thread_start import first_delivery, forget_delivery, retry_value, team_of
from bot.slack.ids import (
    ACTION_DESCRIBE,
    ACTION_EDIT_PROMPT,
    ACTION_FEEDBACK_DOWN,
    ACTION_FEEDBACK_UP,
    ACTION_PICK_WINNER,
    ACTION_REMOVE_BACKGROUND,
    ACTION_REROLL,
    ACTION_SAVE_PROMPT,
    ACTION_UPSCALE,
    ACTION_USE_HIT,
    ACTION_USE_SKETCH,
    ACTION_USE_STYLE,
    ACTION_VARY,
    ACTION_VOTE,
)
from bot.slack.reply import message_blocks
from bot.slack.reply.modal_views import edit_prompt_modal, parse_action_value, pick_winner
from bot.slack.reply.thread_posting import (
    Operation,
    Requester,
    ThreadTarget,
    post,
    run_turn,
    slack_error,
    tell_user,
)
from bot.slack.services import Services

OUT_OF_DATE = "That button is out of date; start again with /imagine."
IMAGE_ACTIONS = (
    ACTION_UPSCALE,
    ACTION_REMOVE_BACKGROUND,
    ACTION_USE_SKETCH,
    ACTION_USE_STYLE,
    ACTION_DESCRIBE,
)
TURN_ACTIONS = (ACTION_USE_HIT, ACTION_REROLL, ACTION_VARY, ACTION_PICK_WINNER, *IMAGE_ACTIONS)
RETRY_OPS = {
    ACTION_USE_HIT: "use_hit",
    ACTION_VARY: "vary",
    ACTION_PICK_WINNER: "pick",
    ACTION_REROLL: "reroll",
    ACTION_UPSCALE: "upscale",
    ACTION_REMOVE_BACKGROUND: "cutout",
    ACTION_USE_SKETCH: "sketch",
    ACTION_USE_STYLE: "style",
    ACTION_DESCRIBE: "describe",
}
NUMBERED_OPS = ("use_hit", "pick", "upscale", "cutout", "sketch", "style", "describe")  # retried with n
ICON_IMAGES = 2  # the avatar's icon: an upscale and a background removal


class Click:
    """One button click: who, where, which button and its decoded value."""

    def __init__(self, body: dict[str, Any]) -> None:
        actions = body.get("actions") if isinstance(body.get("actions"), list) else []
        action = actions[0] if actions and isinstance(actions[0], dict) else {}
        container = body.get("container") if isinstance(body.get("container"), dict) else {}
        message = body.get("message") if isinstance(body.get("message"), dict) else {}
        user = body.get("user") if isinstance(body.get("user"), dict) else {}
        channel = body.get("channel") if isinstance(body.get("channel"), dict) else {}
        self.team_id = team_of(body)
        self.user_id = str((user or {}).get("id") or "")
        self.action_id = str(action.get("action_id") or "")
        self.value = str(action.get("value") or "")
        self.trigger_id = str(body.get("trigger_id") or "")
        self.channel = str((container or {}).get("channel_id") or (channel or {}).get("id") or "")
        self.message_ts = str((container or {}).get("message_ts") or (message or {}).get("ts") or "")
        self.thread_ts = str(
            (container or {}).get("thread_ts") or (message or {}).get("thread_ts") or self.message_ts
        )

    @property
    def target(self) -> ThreadTarget | None:
        """The thread the clicked message is in."""
        return ThreadTarget(self.channel, self.thread_ts) if self.channel and self.thread_ts else None

    def numbers(self) -> tuple[int, int | None]:
        """(thread id, number) from the button value; BotError when it is malformed."""
        try:
            return parse_action_value(self.value)
        except ValueError as exc:
            raise BotError(OUT_OF_DATE) from exc


def turn_operation(
    services: Services, client: WebClient, click: Click, thread: ThreadRecord, number: int | None
) -> Operation:
    """The engine call a turn-making button stands for."""
    conversation, team, user = services.conversation, click.team_id, click.user_id

    def defaults() -> UserDefaults:
        return services.defaults.effective_defaults(team, thread.ref.channel_id, user)

    if click.action_id == ACTION_USE_HIT:
        if number is None:
            raise BotError("that button does not say which library prompt to use")
        return lambda _: conversation.use_hit(team, thread.id, number, defaults())
    if click.action_id == ACTION_VARY:
        return lambda _: conversation.vary(team, thread.id, defaults())
    if click.action_id == ACTION_PICK_WINNER:
        return lambda _: pick(services, client, team, thread, defaults())
    if click.action_id in IMAGE_ACTIONS:
        return image_operation(services, click.action_id, team, thread, number, defaults)
    return lambda _: conversation.reroll(team, thread.id, defaults())


def image_operation(
    services: Services,
    action_id: str,
    team: str,
    thread: ThreadRecord,
    turn_id: int | None,
    defaults: Callable[[], UserDefaults],
) -> Operation:
    """The engine call of an image button: on the image (or person's picture) of turn `turn_id`."""
    conversation = services.conversation
    if action_id == ACTION_UPSCALE:
        return lambda _: conversation.upscale(team, thread.id, turn_id)
    if action_id == ACTION_REMOVE_BACKGROUND:
        return lambda _: conversation.remove_background(team, thread.id, turn_id)
    if turn_id is None:
        raise BotError("that button does not say which picture to use")
    if action_id == ACTION_DESCRIBE:
        return lambda show: conversation.describe_picture(team, thread.id, turn_id, defaults(), show)
    if action_id == ACTION_USE_SKETCH:
        return lambda _: conversation.use_picture(team, thread.id, turn_id, "sketch")
    return lambda _: conversation.use_picture(team, thread.id, turn_id, "style")


def pick(
    services: Services, client: WebClient, team_id: str, thread: ThreadRecord, defaults: UserDefaults
) -> TurnResult:
    """Tally the votes, announce the winner, and refine it."""
    _, turns = services.conversation.history(team_id, thread.id)
    brainstorms = [turn for turn in turns if turn.kind == "brainstorm"]
    candidates = len(brainstorms[-1].params.get("candidates", [])) if brainstorms else 0
    if not candidates:
        raise BotError("this thread has no brainstorm to pick from")
    votes = {n: 0 for n in range(1, candidates + 1)}
    votes.update({n: c for n, c in services.feedback.tally(team_id, thread.id).items() if n in votes})
    winner = pick_winner(votes) or 1
    target = ThreadTarget(thread.ref.channel_id, thread.ref.thread_ts)
    post_or_log(services, client, target, message_blocks.winner_message(winner, votes))
    return services.conversation.pick(team_id, thread.id, winner, defaults)


def post_or_log(
    services: Services, client: WebClient, target: ThreadTarget, payload: message_blocks.Message
) -> None:
    """Post in a thread; a failure is only logged."""
    try:
        post(client, target, payload)
    except SlackApiError as exc:
        services.logger.warning("could not post in %s: %s", target.channel, slack_error(exc))


def clicked(
    services: Services, client: WebClient, body: dict[str, Any]
) -> tuple[Click, ThreadRecord, int | None] | None:
    """The click, its thread and number, or None after telling the user why the button cannot work."""
    click = Click(body)
    target = click.target
    if target is None or not click.user_id or not click.action_id:
        services.logger.warning("a button click without a message, user or action")
        return None
    try:
        thread_id, number = click.numbers()
        thread = services.threads.find_thread(click.team_id, thread_id)
        if thread is None:
            raise BotError(OUT_OF_DATE)
    except BotError as exc:
        tell_user(client, services, target, click.user_id, message_blocks.error_message(str(exc)))
        return None
    return click, thread, number


def on_turn_click(services: Services, client: WebClient, body: dict[str, Any]) -> None:
    """Use #n, Re-roll, Variations and Pick winner: one new turn in the thread, once per click."""
    found = clicked(services, client, body)
    if found is None:
        return
    click, thread, number = found
    target = ThreadTarget(thread.ref.channel_id, thread.ref.thread_ts)
    if click.action_id == ACTION_PICK_WINNER and click.user_id != thread.owner_user_id:
        who = f"<@{thread.owner_user_id}>"
        tell_user(
            client,
            services,
            target,
            click.user_id,
            message_blocks.error_message(f"only {who} can pick the winner"),
        )
        return
    turns = services.threads.turns(click.team_id, thread.id)
    latest = turns[-1].id if turns else 0
    key = f"{click.action_id}:{thread.id}:{click.value}:{click.user_id}:{latest}"
    if not first_delivery(services, click.team_id, key, "click"):
        return  # a double click (or Slack's retry) while the first is still on the way
    try:
        operation = turn_operation(services, client, click, thread, number)
    except BotError as exc:
        tell_user(client, services, target, click.user_id, message_blocks.error_message(str(exc)))
        return
    op = RETRY_OPS.get(click.action_id, "reroll")
    retry = retry_value(op, n=number) if number is not None and op in NUMBERED_OPS else retry_value(op)
    requester = Requester(click.team_id, click.user_id, FOLLOW_UP_IMAGES)  # each of these buttons draws 1
    if run_turn(client, services, target, operation, requester, retry) is None:
        forget_delivery(services, click.team_id, key, "click")  # it failed: the same click may try again
    elif click.action_id == ACTION_PICK_WINNER:  # the refined winner, then the team's icon
        make_icon(services, client, click.team_id, click.user_id, thread)


def make_icon(services: Services, client: WebClient, team: str, user: str, thread: ThreadRecord) -> None:
    """Turn the thread's latest image (the refined winner) into a square transparent icon, posted."""
    target = ThreadTarget(thread.ref.channel_id, thread.ref.thread_ts)
    requester = Requester(team, user, ICON_IMAGES)

    def icon(_: object) -> TurnResult:
        return services.conversation.make_icon(team, thread.id)

    run_turn(client, services, target, icon, requester, retry_value("icon"))


def clicked_turn(
    services: Services, client: WebClient, body: dict[str, Any]
) -> tuple[Click, TurnRecord] | None:
    """A result button's click and the turn it belongs to (value '<thread_id>:<turn_id>')."""
    found = clicked(services, client, body)
    if found is None:
        return None
    click, thread, turn_id = found
    turn = services.threads.find_turn(click.team_id, turn_id) if turn_id else None
    if turn is None or turn.thread_id != thread.id:
        target = ThreadTarget(thread.ref.channel_id, thread.ref.thread_ts)
        tell_user(client, services, target, click.user_id, message_blocks.error_message(OUT_OF_DATE))
        return None
    return click, turn


def on_edit(services: Services, client: WebClient, body: dict[str, Any]) -> None:
    """Edit prompt: open a modal prefilled with the clicked result's prompt."""
    found = clicked_turn(services, client, body)
    if found is None:
        return
    click, turn = found
    view = edit_prompt_modal(turn.thread_id, turn.prompt or "", turn.negative_prompt or "")
    try:
        client.views_open(trigger_id=click.trigger_id, view=view)
    except SlackApiError as exc:
        services.logger.warning("could not open the edit modal: %s", slack_error(exc))
        note = message_blocks.error_message(
            "I couldn't open the editor in time; please press Edit prompt again."
        )
        tell_user(client, services, click.target, click.user_id, note)


def on_save(services: Services, client: WebClient, body: dict[str, Any]) -> None:
    """Save to library: keep the clicked result's prompt in the clicker's saved prompts."""
    found = clicked_turn(services, client, body)
    if found is None:
        return
    click, turn = found
    params = {key: turn.params.get(key) for key in ("seed", "aspect_ratio", "style")}
    params["image_model"] = turn.image_model
    services.defaults.save_prompt(
        click.team_id, click.user_id, turn.prompt or "", turn.negative_prompt or "", params
    )
    note = ":floppy_disk: Saved to your library. Find it on my *Home* tab."
    tell_user(
        client, services, click.target, click.user_id, message_blocks.message([message_blocks.section(note)])
    )


def on_feedback(services: Services, client: WebClient, body: dict[str, Any]) -> None:
    """👍 / 👎 on a result: one value per user and turn (a later click replaces it)."""
    found = clicked_turn(services, client, body)
    if found is None:
        return
    click, turn = found
    value = 1 if click.action_id == ACTION_FEEDBACK_UP else -1
    services.feedback.record_feedback(click.team_id, int(turn.id or 0), click.user_id, value)
    text = "Thanks, glad it works." if value > 0 else "Thanks. Reply in the thread with what to change."
    tell_user(
        client, services, click.target, click.user_id, message_blocks.message([message_blocks.context(text)])
    )


def on_vote(services: Services, client: WebClient, body: dict[str, Any]) -> None:
    """Vote #n on a brainstorm candidate (the same as its number reaction)."""
    found = clicked(services, client, body)
    if found is None:
        return
    click, thread, number = found
    if number is None or thread.mode != "avatar":
        tell_user(client, services, click.target, click.user_id, message_blocks.error_message(OUT_OF_DATE))
        return
    services.feedback.vote(click.team_id, thread.id, click.user_id, number)
    count = services.feedback.tally(click.team_id, thread.id).get(number, 0)
    text = f":ballot_box_with_ballot: Your vote for #{number} is in (#{number} has {count})."
    tell_user(
        client, services, click.target, click.user_id, message_blocks.message([message_blocks.context(text)])
    )


def register(registrar: Registrar, services: Services) -> None:
    """Register every button of hits, results and brainstorms."""

    def acknowledge(ack: Ack) -> None:
        ack()

    def lazily(handler: Callable[[Services, WebClient, dict[str, Any]], None]) -> Callable[..., None]:
        def run(body: dict[str, Any], client: WebClient) -> None:
            try:
                handler(services, client, body)
            except Exception:
                services.logger.exception("a button handler failed")

        return run

    for action_id in TURN_ACTIONS:
        registrar.action(action_id, acknowledge, [lazily(on_turn_click)])
    registrar.action(ACTION_EDIT_PROMPT, acknowledge, [lazily(on_edit)])
    registrar.action(ACTION_SAVE_PROMPT, acknowledge, [lazily(on_save)])
    registrar.action(ACTION_FEEDBACK_UP, acknowledge, [lazily(on_feedback)])
    registrar.action(ACTION_FEEDBACK_DOWN, acknowledge, [lazily(on_feedback)])
    registrar.action(ACTION_VOTE, acknowledge, [lazily(on_vote)])
