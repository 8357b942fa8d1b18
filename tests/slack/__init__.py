"""Tests through the real Bolt app against the loopback Slack workspace."""
