"""FakeSageMakerRuntime: a loopback SageMaker Runtime (InvokeEndpoint) stand-in for real botocore clients."""

from __future__ import annotations

import dataclasses
from urllib.parse import unquote

from sandbox.bedrock_image_models import sdxl
from sandbox.bedrock_runtime import BedrockFault, FakeBedrockRuntime, FakeResponse, RecordedRequest

ACCOUNT = "123456789012"
ACTION = "invocations"


class FakeSageMakerRuntime(FakeBedrockRuntime):
    """`POST /endpoints/{name}/invocations`; requests record the endpoint name as `model_id`."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        """Build the server (not started); unknown endpoints answer SageMaker's 'not found' error."""
        super().__init__(host)
        self.register(ACTION, "", _endpoint_not_found)

    def add_sdxl_endpoint(self, name: str) -> None:
        """Serve a JumpStart-style SDXL 1.0 endpoint (Stability v1 body and artifacts answer)."""
        self.register(ACTION, name, sdxl)

    def delete_endpoint(self, name: str) -> None:
        """Make an endpoint answer like a deleted one."""
        self.register(ACTION, name, _endpoint_not_found)

    def handle(self, request: RecordedRequest) -> FakeResponse:
        """Map the SageMaker path onto (action, model_id), then record and route as the Bedrock fake does."""
        parts = request.path.split("/")
        if request.method == "POST" and len(parts) == 4 and parts[1] == "endpoints" and parts[3] == ACTION:
            request = dataclasses.replace(request, action=ACTION, model_id=unquote(parts[2]))
        return super().handle(request)


def _endpoint_not_found(request: RecordedRequest) -> FakeResponse:
    """SageMaker's answer for an endpoint that does not exist."""
    raise BedrockFault(400, "ValidationError", f"Endpoint {request.model_id} of account {ACCOUNT} not found.")
