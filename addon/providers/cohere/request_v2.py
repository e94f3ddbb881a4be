"""OpenAI chat/completions -> the body of Cohere's v2 Chat API (`/v2/chat`): OpenAI-like messages and tools,
the text leading tool calls as `tool_plan`."""

from __future__ import annotations

import json
from typing import Any

from ...errors import bad_request
from ...openai_format import CHAT, single_prompt, text_of
from ..base import Call
from .common import V2
from .request import _refuse_serial_tools, _response_format, _text_only


def v2_body(call: Call) -> dict[str, Any]:
    body = call.body
    if call.route_type == CHAT:
        messages = _v2_messages(body["messages"])
    else:
        messages = [{"role": "user", "content": single_prompt(body)}]
    out: dict[str, Any] = {"messages": messages}
    tools = _v2_tools(body)
    if tools:
        out["tools"] = tools
        if any(isinstance(t.get("function"), dict) and t["function"].get("strict") for t in body["tools"]):
            out["strict_tools"] = True
    choice = _v2_tool_choice(body)
    if choice:
        out["tool_choice"] = choice
    _refuse_serial_tools(body)
    response_format = _response_format(body, "json_schema", V2)
    if response_format:
        out["response_format"] = response_format
    return out


def _v2_user_content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if not isinstance(content, list):
        return text_of(content)
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part["type"]
        if kind == "text":
            parts.append({"type": "text", "text": part.get("text") or ""})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise bad_request(f"{where}.content[{j}]: image_url.url is required", param=f"{where}.content[{j}]")
            out: dict[str, Any] = {"url": url}
            if isinstance(image, dict) and image.get("detail"):
                out["detail"] = image["detail"]
            parts.append({"type": "image_url", "image_url": out})
        else:
            raise bad_request(
                f"{where}.content[{j}]: '{kind}' parts are not supported by provider cohere",
                param=f"{where}.content[{j}]",
            )
    return parts


def _v2_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI messages -> Cohere v2 messages (same roles; system and developer are `system`)."""
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        role = m["role"]
        content = m.get("content")
        if role in ("system", "developer"):
            out.append({"role": "system", "content": _text_only(content, where, f"a {role} message")})
        elif role == "user":
            out.append({"role": "user", "content": _v2_user_content(content, where)})
        elif role == "assistant":
            text = _text_only(content, where, "an assistant message")
            message: dict[str, Any] = {"role": "assistant"}
            calls = m.get("tool_calls")
            if calls:
                message["tool_calls"] = [_v2_call_out(c, f"{where}.tool_calls[{j}]") for j, c in enumerate(calls)]
                if text:
                    message["tool_plan"] = text  # Cohere's name for the text that leads tool calls
            else:
                message["content"] = text
            out.append(message)
        elif role == "tool":
            if not isinstance(m.get("tool_call_id"), str) or not m["tool_call_id"]:
                raise bad_request(f"{where}.tool_call_id is required", param=f"{where}.tool_call_id")
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": m["tool_call_id"],
                    "content": _text_only(content, where, "a tool message"),
                }
            )
        else:
            raise bad_request(
                f"{where}: role '{role}' is not supported by provider cohere; use tools", param=f"{where}.role"
            )
    return out


def _v2_call_out(call: Any, where: str) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not fn.get("name") or not isinstance(call.get("id"), str) or not call["id"]:
        raise bad_request(f"{where} needs an id and a function name", param=where)
    arguments = fn.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments if arguments is not None else {})
    return {"id": call["id"], "type": "function", "function": {"name": fn["name"], "arguments": arguments}}


def _v2_tools(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    tools = body.get("tools")
    if not tools:
        return None
    if not isinstance(tools, list):
        raise bad_request("'tools' must be an array", param="tools")
    out = []
    for k, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) and tool.get("type", "function") == "function" else None
        if not isinstance(fn, dict) or not fn.get("name"):
            raise bad_request(f"tools[{k}] must be a function tool with a name", param=f"tools[{k}]")
        spec: dict[str, Any] = {
            "name": fn["name"],
            "parameters": fn.get("parameters") or {"type": "object", "properties": {}},
        }
        if fn.get("description"):
            spec["description"] = fn["description"]
        out.append({"type": "function", "function": spec})
    return out


def _v2_tool_choice(body: dict[str, Any]) -> str | None:
    choice = body.get("tool_choice")
    if choice in (None, "auto"):
        return None  # Cohere's default: the model decides
    if not body.get("tools"):
        if choice == "none":
            return None
        raise bad_request("tool_choice needs tools", param="tool_choice")
    if choice == "required":
        return "REQUIRED"
    if choice == "none":
        return "NONE"
    if isinstance(choice, dict):
        raise bad_request(
            "Cohere cannot be made to call one named tool; send only that tool with tool_choice 'required'",
            param="tool_choice",
        )
    raise bad_request("unsupported tool_choice", param="tool_choice")
