"""Slack credentials from SLACK_* variables: one workspace's bot token, or OAuth app credentials for many."""

from __future__ import annotations

from typing import Any, Self

from pydantic import SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.config import ConfigError

DEFAULT_API_URL = "https://slack.com/api/"


def _http_url(value: str, example: str) -> str:
    """Reject anything but an http(s) URL."""
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must be an http(s) URL, e.g. {example}")
    return value


class SlackCredentials(BaseSettings):
    """The signing secret and either a bot token (one workspace) or client id/secret (OAuth, many)."""

    model_config = SettingsConfigDict(
        env_prefix="SLACK_", env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    bot_token: SecretStr | None = None
    signing_secret: SecretStr
    api_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    redirect_uri: str | None = None
    authorization_url: str | None = None

    @field_validator(
        "bot_token", "client_id", "client_secret", "redirect_uri", "authorization_url", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("signing_secret")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("api_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        _http_url(value, "https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("redirect_uri")
    @classmethod
    def _redirect_uri(cls, value: str | None) -> str | None:
        return value and _http_url(value, "https://bot.example.com/slack/oauth_redirect")

    @field_validator("authorization_url")
    @classmethod
    def _authorization_url(cls, value: str | None) -> str | None:
        return value and _http_url(value, "https://slack.com/oauth/v2/authorize")

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if (self.client_id is None) != (self.client_secret is None):
            missing, given = (
                ("SLACK_CLIENT_SECRET", "SLACK_CLIENT_ID")
                if self.client_secret is None
                else ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")
            )
            raise ValueError(f"{missing} is not set (OAuth needs it with {given})")
        if self.client_id is None and self.bot_token is None:
            raise ValueError(
                "SLACK_BOT_TOKEN is not set (or set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET "
                "to install the app in many workspaces)"
            )
        return self

    @property
    def base_url(self) -> str:
        """SLACK_API_URL, or Slack's own Web API."""
        return self.api_url or DEFAULT_API_URL

    @property
    def oauth(self) -> bool:
        """True when SLACK_CLIENT_ID/SLACK_CLIENT_SECRET are set: OAuth installs, a token per workspace."""
        return self.client_id is not None and self.client_secret is not None


def load_slack_credentials() -> SlackCredentials:
    """Read the Slack settings, turning validation errors into one ConfigError naming each variable."""
    try:
        return SlackCredentials()  # type: ignore[call-arg]  # the fields come from the environment
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = "is not set" if error["type"] == "missing" else str(error["msg"])
            message = message.removeprefix("Value error, ")
            if error["loc"]:  # model-level errors name their variables themselves
                message = "SLACK_" + "_".join(str(part) for part in error["loc"]).upper() + " " + message
            problems.append(message)
        raise ConfigError("invalid Slack setting: " + "; ".join(problems)) from None
