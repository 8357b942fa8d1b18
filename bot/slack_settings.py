"""Slack credentials from SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and SLACK_API_URL, validated at start-up."""

from __future__ import annotations

from pydantic import SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.settings import SettingsError

DEFAULT_API_URL = "https://slack.com/api/"


class SlackSettings(BaseSettings):
    """The Slack app's bot token, signing secret and (for the sandbox) Web API base URL."""

    model_config = SettingsConfigDict(
        env_prefix="SLACK_", env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    bot_token: SecretStr
    signing_secret: SecretStr
    api_url: str | None = None

    @field_validator("bot_token", "signing_secret")
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
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL, e.g. https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @property
    def base_url(self) -> str:
        """SLACK_API_URL, or Slack's own Web API."""
        return self.api_url or DEFAULT_API_URL


def load_slack_settings() -> SlackSettings:
    """Read the Slack settings, turning validation errors into one SettingsError naming each variable."""
    try:
        return SlackSettings()  # type: ignore[call-arg]  # the fields come from the environment
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "SLACK_" + "_".join(str(part) for part in error["loc"]).upper()
            message = "is not set" if error["type"] == "missing" else str(error["msg"])
            problems.append(f"{name} {message.removeprefix('Value error, ')}")
        raise SettingsError("invalid Slack setting: " + "; ".join(problems)) from None
