"""Cohere: OpenAI chat/completions <-> Cohere's v2 Chat API (`/v2/chat`, the default), and the v1 APIs (`/v1/chat`,
`/v1/generate`) when a rule asks for them: `options.cohere_api: v1`, or an upstream_url/upstream_path ending in
`/v1/chat` or `/v1/generate` (Kong's cohere driver speaks v1, so Kong configurations keep working).

Tools: v2 takes OpenAI-shaped tools and tool calls (`tool_plan` carries the text that leads them). v1 tools are
`parameter_definitions`, its tool calls have no ids: the proxy synthesises `call_...` ids and resolves them back
through the assistant's tool calls in the next turn's history (`tool_results[{call, outputs}]`).

Responses and streams are recognised by their shape, whatever the rule said: a v2 body has a `message` object,
a v1 chat body a `text`, a v1 generate body `generations`; a v2 stream is SSE with `type` in each event, a v1
stream one JSON object per line with `event_type`.

Here: the Provider class (which API, URL, errors); common.py the wire facts the other files share (the APIs,
finish reasons, failed generations, usage, v1 tool calls); request.py what the chat bodies share, request_v2.py
the v2 body, request_v1.py the /v1/chat and /v1/generate bodies; response.py the answer; embeddings.py embed;
stream.py the stream; native.py the `llm_format: cohere` passthrough adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from ...errors import ProxyError, bad_request
from ...openai_format import CHAT, EMBEDDINGS
from ...reasoning import without_control
from ...spec import OptionsModel
from ..base import Call, Provider, UpstreamRequest, build_url, register, upstream_error
from .common import (
    BASE_URL,
    PATHS,
    V1_CHAT,
    V1_GENERATE,
    V2,
    GenerationFailed,
    api_of,
    failure,
    finish_reason,
    usage_of,
    v1_tool_calls,
    v1_usage,
)
from .embeddings import _embeddings_request
from .request import common_body
from .request_v1 import generate_body, v1_chat_body
from .request_v2 import v2_body
from .response import parse_response
from .stream import CohereStream
from .thinking import cohere_thinking

if TYPE_CHECKING:
    from .native import CohereFormat

__all__ = [
    "BASE_URL",
    "COHERE",
    "Cohere",
    "CohereStream",
    "GenerationFailed",
    "api_of",
    "failure",
    "finish_reason",
    "usage_of",
    "v1_tool_calls",
    "v1_usage",
]

# Error codes OpenAI clients recognise, for the statuses Cohere uses that the shared mapping leaves without one.
_ERROR_CODES = {401: "invalid_api_key", 498: "invalid_api_key", 499: "request_cancelled"}


class CohereOptions(OptionsModel):
    embedding_input_type: str | None = None
    wait_for_model: bool | None = None


class Cohere(Provider):
    option_fields = {
        "cohere_api": (Literal["v1", "v2"] | None, None),
        "cohere": (CohereOptions | None, None),
    }
    name = "cohere"
    # image_detail: v2 image_url.detail
    optional_fields = frozenset({"top_k", "image_detail", "reasoning_effort", "thinking"})
    api_base = "https://api.cohere.com"
    price_id = "cohere"
    native_format = "cohere"
    supports_streaming = True

    @property
    def native_adapter(self) -> CohereFormat:  # type: ignore[override]
        """The `llm_format: cohere` adapter (native.py). Imported on first use: its bases live in addon/native.py,
        which imports the providers package (and so this one) before it defines them."""
        from .native import COHERE_FORMAT

        return COHERE_FORMAT

    def requires_model(self, options: Any) -> bool:
        # v2 requires a model; the v1 APIs fall back to Cohere's default model.
        return api_of(options, CHAT) == V2

    def build_request(self, call: Call) -> UpstreamRequest:
        if call.route_type == EMBEDDINGS:
            return _embeddings_request(call)
        api = api_of(call.options, call.route_type)
        if api == V1_GENERATE and call.route_type == CHAT:
            raise bad_request(
                "this route's Cohere endpoint is /v1/generate, which serves completions only: "
                "use /v1/chat or the v2 API for chat",
                param="messages",
            )
        body = common_body(call, api)
        thinking, relaxed = cohere_thinking(call.model, call.body) if api == V2 else (None, without_control(call.body))
        call.dropped.extend(k for k in relaxed if k not in call.dropped)  # v1 has no thinking control
        if thinking:
            body["thinking"] = thinking
        if api == V2:
            body.update(v2_body(call))
        elif api == V1_CHAT:
            body.update(v1_chat_body(call))
        else:
            body.update(generate_body(call))
        body["stream"] = call.stream
        # The operation is the same URL streamed or not (the body says `stream`): nothing to switch.
        url = build_url(call.options, BASE_URL, PATHS[api])
        return UpstreamRequest(url=url, body=body)

    def parse_error(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> ProxyError:
        err = upstream_error(status, body, content_type, self.name)
        if err.code is None:
            err.code = _ERROR_CODES.get(status)
        return err

    def stream_translator(self, call: Call, include_usage: bool, keep_payload: bool) -> CohereStream:
        return CohereStream(call, include_usage, keep_payload)

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
        return parse_response(call, data)


COHERE = register(Cohere())
