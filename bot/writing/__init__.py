"""Prompt writing: the chat template, Claude on Bedrock and the offline composer."""
