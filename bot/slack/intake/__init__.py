"""Slack intake: the HTTP request guard, the health endpoint and Socket Mode connections."""
