"""Errors of the bot's outside services, each with a message a user can act on."""


class BotError(Exception):
    """Base class; str(error) is a one-line message fit for a user."""


class ModelConfigError(BotError):
    """A model id or provider string cannot be used."""


class ContentFilteredError(BotError):
    """The image model refused the prompt or its output; `reason` says which."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ModelUnavailableError(BotError):
    """The model is unknown, end-of-life or not enabled in this account/region."""


class AccessDeniedError(BotError):
    """The credentials may not call this model."""


class ThrottledError(BotError):
    """The service kept throttling after botocore's retries; `attempts` is how many calls were made."""

    def __init__(self, message: str, attempts: int | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts


class UpstreamError(BotError):
    """Any other failure of an outside service (5xx, timeouts, malformed answers)."""


class RefusedError(BotError):
    """The prompt policy refused the idea; str(error) is a polite message, `reason` names the rule."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ImageInputError(BotError):
    """An image cannot be used as it is: not a picture, too big or small, an odd shape or format."""
