"""What client formats share: field checks that fail with a 400 naming the field in the client's own terms, the
local token estimate, and tool-call arguments as an object."""

from __future__ import annotations

from typing import Any, NoReturn

from .. import jsonutil
from ..errors import bad_request
from ..openai_answer import count
from ..openai_validate import MAX_INT

# A local estimate of a prompt's tokens: about four characters of JSON per token, as OpenAI's and Anthropic's own
# rules of thumb for English text and code. Used where the provider has no counting endpoint; never an error.
CHARS_PER_TOKEN = 4


def fail(param: str, what: str) -> NoReturn:
    raise bad_request(f"{param}: {what}", param=param)


def integer(body: dict[str, Any], key: str, low: int = 0, param: str | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value < MAX_INT:
        fail(param or key, f"must be an integer of at least {low}")
    return value


def number(body: dict[str, Any], key: str, high: float, param: str | None = None) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= high:
        fail(param or key, f"must be a number from 0 to {high}")
    return value


def string(value: Any, param: str) -> str:
    if not isinstance(value, str):
        fail(param, "must be a string")
    return value


def array(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        fail(param, "must be an array")
    return value


def obj(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        fail(param, "must be an object")
    return value


def estimate_tokens(standard: dict[str, Any]) -> int:
    """The local estimate of a standard request's prompt tokens (its messages and tools), at least 1."""
    counted = {k: standard[k] for k in ("messages", "tools") if k in standard}
    return max(1, len(jsonutil.dumps(counted)) // CHARS_PER_TOKEN)


def arguments_object(arguments: Any) -> dict[str, Any]:
    """A tool call's arguments (a JSON string) as the object Anthropic's `input` and Gemini's `args` are; what is
    not a JSON object is kept whole under one key rather than lost."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = jsonutil.loads(arguments)
    except ValueError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}


def usage_counts(standard: Any) -> tuple[int, int, int, int]:
    """(prompt, completion, cached, reasoning) tokens of an OpenAI usage object, 0 where not counted; cached tokens
    are part of the prompt's and reasoning tokens part of the completion's, as OpenAI counts them."""
    standard = standard if isinstance(standard, dict) else {}
    prompt_details = standard.get("prompt_tokens_details")
    completion_details = standard.get("completion_tokens_details")
    return (
        count(standard.get("prompt_tokens")) or 0,
        count(standard.get("completion_tokens")) or 0,
        (count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else None) or 0,
        (count(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else None) or 0,
    )
