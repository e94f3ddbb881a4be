"""Anthropic: OpenAI chat/completions <-> the Messages API (and the legacy Text Completions API on request)."""

from __future__ import annotations

import json
from typing import Any

from .. import jsonutil
from ..errors import bad_request
from ..openai_format import (
    CHAT,
    chat_response,
    chat_to_completion,
    completion_response,
    max_tokens_of,
    single_prompt,
    stop_list,
    text_of,
    usage,
)
from ..streaming import ChunkWriter, stream_error
from ..streams import SSEDecoder, StreamDecodeError
from .base import Call, Provider, UpstreamFormatError, UpstreamRequest, build_url, register, url_path

DEFAULT_VERSION = "2023-06-01"
# Anthropic requires max_tokens; 4096 is within every current Claude model's output limit.
DEFAULT_MAX_TOKENS = 4096
MAX_TEMPERATURE = 1.0  # OpenAI allows 0-2, Anthropic 0-1: values above 1 are clamped

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
LEGACY_FINISH_REASONS = {"stop_sequence": "stop", "max_tokens": "length"}

# OpenAI fields Anthropic has no equivalent for: refused when set to anything but their neutral value, so a
# client never silently gets different behaviour than it asked for.
_UNSUPPORTED = {
    "n": 1,
    "logprobs": False,
    "top_logprobs": None,
    "logit_bias": None,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "audio": None,
    "prediction": None,
}


def finish_reason(stop_reason: str | None) -> str | None:
    if stop_reason is None:
        return None
    return FINISH_REASONS.get(stop_reason, "stop")


def usage_of(raw: Any) -> dict[str, Any] | None:
    """Anthropic usage -> OpenAI usage; cache reads and writes are part of the prompt."""
    if not isinstance(raw, dict):
        return None
    input_tokens = raw.get("input_tokens")
    output_tokens = raw.get("output_tokens")
    if not isinstance(input_tokens, int) or not isinstance(output_tokens, int):
        return None
    cache_read = raw.get("cache_read_input_tokens") or 0
    cache_write = raw.get("cache_creation_input_tokens") or 0
    return usage(input_tokens + cache_read + cache_write, output_tokens, cached_tokens=cache_read)


class Anthropic(Provider):
    name = "anthropic"
    supports_streaming = True

    def build_request(self, call: Call) -> UpstreamRequest:
        options = call.options
        legacy = (url_path(options) or "").rstrip("/").endswith("/v1/complete")
        body = self._legacy_body(call) if legacy else self._messages_body(call)
        url = build_url(options, "https://api.anthropic.com", "/v1/messages")
        headers = {"anthropic-version": options.anthropic_version or DEFAULT_VERSION}
        return UpstreamRequest(url=url, body=body, headers=headers)

    def stream_translator(self, call: Call, include_usage: bool, keep_payload: bool) -> AnthropicStream:
        return AnthropicStream(call, include_usage, keep_payload)

    # ---- to Anthropic --------------------------------------------------------------------------------------

    def _common(self, call: Call) -> dict[str, Any]:
        body = call.body
        for key, neutral in _UNSUPPORTED.items():
            value = body.get(key)
            if value is not None and value != neutral:
                raise bad_request(f"'{key}' is not supported by provider anthropic", param=key)
        out: dict[str, Any] = {"model": call.model}
        temperature = body.get("temperature")
        if temperature is not None:
            out["temperature"] = min(float(temperature), MAX_TEMPERATURE)
        for key in ("top_p", "top_k"):
            if body.get(key) is not None:
                out[key] = body[key]
        stop = stop_list(body)
        if stop:
            out["stop_sequences"] = stop
        if isinstance(body.get("user"), str):
            out["metadata"] = {"user_id": body["user"]}
        out["stream"] = call.stream
        return out

    def _messages_body(self, call: Call) -> dict[str, Any]:
        body = call.body
        out = self._common(call)
        out["max_tokens"] = max_tokens_of(body) or DEFAULT_MAX_TOKENS
        if call.route_type == CHAT:
            system, messages = _messages(body["messages"])
            if system:
                out["system"] = system
        else:
            messages = [{"role": "user", "content": single_prompt(body)}]
        if not messages:
            raise bad_request("at least one user message is required", param="messages")
        out["messages"] = messages
        tools = _tools(body)
        if tools:
            out["tools"] = tools
        choice = _tool_choice(body)
        if choice:
            out["tool_choice"] = choice
        response_format = body.get("response_format")
        if isinstance(response_format, dict) and response_format.get("type", "text") != "text":
            raise bad_request(
                "response_format json_object/json_schema is not supported for provider anthropic yet",
                param="response_format",
            )
        return out

    def _legacy_body(self, call: Call) -> dict[str, Any]:
        body = call.body
        if call.route_type == CHAT:
            system, messages = _messages(body["messages"])
            turns = [system] if system else []
            for m in messages:
                speaker = "Human" if m["role"] == "user" else "Assistant"
                turns.append(f"\n\n{speaker}: {_blocks_text(m['content'])}")
            prompt = "".join(turns) + "\n\nAssistant:"
        else:
            prompt = f"\n\nHuman: {single_prompt(body)}\n\nAssistant:"
        out = self._common(call)
        out["prompt"] = prompt
        out["max_tokens_to_sample"] = max_tokens_of(body) or DEFAULT_MAX_TOKENS
        return out

    # ---- from Anthropic ------------------------------------------------------------------------------------

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise UpstreamFormatError("expected a JSON object")
        if "completion" in data and "content" not in data:
            return self._parse_legacy(call, data)
        content = data.get("content")
        if not isinstance(content, list):
            raise UpstreamFormatError("expected an Anthropic message with a 'content' array")
        texts: list[str] = []
        tool_calls: list[dict[str, Any]] = []
        reasoning: list[str] = []
        for block in content:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text":
                texts.append(block.get("text", ""))
            elif kind == "tool_use":
                tool_calls.append(
                    {
                        "id": block.get("id"),
                        "type": "function",
                        "function": {
                            "name": block.get("name"),
                            "arguments": json.dumps(block.get("input", {})),
                        },
                    }
                )
            elif kind == "thinking":
                reasoning.append(block.get("thinking", ""))
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(texts) if texts or not tool_calls else None,
        }
        if tool_calls:
            message["tool_calls"] = tool_calls
        if reasoning:
            message["reasoning_content"] = "".join(reasoning)
        model = data.get("model") or call.model or ""
        response = chat_response(
            id=data.get("id"),
            model=model,
            message=message,
            finish_reason=finish_reason(data.get("stop_reason")) or "stop",
            usage=usage_of(data.get("usage")),
        )
        return response if call.route_type == CHAT else chat_to_completion(response)

    def _parse_legacy(self, call: Call, data: dict[str, Any]) -> dict[str, Any]:
        text = data.get("completion")
        if not isinstance(text, str):
            raise UpstreamFormatError("expected a text completion with a 'completion' string")
        reason = LEGACY_FINISH_REASONS.get(data.get("stop_reason") or "", "stop")
        model = data.get("model") or call.model or ""
        if call.route_type == CHAT:
            message = {"role": "assistant", "content": text}
            return chat_response(id=data.get("id"), model=model, message=message, finish_reason=reason, usage=None)
        return completion_response(id=data.get("id"), model=model, text=text, finish_reason=reason, usage=None)


# --------------------------------------------------------------------------------------------------------------
# Message mapping
# --------------------------------------------------------------------------------------------------------------


def _messages(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """OpenAI messages -> (system text, Anthropic messages with strictly alternating roles)."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
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
            turn = "assistant"
        elif role == "tool":
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": m.get("tool_call_id") or "",
                    "content": text_of(m.get("content")),
                }
            ]
            turn = "user"
        else:
            raise bad_request(
                f"messages[{i}]: role '{role}' is not supported by provider anthropic; use tools",
                param=f"messages[{i}].role",
            )
        if not blocks:
            continue
        if out and out[-1]["role"] == turn:
            # Anthropic demands alternation: consecutive turns of one role become one turn.
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": turn, "content": blocks})
    for m in out:
        # Tool results must lead their user turn.
        m["content"].sort(key=lambda b: b["type"] != "tool_result")
        if len(m["content"]) == 1 and m["content"][0]["type"] == "text":
            m["content"] = m["content"][0]["text"]
    return "\n\n".join(s for s in system if s), out


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
    return blocks


def _image_block(part: dict[str, Any], where: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise bad_request(f"{where}: image_url.url is required", param=where)
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";", 1)[0]
        if ";base64" not in header or not media_type.startswith("image/"):
            raise bad_request(f"{where}: data URLs must be base64-encoded images", param=where)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise bad_request(f"{where}: image_url must be a data: or http(s) URL", param=where)


def _assistant_blocks(m: dict[str, Any], i: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = text_of(m.get("content"))
    if text:
        blocks.append({"type": "text", "text": text})
    for j, call in enumerate(m.get("tool_calls") or []):
        fn = call.get("function") or {}
        try:
            arguments = json.loads(fn.get("arguments") or "{}")
        except ValueError:
            raise bad_request(
                f"messages[{i}].tool_calls[{j}].function.arguments is not valid JSON",
                param=f"messages[{i}].tool_calls[{j}]",
            ) from None
        blocks.append({"type": "tool_use", "id": call.get("id"), "name": fn.get("name"), "input": arguments})
    return blocks


def _blocks_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if b.get("type") == "text")


def _tools(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    tools = body.get("tools")
    if not tools:
        return None
    out = []
    for k, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not fn.get("name"):
            raise bad_request(f"tools[{k}] must be a function tool with a name", param=f"tools[{k}]")
        spec = {
            "name": fn["name"],
            "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
        }
        if fn.get("description"):
            spec["description"] = fn["description"]
        out.append(spec)
    return out


def _tool_choice(body: dict[str, Any]) -> dict[str, Any] | None:
    choice = body.get("tool_choice")
    out: dict[str, Any] | None
    if not body.get("tools"):
        # Anthropic refuses a tool_choice without tools; "none"/"auto" mean nothing then, a forced tool is an error.
        if choice in (None, "none", "auto"):
            return None
        raise bad_request("tool_choice needs tools", param="tool_choice")
    if choice is None:
        out = {"type": "auto"} if body.get("tools") and body.get("parallel_tool_calls") is False else None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise bad_request("unsupported tool_choice", param="tool_choice")
    if out is not None and body.get("parallel_tool_calls") is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


# --------------------------------------------------------------------------------------------------------------
# Streams: Anthropic SSE -> OpenAI chunks
# --------------------------------------------------------------------------------------------------------------


class AnthropicStream:
    """Translates an Anthropic Messages (or legacy completion) SSE stream into OpenAI chunks, event by event.

    Anthropic's block `index` counts every content block; OpenAI's tool-call `index` counts tool calls only,
    so tool blocks are renumbered. Usage comes from `message_start` (input) and the cumulative
    `message_delta` (output); the finish chunk is held until `message_stop` so usage can follow it.
    """

    __slots__ = ("_decoder", "_done", "_finish", "_tool_index", "_usage_raw", "out", "result")

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool) -> None:
        self.out = ChunkWriter(call.route_type, call.model or "", include_usage, keep_payload)
        self.result = self.out.result
        self._decoder = SSEDecoder()
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool-call index
        self._usage_raw: dict[str, Any] = {}
        self._finish: str | None = None
        self._done = False

    def feed(self, chunk: bytes) -> bytes:
        if self._done:
            return b""
        try:
            events = self._decoder.feed(chunk)
        except StreamDecodeError as e:
            return self._fail(f"anthropic stream is malformed: {e}")
        return b"".join(self._event(e.event, e.data) for e in events)

    def finish(self) -> bytes:
        out = b"".join(self._event(e.event, e.data) for e in self._decoder.flush()) if not self._done else b""
        if not self._done:
            out += self._fail("anthropic stream ended before message_stop")
        return out

    def _fail(self, message: str, status: int = 502, type: str | None = None, code: str = "stream_error") -> bytes:
        self._done = True
        return self.out.error(stream_error(message, status=status, code=code, type=type))

    def _event(self, name: str, data: str) -> bytes:
        if self._done or name == "ping":
            return b""
        try:
            event = jsonutil.loads(data)
        except ValueError:
            return self._fail("anthropic sent an event that is not JSON")
        kind = event.get("type", name) if isinstance(event, dict) else name
        handler = _HANDLERS.get(kind)
        return handler(self, event) if handler else b""  # unknown events are ignored (versioning policy)

    def _message_start(self, event: dict[str, Any]) -> bytes:
        message = event.get("message") or {}
        self.out.set_model(message.get("model"))
        self._usage_raw.update(message.get("usage") or {})
        return self.out.role()

    def _block_start(self, event: dict[str, Any]) -> bytes:
        block = event.get("content_block") or {}
        if block.get("type") == "tool_use":
            index = self._tool_index[event.get("index", 0)] = len(self._tool_index)
            return self.out.tool_call_start(index, block.get("id") or "", block.get("name") or "")
        if block.get("type") == "text" and block.get("text"):
            return self.out.text(block["text"])
        return b""

    def _block_delta(self, event: dict[str, Any]) -> bytes:
        delta = event.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return self.out.text(delta.get("text", ""))
        if kind == "input_json_delta":
            index = self._tool_index.get(event.get("index", 0))
            return self.out.tool_call_arguments(index, delta.get("partial_json", "")) if index is not None else b""
        if kind == "thinking_delta":
            return self.out.reasoning(delta.get("thinking", ""))
        return b""

    def _message_delta(self, event: dict[str, Any]) -> bytes:
        reason = (event.get("delta") or {}).get("stop_reason")
        if reason:
            self._finish = finish_reason(reason)
        self._usage_raw.update(event.get("usage") or {})  # cumulative counts: the latest wins
        return b""

    def _message_stop(self, event: dict[str, Any]) -> bytes:
        self._done = True
        return self.out.finish(self._finish or "stop", usage_of(self._usage_raw))

    def _completion(self, event: dict[str, Any]) -> bytes:
        """Legacy /v1/complete stream: `completion` events carry text and finally a stop_reason."""
        out = b""
        if self.result.first_token_at is None and self.out.chat:
            out += self.out.role()
        out += self.out.text(event.get("completion") or "")
        reason = event.get("stop_reason")
        if reason:
            self._done = True
            out += self.out.finish(LEGACY_FINISH_REASONS.get(reason, "stop"), None)
        return out

    def _error(self, event: dict[str, Any]) -> bytes:
        err = event.get("error") or {}
        etype = err.get("type")
        status = {"overloaded_error": 503, "rate_limit_error": 429, "api_error": 502}.get(etype or "", 502)
        return self._fail(
            err.get("message") or "anthropic stream error", status=status, type=etype, code=etype or "stream_error"
        )


_HANDLERS = {
    "message_start": AnthropicStream._message_start,
    "content_block_start": AnthropicStream._block_start,
    "content_block_delta": AnthropicStream._block_delta,
    "message_delta": AnthropicStream._message_delta,
    "message_stop": AnthropicStream._message_stop,
    "completion": AnthropicStream._completion,
    "error": AnthropicStream._error,
}


ANTHROPIC = register(Anthropic())
