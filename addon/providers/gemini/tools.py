"""OpenAI tools and tool_choice (or the deprecated functions) as Gemini functionDeclarations and toolConfig."""

from __future__ import annotations

from typing import Any

from ...errors import bad_request
from .schema import _schema


def _tools(body: dict[str, Any], dropped: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """tools/tool_choice (or the deprecated functions/function_call) -> (Gemini tools, toolConfig)."""
    tools, functions = body.get("tools"), body.get("functions")
    if tools and functions:
        raise bad_request("use either 'tools' or the deprecated 'functions', not both", param="functions")
    if body.get("tool_choice") is not None and body.get("function_call") is not None:
        raise bad_request("use either 'tool_choice' or the deprecated 'function_call', not both", param="function_call")
    choice_key = "tool_choice" if body.get("tool_choice") is not None else "function_call"
    choice = body.get(choice_key)
    declarations: list[dict[str, Any]] = []
    if tools:
        if not isinstance(tools, list):
            raise bad_request("'tools' must be an array", param="tools")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or tool.get("type") != "function":
                kind = tool.get("type") if isinstance(tool, dict) else None
                raise bad_request(
                    f"tools[{i}]: only function tools are supported by provider gemini (got {kind!r})",
                    param=f"tools[{i}]",
                )
            declarations.append(_declaration(tool.get("function"), f"tools[{i}].function", dropped))
    elif functions:
        if not isinstance(functions, list):
            raise bad_request("'functions' must be an array", param="functions")
        declarations = [_declaration(fn, f"functions[{i}]", dropped) for i, fn in enumerate(functions)]
    names = [d["name"] for d in declarations]
    if len(set(names)) != len(names):
        raise bad_request("function names must be unique", param="tools" if tools else "functions")
    if body.get("parallel_tool_calls") is False and declarations:
        raise bad_request(
            "'parallel_tool_calls: false' is not supported by provider gemini", param="parallel_tool_calls"
        )
    config = _tool_config(choice, names, choice_key)
    return ([{"functionDeclarations": declarations}] if declarations else []), config


def _tool_config(choice: Any, names: list[str], key: str) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice in ("auto", "none"):
        # Without tools there is nothing to choose from: Gemini's default applies.
        return {"functionCallingConfig": {"mode": choice.upper()}} if names else None
    if choice == "required":
        mode: dict[str, Any] = {"mode": "ANY"}
    elif isinstance(choice, dict):
        fn = choice.get("function") if key == "tool_choice" else choice
        if key == "tool_choice" and choice.get("type") != "function":
            raise bad_request(f"'{key}' of type {choice.get('type')!r} is not supported by provider gemini", param=key)
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            raise bad_request(f"'{key}' must name a function", param=key)
        mode = {"mode": "ANY", "allowedFunctionNames": [name]}
    else:
        raise bad_request(f"'{key}' {choice!r} is not supported by provider gemini", param=key)
    if not names:
        raise bad_request(f"'{key}' {choice!r} needs tools", param=key)
    missing = [n for n in mode.get("allowedFunctionNames", ()) if n not in names]
    if missing:
        raise bad_request(f"'{key}' names {missing[0]!r}, which is not one of the tools", param=key)
    return {"functionCallingConfig": mode}


def _declaration(fn: Any, where: str, dropped: list[str]) -> dict[str, Any]:
    """An OpenAI function definition as a Gemini FunctionDeclaration. `strict` is dropped (Gemini has no such
    switch); `parameters` is translated to Gemini's OpenAPI-subset Schema (see `_schema`)."""
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise bad_request(f"{where}.name is required", param=f"{where}.name")
    out: dict[str, Any] = {"name": fn["name"]}
    if isinstance(fn.get("description"), str) and fn["description"]:
        out["description"] = fn["description"]
    params = fn.get("parameters")
    if params is not None:
        if not isinstance(params, dict):
            raise bad_request(f"{where}.parameters must be a JSON Schema object", param=f"{where}.parameters")
        defs = {**_dict(params.get("definitions")), **_dict(params.get("$defs"))}
        schema = _schema(params, f"{where}.parameters", defs, 0, dropped)
        if schema.get("type", "OBJECT") != "OBJECT":
            raise bad_request(f"{where}.parameters must describe an object", param=f"{where}.parameters")
        # Gemini refuses an OBJECT with empty properties: a function without parameters has none at all.
        if schema.get("properties"):
            out["parameters"] = {"type": "OBJECT", **schema}
        elif set(schema) - {"type", "title", "description", "nullable"}:
            raise bad_request(
                f"{where}.parameters: provider gemini takes an object schema with 'properties' here",
                param=f"{where}.parameters",
            )
    return out


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
