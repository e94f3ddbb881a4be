"""The client requests the matrix probes: each client format's base request (a system prompt and a question), and
the edits that give it a feature (tools, an earlier signed answer, an image, a cache breakpoint...)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ..formats.responses.sealed import seal

MODEL = "model-probe"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "integer"}},
    "required": ["answer"],
    "additionalProperties": False,
}
ADD = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}
SIGNATURE = "c2lnbmF0dXJlLXByb2Jl"  # base64 of a fake signature

Body = dict[str, Any]
Edit = Callable[[Body], None]


# The base request of each client format: a system prompt and one question.
BASE: dict[str, Body] = {
    "openai": {
        "model": MODEL,
        "max_tokens": 16000,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 1 + 1?"}],
    },
    "anthropic": {
        "model": MODEL,
        "max_tokens": 16000,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "What is 1 + 1?"}],
    },
    "responses": {"model": MODEL, "max_output_tokens": 16000, "instructions": "Be brief.", "input": "What is 1 + 1?"},
    "gemini": {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "What is 1 + 1?"}]}],
        "generationConfig": {"maxOutputTokens": 16000},
    },
}


def replaced(**fields: Any) -> Edit:
    def edit(body: Body) -> None:
        body.update(copy.deepcopy(fields))

    return edit


def config(**fields: Any) -> Edit:
    """Gemini's generationConfig fields."""

    def edit(body: Body) -> None:
        body["generationConfig"].update(copy.deepcopy(fields))

    return edit


def then(*edits: Edit) -> Edit:
    def edit(body: Body) -> None:
        for one in edits:
            one(body)

    return edit


# ---- tools ----------------------------------------------------------------------------------------------------

TOOLS: dict[str, Edit] = {
    "openai": replaced(
        tools=[{"type": "function", "function": {"name": "add", "description": "Add two numbers", "parameters": ADD}}]
    ),
    "anthropic": replaced(tools=[{"name": "add", "description": "Add two numbers", "input_schema": ADD}]),
    "responses": replaced(
        tools=[{"type": "function", "name": "add", "description": "Add two numbers", "parameters": ADD}]
    ),
    "gemini": replaced(
        tools=[
            {"functionDeclarations": [{"name": "add", "description": "Add two numbers", "parametersJsonSchema": ADD}]}
        ]
    ),
}


def tool_history(fmt: str) -> Edit:
    """A finished tool call and its result before a last question."""

    def edit(body: Body) -> None:
        if fmt == "openai":
            call = {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a":1,"b":1}'}}
            body["messages"] += [
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": "2"},
            ]
        elif fmt == "anthropic":
            body["messages"] += [
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 1, "b": 1}}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "2"}]},
            ]
        elif fmt == "responses":
            body["input"] = [
                {"role": "user", "content": "What is 1 + 1?"},
                {"type": "function_call", "call_id": "call_1", "name": "add", "arguments": '{"a":1,"b":1}'},
                {"type": "function_call_output", "call_id": "call_1", "output": "2"},
            ]
        else:
            body["contents"] += [
                {"role": "model", "parts": [{"functionCall": {"name": "add", "args": {"a": 1, "b": 1}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "add", "response": {"output": "2"}}}]},
            ]

    return edit


# ---- signed reasoning of an earlier turn ------------------------------------------------------------------------


def answered(fmt: str, signed: bool) -> Edit:
    """An earlier answer ("2") before a follow-up question; `signed`: with the reasoning that produced it, signed."""

    def edit(body: Body) -> None:
        follow = "And 2 + 2?"
        if fmt == "openai":
            answer: Body = {"role": "assistant", "content": "2"}
            if signed:
                answer["thinking_blocks"] = [{"type": "thinking", "thinking": "Ones.", "signature": SIGNATURE}]
            body["messages"] += [answer, {"role": "user", "content": follow}]
        elif fmt == "anthropic":
            blocks: list[Body] = [{"type": "thinking", "thinking": "Ones.", "signature": SIGNATURE}] if signed else []
            body["messages"] += [
                {"role": "assistant", "content": [*blocks, {"type": "text", "text": "2"}]},
                {"role": "user", "content": follow},
            ]
        elif fmt == "responses":
            reasoning = [
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [{"type": "summary_text", "text": "Ones."}],
                    # what the proxy gave the client: the signed blocks sealed (formats/responses/sealed.py)
                    "encrypted_content": seal([{"type": "thinking", "thinking": "Ones.", "signature": SIGNATURE}]),
                }
            ]
            body["input"] = [
                {"role": "user", "content": "What is 1 + 1?"},
                *(reasoning if signed else []),
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "2"}]},
                {"role": "user", "content": follow},
            ]
        else:
            part: Body = {"text": "2", "thoughtSignature": SIGNATURE} if signed else {"text": "2"}
            body["contents"] += [{"role": "model", "parts": [part]}, {"role": "user", "parts": [{"text": follow}]}]

    return edit


# ---- content ---------------------------------------------------------------------------------------------------


def user_parts(fmt: str, image: bool) -> Edit:
    """The question as content parts, with an image after it when `image`."""

    def edit(body: Body) -> None:
        if fmt == "openai":
            parts: list[Body] = [{"type": "text", "text": "What is on it?"}]
            if image:
                parts.append({"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}})
            body["messages"][-1]["content"] = parts
        elif fmt == "anthropic":
            parts = [{"type": "text", "text": "What is on it?"}]
            if image:
                parts.append({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}})
            body["messages"][-1]["content"] = parts
        elif fmt == "responses":
            parts = [{"type": "input_text", "text": "What is on it?"}]
            if image:
                parts.append({"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"})
            body["input"] = [{"role": "user", "content": parts}]
        else:
            parts = [{"text": "What is on it?"}]
            if image:
                parts.append({"inlineData": {"mimeType": "image/png", "data": PNG}})
            body["contents"][-1]["parts"] = parts

    return edit


def image_detail(fmt: str) -> Edit:
    """The question with an image asked at low detail."""

    def edit(body: Body) -> None:
        user_parts(fmt, True)(body)
        if fmt == "openai":
            body["messages"][-1]["content"][-1]["image_url"]["detail"] = "low"
        else:
            body["input"][-1]["content"][-1]["detail"] = "low"

    return edit


def named(body: Body) -> None:
    body["messages"][-1]["name"] = "ada"


def system_blocks(fmt: str, cached: bool) -> Edit:
    """The system prompt as a text block, marked as a cache breakpoint when `cached` (the request without it has the
    system prompt as a string, which is what a provider without breakpoints gets)."""

    def edit(body: Body) -> None:
        block: Body = {"type": "text", "text": "Be brief."}
        if cached:
            block["cache_control"] = {"type": "ephemeral"}
        if fmt == "openai":
            body["messages"][0]["content"] = [block]
        else:
            body["system"] = [block]

    return edit
