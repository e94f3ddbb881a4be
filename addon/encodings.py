"""Content-encodings, undone incrementally (streams) or with a bound (request bodies). Pure code: no mitmproxy.

A few KB of gzip can inflate to gigabytes, and mitmproxy's own decoding has no bound, so request bodies are
inflated here at most to the route's limit; an upstream that compresses a stream it was asked to send as
identity is decoded chunk by chunk.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import brotli

from .errors import ProxyError

try:
    from compression import zstd  # Python 3.14
except ImportError:  # pragma: no cover - mitmproxy depends on the backport before 3.14
    from backports import zstd  # type: ignore[no-redef]

IDENTITY = ("", "identity", "none")


class _Deflate:
    """Incremental 'deflate': zlib-wrapped as the RFC says, or raw DEFLATE as some servers send."""

    def __init__(self) -> None:
        self._inflate: Any = None

    def __call__(self, data: bytes) -> bytes:
        if self._inflate is None:
            self._inflate = zlib.decompressobj()
            try:
                return self._inflate.decompress(data)
            except zlib.error:
                self._inflate = zlib.decompressobj(-15)
        return self._inflate.decompress(data)


class EncodingError(ValueError):
    """An upstream's stream that is not what its content-encoding says."""


def stream_decoder(encoding: str) -> Callable[[bytes], bytes] | None:
    """An incremental decoder for a response body's content-encoding; None for identity. The decoder raises
    EncodingError on bytes that are not of that encoding."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity", "none"):
        return None
    if encoding in ("gzip", "x-gzip"):
        decode: Callable[[bytes], bytes] = zlib.decompressobj(47).decompress
    elif encoding in ("deflate", "deflateraw"):
        decode = _Deflate()
    elif encoding == "br":
        decode = brotli.Decompressor().process
    elif encoding == "zstd":
        decode = zstd.ZstdDecompressor().decompress
    else:
        raise ValueError(f"upstream stream has an unsupported content-encoding {encoding!r}")

    def checked(data: bytes) -> bytes:
        try:
            return decode(data)
        except Exception as e:  # zlib.error, brotli.error, zstd.ZstdError: one error type for the caller
            raise EncodingError(f"the upstream's stream is labelled {encoding} but is not: {e}") from None

    return checked


def inflate_bounded(raw: bytes, encoding: str, limit: int) -> bytes:
    """A request body with its content-encoding undone, inflating at most `limit` + 1 bytes. Raises ProxyError:
    413 past the limit, 400 for an encoding that cannot be undone."""
    encoding = encoding.strip().lower()
    if encoding in IDENTITY or not raw:
        return raw
    try:
        if encoding in ("gzip", "x-gzip"):
            body = zlib.decompressobj(47).decompress(raw, limit + 1)  # 47: gzip or zlib header
        elif encoding in ("deflate", "deflateraw"):
            try:
                body = zlib.decompressobj().decompress(raw, limit + 1)
            except zlib.error:
                body = zlib.decompressobj(-15).decompress(raw, limit + 1)  # raw DEFLATE, no zlib header
        elif encoding == "br":
            body = brotli.Decompressor().process(raw, output_buffer_limit=limit + 1)
        elif encoding == "zstd":
            body = zstd.ZstdDecompressor().decompress(raw, max_length=limit + 1)
        else:
            raise ValueError(encoding)
    except (ValueError, zlib.error, brotli.error, zstd.ZstdError):
        raise ProxyError(400, "request body has an undecodable content-encoding") from None
    if len(body) > limit:
        raise ProxyError(
            413,
            f"request body exceeds this route's limit of {limit} bytes once decompressed",
            code="request_too_large",
        )
    return body
