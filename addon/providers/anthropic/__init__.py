"""Anthropic: OpenAI chat/completions <-> the Messages API (and the legacy Text Completions API on request).

Here: the Provider class (URL, version header, which API); common.py the wire facts the other modules share
(finish reasons, usage, the functions mode); request.py the Messages and legacy /v1/complete bodies, with
messages.py (OpenAI messages -> Anthropic turns and blocks) and tools.py (tools and tool_choice); response.py the
answer; stream.py the SSE stream; native.py the `llm_format: anthropic` passthrough adapter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...cache_breakpoints import controls
from ...extensions import CACHE_CONTROL
from ..base import Call, Provider, UpstreamRequest, build_url, register, url_path, uses_functions
from .caching import MAX_BREAKPOINTS
from .common import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_VERSION,
    FINISH_REASONS,
    LEGACY_FINISH_REASONS,
    MAX_TEMPERATURE,
    finish_reason,
    usage_of,
    usage_so_far_of,
)
from .request import JSON_OBJECT_INSTRUCTION, legacy_body, messages_body
from .response import parse_message
from .stream import AnthropicStream

if TYPE_CHECKING:
    from ...spec import ModelOptions
    from .native import AnthropicFormat

__all__ = [
    "ANTHROPIC",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_VERSION",
    "FINISH_REASONS",
    "JSON_OBJECT_INSTRUCTION",
    "LEGACY_FINISH_REASONS",
    "MAX_TEMPERATURE",
    "Anthropic",
    "AnthropicStream",
    "finish_reason",
    "usage_of",
    "usage_so_far_of",
    "uses_functions",
]


class Anthropic(Provider):
    name = "anthropic"
    option_fields = {"anthropic_version": (str | None, None)}
    # user: as metadata.user_id
    optional_fields = frozenset(
        {"top_k", "parallel_tool_calls", "reasoning_effort", "thinking", "thinking_blocks", "user", "cache_control"}
    )
    cache_breakpoints = MAX_BREAKPOINTS
    supports_streaming = True
    api_base = "https://api.anthropic.com"
    price_id = "anthropic"
    native_format = "anthropic"
    kept_header_prefixes = (b"x-ratelimit-", b"anthropic-ratelimit-")

    @property
    def native_adapter(self) -> AnthropicFormat:
        """The `llm_format: anthropic` adapter (native.py). Imported on first use: its bases live in addon/native.py,
        which imports the providers package (and so this one) before it defines them."""
        from .native import ANTHROPIC_FORMAT

        return ANTHROPIC_FORMAT

    def embeddings_problem(self, options: ModelOptions) -> str | None:
        return "provider anthropic has no embeddings API"

    def preserve_target(
        self, options: ModelOptions, model: str | None, path: str, query: dict[str, str], headers: dict[str, str]
    ) -> tuple[str | None, str]:
        headers.setdefault("anthropic-version", options.anthropic_version or DEFAULT_VERSION)
        return super().preserve_target(options, model, path, query, headers)

    def build_request(self, call: Call) -> UpstreamRequest:
        options = call.options
        legacy = (url_path(options) or "").rstrip("/").endswith("/v1/complete")
        body = legacy_body(call) if legacy else messages_body(call)
        if legacy and controls(call.body) and CACHE_CONTROL not in call.dropped:
            call.dropped.append(CACHE_CONTROL)  # the legacy text prompt has no place for breakpoints
        url = build_url(options, "https://api.anthropic.com", "/v1/messages")
        headers = {"anthropic-version": options.anthropic_version or DEFAULT_VERSION}
        return UpstreamRequest(url=url, body=body, headers=headers)

    def stream_translator(self, call: Call, include_usage: bool, keep_payload: bool) -> AnthropicStream:
        return AnthropicStream(call, include_usage, keep_payload)

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
        return parse_message(call, data)


ANTHROPIC = register(Anthropic())
