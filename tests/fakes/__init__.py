"""Loopback stand-ins only the tests use: Hugging Face Hub resolver, SageMaker Runtime, a Qdrant server."""
