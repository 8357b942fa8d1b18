"""The Slack app: Bolt app, credentials, OAuth, services, recovery; intake, handlers and replies."""
