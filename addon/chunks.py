"""What a stream becomes on the client's side: the writer every provider translator emits through (the interface,
and ChunkWriter, the OpenAI one), and the StreamResult that feeds the audit record. Pure code."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from . import jsonutil
from .errors import ProxyError
from .openai_format import CHAT, new_id, prompt_details

DONE = b"data: [DONE]\n\n"


@dataclass(slots=True)
class StreamResult:
    """What the audit record needs from a stream, filled in as it passes."""

    model: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None  # the counts as they arrive, not only at the end: a cut stream keeps them
    first_token_at: float | None = None
    error: ProxyError | None = None
    completed: bool = False  # the upstream ended its stream properly
    text: list[str] | None = None  # assembled content, only when payloads are recorded
    tool_calls: list[dict[str, Any]] | None = None
    reasoning: list[str] | None = None
    # The stop sequence that ended the answer, where the provider says one did ("" when it does not say which): the
    # standard extension of a stream, read by client formats that report it (set before `finish`).
    stop_sequence: str | None = None

    # The bookkeeping every client format's writer does as it writes (the record's view of the stream).
    def note_text(self, text: str) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.time()
        if self.text is not None:
            self.text.append(text)

    def note_reasoning(self, text: str) -> None:
        if self.reasoning is not None:
            self.reasoning.append(text)

    def note_call(self, call_id: str, name: str) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.time()
        if self.tool_calls is not None:
            self.tool_calls.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": ""}})

    def note_arguments(self, index: int, fragment: str) -> None:
        if self.tool_calls is not None and index < len(self.tool_calls):
            self.tool_calls[index]["function"]["arguments"] += fragment

    def note_finish(self, reason: str | None, usage: dict[str, Any] | None) -> None:
        """The stream ended properly; a final usage of None keeps the counts noted before."""
        self.finish_reason = reason
        if usage is not None:
            self.usage = usage
        self.completed = True

    def assembled(self, route_type: str, id: str) -> dict[str, Any] | None:
        """The whole answer as one OpenAI response object, for the audit record."""
        if self.text is None:
            return None
        text = "".join(self.text)
        if route_type == CHAT:
            message: dict[str, Any] = {"role": "assistant", "content": text if text or not self.tool_calls else None}
            if self.tool_calls:
                message["tool_calls"] = self.tool_calls
            if self.reasoning:
                message["reasoning_content"] = "".join(self.reasoning)
            choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": self.finish_reason}
            obj = "chat.completion"
        else:
            choice = {"index": 0, "text": text, "finish_reason": self.finish_reason}
            obj = "text_completion"
        out: dict[str, Any] = {"id": id, "object": obj, "model": self.model, "choices": [choice]}
        if self.usage is not None:
            out["usage"] = self.usage
        return out


class StreamWriter(Protocol):
    """What a provider's stream translator emits through, whatever the client's format: each call returns the
    bytes of that format's events (empty when the format has nothing to say), and `result` feeds the record."""

    result: StreamResult

    def set_model(self, model: str | None) -> None: ...

    def role(self) -> bytes: ...

    def text(self, text: str) -> bytes: ...

    def reasoning(self, text: str) -> bytes: ...

    def reasoning_signature(self, signature: str) -> bytes:
        """The provider's signature of the reasoning just streamed (where the provider signs its reasoning),
        which a client must send back with it; formats without a place for it say nothing."""
        ...

    def reasoning_redacted(self, data: str) -> bytes:
        """A reasoning block the provider redacted (encrypted, Claude's redacted_thinking), which a client must send
        back unchanged; formats without a place for it say nothing."""
        ...

    def tool_call_start(self, index: int, call_id: str, name: str) -> bytes: ...

    def tool_call_arguments(self, index: int, fragment: str) -> bytes: ...

    def note_usage(self, usage: dict[str, Any] | None) -> None: ...

    def finish(self, reason: str | None, usage: dict[str, Any] | None) -> bytes: ...

    def error(self, err: ProxyError) -> bytes: ...


class ChunkWriter:
    """Emits OpenAI stream events (`chat.completion.chunk` or `text_completion`) for one response.

    The constant part of every chunk is serialised once; a text delta costs one serialisation of its text.
    """

    __slots__ = ("_head", "_text_tail", "chat", "id", "include_usage", "model", "result")

    def __init__(self, route_type: str, model: str, include_usage: bool, keep_payload: bool) -> None:
        self.chat = route_type == CHAT
        self.id = new_id("chatcmpl" if self.chat else "cmpl")
        self.model = model
        self.include_usage = include_usage
        self.result = StreamResult(model=model)
        if keep_payload:
            self.result.text = []
            if self.chat:
                self.result.tool_calls = []
                self.result.reasoning = []
        self._set_head()

    def _set_head(self) -> None:
        obj = "chat.completion.chunk" if self.chat else "text_completion"
        head = jsonutil.dumps({"id": self.id, "object": obj, "created": int(time.time()), "model": self.model})
        choices = b'"choices":[{"index":0,"delta":{"content":' if self.chat else b'"choices":[{"text":'
        self._head = b"data: " + head[:-1] + b"," + choices
        usage_null = b',"usage":null' if self.include_usage else b""
        if self.chat:
            self._text_tail = b'},"logprobs":null,"finish_reason":null}]' + usage_null + b"}\n\n"
        else:
            self._text_tail = b',"index":0,"logprobs":null,"finish_reason":null}]' + usage_null + b"}\n\n"

    def set_model(self, model: str | None) -> None:
        """The upstream's own model name, when it tells us before the first chunk."""
        if model and model != self.model:
            self.model = model
            self.result.model = model
            self._set_head()

    def _chunk(self, choice: dict[str, Any] | None, usage: Any = None, with_usage: bool = False) -> bytes:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [choice] if choice is not None else [],
        }
        if self.include_usage or with_usage:
            body["usage"] = usage
        return b"data: " + jsonutil.dumps(body) + b"\n\n"

    def role(self) -> bytes:
        if not self.chat:
            return b""
        return self._chunk(
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
        )

    def text(self, text: str) -> bytes:
        if not text:
            return b""
        if self.result.first_token_at is None:
            self.result.first_token_at = time.time()
        if self.result.text is not None:
            self.result.text.append(text)
        return self._head + jsonutil.dumps(text) + self._text_tail

    def reasoning(self, text: str) -> bytes:
        if not text or not self.chat:
            return b""
        if self.result.reasoning is not None:
            self.result.reasoning.append(text)
        return self._chunk({"index": 0, "delta": {"reasoning_content": text}, "logprobs": None, "finish_reason": None})

    def reasoning_signature(self, signature: str) -> bytes:
        return b""  # OpenAI's format has no place for it

    def reasoning_redacted(self, data: str) -> bytes:
        return b""  # nor for this

    def tool_call_start(self, index: int, call_id: str, name: str) -> bytes:
        if self.result.first_token_at is None:
            self.result.first_token_at = time.time()
        if self.result.tool_calls is not None:
            self.result.tool_calls.append(
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
            )
        delta = {
            "tool_calls": [
                {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
            ]
        }
        return self._chunk({"index": 0, "delta": delta, "logprobs": None, "finish_reason": None})

    def tool_call_arguments(self, index: int, fragment: str) -> bytes:
        if not fragment:
            return b""
        calls = self.result.tool_calls
        if calls is not None and index < len(calls):
            calls[index]["function"]["arguments"] += fragment
        delta = {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
        return self._chunk({"index": 0, "delta": delta, "logprobs": None, "finish_reason": None})

    def function_call_delta(self, name: str | None = None, arguments: str = "") -> bytes:
        """A deprecated `delta.function_call` fragment (clients of the `functions` API): name first, then the
        arguments in pieces."""
        function_call: dict[str, Any] = {"arguments": arguments}
        if name is not None:
            function_call = {"name": name, "arguments": arguments}
        return self._chunk(
            {"index": 0, "delta": {"function_call": function_call}, "logprobs": None, "finish_reason": None}
        )

    def note_usage(self, usage: dict[str, Any] | None) -> None:
        """Usage that arrived before the end of the stream goes into the record at once, so a stream cut off
        later (by the client, the upstream or the proxy) is recorded with it. The client sees nothing of it
        here: its usage chunk still comes only with `finish`. None (nothing counted) changes nothing."""
        if usage is not None:
            self.result.usage = usage

    def finish(self, reason: str | None, usage: dict[str, Any] | None) -> bytes:
        """The finish chunk, the usage chunk when the client asked for it, and [DONE]. A final usage of None
        keeps in the record what `note_usage` had recorded (the client's usage chunk says null, as it did)."""
        self.result.finish_reason = reason
        self.note_usage(usage)
        self.result.completed = True
        if self.chat:
            choice = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}
        else:
            choice = {"index": 0, "text": "", "logprobs": None, "finish_reason": reason}
        out = self._chunk(choice)
        if self.include_usage:
            out += self._chunk(None, usage, with_usage=True)
        return out + DONE

    def error(self, err: ProxyError) -> bytes:
        """An OpenAI-style error event (the SDKs raise on it); the stream ends after it."""
        self.result.error = err
        return b"data: " + jsonutil.dumps(err.envelope()) + b"\n\n"


def stream_error_event(result: StreamResult, err: ProxyError) -> bytes:
    """An OpenAI-style error event that ends a stream; the result keeps the error for the record."""
    result.error = err
    return b"data: " + jsonutil.dumps(err.envelope()) + b"\n\n"


def usage_so_far(
    prompt_tokens: int, completion_tokens: int | None, cached_tokens: int | None = None, cache_write: int | None = None
) -> dict[str, Any]:
    """OpenAI usage of a stream that has not ended: the prompt count has arrived, the completion count may not
    have (null then, never a guess); total_tokens is the sum of the counts known, so it stays consistent."""
    out: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + (completion_tokens or 0),
    }
    details = prompt_details(cached_tokens, cache_write)
    if details:
        out["prompt_tokens_details"] = details
    return out


def stream_error(message: str, *, status: int = 502, code: str = "stream_error", type: str | None = None) -> ProxyError:
    return ProxyError(status, message, code=code, type=type or "server_error")
