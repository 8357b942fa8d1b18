"""Converse handlers for FakeBedrockRuntime: Claude-like answers with toolUse, scriptable replies.

Requests may carry image content blocks (Claude's vision): each must be a PNG, JPEG, GIF or WebP of the
format it names, as Bedrock checks, and a judge call (a tool with an `adherence` property) gets a verdict
from `ConverseScript.judge`, which sees the decoded images.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.bedrock_runtime import BedrockFault, FakeBedrockRuntime, FakeResponse, RecordedRequest

CLAUDE_PREFIXES = (
    "anthropic.",
    "us.anthropic.",
    "eu.anthropic.",
    "apac.anthropic.",
    "global.anthropic.",
    "jp.anthropic.",
    "au.anthropic.",
)
# Bare ids of these models are not served on demand: Bedrock wants an inference profile id instead.
PROFILE_ONLY = (
    "anthropic.claude-haiku-4",
    "anthropic.claude-sonnet-4",
    "anthropic.claude-opus-4",
    "anthropic.claude-3-7",
)
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
IMAGE_FORMATS = ("png", "jpeg", "gif", "webp")
MAX_IMAGE_BYTES = 3_750_000  # Converse: 3.75 MB and 8,000 px a side per image
MAX_IMAGE_SIDE = 8000
_TAG = r"<{0}>(.*?)</{0}>"
Judge = Callable[[list[bytes], dict[str, Any]], dict[str, Any]]


def on_demand_message(model_id: str) -> str:
    """Bedrock's wording when a bare model id needs an inference profile (note the curly apostrophe)."""
    return (
        f"Invocation of model ID {model_id} with on-demand throughput isn’t supported. Retry your "
        "request with the ID or ARN of an inference profile that contains this model."
    )


@dataclass
class _Reply:
    """One scripted answer: a tool input, a plain text, or a whole response."""

    tool_input: Any = None
    text: str | None = None
    response: FakeResponse | None = None
    stop_reason: str | None = None


class ConverseScript:
    """Queue of scripted Converse answers plus a default that drafts a prompt from the request."""

    def __init__(self) -> None:
        """Start with an empty queue and the built-in default."""
        self._lock = threading.Lock()
        self._queue: deque[_Reply] = deque()
        self.bodies: list[dict[str, Any]] = []
        self.default: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] = default_tool_input
        self.judge: Judge = default_judgement  # verdict of a judge call, from its images (in order)

    # scripting -----------------------------------------------------------------------------------------
    def push_tool_input(self, tool_input: Any, *, stop_reason: str = "tool_use") -> None:
        """Answer the next call with a toolUse block holding this input (valid or not)."""
        self._push(_Reply(tool_input=tool_input, stop_reason=stop_reason))

    def push_text(self, text: str, *, stop_reason: str = "end_turn") -> None:
        """Answer the next call with text only (no tool call)."""
        self._push(_Reply(text=text, stop_reason=stop_reason))

    def push_response(self, response: FakeResponse) -> None:
        """Answer the next call with exactly this response."""
        self._push(_Reply(response=response))

    def _push(self, reply: _Reply) -> None:
        """Queue one answer."""
        with self._lock:
            self._queue.append(reply)

    # inspection ----------------------------------------------------------------------------------------
    @property
    def last(self) -> dict[str, Any]:
        """Body of the latest Converse request."""
        if not self.bodies:
            raise AssertionError("no Converse request was received")
        return self.bodies[-1]

    def user_text(self, body: dict[str, Any] | None = None) -> str:
        """All text of the user messages of a request (default: the latest)."""
        return message_text(body if body is not None else self.last, "user")

    def system_text(self, body: dict[str, Any] | None = None) -> str:
        """The system prompt of a request (default: the latest)."""
        blocks = (body if body is not None else self.last).get("system") or []
        return "\n".join(b.get("text", "") for b in blocks if isinstance(b, dict))

    # handler -------------------------------------------------------------------------------------------
    def __call__(self, request: RecordedRequest) -> FakeResponse:
        """Answer one Converse request like Bedrock."""
        body = request.body
        _check_request(body)
        with self._lock:
            self.bodies.append(body)
            reply = self._queue.popleft() if self._queue else None
        if reply is not None and reply.response is not None:
            return reply.response
        tools = (body.get("toolConfig") or {}).get("tools") or []
        if reply is not None and reply.text is not None:
            return _answer(body, [{"text": reply.text}], reply.stop_reason or "end_turn")
        if not tools:
            pictures = images_in(body)
            if pictures:  # a vision request: "describe" what the picture looks like
                caption = _unescape(_tag(body, "caption"))
                return _answer(body, [{"text": describe_picture(pictures[0], caption)}], "end_turn")
            text = f"A picture of {_tag(body, 'idea') or 'something nice'}."
            return _answer(body, [{"text": text}], "end_turn")
        spec = tools[0]["toolSpec"]
        schema = spec["inputSchema"]["json"]
        if reply is not None:
            tool_input = reply.tool_input
        elif "adherence" in (schema.get("properties") or {}):
            tool_input = self.judge(images_in(body), body)
        else:
            tool_input = self.default(body, schema)
        block = {
            "toolUse": {
                "toolUseId": "tooluse_" + uuid.uuid4().hex[:22],
                "name": spec["name"],
                "input": tool_input,
            }
        }
        return _answer(body, [block], (reply.stop_reason if reply else None) or "tool_use")


def install_converse_handlers(
    fake: FakeBedrockRuntime,
    prefixes: Sequence[str] = CLAUDE_PREFIXES,
    *,
    profile_only: Sequence[str] = PROFILE_ONLY,
) -> ConverseScript:
    """Route `converse` for the given model-id prefixes to one ConverseScript and return it."""
    script = ConverseScript()

    def handler(request: RecordedRequest) -> FakeResponse:
        """Refuse bare ids of profile-only models, else let the script answer."""
        model_id = request.model_id or ""
        if model_id.startswith(tuple(profile_only)):
            raise BedrockFault(400, "ValidationException", on_demand_message(model_id))
        return script(request)

    for prefix in prefixes:
        fake.register("converse", prefix, handler)
    return script


# request checks -----------------------------------------------------------------------------------------
def _invalid(message: str) -> BedrockFault:
    """Bedrock's 400 ValidationException."""
    return BedrockFault(400, "ValidationException", message)


def _check_request(body: Any) -> None:
    """The checks Bedrock does before the model sees a Converse request."""
    if not isinstance(body, dict):
        raise _invalid("Malformed input request, please reformat your input and try again.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid(
            "A conversation must start with a user message. "
            "Try again with a conversation that starts with a user message."
        )
    for i, message in enumerate(messages):
        expected = "user" if i % 2 == 0 else "assistant"
        if not isinstance(message, dict) or message.get("role") != expected:
            raise _invalid("A conversation must alternate between user and assistant roles.")
        if not message.get("content"):
            raise _invalid(f"The content field in the Message object at messages.{i} is empty.")
    for i, message in enumerate(messages):
        for j, block in enumerate(message.get("content") or []):
            if isinstance(block, dict) and "image" in block:
                _check_image(block["image"], f"messages.{i}.content.{j}.image")
    config = body.get("inferenceConfig") or {}
    max_tokens = config.get("maxTokens", 1)
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise _invalid("The maximum tokens you requested must be at least 1.")
    temperature = config.get("temperature", 0.5)
    if not isinstance(temperature, int | float) or not 0 <= temperature <= 1:
        raise _invalid("temperature: range: 0..1")
    tool_config = body.get("toolConfig")
    if tool_config is None:
        return
    tools = tool_config.get("tools")
    if not isinstance(tools, list) or not tools:
        raise _invalid(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        )
    names = []
    for tool in tools:
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        schema = ((spec or {}).get("inputSchema") or {}).get("json")
        if not spec or not _TOOL_NAME.match(str(spec.get("name", ""))) or not isinstance(schema, dict):
            raise _invalid("The value at toolConfig.tools.0.toolSpec failed to satisfy constraint.")
        if schema.get("type") != "object":
            raise _invalid("tools.0.custom.input_schema.type: Input should be 'object'")
        names.append(spec["name"])
    choice = tool_config.get("toolChoice")
    if choice is not None:
        if (
            not isinstance(choice, dict)
            or len(choice) != 1
            or next(iter(choice)) not in ("auto", "any", "tool")
        ):
            raise _invalid("The value at toolConfig.toolChoice failed to satisfy constraint.")
        if "tool" in choice and choice["tool"].get("name") not in names:
            raise _invalid("The tool specified in toolChoice is not defined in toolConfig.tools.")


def _check_image(image: Any, where: str) -> None:
    """An image block as Bedrock checks it: format, base64 bytes of that format, size limits."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(image, dict) or image.get("format") not in IMAGE_FORMATS:
        raise _invalid(f"{where}.format: must be one of {', '.join(IMAGE_FORMATS)}")
    source = image.get("source")
    if not isinstance(source, dict) or set(source) != {"bytes"}:
        raise _invalid(f"{where}.source: exactly one of bytes or s3Location is required")
    try:
        data = base64.b64decode(str(source["bytes"]), validate=True)
        with Image.open(io.BytesIO(data)) as picture:
            found, width, height = str(picture.format or "").lower(), picture.width, picture.height
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError) as exc:
        raise _invalid(f"{where}.source.bytes: Could not process image") from exc
    if found != image["format"]:
        raise _invalid(f"The provided image at {where} does not match the format {image['format']}.")
    if len(data) > MAX_IMAGE_BYTES or max(width, height) > MAX_IMAGE_SIDE:
        raise _invalid(f"{where}: image exceeds 3.75 MB or 8000 px")


def images_in(body: dict[str, Any]) -> list[bytes]:
    """The image bytes of the user messages of a Converse request."""
    found = []
    for message in body.get("messages") or []:
        for block in message.get("content") or []:
            if isinstance(block, dict) and isinstance(block.get("image"), dict):
                found.append(base64.b64decode(str(block["image"]["source"]["bytes"])))
    return found


def describe_picture(data: bytes, caption: str = "") -> str:
    """The stand-in vision model's description: the caption, and what the picture's colour and size say."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as picture:
        red, green, blue = picture.convert("RGB").resize((1, 1)).getpixel((0, 0))  # type: ignore[misc]
        width, height = picture.size
    shade = "pale" if red + green + blue > 600 else "dark" if red + green + blue < 150 else "colourful"
    subject = caption or "a simple shape"
    return f"{subject}, a {shade} hand-drawn sketch, {width}x{height} px, clean lines on paper"


def default_judgement(images: list[bytes], body: dict[str, Any]) -> dict[str, Any]:
    """A deterministic verdict: the image with the smaller sha256 wins both criteria, equal images tie."""
    if len(images) != 2:
        raise _invalid(f"a pairwise judgement needs two images, got {len(images)}")
    first, second = (hashlib.sha256(image).hexdigest() for image in images)
    choice = "tie" if first == second else "first" if first < second else "second"
    return {"adherence": choice, "appeal": choice, "reason": "stand-in verdict by image digest"}


# answers ------------------------------------------------------------------------------------------------
def message_text(body: dict[str, Any], role: str) -> str:
    """Concatenated text blocks of the messages with this role."""
    parts = []
    for message in body.get("messages") or []:
        if message.get("role") == role:
            parts += [b["text"] for b in message.get("content") or [] if isinstance(b, dict) and "text" in b]
    return "\n".join(parts)


def _tag(body: dict[str, Any], name: str) -> str:
    """Content of the first <name>...</name> in the user text ('' when absent)."""
    match = re.search(_TAG.format(name), message_text(body, "user"), re.S)
    return match.group(1).strip() if match else ""


def _tokens(text: str) -> int:
    """A rough token count (words and punctuation)."""
    return max(1, len(re.findall(r"\w+|[^\w\s]", text)))


def _answer(body: dict[str, Any], content: list[dict[str, Any]], stop_reason: str) -> FakeResponse:
    """A Converse response with usage and metrics."""
    input_tokens = _tokens(json.dumps(body.get("system") or []) + json.dumps(body.get("messages") or []))
    output_tokens = _tokens(json.dumps(content))
    return FakeResponse(
        body={
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop_reason,
            "usage": {
                "inputTokens": input_tokens,
                "outputTokens": output_tokens,
                "totalTokens": input_tokens + output_tokens,
            },
            "metrics": {"latencyMs": 42},
        }
    )


def default_tool_input(body: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A plausible, schema-conforming draft built from the request: the idea plus the instruction."""
    idea = _unescape(_tag(body, "idea")) or "a picture"
    instruction = _unescape(_tag(body, "instruction"))
    props = schema.get("properties") or {}
    if "concepts" in props:  # the concept planner: each longer word of the idea is a concept of its own
        words = [w for w in re.findall(r"[a-z]+", idea.lower()) if len(w) > 3][:3] or ["picture"]
        names = ["subject", *words[1:]]
        return {"concepts": [{"name": n, "phrases": [w]} for n, w in zip(names, words, strict=True)]}
    if "candidates" in props:
        count = int(props["candidates"].get("minItems", 1))
        style = "flat vector illustration, vibrant colors"
        item = props["candidates"].get("items") or {}
        limit = int((item.get("properties") or {}).get("prompt", {}).get("maxLength", 1000))
        poses = ("portrait", "full body", "icon", "side view", "action pose", "close-up", "badge", "sketch")
        candidates = [
            {
                "prompt": _fit(f"{idea}, {poses[i % len(poses)]} {i + 1}, {style}", limit),
                "used_hits": _hits(item.get("properties", {}).get("used_hits", {})),
                "rationale": f"candidate {i + 1}",
            }
            for i in range(count)
        ]
        return {
            "style": style,
            "negative_prompt": "blurry, low quality",
            "aspect_ratio": "1:1",
            "candidates": candidates,
        }
    limit = int(props.get("prompt", {}).get("maxLength", 1000))
    used = _hits(props.get("used_hits", {}))
    borrowed = _borrowable(body) if used else None
    parts = [idea, *([instruction] if instruction else []), *([borrowed] if borrowed else [])]
    parts += ["highly detailed", "digital painting"]
    answer = {
        "prompt": _fit(", ".join(parts), limit),
        "negative_prompt": "blurry, low quality",
        "aspect_ratio": "1:1",
        "style": "digital painting",
        "used_hits": used,
        "rationale": "stand-in draft: the idea with the instruction applied",
    }
    if "borrowed" in props:
        answer["borrowed"] = [borrowed] if borrowed else []
    return answer


def _borrowable(body: dict[str, Any]) -> str | None:
    """The last comma-separated phrase of library example 1 (what the default draft borrows), if short."""
    match = re.search(r'<library_prompt n="1">(.*?)</library_prompt>', message_text(body, "user"), re.S)
    if not match or "," not in match.group(1):
        return None
    phrase = _unescape(match.group(1)).rsplit(",", 1)[1].strip()
    return phrase if 0 < len(phrase) <= 40 else None


def _hits(schema: dict[str, Any]) -> list[int]:
    """[1] when the schema allows citing a hit, else []."""
    return (
        [1] if schema.get("maxItems", 1) >= 1 and (schema.get("items") or {}).get("maximum", 1) >= 1 else []
    )


def _fit(text: str, limit: int) -> str:
    """Cut to the schema's maxLength."""
    return text if len(text) <= limit else text[:limit].rstrip(", ")


def _unescape(text: str) -> str:
    """Undo the template's angle-bracket escaping."""
    return text.replace("&lt;", "<").replace("&gt;", ">")
