"""`llm_format: huggingface`: clients of TGI, the serverless Inference API or the router pass through; the
request's model and stream flag, and the answer's usage, model and errors, are read in Hugging Face's own shapes
(see addon/native.py for the passthrough)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ... import jsonutil
from ...errors import ProxyError
from ...native import NativeFormat, NativeRecorder, _body_model, _body_stream, _count, _pair_usage, _SSERecorder
from .common import ROUTER_BASE

if TYPE_CHECKING:
    from ...spec import ModelOptions


class HuggingFaceFormat(NativeFormat):
    name = "huggingface"

    def base_url(self, options: ModelOptions) -> str:
        return ROUTER_BASE

    def model_of(self, path: str, data: Any) -> str | None:
        model = _body_model(data)
        if model is None and "/models/" in path:  # serverless: /models/{org}/{name}
            model = unquote(path.split("/models/", 1)[1].strip("/")) or None
        return model

    def is_stream(self, path: str, query: Sequence[tuple[str, str]], data: Any) -> bool:
        return _body_stream(data) or path.rstrip("/").endswith("/generate_stream")

    def response_usage(self, data: Any, headers: Mapping[str, str]) -> tuple[dict[str, Any] | None, str | None]:
        if isinstance(data, list) and data:
            data = data[0]
        if not isinstance(data, dict):
            return None, None
        usage = _openai_usage(data.get("usage")) or _tgi_usage(data.get("details"), headers)
        return usage, _body_model(data)

    def recorder(self, keep_payload: bool) -> NativeRecorder:
        return HuggingFaceRecorder(keep_payload)

    def error_body(self, err: ProxyError) -> tuple[bytes, dict[str, str]]:
        return jsonutil.dumps({"error": err.message, "error_type": err.code or err.type}), {}


def _openai_usage(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    usage = _pair_usage(raw.get("prompt_tokens"), raw.get("completion_tokens"))
    if usage is not None:
        return {**raw, **usage}
    return None


def _tgi_usage(details: Any, headers: Mapping[str, str] | None) -> dict[str, Any] | None:
    """TGI `details` (generated_tokens; input_length in stream details, or the prefill list), then TGI's
    x-prompt-tokens / x-generated-tokens response headers."""
    generated: Any = None
    prompt: Any = None
    if isinstance(details, dict):
        generated = details.get("generated_tokens")
        prompt = details.get("input_length")
        prefill = details.get("prefill")
        if _count(prompt) is None and isinstance(prefill, list) and prefill:
            prompt = len(prefill)
    if headers is not None:
        if _count(prompt) is None:
            prompt = headers.get("x-prompt-tokens")
        if _count(generated) is None:
            generated = headers.get("x-generated-tokens")
    return _pair_usage(prompt, generated)


class HuggingFaceRecorder(_SSERecorder):
    """TGI `generate_stream` (the last event's `details`) or the OpenAI-style Messages API (a `usage` chunk)."""

    def _event(self, name: str, obj: dict[str, Any]) -> None:
        if "error" in obj and not obj.get("choices"):
            self._error(obj.get("error") or obj)
            return
        if isinstance(obj.get("model"), str) and obj["model"]:
            self.result.model = obj["model"]
        if obj.get("token") is not None or obj.get("choices"):
            self._token()
        usage = _openai_usage(obj.get("usage"))
        if usage is not None:
            self.result.usage = usage
        details = obj.get("details")
        if isinstance(details, dict):
            usage = _tgi_usage(details, None)
            if usage is not None:
                self.result.usage = usage
            if details.get("finish_reason"):
                self.result.finish_reason = str(details["finish_reason"])
            self.result.completed = True
        for choice in obj.get("choices") or ():
            if isinstance(choice, dict) and choice.get("finish_reason"):
                self.result.finish_reason = choice["finish_reason"]
        if obj.get("generated_text") is not None:
            self.result.completed = True


HUGGINGFACE_FORMAT = HuggingFaceFormat()
