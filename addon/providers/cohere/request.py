"""What the three Cohere chat APIs share in a request: the sampling parameters, the OpenAI fields refused, text-only
message content, response_format and the tool checks. The API bodies themselves: request_v2.py and request_v1.py."""

from __future__ import annotations

from typing import Any

from ...errors import bad_request
from ...openai_format import max_tokens_of, refuse_unsupported, response_format_type, stop_list, text_of
from ..base import Call
from .common import V1_GENERATE

# OpenAI fields Cohere has no equivalent for: refused unless absent or neutral, so a client never silently gets
# other behaviour than it asked for. `user`, `metadata`, `store` and `service_tier` are OpenAI account features
# with no effect on the answer: they are dropped.
_UNSUPPORTED = {
    "logit_bias": None,
    "logprobs": False,  # chat: a boolean; completions: an int (0 is neutral too)
    "top_logprobs": None,
    "audio": None,
    "prediction": None,
    "functions": None,
    "function_call": None,
    "web_search_options": None,
    "echo": False,
    "suffix": None,
    "best_of": 1,
}

# Cohere's `p` (top_p) is documented as "min value of 0.01, max value of 0.99" (cohere-python v2 and v1 chat):
# OpenAI's 0-1 range is clamped, so OpenAI's common `top_p: 1` (no nucleus filtering) is the widest Cohere takes
# instead of a 400.
MIN_P, MAX_P = 0.01, 0.99


def common_body(call: Call, api: str) -> dict[str, Any]:
    body = call.body
    refuse_unsupported(body, "cohere", _UNSUPPORTED)
    n = body.get("n")
    if n is not None and n != 1:
        if api != V1_GENERATE:
            raise bad_request("'n' other than 1 is not supported by Cohere chat; send n: 1", param="n")
        if call.stream:
            raise bad_request("'n' other than 1 cannot be streamed from Cohere /v1/generate", param="n")
    out: dict[str, Any] = {}
    if call.model:
        out["model"] = call.model
    max_tokens = max_tokens_of(body)
    if max_tokens is not None:
        out["max_tokens"] = max_tokens
    for ours, theirs in (("temperature", "temperature"), ("top_p", "p"), ("top_k", "k"), ("seed", "seed")):
        if body.get(ours) is not None:
            out[theirs] = body[ours]
    if "p" in out:
        out["p"] = min(max(float(out["p"]), MIN_P), MAX_P)
    for key in ("frequency_penalty", "presence_penalty"):
        if body.get(key):  # 0 is Cohere's default, and some models refuse both keys at once
            out[key] = body[key]
    stop = stop_list(body)
    if stop:
        out["stop_sequences"] = stop
    return out


def _text_only(content: Any, where: str, what: str) -> str:
    """The text of a message that may hold only text parts (`refusal` parts of an assistant turn are text)."""
    if isinstance(content, list):
        for j, part in enumerate(content):
            if part.get("type") not in ("text", "refusal"):
                param = f"{where}.content[{j}]"
                raise bad_request(f"{param}: {what} may hold only text with provider cohere", param=param)
        return "".join(p.get("text") or p.get("refusal") or "" for p in content)
    return text_of(content)


def _refuse_serial_tools(body: dict[str, Any]) -> None:
    if body.get("tools") and body.get("parallel_tool_calls") is False:
        raise bad_request(
            "'parallel_tool_calls: false' is not supported by provider cohere", param="parallel_tool_calls"
        )


def _refuse_tools(body: dict[str, Any], where: str) -> None:
    if body.get("tools"):
        raise bad_request(f"tools are not supported with {where}", param="tools")
    choice = body.get("tool_choice")
    if choice not in (None, "none", "auto"):
        raise bad_request("tool_choice needs tools", param="tool_choice")


def _response_format(body: dict[str, Any], schema_key: str, api: str) -> dict[str, Any] | None:
    """OpenAI response_format -> Cohere's: json_object as is, json_schema as json_object with the schema under
    `json_schema` (v2) or `schema` (v1). /v1/generate has no JSON mode."""
    response_format = body.get("response_format")
    kind = response_format_type(response_format)
    if kind == "text":
        return None
    if kind not in ("json_object", "json_schema"):
        raise bad_request("response_format type must be text, json_object or json_schema", param="response_format")
    if api == V1_GENERATE:
        raise bad_request("response_format is not supported by Cohere /v1/generate", param="response_format")
    if kind == "json_object":
        return {"type": "json_object"}
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise bad_request("response_format json_schema needs json_schema.schema", param="response_format")
    return {"type": "json_object", schema_key: schema}
