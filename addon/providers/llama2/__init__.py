"""Llama on a self-hosted server (`upstream_url` is required), in one of three formats (`llama2_format`):

- `raw` (default): a text-generation endpoint (TGI `/generate`, Hugging Face `{"inputs": ...}` APIs) given the
  conversation rendered in the Llama 2 `[INST]`/`<<SYS>>` template or the Llama 3 header template
  (`llama_template`), every turn kept, assistant turns included (docs/providers.md §9);
- `ollama`: Ollama's native `/api/chat` and `/api/generate` (shared with mistral in providers/_ollama/);
- `openai`: an OpenAI-compatible server (Ollama `/v1`, vLLM, llama.cpp server): passed through as for openai.

Here: the Provider class, with the `openai` format (a passthrough); templates.py the Llama 2 / Llama 3 prompt
templates; raw.py the `raw` request and answer; stream.py the `raw` (TGI) stream. The `ollama` format lives in
providers/_ollama/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from ...errors import bad_request
from ...openai_format import CHAT, EMBEDDINGS, embeddings_body, embeddings_passthrough, max_tokens_of
from ...reasoning import without_control
from ...spec import RuleSpec
from ...streaming import OpenAIPassthrough
from .. import _ollama
from ..base import Call, Provider, UpstreamFormatError, UpstreamRequest, build_url, register
from .raw import RAW_FINISH_REASONS, parse_raw, raw_parameters, raw_request, raw_stops, raw_usage
from .stream import RawStream
from .templates import raw_prompt, render, render_llama2, render_llama3, strip_echo, strip_stop, template_of

if TYPE_CHECKING:
    from ...spec import ModelOptions

__all__ = [
    "LLAMA2",
    "RAW_FINISH_REASONS",
    "Llama2",
    "RawStream",
    "llama_format",
    "parse_raw",
    "raw_parameters",
    "raw_prompt",
    "raw_request",
    "raw_stops",
    "raw_usage",
    "render",
    "render_llama2",
    "render_llama3",
    "strip_echo",
    "strip_stop",
    "template_of",
]

_CHAT_PATHS = {CHAT: "/v1/chat/completions", "llm/v1/completions": "/v1/completions", EMBEDDINGS: "/v1/embeddings"}


def llama_format(options: ModelOptions) -> str:
    return options.llama2_format or "raw"


# --------------------------------------------------------------------------------------------------------------
# The provider
# --------------------------------------------------------------------------------------------------------------


class Llama2(Provider):
    option_fields = {
        "llama2_format": (Literal["raw", "ollama", "openai"] | None, None),
        "llama_template": (Literal["llama2", "llama3"] | None, None),
    }
    name = "llama2"
    optional_fields = frozenset({"top_k", "reasoning_effort", "thinking"})
    supports_streaming = True

    def check_rule(self, spec: RuleSpec, unset: frozenset[str]) -> str | None:
        if not spec.model.options.upstream_url and "model.options.upstream_url" not in unset:
            return "model.options.upstream_url is required for llama2 (self-hosted)"
        return super().check_rule(spec, unset)

    def embeddings_problem(self, options: ModelOptions) -> str | None:
        if options.llama2_format in (None, "raw"):
            return "provider llama2 has no embeddings API in llama2_format raw (use ollama or openai)"
        return None

    def requires_model(self, options: ModelOptions) -> bool:
        return llama_format(options) != "raw"  # a raw endpoint serves one model, chosen by its URL

    def build_request(self, call: Call) -> UpstreamRequest:
        fmt = llama_format(call.options)
        _ollama.require_upstream_url(call.options, self.name, fmt)
        if call.route_type == EMBEDDINGS:
            return self._embeddings_request(call, fmt)
        if fmt == "ollama":
            return _ollama.build_request(call, self.name)
        if fmt == "openai":
            return self._openai_request(call)
        call.dropped.extend(k for k in without_control(call.body) if k not in call.dropped)  # raw: no control
        return self._raw_request(call)

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
        fmt = llama_format(call.options)
        if call.route_type == EMBEDDINGS:
            if fmt == "ollama":
                return _ollama.parse_embeddings(call, data)
            return embeddings_passthrough(data, call.model or "", call.body.get("encoding_format"))
        if fmt == "ollama":
            return _ollama.parse_response(call, data)
        if fmt == "openai":
            if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
                raise UpstreamFormatError("expected an OpenAI-format object with 'choices'")
            return data
        return self._parse_raw(call, data)

    def stream_translator(self, call: Call, include_usage: bool, keep_payload: bool) -> Any:
        fmt = llama_format(call.options)
        if fmt == "ollama":
            return _ollama.OllamaStream(call, include_usage, keep_payload, self.name)
        if fmt == "openai":
            return OpenAIPassthrough(call.route_type, not include_usage, keep_payload)
        return RawStream(call, include_usage, keep_payload)

    # ---- embeddings (ollama /api/embed, or an OpenAI-compatible /v1/embeddings) ------------------------------

    def _embeddings_request(self, call: Call, fmt: str) -> UpstreamRequest:
        if fmt == "ollama":
            return _ollama.embeddings_request(call, self.name)
        if fmt != "openai":
            raise bad_request("provider llama2 has no embeddings in llama2_format raw: use ollama or openai")
        url = build_url(call.options, "", _CHAT_PATHS[EMBEDDINGS])
        return UpstreamRequest(url=url, body=embeddings_body(call.body, call.model, self.name, tokens=True))

    # ---- openai format -------------------------------------------------------------------------------------

    def _openai_request(self, call: Call) -> UpstreamRequest:
        body = dict(call.body)
        # OpenAI-compatible servers (vLLM, llama.cpp, Ollama /v1) take reasoning_effort; the extension `thinking`
        # is no OpenAI field: carried by reasoning_effort when the client's format set both, else reported.
        if body.pop("thinking", None) is not None and "reasoning_effort" not in body:
            call.dropped.extend(k for k in without_control(call.body) if k not in call.dropped)
        if call.model:
            body["model"] = call.model
        max_tokens = max_tokens_of(body)
        body.pop("max_completion_tokens", None)
        if max_tokens is not None:
            # Ollama's /v1 reads only max_tokens (a max_completion_tokens would be ignored, the answer unbounded);
            # vLLM and llama.cpp take it too.
            body["max_tokens"] = max_tokens
        body["stream"] = call.stream
        if call.stream:
            # Ollama /v1, vLLM and llama.cpp report usage in a last chunk when asked; the client only sees it if
            # it asked too.
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return UpstreamRequest(url=build_url(call.options, "", _CHAT_PATHS[call.route_type]), body=body)

    # ---- raw format (raw.py) -------------------------------------------------------------------------------

    def _raw_request(self, call: Call) -> UpstreamRequest:
        return raw_request(call)

    def _parse_raw(self, call: Call, data: Any) -> dict[str, Any]:
        return parse_raw(call, data)


LLAMA2 = register(Llama2())
