"""Gemini: OpenAI chat/completions <-> generateContent / streamGenerateContent, on the Gemini API (API key) or on
Vertex AI (OAuth bearer token; `options.gemini.project_id` and `location_id`).

Streams are translated from either wire form Gemini has: SSE (`?alt=sse`, what we ask for) or, when a rule's
upstream_url asks for `:streamGenerateContent` without `alt=sse`, one JSON array streamed element by element.
The translator tells them apart by the first byte of the body.

Tools: `tools` -> functionDeclarations (parameters adapted to Gemini's schema subset), `tool_choice` ->
toolConfig.functionCallingConfig, assistant tool calls -> functionCall parts, tool results -> functionResponse
parts named after the call they answer. Gemini's calls have no ids: ours carry the native id (Vertex) and the
thoughtSignature back to Gemini on the next turn (see `tool_call_id`).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from ... import jsonutil
from ...errors import ProxyError, bad_request, default_error_type
from ...openai_format import (
    CHAT,
    EMBEDDINGS,
    chat_response,
    chat_to_completion,
    embedding_texts,
    embeddings_response,
    max_tokens_of,
    single_prompt,
    stop_list,
    usage,
)
from ...spec import ModelOptions
from ...streaming import ChunkWriter, guarded, stream_error
from ...streams import FramingSniffer, JSONArrayDecoder, SSEDecoder, StreamDecodeError
from ..base import (
    Call,
    Provider,
    UpstreamFormatError,
    UpstreamRequest,
    client_status,
    register,
    upstream_error,
)

GEMINI_API = "https://generativelanguage.googleapis.com"
GENERATE = "generateContent"
STREAM = "streamGenerateContent"

# Gemini has no tool-call finish reason: STOP with functionCall parts means tool_calls (handled in the code).
_LENGTH = frozenset({"MAX_TOKENS"})
_FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "MODEL_ARMOR", "LANGUAGE", "JAILBREAK"}
)

# Google RPC status names -> HTTP status, for errors that arrive inside a 200 stream.
_RPC_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INTERNAL": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}

# OpenAI fields Gemini has no (mapped) equivalent for: refused unless they hold their neutral value, so a
# client never silently gets something other than what it asked for.
_UNSUPPORTED = {
    "logprobs": (None, False),  # chat: bool; completions: int
    "top_logprobs": (None, 0),
    "logit_bias": (None,),
    "audio": (None,),
    "prediction": (None,),
    "reasoning_effort": (None,),
    "web_search_options": (None,),
    "echo": (None, False),
    "suffix": (None, ""),
    "best_of": (None, 1),
}
_NOT_YET = "is not supported by provider gemini yet"


def finish_reason(reason: str | None, tool_calls: bool = False) -> str | None:
    """A Gemini finishReason as an OpenAI finish_reason (None: no reason yet)."""
    if not reason:
        return None
    if not isinstance(reason, str):
        return "stop"
    if reason in _LENGTH:
        return "length"
    if reason in _FILTERED or (reason.startswith("IMAGE_") and reason != "IMAGE_OTHER"):
        return "content_filter"
    # STOP, and the ones OpenAI has no word for (OTHER, MALFORMED_FUNCTION_CALL, FINISH_REASON_UNSPECIFIED, ...).
    return "tool_calls" if tool_calls else "stop"


def usage_of(raw: Any) -> dict[str, Any] | None:
    """usageMetadata -> OpenAI usage. Thoughts are output tokens Gemini counts apart from the candidates."""
    if not isinstance(raw, dict) or not isinstance(raw.get("promptTokenCount"), int):
        return None
    thoughts = _int(raw.get("thoughtsTokenCount"))
    out = usage(
        raw["promptTokenCount"],
        _int(raw.get("candidatesTokenCount")) + thoughts,
        cached_tokens=_int(raw.get("cachedContentTokenCount")) or None,
    )
    if thoughts:
        out["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return out


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _vertex(options: ModelOptions) -> bool:
    g = options.gemini
    return g is not None and bool(g.project_id or g.location_id)


class Gemini(Provider):
    name = "gemini"
    api_base = "https://generativelanguage.googleapis.com"
    price_id = "google"
    native_format = "gemini"
    host_option_fields = frozenset({"gemini.api_endpoint", "gemini.location_id"})
    supports_streaming = True

    def requires_model(self, options: ModelOptions) -> bool:
        # A Vertex endpoint (a deployed or tuned model) selects the model itself.
        return not (_vertex(options) and options.gemini is not None and options.gemini.endpoint_id)

    def build_request(self, call: Call) -> UpstreamRequest:
        headers = {}
        if call.access_token:
            headers["authorization"] = f"Bearer {call.access_token}"
        if call.route_type == EMBEDDINGS:
            return UpstreamRequest(url=_embeddings_url(call), body=_embeddings_body(call), headers=headers)
        body = self._body(call)
        return UpstreamRequest(url=self.url(call), body=body, headers=headers)

    def stream_translator(self, call: Call, include_usage: bool, keep_payload: bool) -> GeminiStream:
        return GeminiStream(call, include_usage, keep_payload)

    # ---- URL -----------------------------------------------------------------------------------------------

    def url(self, call: Call) -> str:
        """The standard URL of the surface the rule names; `upstream_url`/`upstream_path` win as given, except
        that the operation in them follows the client's stream flag."""
        options = call.options
        op = STREAM if call.stream else GENERATE
        base, default_path = self._standard(call, op)
        query: list[tuple[str, str]] = []
        rule_path = options.upstream_path
        if options.upstream_url:
            parts = urlsplit(options.upstream_url)
            base = f"{parts.scheme}://{parts.netloc}"
            if parts.path not in ("", "/"):
                rule_path = parts.path
            query = parse_qsl(parts.query, keep_blank_values=True)
        path = rule_path or default_path
        pinned_stream = rule_path is not None and path.endswith(":" + STREAM)
        if pinned_stream or path.endswith((":" + GENERATE, ":" + STREAM)):
            path = path.rsplit(":", 1)[0] + ":" + op
            if not call.stream:
                query = [(k, v) for k, v in query if k != "alt"]  # ?alt=sse belongs to the streaming operation
            elif not pinned_stream and not any(k == "alt" for k, _ in query):
                # The rule names the non-streaming operation: switch it and ask for SSE. A rule that names the
                # streaming operation itself keeps its own query (without alt=sse: the JSON-array form).
                query.append(("alt", "sse"))
        url = base.rstrip("/") + path
        return f"{url}?{urlencode(query)}" if query else url

    def _standard(self, call: Call, op: str) -> tuple[str, str]:
        options = call.options
        model = _model_segment(call.model)
        if not _vertex(options):
            return GEMINI_API, f"/v1beta/models/{model}:{op}"
        g = options.gemini
        assert g is not None
        if not (g.project_id and g.location_id):
            raise ProxyError(
                500,
                "this rule's model.options.gemini needs both project_id and location_id for Vertex AI",
                type="server_error",
                code="proxy_misconfigured",
            )
        location = quote(g.location_id, safe="")
        endpoint = g.api_endpoint or (
            "aiplatform.googleapis.com" if g.location_id == "global" else f"{location}-aiplatform.googleapis.com"
        )
        base = endpoint if "://" in endpoint else f"https://{endpoint}"
        scope = f"/v1/projects/{quote(g.project_id, safe='')}/locations/{location}"
        if g.endpoint_id:
            return base, f"{scope}/endpoints/{quote(g.endpoint_id, safe='')}:{op}"
        return base, f"{scope}/publishers/google/models/{model}:{op}"

    # ---- to Gemini -----------------------------------------------------------------------------------------

    def _body(self, call: Call) -> dict[str, Any]:
        body = call.body
        _refuse_unsupported(body)
        out: dict[str, Any] = {}
        if call.route_type == CHAT:
            system, contents = _contents(body["messages"])
            if system:
                out["systemInstruction"] = {"parts": [{"text": t} for t in system]}
        else:
            prompt = single_prompt(body)
            contents = [{"role": "user", "parts": [{"text": prompt}]}] if prompt else []
        if not contents:
            raise bad_request("at least one non-empty user or assistant message is required", param="messages")
        out["contents"] = contents
        if call.route_type == CHAT:
            tools, tool_config = _tools(body)
            if tools:
                out["tools"] = tools
            if tool_config:
                out["toolConfig"] = tool_config
        else:
            for key in ("tools", "tool_choice", "functions", "function_call"):
                if body.get(key):
                    raise bad_request(f"'{key}' needs the chat route (/v1/chat/completions)", param=key)
        config = _generation_config(call)
        if config:
            out["generationConfig"] = config
        return out

    # ---- from Gemini ---------------------------------------------------------------------------------------

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
        if call.route_type == EMBEDDINGS:
            return _embeddings_response(call, data)
        if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
            data = data[0]  # a one-element JSON array: what the streaming operation answers in one piece
        if not isinstance(data, dict):
            raise UpstreamFormatError("expected a GenerateContentResponse object")
        candidates = data.get("candidates")
        feedback = data.get("promptFeedback")
        if candidates is None and not isinstance(feedback, dict):
            raise UpstreamFormatError("expected a GenerateContentResponse with 'candidates'")
        if not isinstance(candidates, list):
            candidates = []
        choices = []
        for position, candidate in enumerate(c for c in candidates if isinstance(c, dict)):
            choices.append(_choice(candidate, position, uses_functions(call)))
        if not choices:
            # The prompt itself was blocked (promptFeedback.blockReason): no candidate at all.
            blocked = isinstance(feedback, dict) and feedback.get("blockReason")
            message = {"role": "assistant", "content": ""}
            choices = [{"index": 0, "message": message, "logprobs": None, "finish_reason": _blocked(blocked)}]
        choices.sort(key=lambda c: c["index"])
        response = chat_response(
            id=data.get("responseId"),
            model=data.get("modelVersion") or call.model or "",
            message=choices[0]["message"],
            finish_reason=choices[0]["finish_reason"],
            usage=usage_of(data.get("usageMetadata")),
        )
        response["choices"] = choices
        return response if call.route_type == CHAT else chat_to_completion(response)

    def parse_error(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> ProxyError:
        return gemini_error(status, body, content_type)


# ---- embeddings: batchEmbedContents ----------------------------------------------------------------------------

EMBED = "batchEmbedContents"


def _embeddings_url(call: Call) -> str:
    """`/v1beta/models/{model}:batchEmbedContents` (Gemini API); a rule's whole URL is used as given, with a
    generate or single-embed operation in it switched to the batch one."""
    options = call.options
    if _vertex(options):
        raise ProxyError(
            500,
            "embeddings on Vertex AI (:predict) are not supported: use the Gemini API for embedding rules",
            type="server_error",
            code="proxy_misconfigured",
        )
    base, path, query = GEMINI_API, f"/v1beta/models/{_model_segment(call.model)}:{EMBED}", []
    if options.upstream_url:
        parts = urlsplit(options.upstream_url)
        base = f"{parts.scheme}://{parts.netloc}"
        if parts.path not in ("", "/"):
            path = parts.path
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "alt"]
    elif options.upstream_path:
        path = options.upstream_path
    if path.endswith((":" + GENERATE, ":" + STREAM, ":embedContent")):
        path = path.rsplit(":", 1)[0] + ":" + EMBED
    url = base.rstrip("/") + path
    return f"{url}?{urlencode(query)}" if query else url


def _embeddings_body(call: Call) -> dict[str, Any]:
    model = "models/" + (call.model or "").removeprefix("models/")
    dimensions = call.body.get("dimensions")
    requests = []
    for text in embedding_texts(call.body, "gemini"):
        request: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            request["outputDimensionality"] = dimensions
        requests.append(request)
    return {"requests": requests}


def _embeddings_response(call: Call, data: Any) -> dict[str, Any]:
    """`embeddings[].values`; Gemini reports no token counts for embeddings, so the answer has no usage."""
    items = data.get("embeddings") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(e, dict) for e in items):
        raise UpstreamFormatError("expected a batchEmbedContents response with embeddings[].values")
    vectors = [e.get("values") for e in items]
    return embeddings_response(vectors, call.model or "", None, call.body.get("encoding_format"))


def _blocked(reason: Any) -> str:
    return "content_filter" if reason else "stop"


def _model_segment(model: str | None) -> str:
    model = model or ""
    if model.startswith("models/"):  # the Gemini SDKs' resource-name spelling of a model id
        model = model[len("models/") :]
    return quote(model, safe="")


def _refuse_unsupported(body: dict[str, Any]) -> None:
    for key, neutral in _UNSUPPORTED.items():
        value = body.get(key)
        if value not in neutral and not (isinstance(value, dict | list) and not value and None in neutral):
            raise bad_request(f"'{key}' {_NOT_YET}", param=key)
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise bad_request(f"'modalities' other than ['text'] {_NOT_YET}", param="modalities")
    n = body.get("n")
    if n is not None and n < 1:
        raise bad_request("'n' must be at least 1", param="n")
    if n is not None and n > 1 and body.get("stream"):
        raise bad_request("'n' greater than 1 cannot be streamed from provider gemini", param="n")


def _generation_config(call: Call) -> dict[str, Any]:
    body = call.body
    config: dict[str, Any] = {}
    max_tokens = max_tokens_of(body)
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    for key, native in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if body.get(key) is not None:
            config[native] = body[key]
    stop = stop_list(body)
    if stop:
        config["stopSequences"] = stop
    n = body.get("n")
    if n is not None and n > 1:
        config["candidateCount"] = n
    response_format = body.get("response_format")
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind == "json_object":
            config["responseMimeType"] = "application/json"
        elif kind == "json_schema":
            spec = response_format.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            if not isinstance(schema, dict) or not schema:
                raise bad_request(
                    "response_format json_schema needs a non-empty json_schema.schema object for provider gemini",
                    param="response_format",
                )
            # Gemini's responseJsonSchema takes JSON Schema itself ($ref, $defs, additionalProperties, ...): sent
            # as given. OpenAI's `strict` has no Gemini switch (Gemini always constrains decoding to the schema).
            config["responseMimeType"] = "application/json"
            config["responseJsonSchema"] = schema
        elif kind != "text":
            raise bad_request(
                f"response_format {kind!r} {_NOT_YET} (text, json_object and json_schema are)",
                param="response_format",
            )
    return config


# --------------------------------------------------------------------------------------------------------------
# Message mapping
# --------------------------------------------------------------------------------------------------------------


def _contents(messages: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """OpenAI messages -> (system texts, Gemini contents with consecutive same-role turns merged).

    Assistant tool calls become `functionCall` parts of the model turn (with the native id and thoughtSignature
    decoded from the tool-call id, see `tool_call_id`); `tool` results become `functionResponse` parts of a user
    turn, named by the function of the assistant tool call their `tool_call_id` answers (Gemini matches results
    by name: Kong hard-coded that name)."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    calls: dict[str, tuple[str, str | None, int]] = {}  # tool_call_id -> (function name, native id, position)
    order: dict[int, int] = {}  # id(functionResponse part) -> position of the call it answers
    for i, m in enumerate(messages):
        role = m["role"]
        where = f"messages[{i}]"
        if role in ("system", "developer"):
            system.extend(_texts(m.get("content"), where, role))
            continue
        if role == "user":
            parts = _user_parts(m.get("content"), where)
            turn = "user"
        elif role == "assistant":
            parts = [{"text": t} for t in _texts(m.get("content"), where, role)]
            parts.extend(_call_parts(m, where, calls))
            turn = "model"
        elif role == "tool":
            parts = [_tool_result(m, where, calls, order)]
            turn = "user"
        else:  # function: the deprecated form of a tool result, named by the message itself
            name = m.get("name")
            if not isinstance(name, str) or not name:
                raise bad_request(f"{where}: a 'function' message needs its function's 'name'", param=f"{where}.name")
            parts = [{"functionResponse": {"name": name, "response": _result_object(m.get("content"), where)}}]
            turn = "user"
        if not parts:
            continue  # Gemini refuses a turn without parts
        if out and out[-1]["role"] == turn:
            out[-1]["parts"].extend(parts)  # Gemini wants user and model turns to alternate
        else:
            out.append({"role": turn, "parts": parts})
    for turn in out:
        if turn["role"] == "user" and order:
            # Results in the order of their calls: a function called twice in one turn is told apart only by it.
            indexed = list(enumerate(turn["parts"]))
            indexed.sort(key=lambda p: (0, order[id(p[1])], 0) if id(p[1]) in order else (1, 0, p[0]))
            turn["parts"] = [part for _, part in indexed]
    return [s for s in system if s], out


def _call_parts(m: dict[str, Any], where: str, calls: dict[str, tuple[str, str | None, int]]) -> list[dict[str, Any]]:
    """An assistant message's tool_calls (or deprecated function_call) as Gemini functionCall parts."""
    tool_calls = m.get("tool_calls")
    legacy = m.get("function_call")
    if tool_calls and legacy:
        raise bad_request(f"{where}: both 'tool_calls' and 'function_call'", param=f"{where}.function_call")
    parts: list[dict[str, Any]] = []
    if legacy:
        parts.append(_call_part(legacy, None, None, f"{where}.function_call"))
    if tool_calls is None:
        return parts
    if not isinstance(tool_calls, list):
        raise bad_request(f"{where}.tool_calls must be an array", param=f"{where}.tool_calls")
    for j, tc in enumerate(tool_calls):
        here = f"{where}.tool_calls[{j}]"
        if not isinstance(tc, dict) or tc.get("type", "function") != "function":
            raise bad_request(f"{here}: only function tool calls are supported by provider gemini", param=here)
        call_id = tc.get("id")
        if not isinstance(call_id, str) or not call_id:
            raise bad_request(f"{here}.id is required", param=f"{here}.id")
        native_id, signature = parse_tool_call_id(call_id)
        extra = tc.get("extra_content")  # Google's own OpenAI-compatible endpoint carries the signature here
        google = extra.get("google") if isinstance(extra, dict) else None
        if signature is None and isinstance(google, dict) and isinstance(google.get("thought_signature"), str):
            signature = google["thought_signature"]
        part = _call_part(tc.get("function"), native_id, signature, f"{here}.function")
        calls[call_id] = (part["functionCall"]["name"], native_id, len(calls))
        parts.append(part)
    return parts


def _call_part(fn: Any, native_id: str | None, signature: str | None, where: str) -> dict[str, Any]:
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise bad_request(f"{where}.name is required", param=f"{where}.name")
    arguments = fn.get("arguments")
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        args: Any = {}
    elif isinstance(arguments, str):
        try:
            args = jsonutil.loads(arguments)
        except ValueError:
            raise bad_request(f"{where}.arguments is not valid JSON", param=f"{where}.arguments") from None
    else:
        args = arguments
    if not isinstance(args, dict):
        raise bad_request(f"{where}.arguments must be a JSON object for provider gemini", param=f"{where}.arguments")
    call: dict[str, Any] = {"name": fn["name"], "args": args}
    if native_id:
        call["id"] = native_id
    part: dict[str, Any] = {"functionCall": call}
    if signature:
        part["thoughtSignature"] = signature
    return part


def _tool_result(
    m: dict[str, Any], where: str, calls: dict[str, tuple[str, str | None, int]], order: dict[int, int]
) -> dict[str, Any]:
    call_id = m.get("tool_call_id")
    known = calls.get(call_id) if isinstance(call_id, str) else None
    if known is None:
        name = m.get("name")  # some clients name the function on the result itself
        if not isinstance(name, str) or not name:
            raise bad_request(
                f"{where}: tool_call_id {call_id!r} answers no tool call of an earlier assistant message "
                "(provider gemini matches tool results to calls by function name)",
                param=f"{where}.tool_call_id",
            )
        known = (name, None, -1)
    name, native_id, position = known
    response: dict[str, Any] = {"name": name, "response": _result_object(m.get("content"), where)}
    if native_id:
        response["id"] = native_id
    part = {"functionResponse": response}
    if position >= 0:
        order[id(part)] = position
    return part


def _result_object(content: Any, where: str) -> dict[str, Any]:
    """A tool result as the JSON object Gemini requires: a JSON object result as is, anything else (plain text,
    a JSON array, number, string) wrapped as {"result": ...}."""
    text = "".join(_texts(content, where, "tool"))
    try:
        value = jsonutil.loads(text) if text.strip() else text
    except ValueError:
        value = text
    return value if isinstance(value, dict) else {"result": value}


# --------------------------------------------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------------------------------------------


def _tools(body: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
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
            declarations.append(_declaration(tool.get("function"), f"tools[{i}].function"))
    elif functions:
        if not isinstance(functions, list):
            raise bad_request("'functions' must be an array", param="functions")
        declarations = [_declaration(fn, f"functions[{i}]") for i, fn in enumerate(functions)]
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


def _declaration(fn: Any, where: str) -> dict[str, Any]:
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
        schema = _schema(params, f"{where}.parameters", defs, 0)
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


# Gemini's Schema (an OpenAPI 3.0 subset) refuses unknown fields. Kept as they are:
_SCHEMA_KEEP = (
    "title",
    "description",
    "nullable",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "propertyOrdering",
)
_FORMATS = frozenset({"date-time", "enum", "int32", "int64", "float", "double"})
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
_MAX_DEPTH = 40


def _schema(node: Any, where: str, defs: dict[str, Any], depth: int) -> dict[str, Any]:
    """A JSON Schema as Gemini's Schema: `type` upper-cased (a ["x", "null"] type becomes `nullable`), local
    `$ref`s inlined (recursive ones refused), `oneOf` read as `anyOf`, a `null` member of anyOf becomes
    `nullable`, a string `const` becomes a one-value `enum`. Dropped, which only loosens what the model may
    send: `additionalProperties`, `$schema`, `$id`, `default`, `examples`, `format`s Gemini does not know and
    non-string `enum`s (Gemini's enums are strings)."""
    if depth > _MAX_DEPTH:
        raise bad_request(f"{where}: schema too deep (or a recursive $ref) for provider gemini", param=where)
    if node is True or node == {}:
        return {}
    if not isinstance(node, dict):
        raise bad_request(f"{where}: unsupported schema {node!r} for provider gemini", param=where)
    ref = node.get("$ref")
    if ref is not None:
        target = _resolve(ref, defs, where)
        rest = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **rest}
        return _schema(node, where, defs, depth + 1)
    out: dict[str, Any] = {}
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    for k in kinds:
        if not isinstance(k, str) or k not in _TYPES:
            raise bad_request(f"{where}: unknown schema type {k!r}", param=where)
    nullable = "null" in kinds
    kinds = [k for k in kinds if k != "null"]
    if len(kinds) == 1:
        out["type"] = kinds[0].upper()
    elif len(kinds) > 1:
        out["anyOf"] = [{"type": k.upper()} for k in kinds]
    elif nullable:
        out["type"] = "NULL"
        nullable = False
    for key in _SCHEMA_KEEP:
        if key in node:
            out[key] = node[key]
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        out["format"] = fmt
    enum = node.get("enum")
    if "const" in node and enum is None:
        enum = [node["const"]]
    if isinstance(enum, list):
        if None in enum:
            nullable = True
        values = [v for v in enum if v is not None]
        if values and all(isinstance(v, str) for v in values):
            out["enum"] = values
            out.setdefault("type", "STRING")
    properties = node.get("properties")
    if isinstance(properties, dict) and properties:
        out["properties"] = {
            name: _schema(sub, f"{where}.properties.{name}", defs, depth + 1) for name, sub in properties.items()
        }
        out.setdefault("type", "OBJECT")
        required = node.get("required")
        if isinstance(required, list):
            kept = [r for r in required if isinstance(r, str) and r in properties]
            if kept:
                out["required"] = kept
    items = node.get("items")
    if isinstance(items, dict):
        out["items"] = _schema(items, f"{where}.items", defs, depth + 1)
        out.setdefault("type", "ARRAY")
    elif items is not None and items is not True:
        raise bad_request(f"{where}.items: only a single items schema is supported by provider gemini", param=where)
    for key in ("anyOf", "oneOf"):
        members = node.get(key)
        if members is None:
            continue
        if not isinstance(members, list) or not members:
            raise bad_request(f"{where}.{key} must be a non-empty array", param=where)
        converted = []
        for j, sub in enumerate(members):
            if isinstance(sub, dict) and sub.get("type") == "null" and len(sub) == 1:
                nullable = True
                continue
            converted.append(_schema(sub, f"{where}.{key}[{j}]", defs, depth + 1))
        if len(converted) == 1 and "type" not in out:
            out = {**converted[0], **out}
        elif converted:
            if "anyOf" in out:
                raise bad_request(f"{where}: several type alternatives cannot be combined", param=where)
            out["anyOf"] = converted
    all_of = node.get("allOf")
    if all_of is not None:
        if not isinstance(all_of, list) or len(all_of) != 1:
            raise bad_request(
                f"{where}.allOf with more than one schema is not supported by provider gemini", param=where
            )
        out = {**_schema(all_of[0], f"{where}.allOf[0]", defs, depth + 1), **out}
    if nullable:
        out["nullable"] = True
    return out


def _resolve(ref: Any, defs: dict[str, Any], where: str) -> dict[str, Any]:
    for prefix in ("#/$defs/", "#/definitions/"):
        if isinstance(ref, str) and ref.startswith(prefix):
            target = defs.get(unquote(ref[len(prefix) :]).replace("~1", "/").replace("~0", "~"))
            if isinstance(target, dict):
                return target
    raise bad_request(f"{where}: $ref {ref!r} cannot be resolved (only local #/$defs/... refs can)", param=where)


def _texts(content: Any, where: str, role: str) -> list[str]:
    """The non-empty texts of a content that may hold only text."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content] if content else []
    texts = []
    for j, part in enumerate(content):
        kind = part["type"]
        if kind == "text" or (kind == "refusal" and role == "assistant"):
            text = part.get(kind)
            if not isinstance(text, str):
                raise bad_request(f"{where}.content[{j}].{kind} must be a string", param=f"{where}.content[{j}]")
            if text:
                texts.append(text)
        else:
            raise bad_request(
                f"{where}.content[{j}]: a {role} message may hold only text", param=f"{where}.content[{j}]"
            )
    return texts


def _user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content or []):
        kind = part["type"]
        here = f"{where}.content[{j}]"
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise bad_request(f"{here}.text must be a string", param=here)
            if text:
                parts.append({"text": text})
        elif kind == "image_url":
            parts.append(_image_part(part, here))
        else:
            raise bad_request(f"{here}: '{kind}' parts {_NOT_YET}", param=here)
    return parts


_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)((?:;[^,;]*)*);base64,(.*)$", re.DOTALL)


_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".heif": "image/heif",
}
_FILES_API = re.compile(r"^/v1(?:beta)?/files/[^/]+$")


def _image_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    """A data: URL -> inlineData; an http(s) or gs:// URL -> fileData (Gemini fetches it), its MIME type guessed
    from the file extension (a Files API URI needs none). An image of unknown type is refused."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise bad_request(f"{where}: image_url.url is required", param=where)
    m = _DATA_URL.match(url)
    if m and m.group(1).lower().startswith("image/"):
        # Gemini answers 400 "Unsupported MIME type: image/jpg" to the common non-standard jpg label.
        mime = m.group(1).lower()
        return {"inlineData": {"mimeType": "image/jpeg" if mime == "image/jpg" else mime, "data": m.group(3)}}
    parts = urlsplit(url)
    if parts.scheme in ("http", "https", "gs") and parts.netloc:
        path = unquote(parts.path)
        suffix = path[path.rfind(".") :].lower() if "." in path.rsplit("/", 1)[-1] else ""
        mime = _IMAGE_TYPES.get(suffix)
        if mime:
            return {"fileData": {"mimeType": mime, "fileUri": url}}
        if parts.netloc == "generativelanguage.googleapis.com" and _FILES_API.match(parts.path):
            return {"fileData": {"fileUri": url}}  # an uploaded file: Gemini knows its type
        raise bad_request(
            f"{where}: provider gemini cannot tell this image URL's type from its name (it takes .png, .jpg, "
            ".jpeg, .webp, .heic and .heif URLs); send it as a data: URL",
            param=where,
        )
    raise bad_request(
        f"{where}: provider gemini takes images as base64 data: URLs (data:image/png;base64,...) or http(s):// "
        "and gs:// URLs",
        param=where,
    )


# --------------------------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------------------------


def uses_functions(call: Call) -> bool:
    """The client uses the deprecated functions/function_call API (and expects function_call answers)."""
    return call.route_type == CHAT and (
        call.body.get("functions") is not None or call.body.get("function_call") is not None
    )


def _choice(candidate: dict[str, Any], position: int, functions: bool = False) -> dict[str, Any]:
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for part in _parts(candidate):
        if isinstance(part.get("text"), str):
            (reasoning if part.get("thought") else texts).append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            tool_calls.append(_tool_call(part))
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not tool_calls else None}
    reason = finish_reason(candidate.get("finishReason"), bool(tool_calls)) or "stop"
    if tool_calls and functions:
        # A client of the deprecated `functions` API gets the deprecated answer: one function_call.
        if len(tool_calls) > 1:
            raise UpstreamFormatError("gemini answered a functions request with several function calls")
        message["function_call"] = tool_calls[0]["function"]
        reason = "function_call" if reason == "tool_calls" else reason
    elif tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    index = candidate.get("index")
    return {
        "index": index if isinstance(index, int) else position,
        "message": message,
        "logprobs": None,
        "finish_reason": reason,
    }


def _parts(candidate: dict[str, Any]) -> list[dict[str, Any]]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _tool_call(part: dict[str, Any]) -> dict[str, Any]:
    fn = part["functionCall"]
    native_id = fn.get("id") if isinstance(fn.get("id"), str) else None
    signature = part.get("thoughtSignature") if isinstance(part.get("thoughtSignature"), str) else None
    return {
        "id": tool_call_id(native_id, signature),
        "type": "function",
        "function": {"name": fn.get("name") or "", "arguments": jsonutil.dumps_str(fn.get("args") or {})},
    }


# Tool-call ids. Gemini API function calls carry no id (Vertex may add one) and thinking models put an opaque
# thoughtSignature on them that must come back with the call on the next turn (Gemini 3 refuses the turn
# without it). Both travel inside the id the client gets and sends back: call_<24 hex>[.id.<b64>][.ts.<b64>],
# base64url without padding. The function name for the tool result is looked up in the history instead.
_ID_HEAD = re.compile(r"^call_[0-9a-f]{24}$")
_ID_FIELDS = ("id", "ts")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


def tool_call_id(native_id: str | None = None, signature: str | None = None) -> str:
    out = f"call_{uuid.uuid4().hex[:24]}"
    for key, value in zip(_ID_FIELDS, (native_id, signature), strict=True):
        if value:
            out += f".{key}." + base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")
    return out


def parse_tool_call_id(call_id: str) -> tuple[str | None, str | None]:
    """(native id, thoughtSignature) carried by an id of ours; (None, None) for any other id."""
    head, *rest = call_id.split(".")
    if not _ID_HEAD.match(head) or len(rest) % 2:
        return None, None
    found: dict[str, str] = {}
    for key, value in zip(rest[::2], rest[1::2], strict=True):
        if key not in _ID_FIELDS or key in found or not _B64URL.match(value):
            return None, None
        try:
            found[key] = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        except (binascii.Error, ValueError):
            return None, None
    return found.get("id"), found.get("ts")


# --------------------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------------------


def gemini_error(status: int, body: bytes, content_type: str) -> ProxyError:
    """A Google RPC error body (`{"error": {code, message, status, details}}`, sometimes inside an array) in
    the OpenAI envelope, keeping the HTTP status; anything else goes to the generic mapping."""
    try:
        data = jsonutil.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, list) and data:
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict) or not isinstance(err.get("message"), str):
        return upstream_error(status, body, content_type, "gemini")
    return _rpc_error(client_status(status), err)


def _rpc_error(status: int, err: dict[str, Any]) -> ProxyError:
    rpc = err.get("status") if isinstance(err.get("status"), str) else None
    headers = {}
    for detail in err.get("details") or ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = _seconds(detail.get("retryDelay"))
            if delay is not None:
                headers["retry-after"] = str(math.ceil(delay))
    return ProxyError(
        status,
        err.get("message") or f"gemini error {rpc or status}",
        type=default_error_type(status),
        code=rpc,
        headers=headers,
    )


def _seconds(value: Any) -> float | None:
    if isinstance(value, str) and value.endswith("s"):
        try:
            seconds = float(value[:-1])
        except ValueError:
            return None
        return max(0.0, seconds) if math.isfinite(seconds) else None
    return None


def _stream_error_status(err: dict[str, Any]) -> int:
    code = err.get("code")
    if isinstance(code, int) and 400 <= code <= 599:
        return client_status(code)
    return _RPC_STATUS.get(str(err.get("status")), 502)


# --------------------------------------------------------------------------------------------------------------
# Streams: Gemini SSE or JSON array -> OpenAI chunks
# --------------------------------------------------------------------------------------------------------------


class GeminiStream:
    """Translates a streamGenerateContent body into OpenAI chunks, response object by response object.

    Every object is a complete GenerateContentResponse: `parts[].text` are deltas, `functionCall` parts arrive
    whole, `usageMetadata` is cumulative (the last one wins) and `finishReason` may repeat on every object
    (older models), so the end of the body, not a finishReason, ends the stream. Gemini sends no [DONE]: a body
    that ends before any finishReason was cut short. Each usageMetadata goes into the record as it arrives; the
    client's usage chunk still comes only at the end.
    """

    __slots__ = (
        "_array",
        "_decoder",
        "_done",
        "_finish",
        "_functions",
        "_sniffer",
        "_started",
        "_tools",
        "_usage_raw",
        "out",
        "result",
    )

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool) -> None:
        self.out = ChunkWriter(call.route_type, call.model or "", include_usage, keep_payload)
        self.result = self.out.result
        self._decoder: SSEDecoder | JSONArrayDecoder | None = None  # chosen by the body's first byte
        self._array = False
        self._sniffer = FramingSniffer()
        self._started = False
        self._done = False
        self._finish: str | None = None
        self._tools = 0  # tool calls emitted so far (their OpenAI index)
        self._functions = uses_functions(call)  # deprecated API: answer with delta.function_call
        self._usage_raw: Any = None

    @guarded
    def feed(self, chunk: bytes) -> bytes:
        if self._done or not chunk:
            return b""
        if self._decoder is None:
            chunk = self._sniff(chunk)
            if self._decoder is None:
                return b""
        try:
            objects = self._objects(self._decoder.feed(chunk))
        except StreamDecodeError as e:
            return self._fail(f"gemini stream is malformed: {e}")
        return b"".join(self._object(o) for o in objects)

    @guarded
    def finish(self) -> bytes:
        if self._done:
            return b""
        out = b""
        if self._decoder is not None:
            try:
                out = b"".join(self._object(o) for o in self._objects(self._decoder.flush()))
            except StreamDecodeError as e:
                return out + self._fail(f"gemini stream is malformed: {e}")
        if self._done:
            return out
        if self._finish is None:
            return out + self._fail("gemini stream ended before a finishReason")
        self._done = True
        reason = "function_call" if self._functions and self._finish == "tool_calls" else self._finish
        return out + self._start() + self.out.finish(reason, usage_of(self._usage_raw))

    # ---- framing -------------------------------------------------------------------------------------------

    def _sniff(self, chunk: bytes) -> bytes:
        """Buffer until the first byte that is not whitespace or BOM: '[' is the JSON-array form, else SSE.
        Returns the bytes to feed the chosen decoder (empty while undecided)."""
        found = self._sniffer.sniff(chunk)
        if found is None:
            return b""
        first, rest, head = found
        if first == b"[":
            self._array = True
            self._decoder = JSONArrayDecoder()
            return rest
        self._decoder = SSEDecoder()  # SSE drops the BOM and blank lines itself
        return head

    def _objects(self, items: list[Any]) -> list[Any]:
        if self._array:
            return items
        out = []
        for event in items:
            if event.data == "[DONE]":  # not Gemini's, but some OpenAI-ish gateways in front of it add one
                continue
            try:
                out.append(jsonutil.loads(event.data))
            except ValueError:
                out.append(_NOT_JSON)
        return out

    # ---- translation ---------------------------------------------------------------------------------------

    def _fail(self, message: str, status: int = 502, type: str | None = None, code: str = "stream_error") -> bytes:
        self._done = True
        return self.out.error(stream_error(message, status=status, code=code, type=type))

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self.out.role()

    def _object(self, obj: Any) -> bytes:
        if self._done:
            return b""
        if obj is _NOT_JSON or not isinstance(obj, dict):
            return self._fail("gemini sent a stream event that is not a JSON object")
        err = obj.get("error")
        if isinstance(err, dict):
            status = _stream_error_status(err)
            rpc = err.get("status") if isinstance(err.get("status"), str) else None
            message = err.get("message") if isinstance(err.get("message"), str) else "gemini stream error"
            return self._fail(message, status=status, type=default_error_type(status), code=rpc or "stream_error")
        if not self._started:
            self.out.set_model(obj.get("modelVersion"))
        out = self._start()
        if "usageMetadata" in obj:
            self._usage_raw = obj["usageMetadata"]  # cumulative: the latest wins
            self.out.note_usage(usage_of(self._usage_raw))  # the record has it at once, should the stream be cut
        candidates = obj.get("candidates")
        if not candidates:
            feedback = obj.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                self._finish = "content_filter"
            return out
        first = candidates[0] if isinstance(candidates, list) else None
        candidate = first if isinstance(first, dict) else {}
        for part in _parts(candidate):
            if isinstance(part.get("text"), str):
                out += self.out.reasoning(part["text"]) if part.get("thought") else self.out.text(part["text"])
            elif isinstance(part.get("functionCall"), dict):
                call = _tool_call(part)
                fn = call["function"]
                if self._functions:
                    if self._tools:
                        return out + self._fail("gemini answered a functions request with several function calls")
                    out += self._function_delta(call)
                else:
                    out += self.out.tool_call_start(self._tools, call["id"], fn["name"])
                    out += self.out.tool_call_arguments(self._tools, fn["arguments"])
                self._tools += 1
        reason = finish_reason(candidate.get("finishReason"), self._tools > 0)
        if reason is not None:
            self._finish = reason
        return out

    def _function_delta(self, call: dict[str, Any]) -> bytes:
        """The deprecated `delta.function_call` (name first, then the arguments); the audit record gets the call
        as a tool call."""
        result = self.result
        if result.tool_calls is not None:
            result.tool_calls.append(call)
        out = self.out.function_call_delta(name=call["function"]["name"])
        out += self.out.function_call_delta(arguments=call["function"]["arguments"])
        if result.first_token_at is None:
            result.first_token_at = time.time()
        return out


_NOT_JSON = object()


GEMINI = register(Gemini())
