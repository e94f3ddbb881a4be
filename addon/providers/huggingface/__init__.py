"""Hugging Face: Text Generation Inference (TGI), the serverless Inference API and the HF router.

- Chat (`llm/v1/chat`) goes to the OpenAI-compatible Messages API, `/v1/chat/completions` of TGI or of the router
  (default `https://router.huggingface.co`). It is a passthrough, like the OpenAI provider, with TGI's quirks
  smoothed out: `stop` must be an array, `top_p` must be strictly between 0 and 1, `max_completion_tokens` is
  unknown to TGI, response and chunk ids are empty strings, and `eos_token`/`stop_sequence` finish reasons leak.
- Completions (`llm/v1/completions`) go to the native text-generation API: TGI `/generate` and
  `/generate_stream`, or, with no `upstream_url`, the serverless `https://api-inference.huggingface.co/models/{model}`.
  A whole `upstream_url` ending in `/v1/completions` selects TGI's OpenAI-compatible completions instead.

Sampling (TGI validates `temperature > 0` and `0 < top_p < 1`): OpenAI's `temperature: 0` and `top_p: 0` both mean
greedy decoding. Natively that is `do_sample: false` with no temperature/top_p/top_k; on the Messages API it is
`temperature: 0` (TGI turns that into greedy itself) with no `top_p`. `top_p: 1` is "no nucleus filtering" and is
omitted. Any other request samples (`do_sample: true`), as OpenAI does by default.

Here: the Provider class (which API, URL, errors); common.py the wire facts the other modules share; urls.py the
mode and URL of a call; request.py the OpenAI-compatible and native bodies; response.py the answers; errors.py the
error bodies; stream.py both streams; embeddings.py /v1/embeddings and TEI's /embed; native.py the
`llm_format: huggingface` passthrough adapter.

Pure code: no mitmproxy, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...errors import ProxyError
from ...extensions import BOOKKEEPING
from ...openai_format import EMBEDDINGS
from ...spec import OptionsModel
from ..base import Call, Provider, UpstreamRequest, build_url, register
from .common import CHAT_PATH, DEFAULT_MODEL, NATIVE, ROUTER_BASE, SERVERLESS_BASE, finish_reason
from .embeddings import _embeddings_request, _embeddings_response
from .errors import _upstream_error
from .request import _native_body, _openai_body
from .response import _parse_native, _parse_openai
from .stream import HFOpenAIStream, TGIStream
from .urls import _hf_headers, _mode, _native_url

if TYPE_CHECKING:
    from ...spec import ModelOptions
    from .native import HuggingFaceFormat

__all__ = [
    "CHAT_PATH",
    "DEFAULT_MODEL",
    "HUGGINGFACE",
    "ROUTER_BASE",
    "SERVERLESS_BASE",
    "HFOpenAIStream",
    "HuggingFace",
    "TGIStream",
    "finish_reason",
]


class HuggingFaceOptions(OptionsModel):
    use_cache: bool | None = None
    wait_for_model: bool | None = None


class HuggingFace(Provider):
    option_fields = {"huggingface": (HuggingFaceOptions | None, None)}
    name = "huggingface"
    # Its OpenAI-compatible routes take the account fields, participant names and image detail as they are.
    optional_fields = frozenset({"name", "image_detail", *BOOKKEEPING})
    api_base = "https://router.huggingface.co"
    native_format = "huggingface"
    supports_streaming = True

    @property
    def native_adapter(self) -> HuggingFaceFormat:
        """The `llm_format: huggingface` adapter (native.py). Imported on first use: its bases live in
        addon/native.py, which imports the providers package (and so this one) before it defines them."""
        from .native import HUGGINGFACE_FORMAT

        return HUGGINGFACE_FORMAT

    def requires_model(self, options: ModelOptions) -> bool:
        # The router and the serverless API need one; a self-hosted TGI serves the model it loaded.
        return not options.upstream_url

    def build_request(self, call: Call) -> UpstreamRequest:
        if call.route_type == EMBEDDINGS:
            return _embeddings_request(call)
        mode = _mode(call)
        if mode == NATIVE:
            url = _native_url(call)
            return UpstreamRequest(url=url, body=_native_body(call, url))
        url = build_url(call.options, ROUTER_BASE, CHAT_PATH)
        return UpstreamRequest(url=url, body=_openai_body(call), headers=_hf_headers(call.options))

    def stream_translator(self, call: Call, include_usage: bool, keep_payload: bool) -> HFOpenAIStream | TGIStream:
        if _mode(call) == NATIVE:
            return TGIStream(call, include_usage, keep_payload)
        return HFOpenAIStream(call.route_type, not include_usage, keep_payload)

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
        if call.route_type == EMBEDDINGS:
            return _embeddings_response(call, data)
        if _mode(call) == NATIVE:
            return _parse_native(call, data)
        return _parse_openai(call, data)

    def parse_error(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> ProxyError:
        return _upstream_error(status, body, content_type, self.name)


HUGGINGFACE = register(HuggingFace())
