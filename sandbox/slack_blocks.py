"""Block Kit and view checks the sandbox applies in Slack's error wording (a useful subset of the rules)."""

from __future__ import annotations

from typing import Any

from sandbox.slack_models import Json, SlackError

MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100


def _text_of(obj: Any) -> str | None:
    """The `text` of a text object, or None when it is not one."""
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        return str(obj["text"])
    return None


def _too_long(obj: Any, limit: int, at: str, errors: list[str]) -> None:
    """Record an error when a text object's text exceeds `limit` characters."""
    text = _text_of(obj)
    if text is not None and len(text) > limit:
        errors.append(f"must be less than {limit + 1} characters [json-pointer:{at}/text]")


def _check_element(element: Any, at: str, errors: list[str]) -> None:
    """Interactive element rules: action_id length, button text and value length."""
    if not isinstance(element, dict) or "type" not in element:
        errors.append(f"missing required field: type [json-pointer:{at}]")
        return
    if len(str(element.get("action_id", ""))) > 255:
        errors.append(f"must be less than 256 characters [json-pointer:{at}/action_id]")
    if element["type"] == "button":
        if _text_of(element.get("text")) is None:
            errors.append(f"missing required field: text [json-pointer:{at}]")
        _too_long(element.get("text"), 75, f"{at}/text", errors)
        if len(str(element.get("value", ""))) > 2000:
            errors.append(f"must be less than 2001 characters [json-pointer:{at}/value]")


def _check_block(block: Json, at: str, errors: list[str]) -> None:
    """Per-type rules for one block."""
    kind = block["type"]
    if kind == "image":
        alt = block.get("alt_text")
        if not isinstance(alt, str) or not alt:
            errors.append(f"missing required field: alt_text [json-pointer:{at}]")
        elif len(alt) > 2000:
            errors.append(f"must be less than 2001 characters [json-pointer:{at}/alt_text]")
        if ("image_url" in block) == ("slack_file" in block):
            errors.append(f"must provide exactly one of image_url or slack_file [json-pointer:{at}]")
    elif kind == "section":
        if "text" not in block and "fields" not in block:
            errors.append(f"must provide text or fields [json-pointer:{at}]")
        _too_long(block.get("text"), 3000, f"{at}/text", errors)
        if len(block.get("fields") or []) > 10:
            errors.append(f"no more than 10 items allowed [json-pointer:{at}/fields]")
        if "accessory" in block:
            _check_element(block["accessory"], f"{at}/accessory", errors)
    elif kind == "header":
        _too_long(block.get("text"), 150, f"{at}/text", errors)
    elif kind in ("actions", "context"):
        elements = block.get("elements")
        limit = 25 if kind == "actions" else 10
        if not isinstance(elements, list) or not elements:
            errors.append(f"missing required field: elements [json-pointer:{at}]")
        elif len(elements) > limit:
            errors.append(f"no more than {limit} items allowed [json-pointer:{at}/elements]")
        elif kind == "actions":
            for j, element in enumerate(elements):
                _check_element(element, f"{at}/elements/{j}", errors)
    elif kind == "input" and ("label" not in block or "element" not in block):
        errors.append(f"missing required field: label or element [json-pointer:{at}]")


def block_errors(blocks: Any, limit: int = MESSAGE_BLOCK_LIMIT, pointer: str = "/blocks") -> list[str]:
    """Slack-worded problems with a blocks array (empty when it looks valid)."""
    if not isinstance(blocks, list):
        return [f"must be an array [json-pointer:{pointer}]"]
    errors: list[str] = []
    if len(blocks) > limit:
        errors.append(f"no more than {limit} items allowed [json-pointer:{pointer}]")
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        at = f"{pointer}/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"missing required field: type [json-pointer:{at}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in seen:
                errors.append(f"duplicate block_id [json-pointer:{at}/block_id]")
            if len(str(block_id)) > 255:
                errors.append(f"must be less than 256 characters [json-pointer:{at}/block_id]")
            seen.add(str(block_id))
        _check_block(block, at, errors)
    return errors


def check_blocks(blocks: Any) -> list[Json]:
    """Validated message blocks with block ids filled in, or SlackError("invalid_blocks")."""
    errors = block_errors(blocks)
    if errors:
        raise SlackError(
            "invalid_blocks", errors=errors, response_metadata={"messages": [f"[ERROR] {e}" for e in errors]}
        )
    return with_block_ids(blocks)


def with_block_ids(blocks: list[Json]) -> list[Json]:
    """Copies of the blocks with Slack-style generated block_ids where none was given."""
    filled = []
    for i, block in enumerate(blocks):
        copy = dict(block)
        copy.setdefault("block_id", f"sbx{i:02d}")
        filled.append(copy)
    return filled


def check_view(view: Any, *, home: bool = False) -> Json:
    """A validated modal (or home tab) view, or SlackError("invalid_arguments") with Slack-style messages."""
    if not isinstance(view, dict):
        raise SlackError(
            "invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: view"]}
        )
    errors: list[str] = []
    expected = "home" if home else "modal"
    if view.get("type") != expected:
        errors.append(f"must be '{expected}' [json-pointer:/view/type]")
    if not home:
        title = _text_of(view.get("title"))
        if title is None:
            errors.append("missing required field: title [json-pointer:/view]")
        for key in ("title", "submit", "close"):
            _too_long(view.get(key), 24, f"/view/{key}", errors)
        blocks = view.get("blocks") or []
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and "submit" not in view:
            errors.append("must provide submit when input blocks are present [json-pointer:/view/submit]")
    if len(str(view.get("private_metadata", ""))) > 3000:
        errors.append("must be less than 3001 characters [json-pointer:/view/private_metadata]")
    if len(str(view.get("callback_id", ""))) > 255:
        errors.append("must be less than 256 characters [json-pointer:/view/callback_id]")
    errors += block_errors(view.get("blocks", []), VIEW_BLOCK_LIMIT, "/view/blocks")
    if errors:
        raise SlackError(
            "invalid_arguments", response_metadata={"messages": [f"[ERROR] {e}" for e in errors]}
        )
    return view
