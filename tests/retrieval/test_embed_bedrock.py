"""BedrockTitanEmbedder with real langchain-aws + botocore against the loopback FakeBedrockRuntime."""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retrieval.adapters.bedrock_embedder import BedrockTitanEmbedder
from retrieval.errors import EmbeddingError
from sandbox.bedrock_runtime import FakeBedrockRuntime

TITAN = "amazon.titan-embed-text-v2:0"
FALLBACK = "IMAGINE_EMBED_MODEL=local:all-MiniLM-L6-v2"


@pytest.fixture
def fake() -> Iterator[FakeBedrockRuntime]:
    """A running Bedrock Runtime stand-in on 127.0.0.1."""
    with FakeBedrockRuntime() as server:
        yield server


@pytest.fixture
def no_aws_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep botocore away from ~/.aws so only what a test sets is used."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch, no_aws_files: None) -> None:
    """Dummy static credentials (the conftest has removed every AWS_* variable)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep botocore's real retry decisions but skip its sleeps (backoff and adaptive token bucket)."""
    from botocore.retries import bucket, standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    monkeypatch.setattr(bucket.TokenBucket, "_sleep_amount", lambda self, amount: 0.0)


def make(fake: FakeBedrockRuntime, **kwargs: Any) -> BedrockTitanEmbedder:
    """An embedder pointed at the fake."""
    return BedrockTitanEmbedder(endpoint_url=fake.url, **kwargs)


def norm(vector: list[float]) -> float:
    """L2 norm."""
    return math.sqrt(math.fsum(x * x for x in vector))


def test_request_is_titan_v2_shaped_and_sigv4_signed(fake: FakeBedrockRuntime, creds: None) -> None:
    vector = make(fake, dimensions=256).embed_query("a red fox in the snow")

    (request,) = fake.requests
    assert request.method == "POST"
    assert request.path == "/model/amazon.titan-embed-text-v2%3A0/invoke"
    assert request.model_id == TITAN
    assert request.body == {"inputText": "a red fox in the snow", "dimensions": 256, "normalize": True}
    auth = request.headers["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "/us-east-1/bedrock/aws4_request" in auth
    assert "imagine-bot" in request.headers["user-agent"]
    assert len(vector) == 256
    assert norm(vector) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("dimensions", [256, 512, 1024])
def test_documents_have_requested_dims_unit_norm_and_input_order(
    fake: FakeBedrockRuntime, creds: None, dimensions: int
) -> None:
    embedder = make(fake, dimensions=dimensions)
    texts = ["cyberpunk city at night, neon", "a cat", "oil painting of a lighthouse in a storm"]

    vectors = embedder.embed_documents(texts)

    assert embedder.dimension == dimensions
    assert [len(v) for v in vectors] == [dimensions] * 3
    assert all(norm(v) == pytest.approx(1.0, abs=1e-9) for v in vectors)
    assert [r.body["inputText"] for r in fake.requests] == texts
    assert vectors[1] == embedder.embed_query("a cat")
    assert embedder.embed_documents([]) == []


def test_model_id_and_lazy_client(fake: FakeBedrockRuntime, creds: None) -> None:
    embedder = make(fake)
    assert embedder.model_id == "bedrock:amazon.titan-embed-text-v2:0"
    assert embedder.dimension == 1024
    assert fake.requests == []


def test_client_has_adaptive_retries_and_timeouts(fake: FakeBedrockRuntime, creds: None) -> None:
    config = make(fake, max_attempts=3).client.meta.config
    assert config.retries == {"total_max_attempts": 3, "mode": "adaptive"}
    assert config.connect_timeout == 5
    assert config.read_timeout == 30


def test_explicit_client_is_used(fake: FakeBedrockRuntime, no_aws_files: None) -> None:
    import boto3

    client = boto3.client(
        "bedrock-runtime",
        region_name="eu-west-1",
        endpoint_url=fake.url,
        aws_access_key_id="explicit",
        aws_secret_access_key="explicit",
    )
    embedder = BedrockTitanEmbedder(dimensions=512, region="eu-west-1", client=client)
    assert len(embedder.embed_query("hello")) == 512
    assert "Credential=explicit/" in fake.requests[0].headers["authorization"]
    assert "/eu-west-1/" in fake.requests[0].headers["authorization"]


def test_throttling_is_retried_by_botocore(fake: FakeBedrockRuntime, creds: None, no_backoff: None) -> None:
    fake.fail_next(status=429, error_type="ThrottlingException", times=2)

    vector = make(fake, dimensions=256).embed_query("retry me")

    assert len(vector) == 256
    assert len(fake.requests) == 3


def test_persistent_throttling_is_actionable(fake: FakeBedrockRuntime, creds: None, no_backoff: None) -> None:
    fake.fail_next(status=429, error_type="ThrottlingException", times=50)

    with pytest.raises(EmbeddingError, match=r"kept throttling amazon\.titan-embed-text-v2:0") as info:
        make(fake, max_attempts=4).embed_documents(["a", "b"])

    assert "after 4 of 4 attempts" in str(info.value)
    assert "Service Quotas" in str(info.value)
    assert len(fake.requests) == 4


def test_service_unavailable_is_actionable(fake: FakeBedrockRuntime, creds: None, no_backoff: None) -> None:
    fake.fail_next(503, "ServiceUnavailableException", "Service is unavailable.", times=50)

    with pytest.raises(EmbeddingError, match="Bedrock is unavailable") as info:
        make(fake, max_attempts=2).embed_query("x")

    assert FALLBACK in str(info.value)
    assert len(fake.requests) == 2


def test_access_denied_names_model_region_and_fix(
    fake: FakeBedrockRuntime, creds: None, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail_next(
        403,
        "AccessDeniedException",
        "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: bedrock:InvokeModel",
    )

    with pytest.raises(EmbeddingError) as info:
        make(fake).embed_query("x")

    message = str(info.value)
    assert message.startswith("Bedrock denied access to amazon.titan-embed-text-v2:0 in us-east-1")
    assert "enable model access in the Bedrock console" in message
    assert FALLBACK in message
    assert "123456789012" not in message
    assert "\n" not in message
    assert len(fake.requests) == 1  # access denied is not retried


def test_end_of_life_model_is_explained(fake: FakeBedrockRuntime, creds: None) -> None:
    fake.retire("amazon.titan-embed-text-v1")

    with pytest.raises(EmbeddingError, match="has reached end of life") as info:
        make(fake, model_id="amazon.titan-embed-text-v1").embed_query("x")

    assert "IMAGINE_EMBED_MODEL" in str(info.value)


def test_validation_error_carries_the_aws_message(fake: FakeBedrockRuntime, creds: None) -> None:
    fake.fail_next(400, "ValidationException", "Malformed input request: too many input tokens.")

    with pytest.raises(EmbeddingError, match=r"rejected the embedding request .*too many input tokens"):
        make(fake).embed_query("x")


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("amazon.titan-embed-text-v9:0", "Bedrock has no model amazon.titan-embed-text-v9:0"),
        ("titan", "does not recognise the model id titan"),
    ],
)
def test_unknown_models(fake: FakeBedrockRuntime, creds: None, model_id: str, expected: str) -> None:
    with pytest.raises(EmbeddingError, match=expected):
        make(fake, model_id=model_id).embed_query("x")


def test_no_credentials_is_actionable(fake: FakeBedrockRuntime, no_aws_files: None) -> None:
    with pytest.raises(EmbeddingError, match="no usable AWS credentials") as info:
        make(fake).embed_query("x")

    assert FALLBACK in str(info.value)
    assert fake.requests == []


def test_unreachable_endpoint_is_actionable(creds: None, no_backoff: None) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    embedder = BedrockTitanEmbedder(endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1)

    with pytest.raises(EmbeddingError, match="cannot reach Bedrock in us-east-1"):
        embedder.embed_query("x")


def test_bad_credentials_never_leak_secrets(
    fake: FakeBedrockRuntime,
    monkeypatch: pytest.MonkeyPatch,
    no_aws_files: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key, secret = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    fake.fail_next(403, "InvalidSignatureException", f"Signature mismatch for {key} / {secret}")
    caplog.set_level(logging.DEBUG, logger="retrieval")
    caplog.set_level(logging.INFO, logger="langchain_aws")

    with pytest.raises(EmbeddingError, match="rejected the AWS credentials") as info:
        make(fake).embed_query("x")

    assert key not in str(info.value) and secret not in str(info.value)
    assert key not in caplog.text and secret not in caplog.text
    assert "bedrock embedding failed" in caplog.text


def test_empty_text_and_bad_dimensions_fail_locally(fake: FakeBedrockRuntime, creds: None) -> None:
    with pytest.raises(EmbeddingError, match="empty text"):
        make(fake).embed_documents(["ok", ""])
    with pytest.raises(EmbeddingError, match="IMAGINE_EMBED_DIMENSIONS"):
        make(fake, dimensions=300)
    assert fake.requests == []


def test_fake_rejects_bad_titan_bodies(fake: FakeBedrockRuntime, creds: None) -> None:
    import boto3

    client = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=fake.url)
    with pytest.raises(client.exceptions.ValidationException, match="dimensions: 300"):
        client.invoke_model(modelId=TITAN, body='{"inputText": "x", "dimensions": 300}')
    with pytest.raises(client.exceptions.ValidationException, match="extraneous key"):
        client.invoke_model(modelId=TITAN, body='{"inputText": "x", "topK": 3}')
    raw = client.invoke_model(modelId=TITAN, body='{"inputText": "x", "normalize": false, "dimensions": 256}')
    import json

    answer = json.loads(raw["body"].read())
    assert answer["embeddingsByType"]["float"] == answer["embedding"]
    assert answer["inputTextTokenCount"] == 1
    assert norm(answer["embedding"]) != pytest.approx(1.0)
