"""The conversation engine: turns, options, policy, ports and errors; no Slack, no vendor SDK."""
