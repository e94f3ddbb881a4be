"""The benchmarks' client formats: each client API the proxy takes (OpenAI Chat, Anthropic Messages, the Responses
API, Gemini generateContent), with the path its clients post to, the rule that translates it to another provider,
the request body derived from an OpenAI chat body (so every format sends the same conversation: bench/workloads.py),
and the check that the proxy's answer carries the fake upstream's text and usage in the client's own format.

The fake upstream answers Anthropic Messages JSON, and OpenAI chat JSON under /openai/: an Anthropic client is sent
to the `openai` provider (its own, Anthropic, would be passed through untranslated), every other format to
`anthropic`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MODEL = "claude-bench"
API_KEY = "bench-not-a-key"
FAKE_TEXT = "Paris is the capital of France. It has been the seat of the French government for centuries."
USAGE_IN, USAGE_OUT = 250, 40
OPENAI_UPSTREAM = "/openai/v1/chat/completions"  # where the fake answers in the OpenAI format


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


ANTHROPIC_ANSWER = _compact(
    {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": FAKE_TEXT}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT},
    }
)
OPENAI_ANSWER = _compact(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": FAKE_TEXT}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": USAGE_IN, "completion_tokens": USAGE_OUT, "total_tokens": USAGE_IN + USAGE_OUT},
    }
)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def _calls(message: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """An assistant message's tool calls as (id, name, arguments object)."""
    out = []
    for call in message.get("tool_calls") or []:
        fn = call["function"]
        out.append((call["id"], fn["name"], json.loads(fn["arguments"] or "{}")))
    return out


def _system(body: dict[str, Any]) -> str:
    return "\n\n".join(_text(m["content"]) for m in body["messages"] if m["role"] == "system")


def _turns(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The messages after the system prompt, each with its role."""
    return [(m["role"], m) for m in body["messages"] if m["role"] != "system"]


def to_anthropic(body: dict[str, Any]) -> dict[str, Any]:
    system = _system(body)
    messages: list[dict[str, Any]] = []
    for role, m in _turns(body):
        if role == "tool":
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": m["content"]}
            messages.append({"role": "user", "content": [block]})
            continue
        blocks: list[dict[str, Any]] = [{"type": "text", "text": _text(m.get("content"))}] if m.get("content") else []
        blocks += [{"type": "tool_use", "id": i, "name": n, "input": a} for i, n, a in _calls(m)]
        messages.append({"role": role, "content": blocks})
    out: dict[str, Any] = {"model": body["model"], "max_tokens": body.get("max_tokens") or 1024, "messages": messages}
    if system:
        out["system"] = system
    if body.get("tools"):
        out["tools"] = [
            {"name": f["name"], "description": f.get("description", ""), "input_schema": f["parameters"]}
            for f in (t["function"] for t in body["tools"])
        ]
    return out


def to_responses(body: dict[str, Any]) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for role, m in _turns(body):
        if role == "tool":
            items.append({"type": "function_call_output", "call_id": m["tool_call_id"], "output": m["content"]})
            continue
        if m.get("content"):
            items.append({"role": role, "content": _text(m["content"])})
        for call_id, name, args in _calls(m):
            items.append({"type": "function_call", "call_id": call_id, "name": name, "arguments": json.dumps(args)})
    out: dict[str, Any] = {"model": body["model"], "input": items}
    system = _system(body)
    if system:
        out["instructions"] = system
    if body.get("max_tokens"):
        out["max_output_tokens"] = body["max_tokens"]
    if body.get("tools"):
        functions = (t["function"] for t in body["tools"])
        out["tools"] = [
            {
                "type": "function",
                "name": f["name"],
                "description": f.get("description", ""),
                "parameters": f["parameters"],
            }
            for f in functions
        ]
    return out


def to_gemini(body: dict[str, Any]) -> dict[str, Any]:
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for role, m in _turns(body):
        if role == "tool":
            answer = {"name": names[m["tool_call_id"]], "response": {"content": m["content"]}}
            contents.append({"role": "user", "parts": [{"functionResponse": answer}]})
            continue
        parts: list[dict[str, Any]] = [{"text": _text(m["content"])}] if m.get("content") else []
        for call_id, name, args in _calls(m):
            names[call_id] = name
            parts.append({"functionCall": {"name": name, "args": args}})
        contents.append({"role": "model" if role == "assistant" else "user", "parts": parts})
    out: dict[str, Any] = {"contents": contents}
    system = _system(body)
    if system:
        out["systemInstruction"] = {"parts": [{"text": system}]}
    if body.get("tools"):
        declarations = [
            {"name": f["name"], "description": f.get("description", ""), "parameters": f["parameters"]}
            for f in (t["function"] for t in body["tools"])
        ]
        out["tools"] = [{"functionDeclarations": declarations}]
    if body.get("max_tokens"):
        out["generationConfig"] = {"maxOutputTokens": body["max_tokens"]}
    return out


def _openai_ok(data: Any) -> bool:
    choice = data["choices"][0]
    usage = data["usage"]
    return (
        data["object"] == "chat.completion"
        and choice["message"]["content"] == FAKE_TEXT
        and choice["finish_reason"] == "stop"
        and (usage["prompt_tokens"], usage["completion_tokens"]) == (USAGE_IN, USAGE_OUT)
    )


def _anthropic_ok(data: Any) -> bool:
    usage = data["usage"]
    return (
        data["type"] == "message"
        and data["content"][0]["text"] == FAKE_TEXT
        and data["stop_reason"] == "end_turn"
        and (usage["input_tokens"], usage["output_tokens"]) == (USAGE_IN, USAGE_OUT)
    )


def _responses_ok(data: Any) -> bool:
    message = next(item for item in data["output"] if item["type"] == "message")
    usage = data["usage"]
    return (
        data["object"] == "response"
        and data["status"] == "completed"
        and message["content"][0]["text"] == FAKE_TEXT
        and (usage["input_tokens"], usage["output_tokens"]) == (USAGE_IN, USAGE_OUT)
    )


def _gemini_ok(data: Any) -> bool:
    candidate = data["candidates"][0]
    usage = data["usageMetadata"]
    return (
        candidate["content"]["parts"][0]["text"] == FAKE_TEXT
        and candidate["finishReason"] == "STOP"
        and (usage["promptTokenCount"], usage["candidatesTokenCount"]) == (USAGE_IN, USAGE_OUT)
    )


@dataclass(frozen=True)
class Format:
    name: str
    path: str  # where the client posts
    select: str  # the rule line that picks the client format
    provider: str
    upstream_path: str  # where the proxy sends the translated request (on the fake)
    auth_header: str
    auth_value: str
    convert: Callable[[dict[str, Any]], dict[str, Any]]  # an OpenAI chat body -> this format's
    answered: Callable[[Any], bool]  # the client's answer carries the fake's text and usage
    shape: str  # what the check expects, for its message

    def body(self, openai_body: bytes) -> bytes:
        return _compact(self.convert(json.loads(openai_body))) if self.name != "openai" else openai_body

    def ok(self, data: Any) -> bool:
        try:
            return self.answered(data)
        except (KeyError, IndexError, TypeError, StopIteration):
            return False


FORMATS = {
    f.name: f
    for f in (
        Format("openai", "/v1/chat/completions", "route_type: llm/v1/chat", "anthropic", "/v1/messages",
               "x-api-key", API_KEY, dict, _openai_ok, "an OpenAI chat.completion"),
        Format("anthropic", "/v1/messages", "llm_format: anthropic", "openai", OPENAI_UPSTREAM,
               "authorization", f"Bearer {API_KEY}", to_anthropic, _anthropic_ok, "an Anthropic message"),
        Format("responses", "/v1/responses", "route_type: llm/v1/responses", "anthropic", "/v1/messages",
               "x-api-key", API_KEY, to_responses, _responses_ok, "a Responses API response"),
        Format("gemini", f"/v1beta/models/{MODEL}:generateContent", "llm_format: gemini", "anthropic", "/v1/messages",
               "x-api-key", API_KEY, to_gemini, _gemini_ok, "a Gemini GenerateContentResponse"),
    )
}  # fmt: skip
