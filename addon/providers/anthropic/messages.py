"""OpenAI messages -> Anthropic messages: system text lifted out, strictly alternating roles, tool calls and
their results as tool_use / tool_result blocks, images as image blocks."""

from __future__ import annotations

import re
from typing import Any

from ... import jsonutil
from ...errors import bad_request
from ...openai_format import IMAGE_MEDIA_TYPES, text_of
from ..base import add_turn, trim_prefill
from .caching import content_control, control_of, mark_assistant, mark_last
from .thinking import history_blocks

# Anthropic tool_use ids must match ^[a-zA-Z0-9_-]+$; ids minted elsewhere are mapped the same way in the
# assistant tool_use and in the tool_result that answers it, so they keep matching.
_TOOL_ID_INVALID = re.compile(r"[^a-zA-Z0-9_-]")
# The only image media types Anthropic accepts (image_block_param.py) are the registered ones: it refuses the common
# `image/jpg` label with a 400.
_MEDIA_TYPES = IMAGE_MEDIA_TYPES


def _messages(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """OpenAI messages -> (system text, Anthropic messages with strictly alternating roles)."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    # Deprecated function calls carry no id: the assistant's function_call gets one made from its message index,
    # and the `function` message that answers it (matched by name) refers to it.
    pending_functions: list[tuple[str, str]] = []
    for i, m in enumerate(messages):
        role = m["role"]
        if role in ("system", "developer"):
            if isinstance(m.get("content"), list) and any(p.get("type") != "text" for p in m["content"]):
                raise bad_request(f"messages[{i}]: a {role} message may hold only text", param=f"messages[{i}]")
            system.append(text_of(m.get("content")))
            continue
        if role == "user":
            blocks = _user_blocks(m.get("content"), i)
            turn = "user"
        elif role == "assistant":
            blocks = _assistant_blocks(m, i)
            mark_assistant(blocks, m)
            pending_functions = [(b["id"], b["name"]) for b in blocks if b.get("_function")]
            for b in blocks:
                b.pop("_function", None)
            turn = "assistant"
        elif role == "tool":
            tool_call_id = m.get("tool_call_id")
            if not isinstance(tool_call_id, str) or not tool_call_id:
                raise bad_request(f"messages[{i}].tool_call_id is required", param=f"messages[{i}].tool_call_id")
            blocks = [_tool_result(_tool_id(tool_call_id), m.get("content"), i)]
            turn = "user"
        elif role == "function":
            name = m.get("name")
            match = next((k for k, (_, fn) in enumerate(pending_functions) if fn == name), None)
            if match is None:
                where = "name" if pending_functions else "role"
                raise bad_request(
                    f"messages[{i}]: a 'function' message must answer the assistant function_call before it"
                    + (f" (no pending call of function {name!r})" if pending_functions else ""),
                    param=f"messages[{i}].{where}",
                )
            call_id, _ = pending_functions.pop(match)
            blocks = [_tool_result(call_id, m.get("content"), i)]
            turn = "user"
        else:
            raise bad_request(
                f"messages[{i}]: role '{role}' is not supported by provider anthropic; use tools",
                param=f"messages[{i}].role",
            )
        if not blocks:
            continue
        add_turn(out, turn, blocks)
    trim_prefill(out, lambda block: block["type"] == "text")
    for m in out:
        if len(m["content"]) > 1:  # tool results must lead their user turn
            m["content"].sort(key=lambda b: b["type"] != "tool_result")
        if len(m["content"]) == 1 and m["content"][0]["type"] == "text" and "cache_control" not in m["content"][0]:
            m["content"] = m["content"][0]["text"]
    return "\n\n".join(s for s in system if s), out


def _tool_id(raw: str) -> str:
    if raw.isascii() and raw.replace("_", "").replace("-", "").isalnum():
        return raw  # already valid, as nearly every id is: checked without the regex
    return _TOOL_ID_INVALID.sub("_", raw)


def _tool_result(tool_use_id: str, content: Any, i: int) -> dict[str, Any]:
    if isinstance(content, list) and any(p.get("type") != "text" for p in content):
        raise bad_request(f"messages[{i}]: a tool result may hold only text", param=f"messages[{i}].content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id}
    text = text_of(content)
    if text:  # an empty result is sent without content: Anthropic rejects empty text
        block["content"] = text
    mark_last([block], content_control(content))
    return block


def _user_blocks(content: Any, i: int) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for j, part in enumerate(content or []):
        kind = part["type"]
        if kind == "text":
            if part.get("text"):
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image_block(part, f"messages[{i}].content[{j}]"))
        else:
            raise bad_request(
                f"messages[{i}].content[{j}]: '{kind}' parts are not supported by provider anthropic",
                param=f"messages[{i}].content[{j}]",
            )
        mark_last(blocks, control_of(part))
    return blocks


def _image_block(part: dict[str, Any], where: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise bad_request(f"{where}: image_url.url is required", param=where)
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";", 1)[0].strip().lower()
        media_type = _MEDIA_TYPES.get(media_type, media_type)
        if ";base64" not in header or not media_type.startswith("image/"):
            raise bad_request(f"{where}: data URLs must be base64-encoded images", param=where)
        if media_type not in _MEDIA_TYPES.values():
            raise bad_request(
                f"{where}: provider anthropic takes jpeg, png, gif and webp images, not {media_type}", param=where
            )
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise bad_request(f"{where}: image_url must be a data: or http(s) URL", param=where)


def _arguments(raw: Any, i: int, j: int | None) -> dict[str, Any]:
    """A tool call's JSON-string arguments -> the object Anthropic's `input` must be (messages[i].tool_calls[j], or
    messages[i].function_call when j is None)."""
    if raw is None or raw == "":
        return {}
    try:
        value = jsonutil.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        where = f"messages[{i}].function_call" if j is None else f"messages[{i}].tool_calls[{j}]"
        raise bad_request(f"{where}.arguments must be a JSON object encoded as a string", param=where)
    return value


def _assistant_blocks(m: dict[str, Any], i: int) -> list[dict[str, Any]]:
    blocks = history_blocks(m)  # signed reasoning first, as Anthropic wants it
    text = text_of(m.get("content"))
    if text:
        blocks.append({"type": "text", "text": text})
    for j, call in enumerate(m.get("tool_calls") or []):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            where = f"messages[{i}].tool_calls[{j}]"
            raise bad_request(f"{where} must be a function call with a name", param=where)
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            where = f"messages[{i}].tool_calls[{j}]"
            raise bad_request(f"{where}.id is required", param=where)
        input_ = _arguments(fn.get("arguments"), i, j)
        blocks.append({"type": "tool_use", "id": _tool_id(call_id), "name": fn["name"], "input": input_})
    function_call = m.get("function_call")
    if function_call is not None:
        where = f"messages[{i}].function_call"
        if not isinstance(function_call, dict) or not isinstance(function_call.get("name"), str):
            raise bad_request(f"{where} must be an object with a name", param=where)
        input_ = _arguments(function_call.get("arguments"), i, None)
        blocks.append(
            {
                "type": "tool_use",
                "id": f"call_fn_{i}",
                "name": function_call["name"],
                "input": input_,
                "_function": True,
            }
        )
    return blocks
