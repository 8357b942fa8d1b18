"""The App Home tab: recent images, saved prompts and personal defaults, edited in a modal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_bolt import Ack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.engine.ports import RecentImage, ThreadRef
from bot.slack.handlers.channel_defaults import acknowledge_settings, settings_errors, slack_call, view_values
from bot.slack.handlers.registry import Registrar
from bot.slack.handlers.thread_start import team_of, user_of
from bot.slack.ids import ACTION_OPEN_DEFAULTS, EVENT_APP_HOME_OPENED, VIEW_USER_DEFAULTS
from bot.slack.reply.home_view import HOME_ITEMS, HomeImage, home_view
from bot.slack.reply.modal_views import parse_settings_submission, settings_modal
from bot.slack.reply.thread_posting import slack_error
from bot.slack.services import Services


def permalink(services: Services, client: WebClient, ref: ThreadRef) -> str | None:
    """A link to a thread's root message, or None when Slack will not give one."""
    response = slack_call(
        services,
        f"get a permalink for {ref.channel_id}/{ref.thread_ts}",
        lambda: client.chat_getPermalink(channel=ref.channel_id, message_ts=ref.thread_ts),
    )
    link = response.get("permalink") if response is not None else None
    return str(link) if link else None


def home_images(services: Services, client: WebClient, recent: Sequence[RecentImage]) -> list[HomeImage]:
    """The newest images as the Home tab lists them, with one permalink call per distinct thread."""
    links: dict[ThreadRef, str | None] = {}
    images = []
    for image in recent[:HOME_ITEMS]:
        if image.ref not in links:
            links[image.ref] = permalink(services, client, image.ref)
        images.append(
            HomeImage(image.prompt, image.seed, links[image.ref], image.model_id, image.created_utc)
        )
    return images


def publish_home(services: Services, client: WebClient, team_id: str, user_id: str) -> None:
    """Publish the user's Home tab; storage and Slack failures are logged, never raised."""
    try:
        recent = list(services.recent.recent_images(team_id, user_id, HOME_ITEMS))
        saved = list(services.defaults.saved_prompts(team_id, user_id, HOME_ITEMS))
        defaults = services.defaults.user_defaults(team_id, user_id)
    except Exception:
        services.logger.exception("cannot read the Home tab of %s", user_id)
        return
    try:
        client.views_publish(
            user_id=user_id, view=home_view(home_images(services, client, recent), saved, defaults)
        )
    except SlackApiError as exc:
        services.logger.warning("could not publish the Home tab of %s: %s", user_id, slack_error(exc))
    except Exception:
        services.logger.exception("unexpected failure publishing the Home tab of %s", user_id)


def home_opened(services: Services, client: WebClient, body: dict[str, Any]) -> None:
    """Publish the Home tab when the user opens it (the Messages and About tabs are left alone)."""
    event = body.get("event") or {}
    user_id = str(event.get("user") or "")
    if event.get("tab") != "home" or not user_id:
        return
    publish_home(services, client, team_of(body), user_id)


def open_user_settings(services: Services, client: WebClient, body: dict[str, Any]) -> None:
    """Open the 'Your defaults' modal prefilled with the user's defaults; failures are logged."""
    user_id = user_of(body)
    trigger_id = str(body.get("trigger_id") or "")
    try:
        defaults = services.defaults.user_defaults(team_of(body), user_id)
        client.views_open(trigger_id=trigger_id, view=settings_modal(defaults, VIEW_USER_DEFAULTS))
    except SlackApiError as exc:
        services.logger.warning("could not open the settings of %s: %s", user_id, slack_error(exc))
    except Exception:
        services.logger.exception("cannot open the settings of %s", user_id)


def save_user_settings(services: Services, client: WebClient, body: dict[str, Any]) -> None:
    """Store valid submitted defaults, then republish the Home tab (the lazy half runs after any ack)."""
    user_id = user_of(body)
    team_id = team_of(body)
    if not user_id or not team_id:
        services.logger.warning("a settings submission without a user or team")
        return
    if settings_errors(view_values(body)):
        return  # the ack kept the modal open with field errors
    try:
        services.defaults.set_user_defaults(team_id, user_id, parse_settings_submission(view_values(body)))
    except Exception:
        services.logger.exception("cannot store the defaults of %s", user_id)
    publish_home(services, client, team_id, user_id)


def register(registrar: Registrar, services: Services) -> None:
    """Register the Home tab, its 'Edit defaults' button and the defaults modal."""

    def acknowledge(ack: Ack) -> None:
        ack()

    def on_home_opened(body: dict[str, Any], client: WebClient) -> None:
        home_opened(services, client, body)

    def on_open_settings(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        # views.open runs here, in the ack function, rather than in a lazy listener: with
        # process_before_response the ack function runs on the request thread at once, while lazy
        # listeners share an executor with turns that may wait for fair-use slots, and the trigger_id
        # dies 3 s after the click. One local read plus one views.open keeps the ack well inside 3 s.
        ack()
        open_user_settings(services, client, body)

    def on_settings_submitted(body: dict[str, Any], client: WebClient) -> None:
        save_user_settings(services, client, body)

    registrar.event(EVENT_APP_HOME_OPENED, acknowledge, [on_home_opened])
    registrar.action(ACTION_OPEN_DEFAULTS, on_open_settings)
    registrar.view(VIEW_USER_DEFAULTS, acknowledge_settings, [on_settings_submitted])
