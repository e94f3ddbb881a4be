"""Amazon Bedrock: OpenAI chat/completions <-> the Converse and ConverseStream APIs, signed with AWS SigV4.

To Bedrock: `POST /model/{modelId}/converse` (or `/converse-stream`) on `bedrock-runtime.{region}.amazonaws.com`,
the model id percent-encoded as one path segment (`:` -> `%3A`) exactly as botocore sends it. `sign()` signs the
final body bytes with botocore's SigV4 (service `bedrock`; botocore double-encodes the canonical URI itself).
From Bedrock: the Converse JSON, or the binary AWS eventstream of ConverseStream, to OpenAI chunks.

Pure translation, except for the credentials: `sign()` resolves the rule's AWS keys, or once the standard
botocore credential chain (environment, profile, SSO, container or instance role), and caches the result
(addon/credentials/aws.py, which also holds the SigV4 signing).

Here: the Provider class (URL, signing, errors); common.py the wire facts the other files share (finish reasons,
AWS error statuses, usage, tool-call ids, region); request.py the Converse body; response.py the Converse answer;
embeddings.py InvokeModel embeddings; stream.py ConverseStream.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ...credentials.aws import CredentialSource, sign_sigv4, signed_host
from ...errors import ProxyError, bad_request, default_error_type
from ...openai_answer import count
from ...openai_format import CHAT, EMBEDDINGS
from ...spec import AuthSpec, OptionsModel, RuleSpec, encode_url_value
from ..base import Call, Provider, UpstreamRequest, build_url, register, url_path
from .common import (
    _INVOKE_OPERATIONS,
    _OPERATIONS,
    CONVERSE,
    CONVERSE_STREAM,
    COUNT_TOKENS,
    _client_status,
    _header,
    _json_object,
    decode_tool_id,
    encode_tool_id,
    finish_reason,
    misconfigured,
    resolve_region,
    usage_of,
)
from .embeddings import _embeddings_body
from .request import converse_body
from .response import parse_converse
from .stream import BedrockStream

# Model families on Bedrock without prompt caching (Converse refuses their cache points).
_UNCACHED_FAMILIES = (
    "meta.", "mistral.", "cohere.", "ai21.", "amazon.titan", "deepseek.", "writer.", "qwen.", "openai.",
)  # fmt: skip

if TYPE_CHECKING:
    from ...native import NativeFormat
    from ...spec import ModelOptions

__all__ = [
    "BEDROCK",
    "CREDENTIALS",
    "Bedrock",
    "BedrockStream",
    "CredentialSource",
    "decode_tool_id",
    "encode_tool_id",
    "finish_reason",
    "resolve_region",
    "signed_host",
    "usage_of",
]

CREDENTIALS = CredentialSource("provider bedrock")
SIGNING_NAME = "bedrock"  # the SigV4 service name (not "bedrock-runtime", which is only the host prefix)


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


class BedrockOptions(OptionsModel):
    aws_region: str | None = None
    aws_assume_role_arn: str | None = None
    aws_role_session_name: str | None = None
    aws_sts_endpoint_url: str | None = None
    embeddings_normalize: bool | None = None
    performance_config_latency: str | None = None


class Bedrock(Provider):
    option_fields = {"bedrock": (BedrockOptions | None, None)}
    name = "bedrock"
    # user: requestMetadata
    optional_fields = frozenset({"top_k", "thinking", "reasoning_effort", "cache_control", "thinking_blocks", "user"})
    cache_breakpoints = 4  # Converse's cache checkpoints per request
    price_id = "aws"
    native_format = "bedrock"
    host_option_fields = frozenset({"bedrock.aws_region"})

    def cache_limit(self, model: str | None) -> int:
        """Converse takes cache points for the models with prompt caching (Claude and Nova): none for the model
        families without it; an id that names no family (an inference profile's ARN) gets them."""
        name = (model or "").lower()
        return 0 if any(family in name for family in _UNCACHED_FAMILIES) else self.cache_breakpoints

    def telemetry_name(self, upstream_url: str | None) -> str:
        return "aws.bedrock"

    @property
    def native_adapter(self) -> NativeFormat:  # type: ignore[override]
        """BedrockFormat (native.py), imported on first use: it subclasses addon.native's NativeFormat, and
        addon.native imports the provider registry, which imports this package: a top-level import would find
        addon.native half-initialised whenever it is the first of the two imported."""
        from .native import BEDROCK_FORMAT

        return BEDROCK_FORMAT

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
        return UpstreamRequest(url=url, body=converse_body(call), headers=headers)

    def sign(self, call: Call, up: UpstreamRequest, body: bytes) -> None:
        """SigV4 over the exact bytes sent. Signed: host, content-type, x-amz-date (+ x-amz-security-token), as
        botocore's own client signs Converse."""
        if _uses_bearer(call.auth):
            return
        up.headers.setdefault("content-type", "application/json")
        credentials = CREDENTIALS.get(call.auth)
        region = resolve_region(call.options)
        sign_sigv4(up.headers, up.method, up.url, body, credentials, SIGNING_NAME, region)

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

    def _body(self, call: Call) -> dict[str, Any]:
        """The Converse body of a chat or completions call (kept as a method: tests build bodies through it)."""
        return converse_body(call)

    def parse_response(self, call: Call, data: Any) -> dict[str, Any]:
        return parse_converse(call, data)

    def count_tokens_request(self, call: Call) -> UpstreamRequest | None:
        """CountTokens (`/model/{modelId}/count-tokens`) with the Converse request's input; a custom path that is
        not a Converse operation: no counter. Bedrock counts for the models it lists for CountTokens; others
        answer an error, and the client format answers its estimate."""
        if call.route_type != CHAT:
            return None
        up = self.build_request(call)
        parts = urlsplit(up.url)
        head, _, last = parts.path.rstrip("/").rpartition("/")
        if last != CONVERSE or up.body is None:
            return None
        fields = ("messages", "system", "toolConfig", "additionalModelRequestFields")
        counted = {"input": {"converse": {k: up.body[k] for k in fields if k in up.body}}}
        url = urlunsplit(parts._replace(path=f"{head}/{COUNT_TOKENS}"))
        return UpstreamRequest(url=url, body=counted, headers={"accept": "application/json"})

    def parse_token_count(self, data: Any) -> int | None:
        return count(data.get("inputTokens")) if isinstance(data, dict) else None

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


BEDROCK = register(Bedrock())
