"""Channel defaults: `/imagine --defaults` opens a modal for channel members; submissions are checked."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt import Ack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.config import PROVIDERS_IMAGE, ConfigError, split_provider
from bot.engine.ports import ASPECT_RATIOS, UserDefaults
from bot.slack.handlers.registry import Registrar
from bot.slack.handlers.thread_start import team_of, user_of
from bot.slack.ids import VIEW_CHANNEL_DEFAULTS
from bot.slack.reply import message_blocks
from bot.slack.reply.message_blocks import Block
from bot.slack.reply.modal_views import (
    MODEL_BLOCK,
    NO_DEFAULT,
    RATIO_BLOCK,
    RATIO_INPUT,
    View,
    parse_settings_submission,
    settings_modal,
)
from bot.slack.reply.thread_posting import slack_error
from bot.slack.services import Services

MEMBER_PAGE = 1000  # conversations.members allows up to 1000 ids a page
MEMBER_PAGES = 50  # stop after 50,000 members rather than page forever
RATIO_ERROR = "Aspect ratio: choose one of the listed ratios."
MODEL_ERROR = "Image model: use offline, bedrock:<model-id> or sagemaker:<endpoint-name>."
NOT_A_MEMBER = "Only members of <#{channel}> can change its defaults."
CANT_CHECK = "I couldn't check who is in <#{channel}> (Slack said {code}); please try again."
NOT_SAVED = "I couldn't save the defaults; please try again in a moment."
NOT_READ = "I couldn't read the channel's defaults; please try again in a moment."


# --- validation (pure) -----------------------------------------------------------------------------------


def settings_errors(values: Mapping[str, Any]) -> dict[str, str]:
    """Errors by input block_id for a settings modal's state values (empty when it is valid)."""
    errors: dict[str, str] = {}
    block = values.get(RATIO_BLOCK)
    element = block.get(RATIO_INPUT) if isinstance(block, Mapping) else None
    selected = element.get("selected_option") if isinstance(element, Mapping) else None
    ratio = selected.get("value") if isinstance(selected, Mapping) else None
    if ratio is not None and ratio != NO_DEFAULT and ratio not in ASPECT_RATIOS:
        errors[RATIO_BLOCK] = RATIO_ERROR
    model = parse_settings_submission(values).image_model
    if model and not valid_image_model(model):
        errors[MODEL_BLOCK] = MODEL_ERROR
    return errors


def valid_image_model(value: str) -> bool:
    """True for `offline`, `bedrock:<id>` or `sagemaker:<endpoint>` without spaces."""
    if any(ch.isspace() for ch in value):
        return False
    try:
        split_provider(value, "Image model", PROVIDERS_IMAGE)
    except ConfigError:
        return False
    return True


def describe(defaults: UserDefaults) -> str:
    """The defaults in one mrkdwn line ('nothing set' when all are empty)."""
    fields = (
        ("aspect ratio", defaults.aspect_ratio),
        ("style", defaults.style),
        ("negative prompt", defaults.negative_prompt),
        ("image model", defaults.image_model),
    )
    parts = [f"{name} `{message_blocks.user_line(value, 200)}`" for name, value in fields if value]
    return " · ".join(parts) or "nothing set (workspace defaults apply)"


def view_values(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """view.state.values of a view_submission payload."""
    view = body.get("view") or {}
    state = view.get("state") if isinstance(view, Mapping) else None
    values = state.get("values") if isinstance(state, Mapping) else None
    return values if isinstance(values, Mapping) else {}


def acknowledge_settings(ack: Ack, body: dict[str, Any]) -> None:
    """Ack a settings submission: field errors keep the modal open, otherwise it closes."""
    errors = settings_errors(view_values(body))
    if errors:
        ack(response_action="errors", errors=errors)
    else:
        ack()


def notice_modal(text: str) -> View:
    """A modal that only says something (no inputs, a Close button)."""
    body: Block = message_blocks.section(text)
    return {
        "type": "modal",
        "title": message_blocks.plain("Channel defaults", 24),
        "close": message_blocks.plain("Close", 24),
        "blocks": [body],
    }


# --- Slack calls ------------------------------------------------------------------------------------------


def is_member(client: WebClient, channel_id: str, user_id: str) -> bool:
    """True when the user is in the channel (conversations.members; SlackApiError when Slack refuses)."""
    cursor: str | None = None
    for _ in range(MEMBER_PAGES):
        response = client.conversations_members(channel=channel_id, limit=MEMBER_PAGE, cursor=cursor)
        if user_id in (response.get("members") or []):
            return True
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return False
    return False


def membership_problem(services: Services, client: WebClient, channel_id: str, user_id: str) -> str | None:
    """Why the user may not change the channel's defaults, or None when they may."""
    try:
        if is_member(client, channel_id, user_id):
            return None
    except SlackApiError as exc:
        code = slack_error(exc)
        services.logger.info("cannot list the members of %s: %s", channel_id, code)
        return CANT_CHECK.format(channel=channel_id, code=code)
    except Exception:  # fail closed: nobody changes a channel's defaults unchecked
        services.logger.exception("cannot list the members of %s", channel_id)
        return CANT_CHECK.format(channel=channel_id, code="unknown_error")
    return NOT_A_MEMBER.format(channel=channel_id)


def slack_call(services: Services, what: str, call: Callable[[], SlackResponse]) -> SlackResponse | None:
    """Make one Web API call; a failure is logged (as `what`) and gives None."""
    try:
        return call()
    except SlackApiError as exc:
        services.logger.warning("could not %s: %s", what, slack_error(exc))
    except Exception:
        services.logger.exception("could not %s", what)
    return None


def open_channel_settings(
    services: Services, client: WebClient, trigger_id: str, team_id: str, channel_id: str, user_id: str
) -> bool:
    """Open the channel defaults modal for a member (True) or a modal saying why not (False); never raises."""
    try:
        defaults = services.defaults.channel_defaults(team_id, channel_id)
    except Exception:
        services.logger.exception("cannot read the defaults of %s", channel_id)
        defaults = None
    view = (
        settings_modal(defaults, VIEW_CHANNEL_DEFAULTS, channel_id)
        if defaults is not None
        else notice_modal(f":x: {NOT_READ}")
    )
    # The trigger_id expires 3 s after the command, so the modal opens first; membership (which may
    # take several pages) is checked afterwards and a non-member's modal is replaced by the refusal.
    opened = slack_call(
        services,
        f"open the channel settings of {channel_id}",
        lambda: client.views_open(trigger_id=trigger_id, view=view),
    )
    if opened is None or defaults is None:
        return False
    problem = membership_problem(services, client, channel_id, user_id)
    if problem is None:
        return True
    view_id = str((opened.get("view") or {}).get("id") or "")
    refusal = notice_modal(f":no_entry: {problem}")
    slack_call(
        services, "replace a settings modal", lambda: client.views_update(view_id=view_id, view=refusal)
    )
    return False


def tell(services: Services, client: WebClient, channel_id: str, user_id: str, text: str) -> None:
    """An ephemeral note to the user in the channel, else a DM from the app; failures are only logged."""
    payload = message_blocks.message([message_blocks.section(text)])
    text, shown = payload["text"], payload["blocks"]
    posted = slack_call(
        services,
        f"post an ephemeral in {channel_id} (sending a DM instead)",
        lambda: client.chat_postEphemeral(channel=channel_id, user=user_id, text=text, blocks=shown),
    )
    if posted is None:
        slack_call(
            services,
            f"tell {user_id} about channel defaults",
            lambda: client.chat_postMessage(channel=user_id, text=text, blocks=shown),
        )


def save_channel_settings(services: Services, client: WebClient, body: dict[str, Any]) -> None:
    """Store a member's channel defaults and tell them; a non-member is told why not."""
    view = body.get("view") or {}
    channel_id = str(view.get("private_metadata") or "")
    user_id, team_id = user_of(body), team_of(body)
    if not channel_id or not user_id or not team_id:
        services.logger.warning("a channel settings submission without a channel, user or team")
        return
    if settings_errors(view_values(body)):
        return  # the ack kept the modal open with field errors (lazy listeners run after any ack)
    problem = membership_problem(services, client, channel_id, user_id)
    if problem is not None:
        tell(services, client, channel_id, user_id, f":no_entry: {problem}")
        return
    defaults = parse_settings_submission(view_values(body))
    try:
        services.defaults.set_channel_defaults(team_id, channel_id, defaults)
    except Exception:
        services.logger.exception("cannot store the defaults of %s", channel_id)
        tell(services, client, channel_id, user_id, f":x: {NOT_SAVED}")
        return
    done = f":white_check_mark: Channel defaults updated: {describe(defaults)}"
    tell(services, client, channel_id, user_id, done)


def register(registrar: Registrar, services: Services) -> None:
    """Register the channel defaults modal's submission."""

    def on_submit(body: dict[str, Any], client: WebClient) -> None:
        save_channel_settings(services, client, body)

    registrar.view(VIEW_CHANNEL_DEFAULTS, acknowledge_settings, [on_submit])
