"""A loopback Slack workspace (Web API stand-in) and a signed-request driver, for tests and the demo."""
