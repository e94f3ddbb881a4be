"""Streams: the OpenAI-format stream of TGI's Messages API / the router (passed through, mended), and TGI's
native /generate_stream (translated to OpenAI text_completion chunks)."""

from __future__ import annotations

import json
from typing import Any

from ... import jsonutil
from ...errors import ProxyError
from ...openai_format import CHAT, new_id, stop_list
from ...streaming import OpenAIPassthrough, SSETranslator
from ...streams import SSEEvent
from ..base import Call
from .common import DEFAULT_MODEL, _held_back, _native_usage, _strip_stop, finish_reason, new_tool_call_id
from .errors import _stream_error


class HFOpenAIStream(OpenAIPassthrough):
    """TGI's / the router's OpenAI-format stream, passed through event by event with the ids made non-empty,
    finish reasons mapped to OpenAI's and error events put in the OpenAI envelope. TGI writes `data:` without
    a space; the client gets the usual `data: `.

    Tool-call deltas are passed in OpenAI's shape: older TGI sends `tool_calls` as one object, not an array, with
    an empty id and a null name after the first delta; the first delta of each call gets an id (synthesised when
    empty) and `type: function`, later ones lose their empty id and null name (the SDK's accumulator would
    otherwise concatenate ids), and `eos_token`/`stop` after tool calls is `tool_calls`."""

    __slots__ = ("_id", "_tool_ids")
    error_passthrough = False

    def __init__(self, route_type: str, hide_usage_chunk: bool, keep_payload: bool) -> None:
        super().__init__(route_type, hide_usage_chunk, keep_payload)
        self._id = new_id("chatcmpl" if route_type == CHAT else "cmpl")
        self._tool_ids: dict[tuple[Any, Any], str] = {}  # (choice index, tool-call index) -> id

    def _tool_deltas(self, choice_index: Any, deltas: Any) -> list[Any]:
        out = []
        for d in deltas if isinstance(deltas, list) else [deltas]:
            if not isinstance(d, dict):
                continue
            d = {**d, "index": d.get("index", 0)}
            fn = d.get("function") if isinstance(d.get("function"), dict) else {}
            arguments = fn.get("arguments")
            if arguments is not None and not isinstance(arguments, str):
                fn = {**fn, "arguments": json.dumps(arguments)}
            key = (choice_index, d["index"])
            if key not in self._tool_ids:
                self._tool_ids[key] = d.get("id") or new_tool_call_id()
                d.update(id=self._tool_ids[key], type="function")
                d["function"] = {**fn, "name": fn.get("name") or "", "arguments": fn.get("arguments") or ""}
            else:
                if not d.get("id") or d["id"] == self._tool_ids[key]:
                    d.pop("id", None)
                if not d.get("type"):
                    d.pop("type", None)
                d["function"] = {k: v for k, v in fn.items() if v is not None and not (k == "name" and not v)}
            out.append(d)
        return out

    def _stream_error(self, obj: dict[str, Any]) -> ProxyError:
        return _stream_error(obj)  # in OpenAI's envelope, whatever the upstream's shape

    def _chunk(self, obj: dict[str, Any], data: str) -> bytes:
        changed = False
        if not obj.get("id"):
            obj["id"] = self._id
            changed = True
        for choice in obj.get("choices") or ():
            if isinstance(choice, dict):
                delta = choice.get("delta")
                if isinstance(delta, dict) and delta.get("tool_calls"):
                    delta["tool_calls"] = self._tool_deltas(choice.get("index", 0), delta["tool_calls"])
                    changed = True
                reason = choice.get("finish_reason")
                mapped = finish_reason(reason)
                if mapped == "stop" and any(k[0] == choice.get("index", 0) for k in self._tool_ids):
                    mapped = "tool_calls"
                if mapped != reason:
                    choice["finish_reason"] = mapped
                    changed = True
        self._capture(obj)
        if self.hide_usage_chunk and not obj.get("choices") and obj.get("usage"):
            return b""
        return b"data: " + (json.dumps(obj).encode() if changed else data.encode()) + b"\n\n"


class TGIStream(SSETranslator):
    """TGI `/generate_stream` (and the serverless API's stream) -> OpenAI text_completion chunks.

    Events are `data:{"index","token":{"text","special"},"generated_text","details"}`; the last one carries
    `generated_text` and `details` and the connection then closes: there is no `[DONE]`. Special tokens (e.g.
    `<|eot_id|>`) are not text. TGI leaves the stop sequence that ended generation in the text, OpenAI does
    not: text that could be the start of a stop sequence is held back (at most the longest stop's length)
    until it is known not to be one. The token counts are in the last event's `details` only: a stream cut off
    before it is recorded without usage.
    """

    __slots__ = ("_pending", "_stops")
    provider = "huggingface"

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool) -> None:
        super().__init__(call.route_type, call.model or DEFAULT_MODEL, include_usage, keep_payload)
        self._stops = [s for s in stop_list(call.body) or [] if s]
        self._pending = ""

    def _event(self, sse: SSEEvent) -> bytes:
        data = sse.data
        if self._done:
            return b""
        try:
            event = jsonutil.loads(data)
        except ValueError:
            return self._fail("huggingface sent an event that is not JSON")
        if not isinstance(event, dict):
            return b""
        if "error" in event:
            self._done = True
            return self.out.error(_stream_error(event))
        out = b""
        token = event.get("token")
        if isinstance(token, dict) and not token.get("special"):
            text = token.get("text")
            if isinstance(text, str) and text:
                out += self._text(text)
        details = event.get("details")
        if event.get("generated_text") is not None or details is not None:
            details = details if isinstance(details, dict) else {}
            raw_reason = details.get("finish_reason")
            tail = self._pending
            self._pending = ""
            if raw_reason in (None, "stop_sequence"):
                tail = _strip_stop(tail, self._stops)
            out += self.out.text(tail)
            self._done = True
            out += self.out.finish(finish_reason(raw_reason) or "stop", _native_usage(details))
        return out

    def _text(self, text: str) -> bytes:
        if not self._stops:
            return self.out.text(text)
        pending = self._pending + text
        held = _held_back(pending, self._stops)
        self._pending = pending[len(pending) - held :]
        return self.out.text(pending[: len(pending) - held])
