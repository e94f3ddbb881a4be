"""The Anthropic Messages client format (Claude Code, the anthropic SDKs) to any provider: requests decoded into the
standard request (request.py), answers encoded as Anthropic messages (response.py), streams written as Anthropic
events (stream.py), errors in Anthropic's envelope (errors.py). `GET …/models` is answered by the proxy itself, and
`POST …/messages/count_tokens` through the provider's token counter where it has one (see `local_answer`)."""

from __future__ import annotations

import re
from typing import Any

from ... import jsonutil
from ...errors import ProxyError, bad_request
from ...streaming import StreamResult, StreamWriter
from ..base import TokenCount
from ..fields import estimate_tokens
from . import errors, request, response
from .stream import AnthropicWriter

_MODELS_PATH = re.compile(r"/models(?:/([^/]+))?$")


class AnthropicFormat:
    name = "anthropic"
    # Signed reasoning travels in the format itself (thinking / redacted_thinking blocks, both ways): the proxy's
    # signature store has nothing to keep for its clients.
    carries_signed_reasoning = True
    # The loss report names a standard field the provider lacks by the Anthropic field it came from.
    hint_names = {
        "reasoning_effort": "thinking",
        "thinking": "thinking",
        "top_k": "top_k",
        "parallel_tool_calls": "disable_parallel_tool_use",
        "user": "metadata.user_id",
    }

    def decode(self, route_type: str, path: str, body: Any, dropped: list[str]) -> dict[str, Any]:
        return request.decode(body, dropped)

    def encode(self, route_type: str, standard: dict[str, Any]) -> dict[str, Any]:
        return response.message(standard, standard.get("model"))

    def writer(self, route_type: str, model: str, include_usage: bool, keep_payload: bool) -> StreamWriter:
        return AnthropicWriter(route_type, model, include_usage, keep_payload)

    def error_body(self, err: ProxyError) -> tuple[bytes, dict[str, str]]:
        return errors.body(err), {}

    def error_status(self, status: int) -> int:
        return errors.status_for(status)

    def error_from_envelope(self, status: int, data: Any) -> ProxyError:
        return errors.from_envelope(status, data)

    def stream_error(self, result: StreamResult, err: ProxyError) -> bytes:
        result.error = err
        return errors.event(err)

    def local_answer(
        self, method: str, path: str, body: bytes, models: list[str]
    ) -> dict[str, Any] | TokenCount | None:
        """The answer to an endpoint the proxy serves itself, a TokenCount for count_tokens, or None for a Messages
        request."""
        path = path.split("?", 1)[0].rstrip("/")
        if path.endswith("/messages/count_tokens"):
            return count_request(body)
        found = _MODELS_PATH.search(path) if method == "GET" else None
        if found is not None:
            return model_list(models, found.group(1))
        return None


def count_request(body: bytes) -> TokenCount:
    """A count_tokens body (validated as a Messages request would be) as the standard request to count, with the
    local estimate from the translated request (documented in the README) and the answer `{"input_tokens": n}`."""
    try:
        data = jsonutil.loads(body)
    except ValueError as e:
        raise bad_request(f"request body is not valid JSON: {e}", code="invalid_json") from None
    if isinstance(data, dict) and data.get("max_tokens") is None:
        data = {**data, "max_tokens": 1}  # count_tokens takes no max_tokens
    standard = request.decode(data, [])
    return TokenCount(standard, estimate_tokens(standard), count_answer)


def count_answer(tokens: int) -> dict[str, Any]:
    return {"input_tokens": tokens}


def count_tokens(body: bytes) -> dict[str, Any]:
    """The local estimate's answer for a count_tokens body."""
    count = count_request(body)
    return count.answer(count.estimate)


def model_list(models: list[str], wanted: str | None) -> dict[str, Any]:
    entries = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"} for m in models]
    if wanted is not None:
        for entry in entries:
            if entry["id"] == wanted:
                return entry
        raise ProxyError(404, f"model '{wanted}' is not served by this route", code="model_not_found")
    return {
        "data": entries,
        "has_more": False,
        "first_id": entries[0]["id"] if entries else None,
        "last_id": entries[-1]["id"] if entries else None,
    }


ANTHROPIC = AnthropicFormat()
