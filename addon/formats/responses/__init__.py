"""The OpenAI Responses client format (Codex CLI, the OpenAI Agents SDK, `client.responses.*`) to any provider: the
route type `llm/v1/responses` of the OpenAI format (Kong's name). Requests decoded into the standard request
(request.py, items.py), answers encoded as `response` objects (response.py), streams written as Responses events
(stream.py), errors in OpenAI's envelope (errors.py). `GET …/models` is answered by the proxy itself; stored
responses (`previous_response_id`, `GET /v1/responses/{id}`) are the route's business (I/O), not the format's."""

from __future__ import annotations

import re
from typing import Any

from ...errors import ProxyError
from ...streaming import StreamResult, StreamWriter
from . import errors, request, response
from .stream import ResponsesWriter

ROUTE_TYPE = "llm/v1/responses"
_MODELS_PATH = re.compile(r"/models(?:/([^/]+))?$")


class ResponsesFormat:
    name = "openai"  # a route type of the OpenAI format, as in Kong
    # The standard request's hints, in this format's terms, for the loss report of a provider without them.
    hint_names = {
        "reasoning_effort": "reasoning.effort",
        "thinking": "reasoning.effort",  # what a provider without the model's control reports
        "top_k": "top_k",
        "parallel_tool_calls": "parallel_tool_calls",
        "image_detail": "input_image.detail",
        "thinking_blocks": "reasoning",  # a replayed reasoning item's signed reasoning, for a provider without it
    }

    def decode(self, route_type: str, path: str, body: Any, dropped: list[str]) -> dict[str, Any]:
        return request.decode(body, dropped)

    def encode(self, route_type: str, standard: dict[str, Any]) -> dict[str, Any]:
        return response.encode(standard)

    def writer(self, route_type: str, model: str, include_usage: bool, keep_payload: bool) -> StreamWriter:
        return ResponsesWriter(route_type, model, include_usage, keep_payload)

    def error_body(self, err: ProxyError) -> tuple[bytes, dict[str, str]]:
        return err.body(), {}

    def error_status(self, status: int) -> int:
        return status

    def error_from_envelope(self, status: int, data: Any) -> ProxyError:
        return errors.from_envelope(status, data)

    def stream_error(self, result: StreamResult, err: ProxyError) -> bytes:
        result.error = err
        return errors.event(err, 1_000_000)  # after any event the writer numbered (it is not at hand here)

    def local_answer(self, method: str, path: str, body: bytes, models: list[str]) -> dict[str, Any] | None:
        """The model list (GET …/models[/{id}]), or None for a request that goes to the provider."""
        found = _MODELS_PATH.search(path.split("?", 1)[0].rstrip("/")) if method == "GET" else None
        return model_list(models, found.group(1)) if found is not None else None


def model_list(models: list[str], wanted: str | None) -> dict[str, Any]:
    entries = [{"id": m, "object": "model", "created": 1735689600, "owned_by": "ai-proxy"} for m in models]
    if wanted is None:
        return {"object": "list", "data": entries}
    for entry in entries:
        if entry["id"] == wanted:
            return entry
    raise ProxyError(404, f"The model '{wanted}' does not exist", code="model_not_found", param="model")


RESPONSES = ResponsesFormat()

__all__ = ["RESPONSES", "ROUTE_TYPE", "ResponsesFormat"]
