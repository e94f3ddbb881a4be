"""Mistral La Plateforme: OpenAI-shaped chat with a few differences (`mistral_format: openai`, the default), or a
Mistral model served by Ollama (`mistral_format: ollama`, shared with llama2 in providers/_ollama/).

OpenAI format differences handled here: `seed` is `random_seed`; fields Mistral refuses with a 422 are dropped
(bookkeeping) or refused (behaviour); finish reason `model_length` means `length` and `error` is an error; a stream
carries its usage in the last content chunk, which becomes OpenAI's separate usage chunk when the client asked for
it. Completions are served by the chat endpoint (the prompt as one user message), or by the FIM endpoint
(`/v1/fim/completions`, codestral) when the rule's upstream path names it.

Tools are OpenAI-shaped on Mistral too, with two rules of its own (docs/providers.md §7.1, §12): tool-call ids must
be exactly 9 characters of [a-zA-Z0-9], so any other id in the history (`call_...` from OpenAI or another
provider) is replaced by a deterministic hash of itself in both the assistant's `tool_calls[].id` and the tool
message's `tool_call_id` (the ids Mistral returns already fit both formats and go back unchanged); and the last
message must be `user` or `tool` (or an `assistant` with Mistral's `prefix: true`), else a clear 400 here. Tool
messages get the function `name` (some models need it). In answers, tool calls get `type: function`, string
arguments and an id; streamed tool-call deltas are renumbered so that `index` counts tool calls (several calls in
one delta share no index), and a `stop` after tool calls is `tool_calls`.

Here: the Provider class (URLs, which format, embeddings); ids.py the 9-character tool-call ids; request.py the
chat/FIM body; response.py answers and errors; stream.py the chat and completions streams.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ...errors import ProxyError
from ...openai_format import CHAT, EMBEDDINGS, embeddings_body, embeddings_passthrough
from ...spec import RuleSpec
from .. import _ollama
from ..base import Call, Provider, UpstreamRequest, build_url, register
from . import request, response
from .ids import mistral_id, new_tool_call_id
from .request import FIM_PATH, chat_messages
from .response import FINISH_REASONS, finish_reason, flatten_content, tool_calls_out
from .stream import MistralChatStream, MistralTextStream

__all__ = [
    "FIM_PATH",
    "FINISH_REASONS",
    "MISTRAL",
    "Mistral",
    "MistralChatStream",
    "MistralTextStream",
    "chat_messages",
    "finish_reason",
    "flatten_content",
    "mistral_id",
    "new_tool_call_id",
    "tool_calls_out",
]


class Mistral(Provider):
    option_fields = {"mistral_format": (Literal["openai", "ollama"] | None, None)}
    name = "mistral"
    # image_detail: image_url.detail, as OpenAI; reasoning: request.py / _ollama, per model
    optional_fields = frozenset({"image_detail", "reasoning_effort", "thinking"})
    supports_streaming = True
    api_base = "https://api.mistral.ai"
    price_id = "mistral"

    def telemetry_name(self, upstream_url: str | None) -> str:
        return "mistral_ai"

    def check_rule(self, spec: RuleSpec, unset: frozenset[str]) -> str | None:
        options = spec.model.options
        if (
            options.mistral_format == "ollama"
            and not options.upstream_url
            and "model.options.upstream_url" not in unset
        ):
            return "model.options.upstream_url is required for mistral (self-hosted)"
        return super().check_rule(spec, unset)

    @staticmethod
    def _ollama(call: Call) -> bool:
        return call.options.mistral_format == "ollama"

    # ---- to Mistral ----------------------------------------------------------------------------------------

    def build_request(self, call: Call) -> UpstreamRequest:
        if call.route_type == EMBEDDINGS:
            return self._embeddings_request(call)
        if self._ollama(call):
            return _ollama.build_request(call, self.name)
        url = build_url(call.options, "https://api.mistral.ai", "/v1/chat/completions")
        return UpstreamRequest(url=url, body=self._body(call))

    def _embeddings_request(self, call: Call) -> UpstreamRequest:
        """`/v1/embeddings`, OpenAI-shaped; `dimensions` is `output_dimension` (codestral-embed)."""
        if self._ollama(call):
            return _ollama.embeddings_request(call, self.name)
        url = build_url(call.options, "https://api.mistral.ai", "/v1/embeddings")
        return UpstreamRequest(url=url, body=embeddings_body(call.body, call.model, self.name, "output_dimension"))

    def _body(self, call: Call) -> dict[str, Any]:
        return request.body(call)

    # ---- from Mistral --------------------------------------------------------------------------------------

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
        if call.route_type == EMBEDDINGS:
            if self._ollama(call):
                return _ollama.parse_embeddings(call, data)
            return embeddings_passthrough(data, call.model or "", call.body.get("encoding_format"))
        if self._ollama(call):
            return _ollama.parse_response(call, data)
        return response.parse_chat(call, data)

    def parse_error(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> ProxyError:
        return response.parse_error(status, body, content_type)

    def stream_translator(self, call: Call, include_usage: bool, keep_payload: bool) -> Any:
        if self._ollama(call):
            return _ollama.OllamaStream(call, include_usage, keep_payload, self.name)
        if call.route_type == CHAT:
            return MistralChatStream(include_usage, keep_payload)
        return MistralTextStream(call, include_usage, keep_payload)


MISTRAL = register(Mistral())
