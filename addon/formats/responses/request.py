"""An OpenAI Responses request (what Codex CLI, the OpenAI Agents SDK and `client.responses.create` send) as the
standard request, the OpenAI Chat body the providers take. Every field read is checked first: a request of another
shape is a 400 naming the field in the Responses API's terms. What the standard request has no place for is
dropped and listed in `dropped` (the loss report), or refused where dropping it would change the answer's meaning.

Mapping (Responses -> Chat), after openai-python's `types/responses/response_create_params.py`:
- `instructions` -> a leading system message; `input` -> messages (items.py);
- `tools`: `function` (name, description, parameters, strict) -> function tools; `custom` (freeform) -> a function
  of one string argument `input`; built-in tools (web_search, file_search, computer_use, code_interpreter,
  local_shell, mcp, image_generation...) -> 400: no provider behind this route runs OpenAI's hosted tools;
- `tool_choice` auto/none/required/{function}/{custom} -> auto/none/required/{function};
- `parallel_tool_calls`, `temperature`, `top_p`, `user`; `max_output_tokens` -> `max_tokens`;
- `reasoning.effort` -> `reasoning_effort` (minimal -> low, xhigh -> high; none -> no reasoning asked);
- `text.format` text/json_object/json_schema -> `response_format`; `stream` -> `stream` with usage asked;
- kept by the proxy, not sent: `store`, `metadata`, `previous_response_id` (resolved by the route beforehand);
- dropped and reported: `prompt_cache_key`, `safety_identifier`, `service_tier`, `truncation`, `top_logprobs`,
  `max_tool_calls`, `include`, `text.verbosity`, `reasoning.summary` and any unknown field;
- refused (400): `background: true`, `conversation`, `prompt` (stored prompt templates), `previous_response_id`
  where the route keeps no conversations.
"""

from __future__ import annotations

from typing import Any

from ...openai_validate import checked_model, validate_chat
from .fields import fail, integer, kind_of, number, optional, typed
from .items import CUSTOM_ARGUMENT, Items

KEPT = frozenset({"store", "metadata", "stream_options"})  # read by the route or meaningless here
DROPPED = frozenset(
    {"prompt_cache_key", "prompt_cache_retention", "safety_identifier", "service_tier", "truncation", "top_logprobs",
     "max_tool_calls", "include"}
)  # fmt: skip
REFUSED = {
    "conversation": "conversations are not available through this proxy; send the history in 'input'",
    "prompt": "stored prompt templates are not available through this proxy; send 'instructions' and 'input'",
    "previous_response_id": "this route keeps no responses; send the whole conversation in 'input'",
}
_MAPPED = frozenset(
    {"model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
     "temperature", "top_p", "reasoning", "text", "stream", "user", "background"}
)  # fmt: skip
EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}


def decode(body: Any, dropped: list[str]) -> dict[str, Any]:
    """The standard request for a Responses body; what it could not carry is appended to `dropped`."""
    body = typed(body, dict, "body")
    out: dict[str, Any] = {"model": checked_model(typed(body.get("model"), str, "model"))}
    for key, why in REFUSED.items():
        if body.get(key) is not None:
            fail(key, why)
    if body.get("background") is True:
        fail("background", "background responses are not available through this proxy")
    items = Items(dropped)
    items.instructions(body.get("instructions"))
    if body.get("input") is None:
        fail("input", "is required")
    items.input(body["input"])
    if not items.messages:
        fail("input", "must hold at least one item")
    out["messages"] = items.messages
    _sampling(body, out)
    _tools(body, out)
    _reasoning(body.get("reasoning"), out, items)
    _text(body.get("text"), out, items)
    if optional(body, "stream", bool):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}  # response.completed always carries usage
    user = optional(body, "user", str)
    if user is not None:
        out["user"] = user
    for key, value in body.items():
        if key in DROPPED:
            if value not in (None, [], "disabled"):
                items.drop(key)
        elif key not in _MAPPED and key not in KEPT:
            items.drop(key)
    optional(body, "metadata", dict)
    optional(body, "store", bool)
    return validate_chat(out)  # the translation's own check (schema depth, names), as for Chat clients


def _sampling(body: dict[str, Any], out: dict[str, Any]) -> None:
    for key, high in (("temperature", 2.0), ("top_p", 1.0)):
        value = number(body, key, high)
        if value is not None:
            out[key] = value
    max_tokens = integer(body, "max_output_tokens", 1)
    if max_tokens is not None:
        out["max_tokens"] = max_tokens
    parallel = optional(body, "parallel_tool_calls", bool)
    if parallel is False:
        out["parallel_tool_calls"] = False


BUILT_IN = "is one of OpenAI's hosted tools, which no provider behind this proxy runs; send function tools"


def _tools(body: dict[str, Any], out: dict[str, Any]) -> None:
    tools = optional(body, "tools", list)
    functions = [_tool(typed(tool, dict, f"tools[{i}]"), f"tools[{i}]") for i, tool in enumerate(tools or ())]
    if functions:
        out["tools"] = functions
    choice = body.get("tool_choice")
    if choice is None:
        return
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            fail("tool_choice", "must be 'auto', 'none', 'required' or an object")
        out["tool_choice"] = choice
        return
    choice = typed(choice, dict, "tool_choice")
    kind = kind_of(choice, "tool_choice")
    if kind in ("function", "custom"):
        name = typed(choice.get("name"), str, "tool_choice.name")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif kind == "allowed_tools":
        mode = choice.get("mode")
        if mode not in ("auto", "required"):
            fail("tool_choice.mode", "must be 'auto' or 'required'")
        out["tool_choice"] = mode
        allowed = typed(choice.get("tools"), list, "tool_choice.tools")
        names = {
            typed(typed(t, dict, f"tool_choice.tools[{i}]").get("name"), str, f"tool_choice.tools[{i}].name")
            for i, t in enumerate(allowed)
        }
        out["tools"] = [t for t in out.get("tools", ()) if t["function"]["name"] in names]
        if not out["tools"]:
            fail("tool_choice.tools", "must name at least one of the request's function tools")
    else:
        fail("tool_choice.type", f"'{kind}' {BUILT_IN}")


def _tool(tool: dict[str, Any], param: str) -> dict[str, Any]:
    kind = kind_of(tool, param)
    if kind not in ("function", "custom"):
        fail(f"{param}.type", f"'{kind}' {BUILT_IN}")
    function: dict[str, Any] = {"name": typed(tool.get("name"), str, f"{param}.name")}
    description = optional(tool, "description", str, f"{param}.description")
    if description is not None:
        function["description"] = description
    if kind == "function":
        parameters = optional(tool, "parameters", dict, f"{param}.parameters")
        function["parameters"] = parameters if parameters is not None else {"type": "object", "properties": {}}
        strict = optional(tool, "strict", bool, f"{param}.strict")
        if strict is not None:
            function["strict"] = strict
    else:  # custom
        fmt = optional(tool, "format", dict, f"{param}.format")
        hint = "free text"
        if fmt is not None and fmt.get("type") == "grammar":
            hint = f"text in this {fmt.get('syntax', 'grammar')} grammar: {fmt.get('definition', '')}"
        function["parameters"] = {
            "type": "object",
            "properties": {CUSTOM_ARGUMENT: {"type": "string", "description": hint}},
            "required": [CUSTOM_ARGUMENT],
        }
    return {"type": "function", "function": function}


def without_hosted_tools(body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The body without OpenAI's hosted tools (and a tool_choice naming one), for a rule that drops them rather
    than refuse the request; and what was dropped (`tools.web_search`, ...) for the loss report."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return body, []
    kept, dropped = [], []
    for tool in tools:
        kind = tool.get("type") if isinstance(tool, dict) else None
        if isinstance(kind, str) and kind not in ("function", "custom"):
            dropped.append(f"tools.{kind}")
        else:
            kept.append(tool)
    if not dropped:
        return body, []
    out = {**body, "tools": kept}
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") not in ("function", "custom", "allowed_tools"):
        del out["tool_choice"]
        dropped.append("tool_choice")
    return out, list(dict.fromkeys(dropped))


def _reasoning(reasoning: Any, out: dict[str, Any], items: Items) -> None:
    if reasoning is None:
        return
    reasoning = typed(reasoning, dict, "reasoning")
    effort = reasoning.get("effort")
    if effort is not None and effort != "none":
        if not isinstance(effort, str) or effort not in EFFORTS:
            fail("reasoning.effort", f"must be one of none, {', '.join(EFFORTS)}")
        out["reasoning_effort"] = EFFORTS[effort]
    if reasoning.get("summary") is not None or reasoning.get("generate_summary") is not None:
        items.drop("reasoning.summary")


def _text(text: Any, out: dict[str, Any], items: Items) -> None:
    if text is None:
        return
    text = typed(text, dict, "text")
    if text.get("verbosity") is not None:
        items.drop("text.verbosity")
    fmt = text.get("format")
    if fmt is None:
        return
    fmt = typed(fmt, dict, "text.format")
    kind = kind_of(fmt, "text.format")
    if kind == "text":
        return
    if kind == "json_object":
        out["response_format"] = {"type": "json_object"}
        return
    if kind != "json_schema":
        fail("text.format.type", "must be 'text', 'json_object' or 'json_schema'")
    schema: dict[str, Any] = {
        "name": typed(fmt.get("name"), str, "text.format.name"),
        "schema": typed(fmt.get("schema"), dict, "text.format.schema"),
    }
    description = optional(fmt, "description", str, "text.format.description")
    if description is not None:
        schema["description"] = description
    strict = optional(fmt, "strict", bool, "text.format.strict")
    if strict is not None:
        schema["strict"] = strict
    out["response_format"] = {"type": "json_schema", "json_schema": schema}
