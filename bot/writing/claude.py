"""Claude on Bedrock (Converse) through langchain-aws ChatBedrockConverse with structured output."""

from __future__ import annotations

import base64
import io
import logging
import re
import threading
from dataclasses import replace
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from bot.engine.ports import AspectRatio, ComposeRequest, ComposeResult, PictureDescription, PromptDraft
from bot.engine.turn_errors import (
    AccessDeniedError,
    BotError,
    ModelConfigError,
    ModelUnavailableError,
    ThrottledError,
    UpstreamError,
)
from bot.writing.dialect import dialect_for, render
from bot.writing.edit_schema import keep_edit_choice, with_edit_fields
from bot.writing.grounding import keeps_subject, subject_clause, verify_borrowed
from bot.writing.prompt_template import (
    MAX_BORROWED,
    MAX_BORROWED_CHARS,
    MAX_NEGATIVE_CHARS,
    MAX_RATIONALE_CHARS,
    MAX_STYLE_CHARS,
    build_describe_message,
    build_messages,
    clean_line,
    edit_guidance,
    validate_drafts,
)
from retrieval.adapters.aws_clients import aws_client

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
VARIABLE = "IMAGINE_CHAT_MODEL"
OFFLINE_FALLBACK = f"{VARIABLE}=offline"
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 60
MAX_OUTPUT_TOKENS = 8192
DESCRIBE_CHARS = 600  # a described picture's prompt (it is also the library query)
VISION_SIDE = 1568  # Claude reads images up to about this many pixels a side; bigger ones are scaled down
_GEO_PREFIX = re.compile(r"^(us|eu|apac|global|us-gov|ca|jp|au|sa|amer)\.")
_THROTTLING = {"ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException"}
_UNAVAILABLE = {"ServiceUnavailableException", "ServiceUnavailable", "InternalServerException"}
_UNAVAILABLE |= {"InternalFailure", "ModelNotReadyException", "ModelTimeoutException", "ModelErrorException"}
_BAD_CREDENTIALS = {"UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException"}
_BAD_CREDENTIALS |= {"ExpiredToken", "InvalidClientTokenId", "SignatureDoesNotMatch"}
_END_OF_LIFE = re.compile(
    r"end of (its )?life|end-of-life|\bEOL\b|no longer (available|supported)|legacy", re.I
)
_ON_DEMAND = re.compile(r"on-demand throughput|inference profile", re.I)
_SECRET_LIKE = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{12,}\b|[A-Za-z0-9+/=_-]{40,}")
_LANGCHAIN_LOGGER = "langchain_aws.chat_models.bedrock_converse"
_NOISY = ("input message to bedrock", "System message to bedrock", "Input params", "Response from Bedrock",
          "Using Bedrock Converse API", "converted input messages")  # fmt: skip


class _QuietLangchainChat(logging.Filter):
    """Drop langchain-aws's dumps of whole requests/responses and its tracebacks (we log one clean line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record except request/response dumps and exception records."""
        return not (record.exc_info or str(record.msg).startswith(_NOISY))


_FILTER = _QuietLangchainChat()


# output schemas -----------------------------------------------------------------------------------------
_FORBID = ConfigDict(extra="forbid")
_PROMPT_DOC = "The image prompt: subject first, comma-separated visual phrases, no weighting syntax."
_NEGATIVE_DOC = "Things that must not appear, comma-separated (may be empty)."
_HITS_DOC = "Numbers n of the library examples you borrowed from (may be empty)."
_BORROWED_DOC = "Phrases taken from those examples, as written there and used word for word in the prompt."
SUBJECT_KINDS = ("start", "use_hit", "vary", "reroll")  # turns whose prompt must keep the idea's subject
SUBJECT_NOTE = (
    "<retry>Your previous prompt lost the user's subject ({subject}): {prompt}. Write it again, starting "
    "with the subject in the user's words.</retry>"
)


@lru_cache(maxsize=64)
def output_schema(brainstorm: bool, candidates: int, max_prompt_chars: int, max_hit: int) -> type[BaseModel]:
    """The pydantic tool schema for one call: bounds come from the request (cached per shape)."""
    hit = Annotated[int, Field(ge=1, le=max(max_hit, 1))]
    hits = (list[hit], Field(max_length=max_hit, description=_HITS_DOC))
    phrase = Annotated[str, Field(max_length=MAX_BORROWED_CHARS)]
    borrowed: Any = (
        list[phrase],
        Field(default_factory=list, max_length=MAX_BORROWED, description=_BORROWED_DOC),
    )
    prompt = (str, Field(min_length=1, max_length=max_prompt_chars, description=_PROMPT_DOC))
    negative = (str, Field(max_length=MAX_NEGATIVE_CHARS, description=_NEGATIVE_DOC))
    ratio: Any = (AspectRatio, Field(description="Aspect ratio of the image."))
    rationale = (str, Field(max_length=MAX_RATIONALE_CHARS, description="One line: what you did, and why."))
    if not brainstorm:
        model: type[BaseModel] = create_model(
            "ImagePrompt",
            __config__=_FORBID,
            __doc__="One optimized text-to-image prompt with its parameters.",
            prompt=prompt,
            negative_prompt=negative,
            aspect_ratio=ratio,
            style=(str, Field(max_length=MAX_STYLE_CHARS, description="Short label of the look.")),
            used_hits=hits,
            borrowed=borrowed,
            rationale=rationale,
        )
        return model
    candidate: type[BaseModel] = create_model(
        "Candidate",
        __config__=_FORBID,
        __doc__="One candidate prompt; it ends with the shared style words.",
        prompt=prompt,
        used_hits=hits,
        borrowed=borrowed,
        rationale=rationale,
    )
    model = create_model(
        "ImagePromptCandidates",
        __config__=_FORBID,
        __doc__=f"Exactly {candidates} diverse candidate prompts that share one style.",
        style=(str, Field(min_length=1, max_length=MAX_STYLE_CHARS, description="The one shared style.")),
        negative_prompt=negative,
        aspect_ratio=ratio,
        candidates=(list[candidate], Field(min_length=candidates, max_length=candidates)),  # type: ignore[valid-type]
    )
    return model


def schema_for(request: ComposeRequest) -> type[BaseModel]:
    """The tool schema matching a request (brainstorm or several candidates → the candidates schema)."""
    max_hit = max((h.number for h in request.hits), default=0)
    several = request.kind == "brainstorm" or request.candidates > 1
    return output_schema(several, request.candidates, request.max_prompt_chars, max_hit)


def drafts_from(parsed: BaseModel) -> list[PromptDraft]:
    """PromptDrafts from a parsed tool input of either schema."""
    data = parsed.model_dump()
    if "candidates" not in data:
        borrowed = tuple(data.pop("borrowed", None) or ())
        return [PromptDraft(**{**data, "used_hits": tuple(data["used_hits"]), "borrowed": borrowed})]
    return [
        PromptDraft(
            prompt=c["prompt"],
            negative_prompt=data["negative_prompt"],
            aspect_ratio=data["aspect_ratio"],
            style=data["style"],
            used_hits=tuple(c["used_hits"]),
            rationale=c["rationale"],
            borrowed=tuple(c.get("borrowed") or ()),
        )
        for c in data["candidates"]
    ]


# the adapter --------------------------------------------------------------------------------------------
def split_model_id(model_id: str) -> tuple[str | None, str]:
    """(base model id or None for ARNs, provider) of a model or inference-profile id."""
    if model_id.startswith("arn:"):
        return None, "anthropic" if "anthropic" in model_id or "claude" in model_id else ""
    base = _GEO_PREFIX.sub("", model_id)
    return base, base.split(".", 1)[0]


class BedrockChatModel:
    """ChatModel on Bedrock Converse (Claude by default), one Converse call per compose."""

    def __init__(
        self,
        model_id: str = DEFAULT_MODEL,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        client: Any | None = None,
        max_attempts: int = 4,
        temperature: float = 0.7,
        max_tokens: int = 1024,
    ) -> None:
        """Keep the settings; boto3 and langchain-aws are imported on first use."""
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if not model_id.strip():
            raise ModelConfigError(f"{VARIABLE} names no model: use e.g. bedrock:{DEFAULT_MODEL}")
        self._model = model_id.strip()
        self._region = region
        self._endpoint_url = endpoint_url
        self._client = client
        self._max_attempts = max_attempts
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._lock = threading.Lock()
        self._llms: dict[int, Any] = {}

    @property
    def model_id(self) -> str:
        """Provider string, e.g. 'bedrock:us.anthropic.claude-haiku-4-5-20251001-v1:0'."""
        return f"bedrock:{self._model}"

    @property
    def is_offline(self) -> bool:
        """Always False: this adapter calls Bedrock."""
        return False

    @property
    def client(self) -> Any:
        """The boto3 bedrock-runtime client (built on first access)."""
        return self._llm(self._max_tokens).client

    def warm_up(self) -> None:
        """Import langchain-aws, build the Bedrock clients, bind a first turn's tool schema (no API call)."""
        from langchain_core.messages import HumanMessage, SystemMessage  # noqa: F401 - the import is the point

        self._llm(self._max_tokens).with_structured_output(output_schema(False, 1, 400, 5), include_raw=True)

    def compose(self, request: ComposeRequest) -> ComposeResult:
        """Ask Claude for `request.candidates` drafts, check their bounds, borrowed claims and subject."""
        # a draft that lost the idea's subject is asked for once more (logged, counted in extra_calls);
        # when the second answer loses it too, the idea plus the borrowed phrases is drawn instead
        drafts, tokens_in, tokens_out = self._ask(request)
        extra = 0
        lost = self._lost(drafts, request)
        if lost is not None:
            extra = 1
            logger.warning(
                "bedrock chat %s: the draft lost the idea's subject (%r); asking once more", self._model, lost
            )
            note = SUBJECT_NOTE.format(subject=subject_clause(request.idea), prompt=lost)
            try:
                again, more_in, more_out = self._ask(request, note)
                tokens_in, tokens_out = tokens_in + more_in, tokens_out + more_out
            except BotError as exc:
                logger.warning("bedrock chat %s: the second ask failed (%s)", self._model, exc)
                again = drafts
            if self._lost(again, request) is not None:
                logger.warning("bedrock chat %s: subject lost twice; drawing the idea as typed", self._model)
                again = tuple(_idea_with_borrowings(d, request) for d in again)
            drafts = again
        return ComposeResult(
            drafts=drafts,
            model_id=self.model_id,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            extra_calls=extra,
        )

    def _lost(self, drafts: tuple[PromptDraft, ...], request: ComposeRequest) -> str | None:
        """The first draft prompt that no longer names the idea's subject (only for SUBJECT_KINDS)."""
        if request.kind not in SUBJECT_KINDS:
            return None
        return next((d.prompt for d in drafts if not keeps_subject(request.idea, d.prompt)), None)

    def _ask(
        self, request: ComposeRequest, note: str | None = None
    ) -> tuple[tuple[PromptDraft, ...], int, int]:
        """One Converse call: drafts within bounds with their borrowed claims checked, and the usage."""
        from langchain_core.messages import HumanMessage, SystemMessage

        system, user = build_messages(request)
        if note:
            user += "\n" + note
        schema = schema_for(request)
        if request.kind == "refine" and request.candidates == 1:  # it may work on the thread's image
            system = f"{system}\n\n{edit_guidance(request.edits)}"
            schema = with_edit_fields(schema, tuple(request.edits))
        llm = self._llm(self._budget(request))
        runnable = llm.with_structured_output(schema, include_raw=True)
        try:
            out = runnable.invoke([SystemMessage(content=system), HumanMessage(content=user)])
        except Exception as exc:
            raise self._error(exc) from exc
        raw, parsed = out.get("raw"), out.get("parsed")
        usage = getattr(raw, "usage_metadata", None) or {}
        if not isinstance(parsed, BaseModel):
            raise self._bad_output(raw, out.get("parsing_error"))
        answered = drafts_from(parsed)
        checked = []
        for draft in keep_edit_choice(validate_drafts(answered, request, model=self._model), answered):
            grounded, dropped = verify_borrowed(draft, request.hits)
            if dropped:
                logger.info("bedrock chat %s: dropped borrowed claims not found: %s", self._model, dropped)
            checked.append(grounded)
        return tuple(checked), int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))

    def chat_llm(self, max_tokens: int | None = None) -> Any:
        """The ChatBedrockConverse this adapter calls (for other structured calls, e.g. a vision judge)."""
        return self._llm(max_tokens or self._max_tokens)

    def error_for(self, exc: BaseException) -> BotError:
        """The BotError a user can act on for a Bedrock failure of a call made through `chat_llm`."""
        return self._error(exc)

    def describe(self, image: bytes, mime_type: str, hint: str = "") -> PictureDescription:
        """A prompt written from a picture: one Converse call with an image block and the caption."""
        from langchain_core.messages import HumanMessage, SystemMessage

        data, mime = vision_image(image)
        system, text = build_describe_message(hint, DESCRIBE_CHARS)
        picture = {"type": "image", "base64": base64.b64encode(data).decode("ascii"), "mime_type": mime}
        message = HumanMessage(content=[picture, {"type": "text", "text": text}])
        try:
            answer = self._llm(self._max_tokens).invoke([SystemMessage(content=system), message])
        except Exception as exc:
            raise self._error(exc) from exc
        content = answer.content
        words = (
            content
            if isinstance(content, str)
            else " ".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
        )
        description = clean_line(words).strip(" \"'")[:DESCRIBE_CHARS]
        if not description:
            raise UpstreamError(f"the vision model ({self._model}) described nothing; try again")
        usage = getattr(answer, "usage_metadata", None) or {}
        return PictureDescription(
            description,
            self.model_id,
            input_tokens=int(usage.get("input_tokens", 0)),
            output_tokens=int(usage.get("output_tokens", 0)),
        )

    def _budget(self, request: ComposeRequest) -> int:
        """max_tokens for a call: the configured value, raised for many long candidates."""
        per_draft = request.max_prompt_chars // 3 + 120
        needed = 200 + request.candidates * per_draft
        return min(MAX_OUTPUT_TOKENS, max(self._max_tokens, needed))

    def _bad_output(self, raw: Any, error: Any) -> UpstreamError:
        """The error for an answer that is not a schema-conforming tool call."""
        stop = (getattr(raw, "response_metadata", None) or {}).get("stopReason")
        if stop == "max_tokens":
            why = "its answer was cut off at the max_tokens limit"
        elif error is not None:
            why = "its tool input broke the schema (" + _clean(str(error).split("\n", 1)[0]) + ")"
        else:
            why = "it answered without calling the prompt tool"
        logger.warning("bedrock chat %s: unusable answer: %s", self._model, why)
        return UpstreamError(f"the chat model ({self._model}) returned an unusable draft: {why}; try again")

    def _llm(self, max_tokens: int) -> Any:
        """The ChatBedrockConverse for a max_tokens budget (built once per budget, thread-safe)."""
        llm = self._llms.get(max_tokens)
        if llm is not None:
            return llm
        with self._lock:  # one set of clients: other budgets are copies of the configured one
            if self._max_tokens not in self._llms:
                self._llms[self._max_tokens] = self._build(self._max_tokens)
            if max_tokens not in self._llms:
                self._llms[max_tokens] = self._llms[self._max_tokens].model_copy(
                    update={"max_tokens": max_tokens}
                )
            return self._llms[max_tokens]

    def _build(self, max_tokens: int) -> Any:
        """ChatBedrockConverse over our own clients; base_model/provider set: no control-plane call."""
        try:
            from langchain_aws import ChatBedrockConverse
        except ImportError as exc:
            raise ModelConfigError("langchain-aws is not installed: run `make setup`") from exc
        logging.getLogger(_LANGCHAIN_LOGGER).addFilter(_FILTER)
        base_model, provider = split_model_id(self._model)
        runtime, control = self._build_clients(control_plane=base_model is None)
        kwargs: dict[str, Any] = {"provider": provider} if provider else {}
        if base_model is not None:
            kwargs["base_model"] = base_model
        try:
            return ChatBedrockConverse(
                model=self._model,
                client=runtime,
                bedrock_client=control,
                region_name=self._region,
                temperature=self._temperature,
                max_tokens=max_tokens,
                **kwargs,
            )
        except Exception as exc:
            raise self._error(exc) from exc

    def _build_clients(self, *, control_plane: bool) -> tuple[Any, Any]:
        """bedrock-runtime (adaptive retries, timeouts), plus a control-plane client for profile ARNs."""

        def client(service: str) -> Any:
            return aws_client(
                service,
                region=self._region,
                endpoint_url=self._endpoint_url,
                max_attempts=self._max_attempts,
                connect_timeout_s=CONNECT_TIMEOUT_S,
                read_timeout_s=READ_TIMEOUT_S,
            )

        try:
            runtime = self._client or client("bedrock-runtime")
            # ChatBedrockConverse calls the control plane only to resolve an application-inference-profile
            # ARN (GetInferenceProfile); for model and cross-region profile ids base_model is set instead,
            # and the runtime client stands in so that no second client is built.
            control = client("bedrock") if control_plane else runtime
        except ImportError as exc:
            raise ModelConfigError("boto3 is not installed: run `make setup`") from exc
        except Exception as exc:
            raise self._error(exc) from exc
        return runtime, control

    def _where(self) -> str:
        """Region, or the endpoint URL when one is set."""
        return f"{self._region} ({self._endpoint_url})" if self._endpoint_url else self._region

    def _error(self, exc: BaseException) -> BotError:
        """A BotError a user can act on for a botocore/langchain failure; logged once, without secrets."""
        error = describe_error(exc, self._model, self._where(), self._max_attempts)
        operator = isinstance(error, ModelUnavailableError | AccessDeniedError | ModelConfigError)
        level = logging.ERROR if operator else logging.WARNING  # ERROR: only the operator can fix it
        logger.log(
            level, "bedrock chat %s in %s failed (%s): %s", self._model, self._where(), _code(exc), error
        )
        return error


def _idea_with_borrowings(draft: PromptDraft, request: ComposeRequest) -> PromptDraft:
    """The fallback when a draft lost the subject twice: the idea as typed plus the borrowed phrases."""
    from retrieval.modifiers import classify_modifier

    looks = [(p, classify_modifier(p.lower())) for p in draft.borrowed]
    prompt = render(" ".join(request.idea.split()), (), looks, dialect_for(request.image_model))
    while len(prompt) > request.max_prompt_chars and looks:
        looks.pop()
        prompt = render(" ".join(request.idea.split()), (), looks, dialect_for(request.image_model))
    kept = tuple(p for p, _ in looks)
    return replace(
        draft,
        prompt=prompt[: request.max_prompt_chars],
        borrowed=kept,
        used_hits=draft.used_hits if kept else (),
        rationale="the model's prompt lost your subject twice, so this is your idea with the borrowed look",
    )


def describe_error(exc: BaseException, model: str, where: str, max_attempts: int) -> BotError:
    """Map a Bedrock/botocore/langchain failure to the matching BotError with the next step to take."""
    from botocore import exceptions as bx

    if isinstance(exc, BotError):
        return exc
    if isinstance(exc, bx.ClientError):
        return _client_error(exc, model, where, max_attempts)
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError | bx.CredentialRetrievalError):
        return AccessDeniedError(
            f"no usable AWS credentials for Bedrock ({type(exc).__name__}): set AWS_PROFILE or "
            f"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or run `aws sso login`), or set {OFFLINE_FALLBACK}"
        )
    if isinstance(exc, bx.TokenRetrievalError | bx.SSOError):
        return AccessDeniedError(
            f"the AWS SSO session has expired: run `aws sso login`, or set {OFFLINE_FALLBACK}"
        )
    if isinstance(exc, bx.NoRegionError):
        return ModelConfigError(
            "no AWS region configured for Bedrock: set IMAGINE_AWS_REGION (e.g. us-east-1)"
        )
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ProxyConnectionError):
        return UpstreamError(
            f"cannot reach Bedrock in {where}: check the network, proxy and IMAGINE_BEDROCK_ENDPOINT_URL, "
            f"or set {OFFLINE_FALLBACK}"
        )
    if isinstance(exc, bx.ReadTimeoutError | bx.ConnectionClosedError):
        return UpstreamError(f"Bedrock in {where} did not answer in time for {model}: try again")
    name = type(exc).__name__
    if name == "BedrockContextOverflowError":
        return UpstreamError(f"the request was too long for {model}: start a new thread")
    return UpstreamError(f"Bedrock chat with {model} failed ({name}): {_clean(str(exc))}")


def _client_error(exc: Any, model: str, where: str, max_attempts: int) -> BotError:
    """Map a botocore ClientError by its AWS error code."""
    error = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
    code = str(error.get("Code") or "Unknown")
    message = _clean(str(error.get("Message") or ""))
    meta = exc.response.get("ResponseMetadata", {}) if isinstance(exc.response, dict) else {}
    status = meta.get("HTTPStatusCode")
    attempts = 1 + int(meta.get("RetryAttempts") or 0)
    profile = model if _GEO_PREFIX.match(model) or model.startswith("arn:") else f"us.{model}"
    if code in ("AccessDeniedException", "AccessDenied"):
        return AccessDeniedError(
            f"Bedrock denied access to {model} in {where}: enable model access in the Bedrock console "
            f"(Anthropic models need the use-case form) and allow bedrock:InvokeModel on the inference "
            f"profile and its foundation models in IAM, or set {OFFLINE_FALLBACK}"
        )
    if code in _BAD_CREDENTIALS:
        return AccessDeniedError(
            f"Bedrock rejected the AWS credentials ({code}): refresh them (e.g. `aws sso login`) or check "
            f"AWS_PROFILE / AWS_ACCESS_KEY_ID, or set {OFFLINE_FALLBACK}"
        )
    if code == "ResourceNotFoundException":
        return ModelUnavailableError(
            f"Bedrock has no model {model} in {where}: check {VARIABLE} and IMAGINE_AWS_REGION "
            f"(e.g. {VARIABLE}=bedrock:{DEFAULT_MODEL}) or set {OFFLINE_FALLBACK}"
        )
    if code == "ValidationException" and _END_OF_LIFE.search(message):
        return ModelUnavailableError(
            f"Bedrock model {model} has reached end of life: set {VARIABLE} to a current model "
            f"(e.g. bedrock:{DEFAULT_MODEL}) or {OFFLINE_FALLBACK}"
        )
    if code == "ValidationException" and _ON_DEMAND.search(message):
        return ModelUnavailableError(
            f"Bedrock serves {model} only through an inference profile in {where}: set "
            f"{VARIABLE}=bedrock:{profile} (the us./eu./apac./global. profile id for your region)"
        )
    if code == "ValidationException" and "model identifier is invalid" in message.lower():
        return ModelConfigError(f"Bedrock does not recognise the model id {model}: fix {VARIABLE}")
    if code == "ValidationException":
        return UpstreamError(f"Bedrock rejected the chat request for {model}: {message or code}")
    if code in _THROTTLING or status == 429:
        return ThrottledError(
            f"Bedrock kept throttling {model} in {where} after {attempts} of {max_attempts} attempts: "
            "try again in a minute, or request a higher quota in Service Quotas",
            attempts,
        )
    if code in _UNAVAILABLE or (isinstance(status, int) and status >= 500):
        return UpstreamError(f"Bedrock is unavailable for {model} in {where} ({code}): try again later")
    return UpstreamError(f"Bedrock chat with {model} in {where} failed ({code}): {message or 'no message'}")


def _code(exc: BaseException) -> str:
    """The AWS error code of a ClientError, else the exception's type name."""
    response = getattr(exc, "response", None)
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    return str(error.get("Code") or type(exc).__name__)


def _clean(text: str) -> str:
    """First line of a message, shortened, with anything that looks like a key or token redacted."""
    line = " ".join(text.split())
    line = _SECRET_LIKE.sub("[redacted]", line)
    return line if len(line) <= 240 else line[:237] + "..."


def vision_image(data: bytes) -> tuple[bytes, str]:
    """The picture as Converse takes it: at most VISION_SIDE px a side, PNG (or JPEG when it is a photo)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            picture = image.convert("RGBA" if image.mode in ("RGBA", "LA", "PA", "P") else "RGB")
            photo = image.format == "JPEG"
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UpstreamError("the picture could not be read for the vision model") from exc
    if max(picture.size) > VISION_SIDE:
        picture.thumbnail((VISION_SIDE, VISION_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if photo and picture.mode == "RGB":
        picture.save(out, format="JPEG", quality=90)
        return out.getvalue(), "image/jpeg"
    picture.save(out, format="PNG")
    return out.getvalue(), "image/png"
