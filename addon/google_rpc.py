"""Google RPC status names and their HTTP statuses (google.rpc.Code, as googleapis map them): what a provider on
Google's APIs reads in its errors and what the client format of Google's API writes in its own. Pure data."""

from __future__ import annotations

# Google RPC status names -> HTTP status.
RPC_STATUS = {
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
# HTTP status -> the name Google answers it with (the first of each status above; 502 is a gateway's fault).
_BY_HTTP = {400: "INVALID_ARGUMENT", 409: "ABORTED", 500: "INTERNAL", 502: "UNAVAILABLE"}
for _name, _http in RPC_STATUS.items():
    _BY_HTTP.setdefault(_http, _name)


def rpc_status(http_status: int) -> str:
    """The Google RPC status name for an HTTP status (unknown ones by class: INVALID_ARGUMENT or INTERNAL)."""
    if http_status in _BY_HTTP:
        return _BY_HTTP[http_status]
    return "INTERNAL" if http_status >= 500 else "INVALID_ARGUMENT" if http_status >= 400 else "UNKNOWN"
