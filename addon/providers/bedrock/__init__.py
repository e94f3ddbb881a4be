"""Amazon Bedrock: OpenAI chat/completions <-> the Converse and ConverseStream APIs, signed with AWS SigV4.

To Bedrock: `POST /model/{modelId}/converse` (or `/converse-stream`) on `bedrock-runtime.{region}.amazonaws.com`,
the model id percent-encoded as one path segment (`:` -> `%3A`) exactly as botocore sends it. `sign()` signs the
final body bytes with botocore's SigV4 (service `bedrock`; botocore double-encodes the canonical URI itself).
From Bedrock: the Converse JSON, or the binary AWS eventstream of ConverseStream, to OpenAI chunks.

Pure translation, except for the credentials: `sign()` resolves the rule's AWS keys, or once the standard
botocore credential chain (environment, profile, SSO, container or instance role), and caches the result.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials

from .. import jsonutil
from ..errors import ProxyError, bad_request, default_error_type
from ..openai_format import (
    CHAT,
    EMBEDDINGS,
    chat_response,
    chat_to_completion,
    embedding_texts,
    embedding_usage,
    embeddings_response,
    max_tokens_of,
    refuse_unsupported,
    single_prompt,
    stop_list,
    text_of,
    usage_with_cache,
)
from ..spec import AuthSpec, ModelOptions, RuleSpec, encode_url_value
from ..streaming import ChunkWriter, guarded, stream_error
from ..streams import EventStreamDecoder, EventStreamMessage, StreamDecodeError
from .base import (
    Call,
    Provider,
    UpstreamFormatError,
    UpstreamRequest,
    build_url,
    client_status,
    register,
    url_path,
)

SIGNING_NAME = "bedrock"  # the SigV4 service name (not "bedrock-runtime", which is only the host prefix)
MAX_TEMPERATURE = 1.0  # OpenAI allows 0-2, Converse 0-1: values above 1 are clamped
CONVERSE, CONVERSE_STREAM = "converse", "converse-stream"

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    # malformed_model_output, malformed_tool_use and unknown values: "stop"
}

# AWS error names (x-amzn-ErrorType, `__type`, or a stream's `:exception-type`) -> the HTTP status Bedrock uses.
ERROR_STATUS = {
    "validationexception": 400,
    "conflictexception": 400,
    "servicequotaexceededexception": 400,
    "accessdeniedexception": 403,
    "unrecognizedclientexception": 403,
    "invalidsignatureexception": 403,
    "expiredtokenexception": 403,
    "resourcenotfoundexception": 404,
    "modeltimeoutexception": 408,
    "modelerrorexception": 424,
    "modelstreamerrorexception": 424,
    "throttlingexception": 429,
    "modelnotreadyexception": 429,
    "internalserverexception": 500,
    "serviceunavailableexception": 503,
}
# Statuses OpenAI clients would misread: Bedrock's model timeout becomes a gateway timeout, a failed model a bad
# gateway (both retryable server errors in the SDKs). 429 stays 429.
_STATUS_MAP = {408: 504, 424: 502}

# OpenAI fields Converse has no equivalent for: refused unless neutral, so a client never silently gets
# different behaviour than it asked for.
_UNSUPPORTED = {
    "n": 1,
    "seed": None,
    "reasoning_effort": "none",  # thinking is not mapped; "none" asks for none
    "logprobs": False,
    "top_logprobs": None,
    "logit_bias": None,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "audio": None,
    "prediction": None,
    "functions": None,
    "function_call": None,
}
_UNSUPPORTED_COMPLETIONS = {"echo": False, "best_of": 1, "suffix": None}

_REGION = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+){1,5}$")
_AWS_HOST = re.compile(r"^bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
_METADATA_VALUE = re.compile(r"^[a-zA-Z0-9\s:_@$#=/+,.-]{0,256}$")
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_OPERATIONS = (CONVERSE, CONVERSE_STREAM)
_INVOKE_OPERATIONS = ("invoke", "invoke-with-response-stream")
_TOOL_USE_ID = re.compile(r"^[a-zA-Z0-9_.:-]{1,64}$")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# OpenAI tool-call ids Converse would refuse (toolUseId is `[a-zA-Z0-9_.:-]{1,64}`) are encoded reversibly: a
# prefix that neither Bedrock's `tooluse_` ids nor OpenAI's `call_` ids start with + the id's UTF-8 in unpadded
# base64url, when that fits in 64 characters; longer ids get a digest (deterministic, so the toolUse block and its
# toolResult still match). Valid ids, the usual case, are sent unchanged.
_ID_PREFIX = "b64."
_ID_DIGEST = "sha."


def encode_tool_id(call_id: str) -> str:
    """An OpenAI tool-call id as a valid Converse toolUseId: unchanged when it already is one."""
    if _TOOL_USE_ID.match(call_id) and not call_id.startswith((_ID_PREFIX, _ID_DIGEST)):
        return call_id
    encoded = _ID_PREFIX + base64.urlsafe_b64encode(call_id.encode()).decode().rstrip("=")
    if len(encoded) <= 64:
        return encoded
    return _ID_DIGEST + hashlib.sha256(call_id.encode()).hexdigest()[:60]


def decode_tool_id(tool_use_id: Any) -> str:
    """A Converse toolUseId as the OpenAI id: an id `encode_tool_id` encoded is given back as the client sent it."""
    if not isinstance(tool_use_id, str) or not tool_use_id:
        return ""
    if tool_use_id.startswith(_ID_PREFIX):
        data = tool_use_id[len(_ID_PREFIX) :]
        try:
            return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)).decode()
        except ValueError:
            return tool_use_id
    return tool_use_id


def finish_reason(stop_reason: Any) -> str | None:
    if not stop_reason or not isinstance(stop_reason, str):
        return None
    return FINISH_REASONS.get(stop_reason, "stop")


def usage_of(raw: Any) -> dict[str, Any] | None:
    """Converse usage -> OpenAI usage; cache reads and writes are reported apart from inputTokens and are part
    of the prompt."""
    return usage_with_cache(raw, "inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens")


def misconfigured(message: str) -> ProxyError:
    return ProxyError(500, message, type="server_error", code="proxy_misconfigured")


def _exception_status(name: str | None) -> int | None:
    return ERROR_STATUS.get(name.lower()) if name else None


def _client_status(status: int) -> int:
    return _STATUS_MAP.get(status, client_status(status))


# --------------------------------------------------------------------------------------------------------------
# Region, URL, credentials
# --------------------------------------------------------------------------------------------------------------


def resolve_region(options: ModelOptions) -> str:
    """`bedrock.aws_region`, else the region in an AWS `upstream_url` host, else AWS_REGION / AWS_DEFAULT_REGION."""
    region = options.bedrock.aws_region if options.bedrock else None
    if not region and options.upstream_url:
        match = _AWS_HOST.match(urlsplit(options.upstream_url).hostname or "")
        region = match.group(1) if match else None
    if not region:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise misconfigured(
            "no AWS region for provider bedrock: set model.options.bedrock.aws_region "
            "(or AWS_REGION where the proxy runs)"
        )
    if not _REGION.match(region):
        raise misconfigured(f"invalid AWS region {region!r} for provider bedrock")
    return region


def _switch_operation(url: str, stream: bool) -> str:
    """A pinned Converse URL switched to the operation the client asked for (stream or not)."""
    parts = urlsplit(url)
    head, _, last = parts.path.rstrip("/").rpartition("/")
    if last in _INVOKE_OPERATIONS:
        raise misconfigured(
            f"the bedrock upstream URL names InvokeModel ({last}); this proxy speaks Converse: "
            "use a path ending in /converse, or only scheme://host:port"
        )
    if last not in _OPERATIONS:
        return url  # a custom path: used as given
    return urlunsplit(parts._replace(path=f"{head}/{CONVERSE_STREAM if stream else CONVERSE}"))


class CredentialSource:
    """AWS credentials for signing: a rule's keys, or the botocore chain resolved once and cached.

    The chain (environment, shared files, SSO, container and instance roles) does file and network I/O, so it
    runs at most once (and again only `retry_after` seconds after a failure); refreshable credentials (roles,
    SSO) are renewed by botocore itself shortly before they expire.
    """

    def __init__(self, retry_after: float = 30.0) -> None:
        self.retry_after = retry_after
        self.clear()

    def clear(self) -> None:
        """Forget every resolved credential (tests; a changed environment)."""
        self._static: dict[tuple[str, str], ReadOnlyCredentials] = {}
        self._chain: Any = None
        self._chain_error: str | None = None
        self._chain_failed_at = 0.0

    def ready(self, auth: AuthSpec | None) -> bool:
        """True when `get` would not do I/O: the rule has keys, or the chain is resolved (or failed recently)."""
        if auth is not None and (auth.aws_access_key_id or auth.aws_secret_access_key):
            return True
        if self._chain is not None:
            return True
        return self._chain_error is not None and time.monotonic() - self._chain_failed_at < self.retry_after

    def get(self, auth: AuthSpec | None) -> ReadOnlyCredentials:
        key_id = auth.aws_access_key_id if auth else None
        secret = auth.aws_secret_access_key if auth else None
        if key_id or secret:
            if not (key_id and secret):
                raise misconfigured("auth.aws_access_key_id and auth.aws_secret_access_key go together")
            frozen = self._static.get((key_id, secret))
            if frozen is None:
                frozen = self._static[(key_id, secret)] = Credentials(key_id, secret).get_frozen_credentials()
            return frozen
        return self._from_chain()

    def _from_chain(self) -> ReadOnlyCredentials:
        if self._chain is None:
            if self._chain_error and time.monotonic() - self._chain_failed_at < self.retry_after:
                raise misconfigured(self._chain_error)
            try:
                import botocore.session  # loaded only when a rule relies on the chain

                self._chain = botocore.session.Session().get_credentials()
                error = None if self._chain is not None else "none found"
            except Exception as e:  # botocore raises many types: profile not found, bad config, SSO expired...
                error = f"{type(e).__name__}: {e}"
            if error is not None:
                self._chain_error = (
                    f"no AWS credentials for provider bedrock ({error}): set auth.aws_access_key_id and "
                    "auth.aws_secret_access_key, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or a role "
                    "where the proxy runs"
                )
                self._chain_failed_at = time.monotonic()
                raise misconfigured(self._chain_error)
        try:
            return self._chain.get_frozen_credentials()
        except Exception as e:
            raise misconfigured(f"AWS credentials could not be refreshed: {type(e).__name__}: {e}") from None


CREDENTIALS = CredentialSource()


_SIGNATURE_HEADERS = frozenset({"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"})
_SIGNING_KEYS: dict[tuple[str, str, str, str], bytes] = {}


class _SigV4(SigV4Auth):
    """botocore's SigV4, with the derived signing key (four HMACs, fixed per secret, day, region and service)
    computed once a day instead of per request."""

    def signature(self, string_to_sign: str, request: Any) -> str:
        key = (self.credentials.secret_key, request.context["timestamp"][0:8], self._region_name, self._service_name)
        signing_key = _SIGNING_KEYS.get(key)
        if signing_key is None:
            k_date = self._sign(f"AWS4{key[0]}".encode(), key[1])
            signing_key = self._sign(self._sign(self._sign(k_date, key[2]), key[3]), "aws4_request")
            if len(_SIGNING_KEYS) >= 64:  # rotating session credentials: keep the cache small
                _SIGNING_KEYS.clear()
            _SIGNING_KEYS[key] = signing_key
        return self._sign(signing_key, string_to_sign, hex=True)


@functools.lru_cache(maxsize=256)
def _host_of(scheme: str, netloc: str) -> str:
    parts = urlsplit(f"{scheme}://{netloc}")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(scheme):
        host = f"{host}:{parts.port}"
    return host


def signed_host(url: str) -> str:
    """The Host value that is signed, as botocore derives it: lower-case, default port omitted."""
    scheme, rest = url.split("://", 1)
    return _host_of(scheme, rest.split("/", 1)[0].split("?", 1)[0])


def _uses_bearer(auth: AuthSpec | None) -> bool:
    """A rule that sets `Authorization` itself (a Bedrock API key: `Bearer ...`) and no AWS keys: no SigV4."""
    return (
        auth is not None
        and (auth.header_name or "").lower() == "authorization"
        and not (auth.aws_access_key_id or auth.aws_secret_access_key)
    )


# --------------------------------------------------------------------------------------------------------------
# The provider
# --------------------------------------------------------------------------------------------------------------


class Bedrock(Provider):
    name = "bedrock"
    price_id = "aws"
    native_format = "bedrock"
    host_option_fields = frozenset({"bedrock.aws_region"})

    def check_rule(self, spec: RuleSpec, unset: frozenset[str]) -> str | None:
        if spec.route_type == "preserve":
            return "route_type preserve is not available for bedrock (requests must be re-signed)"
        return super().check_rule(spec, unset)

    supports_streaming = True

    def requires_model(self, options: ModelOptions) -> bool:
        # A pinned Converse URL (upstream_url path or upstream_path) already names the model.
        return url_path(options) is None

    def build_request(self, call: Call) -> UpstreamRequest:
        options = call.options
        bedrock = options.bedrock
        if bedrock and (bedrock.aws_assume_role_arn or bedrock.aws_role_session_name or bedrock.aws_sts_endpoint_url):
            raise misconfigured(
                "model.options.bedrock.aws_assume_role_* / aws_sts_endpoint_url are not supported yet: "
                "assume the role outside the proxy (AWS_PROFILE with role_arn, or AWS_* variables)"
            )
        region = resolve_region(options)
        operation = CONVERSE_STREAM if call.stream else CONVERSE
        if call.route_type == EMBEDDINGS:
            operation = "invoke"
        suffix = ".amazonaws.com.cn" if region.startswith("cn-") else ".amazonaws.com"
        pinned = url_path(options)
        if pinned is None:
            if not call.model:
                raise bad_request("no model: the request names none and the rule configures none", param="model")
            path = f"/model/{encode_url_value(call.model)}/{operation}"
        else:
            path = pinned
        url = build_url(options, f"https://bedrock-runtime.{region}{suffix}", path)
        if call.route_type == EMBEDDINGS:
            parts = urlsplit(url)
            head, _, last = parts.path.rstrip("/").rpartition("/")
            if pinned is not None and last in _OPERATIONS + _INVOKE_OPERATIONS:
                url = urlunsplit(parts._replace(path=f"{head}/invoke"))  # embeddings are InvokeModel only
            return UpstreamRequest(url=url, body=_embeddings_body(call, url), headers={"accept": "application/json"})
        if pinned is not None:
            url = _switch_operation(url, call.stream)
        headers = {"accept": "application/vnd.amazon.eventstream" if call.stream else "application/json"}
        return UpstreamRequest(url=url, body=self._body(call), headers=headers)

    def sign(self, call: Call, up: UpstreamRequest, body: bytes) -> None:
        """SigV4 over the exact bytes sent. Signed: host, content-type, x-amz-date (+ x-amz-security-token), as
        botocore's own client signs Converse."""
        if _uses_bearer(call.auth):
            return
        up.headers.setdefault("content-type", "application/json")
        credentials = CREDENTIALS.get(call.auth)
        region = resolve_region(call.options)
        request = AWSRequest(
            method=up.method,
            url=up.url,
            data=body,
            # host given (as botocore would derive it) so botocore does not re-parse the URL twice per request
            headers={"content-type": up.headers.get("content-type", "application/json"), "host": signed_host(up.url)},
        )
        _SigV4(credentials, SIGNING_NAME, region).add_auth(request)
        for name in list(up.headers):
            if name.lower() in _SIGNATURE_HEADERS:
                del up.headers[name]  # e.g. a client Authorization kept by allow_override: the signature wins
        for name, value in request.headers.items():
            name = name.lower()
            if name != "host":  # the glue sets Host from the same URL
                up.headers[name] = value.decode() if isinstance(value, bytes) else value

    def load_credentials(self, call: Call) -> None:
        """Resolve (and cache) the call's AWS credentials. Blocking on the first use of the chain (files, SSO,
        instance metadata), hence run off the event loop through `blocking_setup`."""
        if not _uses_bearer(call.auth):
            CREDENTIALS.get(call.auth)

    def blocking_setup(self, call: Call) -> Callable[[], object] | None:
        if _uses_bearer(call.auth) or CREDENTIALS.ready(call.auth):
            return None
        return functools.partial(self.load_credentials, call)

    def stream_translator(self, call: Call, include_usage: bool, keep_payload: bool) -> BedrockStream:
        return BedrockStream(call, include_usage, keep_payload)

    # ---- to Bedrock ----------------------------------------------------------------------------------------

    def _body(self, call: Call) -> dict[str, Any]:
        body = call.body
        refuse_unsupported(body, "bedrock", _UNSUPPORTED)
        if call.route_type == CHAT:
            system, messages, has_tool_blocks = _messages(body["messages"])
        else:
            refuse_unsupported(body, "bedrock", _UNSUPPORTED_COMPLETIONS)
            prompt = single_prompt(body)
            system, messages, has_tool_blocks = [], [{"role": "user", "content": [{"text": prompt}]}], False
            if not prompt:
                raise bad_request("'prompt' must not be empty", param="prompt")
        if not any(m["role"] == "user" for m in messages):
            raise bad_request("at least one user message is required", param="messages")
        out: dict[str, Any] = {"messages": messages}
        if system:
            out["system"] = system

        inference: dict[str, Any] = {}
        max_tokens = max_tokens_of(body)
        if max_tokens is not None:
            inference["maxTokens"] = max_tokens
        if body.get("temperature") is not None:
            inference["temperature"] = min(float(body["temperature"]), MAX_TEMPERATURE)
        if body.get("top_p") is not None and body["top_p"] < 1:
            # top_p 1 is no nucleus filtering (the default): not sent, as Claude 4.5+ refuses temperature and topP
            # together ("`temperature` and `top_p` cannot both be specified for this model").
            inference["topP"] = body["top_p"]
        stop = stop_list(body)
        if stop:
            inference["stopSequences"] = stop
        if inference:
            out["inferenceConfig"] = inference
        if body.get("top_k") is not None:
            # Not part of inferenceConfig: model-native, in the model's own name (Nova nests it).
            model = call.model or ""
            if "amazon.nova" in model:
                out["additionalModelRequestFields"] = {"inferenceConfig": {"topK": body["top_k"]}}
            else:
                out["additionalModelRequestFields"] = {"top_k": body["top_k"]}

        tool_config = _tool_config(body, has_tool_blocks)
        if tool_config:
            out["toolConfig"] = tool_config
        output_config = _output_config(body.get("response_format"))
        if output_config:
            out["outputConfig"] = output_config
        user = body.get("user")
        if isinstance(user, str) and user:
            if not _METADATA_VALUE.match(user):
                raise bad_request(
                    "'user' may hold only letters, digits, spaces and :_@$#=/+,.- for provider bedrock "
                    "(it is sent as requestMetadata)",
                    param="user",
                )
            out["requestMetadata"] = {"user": user}
        latency = call.options.bedrock.performance_config_latency if call.options.bedrock else None
        if latency:
            out["performanceConfig"] = {"latency": latency}
        return out

    # ---- from Bedrock --------------------------------------------------------------------------------------

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
        if call.route_type == EMBEDDINGS:
            return _embeddings_response(call, data)
        output = data.get("output") if isinstance(data, dict) else None
        message = output.get("message") if isinstance(output, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            raise UpstreamFormatError("expected a Converse response with output.message.content")
        texts: list[str] = []
        reasoning: list[str] = []
        tool_calls: list[dict[str, Any]] = []
        for block in content:
            if not isinstance(block, dict):
                continue
            if isinstance(block.get("text"), str):
                texts.append(block["text"])
            elif isinstance(block.get("toolUse"), dict):
                use = block["toolUse"]
                tool_calls.append(
                    {
                        "id": decode_tool_id(use.get("toolUseId")),
                        "type": "function",
                        "function": {"name": use.get("name"), "arguments": json.dumps(use.get("input", {}))},
                    }
                )
            elif isinstance(block.get("reasoningContent"), dict):
                text = block["reasoningContent"].get("reasoningText")
                if isinstance(text, dict) and isinstance(text.get("text"), str):
                    reasoning.append(text["text"])
        out_message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(texts) if texts or not tool_calls else None,
        }
        if tool_calls:
            out_message["tool_calls"] = tool_calls
        if reasoning:
            out_message["reasoning_content"] = "".join(reasoning)
        response = chat_response(
            id=None,
            model=call.model or "",
            message=out_message,
            finish_reason=finish_reason(data.get("stopReason")) or "stop",
            usage=usage_of(data.get("usage")),
        )
        return response if call.route_type == CHAT else chat_to_completion(response)

    def parse_error(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> ProxyError:
        """`{"message"}` (or `{"Message"}`) with the error name in `x-amzn-ErrorType` (when the glue passes the
        headers) or `__type`; statuses OpenAI clients misread are mapped (408 -> 504, 424 -> 502)."""
        data = _json_object(body)
        name = _header(headers, "x-amzn-errortype") or data.get("__type") or data.get("code")
        name = name.split(":", 1)[0].rsplit("#", 1)[-1] if isinstance(name, str) and name else None
        message = data.get("message") or data.get("Message")
        out_status = _client_status(status)
        if not isinstance(message, str) or not message:
            text = body.decode("utf-8", "replace").strip()
            if "html" in content_type.lower() or text.startswith("<"):
                text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()
            message = f"bedrock returned HTTP {status}: {text[:300]}" if text else f"bedrock returned HTTP {status}"
        return ProxyError(out_status, message, type=default_error_type(out_status), code=name)


# --------------------------------------------------------------------------------------------------------------
# Embeddings: InvokeModel with the model family's own body (Titan Text Embeddings, Cohere Embed)
# --------------------------------------------------------------------------------------------------------------

TITAN_EMBED, COHERE_EMBED = "amazon.titan-embed", "cohere.embed"


def _embeddings_family(call: Call, url: str) -> str:
    """Which embedding body the model takes: the model id (or the one in a pinned /model/{id}/invoke URL)."""
    model = call.model or ""
    if not model:
        head, _, _ = urlsplit(url).path.rstrip("/").rpartition("/")
        model = unquote(head.rpartition("/")[2])
    for family in (TITAN_EMBED, COHERE_EMBED):
        if family in model:  # also inference profiles: us.cohere.embed-v4:0
            return family
    raise bad_request(
        f"provider bedrock embeds with amazon.titan-embed-* and cohere.embed-* models, not {model!r}", param="model"
    )


def _embeddings_body(call: Call, url: str) -> dict[str, Any]:
    body = call.body
    dimensions = body.get("dimensions")
    if _embeddings_family(call, url) == TITAN_EMBED:
        texts = embedding_texts(body, "bedrock")
        if len(texts) != 1:
            raise bad_request(
                "Amazon Titan embeds one text per request: send 'input' as a single string", param="input"
            )
        out: dict[str, Any] = {"inputText": texts[0]}
        if dimensions is not None:
            if "titan-embed-text-v1" in (call.model or url):
                raise bad_request("'dimensions' needs amazon.titan-embed-text-v2", param="dimensions")
            out["dimensions"] = dimensions
        normalize = call.options.bedrock.embeddings_normalize if call.options.bedrock else None
        if normalize is not None:
            out["normalize"] = normalize
        return out
    cohere = call.options.cohere
    out = {
        "texts": embedding_texts(body, "bedrock"),
        "input_type": (cohere.embedding_input_type if cohere else None) or "search_document",
        "embedding_types": ["float"],
    }
    if dimensions is not None:
        if "embed-v4" not in (call.model or url):
            raise bad_request("'dimensions' needs cohere.embed-v4 on provider bedrock", param="dimensions")
        out["output_dimension"] = dimensions
    return out


def _embeddings_response(call: Call, data: Any) -> dict[str, Any]:
    """Titan `{"embedding", "inputTextTokenCount"}` or Cohere `{"embeddings": {"float": [...]} | [[...]]}`; the
    input token count from the `x-amzn-bedrock-input-token-count` header when present."""
    if not isinstance(data, dict):
        raise UpstreamFormatError("expected an InvokeModel embeddings response object")
    if "embedding" in data:
        vectors = [data["embedding"]]
    else:
        vectors = data.get("embeddings")
        if isinstance(vectors, dict):
            vectors = vectors.get("float")
        if not isinstance(vectors, list):
            raise UpstreamFormatError("expected 'embedding' (Titan) or 'embeddings' (Cohere) in the response")
    count: Any = _header(call.response_headers, "x-amzn-bedrock-input-token-count")
    if count is not None:
        count = int(count) if count.strip().isdigit() else None
    if count is None:
        count = data.get("inputTextTokenCount")
    return embeddings_response(vectors, call.model or "", embedding_usage(count), call.body.get("encoding_format"))


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = jsonutil.loads(raw) if raw else None
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


# --------------------------------------------------------------------------------------------------------------
# Message mapping
# --------------------------------------------------------------------------------------------------------------


def _messages(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
    """OpenAI messages -> (system blocks, Converse messages with strictly alternating roles, has tool blocks)."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    has_tool_blocks = False
    for i, m in enumerate(messages):
        role = m["role"]
        content = m.get("content")
        if role in ("system", "developer"):
            if isinstance(content, list) and any(p.get("type") != "text" for p in content):
                raise bad_request(f"messages[{i}]: a {role} message may hold only text", param=f"messages[{i}]")
            text = text_of(content)
            if text:
                system.append({"text": text})
            continue
        if role == "user":
            blocks, turn = _user_blocks(content, i), "user"
        elif role == "assistant":
            blocks, turn = _assistant_blocks(m, i), "assistant"
        elif role == "tool":
            blocks, turn = [_tool_result(m, i)], "user"
        else:
            raise bad_request(
                f"messages[{i}]: role '{role}' is not supported by provider bedrock; use tools",
                param=f"messages[{i}].role",
            )
        if not blocks:
            continue
        has_tool_blocks = has_tool_blocks or any("toolUse" in b or "toolResult" in b for b in blocks)
        if out and out[-1]["role"] == turn:
            out[-1]["content"].extend(blocks)  # Converse demands alternation: consecutive turns are merged
        else:
            out.append({"role": turn, "content": blocks})
    if out and out[-1]["role"] == "assistant" and "text" in out[-1]["content"][-1]:
        # A final assistant turn is a prefill; Claude on Converse refuses one ending in whitespace ("final assistant
        # content cannot end with trailing whitespace"); a prefill of only whitespace is no prefill.
        blocks = out[-1]["content"]
        blocks[-1]["text"] = blocks[-1]["text"].rstrip()
        if not blocks[-1]["text"]:
            blocks.pop()
            if not blocks:
                out.pop()
    for m in out:
        m["content"].sort(key=lambda b: "toolResult" not in b)  # tool results lead their user turn
    return system, out, has_tool_blocks


def _user_blocks(content: Any, i: int) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content or []):
        kind = part["type"]
        where = f"messages[{i}].content[{j}]"
        if kind == "text":
            if part.get("text"):
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image_block(part, where))
        else:
            raise bad_request(f"{where}: '{kind}' parts are not supported by provider bedrock", param=where)
    return blocks


def _image_block(part: dict[str, Any], where: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if isinstance(url, str) and url.startswith("s3://"):
        # Converse reads images from S3 itself (source.s3Location); the format comes from the object's extension.
        extension = url.rsplit("/", 1)[-1].rpartition(".")[2].lower()
        s3_format = _IMAGE_FORMATS.get(f"image/{extension}")
        if s3_format is None or "." not in url.rsplit("/", 1)[-1]:
            raise bad_request(
                f"{where}: an s3:// image must name a .png, .jpg, .jpeg, .gif or .webp object", param=where
            )
        return {"image": {"format": s3_format, "source": {"s3Location": {"uri": url}}}}
    if not isinstance(url, str) or not url.startswith("data:"):
        raise bad_request(
            f"{where}: provider bedrock takes images only as base64 data: URLs (png, jpeg, gif, webp) or s3:// "
            "object URIs; it cannot fetch http(s) URLs",
            param=where,
        )
    header, _, data = url.partition(",")
    media_type = header[5:].split(";", 1)[0].lower()
    image_format = _IMAGE_FORMATS.get(media_type)
    if ";base64" not in header or image_format is None or not data:
        raise bad_request(f"{where}: data URLs must be base64-encoded png, jpeg, gif or webp images", param=where)
    return {"image": {"format": image_format, "source": {"bytes": data}}}


def _assistant_blocks(m: dict[str, Any], i: int) -> list[dict[str, Any]]:
    if m.get("function_call"):
        raise bad_request(f"messages[{i}].function_call is not supported; use tool_calls", param=f"messages[{i}]")
    blocks: list[dict[str, Any]] = []
    text = text_of(m.get("content"))
    if text:
        blocks.append({"text": text})
    for j, tool_call in enumerate(m.get("tool_calls") or []):
        where = f"messages[{i}].tool_calls[{j}]"
        fn = tool_call.get("function") if isinstance(tool_call, dict) else None
        if not isinstance(fn, dict) or not fn.get("name") or not tool_call.get("id"):
            raise bad_request(f"{where} needs an id and a function name", param=where)
        arguments = fn.get("arguments") or "{}"
        try:
            # A JSON string, as OpenAI sends it; an object as some clients do (Gemini and Cohere take it too).
            arguments = arguments if isinstance(arguments, dict) else jsonutil.loads(arguments)
        except (TypeError, ValueError):
            raise bad_request(f"{where}.function.arguments is not valid JSON", param=where) from None
        if not isinstance(arguments, dict):
            raise bad_request(f"{where}.function.arguments must be a JSON object", param=where)
        tool_id = encode_tool_id(str(tool_call["id"]))
        blocks.append({"toolUse": {"toolUseId": tool_id, "name": fn["name"], "input": arguments}})
    return blocks


def _tool_result(m: dict[str, Any], i: int) -> dict[str, Any]:
    content = m.get("content")
    if isinstance(content, list) and any(p.get("type") != "text" for p in content):
        raise bad_request(
            f"messages[{i}]: a tool message may hold only text for provider bedrock", param=f"messages[{i}]"
        )
    if not m.get("tool_call_id"):
        raise bad_request(f"messages[{i}].tool_call_id is required", param=f"messages[{i}].tool_call_id")
    text = text_of(content)
    tool_id = encode_tool_id(str(m["tool_call_id"]))
    # Converse refuses an empty text block: an empty result is sent as no content.
    return {"toolResult": {"toolUseId": tool_id, "content": [{"text": text}] if text else []}}


def _tool_config(body: dict[str, Any], has_tool_blocks: bool) -> dict[str, Any] | None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not tools:
        if has_tool_blocks:
            # Converse refuses toolUse/toolResult blocks without a toolConfig.
            raise bad_request(
                "the conversation holds tool calls: provider bedrock needs the request's 'tools' too", param="tools"
            )
        if choice in (None, "none", "auto"):
            return None
        raise bad_request("tool_choice needs tools", param="tool_choice")
    if choice == "none":
        if has_tool_blocks:
            raise bad_request(
                "tool_choice 'none' cannot be expressed for provider bedrock in a conversation that holds tool calls",
                param="tool_choice",
            )
        return None  # without a toolConfig the model cannot call a tool
    if body.get("parallel_tool_calls") is False:
        raise bad_request(
            "'parallel_tool_calls: false' is not supported by provider bedrock", param="parallel_tool_calls"
        )
    specs = []
    for k, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) and tool.get("type", "function") == "function" else None
        if not isinstance(fn, dict) or not fn.get("name"):
            raise bad_request(f"tools[{k}] must be a function tool with a name", param=f"tools[{k}]")
        if not _TOOL_NAME.match(str(fn["name"])):
            raise bad_request(
                f"tools[{k}].function.name must match [a-zA-Z0-9_-]{{1,64}} for provider bedrock",
                param=f"tools[{k}].function.name",
            )
        spec: dict[str, Any] = {
            "name": fn["name"],
            "inputSchema": {"json": fn.get("parameters") or {"type": "object", "properties": {}}},
        }
        if fn.get("description"):
            spec["description"] = fn["description"]
        if isinstance(fn.get("strict"), bool):
            spec["strict"] = fn["strict"]
        specs.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": specs}
    if choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict) and choice["function"].get("name"):
        config["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
    elif choice is not None:
        raise bad_request("unsupported tool_choice", param="tool_choice")
    return config


def _output_config(response_format: Any) -> dict[str, Any] | None:
    """response_format -> Converse `outputConfig.textFormat` (structured output, providers.md §5.3, §11.1).

    json_schema maps to `{"type": "json_schema", "structure": {"jsonSchema": {"schema": <the schema as a JSON
    string>, "name", "description"}}}`; models without structured output answer Bedrock's own 400, which reaches
    the client. json_object has no native equivalent (Converse takes only a schema) and is refused: a prompt
    instruction would not guarantee JSON, and an any-object schema is not accepted by every model."""
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        raise bad_request(
            "response_format json_object is not supported by provider bedrock: send json_schema with the schema "
            "(Converse outputConfig.textFormat)",
            param="response_format",
        )
    if kind != "json_schema":
        raise bad_request(
            "response_format type must be text or json_schema for provider bedrock", param="response_format"
        )
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise bad_request("response_format json_schema needs json_schema.schema (an object)", param="response_format")
    definition: dict[str, Any] = {"schema": json.dumps(schema, separators=(",", ":"))}
    if isinstance(spec.get("name"), str) and spec["name"]:
        definition["name"] = spec["name"]
    if isinstance(spec.get("description"), str) and spec["description"]:
        definition["description"] = spec["description"]
    return {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": definition}}}


# --------------------------------------------------------------------------------------------------------------
# Streams: ConverseStream (AWS eventstream) -> OpenAI chunks
# --------------------------------------------------------------------------------------------------------------


class BedrockStream:
    """Translates a ConverseStream eventstream into OpenAI chunks, frame by frame.

    Payloads are the event member's shape, not wrapped, with a random `p` padding key (ignored). Usage comes in
    the `metadata` event AFTER `messageStop`, so the finish chunk is held until metadata (or the end of the
    stream) so the usage chunk can follow it. `contentBlockIndex` counts every block; OpenAI's tool-call index
    counts tool calls only, so tool blocks are renumbered. An exception frame becomes an OpenAI error event.
    ConverseStream sends no token count before `metadata`: a stream cut off before it is recorded without usage.
    """

    __slots__ = (
        "_decoder",
        "_done",
        "_finish",
        "_metadata_seen",
        "_no_arguments",
        "_started",
        "_stopped",
        "_tool_index",
        "_usage",
        "out",
        "result",
    )

    def __init__(self, call: Call, include_usage: bool, keep_payload: bool) -> None:
        self.out = ChunkWriter(call.route_type, call.model or "", include_usage, keep_payload)
        self.result = self.out.result
        self._decoder = EventStreamDecoder()
        self._tool_index: dict[Any, int] = {}  # contentBlockIndex -> OpenAI tool-call index
        self._no_arguments: set[Any] = set()  # tool blocks that streamed no input fragment yet
        self._started = False
        self._stopped = False
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._metadata_seen = False
        self._done = False

    @guarded
    def feed(self, chunk: bytes) -> bytes:
        if self._done:
            return b""
        try:
            messages = self._decoder.feed(chunk)
        except StreamDecodeError as e:
            return self._fail(f"bedrock stream is malformed: {e}")
        return b"".join(self._message(m) for m in messages) if messages else b""

    @guarded
    def finish(self) -> bytes:
        if self._done:
            return b""
        try:
            self._decoder.flush()
        except StreamDecodeError as e:
            return self._fail(f"bedrock stream is malformed: {e}")
        if self._stopped:  # messageStop came but no metadata: finish without usage
            self._done = True
            return self.out.finish(self._finish, None)
        return self._fail("bedrock stream ended before messageStop")

    def _fail(self, message: str, status: int = 502, code: str = "stream_error") -> bytes:
        self._done = True
        return self.out.error(stream_error(message, status=status, code=code, type=default_error_type(status)))

    def _message(self, msg: EventStreamMessage) -> bytes:
        if self._done:
            return b""
        headers = msg.headers
        kind = headers.get(":message-type", "event")
        if kind == "exception":
            return self._exception(headers.get(":exception-type"), msg.payload)
        if kind == "error":
            code = headers.get(":error-code")
            return self._fail(
                str(headers.get(":error-message") or f"bedrock stream error {code or ''}").strip(),
                status=_client_status(_exception_status(code) or 502),
                code=code or "stream_error",
            )
        handler = _HANDLERS.get(headers.get(":event-type", ""))
        if handler is None:
            return b""  # unknown events are ignored (versioning policy)
        try:
            event = jsonutil.loads(msg.payload) if msg.payload else {}
        except ValueError:
            return self._fail("bedrock sent an event that is not JSON")
        if not isinstance(event, dict):
            return self._fail("bedrock sent an event that is not a JSON object")
        return handler(self, event)

    def _exception(self, name: Any, payload: bytes) -> bytes:
        data = _json_object(payload)
        message = data.get("message") or data.get("Message")
        name = name if isinstance(name, str) and name else None
        status = _client_status(_exception_status(name) or 502)
        return self._fail(
            str(message or f"bedrock stream failed: {name or 'unknown exception'}"), status, name or "stream_error"
        )

    def _role(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self.out.role()

    def _message_start(self, event: dict[str, Any]) -> bytes:
        return self._role()

    def _block_start(self, event: dict[str, Any]) -> bytes:
        start = event.get("start")
        use = start.get("toolUse") if isinstance(start, dict) else None
        if not isinstance(use, dict):
            return b""
        block_index = _block_index(event)
        if block_index < 0 or block_index in self._tool_index:
            return b""  # not a block of this answer, or one that already started
        out = self._role()
        index = self._tool_index[block_index] = len(self._tool_index)
        self._no_arguments.add(block_index)
        return out + self.out.tool_call_start(index, decode_tool_id(use.get("toolUseId")), use.get("name") or "")

    def _block_delta(self, event: dict[str, Any]) -> bytes:
        delta = event.get("delta")
        if not isinstance(delta, dict):
            return b""
        if isinstance(delta.get("text"), str):
            return self._role() + self.out.text(delta["text"])
        if isinstance(delta.get("toolUse"), dict):
            block_index = _block_index(event)
            index = self._tool_index.get(block_index)
            fragment = delta["toolUse"].get("input")
            if index is None or not isinstance(fragment, str) or not fragment:
                return b""
            self._no_arguments.discard(block_index)
            return self.out.tool_call_arguments(index, fragment)
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict) and isinstance(reasoning.get("text"), str):
            return self._role() + self.out.reasoning(reasoning["text"])
        return b""  # signatures, redacted reasoning, citations: nothing OpenAI shows

    def _block_stop(self, event: dict[str, Any]) -> bytes:
        """A tool call whose input streamed no fragment (a function without parameters) gets "{}", as the
        non-streamed answer's `input: {}` does, so the accumulated arguments are always JSON."""
        block_index = _block_index(event)
        if block_index not in self._no_arguments:
            return b""
        self._no_arguments.discard(block_index)
        return self.out.tool_call_arguments(self._tool_index[block_index], "{}")

    def _message_stop(self, event: dict[str, Any]) -> bytes:
        out = b"".join(self._block_stop({"contentBlockIndex": i}) for i in list(self._no_arguments))  # never stopped
        self._stopped = True
        self._finish = finish_reason(event.get("stopReason")) or "stop"
        if self._metadata_seen:  # metadata came first (not what Bedrock does, but complete either way)
            self._done = True
            return out + self.out.finish(self._finish, self._usage)
        return out

    def _metadata(self, event: dict[str, Any]) -> bytes:
        self._usage = usage_of(event.get("usage"))
        self.out.note_usage(self._usage)  # in the record at once, should the stream be cut before messageStop
        self._metadata_seen = True
        if self._stopped:
            self._done = True
            return self.out.finish(self._finish, self._usage)
        return b""


_HANDLERS = {
    "messageStart": BedrockStream._message_start,
    "contentBlockStart": BedrockStream._block_start,
    "contentBlockDelta": BedrockStream._block_delta,
    "contentBlockStop": BedrockStream._block_stop,
    "messageStop": BedrockStream._message_stop,
    "metadata": BedrockStream._metadata,
}


BEDROCK = register(Bedrock())


def _block_index(event: dict[str, Any]) -> int:
    """The event's contentBlockIndex; anything but an integer counts as block -1, which no block start has."""
    index = event.get("contentBlockIndex", 0)
    return index if isinstance(index, int) and not isinstance(index, bool) else -1
