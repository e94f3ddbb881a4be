"""AWS: the credentials that sign a request (a rule's keys, or the botocore chain resolved once and cached) and
SigV4 over the exact bytes sent, as botocore's own clients sign.

Pure, except for the chain: it does file and network I/O on its first use, which the glue runs off the event loop.
"""

from __future__ import annotations

import functools
import time
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import ProxyError

if TYPE_CHECKING:  # botocore is imported when a rule first signs (about 8 MiB and 75 ms a process otherwise)
    from botocore.credentials import ReadOnlyCredentials
from ..spec import AuthSpec


def misconfigured(message: str) -> ProxyError:
    return ProxyError(500, message, type="server_error", code="proxy_misconfigured")


class CredentialSource:
    """AWS credentials for signing: a rule's keys, or the botocore chain resolved once and cached.

    The chain (environment, shared files, SSO, container and instance roles) does file and network I/O, so it
    runs at most once (and again only `retry_after` seconds after a failure); refreshable credentials (roles,
    SSO) are renewed by botocore itself shortly before they expire.
    """

    def __init__(self, user: str = "the rule's provider", retry_after: float = 30.0) -> None:
        self.user = user  # what the credentials are for, in error messages ("provider x")
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
                from botocore.credentials import Credentials

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
                    f"no AWS credentials for {self.user} ({error}): set auth.aws_access_key_id and "
                    "auth.aws_secret_access_key, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or a role "
                    "where the proxy runs"
                )
                self._chain_failed_at = time.monotonic()
                raise misconfigured(self._chain_error)
        try:
            return self._chain.get_frozen_credentials()
        except Exception as e:
            raise misconfigured(f"AWS credentials could not be refreshed: {type(e).__name__}: {e}") from None


_SIGNATURE_HEADERS = frozenset({"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"})
_SIGNING_KEYS: dict[tuple[str, str, str, str], bytes] = {}


@functools.cache
def _sigv4_class() -> Any:
    """botocore's SigV4, with the derived signing key (four HMACs, fixed per secret, day, region and service)
    computed once a day instead of per request. Built at the first signature, with botocore's import."""
    from botocore.auth import SigV4Auth

    class SigV4(SigV4Auth):
        def signature(self, string_to_sign: str, request: Any) -> str:
            key = (
                self.credentials.secret_key,
                request.context["timestamp"][0:8],
                self._region_name,
                self._service_name,
            )
            signing_key = _SIGNING_KEYS.get(key)
            if signing_key is None:
                k_date = self._sign(f"AWS4{key[0]}".encode(), key[1])
                signing_key = self._sign(self._sign(self._sign(k_date, key[2]), key[3]), "aws4_request")
                if len(_SIGNING_KEYS) >= 64:  # rotating session credentials: keep the cache small
                    _SIGNING_KEYS.clear()
                _SIGNING_KEYS[key] = signing_key
            return self._sign(signing_key, string_to_sign, hex=True)

    return SigV4


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


def sign_sigv4(
    headers: MutableMapping[str, str],
    method: str,
    url: str,
    body: bytes,
    credentials: ReadOnlyCredentials,
    service: str,
    region: str,
) -> None:
    """SigV4 over the exact bytes sent, into `headers`. Signed: host, content-type, x-amz-date (+
    x-amz-security-token), as botocore's own client signs; signature headers already in `headers` are replaced."""
    from botocore.awsrequest import AWSRequest  # cached in sys.modules after the first call

    request = AWSRequest(
        method=method,
        url=url,
        data=body,
        # host given (as botocore would derive it) so botocore does not re-parse the URL twice per request
        headers={"content-type": headers.get("content-type", "application/json"), "host": signed_host(url)},
    )
    _sigv4_class()(credentials, service, region).add_auth(request)
    for name in list(headers):
        if name.lower() in _SIGNATURE_HEADERS:
            del headers[name]  # e.g. a client Authorization kept by allow_override: the signature wins
    for name, value in request.headers.items():
        name = name.lower()
        if name != "host":  # the glue sets Host from the same URL
            headers[name] = value.decode() if isinstance(value, bytes) else value
