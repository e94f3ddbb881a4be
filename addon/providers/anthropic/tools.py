"""OpenAI tools / tool_choice (and the deprecated functions / function_call) -> Anthropic tools and tool_choice."""

from __future__ import annotations

from typing import Any

from ...errors import bad_request
from .schema import strict_tool_schema


def _tool_fields(body: dict[str, Any]) -> tuple[list[Any] | None, Any, str, bool]:
    """(OpenAI tools, tool choice, the choice's param name, deprecated functions?) from `tools`/`tool_choice` or
    the deprecated `functions`/`function_call`, which map the same way."""
    functions = body.get("functions")
    function_call = body.get("function_call")
    if functions is None and function_call is None:
        return body.get("tools"), body.get("tool_choice"), "tool_choice", False
    if body.get("tools") is not None or body.get("tool_choice") is not None:
        param = "functions" if functions is not None else "function_call"
        raise bad_request("use either tools/tool_choice or the deprecated functions/function_call", param=param)
    if functions is not None and not isinstance(functions, list):
        raise bad_request("'functions' must be an array", param="functions")
    tools = [{"type": "function", "function": f} for f in functions or []]
    choice = function_call
    if isinstance(function_call, dict):
        choice = {"type": "function", "function": function_call}
    elif function_call not in (None, "none", "auto"):
        raise bad_request("function_call must be 'none', 'auto' or {'name': ...}", param="function_call")
    return tools, choice, "function_call", True


def _tools(tools: list[Any] | None, param: str, dropped: list[str]) -> list[dict[str, Any]] | None:
    if not tools:
        return None
    if not isinstance(tools, list):
        raise bad_request(f"'{param}' must be an array", param=param)
    out = []
    for k, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise bad_request(f"{param}[{k}]: only function tools are supported by anthropic", param=f"{param}[{k}]")
        fn = tool.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise bad_request(f"{param}[{k}] must be a function with a name", param=f"{param}[{k}]")
        parameters = fn.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise bad_request(f"{param}[{k}]: parameters must be a JSON Schema object", param=f"{param}[{k}]")
        spec: dict[str, Any] = {"name": fn["name"], "input_schema": parameters or {"type": "object", "properties": {}}}
        if fn.get("description"):
            spec["description"] = fn["description"]
        if fn.get("strict") is True:
            spec["strict"] = True  # Anthropic strict tool use: inputs guaranteed to match input_schema
            where = f"{param}[{k}].function.parameters"
            spec["input_schema"] = strict_tool_schema(spec["input_schema"], where, dropped)
        out.append(spec)
    return out


def _tool_choice(tools: list[dict[str, Any]] | None, choice: Any, parallel: Any, param: str) -> dict[str, Any] | None:
    out: dict[str, Any] | None
    if not tools:
        # Anthropic refuses a tool_choice without tools; "none"/"auto" mean nothing then, a forced tool is an error.
        if choice in (None, "none", "auto"):
            return None
        raise bad_request(f"{param} needs tools", param=param)
    if choice is None:
        out = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        if name not in {t["name"] for t in tools}:
            raise bad_request(f"{param} names function {name!r}, which is not among the tools", param=param)
        out = {"type": "tool", "name": name}
    else:
        raise bad_request(f"unsupported {param}", param=param)
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out
