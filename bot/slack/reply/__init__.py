"""Slack replies: posting into threads and the Block Kit messages, views and failure text."""
