"""Names the Slack app registers: slash commands, events, action ids and view callback ids (one place)."""

from __future__ import annotations

COMMAND_IMAGINE = "/imagine"
COMMAND_AVATAR = "/avatar"
COMMANDS = (COMMAND_IMAGINE, COMMAND_AVATAR)

EVENT_APP_MENTION = "app_mention"
EVENT_MESSAGE = "message"  # message.channels, message.groups, message.im in the manifest
EVENT_REACTION_ADDED = "reaction_added"
EVENT_REACTION_REMOVED = "reaction_removed"
EVENT_APP_HOME_OPENED = "app_home_opened"
EVENTS = (
    EVENT_APP_MENTION,
    EVENT_MESSAGE,
    EVENT_REACTION_ADDED,
    EVENT_REACTION_REMOVED,
    EVENT_APP_HOME_OPENED,
)
MANIFEST_BOT_EVENTS = (
    "app_mention",
    "message.channels",
    "message.groups",
    "message.im",
    "reaction_added",
    "reaction_removed",
    "app_home_opened",
)

ACTION_USE_HIT = "use_hit"  # value: "<thread_id>:<n>"
ACTION_REROLL = "reroll"
ACTION_VARY = "vary"
ACTION_EDIT_PROMPT = "edit_prompt"
ACTION_SAVE_PROMPT = "save_prompt"
ACTION_FEEDBACK_UP = "feedback_up"
ACTION_FEEDBACK_DOWN = "feedback_down"
ACTION_VOTE = "vote"  # value: "<thread_id>:<n>"
ACTION_PICK_WINNER = "pick_winner"
ACTION_RETRY = "retry"
ACTION_OPEN_DEFAULTS = "open_settings"
ACTION_UPSCALE = "upscale"  # value: "<thread_id>:<turn_id>" of the image
ACTION_REMOVE_BACKGROUND = "remove_background"
ACTION_USE_SKETCH = "use_sketch"  # value: "<thread_id>:<turn_id>" of a person's picture
ACTION_USE_STYLE = "use_style"
ACTION_DESCRIBE = "describe_picture"
ACTIONS = (
    ACTION_USE_HIT,
    ACTION_REROLL,
    ACTION_VARY,
    ACTION_EDIT_PROMPT,
    ACTION_SAVE_PROMPT,
    ACTION_FEEDBACK_UP,
    ACTION_FEEDBACK_DOWN,
    ACTION_VOTE,
    ACTION_PICK_WINNER,
    ACTION_RETRY,
    ACTION_OPEN_DEFAULTS,
    ACTION_UPSCALE,
    ACTION_REMOVE_BACKGROUND,
    ACTION_USE_SKETCH,
    ACTION_USE_STYLE,
    ACTION_DESCRIBE,
)

VIEW_EDIT_PROMPT = "edit_prompt_modal"
VIEW_USER_DEFAULTS = "settings_modal"
VIEW_CHANNEL_DEFAULTS = "channel_settings_modal"
VIEWS = (VIEW_EDIT_PROMPT, VIEW_USER_DEFAULTS, VIEW_CHANNEL_DEFAULTS)

# Least bot scopes the app needs (the manifest test checks the manifest lists exactly these).
BOT_SCOPES = (
    "app_mentions:read",
    "channels:history",
    "channels:read",
    "chat:write",
    "commands",
    "files:read",
    "files:write",
    "groups:history",
    "groups:read",
    "im:history",
    "reactions:read",
    "reactions:write",
)
