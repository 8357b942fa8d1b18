"""Loopback stand-ins of Slack and Bedrock for the demo, benches and tests; the app never imports them."""
