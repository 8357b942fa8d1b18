"""What a user reads when a turn fails: one plain message, whether Retry can help, and a reworded request.

`describe` is pure (no I/O, no logging): it maps any exception a turn may raise (the bot's BotErrors,
retrieval, storage and Slack errors, or a bug) to a FaultMessage. What only an operator can fix (a
retired or unknown model, denied access, a library that is down) is told to the user in plain words;
model ids, regions and settings to change go to the operator's log line instead (the Bedrock adapters
log their failures; bot.slack.reply.thread_posting logs the rest).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple
from urllib.error import URLError

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.engine.turn_errors import (
    AccessDeniedError,
    BotError,
    ContentFilteredError,
    ModelUnavailableError,
    ThrottledError,
    UpstreamError,
)
from retrieval.errors import (
    EmbeddingError,
    EmptyQueryError,
    IndexMismatchError,
    IndexMissingError,
    IndexUnavailableError,
    RetrievalError,
)
from storage.db_errors import DatabaseBusyError, StorageError

if TYPE_CHECKING:
    from retrieval.safety import SafetyClassifier

UNEXPECTED = "Something went wrong on my side; please try again in a moment."
ASK_ADMIN = "ask the admin who set up this bot"
LIBRARY_UNREACHABLE = (
    "The prompt library is unreachable right now, so I can't look up examples for a new idea. "
    "Press Retry in a minute; replies and re-rolls in threads already under way still work."
)
DROP_ABOVE = 0.3  # a lexicon term weighing more than this alone is left out of the suggestion
_WORD = re.compile(r"[^\W_]+")
_OPTIONS = re.compile(r"(?:^|\s)--[a-z]")


class FaultMessage(NamedTuple):
    """What to tell the user about a failed turn."""

    text: str  # one line for the thread
    retry: bool  # whether a Retry button can help (the same request again, later or with a new seed)
    suggestion: str | None  # a reworded request to copy (e.g. "/imagine a knight in armor"), if any


def describe(error: BaseException, attempted: str | None = None, command: str = "") -> FaultMessage:
    """The user's message for `error`; `attempted` is what the user asked (the idea or instruction).

    For a content-filtered request the suggestion is `attempted` without the words that most likely
    tripped the filter, prefixed by `command` (e.g. "/imagine"); options (--ar …) are kept as typed.
    """
    if isinstance(error, ContentFilteredError):
        return _filtered(error, attempted, command)
    if isinstance(error, ThrottledError):
        why = f" (still busy after {error.attempts} attempts)" if error.attempts else ""
        return FaultMessage(f"The AI service is busy right now{why}. Press Retry in a minute.", True, None)
    if isinstance(error, UpstreamError):
        return FaultMessage(f"An AI service failed: {_detail(error)}. Press Retry to try again.", True, None)
    if isinstance(error, ModelUnavailableError):
        what = _which_model(error)
        return FaultMessage(
            f"The {what} this bot uses is not available to this workspace right now; {ASK_ADMIN} "
            "(the bot's log says what to change)"
            + (", or pick another model with --model." if what == "image model" else "."),
            False,
            None,
        )
    if isinstance(error, AccessDeniedError):
        return FaultMessage(
            f"The bot is not allowed to use its AI models right now; {ASK_ADMIN} "
            "(the bot's log says what to change).",
            False,
            None,
        )
    if isinstance(error, BotError):  # the bot's own checks and ModelConfigError: their text is the advice
        return FaultMessage(_sentence(str(error)), False, None)
    if isinstance(error, RetrievalError):
        return _retrieval(error)
    if isinstance(error, DatabaseBusyError):
        return FaultMessage("My database is busy right now; press Retry in a moment.", True, None)
    if isinstance(error, StorageError):
        return FaultMessage("I could not reach my database; press Retry in a moment.", True, None)
    if isinstance(error, SlackApiError):
        return FaultMessage(f"Slack refused my reply ({slack_code(error)}).", True, None)
    if isinstance(error, SlackClientError | URLError | ConnectionError | TimeoutError):
        return FaultMessage(
            "I could not reach Slack or an AI service (a network problem); press Retry.", True, None
        )
    return FaultMessage(UNEXPECTED, True, None)


def slack_code(error: SlackApiError) -> str:
    """The Slack error code of a failed Web API call."""
    response = getattr(error, "response", None)
    try:
        return str(response["error"]) if response is not None else "unknown_error"
    except (KeyError, TypeError):
        return "unknown_error"


def reword(text: str) -> tuple[str, tuple[str, ...]]:
    """`text` without the words the safety lexicon weighs heavily, and those words (options kept as typed)."""
    options = _OPTIONS.search(text)
    body, tail = (text[: options.start()], text[options.start() :]) if options else (text, "")
    classifier = _classifier()
    heavy = [
        term for term in classifier.classify(body).matched if classifier.classify(term).score > DROP_ABOVE
    ]
    if not heavy:
        return text, ()
    words = list(_WORD.finditer(body))
    drop: set[int] = set()
    dropped: list[str] = []
    for term in heavy:
        size = len(term.split())
        for start in range(len(words) - size + 1):
            span = body[words[start].start() : words[start + size - 1].end()]
            if term in classifier.classify(span).matched:
                drop.update(range(start, start + size))
                dropped.append(span)
    if not drop:
        return text, ()
    kept, last = [], 0
    for i, word in enumerate(words):
        if i in drop:
            kept.append(body[last : word.start()])
            last = word.end()
    kept.append(body[last:])
    return _tidy("".join(kept)) + tail, tuple(dict.fromkeys(dropped))


# helpers ----------------------------------------------------------------------------------------------------
def _filtered(error: ContentFilteredError, attempted: str | None, command: str) -> FaultMessage:
    """The input filter refused the prompt, or the output filter blocked the drawn image."""
    reworded, dropped = reword(attempted) if attempted else ("", ())
    suggestion = f"{command} {reworded}".strip() if dropped and reworded.strip(" ,.-") else None
    likely = f" Words that likely tripped it: {', '.join(dropped)}." if dropped else ""
    if error.reason == "prompt":
        text = (
            "The image model's content filter refused this prompt (input filter), so nothing was drawn. "
            f"Reword it and try again.{likely}"
        )
        return FaultMessage(text, False, suggestion)
    text = (
        f"The image model drew a picture but its content filter blocked it ({error.reason} filter). "
        f"A new seed often gets through: press Retry, or reword the idea.{likely}"
    )
    return FaultMessage(text, True, suggestion)


def _retrieval(error: RetrievalError) -> FaultMessage:
    """Retrieval failures: the library is down, missing or mismatched, or the query cannot be embedded."""
    if isinstance(error, IndexUnavailableError):
        return FaultMessage(LIBRARY_UNREACHABLE, True, None)
    if isinstance(error, IndexMissingError | IndexMismatchError):
        return FaultMessage(
            f"The prompt library is not ready (it has not been built for this bot's settings); {ASK_ADMIN}.",
            False,
            None,
        )
    if isinstance(error, EmbeddingError):
        return FaultMessage(
            "I could not search the prompt library for this idea (the search model failed); press Retry.",
            True,
            None,
        )
    if isinstance(error, EmptyQueryError):
        return FaultMessage("Describe an idea first, e.g. `/imagine a cartoon of a dog`.", False, None)
    return FaultMessage(f"The prompt library failed ({_detail(error)}); press Retry.", True, None)


def _which_model(error: BotError) -> str:
    """'chat model' when the message is about IMAGINE_CHAT_MODEL, else 'image model'."""
    return "chat model" if "IMAGINE_CHAT_MODEL" in str(error) else "image model"


def _detail(error: BaseException) -> str:
    """The error's own text without a trailing ': try again …' (the message adds its own advice)."""
    text = " ".join(str(error).split())
    text = re.sub(r"[:;,]\s*(try again|please try again)\b.*$", "", text, flags=re.I)
    return text.rstrip(" .") or type(error).__name__


def _sentence(text: str) -> str:
    """One line starting with a capital letter."""
    line = " ".join(text.split())
    return line[:1].upper() + line[1:] if line else UNEXPECTED


def _tidy(text: str) -> str:
    """Spaces and commas left over from removed words, folded."""
    text = re.sub(r"\s+([,.;:])", r"\1", text)
    text = re.sub(r"([,;:])(\s*[,;:])+", r"\1", text)
    text = re.sub(r"\s{2,}", " ", text)
    return text.strip(" ,;:-")


@lru_cache(maxsize=1)
def _classifier() -> SafetyClassifier:
    """The safety lexicon of the retrieval package (loaded once)."""
    from retrieval.safety import SafetyClassifier

    return SafetyClassifier()
