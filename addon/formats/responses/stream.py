"""The Responses stream writer: what provider translators emit (role, text, reasoning, tool calls, finish, error)
as Responses API SSE events, each with its `sequence_number`, in the order openai-python's `responses.stream()`
accumulator and Codex read them (types/responses/response_stream_event.py):

response.created, response.in_progress; per output item response.output_item.added, then
- a message: response.content_part.added, response.output_text.delta..., response.output_text.done,
  response.content_part.done;
- reasoning: response.reasoning_summary_part.added, response.reasoning_summary_text.delta..., .done, part .done;
- a function call: response.function_call_arguments.delta... (each fragment as it arrives), .done;
- a custom tool's call: response.custom_tool_call_input.delta... (the text inside its JSON arguments), .done;
then response.output_item.done; and last response.completed (or response.incomplete for a length stop) carrying
the whole response with its usage. A failure is an `error` event followed by response.failed.

The Responses protocol repeats each item whole in its .done events and the whole response at the end, so the
writer keeps the answer's text and arguments (and nothing else) until the stream ends."""

from __future__ import annotations

import time
from typing import Any

from ... import jsonutil
from ...chunks import StreamResult
from ...errors import ProxyError
from . import errors
from .custom import InputStream
from .response import (
    call_item,
    custom_item,
    message_item,
    new_id,
    output_text,
    reasoning_item,
    skeleton,
    status,
    usage,
)


def event(kind: str, seq: int, data: dict[str, Any]) -> bytes:
    body = {"type": kind, "sequence_number": seq, **data}
    return b"event: " + kind.encode() + b"\ndata: " + jsonutil.dumps(body) + b"\n\n"


class _Item:
    """One output item being streamed: its place, id and the pieces of its text or arguments."""

    __slots__ = ("blocks", "call_id", "id", "index", "input", "kind", "name", "pieces", "signed")

    def __init__(self, kind: str, index: int, item_id: str, call_id: str = "", name: str = "") -> None:
        self.kind, self.index, self.id = kind, index, item_id
        self.call_id, self.name = call_id, name
        self.pieces: list[str] = []
        self.input = InputStream() if kind == "custom_tool_call" else None
        self.blocks: list[dict[str, Any]] = []  # a reasoning item's signed blocks (sealed in encrypted_content)
        self.signed = 0  # the pieces the blocks so far hold

    def sign(self, signature: str) -> None:
        """The provider's signature ends the reasoning block made of the pieces since the last one."""
        text = "".join(self.pieces[self.signed :])
        self.blocks.append({"type": "thinking", "thinking": text, "signature": signature})
        self.signed = len(self.pieces)

    def final(self) -> dict[str, Any]:
        text = "".join(self.pieces)
        if self.kind == "message":
            return message_item(self.id, text)
        if self.kind == "reasoning":
            return reasoning_item(self.id, text, self.blocks)
        if self.kind == "custom_tool_call":
            return custom_item(self.id, self.call_id, self.name, text)
        return call_item(self.id, self.call_id, self.name, text)


class ResponsesWriter:
    chat = True  # the chat route's writer (translators ask, as of ChunkWriter)

    def __init__(self, route_type: str, model: str, include_usage: bool, keep_payload: bool) -> None:
        self.id = new_id("resp")
        self.model = model
        self.created_at = int(time.time())
        self.result = StreamResult(model=model)
        if keep_payload:
            self.result.text, self.result.tool_calls, self.result.reasoning = [], [], []
        self._seq = -1
        self._started = False
        self._open: _Item | None = None  # the open message or reasoning item
        self._tools: dict[int, _Item] = {}  # tool-call index -> its open item
        self._call_ids: set[str] = set()
        self._output: list[dict[str, Any] | None] = []  # by output_index; None until the item is done
        self.echo: dict[str, Any] = {}  # request fields the response objects repeat (set by the route)
        self.custom_tools: frozenset[str] = frozenset()  # the request's custom tools (set by the route)
        self.final: dict[str, Any] | None = None  # the whole response, once the stream has ended

    def set_model(self, model: str | None) -> None:
        if model and not self._started:
            self.model = self.result.model = model

    def _event(self, kind: str, **data: Any) -> bytes:
        self._seq += 1
        return event(kind, self._seq, data)

    def _response(self, state: str) -> dict[str, Any]:
        return {**skeleton(self.id, self.model, self.created_at, state), **self.echo}

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        response = self._response("in_progress")
        return self._event("response.created", response=response) + self._event(
            "response.in_progress", response=response
        )

    def role(self) -> bytes:
        return self._start()

    def _add(self, item: _Item, shape: dict[str, Any]) -> bytes:
        self._output.append(None)
        return self._event("response.output_item.added", output_index=item.index, item=shape)

    def _done(self, item: _Item) -> bytes:
        final = self._output[item.index] = item.final()
        return self._event("response.output_item.done", output_index=item.index, item=final)

    def _close(self) -> bytes:
        item, self._open = self._open, None
        if item is None:
            return b""
        text = "".join(item.pieces)
        where = {"item_id": item.id, "output_index": item.index}
        if item.kind == "message":
            part = output_text(text)
            out = self._event("response.output_text.done", content_index=0, text=text, logprobs=[], **where)
            out += self._event("response.content_part.done", content_index=0, part=part, **where)
        else:
            part = {"type": "summary_text", "text": text}
            out = self._event("response.reasoning_summary_text.done", summary_index=0, text=text, **where)
            out += self._event("response.reasoning_summary_part.done", summary_index=0, part=part, **where)
        return out + self._done(item)

    def _open_item(self, kind: str) -> bytes:
        out = self._start() + self._close()
        item = self._open = _Item(kind, len(self._output), new_id("msg" if kind == "message" else "rs"))
        where = {"item_id": item.id, "output_index": item.index}
        if kind == "message":
            shape = {"id": item.id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
            out += self._add(item, shape)
            return out + self._event("response.content_part.added", content_index=0, part=output_text(""), **where)
        out += self._add(item, {"id": item.id, "type": "reasoning", "summary": []})
        part = {"type": "summary_text", "text": ""}
        return out + self._event("response.reasoning_summary_part.added", summary_index=0, part=part, **where)

    def text(self, text: str) -> bytes:
        if not text:
            return b""
        self.result.note_text(text)
        return self._delta("message", "response.output_text.delta", "content_index", text)

    def reasoning(self, text: str) -> bytes:
        if not text:
            return b""
        self.result.note_reasoning(text)
        return self._delta("reasoning", "response.reasoning_summary_text.delta", "summary_index", text)

    def reasoning_signature(self, signature: str) -> bytes:
        """Kept with the reasoning item (sealed in its encrypted_content when the item is done)."""
        if not signature:
            return b""
        out = self._reasoning_item()
        assert self._open is not None
        self._open.sign(signature)
        return out

    def reasoning_redacted(self, data: str) -> bytes:
        """Kept with the reasoning item, as reasoning_signature."""
        if not data:
            return b""
        out = self._reasoning_item()
        assert self._open is not None
        self._open.blocks.append({"type": "redacted_thinking", "data": data})
        return out

    def _reasoning_item(self) -> bytes:
        """The open reasoning item: opened (after closing another open item) unless one is."""
        return b"" if self._open is not None and self._open.kind == "reasoning" else self._open_item("reasoning")

    def _delta(self, kind: str, name: str, part_key: str, text: str) -> bytes:
        """A text delta of the open item of `kind` (opened first if another kind, or none, is open)."""
        out = b"" if self._open is not None and self._open.kind == kind else self._open_item(kind)
        item = self._open
        assert item is not None
        item.pieces.append(text)
        extra: dict[str, Any] = {"logprobs": []} if kind == "message" else {}
        return out + self._event(name, item_id=item.id, output_index=item.index, delta=text, **{part_key: 0}, **extra)

    def tool_call_start(self, index: int, call_id: str, name: str) -> bytes:
        self.result.note_call(call_id, name)
        out = self._start() + self._close()  # text after a tool call opens a new message
        previous = self._tools.pop(index, None)
        if previous is not None:  # the same index started again: the earlier call is complete
            out += self._finish_call(previous)
        custom = name in self.custom_tools
        kind = "custom_tool_call" if custom else "function_call"
        if not call_id or call_id in self._call_ids:  # clients tell calls apart by call_id: never two alike
            call_id = new_id("call")
        self._call_ids.add(call_id)
        item = _Item(kind, len(self._output), new_id("ctc" if custom else "fc"), call_id, name)
        self._tools[index] = item
        if custom:
            shape = {"id": item.id, "type": kind, "call_id": item.call_id, "name": name, "input": ""}
        else:
            shape = call_item(item.id, item.call_id, name, "", "in_progress")
        return out + self._add(item, shape)

    def tool_call_arguments(self, index: int, fragment: str) -> bytes:
        item = self._tools.get(index)
        if not fragment or item is None:
            return b""
        item.pieces.append(fragment)
        self.result.note_arguments(index, fragment)
        if item.input is not None:  # a custom tool: the text inside its JSON arguments, as it arrives
            text = item.input.feed(fragment)
            where = {"item_id": item.id, "output_index": item.index}
            return self._event("response.custom_tool_call_input.delta", delta=text, **where) if text else b""
        return self._event(
            "response.function_call_arguments.delta", item_id=item.id, output_index=item.index, delta=fragment
        )

    def _finish_call(self, item: _Item) -> bytes:
        if item.input is not None:
            text, rest = item.input.rest()
            where = {"item_id": item.id, "output_index": item.index}
            out = self._event("response.custom_tool_call_input.delta", delta=rest, **where) if rest else b""
            out += self._event("response.custom_tool_call_input.done", input=text, **where)
            return out + self._done(item)
        out = self._event(
            "response.function_call_arguments.done",
            item_id=item.id,
            output_index=item.index,
            name=item.name,
            arguments="".join(item.pieces),
        )
        return out + self._done(item)

    def note_usage(self, final_usage: dict[str, Any] | None) -> None:
        if final_usage is not None:
            self.result.usage = final_usage

    def finish(self, reason: str | None, final_usage: dict[str, Any] | None) -> bytes:
        self.result.note_finish(reason, final_usage)
        out = self._start() + self._close()
        for item in sorted(self._tools.values(), key=lambda i: i.index):
            out += self._finish_call(item)
        self._tools.clear()
        state, details = status(reason)
        response = self._response(state)
        response["incomplete_details"] = details
        response["output"] = [item for item in self._output if item is not None]
        response["usage"] = usage(self.result.usage)
        kind = "response.completed" if state == "completed" else "response.incomplete"
        self.final = response
        return out + self._event(kind, response=response)

    def error(self, err: ProxyError) -> bytes:
        self.result.error = err
        self._seq += 1
        out = errors.event(err, self._seq)
        response = self._response("failed")
        response["error"] = errors.response_error(err)
        response["output"] = [item for item in self._output if item is not None]
        return out + self._event("response.failed", response=response)
