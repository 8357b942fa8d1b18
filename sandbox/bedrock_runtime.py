"""FakeBedrockRuntime: a loopback HTTP stand-in of the Bedrock Runtime API for real botocore clients."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

from sandbox.loopback import LoopbackServer

logger = logging.getLogger(__name__)

TITAN_EMBED_V2 = "amazon.titan-embed-text-v2:0"
TITAN_V2_DIMENSIONS = (256, 512, 1024)
TITAN_V2_KEYS = {"inputText", "dimensions", "normalize", "embeddingTypes"}
END_OF_LIFE_MESSAGE = (
    "This model version has reached the end of its life. "
    "Please refer to the AWS documentation for more details."
)
_ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"
_WORD = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received; header names are lower-cased, body is parsed JSON when it is JSON."""

    method: str
    path: str
    action: str | None
    model_id: str | None
    headers: dict[str, str]
    body: Any
    raw_body: bytes = field(repr=False)
    received_at: float = field(default_factory=time.monotonic, repr=False)  # this process's monotonic clock


@dataclass
class FakeResponse:
    """What a handler answers: JSON `body` (or `raw` bytes with `content_type`), status and extra headers."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"


class BedrockFault(Exception):
    """Raise from a handler to answer like AWS: `x-amzn-ErrorType` header and a JSON {"message": ...}."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        """Keep the HTTP status, AWS error type and message."""
        super().__init__(f"{status} {error_type}: {message}")
        self.status = status
        self.error_type = error_type
        self.message = message

    def response(self) -> FakeResponse:
        """The AWS-shaped error response."""
        return FakeResponse(
            body={"message": self.message},
            status=self.status,
            headers={"x-amzn-ErrorType": f"{self.error_type}:{_ERROR_NAMESPACE}"},
        )


Handler = Callable[[RecordedRequest], FakeResponse]


@dataclass
class _Fault:
    """A scripted error for the next `times` matching requests."""

    fault: BedrockFault
    times: int
    action: str | None
    model_prefix: str | None

    def matches(self, request: RecordedRequest) -> bool:
        """Whether this fault applies to the request."""
        if self.action is not None and request.action != self.action:
            return False
        return self.model_prefix is None or (request.model_id or "").startswith(self.model_prefix)


class FakeBedrockRuntime(LoopbackServer):
    """Bedrock Runtime on 127.0.0.1:<free port>; handlers are routed by (action, model-id prefix)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        """Build the server (not started) with the Titan Text Embeddings V2 handler registered."""
        super().__init__(host, "fake-bedrock")
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._handlers: dict[tuple[str, str], Handler] = {}
        self.register("invoke", TITAN_EMBED_V2, titan_embed_v2)

    # lifecycle -------------------------------------------------------------------------------------------
    def serve_http(
        self, verb: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Parse the request, let `handle` answer it and add the headers AWS sends."""
        response = self.handle(_parse_request(verb, target, headers, raw))
        payload = response.raw if response.raw is not None else json.dumps(response.body).encode()
        answer = {"Content-Type": response.content_type, "x-amzn-RequestId": str(uuid.uuid4())}
        return response.status, {**answer, **response.headers}, payload

    @property
    def url(self) -> str:
        """Endpoint URL to give botocore (`endpoint_url=`)."""
        return self.root

    # routing and scripting -------------------------------------------------------------------------------
    def register(self, action: str, model_prefix: str, handler: Handler) -> None:
        """Route `POST /model/{id}/{action}` for ids starting with `model_prefix` (longest prefix wins)."""
        with self._lock:
            self._handlers[(action, model_prefix)] = handler

    def retire(self, model_id: str, action: str = "invoke") -> None:
        """Make a model answer like an end-of-life one (400 ValidationException)."""

        def handler(_: RecordedRequest) -> FakeResponse:
            raise BedrockFault(400, "ValidationException", END_OF_LIFE_MESSAGE)

        self.register(action, model_id, handler)

    def fail_next(
        self,
        status: int = 429,
        error_type: str = "ThrottlingException",
        message: str = "Too many requests, please wait before trying again.",
        times: int = 1,
        *,
        action: str | None = None,
        model_prefix: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests with this AWS error instead of routing them."""
        with self._lock:
            self._faults.append(
                _Fault(BedrockFault(status, error_type, message), times, action, model_prefix)
            )

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, action: str | None = None, model_id: str | None = None) -> list[RecordedRequest]:
        """Requests filtered by action and exact model id."""
        return [
            r
            for r in self.requests
            if (action is None or r.action == action) and (model_id is None or r.model_id == model_id)
        ]

    def clear(self) -> None:
        """Forget recorded requests and pending faults."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()

    def handle(self, request: RecordedRequest) -> FakeResponse:
        """Record the request, then answer a scripted fault or the registered handler's response."""
        with self._lock:
            self._requests.append(request)
            fault = self._take_fault(request)
            handler = self._route(request)
        try:
            if fault is not None:
                raise fault
            if request.action is None or request.model_id is None:
                raise BedrockFault(404, "UnknownOperationException", f"no route for {request.path}")
            if handler is None:
                raise _unknown_model(request.model_id)
            return handler(request)
        except BedrockFault as error:
            return error.response()

    def _take_fault(self, request: RecordedRequest) -> BedrockFault | None:
        """Pop one use of the first pending fault matching the request (lock held)."""
        for pending in self._faults:
            if pending.matches(request):
                pending.times -= 1
                if pending.times <= 0:
                    self._faults.remove(pending)
                return pending.fault
        return None

    def _route(self, request: RecordedRequest) -> Handler | None:
        """The handler with the longest matching model-id prefix for the action (lock held)."""
        best: tuple[int, Handler] | None = None
        for (action, prefix), handler in self._handlers.items():
            matches = action == request.action and (request.model_id or "").startswith(prefix)
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), handler)
        return best[1] if best else None


def _unknown_model(model_id: str) -> BedrockFault:
    """Bedrock's answer to an unknown id: well-formed ids are not found, malformed ones invalid."""
    if re.fullmatch(r"([a-z]{2,6}\.)?[a-z0-9-]+\.[A-Za-z0-9._:-]+|arn:aws[\w-]*:bedrock:.+", model_id):
        return BedrockFault(
            404,
            "ResourceNotFoundException",
            "Could not resolve the foundation model from the provided model identifier.",
        )
    return BedrockFault(400, "ValidationException", "The provided model identifier is invalid.")


def _parse_request(method: str, target: str, headers: dict[str, str], raw: bytes) -> RecordedRequest:
    """Split `/model/{url-encoded id}/{action}` and parse a JSON body."""
    path = urlsplit(target).path
    parts = path.split("/")
    action: str | None = None
    model_id: str | None = None
    if len(parts) == 4 and parts[1] == "model" and method == "POST":
        model_id, action = unquote(parts[2]), parts[3]
    body: Any = None
    if raw:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
    return RecordedRequest(
        method=method,
        path=path,
        action=action,
        model_id=model_id,
        headers={k.lower(): v for k, v in headers.items()},
        body=body,
        raw_body=raw,
    )


# Titan Text Embeddings V2 -------------------------------------------------------------------------------
def titan_embed_v2(request: RecordedRequest) -> FakeResponse:
    """Answer InvokeModel like amazon.titan-embed-text-v2:0 (deterministic, word-overlap-aware vectors)."""
    body = request.body
    if not isinstance(body, dict):
        raise _malformed("expected type: JSONObject, found: invalid JSON")
    extra = sorted(set(body) - TITAN_V2_KEYS)
    if extra:
        raise _malformed(f"extraneous key [{extra[0]}] is not permitted")
    text = body.get("inputText")
    if not isinstance(text, str):
        raise _malformed("#: required key [inputText] not found")
    if not text:
        raise _malformed("expected minLength: 1, actual: 0")
    dimensions = body.get("dimensions", 1024)
    if dimensions not in TITAN_V2_DIMENSIONS:
        raise _malformed(f"#/dimensions: {dimensions} is not a valid enum value")
    normalize = body.get("normalize", True)
    if not isinstance(normalize, bool):
        raise _malformed(f"#/normalize: expected type: Boolean, found: {type(normalize).__name__}")
    types = body.get("embeddingTypes", ["float"])
    if not isinstance(types, list) or not types or not set(types) <= {"float", "binary"}:
        raise _malformed("#/embeddingTypes: expected a non-empty list of 'float' and/or 'binary'")
    tokens = _WORD.findall(text.lower())
    vector = fake_vector(text, int(dimensions), normalize=normalize)
    by_type: dict[str, list[float] | list[int]] = {}
    if "float" in types:
        by_type["float"] = vector
    if "binary" in types:
        by_type["binary"] = [1 if x > 0 else 0 for x in vector]
    answer = {"embedding": vector, "embeddingsByType": by_type, "inputTextTokenCount": len(tokens) or 1}
    headers = {
        "X-Amzn-Bedrock-Input-Token-Count": str(len(tokens) or 1),
        "X-Amzn-Bedrock-Invocation-Latency": "7",
    }
    return FakeResponse(body=answer, headers=headers)


def fake_vector(text: str, dimensions: int, *, normalize: bool = True) -> list[float]:
    """Deterministic vector of a text: hash-seeded word vectors summed, plus a small per-text component."""
    tokens = _WORD.findall(text.lower()) or [text]
    acc = [0.0] * dimensions
    for token in tokens:
        for i, x in enumerate(_seeded_gaussian(token, dimensions)):
            acc[i] += x
    for i, x in enumerate(_seeded_gaussian("\x00" + text, dimensions)):
        acc[i] += 0.25 * x
    if normalize:
        norm = math.sqrt(sum(x * x for x in acc)) or 1.0
        return [x / norm for x in acc]
    return [x * 0.05 for x in acc]


@lru_cache(maxsize=8192)
def _seeded_gaussian(key: str, dimensions: int) -> tuple[float, ...]:
    """Gaussian noise seeded by sha256 of the key (stable across processes, unlike hash())."""
    seed = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    rng = random.Random(seed)
    return tuple(rng.gauss(0.0, 1.0) for _ in range(dimensions))


def _malformed(detail: str) -> BedrockFault:
    """Bedrock's 400 for a request body that does not match the model's schema."""
    return BedrockFault(
        400,
        "ValidationException",
        f"Malformed input request: {detail}, please reformat your input and try again.",
    )


def iter_titan_requests(fake: FakeBedrockRuntime) -> Iterator[dict[str, Any]]:
    """JSON bodies of the Titan V2 invocations the fake received."""
    for request in fake.requests_for("invoke", TITAN_EMBED_V2):
        if isinstance(request.body, dict):
            yield request.body
