"""Loopback stand-ins of cloud APIs for tests (real SDKs talk HTTP to them on 127.0.0.1)."""

from .bedrock_runtime import BedrockFault, FakeBedrockRuntime, FakeResponse, RecordedRequest

__all__ = ["BedrockFault", "FakeBedrockRuntime", "FakeResponse", "RecordedRequest"]
