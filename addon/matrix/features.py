"""The features the matrix probes, each as a pair of minimal client requests per client format: one without the
feature and one with it, alike in everything else, so that what the feature changes in the provider's request is
the difference between the two translations. A format without the feature has no pair (the cell says so)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class Pair:
    """A feature in one client format: `feature` edits the base request into the request with the feature, `base`
    (when set) into the request without it, alike in everything else (the tools a tool choice needs)."""

    feature: Edit
    base: Edit | None = None

    def bodies(self, start: Body) -> tuple[Body, Body]:
        without, with_it = copy.deepcopy(start), copy.deepcopy(start)
        if self.base is not None:
            self.base(without)
        self.feature(with_it)
        return without, with_it


@dataclass(frozen=True)
class Feature:
    key: str
    label: str
    pairs: dict[str, Pair]  # client format -> its pair


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


def _set(**fields: Any) -> Edit:
    def edit(body: Body) -> None:
        body.update(copy.deepcopy(fields))

    return edit


def _config(**fields: Any) -> Edit:
    """Gemini's generationConfig fields."""

    def edit(body: Body) -> None:
        body["generationConfig"].update(copy.deepcopy(fields))

    return edit


def _then(*edits: Edit) -> Edit:
    def edit(body: Body) -> None:
        for one in edits:
            one(body)

    return edit


# ---- tools ----------------------------------------------------------------------------------------------------

_TOOLS: dict[str, Edit] = {
    "openai": _set(
        tools=[{"type": "function", "function": {"name": "add", "description": "Add two numbers", "parameters": ADD}}]
    ),
    "anthropic": _set(tools=[{"name": "add", "description": "Add two numbers", "input_schema": ADD}]),
    "responses": _set(tools=[{"type": "function", "name": "add", "description": "Add two numbers", "parameters": ADD}]),
    "gemini": _set(
        tools=[
            {"functionDeclarations": [{"name": "add", "description": "Add two numbers", "parametersJsonSchema": ADD}]}
        ]
    ),
}


def _tool_history(fmt: str) -> Edit:
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


def _answered(fmt: str, signed: bool) -> Edit:
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
                    "encrypted_content": SIGNATURE,
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


def _user_parts(fmt: str, image: bool) -> Edit:
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


def _system_blocks(fmt: str, cached: bool) -> Edit:
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


# ---- the features ----------------------------------------------------------------------------------------------

_TOOLS_BASE = {fmt: Pair(edit) for fmt, edit in _TOOLS.items()}


def _with_tools(fmt: str, edit: Edit) -> Pair:
    """A tool-use feature: the request without it has the tools too."""
    return Pair(_then(_TOOLS[fmt], edit), _TOOLS[fmt])


FEATURES: list[Feature] = [
    Feature(
        "reasoning",
        "reasoning effort / budget",
        {
            "openai": Pair(_set(reasoning_effort="high")),
            "anthropic": Pair(_set(thinking={"type": "enabled", "budget_tokens": 8000})),
            "responses": Pair(_set(reasoning={"effort": "high"})),
            "gemini": Pair(_config(thinkingConfig={"thinkingBudget": 8000, "includeThoughts": True})),
        },
    ),
    Feature(
        "signed_reasoning",
        "earlier turns' signed reasoning sent back",
        {fmt: Pair(_answered(fmt, True), _answered(fmt, False)) for fmt in BASE},
    ),
    Feature(
        "cache_control",
        "cache breakpoints (`cache_control`)",
        {fmt: Pair(_system_blocks(fmt, True)) for fmt in ("openai", "anthropic")},
    ),
    Feature(
        "prompt_cache_key",
        "`prompt_cache_key`",
        {fmt: Pair(_set(prompt_cache_key="probe-key")) for fmt in ("openai", "responses")},
    ),
    Feature("tools", "function tools", _TOOLS_BASE),
    Feature(
        "tool_history",
        "tool calls and results in the history",
        {fmt: Pair(_then(_TOOLS[fmt], _tool_history(fmt)), _TOOLS[fmt]) for fmt in BASE},
    ),
    Feature(
        "tool_choice",
        "forced tool use (`required` / `any`)",
        {
            "openai": _with_tools("openai", _set(tool_choice="required")),
            "anthropic": _with_tools("anthropic", _set(tool_choice={"type": "any"})),
            "responses": _with_tools("responses", _set(tool_choice="required")),
            "gemini": _with_tools("gemini", _set(toolConfig={"functionCallingConfig": {"mode": "ANY"}})),
        },
    ),
    Feature(
        "parallel_tool_calls",
        "parallel tool calls off",
        {
            "openai": _with_tools("openai", _set(parallel_tool_calls=False)),
            "anthropic": Pair(
                _then(_TOOLS["anthropic"], _set(tool_choice={"type": "auto", "disable_parallel_tool_use": True})),
                _then(_TOOLS["anthropic"], _set(tool_choice={"type": "auto"})),
            ),
            "responses": _with_tools("responses", _set(parallel_tool_calls=False)),
        },
    ),
    Feature("images", "images in", {fmt: Pair(_user_parts(fmt, True), _user_parts(fmt, False)) for fmt in BASE}),
    Feature(
        "json_schema",
        "structured output (JSON schema)",
        {
            "openai": Pair(
                _set(response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}})
            ),
            "anthropic": Pair(_set(output_config={"format": {"type": "json_schema", "schema": SCHEMA}})),
            "responses": Pair(_set(text={"format": {"type": "json_schema", "name": "answer", "schema": SCHEMA}})),
            "gemini": Pair(_config(responseMimeType="application/json", responseJsonSchema=SCHEMA)),
        },
    ),
    Feature(
        "json_object",
        "JSON mode (any object)",
        {
            "openai": Pair(_set(response_format={"type": "json_object"})),
            "responses": Pair(_set(text={"format": {"type": "json_object"}})),
            "gemini": Pair(_config(responseMimeType="application/json")),
        },
    ),
    Feature(
        "top_k",
        "`top_k`",
        {"openai": Pair(_set(top_k=40)), "anthropic": Pair(_set(top_k=40)), "gemini": Pair(_config(topK=40))},
    ),
    Feature(
        "stop",
        "stop sequences",
        {
            "openai": Pair(_set(stop=["END"])),
            "anthropic": Pair(_set(stop_sequences=["END"])),
            "gemini": Pair(_config(stopSequences=["END"])),
        },
    ),
    Feature(
        "penalties",
        "presence / frequency penalty",
        {
            "openai": Pair(_set(presence_penalty=0.5, frequency_penalty=0.5)),
            "gemini": Pair(_config(presencePenalty=0.5, frequencyPenalty=0.5)),
        },
    ),
    Feature(
        "seed",
        "`seed`",
        {"openai": Pair(_set(seed=7)), "gemini": Pair(_config(seed=7))},
    ),
    Feature(
        "logprobs",
        "log probabilities",
        {
            "openai": Pair(_set(logprobs=True, top_logprobs=2)),
            "responses": Pair(_set(top_logprobs=2, include=["message.output_text.logprobs"])),
            "gemini": Pair(_config(responseLogprobs=True, logprobs=2)),
        },
    ),
    Feature(
        "n",
        "several choices (`n` > 1)",
        {"openai": Pair(_set(n=2)), "gemini": Pair(_config(candidateCount=2))},
    ),
    Feature(
        "user",
        "end-user id",
        {
            "openai": Pair(_set(user="user-probe")),
            "anthropic": Pair(_set(metadata={"user_id": "user-probe"})),
            "responses": Pair(_set(safety_identifier="user-probe")),
        },
    ),
    Feature(
        "verbosity",
        "`verbosity`",
        {"openai": Pair(_set(verbosity="low")), "responses": Pair(_set(text={"verbosity": "low"}))},
    ),
    Feature(
        "web_search",
        "the API's own web search",
        {
            "openai": Pair(_set(web_search_options={"search_context_size": "low"})),
            "anthropic": Pair(_set(tools=[{"type": "web_search_20250305", "name": "web_search"}])),
            "responses": Pair(_set(tools=[{"type": "web_search"}])),
            "gemini": Pair(_set(tools=[{"googleSearch": {}}])),
        },
    ),
    Feature(
        "service_tier",
        "`service_tier`",
        {
            "openai": Pair(_set(service_tier="flex")),
            "anthropic": Pair(_set(service_tier="auto")),
            "responses": Pair(_set(service_tier="flex")),
        },
    ),
]
