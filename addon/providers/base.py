"""What every provider module shares: the per-request Call, the UpstreamRequest it builds, URL resolution and the
mapping of any upstream error body into the OpenAI envelope. Pure code: no mitmproxy, no I/O."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from .. import jsonutil
from ..errors import ProxyError
from ..openai_validate import CHAT
from ..spec import AuthSpec, RuleSpec
from ..streaming import ChunkWriter, StreamTranslator, StreamWriter

if TYPE_CHECKING:
    from ..spec import ModelOptions


class UpstreamFormatError(ValueError):
    """An upstream 2xx body that cannot be translated; the client gets a 502."""


@dataclass(slots=True)
class Call:
    """One client request, validated and resolved, as the provider sees it."""

    route_type: str  # llm/v1/chat | llm/v1/completions
    body: dict[str, Any]  # the OpenAI-format client body, config tuning applied
    model: str | None  # resolved model name (config wins over the client's)
    options: ModelOptions  # rule options with templates rendered
    stream: bool = False
    client_query: Mapping[str, str] = field(default_factory=dict)
    auth: AuthSpec | None = None  # the rule's auth block (AWS keys, GCP service account, ...)
    access_token: str | None = None  # an OAuth token the glue fetched for this call (GCP service accounts)
    response_headers: Mapping[str, str] | None = None  # the upstream's response headers, once they arrived
    client_model: str | None = None  # the model the client asked for, when an alias mapped it to `model`
    dropped: list[str] = field(default_factory=list)  # what the translation could not carry (the loss report)
    # The client format's stream writer (chunks.StreamWriter): translators emit through it, whatever the client spoke.
    writer: Callable[[str, str, bool, bool], StreamWriter] = ChunkWriter


@dataclass(slots=True)
class UpstreamRequest:
    url: str
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"


class Provider:
    """Base class of the provider modules: to-provider (build_request) and from-provider (parse_*) sides."""

    name: ClassVar[str]
    # Whether stream requests can be served (translated or passed through) for this provider.
    supports_streaming: ClassVar[bool] = False

    # ---- facts the shared modules ask for, so that none of them names a provider ----
    api_base: ClassVar[str | None] = None  # the public API root; route_type preserve appends the client's path
    price_id: ClassVar[str | None] = None  # the provider's id in the genai-prices table, if it has one
    native_format: ClassVar[str | None] = None  # the llm_format whose requests pass through to it unchanged
    native_adapter: ClassVar[Any] = None  # its native.NativeFormat, where the provider package defines one
    # Options that decide the upstream host: never templated from a request.
    host_option_fields: ClassVar[frozenset[str]] = frozenset()
    # Upstream response headers a client keeps beyond the usual retry-after and request ids (rate limits).
    kept_header_prefixes: ClassVar[tuple[bytes, ...]] = (b"x-ratelimit-",)
    # Optional standard-request fields this provider maps. Another client format's request may carry them as
    # hints (a thinking budget as reasoning_effort, top_k): where the provider has no such control they are dropped
    # and reported instead of refused, the client having asked in its own terms.
    optional_fields: ClassVar[frozenset[str]] = frozenset()
    # An OpenAI-compatible API that takes an OpenAI client's body as it is: what it does not list is left to it (the
    # core does not walk an agent's whole history for extensions on the proxy's hottest path).
    forwards_body: ClassVar[bool] = False
    # How many cache breakpoints (the extension cache_control) one request may carry to a provider that caches only
    # where told (it lists cache_control among its optional fields); 0: it caches by itself, or not at all. More is
    # refused, and automatic breakpoints (model.options.cache_breakpoints: auto) stay within it.
    cache_breakpoints: ClassVar[int] = 0
    # Its own keys in a rule's model.options, as pydantic takes them: key -> (type, default). The providers package
    # assembles spec.ModelOptions from the common options and these, once every provider has registered.
    option_fields: ClassVar[Mapping[str, tuple[Any, Any]]] = {}
    # auth.<key> that Kong's schema has for this provider and the proxy does not implement -> the refusal message.
    refused_auth_keys: ClassVar[Mapping[str, str]] = {}
    # OpenAI's Responses API (route type llm/v1/responses) is the provider's own: passed through, not translated.
    serves_responses: ClassVar[bool] = False

    def cache_limit(self, model: str | None) -> int:
        """How many cache breakpoints a request to `model` may carry (0: the model caches by itself or not at all,
        and the breakpoints are dropped and reported)."""
        return self.cache_breakpoints

    def responses_base(self, options: ModelOptions) -> str:
        """The scheme and host a passed-through Responses request goes to (when no upstream_url is set)."""
        raise NotImplementedError

    def responses_path(self, path: str, query: list[tuple[str, str]], options: ModelOptions) -> str:
        """The upstream path for the client's (/v1/responses[/...], /v1/models); may add to the query."""
        return path

    def responses_model(self, options: ModelOptions, model: str | None) -> str | None:
        """The model a passed-through Responses request names upstream (the rule's, aliases applied)."""
        return model

    def telemetry_name(self, upstream_url: str | None) -> str:
        """Its gen_ai.provider.name in the OpenTelemetry GenAI conventions (their well-known value, else its name)."""
        return self.name

    def check_rule(self, spec: RuleSpec, unset: frozenset[str]) -> str | None:
        """What is wrong with a rule for this provider, checked at load (None when nothing). `unset`: option
        paths (model.options.x) whose ${ENV} was not set, so they cannot be judged yet."""
        if spec.route_type == "llm/v1/embeddings":
            return self.embeddings_problem(spec.model.options)
        return None

    def embeddings_problem(self, options: ModelOptions) -> str | None:
        """Why route_type llm/v1/embeddings cannot work with these options, if it cannot."""
        return None

    def preserve_target(
        self, options: ModelOptions, model: str | None, path: str, query: dict[str, str], headers: dict[str, str]
    ) -> tuple[str | None, str]:
        """route_type preserve: (base URL, path) of the upstream request for the client's path; may add to the
        query and headers. None as the base: the rule must name an upstream_url."""
        return options.upstream_url or self.api_base, path

    def requires_model(self, options: ModelOptions) -> bool:
        return True

    def build_request(self, call: Call) -> UpstreamRequest:
        raise NotImplementedError

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
        """The OpenAI-format response for a parsed 2xx upstream JSON body."""
        raise NotImplementedError

    def parse_error(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> ProxyError:
        return upstream_error(status, body, content_type, self.name)

    def blocking_setup(self, call: Call) -> Callable[[], object] | None:
        """Work that may block (credential files, metadata services), which the glue runs in a thread before
        build_request; None when there is none (the usual case, after the first request)."""
        return None

    def sign(self, call: Call, up: UpstreamRequest, body: bytes) -> None:
        """Last step before sending: add headers computed from the exact body bytes (AWS SigV4)."""

    def stream_translator(self, call: Call, include_usage: bool, keep_payload: bool) -> StreamTranslator:
        """The translator of a 2xx stream; `include_usage`: the client asked for the usage chunk."""
        raise NotImplementedError

    # ---- the provider's own token counter, where it has one (optional) ----

    def count_tokens_request(self, call: Call) -> UpstreamRequest | None:
        """The request to the provider's token counter for the input of `call` (a chat request, not streamed):
        what the client's format asks for when it wants a token count. None: the provider has no counter (or
        none for this set-up), and the client format answers its local estimate."""
        return None

    def parse_token_count(self, data: Any) -> int | None:
        """The input-token count in the counter's 2xx JSON answer; None when it holds none."""
        return None


# --------------------------------------------------------------------------------------------------------------
# Reading upstream JSON of any shape: a field of the wrong type reads as absent
# --------------------------------------------------------------------------------------------------------------


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def uses_functions(call: Call) -> bool:
    """The client uses the deprecated functions/function_call API (and expects function_call answers)."""
    return call.route_type == CHAT and (
        call.body.get("functions") is not None or call.body.get("function_call") is not None
    )


def assistant_message(
    texts: list[str],
    reasoning: list[str],
    tool_calls: list[dict[str, Any]],
    reason: str,
    functions: bool,
    several: str,
) -> tuple[dict[str, Any], str]:
    """The OpenAI assistant message of a translated answer, and its finish reason. A client of the deprecated
    `functions` API (`functions`) gets the deprecated answer: one function_call (several: a 502 saying `several`)."""
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not tool_calls else None}
    if tool_calls and functions:
        if len(tool_calls) > 1:
            raise UpstreamFormatError(several)
        message["function_call"] = tool_calls[0]["function"]
        reason = "function_call" if reason == "tool_calls" else reason
    elif tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    return message, reason


def add_turn(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """A turn of content blocks for a provider that demands alternating roles: consecutive turns of one role
    become one."""
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def trim_prefill(turns: list[dict[str, Any]], is_text: Callable[[dict[str, Any]], bool]) -> None:
    """A final assistant turn is a prefill, which Claude refuses when it ends in whitespace ("final assistant
    content cannot end with trailing whitespace"): trimmed; a prefill of only whitespace is no prefill."""
    if not (turns and turns[-1]["role"] == "assistant" and is_text(turns[-1]["content"][-1])):
        return
    blocks = turns[-1]["content"]
    blocks[-1]["text"] = blocks[-1]["text"].rstrip()
    if not blocks[-1]["text"]:
        blocks.pop()
        if not blocks:
            turns.pop()


# --------------------------------------------------------------------------------------------------------------
# URLs
# --------------------------------------------------------------------------------------------------------------


def build_url(
    options: ModelOptions, default_base: str, default_path: str, query: Mapping[str, str] | None = None
) -> str:
    """The upstream URL: `upstream_url` wins (a bare scheme://host:port gets the provider's path), then
    `upstream_path` replaces the default path. `query` is merged over any query in upstream_url."""
    path = options.upstream_path or default_path
    if options.upstream_url:
        parts = urlsplit(options.upstream_url)
        base = f"{parts.scheme}://{parts.netloc}"
        if parts.path not in ("", "/"):
            path = parts.path
        extra = dict(_parse_query(parts.query))
    else:
        base, extra = default_base, {}
    if query:
        extra.update(query)
    url = base.rstrip("/") + path
    return f"{url}?{urlencode(extra)}" if extra else url


def _parse_query(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def url_path(options: ModelOptions) -> str | None:
    """The path the rule pins (upstream_url's path or upstream_path), if any."""
    if options.upstream_url:
        path = urlsplit(options.upstream_url).path
        if path not in ("", "/"):
            return path
    return options.upstream_path


# --------------------------------------------------------------------------------------------------------------
# Upstream errors -> OpenAI envelope
# --------------------------------------------------------------------------------------------------------------

# Statuses OpenAI clients do not know; mapped to the closest one they retry or report correctly.
_STATUS_MAP = {529: 503, 498: 401, 499: 499}
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def client_status(status: int) -> int:
    return _STATUS_MAP.get(status, status)


def upstream_error(status: int, body: bytes, content_type: str, provider: str) -> ProxyError:
    """Any provider's error body (JSON of any shape, HTML, text, empty) as an OpenAI-envelope ProxyError."""
    out_status = client_status(status)
    message, etype, code, param = _error_fields(body)
    if not message:
        text = body.decode("utf-8", "replace").strip()
        if "html" in content_type.lower() or text.startswith("<"):
            text = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text))).strip()
        if text:
            message = f"{provider} returned HTTP {status}: {text[:300]}"
        else:
            message = f"{provider} returned HTTP {status} with an empty body"
    if status == 529:
        # OpenAI clients know server_error; Anthropic's own type stays visible as the code.
        etype, code = "server_error", code or etype or "overloaded"
    return ProxyError(out_status, message, type=etype, code=code, param=param)


def _error_fields(body: bytes) -> tuple[str | None, str | None, str | None, str | None]:
    try:
        data = jsonutil.loads(body) if body else None
    except ValueError:
        return None, None, None, None
    if not isinstance(data, dict):
        if isinstance(data, list) and data and isinstance(data[0], dict):
            data = data[0]  # Gemini sometimes wraps its error object in an array
        else:
            return None, None, None, None
    err = data.get("error")
    if isinstance(err, dict):  # OpenAI, Azure, Anthropic, Gemini, Mistral chat stream
        message = err.get("message")
        etype = err.get("type") or err.get("status")
        code = err.get("code")
        return (
            _str(message),
            _str(etype),
            _str(code) if not isinstance(code, int) else _str(err.get("status")),
            _str(err.get("param")),
        )
    if isinstance(err, str):  # Ollama, TGI, HF
        return err, _str(data.get("error_type")), None, None
    if "message" in data:  # Bedrock, Cohere, Mistral
        return (
            _str(data.get("message")),
            _str(data.get("type")),
            _str(data.get("code")),
            _str(data.get("param")),
        )
    if "detail" in data:  # FastAPI-style 422 (Mistral)
        return json.dumps(data["detail"])[:500], None, None, None
    return None, None, None, None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


# Providers register here; the addon looks them up by `model.provider`.
REGISTRY: dict[str, Provider] = {}


def register(provider: Provider) -> Provider:
    REGISTRY[provider.name] = provider
    return provider
