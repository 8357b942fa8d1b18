"""imagine-bot: the Slack app, its CLI and the composition root."""
