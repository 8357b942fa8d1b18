"""Image models on Amazon Bedrock (Stability SD3.5/Core/Ultra, SDXL, Nova Canvas/Titan) and SageMaker SDXL."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from bot.drawing import image_bodies as bodies
from bot.drawing.image_services import init_image, service_for
from bot.engine.ports import GeneratedImage, ImageRequest
from bot.engine.turn_errors import (
    AccessDeniedError,
    BotError,
    ContentFilteredError,
    ModelConfigError,
    ModelUnavailableError,
    ThrottledError,
    UpstreamError,
)
from retrieval.adapters.aws_clients import aws_client

logger = logging.getLogger(__name__)

SUGGESTED_MODEL = "bedrock:stability.sd3-5-large-v1:0"
IMAGE_TO_IMAGE_PREFIX = "stability.sd3-5-large"  # the Bedrock text-to-image model with an image-to-image mode
ALTERNATIVE_MODEL = "bedrock:stability.stable-image-core-v1:1"
VARIABLE = "IMAGINE_IMAGE_MODEL"
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 120
MAX_PARALLEL_CALLS = 4
_GEO_PREFIX = re.compile(r"^(us|eu|apac|global|us-gov|ca|jp|au)\.")
_THROTTLING = {"ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException"}
_BUSY = {"ServiceUnavailableException", "ServiceUnavailable", "ModelNotReadyException"}
_BAD_CREDENTIALS = {"UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException"}
_RETIRED = re.compile(
    r"end of (its )?life|\bEOL\b|no longer (available|supported)|legacy|identifier is invalid", re.I
)
_SECRET_LIKE = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{12,}\b|[A-Za-z0-9+/=_-]{40,}")
_NOT_FOUND = re.compile(r"endpoint .* not found|could not find endpoint", re.I)


@dataclass(frozen=True)
class Family:
    """One request/response format: how to build a body, parse an answer and find the seed sent."""

    name: str
    build: Callable[[ImageRequest], dict[str, Any]]
    parse: Callable[..., list[bodies.ImageResult]]
    images_per_call: int
    sent_seed: Callable[[dict[str, Any]], int]


STABILITY_V2 = Family(
    "stability-v2", bodies.stability_v2_body, bodies.parse_stability_v2, 1, lambda b: b["seed"]
)
SDXL = Family("sdxl", bodies.sdxl_body, bodies.parse_sdxl, 1, lambda b: b["seed"])
NOVA = Family(
    "nova",
    bodies.nova_body,
    bodies.parse_nova,
    bodies.NOVA_MAX_IMAGES,
    lambda b: b["imageGenerationConfig"]["seed"],
)
_PREFIXES: tuple[tuple[str, Family], ...] = (
    ("stability.sd3", STABILITY_V2),
    ("stability.stable-image-", STABILITY_V2),
    ("stability.stable-diffusion-xl", SDXL),
    ("amazon.nova-canvas", NOVA),
    ("amazon.titan-image", NOVA),
)


def family_for(model_id: str) -> Family:
    """The body family of a Bedrock image model id, or ModelConfigError naming IMAGINE_IMAGE_MODEL."""
    bare = _GEO_PREFIX.sub("", model_id)
    service = service_for(bare)
    if service is not None:
        raise ModelConfigError(
            f"{VARIABLE}=bedrock:{model_id} is the {service.label} image service, which edits images rather "
            f"than drawing them: use a text-to-image model such as {SUGGESTED_MODEL} (image services are set "
            "with IMAGINE_UPSCALE_MODEL, IMAGINE_REMOVE_BACKGROUND_MODEL, ...)"
        )
    for prefix, family in _PREFIXES:
        if bare.startswith(prefix):
            return family
    raise ModelConfigError(
        f"{VARIABLE}=bedrock:{model_id} is not a supported Bedrock image model: use a Stability model "
        f"(e.g. {SUGGESTED_MODEL}, {ALTERNATIVE_MODEL}) or amazon.nova-canvas-v1:0"
    )


class _RuntimeImageModel:
    """Shared machinery: lazy boto3 client with botocore retries, parallel calls, PNG sizes, error mapping."""

    _service = ""

    def __init__(
        self,
        target: str,
        family: Family,
        region: str,
        endpoint_url: str | None,
        client: Any,
        max_attempts: int,
    ) -> None:
        """Keep the settings; boto3 is imported when the first image is generated."""
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self._target = target
        self._family = family
        self._region = region
        self._endpoint_url = endpoint_url
        self._client = client
        self._max_attempts = max_attempts
        self._lock = threading.Lock()

    @property
    def is_offline(self) -> bool:
        """Always False: this calls a real image model."""
        return False

    @property
    def client(self) -> Any:
        """The boto3 runtime client (built on first access, thread-safe)."""
        with self._lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    def warm_up(self) -> None:
        """Import boto3 and build the runtime client now (no API call)."""
        _ = self.client

    @property
    def draws_from_image(self) -> bool:
        """True for models that take an init image (SD3.5 Large's image-to-image mode)."""
        return False

    def generate(self, request: ImageRequest) -> list[GeneratedImage]:
        """Generate `request.count` images (seed, seed+1, … per call), skipping individually filtered ones."""
        if request.init_image is not None and not self.draws_from_image:
            request = replace(request, init_image=None, strength=None)  # text-to-image with the same seed
        elif request.init_image is not None:  # an upscaled or cut-out image is brought to ~1 MP, opaque
            request = replace(request, init_image=init_image(request.init_image))
        step, total = self._family.images_per_call, max(1, request.count)
        parts = [
            replace(request, seed=request.seed + start, count=min(step, total - start))
            for start in range(0, total, step)
        ]
        if len(parts) == 1:
            outcomes = [self._attempt(parts[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(len(parts), MAX_PARALLEL_CALLS)) as pool:
                outcomes = list(pool.map(self._attempt, parts))
        images = [image for outcome in outcomes if isinstance(outcome, list) for image in outcome]
        errors = [outcome for outcome in outcomes if isinstance(outcome, BotError)]
        hard = [error for error in errors if not isinstance(error, ContentFilteredError)]
        if hard:
            raise hard[0]
        if not images:
            raise errors[0]
        if errors:
            logger.warning(
                "%s: %d of %d generations were content-filtered", self._target, len(errors), len(parts)
            )
        return images

    def _attempt(self, request: ImageRequest) -> list[GeneratedImage] | BotError:
        """One call; a BotError is returned rather than raised so parallel calls can be combined."""
        try:
            return self._generate_once(request)
        except BotError as error:
            return error

    def _generate_once(self, request: ImageRequest) -> list[GeneratedImage]:
        """Build the body, invoke, parse and measure the images."""
        body = self._family.build(request)
        return self.invoke_body(body, self._family.sent_seed(body))

    def invoke_body(self, body: dict[str, Any], seed: int) -> list[GeneratedImage]:
        """Send a ready body, parse the family's answer and measure the images (`seed`: the one sent)."""
        try:
            raw = self._invoke(json.dumps(body))
        except BotError:
            raise
        except Exception as exc:
            raise self._error(exc) from exc
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            raise UpstreamError(f"{self._target} returned a malformed answer (not JSON): try again") from exc
        results = self._family.parse(payload, self._target, fallback_seed=seed)
        return [self._image(data, image_seed) for data, image_seed in results]

    def _image(self, data: bytes, seed: int) -> GeneratedImage:
        """A GeneratedImage with width, height and MIME type read from the bytes."""
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                mime = Image.MIME.get(image.format or "", "application/octet-stream")
        except (OSError, ValueError) as exc:
            raise UpstreamError(f"{self._target} returned bytes that are not an image: try again") from exc
        return GeneratedImage(data, seed, self.model_id, width, height, mime)

    @property
    def model_id(self) -> str:
        """Provider string of the model."""
        raise NotImplementedError

    def _invoke(self, body: str) -> bytes:
        """Send one JSON body and return the raw answer."""
        raise NotImplementedError

    def _build_client(self) -> Any:
        """A runtime client with adaptive retries (total_max_attempts) and bounded timeouts."""
        try:
            return aws_client(
                self._service,
                region=self._region,
                endpoint_url=self._endpoint_url,
                max_attempts=self._max_attempts,
                connect_timeout_s=CONNECT_TIMEOUT_S,
                read_timeout_s=READ_TIMEOUT_S,
            )
        except ImportError as exc:
            raise ModelConfigError("boto3 is not installed: run `make setup`") from exc
        except Exception as exc:
            raise self._error(exc) from exc

    def _where(self) -> str:
        """Region, or the endpoint URL when one is set."""
        return f"{self._region} ({self._endpoint_url})" if self._endpoint_url else self._region

    def _error(self, exc: BaseException) -> BotError:
        """Turn a botocore failure into a BotError a user can act on; log it once."""
        from botocore import exceptions as bx

        if isinstance(exc, bx.ClientError):
            code, message, status = _code_message(exc)
            error = self._client_error(code, message, status, _attempts(exc))
        else:
            code, error = type(exc).__name__, _transport_error(exc, self._target, self._where())
        logger.log(
            _log_level(error),
            "%s image generation with %s in %s failed (%s): %s",
            self._service,
            self._target,
            self._where(),
            code,
            error,
        )
        return error

    def _client_error(self, code: str, message: str, status: int | None, attempts: int) -> BotError:
        """Map an AWS error code; subclasses add their service-specific cases first."""
        if code in _THROTTLING or code in _BUSY or status in (429, 503):
            service = "Bedrock" if self._service == "bedrock-runtime" else "SageMaker"
            return ThrottledError(
                f"{service} is busy ({code} for {self._target} in {self._where()} after {attempts} "
                "attempts): try again in a minute",
                attempts,
            )
        if code in _BAD_CREDENTIALS:
            return AccessDeniedError(
                f"AWS rejected the credentials ({code}): refresh them (e.g. `aws sso login`) or check "
                "AWS_PROFILE / AWS_ACCESS_KEY_ID"
            )
        detail = message or "no message"
        return UpstreamError(f"{self._target} in {self._where()} failed ({code}): {detail}")


class BedrockImageModel(_RuntimeImageModel):
    """A Bedrock image model called with InvokeModel; the body family is picked from the model id."""

    _service = "bedrock-runtime"

    def __init__(
        self,
        model_id: str,
        region: str,
        endpoint_url: str | None = None,
        client: Any | None = None,
        max_attempts: int = 4,
        *,
        family: Family | None = None,
        variable: str = VARIABLE,
    ) -> None:
        """Pick the family now (ModelConfigError for unknown ids); the client is built on first use.

        `family` skips the text-to-image check (the image services' editor passes its own); `variable` is
        the setting that names the model, for the advice in errors.
        """
        bare = model_id.removeprefix("bedrock:")
        super().__init__(bare, family or family_for(bare), region, endpoint_url, client, max_attempts)
        self._variable = variable

    @property
    def model_id(self) -> str:
        """Provider string, e.g. 'bedrock:stability.sd3-5-large-v1:0'."""
        return f"bedrock:{self._target}"

    @property
    def draws_from_image(self) -> bool:
        """SD3.5 Large draws image-to-image; Core, Ultra, SDXL and Nova text-to-image here."""
        return _GEO_PREFIX.sub("", self._target).startswith(IMAGE_TO_IMAGE_PREFIX)

    def _invoke(self, body: str) -> bytes:
        """InvokeModel with a JSON body; returns the response body bytes."""
        response = self.client.invoke_model(
            modelId=self._target, body=body, contentType="application/json", accept="application/json"
        )
        data: bytes = response["body"].read()
        return data

    def _client_error(self, code: str, message: str, status: int | None, attempts: int) -> BotError:
        """Bedrock-specific codes: access, missing/retired models, content filters, bad requests."""
        model = self._target
        if code in ("AccessDeniedException", "AccessDenied"):
            return AccessDeniedError(
                f"Bedrock denied access to {model}: enable model access for it in the Bedrock console in "
                f"region {self._region} and allow bedrock:InvokeModel in IAM"
            )
        retired = code == "ValidationException" and _RETIRED.search(message)
        if code == "ResourceNotFoundException" or retired:
            state = "has reached end of life or is invalid" if retired else "was not found"
            other = SUGGESTED_MODEL if self.model_id != SUGGESTED_MODEL else ALTERNATIVE_MODEL
            example = f", e.g. {VARIABLE}={other}" if self._variable == VARIABLE else ""
            return ModelUnavailableError(
                f"Bedrock model {model} {state} in {self._where()} ({message or code}): "
                f"set {self._variable} to a current model{example}"
            )
        if code == "ValidationException":
            reason = bodies.nova_filter_reason(message)
            if reason is not None:
                return ContentFilteredError(bodies.filtered_message(model, reason), reason)
            if "inference profile" in message.lower():
                return ModelUnavailableError(
                    f"Bedrock needs an inference profile id for {model} in {self._where()}: set "
                    f"{self._variable} to the profile id (e.g. bedrock:us.{model})"
                )
            return UpstreamError(f"Bedrock rejected the request for {model}: {message or code}")
        return super()._client_error(code, message, status, attempts)


class SageMakerSdxlModel(_RuntimeImageModel):
    """An SDXL 1.0 SageMaker (JumpStart) endpoint called with InvokeEndpoint and the SDXL v1 body."""

    _service = "sagemaker-runtime"

    def __init__(
        self,
        endpoint_name: str,
        region: str,
        endpoint_url: str | None = None,
        client: Any | None = None,
        max_attempts: int = 4,
    ) -> None:
        """Keep the endpoint name; the client is built on first use."""
        name = endpoint_name.removeprefix("sagemaker:")
        if not name:
            raise ModelConfigError(
                f"{VARIABLE}=sagemaker: needs an endpoint name, e.g. sagemaker:my-sdxl-endpoint"
            )
        super().__init__(name, SDXL, region, endpoint_url, client, max_attempts)

    @property
    def model_id(self) -> str:
        """Provider string, e.g. 'sagemaker:my-sdxl-endpoint'."""
        return f"sagemaker:{self._target}"

    def _invoke(self, body: str) -> bytes:
        """InvokeEndpoint with a JSON body; returns the response body bytes."""
        response = self.client.invoke_endpoint(
            EndpointName=self._target, Body=body, ContentType="application/json", Accept="application/json"
        )
        data: bytes = response["Body"].read()
        return data

    def _client_error(self, code: str, message: str, status: int | None, attempts: int) -> BotError:
        """SageMaker-specific codes: access, missing endpoints, model container errors."""
        endpoint = self._target
        if code in ("AccessDeniedException", "AccessDenied"):
            return AccessDeniedError(
                f"SageMaker denied access to endpoint {endpoint} in {self._region}: allow "
                "sagemaker:InvokeEndpoint on it in IAM"
            )
        if code in ("ValidationError", "ValidationException") and _NOT_FOUND.search(message):
            return ModelUnavailableError(
                f"SageMaker endpoint {endpoint} was not found in {self._where()}: deploy it or set "
                f"{VARIABLE} to another model, e.g. {VARIABLE}={SUGGESTED_MODEL}"
            )
        if code in ("ModelError", "ValidationError"):
            return UpstreamError(f"SageMaker endpoint {endpoint} failed ({code}): {message or 'no message'}")
        return super()._client_error(code, message, status, attempts)


def _log_level(error: BotError) -> int:
    """ERROR for what only the operator can fix (model, access, config), INFO for filtered prompts."""
    if isinstance(error, ModelUnavailableError | AccessDeniedError | ModelConfigError):
        return logging.ERROR
    return logging.INFO if isinstance(error, ContentFilteredError) else logging.WARNING


def _code_message(exc: Any) -> tuple[str, str, int | None]:
    """AWS error code, cleaned message and HTTP status of a ClientError."""
    response = exc.response if isinstance(exc.response, dict) else {}
    error = response.get("Error", {})
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    message = str(error.get("Message") or response.get("OriginalMessage") or "")
    return str(error.get("Code") or "Unknown"), _clean(message), status if isinstance(status, int) else None


def _attempts(exc: Any) -> int:
    """How many requests botocore made before giving up."""
    response = exc.response if isinstance(exc.response, dict) else {}
    return 1 + int(response.get("ResponseMetadata", {}).get("RetryAttempts") or 0)


def _transport_error(exc: BaseException, target: str, where: str) -> BotError:
    """Credentials, network and timeout failures (anything but a ClientError)."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError | bx.CredentialRetrievalError):
        return AccessDeniedError(
            f"no usable AWS credentials ({type(exc).__name__}): set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or run `aws sso login`)"
        )
    if isinstance(exc, bx.TokenRetrievalError | bx.SSOError):
        return AccessDeniedError("the AWS SSO session has expired: run `aws sso login`")
    if isinstance(exc, bx.NoRegionError):
        return ModelConfigError("no AWS region configured: set IMAGINE_AWS_REGION (e.g. us-east-1)")
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ProxyConnectionError):
        return UpstreamError(f"cannot reach AWS in {where} for {target}: check the network and proxy")
    if isinstance(exc, bx.ReadTimeoutError | bx.ConnectionClosedError):
        return UpstreamError(f"{target} in {where} did not answer in time: try again")
    return UpstreamError(f"{target} failed ({type(exc).__name__}): {_clean(str(exc))}")


def _clean(text: str) -> str:
    """First line of an AWS message, shortened, with anything that looks like a key or token redacted."""
    line = " ".join(text.split())
    line = _SECRET_LIKE.sub("[redacted]", line)
    return line if len(line) <= 240 else line[:237] + "..."
