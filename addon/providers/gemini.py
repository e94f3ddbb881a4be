"""Gemini: OpenAI chat/completions <-> generateContent / streamGenerateContent, on the Gemini API (API key) or on
Vertex AI (OAuth bearer token; `options.gemini.project_id` and `location_id`).

Streams are translated from either wire form Gemini has: SSE (`?alt=sse`, what we ask for) or, when a rule's
upstream_url asks for `:streamGenerateContent` without `alt=sse`, one JSON array streamed element by element.
The translator tells them apart by the first byte of the body.
"""

from __future__ import annotations

import math
import re
import uuid
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from .. import jsonutil
from ..errors import ProxyError, bad_request, default_error_type
from ..openai_format import (
    CHAT,
    chat_response,
    chat_to_completion,
    max_tokens_of,
    single_prompt,
    stop_list,
    usage,
)
from ..rules import ModelOptions
from ..streaming import ChunkWriter, stream_error
from ..streams import JSONArrayDecoder, SSEDecoder, StreamDecodeError
from .base import Call, Provider, UpstreamFormatError, UpstreamRequest, client_status, register, upstream_error

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
    "functions": (None,),
    "function_call": (None, "none", "auto"),
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
    supports_streaming = True

    def requires_model(self, options: ModelOptions) -> bool:
        # A Vertex endpoint (a deployed or tuned model) selects the model itself.
        return not (_vertex(options) and options.gemini is not None and options.gemini.endpoint_id)

    def build_request(self, call: Call) -> UpstreamRequest:
        body = self._body(call)
        headers = {}
        if call.access_token:
            headers["authorization"] = f"Bearer {call.access_token}"
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
        config = _generation_config(call)
        if config:
            out["generationConfig"] = config
        return out

    # ---- from Gemini ---------------------------------------------------------------------------------------

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
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
            choices.append(_choice(candidate, position))
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

    def parse_error(self, status: int, body: bytes, content_type: str) -> ProxyError:
        return gemini_error(status, body, content_type)


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
    if body.get("tools"):
        raise bad_request(f"'tools' (function calling) {_NOT_YET}", param="tools")
    if body.get("tool_choice") not in (None, "none", "auto"):
        raise bad_request("'tool_choice' needs tools, which provider gemini does not support yet", param="tool_choice")
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
        elif kind != "text":
            raise bad_request(
                f"response_format {kind!r} {_NOT_YET} (json_object and text are)", param="response_format"
            )
    return config


# --------------------------------------------------------------------------------------------------------------
# Message mapping
# --------------------------------------------------------------------------------------------------------------


def _contents(messages: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """OpenAI messages -> (system texts, Gemini contents with consecutive same-role turns merged)."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
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
            if m.get("tool_calls") or m.get("function_call"):
                raise bad_request(f"{where}: assistant tool calls {_NOT_YET}", param=f"{where}.tool_calls")
            parts = [{"text": t} for t in _texts(m.get("content"), where, role)]
            turn = "model"
        else:  # tool, function
            raise bad_request(f"{where}: role '{role}' (tool results) {_NOT_YET}", param=f"{where}.role")
        if not parts:
            continue  # Gemini refuses a turn without parts
        if out and out[-1]["role"] == turn:
            out[-1]["parts"].extend(parts)  # Gemini wants user and model turns to alternate
        else:
            out.append({"role": turn, "parts": parts})
    return [s for s in system if s], out


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


def _image_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise bad_request(f"{where}: image_url.url is required", param=where)
    m = _DATA_URL.match(url)
    if m and m.group(1).startswith("image/"):
        return {"inlineData": {"mimeType": m.group(1), "data": m.group(3)}}
    # http(s) URLs would have to be downloaded (Gemini does not fetch them): that is not this proxy's job.
    raise bad_request(
        f"{where}: provider gemini takes images as base64 data: URLs (data:image/png;base64,...)", param=where
    )


# --------------------------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------------------------


def _choice(candidate: dict[str, Any], position: int) -> dict[str, Any]:
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for part in _parts(candidate):
        if isinstance(part.get("text"), str):
            (reasoning if part.get("thought") else texts).append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            tool_calls.append(_tool_call(part["functionCall"]))
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    index = candidate.get("index")
    return {
        "index": index if isinstance(index, int) else position,
        "message": message,
        "logprobs": None,
        "finish_reason": finish_reason(candidate.get("finishReason"), bool(tool_calls)) or "stop",
    }


def _parts(candidate: dict[str, Any]) -> list[dict[str, Any]]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _tool_call(fn: dict[str, Any]) -> dict[str, Any]:
    # Gemini API function calls carry no id (Vertex may add one): OpenAI clients need one to answer.
    return {
        "id": fn.get("id") or f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": fn.get("name") or "", "arguments": jsonutil.dumps_str(fn.get("args") or {})},
    }


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

_BOM = b"\xef\xbb\xbf"
_WS = b" \t\r\n"


class GeminiStream:
    """Translates a streamGenerateContent body into OpenAI chunks, response object by response object.

    Every object is a complete GenerateContentResponse: `parts[].text` are deltas, `functionCall` parts arrive
    whole, `usageMetadata` is cumulative (the last one wins) and `finishReason` may repeat on every object
    (older models), so the end of the body, not a finishReason, ends the stream. Gemini sends no [DONE]: a body
    that ends before any finishReason was cut short.
    """

    __slots__ = (
        "_array",
        "_decoder",
        "_done",
        "_finish",
        "_head",
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
        self._head = b""  # leading whitespace (and BOM) seen before the first meaningful byte
        self._started = False
        self._done = False
        self._finish: str | None = None
        self._tools = 0  # tool calls emitted so far (their OpenAI index)
        self._usage_raw: Any = None

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
        return out + self._start() + self.out.finish(self._finish, usage_of(self._usage_raw))

    # ---- framing -------------------------------------------------------------------------------------------

    def _sniff(self, chunk: bytes) -> bytes:
        """Buffer until the first byte that is not whitespace or BOM: '[' is the JSON-array form, else SSE.
        Returns the bytes to feed the chosen decoder (empty while undecided)."""
        head = self._head + chunk
        has_bom = head.startswith(_BOM)
        if not has_bom and _BOM.startswith(head):
            self._head = head  # maybe a BOM split across chunks
            return b""
        rest = (head[3:] if has_bom else head).lstrip(_WS)
        if not rest:
            self._head = head
            return b""
        self._head = b""
        if rest[:1] == b"[":
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
                call = _tool_call(part["functionCall"])
                fn = call["function"]
                out += self.out.tool_call_start(self._tools, call["id"], fn["name"])
                out += self.out.tool_call_arguments(self._tools, fn["arguments"])
                self._tools += 1
        reason = finish_reason(candidate.get("finishReason"), self._tools > 0)
        if reason is not None:
            self._finish = reason
        return out


_NOT_JSON = object()


GEMINI = register(Gemini())
