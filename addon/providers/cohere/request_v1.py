"""OpenAI chat/completions -> the bodies of Cohere's v1 APIs: `/v1/chat` (preamble, chat_history, message,
tool_results; tools as `parameter_definitions`, tool calls without ids) and `/v1/generate` (a prompt)."""

from __future__ import annotations

from typing import Any

from ... import jsonutil
from ...errors import bad_request
from ...openai_format import CHAT, arguments_object, single_prompt
from ..base import Call
from .common import V1_CHAT, V1_GENERATE
from .request import _refuse_serial_tools, _refuse_tools, _response_format, _text_only


def v1_chat_body(call: Call) -> dict[str, Any]:
    body = call.body
    out: dict[str, Any] = {}
    has_tool_turns = False
    if call.route_type == CHAT:
        preamble, history, message, tool_results = _v1_messages(body["messages"])
        if preamble:
            out["preamble"] = preamble
        if history:
            out["chat_history"] = history
        out["message"] = message
        if tool_results:
            out["tool_results"] = tool_results
        has_tool_turns = bool(tool_results) or any("tool_calls" in h or "tool_results" in h for h in history)
    else:
        out["message"] = single_prompt(body)
    tools = _v1_tools(body, has_tool_turns)
    if tools is not None:
        out["tools"] = tools
    response_format = _response_format(body, "schema", V1_CHAT)
    if response_format:
        out["response_format"] = response_format
    return out


def generate_body(call: Call) -> dict[str, Any]:
    body = call.body
    _refuse_tools(body, "Cohere /v1/generate")
    _response_format(body, "", V1_GENERATE)
    out: dict[str, Any] = {"prompt": single_prompt(body)}
    n = body.get("n")
    if n is not None and n != 1:
        out["num_generations"] = n
    return out


def _v1_messages(
    messages: list[dict[str, Any]],
) -> tuple[str, list[dict[str, Any]], str, list[dict[str, Any]]]:
    """OpenAI messages -> (preamble, chat_history, message, tool_results) for /v1/chat.

    Leading system/developer messages are the preamble. The last message is the current turn: the user's
    (`message`), or the tool results that answer the assistant's last tool calls (`tool_results`, with an empty
    `message`, as Cohere's own multi-step loop sends them). Everything between is chat_history with Cohere's
    USER/CHATBOT/SYSTEM/TOOL roles. v1 tool calls have no ids: a tool message's `tool_call_id` is resolved through
    the assistant tool call that carries it (the id this proxy gave it), and the result repeats that `call`."""
    start = 0
    preamble: list[str] = []
    while start < len(messages) and messages[start]["role"] in ("system", "developer"):
        m = messages[start]
        preamble.append(_text_only(m.get("content"), f"messages[{start}]", f"a {m['role']} message"))
        start += 1
    last = len(messages) - 1
    if start > last or messages[last]["role"] not in ("user", "tool"):
        raise bad_request(
            "the Cohere v1 chat API needs the last message to be the user's or a tool result",
            param=f"messages[{last}].role",
        )
    history: list[dict[str, Any]] = []
    calls: dict[str, dict[str, Any]] = {}  # tool_call_id -> the v1 call it stands for
    pending: dict[str, str] = {}  # tool calls not answered yet: id -> where they were made
    results: list[dict[str, Any]] = []  # the tool results of the turn being built
    for i in range(start, last + 1):
        m = messages[i]
        where = f"messages[{i}]"
        role = m["role"]
        if role != "tool" and results:
            history.append({"role": "TOOL", "tool_results": results})
            results = []
        if role != "tool" and pending:
            raise bad_request(
                f"{pending[next(iter(pending))]}: every tool call needs a tool message with its tool_call_id "
                "before the next turn",
                param=f"{pending[next(iter(pending))]}.tool_calls",
            )
        if role == "tool":
            call_id = m.get("tool_call_id")
            call = calls.get(call_id) if isinstance(call_id, str) else None
            if call is None:
                raise bad_request(
                    f"{where}: a tool message must answer a tool call of an earlier assistant message "
                    "(its tool_call_id names none)",
                    param=f"{where}.role",
                )
            pending.pop(call_id, None)
            text = _text_only(m.get("content"), where, "a tool message with the Cohere v1 API")
            results.append({"call": call, "outputs": _v1_outputs(text)})
            continue
        if role in ("system", "developer"):
            entry: dict[str, Any] = {"role": "SYSTEM"}
        elif role == "user":
            entry = {"role": "USER"}
        elif role == "assistant":
            entry = {"role": "CHATBOT"}
            tool_calls = m.get("tool_calls")
            if tool_calls:
                entry["tool_calls"] = []
                for j, tool_call in enumerate(tool_calls):
                    call_where = f"{where}.tool_calls[{j}]"
                    call_id, v1_call = _v1_call(tool_call, call_where)
                    calls[call_id] = v1_call
                    pending[call_id] = where
                    entry["tool_calls"].append(v1_call)
        else:
            raise bad_request(
                f"{where}: role '{role}' is not supported with the Cohere v1 API; use cohere_api: v2",
                param=f"{where}.role",
            )
        entry["message"] = _text_only(m.get("content"), where, f"a {role} message with the Cohere v1 API")
        history.append(entry)
    if results:  # the conversation ends with tool results: they are the current turn
        if pending:
            where = pending[next(iter(pending))]
            raise bad_request(
                f"{where}: every tool call needs a tool message with its tool_call_id", param=f"{where}.tool_calls"
            )
        return "\n\n".join(p for p in preamble if p), history, "", results
    message = history.pop()["message"]
    return "\n\n".join(p for p in preamble if p), history, message, []


def _v1_call(tool_call: Any, where: str) -> tuple[str, dict[str, Any]]:
    """An OpenAI assistant tool call -> (its id, the v1 call `{name, parameters}`)."""
    fn = tool_call.get("function") if isinstance(tool_call, dict) else None
    call_id = tool_call.get("id") if isinstance(tool_call, dict) else None
    if not isinstance(fn, dict) or not fn.get("name") or not isinstance(call_id, str) or not call_id:
        raise bad_request(f"{where} needs an id and a function name", param=where)
    arguments = arguments_object(fn.get("arguments"), f"{where}.function.arguments", where)
    return call_id, {"name": fn["name"], "parameters": arguments}


def _v1_outputs(text: str) -> list[dict[str, Any]]:
    """A tool message's text -> v1 `outputs` (a list of objects): a JSON object is one output, a JSON array of
    objects is the list, anything else is `[{"result": <the text>}]`."""
    try:
        value = jsonutil.loads(text) if text.strip() else None
    except ValueError:
        value = None
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return value
    return [{"result": text}]


# JSON Schema types -> the Python-style type names of v1 parameter_definitions.
_V1_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "object": "Dict", "array": "List"}


def _v1_type(schema: Any, where: str) -> str:
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kind, list):  # ["string", "null"]: an optional value of one type
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind not in _V1_TYPES:
        raise bad_request(
            f"{where}: the Cohere v1 API takes parameters of one JSON type each (string, integer, number, "
            "boolean, object, array); use cohere_api: v2 for full JSON Schema",
            param=where,
        )
    if kind == "array":
        items = schema.get("items")
        if isinstance(items, dict) and items.get("type") in _V1_TYPES and items.get("type") != "array":
            return f"List[{_V1_TYPES[items['type']]}]"
    return _V1_TYPES[kind]


def _v1_tools(body: dict[str, Any], has_tool_turns: bool) -> list[dict[str, Any]] | None:
    """OpenAI tools -> v1 `tools[{name, description, parameter_definitions}]` (providers.md §6.1, §11.1).

    parameter_definitions is flat: each top-level property becomes `{description, type, required}` with a
    Python-style type name; nested object and array schemas keep only their kind (`Dict`, `List[str]`).
    tool_choice: auto (the default) is v1's only mode; none drops the tools when the conversation holds no tool
    turns; required and a named function cannot be expressed and are refused."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if choice not in (None, "auto", "none"):
        if not tools:
            raise bad_request("tool_choice needs tools", param="tool_choice")
        raise bad_request(
            "the Cohere v1 API cannot force a tool call (tool_choice 'required' or a named function); "
            "use cohere_api: v2",
            param="tool_choice",
        )
    if not tools:
        if has_tool_turns:
            raise bad_request(
                "the conversation holds tool calls: the Cohere v1 API needs the request's 'tools' too", param="tools"
            )
        return None
    if not isinstance(tools, list):
        raise bad_request("'tools' must be an array", param="tools")
    if choice == "none":
        if has_tool_turns:
            raise bad_request(
                "tool_choice 'none' cannot be expressed with the Cohere v1 API in a conversation that holds tool "
                "calls; use cohere_api: v2",
                param="tool_choice",
            )
        return None  # without tools the model cannot call one
    _refuse_serial_tools(body)
    out = []
    for k, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) and tool.get("type", "function") == "function" else None
        if not isinstance(fn, dict) or not fn.get("name"):
            raise bad_request(f"tools[{k}] must be a function tool with a name", param=f"tools[{k}]")
        where = f"tools[{k}].function.parameters"
        schema = fn.get("parameters") or {"type": "object", "properties": {}}
        properties = schema.get("properties") if isinstance(schema, dict) else None
        if (
            not isinstance(schema, dict)
            or schema.get("type", "object") != "object"
            or not isinstance(properties or {}, dict)
        ):
            raise bad_request(f"{where} must be an object schema with properties", param=where)
        required = schema.get("required") if isinstance(schema.get("required"), list) else []
        definitions: dict[str, Any] = {}
        for name, prop in (properties or {}).items():
            definition: dict[str, Any] = {"type": _v1_type(prop, f"{where}.properties.{name}")}
            if isinstance(prop.get("description"), str) and prop["description"]:
                definition["description"] = prop["description"]
            definition["required"] = name in required
            definitions[name] = definition
        spec: dict[str, Any] = {"name": fn["name"], "parameter_definitions": definitions}
        spec["description"] = fn.get("description") or ""  # required by v1
        out.append(spec)
    return out
