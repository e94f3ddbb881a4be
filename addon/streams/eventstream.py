"""AWS eventstream (application/vnd.amazon.eventstream): binary frames, CRCs checked by botocore."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from .common import StreamDecodeError


@dataclass(frozen=True, slots=True)
class EventStreamMessage:
    """One AWS eventstream message: its headers (":message-type", ":event-type", …) and raw payload."""

    headers: dict[str, Any]
    payload: bytes


_PRELUDE = struct.Struct(">II")  # total length, headers length (then the prelude CRC)
_PRELUDE_LEN = 12
_MIN_FRAME = 16  # prelude + message CRC


class EventStreamDecoder:
    """application/vnd.amazon.eventstream (AWS streaming APIs); CRCs are checked by botocore."""

    __slots__ = ("_buf", "_need", "_parser")

    def __init__(self) -> None:
        # botocore is imported with the first eventstream, not when the proxy starts (it costs MiBs of memory).
        from botocore.eventstream import EventStreamBuffer

        self._parser = EventStreamBuffer()
        # botocore's buffer re-concatenates its whole buffer on every add_data, which is quadratic for a
        # large frame in small chunks; so we buffer ourselves and hand it a frame only in at most two pieces.
        self._buf = bytearray()  # bytes not yet given to botocore; deleting from its front is cheap
        self._need = 0  # bytes still owed after a prelude botocore already has; 0: at a frame boundary

    def feed(self, chunk: bytes) -> list[EventStreamMessage]:
        """Decode a chunk; return the messages it completed."""
        buf = self._buf
        buf += chunk
        out: list[EventStreamMessage] = []
        try:
            while True:
                if not self._need:
                    if len(buf) < _PRELUDE_LEN:
                        break
                    total, headers_len = _PRELUDE.unpack_from(buf)
                    # botocore would misparse such a frame rather than reject it.
                    if total < _MIN_FRAME + headers_len:
                        raise StreamDecodeError(f"bad eventstream prelude: length {total}, headers {headers_len}")
                    if len(buf) < total:
                        # Hand over the prelude now so that botocore checks its CRC and length limits at once:
                        # a corrupt length must not make us wait for megabytes that never come.
                        self._parser.add_data(bytes(buf[:_PRELUDE_LEN]))
                        del buf[:_PRELUDE_LEN]
                        self._expect_none()
                        self._need = total - _PRELUDE_LEN
                        continue
                    frame_len = total
                else:
                    if len(buf) < self._need:
                        break
                    frame_len = self._need
                self._parser.add_data(bytes(buf[:frame_len]))
                del buf[:frame_len]
                self._need = 0
                msg = next(self._parser, None)
                if msg is None:  # cannot happen with a whole frame; guards against a botocore change
                    raise StreamDecodeError("eventstream frame not decoded")
                out.append(EventStreamMessage(msg.headers, msg.payload))  # a fresh dict per message
        except StreamDecodeError:
            raise
        except (_parser_error(), KeyError, IndexError, ValueError, struct.error) as e:
            # ParserError: CRC mismatch, length limits, duplicate header; the others: malformed headers.
            raise StreamDecodeError(f"bad eventstream frame: {type(e).__name__}: {e}") from e
        return out

    def flush(self) -> list[EventStreamMessage]:
        """End of body: raise if the bytes of an incomplete frame remain."""
        left = len(self._buf) + (_PRELUDE_LEN if self._need else 0)
        if left:
            raise StreamDecodeError(f"eventstream ends inside a frame: {left} bytes of an incomplete frame")
        return []

    def _expect_none(self) -> None:
        # next() parses and validates the prelude, then finds the frame incomplete.
        if next(self._parser, None) is not None:
            raise StreamDecodeError("eventstream frame decoded from its prelude alone")


def _parser_error() -> type[Exception]:
    from botocore.eventstream import ParserError  # imported by the decoder already: a dictionary look-up

    return ParserError
