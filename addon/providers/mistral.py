"""Mistral La Plateforme: OpenAI-shaped chat with a few differences (`mistral_format: openai`, the default), or a
Mistral model served by Ollama (`mistral_format: ollama`, shared with llama2 in _ollama.py).

OpenAI format differences handled here: `seed` is `random_seed`; fields Mistral refuses with a 422 are dropped
(bookkeeping) or refused (behaviour); finish reason `model_length` means `length` and `error` is an error; a stream
carries its usage in the last content chunk, which becomes OpenAI's separate usage chunk when the client asked for
it. Completions are served by the chat endpoint (the prompt as one user message), or by the FIM endpoint
(`/v1/fim/completions`, codestral) when the rule's upstream path names it.
"""

from __future__ import annotations

from typing import Any

from .. import jsonutil
from ..errors import ProxyError, bad_request
from ..openai_format import CHAT, chat_to_completion, single_prompt
from ..openai_format import FINISH_REASONS as OPENAI_FINISH_REASONS
from ..streaming import ChunkWriter, OpenAIPassthrough, stream_error
from ..streams import SSEDecoder, StreamDecodeError
from . import _ollama
from .base import Call, Provider, UpstreamFormatError, UpstreamRequest, build_url, register, upstream_error, url_path

FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "model_length": "length",  # the context window was hit
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
}
FIM_PATH = "/fim/completions"
# OpenAI bookkeeping fields Mistral does not take (it answers 422 to unknown fields): dropped.
_DROPPED = ("user", "store", "metadata", "service_tier", "stream_options")
# OpenAI fields that change the answer and that Mistral has no equivalent for: refused unless neutral.
_UNSUPPORTED = {
    "logprobs": False,
    "top_logprobs": None,
    "logit_bias": None,
    "audio": None,
    "web_search_options": None,
    "functions": None,
    "function_call": None,
    "echo": False,
    "best_of": 1,
}


def finish_reason(reason: Any) -> str | None:
    if reason is None:
        return None
    return FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"


def flatten_content(content: Any) -> tuple[Any, str | None]:
    """Mistral reasoning models answer content as chunks ([{type: thinking|text}]): (text, reasoning)."""
    if not isinstance(content, list):
        return content, None
    texts: list[str] = []
    thinking: list[str] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            texts.append(str(part.get("text") or ""))
        elif part.get("type") == "thinking":
            inner = part.get("thinking")
            if isinstance(inner, str):
                thinking.append(inner)
            elif isinstance(inner, list):
                thinking += [str(p.get("text") or "") for p in inner if isinstance(p, dict)]
    return "".join(texts), "".join(thinking) or None


class Mistral(Provider):
    name = "mistral"
    supports_streaming = True

    @staticmethod
    def _ollama(call: Call) -> bool:
        return call.options.mistral_format == "ollama"

    # ---- to Mistral ----------------------------------------------------------------------------------------

    def build_request(self, call: Call) -> UpstreamRequest:
        if self._ollama(call):
            return _ollama.build_request(call, self.name)
        url = build_url(call.options, "https://api.mistral.ai", "/v1/chat/completions")
        return UpstreamRequest(url=url, body=self._body(call))

    def _body(self, call: Call) -> dict[str, Any]:
        body = call.body
        _ollama.refuse_unsupported(body, self.name, _UNSUPPORTED)
        out = {k: v for k, v in body.items() if k not in _DROPPED}
        if call.options.top_k is not None:
            out.pop("top_k", None)  # a rule's top_k is for providers that have one (as for openai)
        elif body.get("top_k") is not None:
            raise bad_request("'top_k' is not supported by provider mistral", param="top_k")
        if call.route_type == CHAT:
            if any(m.get("role") == "developer" for m in body["messages"]):
                out["messages"] = [
                    {**m, "role": "system"} if m.get("role") == "developer" else m for m in body["messages"]
                ]
        else:
            self._completions_body(call, out)
        out["model"] = call.model
        if body.get("seed") is not None:
            out["random_seed"] = out.pop("seed")
        if body.get("max_completion_tokens") is not None:
            out["max_tokens"] = out.pop("max_completion_tokens")
        out.pop("max_completion_tokens", None)
        out.pop("seed", None)
        out["stream"] = call.stream
        return out

    def _completions_body(self, call: Call, out: dict[str, Any]) -> None:
        body = call.body
        prompt = single_prompt(body)
        for key in ("prompt", "suffix", "echo", "best_of", "logprobs"):
            out.pop(key, None)
        if call.stream and (body.get("n") or 1) > 1:
            raise bad_request("n > 1 cannot be streamed on the completions route of provider mistral", param="n")
        if (url_path(call.options) or "").rstrip("/").endswith(FIM_PATH):
            out["prompt"] = prompt
            if body.get("suffix"):
                out["suffix"] = body["suffix"]
            return
        if body.get("suffix"):
            raise bad_request(
                f"'suffix' needs Mistral's FIM endpoint: set model.options.upstream_path to /v1{FIM_PATH} (codestral)",
                param="suffix",
            )
        out["messages"] = [{"role": "user", "content": prompt}]

    # ---- from Mistral --------------------------------------------------------------------------------------

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
        if self._ollama(call):
            return _ollama.parse_response(call, data)
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise UpstreamFormatError("expected a chat.completion object with 'choices'")
        choices = []
        for choice in data["choices"]:
            if not isinstance(choice, dict):
                raise UpstreamFormatError("expected choices to be objects")
            reason = choice.get("finish_reason")
            if reason == "error":
                raise UpstreamFormatError("mistral stopped generating with finish_reason 'error'")
            choice = {**choice, "finish_reason": finish_reason(reason)}
            message = choice.get("message")
            if isinstance(message, dict) and isinstance(message.get("content"), list):
                text, reasoning = flatten_content(message["content"])
                message = {**message, "content": text}
                if reasoning:
                    message["reasoning_content"] = reasoning
                choice["message"] = message
            choices.append(choice)
        response = {**data, "choices": choices}
        if call.route_type != CHAT and any("message" in c for c in choices):
            return chat_to_completion(response)
        return response

    def parse_error(self, status: int, body: bytes, content_type: str) -> ProxyError:
        err = upstream_error(status, body, content_type, self.name)
        try:
            data = jsonutil.loads(body) if body else None
        except ValueError:
            return err
        if isinstance(data, dict):
            # FastAPI validation errors: {"detail": [...]}, sometimes inside {"object": "error", "message": {...}}
            detail = data.get("detail")
            if detail is None and isinstance(data.get("message"), dict):
                detail = data["message"].get("detail")
            if isinstance(detail, list) and detail:
                err.message = "; ".join(_detail_text(d) for d in detail)
                first = detail[0] if isinstance(detail[0], dict) else {}
                err.param = _loc(first.get("loc")) or err.param
            elif isinstance(detail, str):
                err.message = detail
        return err

    def stream_translator(self, call: Call, include_usage: bool, keep_payload: bool) -> Any:
        if self._ollama(call):
            return _ollama.OllamaStream(call, include_usage, keep_payload, self.name)
        if call.route_type == CHAT:
            return MistralChatStream(include_usage, keep_payload)
        return MistralTextStream(call, include_usage, keep_payload)


def _loc(loc: Any) -> str | None:
    if not isinstance(loc, list):
        return None
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or None


def _detail_text(d: Any) -> str:
    if not isinstance(d, dict):
        return str(d)
    loc = _loc(d.get("loc"))
    msg = str(d.get("msg") or d.get("message") or jsonutil.dumps_str(d))
    return f"{loc}: {msg}" if loc else msg


def _stream_error(obj: dict[str, Any]) -> ProxyError:
    """An error event in a Mistral stream: OpenAI-style {"error": {...}} or Mistral's {"object": "error", ...}."""
    err = obj.get("error") if isinstance(obj.get("error"), dict) else obj
    message = err.get("message") if isinstance(err, dict) else obj.get("error")
    if not isinstance(message, str):
        message = jsonutil.dumps_str(message) if message is not None else "mistral stream error"
    etype = err.get("type") if isinstance(err, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    return stream_error(
        message, type=etype if isinstance(etype, str) else None, code=str(code) if code is not None else "stream_error"
    )


# --------------------------------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------------------------------


class MistralChatStream(OpenAIPassthrough):
    """Mistral's chat stream is OpenAI's format: passed through event by event, except the events that need a fix
    (re-serialised, only those): finish reasons mapped, content chunks flattened, and the usage that Mistral puts
    in the last content chunk moved to a usage-only chunk before [DONE] when the client asked for it."""

    __slots__ = ("_include_usage", "_usage_chunk")

    def __init__(self, include_usage: bool, keep_payload: bool) -> None:
        super().__init__(CHAT, not include_usage, keep_payload)
        self._include_usage = include_usage
        self._usage_chunk = b""

    def _event(self, data: str) -> bytes:
        if self._done:
            return b""
        if data == "[DONE]":
            return self._usage_chunk + super()._event(data)
        try:
            obj = jsonutil.loads(data)
        except ValueError:
            return self._fail("mistral sent an event that is not JSON")
        if not isinstance(obj, dict):
            return b""
        if "error" in obj or obj.get("object") == "error":
            self.result.error = _stream_error(obj)
            self._done = True
            return b"data: " + self.result.error.body() + b"\n\n"
        changed = failed = False
        choices = obj.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            reason = choice.get("finish_reason")
            if reason == "error":
                choice["finish_reason"] = None
                changed = failed = True
            elif reason is not None and reason not in OPENAI_FINISH_REASONS:
                choice["finish_reason"] = finish_reason(reason)
                changed = True
            delta = choice.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("content"), list):
                delta["content"], reasoning = flatten_content(delta["content"])
                if reasoning:
                    delta["reasoning_content"] = reasoning
                changed = True
        self._capture(obj)
        usage = obj.get("usage")
        if isinstance(usage, dict):
            if choices:
                # Mistral's usage rides on the last content chunk; OpenAI's comes alone, after the finish chunk.
                if self._include_usage:
                    obj["usage"] = None
                    head = {k: obj.get(k) for k in ("id", "object", "created", "model")}
                    usage_chunk = {**head, "choices": [], "usage": usage}
                    self._usage_chunk = b"data: " + jsonutil.dumps(usage_chunk) + b"\n\n"
                else:
                    del obj["usage"]
                changed = True
            elif not self._include_usage:
                return b""
        out = b"data: " + jsonutil.dumps(obj) + b"\n\n" if changed else f"data: {data}\n\n".encode()
        if failed:
            out += self._fail("mistral stopped generating with finish_reason 'error'")
        return out


class MistralTextStream:
    """The completions route: Mistral's chat (or FIM) stream, reshaped as OpenAI text_completion chunks."""

    __slots__ = ("_decoder", "_done", "_finish", "_started", "_usage", "out", "result")

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool) -> None:
        self.out = ChunkWriter(call.route_type, call.model or "", include_usage, keep_payload)
        self.result = self.out.result
        self._decoder = SSEDecoder()
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._started = False
        self._done = False

    def feed(self, chunk: bytes) -> bytes:
        if self._done:
            return b""
        try:
            events = self._decoder.feed(chunk)
        except StreamDecodeError as e:
            return self._fail(f"mistral stream is malformed: {e}")
        return b"".join(self._event(e.data) for e in events)

    def finish(self) -> bytes:
        if self._done:
            return b""
        out = b"".join(self._event(e.data) for e in self._decoder.flush())
        if not self._done:
            out += self._fail("mistral stream ended before [DONE]")
        return out

    def _fail(self, message: str) -> bytes:
        self._done = True
        return self.out.error(stream_error(message))

    def _event(self, data: str) -> bytes:
        if self._done:
            return b""
        if data == "[DONE]":
            self._done = True
            return self.out.finish(self._finish or "stop", self._usage)
        try:
            obj = jsonutil.loads(data)
        except ValueError:
            return self._fail("mistral sent an event that is not JSON")
        if not isinstance(obj, dict):
            return b""
        if "error" in obj or obj.get("object") == "error":
            self._done = True
            return self.out.error(_stream_error(obj))
        if not self._started:
            self._started = True
            self.out.set_model(obj.get("model"))
        out = b""
        for choice in obj.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            text = flatten_content(delta.get("content"))[0] if isinstance(delta, dict) else choice.get("text")
            if isinstance(text, str):
                out += self.out.text(text)
            reason = choice.get("finish_reason")
            if reason == "error":
                return out + self._fail("mistral stopped generating with finish_reason 'error'")
            if reason is not None:
                self._finish = finish_reason(reason)
        if isinstance(obj.get("usage"), dict):
            self._usage = obj["usage"]
        return out


MISTRAL = register(Mistral())
