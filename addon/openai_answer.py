"""The shape of what the proxy returns to a client, whatever the provider sent: a translated answer is checked
where clients and the audit record read it (choices, messages, usage, model) before it leaves; token counts are
64-bit non-negative integers. The requests' side is openai_validate.py."""

from __future__ import annotations

from typing import Any

from .openai_validate import CHAT, EMBEDDINGS, MAX_INT, _is_int


def count(value: Any) -> int | None:
    """A token count as the proxy passes it on (a 64-bit non-negative integer), or None."""
    return value if _is_int(value) and 0 <= value < MAX_INT else None


def check_answer(route_type: str, data: Any) -> dict[str, Any]:
    """A translated 2xx answer, checked where clients and the audit record read it (choices, messages, usage,
    model); raises ValueError (the client gets a 502 bad_upstream_response) for any other shape."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    for key in ("id", "model", "object"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ValueError(f"'{key}' is not a string")
    usage = data.get("usage")
    if usage is not None:
        if not isinstance(usage, dict):
            raise ValueError("'usage' is not an object")
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            if usage.get(key) is not None and count(usage[key]) is None:
                raise ValueError(f"usage.{key} is not a token count")
    if route_type == EMBEDDINGS:
        if not isinstance(data.get("data"), list):
            raise ValueError("expected an embeddings list with 'data'")
        return data
    choices = data.get("choices")
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise ValueError("expected 'choices' to be an array of objects")
    for i, choice in enumerate(choices):
        _check_choice(choice, f"choices[{i}]", route_type == CHAT)
    return data


def _check_choice(choice: dict[str, Any], where: str, chat: bool) -> None:
    if choice.get("finish_reason") is not None and not isinstance(choice["finish_reason"], str):
        raise ValueError(f"{where}.finish_reason is not a string")
    if not chat:
        if not isinstance(choice.get("text"), str):
            raise ValueError(f"{where}.text is not a string")
        return
    message = choice.get("message")
    if not isinstance(message, dict):
        raise ValueError(f"{where}.message is not an object")
    if message.get("content") is not None and not isinstance(message["content"], str):
        raise ValueError(f"{where}.message.content is not a string")
    calls = message.get("tool_calls")
    if calls is not None and not (isinstance(calls, list) and all(_is_call(c) for c in calls)):
        raise ValueError(f"{where}.message.tool_calls is not an array of function calls")


def _is_call(call: Any) -> bool:
    fn = call.get("function") if isinstance(call, dict) else None
    return isinstance(fn, dict) and isinstance(fn.get("name"), str) and isinstance(fn.get("arguments"), str)
