"""What the Slack listeners need: the engine, the stores they use (as Protocols), fair use and a logger."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.engine.conversation import Conversation
from bot.engine.ports import RecentImage, SavedPromptLike, ThreadStore, UserDefaults
from bot.scheduling.fair_use import FairUse
from bot.scheduling.job_journal import JobTracker
from bot.scheduling.thread_order import ThreadSequencer


class DefaultsStore(Protocol):
    """User and channel defaults and saved prompts (storage.defaults_store.SqlDefaultsStore)."""

    def user_defaults(self, team_id: str, user_id: str) -> UserDefaults:
        """The user's own defaults."""
        ...

    def set_user_defaults(self, team_id: str, user_id: str, defaults: UserDefaults) -> None:
        """Replace the user's defaults."""
        ...

    def channel_defaults(self, team_id: str, channel_id: str) -> UserDefaults:
        """The channel's defaults."""
        ...

    def set_channel_defaults(self, team_id: str, channel_id: str, defaults: UserDefaults) -> None:
        """Replace the channel's defaults."""
        ...

    def effective_defaults(self, team_id: str, channel_id: str, user_id: str) -> UserDefaults:
        """The user's defaults, falling back to the channel's field by field."""
        ...

    def save_prompt(
        self,
        team_id: str,
        user_id: str,
        prompt: str,
        negative_prompt: str = "",
        params: dict[str, object] | None = None,
    ) -> object:
        """Save a prompt to the user's library."""
        ...

    def saved_prompts(self, team_id: str, user_id: str, limit: int = 50) -> Sequence[SavedPromptLike]:
        """The user's saved prompts, newest first."""
        ...


class FeedbackStore(Protocol):
    """Thumbs and votes (storage.feedback_store.SqlFeedbackStore)."""

    def record_feedback(
        self, team_id: str, turn_id: int, user_id: str, value: int, image_sha256: str | None = None
    ) -> None:
        """A user's +1 or -1 on a turn; a later value replaces theirs."""
        ...

    def vote(self, team_id: str, thread_id: int, user_id: str, number: int) -> bool:
        """Cast a vote; False when it was already cast."""
        ...

    def unvote(self, team_id: str, thread_id: int, user_id: str, number: int) -> bool:
        """Take a vote back; False when there was none."""
        ...

    def tally(self, team_id: str, thread_id: int) -> dict[int, int]:
        """Votes per candidate number."""
        ...


class EventLedger(Protocol):
    """Which Slack deliveries were already handled (storage.ledger.SqlEventLedger)."""

    def claim(self, team_id: str, event_id: str, kind: str) -> bool:
        """True only for the first claim of this id."""
        ...

    def release(self, team_id: str, event_id: str) -> bool:
        """Forget a claim so the same delivery may be handled again."""
        ...


class RecentImages(Protocol):
    """A user's recent images for the Home tab."""

    def recent_images(self, team_id: str, user_id: str, limit: int = 10) -> Sequence[RecentImage]:
        """Newest first."""
        ...


@dataclass(frozen=True)
class Services:
    """The app's collaborators, built once by the composition root."""

    conversation: Conversation
    threads: ThreadStore
    defaults: DefaultsStore
    feedback: FeedbackStore
    ledger: EventLedger
    fair_use: FairUse
    recent: RecentImages
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("bot.app"))
    bot_name: str = "imagine"
    jobs: JobTracker | None = None
    sequencer: ThreadSequencer = field(default_factory=ThreadSequencer)
