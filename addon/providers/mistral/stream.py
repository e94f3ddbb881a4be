"""Mistral's SSE stream -> OpenAI chunks: the chat stream passed through (fixed where needed), the completions
route reshaped as text_completion chunks."""

from __future__ import annotations

from typing import Any

from ... import jsonutil
from ...chunk_reader import OpenAIChunkReader
from ...errors import ProxyError
from ...openai_format import CHAT
from ...openai_format import FINISH_REASONS as OPENAI_FINISH_REASONS
from ...streaming import ChunkWriter, OpenAIPassthrough, stream_error
from ..base import Call
from .ids import new_tool_call_id
from .response import finish_reason, flatten_content


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


class MistralChatStream(OpenAIPassthrough):
    """Mistral's chat stream is OpenAI's format: passed through event by event, except the events that need a fix
    (re-serialised, only those): finish reasons mapped, content chunks flattened, and the usage that Mistral puts
    in the last content chunk moved to a usage-only chunk before [DONE] when the client asked for it (the record
    has that usage as soon as its chunk arrives, so a stream cut before [DONE] keeps it).

    Tool calls (Mistral sends each whole, id, name and arguments in one delta, often several in one delta): each
    gets the OpenAI `index` of its position among the tool calls of its choice, whatever index Mistral gave it (an
    absent or shared index would make the SDK's accumulator merge two calls: a LiteLLM bug), `type: function` and
    string arguments; a `stop` finish after tool calls is `tool_calls`."""

    __slots__ = ("_include_usage", "_tools", "_usage_chunk")

    def __init__(self, include_usage: bool, keep_payload: bool) -> None:
        super().__init__(CHAT, not include_usage, keep_payload)
        self._include_usage = include_usage
        self._usage_chunk = b""
        # per choice index: [calls so far, {upstream index: our index}, [id of each call], our index of the last]
        self._tools: dict[Any, list[Any]] = {}

    def _tool_deltas(self, choice_index: Any, deltas: Any) -> list[dict[str, Any]]:
        state = self._tools.setdefault(choice_index, [0, {}, [], None])
        out = []
        for d in deltas if isinstance(deltas, list) else [deltas]:
            if not isinstance(d, dict):
                continue
            fn = d.get("function") if isinstance(d.get("function"), dict) else {}
            arguments = fn.get("arguments")
            if arguments is not None and not isinstance(arguments, str):
                arguments = jsonutil.dumps_str(arguments)
            call_id, name, up = d.get("id"), fn.get("name"), d.get("index")
            known = state[1].get(up)
            # A new call: a new id (Mistral may give several calls the same index), or a name at a new index.
            new = (known is None or state[2][known] != call_id) if call_id else (bool(name) and known is None)
            if new:
                index = state[0]
                state[0] += 1
                state[1][up] = index
                state[2].append(call_id or new_tool_call_id())
                entry = {"index": index, "id": state[2][index], "type": "function"}
                entry["function"] = {"name": name or "", "arguments": arguments or ""}
            else:
                index = known if known is not None else state[3]
                if index is None:
                    continue  # arguments of no call: nothing to attach them to
                entry = {"index": index, "function": {"arguments": arguments or ""}}
            state[3] = index
            out.append(entry)
        return out

    source = "mistral"
    error_passthrough = False
    object_errors = True

    def _event(self, data: str) -> bytes:
        if data == "[DONE]" and not self._done:
            return self._usage_chunk + super()._event(data)
        return super()._event(data)

    def _stream_error(self, obj: dict[str, Any]) -> ProxyError:
        return _stream_error(obj)  # in OpenAI's envelope, whatever the upstream's shape

    def _chunk(self, obj: dict[str, Any], data: str) -> bytes:
        changed = failed = False
        choices = obj.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            if not isinstance(index, int):
                continue  # not a choice of any answer
            delta = choice.get("delta")
            if isinstance(delta, dict) and delta.get("tool_calls"):
                delta["tool_calls"] = self._tool_deltas(index, delta["tool_calls"])
                changed = True
            reason = choice.get("finish_reason")
            if reason == "error":
                choice["finish_reason"] = None
                changed = failed = True
            elif reason is not None and (not isinstance(reason, str) or reason not in OPENAI_FINISH_REASONS):
                choice["finish_reason"] = finish_reason(reason) if isinstance(reason, str) else "stop"
                changed = True
            if choice.get("finish_reason") == "stop" and index in self._tools:
                choice["finish_reason"] = "tool_calls"
                changed = True
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


class MistralTextStream(OpenAIChunkReader):
    """The completions route: Mistral's chat (or FIM) stream, reshaped as OpenAI text_completion chunks. Its usage
    rides on the last content chunk, before [DONE]: into the record at once (also when that chunk fails)."""

    __slots__ = ()
    provider = "mistral"

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool) -> None:
        super().__init__(ChunkWriter(call.route_type, call.model or "", include_usage, keep_payload))

    def _is_error(self, obj: dict[str, Any]) -> bool:
        return bool(obj.get("error")) or obj.get("object") == "error"

    def _stream_error(self, obj: dict[str, Any]) -> ProxyError:
        return _stream_error(obj)

    def _first(self) -> bytes:
        return b""

    def _choices(self, obj: dict[str, Any]) -> bytes:
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
        return out
