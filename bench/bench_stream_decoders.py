"""Decoder cost on one long event delivered in 32-byte chunks: linear decoders take ~4x the time for 4x the
bytes; a decoder that rescans its buffer per chunk takes ~16x. Prints the ratio per decoder."""

from __future__ import annotations

import binascii
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from addon.streams import EventStreamDecoder, JSONArrayDecoder, NDJSONDecoder, SSEDecoder


def eventstream_frame(event_type: str, payload: bytes) -> bytes:
    name, value = b":event-type", event_type.encode()
    headers = bytes([len(name)]) + name + b"\x07" + struct.pack(">H", len(value)) + value
    total = 16 + len(headers) + len(payload)
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    body = prelude + headers + payload
    return body + struct.pack(">I", binascii.crc32(body))


def one_big_event(kind: str, size: int) -> tuple[type, bytes]:
    text = (b"ab cd ]}, " * (size // 10 + 1))[:size]
    if kind == "sse":
        return SSEDecoder, b"data: " + text + b"\n\n"
    if kind == "ndjson":
        return NDJSONDecoder, b'{"t":"' + text + b'"}\n'
    if kind == "json-array":
        return JSONArrayDecoder, b'[{"t":"' + text + b'"}]'
    return EventStreamDecoder, eventstream_frame("chunk", text)


def best_time(kind: str, size: int) -> float:
    cls, data = one_big_event(kind, size)
    pieces = [data[i : i + 32] for i in range(0, len(data), 32)]
    best = float("inf")
    for _ in range(5):
        decoder = cls()
        start = time.perf_counter()
        events = [e for p in pieces for e in decoder.feed(p)] + decoder.flush()
        best = min(best, time.perf_counter() - start)
        assert len(events) == 1
    return best


def main() -> None:
    for kind in ("sse", "ndjson", "json-array", "eventstream"):
        small, large = best_time(kind, 256 * 1024), best_time(kind, 1024 * 1024)
        ratio = large / small
        print(f"{kind:12} 256 KB {small * 1e3:7.1f} ms   1 MB {large * 1e3:7.1f} ms   ratio {ratio:4.1f} (linear ~4)")


if __name__ == "__main__":
    main()
