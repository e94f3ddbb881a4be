"""Gemini: OpenAI chat/completions <-> generateContent / streamGenerateContent, on the Gemini API (API key) or on
Vertex AI (OAuth bearer token; `options.gemini.project_id` and `location_id`).

Streams are translated from either wire form Gemini has: SSE (`?alt=sse`, what we ask for) or, when a rule's
upstream_url asks for `:streamGenerateContent` without `alt=sse`, one JSON array streamed element by element.
The translator tells them apart by the first byte of the body.

Tools: `tools` -> functionDeclarations (parameters adapted to Gemini's schema subset), `tool_choice` ->
toolConfig.functionCallingConfig, assistant tool calls -> functionCall parts, tool results -> functionResponse
parts named after the call they answer. Gemini's calls have no ids: ours carry the native id (Vertex) and the
thoughtSignature back to Gemini on the next turn (see `tool_call_id`).

The package: urls (where a request goes), request + messages + tools + schema (OpenAI -> Gemini), response and
ids (Gemini -> OpenAI), stream, embeddings, errors, native (the `llm_format: gemini` passthrough adapter).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ...errors import ProxyError
from ...openai_answer import count
from ...openai_format import CHAT, EMBEDDINGS
from ...spec import OptionsModel
from ..base import Call, Provider, UpstreamRequest, register, uses_functions
from . import request, response, urls
from .common import GEMINI_API, GENERATE, _model_segment, _vertex, finish_reason, usage_of
from .embeddings import _embeddings_body, _embeddings_url
from .errors import gemini_error
from .ids import parse_tool_call_id, tool_call_id
from .stream import GeminiStream

if TYPE_CHECKING:
    from ...spec import ModelOptions
    from .native import GeminiFormat

__all__ = [
    "GEMINI",
    "GEMINI_API",
    "Gemini",
    "GeminiStream",
    "finish_reason",
    "gemini_error",
    "parse_tool_call_id",
    "tool_call_id",
    "usage_of",
    "uses_functions",
]


class GeminiOptions(OptionsModel):
    api_endpoint: str | None = None
    project_id: str | None = None
    location_id: str | None = None
    endpoint_id: str | None = None


class Gemini(Provider):
    option_fields = {"gemini": (GeminiOptions | None, None)}
    name = "gemini"
    optional_fields = frozenset({"top_k", "thinking", "reasoning_effort"})
    api_base = "https://generativelanguage.googleapis.com"
    price_id = "google"
    native_format = "gemini"
    host_option_fields = frozenset({"gemini.api_endpoint", "gemini.location_id"})
    supports_streaming = True

    def telemetry_name(self, upstream_url: str | None) -> str:
        vertex = upstream_url and "aiplatform.googleapis.com" in (urlsplit(upstream_url).hostname or "")
        return "gcp.vertex_ai" if vertex else "gcp.gemini"

    @property
    def native_adapter(self) -> GeminiFormat:
        """The `llm_format: gemini` adapter. Imported on first use: its bases live in addon/native.py, which
        imports the providers package (and so this one) before it defines them."""
        from .native import GEMINI_FORMAT

        return GEMINI_FORMAT

    def requires_model(self, options: ModelOptions) -> bool:
        # A Vertex endpoint (a deployed or tuned model) selects the model itself.
        return not (_vertex(options) and options.gemini is not None and options.gemini.endpoint_id)

    def build_request(self, call: Call) -> UpstreamRequest:
        headers = {}
        if call.access_token:
            headers["authorization"] = f"Bearer {call.access_token}"
        if call.route_type == EMBEDDINGS:
            return UpstreamRequest(url=_embeddings_url(call), body=_embeddings_body(call), headers=headers)
        body = request.body(call)
        return UpstreamRequest(url=self.url(call), body=body, headers=headers)

    def stream_translator(self, call: Call, include_usage: bool, keep_payload: bool) -> GeminiStream:
        return GeminiStream(call, include_usage, keep_payload)

    def url(self, call: Call) -> str:
        """The generateContent / streamGenerateContent URL of the rule's surface (see urls.url)."""
        return urls.url(call)

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
        return response.parse_response(call, data)

    def count_tokens_request(self, call: Call) -> UpstreamRequest | None:
        """`models/{model}:countTokens` next to generateContent. The Gemini API counts a whole generateContentRequest
        (system instruction and tools included); Vertex AI takes contents, systemInstruction and tools at the top.
        Tuned endpoints (Vertex endpoint_id) and custom paths: no counter."""
        if call.route_type != CHAT:
            return None
        up = self.build_request(call)
        parts = urlsplit(up.url)
        if not parts.path.endswith(":" + GENERATE) or "/endpoints/" in parts.path or up.body is None:
            return None
        counted = {k: up.body[k] for k in ("contents", "systemInstruction", "tools", "toolConfig") if k in up.body}
        if _vertex(call.options):
            counted.pop("toolConfig", None)
        else:
            counted = {"generateContentRequest": {"model": f"models/{_model_segment(call.model)}", **counted}}
        path = parts.path[: -len(GENERATE)] + "countTokens"
        return UpstreamRequest(url=urlunsplit(parts._replace(path=path)), body=counted, headers=up.headers)

    def parse_token_count(self, data: Any) -> int | None:
        return count(data.get("totalTokens")) if isinstance(data, dict) else None

    def parse_error(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> ProxyError:
        return gemini_error(status, body, content_type)


GEMINI = register(Gemini())
