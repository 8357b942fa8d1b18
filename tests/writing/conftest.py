"""The Bedrock Runtime stand-in and its Converse script, shared by the writing tests that call Claude."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.bedrock_converse import ConverseScript, install_converse_handlers
from sandbox.bedrock_runtime import FakeBedrockRuntime


@pytest.fixture
def fake() -> Iterator[FakeBedrockRuntime]:
    """A running Bedrock Runtime stand-in on 127.0.0.1."""
    with FakeBedrockRuntime() as server:
        yield server


@pytest.fixture
def script(fake: FakeBedrockRuntime, aws_test_credentials: None) -> ConverseScript:
    """Converse handlers for Claude ids on the stand-in, with dummy credentials."""
    return install_converse_handlers(fake)
