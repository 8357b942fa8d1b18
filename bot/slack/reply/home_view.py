"""The App Home tab: the user's recent images, saved prompts and personal defaults (pure builder)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.engine.ports import SavedPromptLike, UserDefaults
from bot.slack.ids import ACTION_OPEN_DEFAULTS
from bot.slack.reply.message_blocks import (
    Block,
    actions,
    button,
    context,
    header,
    mrkdwn,
    section,
    truncate,
    user_line,
)
from bot.slack.reply.modal_views import View

HOME_ITEMS = 10
HOME_PROMPT_CHARS = 500
FIELD_TEXT = 2000
_LINK = re.compile(r"https://[^\s<>|]{1,2900}")


@dataclass(frozen=True)
class HomeImage:
    """A recent image as the Home tab lists it: prompt, seed, model and a link to its thread."""

    prompt: str
    seed: int
    permalink: str | None = None
    model_id: str = ""
    created_utc: datetime | None = None


def _date(when: datetime) -> str:
    """A Slack date token that renders in the reader's time zone."""
    stamp = when if when.tzinfo else when.replace(tzinfo=UTC)
    fallback = stamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(stamp.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def _image(number: int, image: HomeImage) -> Block:
    """One recent image: prompt, then seed, model, date and a link to its thread."""
    details = [f"seed `{image.seed}`"]
    if image.model_id:
        details.append(user_line(image.model_id, 200))
    if image.created_utc:
        details.append(_date(image.created_utc))
    if image.permalink and _LINK.fullmatch(image.permalink):
        details.append(f"<{image.permalink.replace('&', '&amp;')}|Open thread>")
    text = f"*{number}.* {user_line(image.prompt, HOME_PROMPT_CHARS)}\n{' · '.join(details)}"
    return section(text, block_id=f"home_image_{number}")


def _saved(number: int, saved: SavedPromptLike) -> Block:
    """One saved prompt with its negative prompt."""
    text = f"*{number}.* {user_line(saved.prompt, HOME_PROMPT_CHARS)}"
    if saved.negative_prompt:
        text += f"\n_Negative:_ {user_line(saved.negative_prompt, 300)}"
    return section(text, block_id=f"home_saved_{number}")


def _field(name: str, value: str | None) -> Block:
    """One 'name / value' field of the defaults section."""
    shown = user_line(value, 500) if value else "_not set_"
    return mrkdwn(truncate(f"*{name}*\n{shown}", FIELD_TEXT))


def home_view(
    recent_images: Sequence[HomeImage], saved_prompts: Sequence[SavedPromptLike], defaults: UserDefaults
) -> View:
    """The Home tab view (views.publish): recent images, saved prompts, defaults and 'Edit defaults'."""
    divider: Block = {"type": "divider"}
    blocks: list[Block] = [
        header(":art: imagine"),
        section(
            "Turn an idea into a picture with `/imagine your idea` in any channel I'm in, then reply in "
            "its thread to refine it. `/imagine help` lists the options."
        ),
        divider,
        header("Recent images"),
    ]
    images = [_image(n, image) for n, image in enumerate(recent_images[:HOME_ITEMS], start=1)]
    blocks += images or [context("No images yet. Try `/imagine a lighthouse at dusk, oil painting`.")]
    blocks += [divider, header("Saved prompts")]
    saved = [_saved(n, prompt) for n, prompt in enumerate(saved_prompts[:HOME_ITEMS], start=1)]
    blocks += saved or [context("Nothing saved yet: press *Save to library* under an image.")]
    blocks += [
        divider,
        header("Your defaults"),
        {
            "type": "section",
            "block_id": "home_defaults",
            "fields": [
                _field("Aspect ratio", defaults.aspect_ratio),
                _field("Style", defaults.style),
                _field("Negative prompt", defaults.negative_prompt),
                _field("Image model", defaults.image_model),
            ],
        },
        actions("home_actions", button(":gear: Edit defaults", ACTION_OPEN_DEFAULTS, "user")),
        context("Channel defaults: run `/imagine --defaults` in that channel."),
    ]
    return {"type": "home", "blocks": blocks}
