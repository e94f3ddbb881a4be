"""Validation of OpenAI-format client requests (chat, completions, embeddings).

Every field some translation reads has its shape checked here, before any provider sees the body, so a provider
may rely on it: a request of any other shape is a 400 whose message and `param` name the field
(`messages[2].role`, `tools[0].function.name`). Fields no translation reads are left to the upstream (the OpenAI
passthrough keeps them). Numbers must be finite and within 64 bits; schemas nest at most MAX_SCHEMA_DEPTH deep.
"""

from __future__ import annotations

import math
import re
from typing import Any, NoReturn

from .errors import bad_request

CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"
EMBEDDINGS = "llm/v1/embeddings"

MESSAGE_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
MAX_INT = 2**63  # integers are 64-bit signed upstream (OpenAI's seed, every provider's token counts)
MAX_SCHEMA_DEPTH = 64  # JSON levels in a tool's parameters or a response schema (providers walk them recursively)
# C0 controls, DEL and C1 controls: a model name is echoed into a response header (x-ai-proxy-model) and URLs.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")

_NUMBERS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
_INTEGERS = ("max_tokens", "max_completion_tokens", "n", "seed", "top_k", "best_of", "top_logprobs")
_STRINGS = ("user", "suffix", "reasoning_effort", "service_tier")
_BOOLEANS = ("stream", "parallel_tool_calls", "echo", "store")


def _fail(field: str, what: str, param: str | None = None) -> NoReturn:
    """A 400 saying what `field` must be; `param` is the element reported (the field itself by default): the
    part, the tool or the tool call a field belongs to, as the translations report their own refusals."""
    raise bad_request(f"'{field}' must be {what}", param=param or field)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_number(value: Any, param: str) -> None:
    if not _is_number(value):
        _fail(param, "a number")
    if (isinstance(value, int) and not -MAX_INT < value < MAX_INT) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        raise bad_request(f"'{param}' is out of range", param=param)


def _check_int(value: Any, param: str) -> None:
    if not _is_int(value):
        _fail(param, "an integer")
    if not -MAX_INT <= value < MAX_INT:
        raise bad_request(f"'{param}' is out of range", param=param)


def _optional(
    body: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str, where: str = "", param: str | None = None
) -> Any:
    """body[key] if it is None or of `kind` (bool is never an int here); else a 400 naming where.key."""
    value = body.get(key)
    if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        _fail(f"{where}{key}", what, param)
    return value


def checked_model(model: Any, param: str = "model") -> Any:
    """A model name fit for URLs, bodies and the x-ai-proxy-model header: no control characters."""
    if isinstance(model, str) and _CONTROL.search(model):
        raise bad_request(f"'{param}' must not contain control characters", param=param)
    return model


def _validate_common(body: dict[str, Any]) -> None:
    checked_model(_optional(body, "model", str, "a string"))
    for key in _BOOLEANS:
        _optional(body, key, bool, "a boolean")
    for key in _STRINGS:
        _optional(body, key, str, "a string")
    for key in _NUMBERS:
        if body.get(key) is not None:
            _check_number(body[key], key)
    for key in _INTEGERS:
        if body.get(key) is not None:
            _check_int(body[key], key)
    for key, least in (("max_tokens", 0), ("max_completion_tokens", 0), ("n", 1)):
        # OpenAI refuses these; a negative limit could reach a provider as "no limit at all" (num_predict -1).
        if body.get(key) is not None and body[key] < least:
            raise bad_request(f"'{key}' must be at least {least}", param=key)
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise bad_request("'stop' must be a string or an array of strings", param="stop")
    options = _optional(body, "stream_options", dict, "an object")
    if options is not None:
        _optional(options, "include_usage", bool, "a boolean", "stream_options.")
    bias = _optional(body, "logit_bias", dict, "an object")
    for token, value in (bias or {}).items():
        _check_number(value, f"logit_bias.{token}")
    modalities = body.get("modalities")
    if modalities is not None and not (isinstance(modalities, list) and all(isinstance(m, str) for m in modalities)):
        _fail("modalities", "an array of strings")


# --------------------------------------------------------------------------------------------------------------
# Chat
# --------------------------------------------------------------------------------------------------------------


def validate_chat(body: Any) -> dict[str, Any]:
    """Check a Chat Completions body; returns it unchanged or raises a 400 ProxyError."""
    messages = _required(body, "messages", "'messages' is a required property")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array", param="messages")
    for i, message in enumerate(messages):
        if not _plainly_valid(message):
            _check_message(message, f"messages[{i}]")
    _validate_common(body)
    _check_logprobs(body, chat=True)
    _check_tools(body)
    _check_response_format(body.get("response_format"))
    return body


_MESSAGE_STRINGS = ("name", "tool_call_id", "refusal", "reasoning_content")


def _plainly_valid(message: Any) -> bool:
    """True for the shapes nearly every message has (text content, well-formed tool calls), which _check_message
    accepts: checked without building a field path, as an agent's history holds hundreds of them. False sends the
    message to _check_message, which accepts it or names the field (tests/test_openai_validate_fast.py holds the
    two to the same verdict)."""
    if not isinstance(message, dict):
        return False
    role = message.get("role")
    content = message.get("content")
    if not (isinstance(role, str) and role in MESSAGE_ROLES):
        return False
    if not (isinstance(content, str) or (content is None and role == "assistant")):
        return False
    for key in _MESSAGE_STRINGS:
        value = message.get(key)
        if value is not None and not isinstance(value, str):
            return False
    calls = message.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            return False
        for call in calls:
            fn = call.get("function") if isinstance(call, dict) else None
            if not (
                isinstance(fn, dict)
                and isinstance(call.get("id"), str)
                and isinstance(call.get("type"), str)
                and isinstance(fn.get("name"), str)
                and isinstance(fn.get("arguments"), str)
            ):
                return False
    return message.get("function_call") is None


def _check_message(message: Any, param: str) -> None:
    if not isinstance(message, dict):
        raise bad_request(f"{param} must be an object", param=param)
    role = message.get("role")
    if not isinstance(role, str) or role not in MESSAGE_ROLES:
        raise bad_request(f"{param}.role must be one of {', '.join(sorted(MESSAGE_ROLES))}", param=f"{param}.role")
    content = message.get("content")
    if content is None:
        # Only an assistant turn (it then carries tool calls) and a deprecated function result may be
        # content-less (openai-python: ChatCompletionFunctionMessageParam.content is Optional[str]).
        if role not in ("assistant", "function"):
            raise bad_request(f"{param}.content is required for role '{role}'", param=f"{param}.content")
    elif isinstance(content, list):
        for j, part in enumerate(content):
            _check_part(part, f"{param}.content[{j}]")
    elif not isinstance(content, str):
        raise bad_request(f"{param}.content must be a string or an array of parts", param=f"{param}.content")
    for key in _MESSAGE_STRINGS:
        _optional(message, key, str, "a string", f"{param}.")
    calls = _optional(message, "tool_calls", list, "an array", f"{param}.")
    for k, call in enumerate(calls or ()):
        _check_call(call, f"{param}.tool_calls[{k}]")
    if message.get("function_call") is not None:
        _check_function(message["function_call"], f"{param}.function_call", param=f"{param}.function_call")


def _check_part(part: Any, param: str) -> None:
    """One content part; an error anywhere in it reports the part (messages[i].content[j])."""
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        raise bad_request(f"{param} must be an object with a 'type'", param=param)
    kind = part["type"]
    if kind in ("text", "refusal") and not isinstance(part.get(kind), str):
        raise bad_request(f"{param}.{kind} must be a string", param=f"{param}.{kind}" if kind == "text" else param)
    if kind == "image_url":
        image = part.get("image_url")
        if isinstance(image, dict):
            _optional(image, "url", str, "a string", f"{param}.image_url.", param)
            _optional(image, "detail", str, "a string", f"{param}.image_url.", param)
        elif image is not None and not isinstance(image, str):
            _fail(f"{param}.image_url", "an object with a 'url'", param)
    elif kind in ("input_audio", "file"):
        inner = part.get(kind)
        if inner is not None and not isinstance(inner, dict):
            _fail(f"{param}.{kind}", "an object", param)
        for key in inner or ():
            _optional(inner, key, str, "a string", f"{param}.{kind}.", param)


def _check_call(call: Any, param: str) -> None:
    """A tool call of an assistant turn: the types of what it holds (what it lacks, each provider refuses)."""
    if not isinstance(call, dict):
        _fail(param, "an object")
    _optional(call, "id", str, "a string", f"{param}.", param)
    _optional(call, "type", str, "a string", f"{param}.", param)
    fn = _optional(call, "function", dict, "an object", f"{param}.", param)
    if fn is not None:
        _optional(fn, "name", str, "a string", f"{param}.function.", param)
        # A JSON-encoded string as OpenAI sends it; some clients send the object itself.
        _optional(fn, "arguments", (str, dict), "a string (JSON-encoded arguments)", f"{param}.function.", param)


def _check_function(fn: Any, field: str, param: str, definition: bool = False) -> None:
    """A function call ({name, arguments}) or, with definition, a function ({name, description, parameters})."""
    if not isinstance(fn, dict):
        _fail(field, "an object", param)
    if not definition and not isinstance(fn.get("name"), str):
        _fail(f"{field}.name", "a string", param)
    # A definition's missing name is each provider's to refuse (they name the field as their tests expect).
    _optional(fn, "name", str, "a string", f"{field}.", param)
    if not definition:
        _optional(fn, "arguments", (str, dict), "a string (JSON-encoded arguments)", f"{field}.", param)
        return
    _optional(fn, "description", str, "a string", f"{field}.", param)
    _optional(fn, "strict", bool, "a boolean", f"{field}.", param)
    _check_schema(_optional(fn, "parameters", dict, "an object (a JSON Schema)", f"{field}.", param), param)


def _check_tools(body: dict[str, Any]) -> None:
    """tools, functions, tool_choice and function_call; an error inside a tool reports the tool (tools[i])."""
    tools = _optional(body, "tools", list, "an array")
    for i, tool in enumerate(tools or ()):
        param = f"tools[{i}]"
        if not isinstance(tool, dict):
            _fail(param, "an object")
        kind = _optional(tool, "type", str, "a string", f"{param}.", param)
        if kind in (None, "function"):
            _check_function(tool.get("function"), f"{param}.function", param, definition=True)
    functions = _optional(body, "functions", list, "an array")
    for i, fn in enumerate(functions or ()):
        _check_function(fn, f"functions[{i}]", f"functions[{i}]", definition=True)
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        _optional(choice, "type", str, "a string", "tool_choice.", "tool_choice")
        fn = _optional(choice, "function", dict, "an object", "tool_choice.", "tool_choice")
        if fn is not None:
            _optional(fn, "name", str, "a string", "tool_choice.function.", "tool_choice")
    elif choice is not None and not isinstance(choice, str):
        _fail("tool_choice", "a string or an object")
    call = body.get("function_call")
    if isinstance(call, dict):
        _optional(call, "name", str, "a string", "function_call.", "function_call")
    elif call is not None and not isinstance(call, str):
        _fail("function_call", "a string or an object")


def _check_response_format(rf: Any) -> None:
    """An error anywhere in response_format reports response_format."""
    if rf is None:
        return
    param = "response_format"
    if not isinstance(rf, dict) or not isinstance(rf.get("type"), str):
        _fail(param, "an object with a 'type'")
    spec = _optional(rf, "json_schema", dict, "an object", "response_format.", param)
    if spec is None:
        return
    where = "response_format.json_schema."
    _optional(spec, "name", str, "a string", where, param)
    _optional(spec, "description", str, "a string", where, param)
    _optional(spec, "strict", bool, "a boolean", where, param)
    _check_schema(_optional(spec, "schema", dict, "an object (a JSON Schema)", where, param), param)


def _check_schema(schema: Any, param: str) -> None:
    """A JSON Schema is free-form, but providers walk it recursively: its nesting is bounded (param: the tool or
    response_format it belongs to)."""
    stack = [(schema, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_SCHEMA_DEPTH:
            raise bad_request(f"{param}: its schema nests more than {MAX_SCHEMA_DEPTH} levels deep", param=param)
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))


def _check_logprobs(body: dict[str, Any], chat: bool) -> None:
    value = body.get("logprobs")
    if value is None:
        return
    if chat and not isinstance(value, bool):
        _fail("logprobs", "a boolean")
    if not chat:
        _check_int(value, "logprobs")


# --------------------------------------------------------------------------------------------------------------
# Completions and embeddings
# --------------------------------------------------------------------------------------------------------------


def validate_completions(body: Any) -> dict[str, Any]:
    """Check a legacy Completions body; returns it unchanged or raises a 400 ProxyError."""
    prompt = _required(body, "prompt", "you must provide a 'prompt' parameter")
    if not (isinstance(prompt, str) or (isinstance(prompt, list) and prompt)):
        raise bad_request("'prompt' must be a string or a non-empty array", param="prompt")
    if isinstance(prompt, list) and not (is_list_of(prompt, str) or is_tokens(prompt) or is_list_of(prompt, is_tokens)):
        raise bad_request(
            "'prompt' must be a string, an array of strings, an array of token ids or an array of such arrays",
            param="prompt",
        )
    _validate_common(body)
    _check_logprobs(body, chat=False)
    return body


def validate_embeddings(body: Any) -> dict[str, Any]:
    """Check an Embeddings body (`input`, `model`, `dimensions`, `encoding_format`, `user`); no streaming exists."""
    value = _required(body, "input", "'input' is a required property")
    if not (isinstance(value, str) or is_tokens(value) or is_list_of(value, str) or is_list_of(value, is_tokens)):
        raise bad_request(
            "'input' must be a string, an array of strings, an array of token ids or an array of such arrays",
            param="input",
        )
    checked_model(_optional(body, "model", str, "a string"))
    _optional(body, "user", str, "a string")
    dimensions = body.get("dimensions")
    if dimensions is not None and (not _is_int(dimensions) or not 1 <= dimensions < MAX_INT):
        raise bad_request("'dimensions' must be a positive integer", param="dimensions")
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise bad_request("'encoding_format' must be 'float' or 'base64'", param="encoding_format")
    for key in ("stream", "stream_options"):
        if body.get(key) not in (None, False):
            raise bad_request(f"embeddings are not streamed: remove '{key}'", param=key, code="streaming_unsupported")
    return body


def _required(body: Any, key: str, missing: str) -> Any:
    """The value of a required field of a body that must be a JSON object (400 `missing` when absent)."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    value = body.get(key)
    if value is None:
        raise bad_request(missing, param=key)
    return value


def is_tokens(value: Any) -> bool:
    """A non-empty array of 64-bit token ids."""
    if not isinstance(value, list) or not value:
        return False
    return all(_is_int(t) and -MAX_INT <= t < MAX_INT for t in value)


def is_list_of(value: Any, kind: Any) -> bool:
    if not isinstance(value, list) or not value:
        return False
    return all(isinstance(v, kind) for v in value) if isinstance(kind, type) else all(kind(v) for v in value)


def validate(route_type: str, body: Any) -> dict[str, Any]:
    if route_type == CHAT:
        return validate_chat(body)
    if route_type == EMBEDDINGS:
        return validate_embeddings(body)
    return validate_completions(body)
