"""The provider's answer checked against the client's ORIGINAL schema, where the client asked for strict output.

A provider that takes only a subset of JSON Schema gets a relaxed schema (json_schema.py): the constraints it could
not take are only described to the model, so its answer may break them. Where the client asked for a guarantee
(`response_format.json_schema.strict: true`, the OpenAI SDKs' `.parse`; a function tool with `strict: true`) and the
translation relaxed that schema (the loss report names json_schema.* or tool_schema.* keywords), a non-streamed
answer is validated against the schema the client sent, and one that does not match is answered with a 502
(`code: "strict_schema_violation"`) naming the path that failed, never passed on as if it matched. A schema sent
whole is the provider's to enforce: no check (and no cost) on the OpenAI passthrough or the audit route.
Not checked: streamed answers (their text has reached the client by the end), answers cut short (`finish_reason`
`length` or `content_filter`, which say so themselves) and refusals. `jsonschema` is imported only when there is
something to check."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import orjson

from .errors import ProxyError
from .json_schema import STRUCTURED, TOOL

_UNFINISHED = frozenset({"length", "content_filter"})


def strict_schemas(body: dict[str, Any], dropped: list[str]) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """(the strict response_format schema, strict tool name -> parameters) of a standard request whose translation
    relaxed them (`dropped` names json_schema.* / tool_schema.* keywords): where nothing was relaxed, the provider
    was handed the whole schema and holds its answer to it (or the client asked for no guarantee)."""
    output = None
    fmt = body.get("response_format")
    if not any(d.startswith(STRUCTURED + ".") for d in dropped):
        fmt = None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        if isinstance(spec, dict) and spec.get("strict") is True and isinstance(spec.get("schema"), dict):
            output = spec["schema"]
    tools: dict[str, dict[str, Any]] = {}
    relaxed_tools = any(d.startswith(TOOL + ".") for d in dropped)
    for tool in body.get("tools") or () if relaxed_tools else ():
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and fn.get("strict") is True and isinstance(fn.get("name"), str):
            params = fn.get("parameters")
            tools[fn["name"]] = params if isinstance(params, dict) else {"type": "object", "properties": {}}
    return output, tools


def check_answer(provider: str, body: dict[str, Any], answer: dict[str, Any], dropped: list[str]) -> None:
    """Raise a 502 ProxyError if a choice of the OpenAI-format `answer` breaks a strict schema of `body` that the
    translation relaxed (`dropped`, the call's loss report)."""
    output, tools = strict_schemas(body, dropped)
    if output is None and not tools:
        return
    for i, choice in enumerate(answer.get("choices") or ()):
        if not isinstance(choice, dict) or choice.get("finish_reason") in _UNFINISHED:
            continue
        message = choice.get("message") or {}
        where = f"choices[{i}].message"
        if output is not None and isinstance(message.get("content"), str) and not message.get("refusal"):
            _check(provider, output, message["content"], f"{where}.content")
        for j, call in enumerate(message.get("tool_calls") or ()):
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and fn.get("name") in tools:
                _check(provider, tools[fn["name"]], fn.get("arguments"), f"{where}.tool_calls[{j}].function.arguments")


def _check(provider: str, schema: dict[str, Any], text: Any, where: str) -> None:
    try:
        if not isinstance(text, str):
            raise ValueError(text)
        value = json.loads(text)
    except ValueError:
        raise _violation(provider, where, "$", "it is not valid JSON") from None
    error = _first_error(schema, value)
    if error is not None:
        raise _violation(provider, where, *error)


def _first_error(schema: dict[str, Any], value: Any) -> tuple[str, str] | None:
    """(JSON path, message) of the most relevant violation of `schema` by `value`, or None. A schema jsonschema
    cannot evaluate (an unknown type, a ref that does not resolve) is not held against the provider."""
    validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
    if validator is None:
        return None
    try:
        if validator.is_valid(value):
            return None
        import jsonschema

        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    except Exception:  # the schema's fault, not the answer's: jsonschema raises many types for unreadable schemas
        return None
    return None if error is None else (error.json_path, error.message)


@lru_cache(maxsize=256)
def _validator(key: bytes) -> Any:
    """The validator of a schema (by its canonical JSON), built once: a client sends the same schema again and
    again. The schema is not checked against its metaschema (17 ms); a broken one fails validation instead."""
    import jsonschema  # only here: most requests have no strict schema

    schema = orjson.loads(key)
    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        return cls(schema)
    except Exception:
        return None


def _violation(provider: str, where: str, path: str, message: str) -> ProxyError:
    return ProxyError(
        502,
        f"{provider}'s answer does not match the strict JSON schema the client sent: {where} at {path}: {message}",
        code="strict_schema_violation",
        param=where,
    )
