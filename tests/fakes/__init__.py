"""Loopback stand-ins only the tests use: the Hugging Face Hub resolver and SageMaker Runtime."""
