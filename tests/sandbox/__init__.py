"""Tests of the loopback Slack workspace itself."""
