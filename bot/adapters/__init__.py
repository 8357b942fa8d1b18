"""Adapters of the bot ports: image models on Bedrock, SageMaker and an offline preview."""
