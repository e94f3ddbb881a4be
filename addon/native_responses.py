"""OpenAI's Responses API passed through to the providers that serve it (Provider.serves_responses; route type
`llm/v1/responses`, as Kong): the client's body goes upstream as it is (with the rule's model and credentials), the
answer and its stream come back unchanged, and usage, model and errors are read on the side for the record (see
addon/native.py). Where the request goes is the provider's (Provider.responses_base / responses_path). Pure code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .native import NativeFormat, NativeRecorder, _body_model, _SSERecorder
from .openai_answer import count
from .providers import Provider
from .spec import ModelOptions


def usage_of(raw: Any) -> dict[str, Any] | None:
    """A Responses usage object as the record's OpenAI usage (prompt/completion tokens and their details)."""
    if not isinstance(raw, dict):
        return None
    prompt, completion = count(raw.get("input_tokens")), count(raw.get("output_tokens"))
    if prompt is None or completion is None:
        return None
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    details = raw.get("input_tokens_details")
    cached = count(details.get("cached_tokens")) if isinstance(details, dict) else None
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    details = raw.get("output_tokens_details")
    reasoning = count(details.get("reasoning_tokens")) if isinstance(details, dict) else None
    if reasoning:
        out["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return out


class ResponsesPassthrough(NativeFormat):
    """The passthrough to one provider that serves the Responses API: where the request goes is the provider's."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.name = provider.name  # its errors, its signing

    def base_url(self, options: ModelOptions) -> str:
        return self.provider.responses_base(options)

    def upstream_path(self, path: str, query: list[tuple[str, str]], options: ModelOptions) -> str:
        return self.provider.responses_path(path, query, options)

    def response_usage(self, data: Any, headers: Mapping[str, str]) -> tuple[dict[str, Any] | None, str | None]:
        if not isinstance(data, dict):
            return None, None
        return usage_of(data.get("usage")), _body_model(data)

    def recorder(self, keep_payload: bool) -> NativeRecorder:
        return ResponsesRecorder(keep_payload)


class ResponsesRecorder(_SSERecorder):
    """Responses SSE: the first delta is the first token; response.completed (or .incomplete / .failed) carries the
    model and the usage; `error` and response.failed are the stream's error."""

    def _event(self, name: str, obj: dict[str, Any]) -> None:
        kind = obj.get("type") or name
        if not isinstance(kind, str):
            return
        if kind.endswith(".delta"):
            self._token()
            if self.keep_payload and kind == "response.output_text.delta" and isinstance(obj.get("delta"), str):
                if self.result.text is None:
                    self.result.text = []
                self.result.text.append(obj["delta"])
        elif kind in ("response.created", "response.completed", "response.incomplete", "response.failed"):
            response = obj.get("response") if isinstance(obj.get("response"), dict) else {}
            if isinstance(response.get("model"), str):
                self.result.model = response["model"]
            usage = usage_of(response.get("usage"))
            if usage is not None:
                self.result.usage = usage
            if kind == "response.completed":
                self.result.completed, self.result.finish_reason = True, "stop"
            elif kind == "response.incomplete":
                self.result.completed, self.result.finish_reason = True, "length"
            elif kind == "response.failed":
                err = response.get("error") if isinstance(response.get("error"), dict) else {}
                self._error(err.get("message") or "response failed")
        elif kind == "error":
            self._error(obj.get("message") or obj)


_PASSTHROUGHS: dict[str, ResponsesPassthrough] = {}


def passthrough_for(provider: Provider) -> ResponsesPassthrough:
    """The Responses passthrough of a provider that serves the Responses API (one per provider, kept)."""
    found = _PASSTHROUGHS.get(provider.name)
    if found is None:
        found = _PASSTHROUGHS[provider.name] = ResponsesPassthrough(provider)
    return found
