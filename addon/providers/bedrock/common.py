"""The facts of the Converse wire shared by the request, response and stream code: operations, finish reasons,
AWS error names and statuses, usage, tool-call ids, the region."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ... import jsonutil
from ...errors import ProxyError
from ...openai_format import matched_stop, usage_with_cache
from ..base import client_status

if TYPE_CHECKING:
    from ...spec import ModelOptions

CONVERSE, CONVERSE_STREAM = "converse", "converse-stream"
COUNT_TOKENS = "count-tokens"
_OPERATIONS = (CONVERSE, CONVERSE_STREAM)
_INVOKE_OPERATIONS = ("invoke", "invoke-with-response-stream")

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

_REGION = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+){1,5}$")
_AWS_HOST = re.compile(r"^bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
_TOOL_USE_ID = re.compile(r"^[a-zA-Z0-9_.:-]{1,64}$")
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


def stop_sequence_of(call: Any, data: dict[str, Any]) -> str | None:
    """The stop sequence that ended a Converse answer (or a messageStop event) when its stopReason says one did:
    Claude's own `stop_sequence` where additionalModelResponseFields has it, else the request's only one."""
    if data.get("stopReason") != "stop_sequence":
        return None
    fields = data.get("additionalModelResponseFields")
    return matched_stop(call.body, fields.get("stop_sequence") if isinstance(fields, dict) else None)


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
