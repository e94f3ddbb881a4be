"""The facts of Cohere's wire that the request, response, stream and native code share: the three APIs and
which one a rule's call goes to, finish reasons and failed generations, usage, v1 tool calls."""

from __future__ import annotations

import json
import uuid
from typing import Any

from ...errors import ProxyError
from ...openai_format import CHAT, usage
from ..base import UpstreamFormatError, url_path

BASE_URL = "https://api.cohere.com"

# The three native APIs.
V2 = "v2"  # /v2/chat: OpenAI-like messages
V1_CHAT = "v1-chat"  # /v1/chat: message + chat_history + preamble
V1_GENERATE = "v1-generate"  # /v1/generate: prompt (completions only)
PATHS = {V2: "/v2/chat", V1_CHAT: "/v1/chat", V1_GENERATE: "/v1/generate"}

# Cohere finish reasons (v1 and v2) -> OpenAI. Unknown values become "stop" (providers.md: pass unknowns safely).
STOP_SEQUENCE = "STOP_SEQUENCE"  # Cohere's finish reason when a stop sequence ended the answer (it does not say which)
FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "ERROR_LIMIT": "length",  # v1: the model's context limit was reached before the generation completed
    "TOOL_CALL": "tool_calls",
    "ERROR_TOXIC": "content_filter",
}
# Finish reasons that mean the generation failed: the client gets an error, not a truncated answer as if it were
# complete. Value: the HTTP status of that error.
FAILED = {"ERROR": 502, "TIMEOUT": 504, "USER_CANCEL": 502}


class GenerationFailed(ProxyError, UpstreamFormatError):
    """A 2xx Cohere answer whose finish reason says the generation failed (ERROR, TIMEOUT).

    A ProxyError with a meaningful status; also an UpstreamFormatError, so that glue which only knows that type
    still answers the client with a 502 error envelope carrying this message."""


def api_of(options: Any, route_type: str) -> str:
    """Which Cohere API a rule's call goes to: cohere_api wins, then the path the rule pins, then v2."""
    if options.cohere_api == "v2":
        return V2
    path = (url_path(options) or "").rstrip("/")
    if path.endswith("/v1/generate"):
        return V1_GENERATE
    if path.endswith("/v1/chat"):
        return V1_CHAT
    if options.cohere_api == "v1":
        return V1_CHAT if route_type == CHAT else V1_GENERATE
    return V2


def finish_reason(reason: Any) -> str:
    return FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"


def _count(value: Any) -> int | None:
    # Cohere's SDK types token counts as floats; JSON true is not a count.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _pair(raw: Any, prompt_key: str, completion_key: str) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    prompt, completion = _count(raw.get(prompt_key)), _count(raw.get(completion_key))
    if prompt is None or completion is None:
        return None
    return usage(prompt, completion)


def usage_of(raw: Any) -> dict[str, Any] | None:
    """v2 `usage` or v1 `meta` -> OpenAI usage. `tokens` (what the model processed) is preferred over
    `billed_units` (what is billed, without the prompt template); either may be absent."""
    if not isinstance(raw, dict):
        return None
    return _pair(raw.get("tokens"), "input_tokens", "output_tokens") or _pair(
        raw.get("billed_units"), "input_tokens", "output_tokens"
    )


def v1_usage(response: Any) -> dict[str, Any] | None:
    """A v1 response's usage: `meta.tokens`, then the older `token_count`, then `meta.billed_units`."""
    if not isinstance(response, dict):
        return None
    meta = response.get("meta") if isinstance(response.get("meta"), dict) else {}
    return (
        _pair(meta.get("tokens"), "input_tokens", "output_tokens")
        or _pair(response.get("token_count"), "prompt_tokens", "response_tokens")
        or _pair(meta.get("billed_units"), "input_tokens", "output_tokens")
    )


def failure(reason: Any, detail: Any = None) -> GenerationFailed | None:
    """The error for a failed generation's finish reason, or None when the reason is not a failure."""
    if not isinstance(reason, str) or reason not in FAILED:
        return None
    message = f"cohere could not complete the generation (finish_reason {reason})"
    if isinstance(detail, str) and detail:
        message += f": {detail}"
    status = FAILED[reason]
    return GenerationFailed(status, message, code="generation_failed", type="server_error")


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def v1_tool_calls(raw: Any) -> list[dict[str, Any]]:
    """v1 tool calls `[{name, parameters}]` (no ids) -> OpenAI tool calls with synthesised ids. The client sends
    the id back in its next turn's history, where `_v1_messages` (request_v1.py) resolves it through the assistant
    tool call."""
    out = []
    for call in raw if isinstance(raw, list) else ():
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
            continue
        parameters = call.get("parameters")
        out.append(
            {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": json.dumps(parameters if parameters is not None else {}),
                },
            }
        )
    return out


def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj
