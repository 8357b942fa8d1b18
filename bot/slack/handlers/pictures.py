"""Pictures people post in one of the bot's threads: checked, downloaded with the bot token, kept, and
offered as a sketch, a style, or something to describe."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.engine.picture_checks import MAX_PICTURE_BYTES, MIME_TYPES, readable_size
from bot.engine.ports import ThreadRef
from bot.engine.turn_errors import BotError, ImageInputError
from bot.slack.reply import image_blocks, message_blocks
from bot.slack.reply.thread_posting import ThreadTarget, post, slack_error
from bot.slack.services import Services

DOWNLOAD_TIMEOUT_S = 30
SIGN_IN_PAGE = "text/html"  # what url_private answers without a valid bot token


def is_shared_picture(event: dict[str, Any]) -> bool:
    """True for a message in which a person shared files (subtype file_share, with a `files` list)."""
    files = event.get("files")
    shared = event.get("subtype") == "file_share" and isinstance(files, list) and bool(files)
    return shared and bool(event.get("user")) and not (event.get("bot_id") or event.get("bot_profile"))


def picture_reply(services: Services, client: WebClient, team: str, event: dict[str, Any]) -> None:
    """Keep the first picture of a file share in a bot thread and offer what to do with it."""
    channel, thread_ts, user = str(event["channel"]), str(event["thread_ts"]), str(event["user"])
    thread = services.threads.find_thread_by_ref(ThreadRef(team, channel, thread_ts))
    if thread is None:
        return  # not one of the bot's threads
    target = ThreadTarget(channel, thread_ts)
    files = [file for file in event.get("files") or [] if isinstance(file, dict)]
    picture = next((f for f in files if str(f.get("mimetype") or "").startswith("image/")), None)
    if picture is None:
        kinds = ", ".join(sorted({str(f.get("pretty_type") or f.get("filetype") or "file") for f in files}))
        _say(services, client, target, f"I can use pictures (PNG, JPEG, WebP or GIF), not {kinds} files.")
        return
    name = str(picture.get("name") or picture.get("title") or "the picture")
    caption = message_blocks.one_line(str(event.get("text") or ""))
    try:
        data = download(client, picture, name)
        turn = services.conversation.add_picture(team, thread.id, user, data, name, caption)
    except BotError as exc:
        _say(services, client, target, str(exc))
        return
    except (urllib.error.URLError, OSError) as exc:
        services.logger.warning("could not download %s in %s: %s", picture.get("id"), channel, exc)
        _say(services, client, target, f"I could not download {name} from Slack just now; post it again.")
        return
    record = turn.images[0]
    choices = image_blocks.picture_choices(
        thread.id, int(turn.id or 0), user, name, (record.width, record.height)
    )
    try:
        post(client, target, choices)
    except SlackApiError as exc:
        services.logger.warning("could not offer the picture's choices in %s: %s", channel, slack_error(exc))


def download(client: WebClient, file: dict[str, Any], name: str) -> bytes:
    """A shared file's bytes from url_private, with the bot token; ImageInputError when unusable."""
    mime_type = str(file.get("mimetype") or "")
    if mime_type not in MIME_TYPES:
        raise ImageInputError(f"{name} is a {mime_type or 'kind of'} file; post a PNG, JPEG, WebP or GIF")
    if file.get("mode") == "external" or file.get("is_external"):
        raise ImageInputError(f"{name} is a link to another service; upload the picture itself")
    size = file.get("size")
    if isinstance(size, int) and size > MAX_PICTURE_BYTES:
        raise ImageInputError(
            f"{name} is {readable_size(size)}; I take pictures up to {readable_size(MAX_PICTURE_BYTES)}"
        )
    url = str(file.get("url_private_download") or file.get("url_private") or "")
    if not url.startswith(("https://", "http://")):
        raise ImageInputError(f"Slack did not say where to download {name}; post it again")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {client.token or ''}"})
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as reply:
        if reply.headers.get_content_type() == SIGN_IN_PAGE:
            raise ImageInputError(
                f"Slack would not let me download {name}: the app needs the files:read scope (reinstall it)"
            )
        data: bytes = reply.read(MAX_PICTURE_BYTES + 1)
    if len(data) > MAX_PICTURE_BYTES:
        raise ImageInputError(f"{name} is over {readable_size(MAX_PICTURE_BYTES)}; post a smaller picture")
    return data


def _say(services: Services, client: WebClient, target: ThreadTarget, text: str) -> None:
    """An error reply in the thread; a failure to post it is only logged."""
    try:
        post(client, target, message_blocks.error_message(text))
    except SlackApiError as exc:
        services.logger.warning("could not reply in %s: %s", target.channel, slack_error(exc))
