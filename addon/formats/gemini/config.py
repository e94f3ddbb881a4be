"""A Gemini request's tools, toolConfig and generationConfig as standard-request fields, and Gemini's Schema (an
OpenAPI 3.0 subset with upper-case types) as JSON Schema.

- `tools[].functionDeclarations` -> function tools (`parametersJsonSchema` as given, `parameters` converted);
  Gemini's built-in tools (googleSearch, codeExecution, urlContext, ...) -> 400: no other provider runs them;
- `toolConfig.functionCallingConfig` AUTO / ANY / NONE -> tool_choice auto / required / none; ANY with one
  allowed function -> that function; ANY with several -> required, the tools narrowed to those named;
- `generationConfig`: temperature, topP, topK, maxOutputTokens, stopSequences, seed, presence/frequency
  penalties as their OpenAI namesakes; candidateCount above 1 -> 400; `responseMimeType: application/json` with
  `responseSchema`/`responseJsonSchema` -> response_format json_schema (without a schema: json_object);
  `thinkingConfig` -> reasoning_effort (a budget as for Anthropic's thinking, a level by name; budget 0: none),
  and a positive budget as the extension `thinking` too (exact where the provider takes a budget).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...reasoning import effort_for_budget
from ..fields import array, fail, integer, number, obj, string
from .names import fields

_TYPES = {t.upper(): t for t in ("string", "number", "integer", "boolean", "array", "object", "null")}
_INT64 = frozenset({"minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"})
_MAX_DEPTH = 40
_DECLARATION_READ = frozenset({"name", "description", "parameters", "parametersJsonSchema"})
_LEVELS = {"MINIMAL": "low", "LOW": "low", "MEDIUM": "medium", "HIGH": "high", "XHIGH": "high"}
_GENERATION = {
    "temperature": ("temperature", 2.0),
    "topP": ("top_p", 1.0),
}
# generationConfig fields the standard request has no place for: dropped and reported when set.
_GENERATION_KNOWN = frozenset(
    {
        "temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "candidateCount", "seed",
        "presencePenalty", "frequencyPenalty", "responseMimeType", "responseSchema", "responseJsonSchema",
        "_responseJsonSchema", "thinkingConfig", "responseModalities",
    }
)  # fmt: skip


def schema(node: Any, where: str, depth: int = 0) -> dict[str, Any]:
    """A Gemini Schema as JSON Schema: types lower-cased, `nullable` as a null type, `propertyOrdering` left to the
    order of `properties`; keys of JSON Schema a client put there kept as they are."""
    if depth > _MAX_DEPTH:
        fail(where, "schema too deep")
    node = fields(node, where)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("type", "nullable", "propertyOrdering", "properties", "items", "anyOf", "example"):
            continue
        if key in _INT64 and isinstance(value, str) and value.isdigit():
            value = int(value)  # proto-JSON writes Gemini's int64 fields as strings; JSON Schema wants numbers
        out[key] = value
    kind = node.get("type")
    if kind is not None:
        name = string(kind, f"{where}.type").upper()
        if name != "TYPE_UNSPECIFIED":
            if name not in _TYPES:
                fail(f"{where}.type", f"'{kind}' is not a schema type")
            out["type"] = _TYPES[name]
    if node.get("nullable") is True and "type" in out:
        out["type"] = [out["type"], "null"]
    properties = node.get("properties")
    if properties is not None:
        out["properties"] = {
            name: schema(sub, f"{where}.properties.{name}", depth + 1)
            for name, sub in obj(properties, f"{where}.properties").items()
        }
    if node.get("items") is not None:
        out["items"] = schema(node["items"], f"{where}.items", depth + 1)
    if node.get("anyOf") is not None:
        members = array(node["anyOf"], f"{where}.anyOf")
        out["anyOf"] = [schema(sub, f"{where}.anyOf[{k}]", depth + 1) for k, sub in enumerate(members)]
    return out


def tools(body: dict[str, Any], out: dict[str, Any], drop: Callable[[str], None]) -> None:
    functions: list[dict[str, Any]] = []
    for i, tool in enumerate(array(body.get("tools") or [], "tools")):
        for key, value in fields(tool, f"tools[{i}]").items():
            if value is None:
                continue
            if key != "functionDeclarations":
                fail(f"tools[{i}].{key}", f"Gemini's built-in tool '{key}' is not available through this provider")
            for j, declaration in enumerate(array(value, f"tools[{i}].{key}")):
                where = f"tools[{i}].functionDeclarations[{j}]"
                functions.append(function(fields(declaration, where), where, drop))
    choice = body.get("toolConfig")
    if choice is not None:
        functions = tool_choice(fields(choice, "toolConfig"), functions, out, drop)
    if functions:
        out["tools"] = functions


def function(declaration: dict[str, Any], where: str, drop: Callable[[str], None]) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": string(declaration.get("name"), f"{where}.name")}
    if declaration.get("description") is not None:
        fn["description"] = string(declaration["description"], f"{where}.description")
    if declaration.get("parametersJsonSchema") is not None:
        fn["parameters"] = obj(declaration["parametersJsonSchema"], f"{where}.parametersJsonSchema")
    elif declaration.get("parameters") is not None:
        fn["parameters"] = schema(declaration["parameters"], f"{where}.parameters")
    else:
        fn["parameters"] = {"type": "object", "properties": {}}
    for key, value in declaration.items():
        if key not in _DECLARATION_READ and value is not None:
            drop(f"functionDeclarations.{key}")  # response, responseJsonSchema, behavior, ...
    return {"type": "function", "function": fn}


def tool_choice(
    tool_config: dict[str, Any], functions: list[dict[str, Any]], out: dict[str, Any], drop: Callable[[str], None]
) -> list[dict[str, Any]]:
    """The functionCallingConfig as tool_choice; the functions, narrowed to the allowed ones under ANY."""
    for key, value in tool_config.items():
        if key != "functionCallingConfig" and value is not None:
            drop(f"toolConfig.{key}")  # retrievalConfig, ...
    config = tool_config.get("functionCallingConfig")
    if config is None:
        return functions
    where = "toolConfig.functionCallingConfig"
    config = fields(config, where)
    mode = string(config.get("mode") or "AUTO", f"{where}.mode").upper()
    allowed = [string(n, f"{where}.allowedFunctionNames[{k}]") for k, n in
               enumerate(array(config.get("allowedFunctionNames") or [], f"{where}.allowedFunctionNames"))]  # fmt: skip
    if mode not in ("AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"):
        fail(f"{where}.mode", "must be AUTO, ANY, NONE or VALIDATED")
    if not functions:
        if mode == "ANY":
            fail(f"{where}.mode", "ANY needs functionDeclarations")
        return functions
    if mode == "NONE":
        out["tool_choice"] = "none"
    elif mode == "ANY":
        names = {f["function"]["name"] for f in functions}
        for k, name in enumerate(allowed):
            if name not in names:
                fail(f"{where}.allowedFunctionNames[{k}]", f"'{name}' is not one of the functionDeclarations")
        if len(allowed) == 1:
            out["tool_choice"] = {"type": "function", "function": {"name": allowed[0]}}
        else:
            out["tool_choice"] = "required"
            if allowed:
                functions = [f for f in functions if f["function"]["name"] in allowed]
    else:
        out["tool_choice"] = "auto"
        if mode == "VALIDATED":
            drop(f"{where}.mode")
        if allowed:
            drop(f"{where}.allowedFunctionNames")
    return functions


def generation(config: Any, out: dict[str, Any], drop: Callable[[str], None]) -> None:
    if config is None:
        return
    config = fields(config, "generationConfig")
    for key, (name, high) in _GENERATION.items():
        value = number(config, key, high, f"generationConfig.{key}")
        if value is not None:
            out[name] = value
    top_k = config.get("topK")
    if isinstance(top_k, float) and top_k.is_integer():
        top_k = int(top_k)  # the SDKs type topK as a number
    top_k = integer({"topK": top_k}, "topK", 1, "generationConfig.topK")
    if top_k is not None:
        out["top_k"] = top_k
    max_tokens = integer(config, "maxOutputTokens", 1, "generationConfig.maxOutputTokens")
    if max_tokens is not None:
        out["max_tokens"] = max_tokens
    stops = config.get("stopSequences")
    if stops is not None:
        where = "generationConfig.stopSequences"
        stops = [string(s, f"{where}[{k}]") for k, s in enumerate(array(stops, where))]
        if stops:
            out["stop"] = stops
    count = integer(config, "candidateCount", 1, "generationConfig.candidateCount")
    if count is not None and count > 1:
        fail("generationConfig.candidateCount", "only one candidate can be translated to this provider")
    seed = integer(config, "seed", -(2**31), "generationConfig.seed")
    if seed is not None:
        out["seed"] = seed
    for key, name in (("presencePenalty", "presence_penalty"), ("frequencyPenalty", "frequency_penalty")):
        value = config.get(key)
        if value is not None:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not -2 <= value <= 2:
                fail(f"generationConfig.{key}", "must be a number from -2 to 2")
            out[name] = value
    modalities = config.get("responseModalities")
    if modalities is not None:
        names = [string(m, f"generationConfig.responseModalities[{k}]").upper() for k, m in
                 enumerate(array(modalities, "generationConfig.responseModalities"))]  # fmt: skip
        if any(m != "TEXT" for m in names):
            fail("generationConfig.responseModalities", "only TEXT answers can be translated to this provider")
    response_format(config, out)
    thinking(config.get("thinkingConfig"), out)
    for key, value in config.items():
        if key not in _GENERATION_KNOWN and value is not None and value is not False:
            drop(f"generationConfig.{key}")


def response_format(config: dict[str, Any], out: dict[str, Any]) -> None:
    mime = config.get("responseMimeType")
    if mime is not None:
        mime = string(mime, "generationConfig.responseMimeType").lower()
        if mime not in ("text/plain", "application/json"):
            fail("generationConfig.responseMimeType", "must be text/plain or application/json for this provider")
    json_schema: dict[str, Any] | None = None
    for key in ("responseJsonSchema", "_responseJsonSchema"):
        if config.get(key) is not None:
            json_schema = obj(config[key], f"generationConfig.{key}")
    if json_schema is None and config.get("responseSchema") is not None:
        json_schema = schema(config["responseSchema"], "generationConfig.responseSchema")
    if json_schema is not None:
        if mime != "application/json":
            fail("generationConfig.responseMimeType", "must be application/json with a response schema")
        out["response_format"] = {"type": "json_schema", "json_schema": {"name": "response", "schema": json_schema}}
    elif mime == "application/json":
        out["response_format"] = {"type": "json_object"}


def thinking(config: Any, out: dict[str, Any]) -> None:
    if config is None:
        return
    config = fields(config, "generationConfig.thinkingConfig")
    where = "generationConfig.thinkingConfig"
    level = config.get("thinkingLevel")
    if level is not None:
        name = string(level, f"{where}.thinkingLevel").upper()
        if name not in _LEVELS:
            if name == "THINKING_LEVEL_UNSPECIFIED":
                return
            fail(f"{where}.thinkingLevel", "must be MINIMAL, LOW, MEDIUM, HIGH or XHIGH")
        out["reasoning_effort"] = _LEVELS[name]
        return
    budget = config.get("thinkingBudget")
    if budget is None:
        return
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < -1:
        fail(f"{where}.thinkingBudget", "must be an integer of at least -1")
    if budget != 0:  # 0: thinking off, which the standard request says by leaving the effort out
        out["reasoning_effort"] = effort_for_budget(None if budget == -1 else budget)
    if budget > 0:  # the exact budget too (the extension `thinking`), for providers that take a budget
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
