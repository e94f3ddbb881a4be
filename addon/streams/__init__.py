"""Incremental framing decoders for streamed LLM response bodies.

Pure code: no mitmproxy, no I/O. Each decoder takes the body in arbitrary byte chunks (a boundary may fall
inside a UTF-8 character, a CRLF pair or a binary frame header) and returns the events completed so far.
Only the incomplete tail is buffered, and every byte is scanned once, so a long event arriving in many tiny
chunks costs linear time.

One module per framing: sse.py, ndjson.py, jsonarray.py, eventstream.py (AWS); sniff.py tells the first three
apart by their first byte; common.py holds StreamDecodeError and the strict JSON parsing they share.
"""

from .common import StreamDecodeError
from .eventstream import EventStreamDecoder, EventStreamMessage
from .jsonarray import JSONArrayDecoder
from .ndjson import NDJSONDecoder
from .sniff import FramingSniffer
from .sse import SSEDecoder, SSEEvent

__all__ = [
    "EventStreamDecoder",
    "EventStreamMessage",
    "FramingSniffer",
    "JSONArrayDecoder",
    "NDJSONDecoder",
    "SSEDecoder",
    "SSEEvent",
    "StreamDecodeError",
]
