"""Errors: Hugging Face's error bodies (TGI, the serverless API, the router), whole or inside a stream."""

from __future__ import annotations

import math
from typing import Any

from ... import jsonutil
from ...errors import ProxyError, default_error_type
from ..base import client_status, upstream_error
from .common import ERROR_TYPE_STATUS, STATUS_MAP


def _upstream_error(status: int, body: bytes, content_type: str, provider: str) -> ProxyError:
    out_status = STATUS_MAP.get(status, client_status(status))
    try:
        data = jsonutil.loads(body) if body else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return _with_status(upstream_error(status, body, content_type, provider), out_status)
    err = data.get("error")
    if isinstance(err, list) and err:  # the serverless API lists validation errors
        err = "; ".join(str(e) for e in err)
    if not isinstance(err, str) or not err:
        return _with_status(upstream_error(status, body, content_type, provider), out_status)
    estimated = data.get("estimated_time")
    if isinstance(estimated, (int, float)) and not isinstance(estimated, bool):
        # A cold model on the serverless API: say how long to wait, and how not to have to.
        seconds = max(1, math.ceil(estimated))
        message = (
            f"{err} (estimated time {seconds} s): retry then, or set "
            "model.options.huggingface.wait_for_model: true on the rule"
        )
        return ProxyError(503, message, code="model_loading", headers={"retry-after": str(seconds)})
    error_type = data.get("error_type")
    code = error_type if isinstance(error_type, str) and error_type else None
    # TGI's error_type (validation, generation, overloaded, ...) is kept as the code; the type is OpenAI's.
    return ProxyError(out_status, err, type=default_error_type(out_status), code=code)


def _with_status(err: ProxyError, status: int) -> ProxyError:
    err.status = status
    return err


def _stream_error(obj: dict[str, Any]) -> ProxyError:
    """A `data:{"error": ...}` event: TGI's {"error","error_type"}, its chat route's {"error":{"message",
    "http_status_code"}}, or an OpenAI-style error object from the router."""
    err = obj.get("error")
    if isinstance(err, dict):
        message = err.get("message")
        status = err.get("http_status_code")
        code = err.get("code") or err.get("error_type") or err.get("type")
        etype = err.get("type")
    else:
        message = err
        code = obj.get("error_type")
        status = None
        etype = None
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        status = ERROR_TYPE_STATUS.get(code, 502) if isinstance(code, str) else 502
    status = STATUS_MAP.get(status, client_status(status))
    text = message if isinstance(message, str) and message else "huggingface stream error"
    return ProxyError(
        status,
        text,
        type=etype if isinstance(etype, str) and etype else default_error_type(status),
        code=str(code) if code is not None else "stream_error",
    )
