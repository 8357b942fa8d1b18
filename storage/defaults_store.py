"""SqlDefaultsStore: user and channel defaults and saved prompts, scoped by Slack team id."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.engine.ports import UserDefaults
from storage.db import RACE_RETRIES, bound_url
from storage.db_errors import translated
from storage.models import ChannelSettings, SavedPrompt, UserSettings

logger = logging.getLogger(__name__)

SettingsRow = UserSettings | ChannelSettings
_Row = TypeVar("_Row", UserSettings, ChannelSettings)


@dataclass(frozen=True)
class SavedPromptRecord:
    """A prompt a user saved, with its negative prompt and parameters."""

    id: int
    team_id: str
    user_id: str
    prompt: str
    negative_prompt: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    created_utc: datetime | None = None


def _defaults(row: SettingsRow | None) -> UserDefaults:
    """A settings row as UserDefaults (all None when there is no row)."""
    if row is None:
        return UserDefaults()
    return UserDefaults(
        aspect_ratio=row.aspect_ratio,
        style=row.style,
        negative_prompt=row.negative_prompt,
        image_model=row.image_model,
    )


def _apply(row: SettingsRow, defaults: UserDefaults) -> None:
    """Copy every field of `defaults` onto a settings row."""
    row.aspect_ratio = defaults.aspect_ratio
    row.style = defaults.style
    row.negative_prompt = defaults.negative_prompt
    row.image_model = defaults.image_model


def merge_defaults(preferred: UserDefaults, fallback: UserDefaults) -> UserDefaults:
    """Field by field: the preferred value when set, else the fallback's."""
    return UserDefaults(
        aspect_ratio=preferred.aspect_ratio or fallback.aspect_ratio,
        style=preferred.style or fallback.style,
        negative_prompt=preferred.negative_prompt or fallback.negative_prompt,
        image_model=preferred.image_model or fallback.image_model,
    )


def _saved_record(row: SavedPrompt) -> SavedPromptRecord:
    """A SavedPrompt row as a record."""
    return SavedPromptRecord(
        id=row.id,
        team_id=row.team_id,
        user_id=row.user_id,
        prompt=row.prompt,
        negative_prompt=row.negative_prompt,
        params=dict(row.params_json),
        created_utc=row.created_utc,
    )


class SqlDefaultsStore:
    """Per-user and per-channel defaults plus saved prompts; every call is scoped by team id."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._url = bound_url(sessions)

    def user_defaults(self, team_id: str, user_id: str) -> UserDefaults:
        """The user's own defaults (all None when never set)."""
        with translated(self._url), self._sessions() as session:
            return _defaults(session.get(UserSettings, (team_id, user_id)))

    def set_user_defaults(self, team_id: str, user_id: str, defaults: UserDefaults) -> None:
        """Replace the user's defaults (UserDefaults() clears them)."""
        self._upsert(
            UserSettings, (team_id, user_id), lambda: UserSettings(team_id=team_id, user_id=user_id), defaults
        )

    def channel_defaults(self, team_id: str, channel_id: str) -> UserDefaults:
        """The channel's defaults (all None when never set)."""
        with translated(self._url), self._sessions() as session:
            return _defaults(session.get(ChannelSettings, (team_id, channel_id)))

    def set_channel_defaults(self, team_id: str, channel_id: str, defaults: UserDefaults) -> None:
        """Replace the channel's defaults (UserDefaults() clears them)."""
        self._upsert(
            ChannelSettings,
            (team_id, channel_id),
            lambda: ChannelSettings(team_id=team_id, channel_id=channel_id),
            defaults,
        )

    def effective_defaults(self, team_id: str, channel_id: str, user_id: str) -> UserDefaults:
        """What a turn uses: the user's value for each field, else the channel's."""
        with translated(self._url), self._sessions() as session:
            user = _defaults(session.get(UserSettings, (team_id, user_id)))
            channel = _defaults(session.get(ChannelSettings, (team_id, channel_id)))
        return merge_defaults(user, channel)

    def _upsert(
        self,
        model: type[_Row],
        key: tuple[str, str],
        new_row: Callable[[], _Row],
        defaults: UserDefaults,
    ) -> None:
        """Insert or update one settings row, tolerating a concurrent first insert."""
        with translated(self._url):
            for attempt in range(RACE_RETRIES):
                try:
                    with self._sessions.begin() as session:
                        row = session.get(model, key)
                        if row is None:
                            row = new_row()
                            session.add(row)
                        _apply(row, defaults)
                    return
                except IntegrityError:
                    if attempt == RACE_RETRIES - 1:
                        raise
                    logger.debug("settings %s were created concurrently; updating them", key)

    def save_prompt(
        self,
        team_id: str,
        user_id: str,
        prompt: str,
        negative_prompt: str = "",
        params: dict[str, Any] | None = None,
    ) -> SavedPromptRecord:
        """Keep a prompt for the user and return it with its id."""
        with translated(self._url), self._sessions.begin() as session:
            row = SavedPrompt(
                team_id=team_id,
                user_id=user_id,
                prompt=prompt,
                negative_prompt=negative_prompt,
                params_json=dict(params or {}),
            )
            session.add(row)
            session.flush()
            return _saved_record(row)

    def saved_prompts(self, team_id: str, user_id: str, limit: int = 50) -> list[SavedPromptRecord]:
        """The user's saved prompts, newest first."""
        with translated(self._url), self._sessions() as session:
            rows = session.scalars(
                select(SavedPrompt)
                .where(SavedPrompt.team_id == team_id, SavedPrompt.user_id == user_id)
                .order_by(SavedPrompt.id.desc())
                .limit(limit)
            ).all()
            return [_saved_record(row) for row in rows]

    def delete_saved_prompt(self, team_id: str, user_id: str, prompt_id: int) -> bool:
        """Delete one of the user's saved prompts; False when it is not theirs or does not exist."""
        with translated(self._url), self._sessions.begin() as session:
            result = session.execute(
                delete(SavedPrompt).where(
                    SavedPrompt.team_id == team_id,
                    SavedPrompt.user_id == user_id,
                    SavedPrompt.id == prompt_id,
                )
            )
            return cast(CursorResult[Any], result).rowcount > 0
