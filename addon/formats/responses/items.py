"""A Responses request's `instructions` and `input` (a string or a list of items) as Chat messages.

- `message` items (and the short form `{"role", "content"}`): roles user/assistant/system/developer (developer ->
  system, which every provider takes); parts `input_text` and `output_text` -> text, `refusal` -> text,
  `input_image` (an `image_url`, https or a base64 data URL) -> `image_url`; an image by `file_id` and
  `input_file` -> 400 (the proxy has no file store to fetch them from);
- `function_call` -> an assistant message's `tool_calls` (consecutive calls join one assistant turn, with the text
  of the assistant message just before them); `function_call_output` -> a `tool` message;
- `custom_tool_call` / `custom_tool_call_output` (freeform tools, sent as functions of one string argument
  `input`) -> the same;
- `reasoning` items whose `encrypted_content` this proxy sealed (sealed.py) -> the signed reasoning
  (`thinking_blocks`) of the assistant turn that follows them; other reasoning items (a summary only, or OpenAI's
  own encrypted reasoning) are no provider's to take back: dropped and reported;
- any other item (web_search_call, computer_call_output, item_reference...) -> 400 naming it.
"""

from __future__ import annotations

from typing import Any

from ... import jsonutil
from ...openai_format import THINKING_BLOCKS
from .fields import fail, kind_of, optional, typed
from .sealed import unseal

# Items an assistant turn is made of: signed reasoning waits for the next of them.
_ASSISTANT_ITEMS = frozenset({"reasoning", "function_call", "custom_tool_call"})

ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
CUSTOM_ARGUMENT = "input"  # the one string argument a custom (freeform) tool becomes


def custom_arguments(text: str) -> str:
    return jsonutil.dumps_str({CUSTOM_ARGUMENT: text})


class Items:
    """The Chat messages of one request, built item by item; what cannot be carried goes to `dropped`."""

    def __init__(self, dropped: list[str]) -> None:
        self.dropped = dropped
        self.messages: list[dict[str, Any]] = []
        self._reasoning: list[dict[str, Any]] = []  # signed reasoning waiting for its assistant turn

    def drop(self, what: str) -> None:
        if what not in self.dropped:
            self.dropped.append(what)

    def instructions(self, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, str):
            if value:
                self.messages.append({"role": "system", "content": value})
            return
        # The SDK's Response echoes instructions as a list of input items: accepted as such.
        self.items(value, "instructions")

    def input(self, value: Any) -> None:
        if isinstance(value, str):
            self.messages.append({"role": "user", "content": value})
            return
        self.items(value, "input")

    def items(self, value: Any, param: str) -> None:
        for i, item in enumerate(typed(value, list, param)):
            where = f"{param}[{i}]"
            item = typed(item, dict, where)
            kind = item.get("type", "message" if "role" in item else None)
            if not isinstance(kind, str):
                fail(f"{where}.type", "must be a string")
            handler = _HANDLERS.get(kind)
            if handler is None:
                fail(f"{where}.type", f"'{kind}' is not an input item this proxy can translate to this provider")
            if kind not in _ASSISTANT_ITEMS and item.get("role") != "assistant":
                self._unclaimed()
            handler(self, item, where)
        self._unclaimed()

    def _unclaimed(self) -> None:
        """Signed reasoning that no assistant turn followed: dropped and reported."""
        if self._reasoning:
            self._reasoning = []
            self.drop("reasoning")

    def _claim(self, message: dict[str, Any]) -> None:
        """The waiting signed reasoning goes to this assistant turn."""
        if self._reasoning:
            message[THINKING_BLOCKS] = [*message.get(THINKING_BLOCKS, ()), *self._reasoning]
            self._reasoning = []

    # ---- items ----------------------------------------------------------------------------------------------

    def message(self, item: dict[str, Any], param: str) -> None:
        role = item.get("role")
        if not isinstance(role, str) or role not in ROLES:
            fail(f"{param}.role", "must be 'user', 'assistant', 'system' or 'developer'")
        content = item.get("content")
        if isinstance(content, str):
            parts: list[dict[str, Any]] = [{"type": "text", "text": content}]
        else:
            parts = [
                self.part(p, f"{param}.content[{j}]") for j, p in enumerate(typed(content, list, f"{param}.content"))
            ]
        if role == "assistant":
            if any(p["type"] != "text" for p in parts):
                fail(f"{param}.content", "an assistant message holds text only")
            self.messages.append({"role": "assistant", "content": "".join(p["text"] for p in parts)})
            self._claim(self.messages[-1])
            return
        if ROLES[role] == "system" and any(p["type"] != "text" for p in parts):
            fail(f"{param}.content", f"a {role} message holds text only")
        if all(p["type"] == "text" for p in parts):
            self.messages.append({"role": ROLES[role], "content": "".join(p["text"] for p in parts)})
        else:
            self.messages.append({"role": ROLES[role], "content": parts})

    def part(self, part: Any, param: str) -> dict[str, Any]:
        part = typed(part, dict, param)
        kind = kind_of(part, param)
        if kind in ("input_text", "output_text", "text"):
            return {"type": "text", "text": typed(part.get("text"), str, f"{param}.text")}
        if kind == "refusal":
            return {"type": "text", "text": typed(part.get("refusal"), str, f"{param}.refusal")}
        if kind == "input_image":
            url = part.get("image_url")
            if url is None:
                if part.get("file_id") is not None:
                    fail(f"{param}.file_id", "images by file_id cannot be fetched by this proxy; send image_url")
                fail(f"{param}.image_url", "is required")
            image: dict[str, Any] = {"url": typed(url, str, f"{param}.image_url")}
            detail = optional(part, "detail", str, f"{param}.detail")
            if detail is not None and detail != "auto":
                image["detail"] = detail
            return {"type": "image_url", "image_url": image}
        if kind == "input_file":
            fail(param, "input_file parts cannot be translated to this provider; send the file's text instead")
        fail(f"{param}.type", f"'{kind}' is not a content part this proxy can translate")

    def _assistant_turn(self) -> dict[str, Any]:
        """The assistant message tool calls join: the last message if it is an assistant turn, else a new one."""
        if self.messages and self.messages[-1]["role"] == "assistant":
            last = self.messages[-1]
        else:
            last = {"role": "assistant", "content": None}
            self.messages.append(last)
        if not last.get("content"):
            last["content"] = None
        self._claim(last)
        return last

    def _call(self, call_id: str, name: str, arguments: str) -> None:
        turn = self._assistant_turn()
        turn.setdefault("tool_calls", []).append(
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        )

    def function_call(self, item: dict[str, Any], param: str) -> None:
        self._call(
            typed(item.get("call_id"), str, f"{param}.call_id"),
            typed(item.get("name"), str, f"{param}.name"),
            typed(item.get("arguments"), str, f"{param}.arguments"),
        )

    def custom_tool_call(self, item: dict[str, Any], param: str) -> None:
        text = typed(item.get("input"), str, f"{param}.input")
        self._call(
            typed(item.get("call_id"), str, f"{param}.call_id"),
            typed(item.get("name"), str, f"{param}.name"),
            custom_arguments(text),
        )

    def call_output(self, item: dict[str, Any], param: str) -> None:
        call_id = typed(item.get("call_id"), str, f"{param}.call_id")
        output = item.get("output")
        if isinstance(output, str):
            text = output
        else:
            texts = []
            for j, part in enumerate(typed(output, list, f"{param}.output")):
                converted = self.part(part, f"{param}.output[{j}]")
                if converted["type"] == "text":
                    texts.append(converted["text"])
                else:
                    self.drop("function_call_output.image")  # tool messages carry text only
            text = "\n".join(texts)
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": text})

    def reasoning(self, item: dict[str, Any], param: str) -> None:
        optional(item, "summary", list, f"{param}.summary")
        sealed = optional(item, "encrypted_content", str, f"{param}.encrypted_content")
        blocks = unseal(sealed) if sealed is not None else None
        if blocks is None:
            self.drop("reasoning")
        else:
            self._reasoning.extend(blocks)


_HANDLERS = {
    "message": Items.message,
    "function_call": Items.function_call,
    "function_call_output": Items.call_output,
    "custom_tool_call": Items.custom_tool_call,
    "custom_tool_call_output": Items.call_output,
    "reasoning": Items.reasoning,
}
