"""Bedrock Titan Text Embeddings through langchain-aws, with AWS errors turned into actionable messages."""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Sequence
from typing import Any

from retrieval.adapters.aws_clients import aws_client
from retrieval.errors import EmbeddingError
from retrieval.index_ports import Vector

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "amazon.titan-embed-text-v2:0"
TITAN_V2_DIMENSIONS = (256, 512, 1024)
LOCAL_FALLBACK = "IMAGINE_EMBED_MODEL=local:all-MiniLM-L6-v2"
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30
_LANGCHAIN_LOGGER = "langchain_aws.embeddings.bedrock"
_THROTTLING = {
    "ThrottlingException",
    "TooManyRequestsException",
    "ServiceQuotaExceededException",
    "RequestLimitExceeded",
}
_UNAVAILABLE = {
    "ServiceUnavailableException",
    "ServiceUnavailable",
    "InternalServerException",
    "InternalFailure",
    "ModelNotReadyException",
    "ModelTimeoutException",
    "ModelErrorException",
}
_BAD_CREDENTIALS = {
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "ExpiredToken",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
}
_END_OF_LIFE = re.compile(
    r"end of (its )?life|end-of-life|\bEOL\b|no longer (available|supported)|legacy", re.I
)
_SECRET_LIKE = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{12,}\b|[A-Za-z0-9+/=_-]{40,}")


class _QuietLangchainErrors(logging.Filter):
    """Drop langchain-aws's per-call 'Successfully invoked' and traceback records (we log one clean line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record except the two noisy ones of BedrockEmbeddings._invoke_model."""
        message = str(record.msg)
        return not (record.exc_info or message.startswith("Successfully invoked model"))


_FILTER = _QuietLangchainErrors()


class BedrockTitanEmbedder:
    """Titan Text Embeddings V2 on Bedrock (normalized, 256/512/1024-d); the client is built on first use."""

    def __init__(
        self,
        model_id: str = DEFAULT_MODEL,
        dimensions: int = 1024,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        client: Any | None = None,
        max_attempts: int = 4,
    ) -> None:
        """Keep the settings; botocore and langchain-aws are imported lazily."""
        if "titan-embed-text-v2" in model_id and dimensions not in TITAN_V2_DIMENSIONS:
            raise EmbeddingError(
                f"{model_id} supports dimensions 256, 512 or 1024, not {dimensions}: "
                "set IMAGINE_EMBED_DIMENSIONS to one of them"
            )
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self._model = model_id
        self._dimensions = dimensions
        self._region = region
        self._endpoint_url = endpoint_url
        self._client = client
        self._max_attempts = max_attempts
        self._lock = threading.Lock()
        self._embeddings: Any | None = None

    @property
    def model_id(self) -> str:
        """Provider string, e.g. 'bedrock:amazon.titan-embed-text-v2:0'."""
        return f"bedrock:{self._model}"

    @property
    def dimension(self) -> int:
        """Length of every vector (the requested Titan `dimensions`)."""
        return self._dimensions

    @property
    def client(self) -> Any:
        """The boto3 bedrock-runtime client (built on first access)."""
        return self._langchain().client

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        """Embed library prompts, one InvokeModel call each (Titan has no batch API)."""
        if isinstance(texts, str):
            raise TypeError("embed_documents expects a sequence of texts, not a single string")
        items = [self._checked(text) for text in texts]
        if not items:
            return []
        embeddings = self._langchain()
        try:
            raw = embeddings.embed_documents(items)
        except Exception as exc:
            raise self._error(exc) from exc
        return [self._finish(vector) for vector in raw]

    def embed_query(self, text: str) -> Vector:
        """Embed one search query."""
        item = self._checked(text)
        embeddings = self._langchain()
        try:
            raw = embeddings.embed_query(item)
        except Exception as exc:
            raise self._error(exc) from exc
        return self._finish(raw)

    def _checked(self, text: str) -> str:
        """Refuse empty texts locally instead of paying a round trip for a ValidationException."""
        if not isinstance(text, str) or not text.strip():
            raise EmbeddingError(f"cannot embed an empty text with {self._model}: drop empty prompts first")
        return text

    def _finish(self, raw: Any) -> Vector:
        """Check the length and L2-normalize (Titan already normalizes; this guards other models)."""
        if not isinstance(raw, list) or len(raw) != self._dimensions:
            size = len(raw) if isinstance(raw, list) else type(raw).__name__
            raise EmbeddingError(
                f"Bedrock returned a {size}-d vector from {self._model}, expected {self._dimensions}: "
                "check IMAGINE_EMBED_DIMENSIONS matches the model"
            )
        vector = [float(x) for x in raw]
        norm = math.sqrt(math.fsum(x * x for x in vector))
        if norm == 0.0 or not math.isfinite(norm):
            raise EmbeddingError(f"Bedrock returned a zero or invalid vector from {self._model}")
        if abs(norm - 1.0) > 1e-6:
            vector = [x / norm for x in vector]
        return vector

    def _langchain(self) -> Any:
        """The langchain-aws BedrockEmbeddings (built once, thread-safe)."""
        embeddings = self._embeddings
        if embeddings is not None:
            return embeddings
        with self._lock:
            if self._embeddings is None:
                self._embeddings = self._build()
            return self._embeddings

    def _build(self) -> Any:
        """Build the boto3 client (adaptive retries, timeouts) and wrap it in BedrockEmbeddings."""
        try:
            from langchain_aws import BedrockEmbeddings
        except ImportError as exc:
            raise EmbeddingError("langchain-aws is not installed: run `make setup`") from exc
        logging.getLogger(_LANGCHAIN_LOGGER).addFilter(_FILTER)  # idempotent: filters are a set-like list
        client = self._client if self._client is not None else self._build_client()
        return BedrockEmbeddings(
            client=client,
            model_id=self._model,
            region_name=self._region,
            endpoint_url=self._endpoint_url,
            model_kwargs={"dimensions": self._dimensions, "normalize": True},
        )

    def _build_client(self) -> Any:
        """A bedrock-runtime client with adaptive retries and bounded timeouts."""
        try:
            return aws_client(
                "bedrock-runtime",
                region=self._region,
                endpoint_url=self._endpoint_url,
                max_attempts=self._max_attempts,
                connect_timeout_s=CONNECT_TIMEOUT_S,
                read_timeout_s=READ_TIMEOUT_S,
            )
        except ImportError as exc:
            raise EmbeddingError("boto3 is not installed: run `make setup`") from exc
        except Exception as exc:
            raise self._error(exc) from exc

    def _where(self) -> str:
        """Region, or the endpoint URL when one is set."""
        return f"{self._region} ({self._endpoint_url})" if self._endpoint_url else self._region

    def _error(self, exc: BaseException) -> EmbeddingError:
        """Turn a botocore/langchain-aws failure into an EmbeddingError a user can act on; log it once."""
        error = EmbeddingError(describe_error(exc, self._model, self._where(), self._max_attempts))
        logger.warning("bedrock embedding failed (%s): %s", type(exc).__name__, error)
        return error


def describe_error(exc: BaseException, model: str, where: str, max_attempts: int) -> str:
    """One-line, secret-free explanation of a Bedrock embedding failure with the next step to take."""
    from botocore import exceptions as bx

    if isinstance(exc, EmbeddingError):
        return str(exc)
    if isinstance(exc, bx.ClientError):
        return _describe_client_error(exc, model, where, max_attempts)
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError | bx.CredentialRetrievalError):
        return (
            f"no usable AWS credentials for Bedrock ({type(exc).__name__}): set AWS_PROFILE or "
            f"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or run `aws sso login`), or set {LOCAL_FALLBACK}"
        )
    if isinstance(exc, bx.TokenRetrievalError | bx.SSOError):
        return f"the AWS SSO session has expired: run `aws sso login`, or set {LOCAL_FALLBACK}"
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ProxyConnectionError):
        return (
            f"cannot reach Bedrock in {where}: check the network, proxy and IMAGINE_BEDROCK_ENDPOINT_URL, "
            f"or set {LOCAL_FALLBACK}"
        )
    if isinstance(exc, bx.ReadTimeoutError | bx.ConnectionClosedError):
        return f"Bedrock in {where} did not answer in time for {model}: retry later, or set {LOCAL_FALLBACK}"
    if isinstance(exc, bx.NoRegionError):
        return "no AWS region configured for Bedrock: set IMAGINE_AWS_REGION (e.g. us-east-1)"
    if isinstance(exc, bx.BotoCoreError):
        return f"Bedrock call for {model} failed ({type(exc).__name__}): {_clean(str(exc))}"
    if isinstance(exc, ValueError) and "embedding" in str(exc).lower():
        return f"Bedrock returned no embedding for {model}: check the model id is a text-embedding model"
    return f"Bedrock embedding with {model} failed ({type(exc).__name__}): {_clean(str(exc))}"


def _describe_client_error(exc: Any, model: str, where: str, max_attempts: int) -> str:
    """Explain a botocore ClientError by its AWS error code."""
    error = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
    code = str(error.get("Code") or "Unknown")
    message = _clean(str(error.get("Message") or ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    attempts = 1 + int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts") or 0)
    if code in ("AccessDeniedException", "AccessDenied"):
        return (
            f"Bedrock denied access to {model} in {where}: enable model access in the Bedrock console "
            f"(and allow bedrock:InvokeModel in IAM) or set {LOCAL_FALLBACK}"
        )
    if code == "ResourceNotFoundException":
        return (
            f"Bedrock has no model {model} in {where}: check the model id and region "
            f"(IMAGINE_EMBED_MODEL, IMAGINE_AWS_REGION) or set {LOCAL_FALLBACK}"
        )
    if code == "ValidationException":
        if _END_OF_LIFE.search(message):
            return (
                f"Bedrock model {model} has reached end of life: switch IMAGINE_EMBED_MODEL to a current "
                f"model (bedrock:amazon.titan-embed-text-v2:0 or local:all-MiniLM-L6-v2) and re-run ingest"
            )
        if "model identifier is invalid" in message.lower():
            return f"Bedrock does not recognise the model id {model}: fix IMAGINE_EMBED_MODEL"
        if "inference profile" in message.lower():
            return (
                f"Bedrock needs an inference profile id for {model} in {where}: use the profile id "
                f"(e.g. us.{model}) in IMAGINE_EMBED_MODEL"
            )
        return f"Bedrock rejected the embedding request for {model}: {message or code}"
    if code in _THROTTLING or status == 429:
        return (
            f"Bedrock kept throttling {model} in {where} after {attempts} of {max_attempts} attempts: "
            "retry later, embed fewer prompts at once, or request a higher quota in Service Quotas"
        )
    if code in _UNAVAILABLE or (isinstance(status, int) and status >= 500):
        return (
            f"Bedrock is unavailable for {model} in {where} ({code}) after {attempts} attempts: "
            f"retry later or set {LOCAL_FALLBACK}"
        )
    if code in _BAD_CREDENTIALS:
        return (
            f"Bedrock rejected the AWS credentials ({code}): refresh them (e.g. `aws sso login`) or check "
            f"AWS_PROFILE / AWS_ACCESS_KEY_ID, or set {LOCAL_FALLBACK}"
        )
    return f"Bedrock call for {model} in {where} failed ({code}): {message or 'no message'}"


def _clean(text: str) -> str:
    """First line of an AWS message, shortened, with anything that looks like a key or token redacted."""
    line = " ".join(text.split())
    line = _SECRET_LIKE.sub("[redacted]", line)
    return line if len(line) <= 240 else line[:237] + "..."
