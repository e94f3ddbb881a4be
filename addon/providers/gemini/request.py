"""An OpenAI chat or completions request as a Gemini generateContent body."""

from __future__ import annotations

from typing import Any

from ...errors import bad_request
from ...openai_format import CHAT, max_tokens_of, single_prompt, stop_list
from ..base import Call
from .common import _NOT_YET
from .messages import _contents
from .output_schema import output_schema
from .thinking import gemini_thinking
from .tools import _tools

# OpenAI fields Gemini has no (mapped) equivalent for: refused unless they hold their neutral value, so a
# client never silently gets something other than what it asked for.
_UNSUPPORTED = {
    "logprobs": (None, False),  # chat: bool; completions: int
    "top_logprobs": (None, 0),
    "logit_bias": (None,),
    "audio": (None,),
    "prediction": (None,),
    "web_search_options": (None,),
    "echo": (None, False),
    "suffix": (None, ""),
    "best_of": (None, 1),
}


def body(call: Call) -> dict[str, Any]:
    body = call.body
    _refuse_unsupported(body)
    out: dict[str, Any] = {}
    if call.route_type == CHAT:
        system, contents = _contents(body["messages"])
        if system:
            out["systemInstruction"] = {"parts": [{"text": t} for t in system]}
    else:
        prompt = single_prompt(body)
        contents = [{"role": "user", "parts": [{"text": prompt}]}] if prompt else []
    if not contents:
        raise bad_request("at least one non-empty user or assistant message is required", param="messages")
    out["contents"] = contents
    if call.route_type == CHAT:
        tools, tool_config = _tools(body, call.dropped)
        if tools:
            out["tools"] = tools
        if tool_config:
            out["toolConfig"] = tool_config
    else:
        for key in ("tools", "tool_choice", "functions", "function_call"):
            if body.get(key):
                raise bad_request(f"'{key}' needs the chat route (/v1/chat/completions)", param=key)
    config = _generation_config(call)
    if config:
        out["generationConfig"] = config
    return out


def _refuse_unsupported(body: dict[str, Any]) -> None:
    for key, neutral in _UNSUPPORTED.items():
        value = body.get(key)
        if value not in neutral and not (isinstance(value, dict | list) and not value and None in neutral):
            raise bad_request(f"'{key}' {_NOT_YET}", param=key)
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise bad_request(f"'modalities' other than ['text'] {_NOT_YET}", param="modalities")
    n = body.get("n")
    if n is not None and n < 1:
        raise bad_request("'n' must be at least 1", param="n")
    if n is not None and n > 1 and body.get("stream"):
        raise bad_request("'n' greater than 1 cannot be streamed from provider gemini", param="n")


def _generation_config(call: Call) -> dict[str, Any]:
    body = call.body
    config: dict[str, Any] = {}
    max_tokens = max_tokens_of(body)
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    for key, native in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if body.get(key) is not None:
            config[native] = body[key]
    stop = stop_list(body)
    if stop:
        config["stopSequences"] = stop
    n = body.get("n")
    if n is not None and n > 1:
        config["candidateCount"] = n
    # reasoning_effort or the extension `thinking` (a budget): thinkingConfig per model family (addon/reasoning.py)
    thinking, relaxed = gemini_thinking(call.model, body)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    call.dropped.extend(k for k in relaxed if k not in call.dropped)
    response_format = body.get("response_format")
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind == "json_object":
            config["responseMimeType"] = "application/json"
        elif kind == "json_schema":
            spec = response_format.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            if not isinstance(schema, dict) or not schema:
                raise bad_request(
                    "response_format json_schema needs a non-empty json_schema.schema object for provider gemini",
                    param="response_format",
                )
            # Gemini's responseJsonSchema takes a subset of JSON Schema ($ref, $defs, additionalProperties, ...):
            # adapted to it (output_schema.py). OpenAI's `strict` has no Gemini switch (Gemini always constrains
            # decoding to the schema).
            config["responseMimeType"] = "application/json"
            config["responseJsonSchema"] = output_schema(schema, call.dropped)
        elif kind != "text":
            raise bad_request(
                f"response_format {kind!r} {_NOT_YET} (text, json_object and json_schema are)",
                param="response_format",
            )
    return config
