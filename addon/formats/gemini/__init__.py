"""The Gemini generateContent client format (gemini-cli, the google-genai SDKs) to any provider but Gemini itself
(which the native route serves byte for byte): requests decoded into the standard request (request.py, config.py),
answers encoded as GenerateContentResponses (response.py), streams written as Gemini chunks in either of Google's
stream forms (stream.py), errors in Google's envelope (errors.py). `:countTokens` and `GET …/models` are answered
by the proxy itself (see `local_answer`)."""

from __future__ import annotations

import re
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, unquote

from ... import jsonutil
from ...errors import ProxyError, bad_request, from_envelope
from ...streaming import StreamResult, StreamWriter
from ..fields import estimate_tokens, obj
from . import errors, request, response
from .names import camel_case
from .stream import GeminiResult, GeminiWriter, error_tail

_MODELS_PATH = re.compile(r"/models(?:/([^/:]+))?$")
_METHODS = "generateContent, streamGenerateContent and countTokens"
_GENERATION_METHODS = ["generateContent", "streamGenerateContent", "countTokens"]


class GeminiFormat:
    name = "gemini"
    # The loss report names a standard field the provider lacks by the Gemini field it came from.
    hint_names = {
        "reasoning_effort": "generationConfig.thinkingConfig",
        "thinking": "generationConfig.thinkingConfig",  # the exact budget, sent next to the effort
        "top_k": "generationConfig.topK",
        "parallel_tool_calls": "parallel_tool_calls",  # Gemini has no such setting: never set by this format
    }

    def decode(self, route_type: str, path: str, body: Any, dropped: list[str]) -> dict[str, Any]:
        found = request.method_of(path)
        if found is None or found[1] == "countTokens":
            raise ProxyError(404, f"this route translates the Gemini methods {_METHODS}", code="NOT_FOUND")
        model, method = found
        return request.decode(body, model, method == "streamGenerateContent", dropped)

    def encode(self, route_type: str, standard: dict[str, Any]) -> dict[str, Any]:
        return response.answer(standard, standard.get("model"))

    def writer(self, route_type: str, model: str, include_usage: bool, keep_payload: bool) -> StreamWriter:
        return GeminiWriter(route_type, model, include_usage, keep_payload)

    def writer_for(self, path: str) -> Any:
        """The writer for a request path: `alt=sse` streams Server-Sent Events, any other the JSON array."""
        return self.writer if _sse(path) else partial(GeminiWriter, sse=False)

    def stream_media_type(self, path: str) -> str:
        """The content type of a stream, as Google answers either form."""
        return "text/event-stream; charset=utf-8" if _sse(path) else "application/json; charset=utf-8"

    def error_body(self, err: ProxyError) -> tuple[bytes, dict[str, str]]:
        return errors.body(err), {}

    def error_status(self, status: int) -> int:
        return status

    def error_from_envelope(self, status: int, data: Any) -> ProxyError:
        return from_envelope(status, data)

    def stream_error(self, result: StreamResult, err: ProxyError) -> bytes:
        if isinstance(result, GeminiResult):
            return error_tail(result, err)
        result.error = err
        return errors.event(err)

    def local_answer(self, method: str, path: str, body: bytes, models: list[str]) -> dict[str, Any] | None:
        """The answer to an endpoint the proxy serves itself, or None for a generateContent request."""
        found = request.method_of(path)
        if found is not None and found[1] == "countTokens":
            return count_tokens(body, found[0])
        bare = path.split("?", 1)[0].rstrip("/")
        listed = _MODELS_PATH.search(bare) if method == "GET" else None
        if listed is not None:
            return model_list(models, unquote(listed.group(1)) if listed.group(1) else None)
        return None


def _sse(path: str) -> bool:
    return dict(parse_qsl(path.partition("?")[2])).get("alt") == "sse"


def count_tokens(body: bytes, model: str) -> dict[str, Any]:
    """`{"totalTokens": n}` for a countTokens body, the local estimate (fields.estimate_tokens, documented in the
    README). The seam for a provider's own counter: `count_request` gives what to count and the estimate to fall
    back on, `count_answer` the answer for a count."""
    _, estimate = count_request(body, model)
    return count_answer(estimate)


def count_request(body: bytes, model: str) -> tuple[dict[str, Any], int]:
    """A countTokens body (`contents`, or a whole `generateContentRequest`), checked as a generateContent request
    would be, as the standard request to count and its local estimate."""
    try:
        data = jsonutil.loads(body)
    except ValueError as e:
        raise bad_request(f"request body is not valid JSON: {e}", code="invalid_json") from None
    data = camel_case(obj(data, "body"))
    inner = data.get("generateContentRequest")
    if inner is not None:
        data = obj(inner, "generateContentRequest")
    standard = request.decode(data, model, False, [])
    return standard, estimate_tokens(standard)


def count_answer(tokens: int) -> dict[str, Any]:
    return {"totalTokens": tokens}


def model_list(models: list[str], wanted: str | None) -> dict[str, Any]:
    """The rule's models in Gemini's Model shape (`models/{id}`); one of them, or a 404, when `wanted`."""
    entries = [
        {
            "name": f"models/{m}",
            "version": "proxy",
            "displayName": m,
            "description": f"{m}, served through the AI proxy",
            "supportedGenerationMethods": _GENERATION_METHODS,
        }
        for m in models
    ]
    if wanted is not None:
        for entry in entries:
            if entry["name"] in (wanted, f"models/{wanted}"):
                return entry
        raise ProxyError(404, f"model '{wanted}' is not served by this route", code="NOT_FOUND")
    return {"models": entries}


GEMINI = GeminiFormat()
