"""OpenAI chat/completions request -> the Converse body (messages, inference, tools, structured output)."""

from __future__ import annotations

import json
import re
from typing import Any

from ... import jsonutil
from ...errors import bad_request
from ...extensions import CACHE_CONTROL
from ...openai_format import (
    CHAT,
    IMAGE_MEDIA_TYPES,
    OPENAI_ONLY,
    THINKING_BLOCKS,
    max_tokens_of,
    refuse_unsupported,
    response_format_type,
    single_prompt,
    stop_list,
    text_of,
)
from ..base import Call, add_turn, trim_prefill
from .common import encode_tool_id
from .reasoning import drop, reasoning_blocks, reasons, thinking
from .schema import output_schema, strict_tool_schema

MAX_TEMPERATURE = 1.0  # OpenAI allows 0-2, Converse 0-1: values above 1 are clamped

# OpenAI fields Converse has no equivalent for: refused unless neutral, so a client never silently gets
# different behaviour than it asked for.
_UNSUPPORTED = {**OPENAI_ONLY, "functions": None, "function_call": None}
_UNSUPPORTED_COMPLETIONS = {"echo": False, "best_of": 1, "suffix": None}

_METADATA_VALUE = re.compile(r"^[a-zA-Z0-9\s:_@$#=/+,.-]{0,256}$")
_IMAGE_FORMATS = {label: media_type.removeprefix("image/") for label, media_type in IMAGE_MEDIA_TYPES.items()}
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# Converse's cache breakpoint (system, messages and tools): the standard extension `cache_control` placed.
CACHE_POINT: dict[str, Any] = {"cachePoint": {"type": "default"}}


def converse_body(call: Call) -> dict[str, Any]:
    body = call.body
    refuse_unsupported(body, "bedrock", _UNSUPPORTED)
    if call.route_type == CHAT:
        reasoning = reasons(call.model)
        system, messages, has_tool_blocks = _messages(body["messages"], reasoning)
        if not reasoning and any(isinstance(m, dict) and m.get(THINKING_BLOCKS) for m in body["messages"]):
            drop(call, "thinking")  # earlier turns' signed reasoning: only Claude takes it back
    else:
        refuse_unsupported(body, "bedrock", _UNSUPPORTED_COMPLETIONS)
        prompt = single_prompt(body)
        system, messages, has_tool_blocks = [], [{"role": "user", "content": [{"text": prompt}]}], False
        if not prompt:
            raise bad_request("'prompt' must not be empty", param="prompt")
    if not any(m["role"] == "user" for m in messages):
        raise bad_request("at least one user message is required", param="messages")
    out: dict[str, Any] = {"messages": messages}
    if system:
        out["system"] = system

    inference: dict[str, Any] = {}
    max_tokens = max_tokens_of(body)
    if max_tokens is not None:
        inference["maxTokens"] = max_tokens
    if body.get("temperature") is not None:
        inference["temperature"] = min(float(body["temperature"]), MAX_TEMPERATURE)
    if body.get("top_p") is not None and body["top_p"] < 1:
        # top_p 1 is no nucleus filtering (the default): not sent, as Claude 4.5+ refuses temperature and topP
        # together ("`temperature` and `top_p` cannot both be specified for this model").
        inference["topP"] = body["top_p"]
    stop = stop_list(body)
    if stop:
        inference["stopSequences"] = stop
    if inference:
        out["inferenceConfig"] = inference
    if body.get("top_k") is not None:
        # Not part of inferenceConfig: model-native, in the model's own name (Nova nests it).
        model = call.model or ""
        if "amazon.nova" in model:
            out["additionalModelRequestFields"] = {"inferenceConfig": {"topK": body["top_k"]}}
        else:
            out["additionalModelRequestFields"] = {"top_k": body["top_k"]}

    tool_config = _tool_config(body, has_tool_blocks, call.dropped)
    if tool_config:
        out["toolConfig"] = tool_config
    thinking(call, out)  # after the tool choice: a forced tool makes thinking give way
    output_config = _output_config(body.get("response_format"), call.dropped)
    if output_config:
        out["outputConfig"] = output_config
    user = body.get("user")
    if isinstance(user, str) and user:
        if not _METADATA_VALUE.match(user):
            raise bad_request(
                "'user' may hold only letters, digits, spaces and :_@$#=/+,.- for provider bedrock "
                "(it is sent as requestMetadata)",
                param="user",
            )
        out["requestMetadata"] = {"user": user}
    latency = call.options.bedrock.performance_config_latency if call.options.bedrock else None
    if latency:
        out["performanceConfig"] = {"latency": latency}
    return out


# ---- from Bedrock --------------------------------------------------------------------------------------


def _messages(
    messages: list[dict[str, Any]], reasoning: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
    """OpenAI messages -> (system blocks, Converse messages with strictly alternating roles, has tool blocks).
    `reasoning`: assistant turns keep their signed reasoning (the extension thinking_blocks)."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    has_tool_blocks = False
    for i, m in enumerate(messages):
        role = m["role"]
        content = m.get("content")
        if role in ("system", "developer"):
            if isinstance(content, list) and any(p.get("type") != "text" for p in content):
                raise bad_request(f"messages[{i}]: a {role} message may hold only text", param=f"messages[{i}]")
            if isinstance(content, list) and any(CACHE_CONTROL in p for p in content):
                system += _cached_blocks(content, lambda _, part: {"text": part["text"]} if part.get("text") else None)
                continue
            text = text_of(content)
            if text:
                system.append({"text": text})
            continue
        if role == "user":
            blocks, turn = _user_blocks(content, i), "user"
        elif role == "assistant":
            blocks, turn = reasoning_blocks(m) if reasoning else [], "assistant"
            blocks += _assistant_blocks(m, i)
        elif role == "tool":
            blocks, turn = [_tool_result(m, i)], "user"
            if isinstance(content, list) and any(CACHE_CONTROL in p for p in content):
                blocks.append(CACHE_POINT)
        else:
            raise bad_request(
                f"messages[{i}]: role '{role}' is not supported by provider bedrock; use tools",
                param=f"messages[{i}].role",
            )
        if not blocks:
            continue
        has_tool_blocks = has_tool_blocks or any("toolUse" in b or "toolResult" in b for b in blocks)
        add_turn(out, turn, blocks)
    trim_prefill(out, lambda block: "text" in block)
    for m in out:
        m["content"] = _tool_results_first(m["content"])
    return system, out, has_tool_blocks


def _tool_results_first(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool results lead their user turn, each with the cache point that follows it (the order is otherwise kept)."""
    units: list[list[dict[str, Any]]] = []
    for block in blocks:
        if block is CACHE_POINT and units:
            units[-1].append(block)
        else:
            units.append([block])
    units.sort(key=lambda unit: "toolResult" not in unit[0])
    return [block for unit in units for block in unit]


def _cached_blocks(parts: list[dict[str, Any]], block_of: Any) -> list[dict[str, Any]]:
    """Content parts as Converse blocks, a cachePoint after each part that carries the standard extension
    `cache_control` (a cache breakpoint: the prefix up to there is cached), where a block precedes it."""
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(parts):
        block = block_of(j, part)
        if block is not None:
            blocks.append(block)
        if CACHE_CONTROL in part and blocks and blocks[-1] is not CACHE_POINT:
            blocks.append(CACHE_POINT)
    return blocks


def _user_blocks(content: Any, i: int) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    return _cached_blocks(content or [], lambda j, part: _user_block(part, f"messages[{i}].content[{j}]"))


def _user_block(part: dict[str, Any], where: str) -> dict[str, Any] | None:
    kind = part["type"]
    if kind == "text":
        return {"text": part["text"]} if part.get("text") else None
    if kind == "image_url":
        return _image_block(part, where)
    raise bad_request(f"{where}: '{kind}' parts are not supported by provider bedrock", param=where)


def _image_block(part: dict[str, Any], where: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if isinstance(url, str) and url.startswith("s3://"):
        # Converse reads images from S3 itself (source.s3Location); the format comes from the object's extension.
        extension = url.rsplit("/", 1)[-1].rpartition(".")[2].lower()
        s3_format = _IMAGE_FORMATS.get(f"image/{extension}")
        if s3_format is None or "." not in url.rsplit("/", 1)[-1]:
            raise bad_request(
                f"{where}: an s3:// image must name a .png, .jpg, .jpeg, .gif or .webp object", param=where
            )
        return {"image": {"format": s3_format, "source": {"s3Location": {"uri": url}}}}
    if not isinstance(url, str) or not url.startswith("data:"):
        raise bad_request(
            f"{where}: provider bedrock takes images only as base64 data: URLs (png, jpeg, gif, webp) or s3:// "
            "object URIs; it cannot fetch http(s) URLs",
            param=where,
        )
    header, _, data = url.partition(",")
    media_type = header[5:].split(";", 1)[0].lower()
    image_format = _IMAGE_FORMATS.get(media_type)
    if ";base64" not in header or image_format is None or not data:
        raise bad_request(f"{where}: data URLs must be base64-encoded png, jpeg, gif or webp images", param=where)
    return {"image": {"format": image_format, "source": {"bytes": data}}}


def _assistant_blocks(m: dict[str, Any], i: int) -> list[dict[str, Any]]:
    if m.get("function_call"):
        raise bad_request(f"messages[{i}].function_call is not supported; use tool_calls", param=f"messages[{i}]")
    blocks: list[dict[str, Any]] = []
    text = text_of(m.get("content"))
    if text:
        blocks.append({"text": text})
    for j, tool_call in enumerate(m.get("tool_calls") or []):
        where = f"messages[{i}].tool_calls[{j}]"
        fn = tool_call.get("function") if isinstance(tool_call, dict) else None
        if not isinstance(fn, dict) or not fn.get("name") or not tool_call.get("id"):
            raise bad_request(f"{where} needs an id and a function name", param=where)
        arguments = fn.get("arguments") or "{}"
        try:
            # A JSON string, as OpenAI sends it; an object as some clients do (Gemini and Cohere take it too).
            arguments = arguments if isinstance(arguments, dict) else jsonutil.loads(arguments)
        except (TypeError, ValueError):
            raise bad_request(f"{where}.function.arguments is not valid JSON", param=where) from None
        if not isinstance(arguments, dict):
            raise bad_request(f"{where}.function.arguments must be a JSON object", param=where)
        tool_id = encode_tool_id(str(tool_call["id"]))
        blocks.append({"toolUse": {"toolUseId": tool_id, "name": fn["name"], "input": arguments}})
    return blocks


def _tool_result(m: dict[str, Any], i: int) -> dict[str, Any]:
    content = m.get("content")
    if isinstance(content, list) and any(p.get("type") != "text" for p in content):
        raise bad_request(
            f"messages[{i}]: a tool message may hold only text for provider bedrock", param=f"messages[{i}]"
        )
    if not m.get("tool_call_id"):
        raise bad_request(f"messages[{i}].tool_call_id is required", param=f"messages[{i}].tool_call_id")
    text = text_of(content)
    tool_id = encode_tool_id(str(m["tool_call_id"]))
    # Converse refuses an empty text block: an empty result is sent as no content.
    return {"toolResult": {"toolUseId": tool_id, "content": [{"text": text}] if text else []}}


def _tool_config(body: dict[str, Any], has_tool_blocks: bool, dropped: list[str]) -> dict[str, Any] | None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not tools:
        if has_tool_blocks:
            # Converse refuses toolUse/toolResult blocks without a toolConfig.
            raise bad_request(
                "the conversation holds tool calls: provider bedrock needs the request's 'tools' too", param="tools"
            )
        if choice in (None, "none", "auto"):
            return None
        raise bad_request("tool_choice needs tools", param="tool_choice")
    if choice == "none":
        if has_tool_blocks:
            raise bad_request(
                "tool_choice 'none' cannot be expressed for provider bedrock in a conversation that holds tool calls",
                param="tool_choice",
            )
        return None  # without a toolConfig the model cannot call a tool
    if body.get("parallel_tool_calls") is False:
        raise bad_request(
            "'parallel_tool_calls: false' is not supported by provider bedrock", param="parallel_tool_calls"
        )
    specs = []
    for k, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) and tool.get("type", "function") == "function" else None
        if not isinstance(fn, dict) or not fn.get("name"):
            raise bad_request(f"tools[{k}] must be a function tool with a name", param=f"tools[{k}]")
        if not _TOOL_NAME.match(str(fn["name"])):
            raise bad_request(
                f"tools[{k}].function.name must match [a-zA-Z0-9_-]{{1,64}} for provider bedrock",
                param=f"tools[{k}].function.name",
            )
        spec: dict[str, Any] = {
            "name": fn["name"],
            "inputSchema": {"json": fn.get("parameters") or {"type": "object", "properties": {}}},
        }
        if fn.get("description"):
            spec["description"] = fn["description"]
        if isinstance(fn.get("strict"), bool):
            spec["strict"] = fn["strict"]
        if fn.get("strict") is True:  # the subset Bedrock's grammar compiler takes
            where = f"tools[{k}].function.parameters"
            spec["inputSchema"]["json"] = strict_tool_schema(spec["inputSchema"]["json"], where, dropped)
        specs.append({"toolSpec": spec})
        if CACHE_CONTROL in tool:
            specs.append(CACHE_POINT)
    config: dict[str, Any] = {"tools": specs}
    if choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict) and choice["function"].get("name"):
        config["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
    elif choice is not None:
        raise bad_request("unsupported tool_choice", param="tool_choice")
    return config


def _output_config(response_format: Any, dropped: list[str]) -> dict[str, Any] | None:
    """response_format -> Converse `outputConfig.textFormat` (structured output, providers.md §5.3, §11.1).

    json_schema maps to `{"type": "json_schema", "structure": {"jsonSchema": {"schema": <the schema as a JSON
    string>, "name", "description"}}}`; models without structured output answer Bedrock's own 400, which reaches
    the client. json_object has no native equivalent (Converse takes only a schema) and is refused: a prompt
    instruction would not guarantee JSON, and an any-object schema is not accepted by every model."""
    kind = response_format_type(response_format)
    if kind == "text":
        return None
    if kind == "json_object":
        raise bad_request(
            "response_format json_object is not supported by provider bedrock: send json_schema with the schema "
            "(Converse outputConfig.textFormat)",
            param="response_format",
        )
    if kind != "json_schema":
        raise bad_request(
            "response_format type must be text or json_schema for provider bedrock", param="response_format"
        )
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise bad_request("response_format json_schema needs json_schema.schema (an object)", param="response_format")
    schema = output_schema(schema, dropped)  # the subset Bedrock takes (schema.py)
    definition: dict[str, Any] = {"schema": json.dumps(schema, separators=(",", ":"))}
    if isinstance(spec.get("name"), str) and spec["name"]:
        definition["name"] = spec["name"]
    if isinstance(spec.get("description"), str) and spec["description"]:
        definition["description"] = spec["description"]
    return {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": definition}}}


# --------------------------------------------------------------------------------------------------------------
