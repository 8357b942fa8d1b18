"""The ways in: the `imagine-bot` CLI and the AWS Lambda handler."""
