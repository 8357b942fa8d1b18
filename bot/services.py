"""What the Slack listeners need: the conversation engine, the thread store and a logger."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from bot.conversation import Conversation
from bot.ports import ThreadStore


@dataclass(frozen=True)
class Services:
    """The app's collaborators, built once by the composition root."""

    conversation: Conversation
    threads: ThreadStore
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("bot.app"))
    bot_name: str = "imagine"
