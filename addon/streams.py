"""Incremental framing decoders for streamed LLM response bodies.

Pure code: no mitmproxy, no I/O. Each decoder takes the body in arbitrary byte chunks (a boundary may fall
inside a UTF-8 character, a CRLF pair or a binary frame header) and returns the events completed so far.
Only the incomplete tail is buffered, and every byte is scanned once, so a long event arriving in many tiny
chunks costs linear time.
"""

from __future__ import annotations

import codecs
import re
import struct
from dataclasses import dataclass
from typing import Any, NamedTuple, NoReturn

from botocore.eventstream import EventStreamBuffer, ParserError

from . import jsonutil

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


class StreamDecodeError(ValueError):
    """Malformed framing: a bad JSON line or element, a CRC mismatch, bad array syntax, a truncated frame."""


def _excerpt(raw: bytes | str, limit: int = 60) -> str:
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    return repr(text if len(text) <= limit else text[:limit] + "…")


# --------------------------------------------------------------------------------------------------- SSE


class SSEEvent(NamedTuple):
    """One dispatched server-sent event (a NamedTuple: built once per event on the hot path, cheaply)."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """text/event-stream, per the WHATWG parsing rules."""

    __slots__ = ("_data", "_decoder", "_event", "_last_id", "_retry", "_skip_lf", "_tail")

    def __init__(self) -> None:
        # utf-8-sig drops a BOM only at stream start (even one split across chunks); "replace" because a
        # stray invalid byte from upstream must not kill the whole stream.
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._tail: list[str] = []  # pieces of the current incomplete line, joined once it completes
        self._skip_lf = False  # the previous text ended in "\r": a leading "\n" belongs to that line end
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None  # persists across events, as the spec's "last event ID" does
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode a chunk; return the events whose terminating blank line it completed."""
        text = self._decoder.decode(chunk)
        if not text:  # e.g. only the first bytes of a multibyte character: keep _skip_lf as it is
            return []
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
                if not text:
                    return []
        if "\r" in text:
            self._skip_lf = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            self._tail.append(text)
            return []
        lines = text.split("\n")
        if self._tail:
            self._tail.append(lines[0])
            lines[0] = "".join(self._tail)
        last = lines.pop()
        self._tail = [last] if last else []
        return self._lines(lines)

    def flush(self) -> list[SSEEvent]:
        """End of body: dispatch a last event that lacked its blank line; the decoder is then empty."""
        text = self._decoder.decode(b"", final=True)
        if self._skip_lf and text[:1] == "\n":
            text = text[1:]
        self._skip_lf = False
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if text else [""]
        if self._tail:
            lines[0] = "".join(self._tail) + lines[0]
            self._tail = []
        lines.append("")  # the missing blank line
        return self._lines(lines)

    def _lines(self, lines: list[str]) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if line.startswith("data:"):  # the common case first: no partition, no field comparisons
                data.append(line[6:] if line[5:6] == " " else line[5:])
                continue
            if not line:
                # An event is dispatched only if it had a data line; event/retry are reset regardless.
                if data:
                    text = data[0] if len(data) == 1 else "\n".join(data)
                    out.append(SSEEvent(text, self._event or "message", self._last_id, self._retry))
                    data.clear()
                self._event = ""
                self._retry = None
                continue
            if line[0] == ":":  # comment (keep-alive)
                continue
            field, _, value = line.partition(":")
            if value[:1] == " ":  # exactly one optional space: "data:x" and "data: x" are the same
                value = value[1:]
            if field == "data":
                self._data.append(value)
            elif field == "event":
                self._event = value
            elif field == "id" and "\0" not in value:
                self._last_id = value
            elif field == "retry" and value.isascii() and value.isdigit():  # isdigit alone accepts "²"
                self._retry = int(value)
            # Unknown fields, an id with NUL and a non-numeric retry are ignored.
        return out


# ------------------------------------------------------------------------------------------------ NDJSON


def _loads(raw: bytes, what: str) -> Any:
    try:
        # jsonutil: strict UTF-8, no NaN or lone surrogates, bounded nesting, and only ValueErrors.
        return jsonutil.loads(raw[3:] if raw.startswith(_BOM) else raw)
    except ValueError as e:  # JSONDecodeError, InvalidJSON
        raise StreamDecodeError(f"invalid JSON {what}: {e}: {_excerpt(raw)}") from None


class NDJSONDecoder:
    """One JSON value per line (Ollama native, Cohere v1)."""

    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail: list[bytes] = []

    def feed(self, chunk: bytes) -> list[Any]:
        """Decode a chunk; return the parsed values of the lines it completed (blank lines skipped)."""
        if b"\n" not in chunk:
            if chunk:
                self._tail.append(chunk)
            return []
        lines = chunk.split(b"\n")
        if self._tail:
            self._tail.append(lines[0])
            lines[0] = b"".join(self._tail)
        last = lines.pop()
        self._tail = [last] if last else []
        # Splitting on the byte "\n" never cuts a UTF-8 character: it cannot occur inside one.
        return [_loads(line, "line") for line in lines if line.strip()]  # strip() also drops "\r"

    def flush(self) -> list[Any]:
        """End of body: parse a last line that had no trailing newline."""
        line = b"".join(self._tail)
        self._tail = []
        return [_loads(line, "line")] if line.strip() else []


# -------------------------------------------------------------------------------------------- JSON array

# Inside an element, outside strings: skip in one C-level match everything that cannot change the nesting,
# whole string literals included, so Python only sees brackets (and the quote of a string cut by the chunk).
_SKIP = re.compile(rb'(?:[^"\[\]{}]++|"(?:[^"\\]++|\\.)*+")*+', re.DOTALL)
# Inside a string: consume as many whole characters and escape pairs as possible in one C-level match; it
# stops at the closing quote, at the end of the data, or at a lone "\" at the very end (escape split).
_STR_BODY = re.compile(rb'(?:[^"\\]++|\\.)*+', re.DOTALL)
_WS = re.compile(rb"[ \t\r\n]*")
_SCALAR_END = re.compile(rb"[ \t\r\n,\]]")

# Where we are between elements.
_START, _FIRST, _AFTER, _NEXT, _DONE = range(5)
_QUOTE = 0x22


class JSONArrayDecoder:
    """A JSON array streamed element by element (Gemini streamGenerateContent without alt=sse)."""

    __slots__ = ("_depth", "_esc", "_in_elem", "_in_str", "_parts", "_pos", "_scalar", "_state")

    def __init__(self) -> None:
        self._state = _START
        self._in_elem = False
        self._depth = 0  # nesting inside the current element
        self._in_str = False
        self._esc = False  # the chunk ended right after a "\" inside a string
        self._scalar = False  # the current element is a number/true/false/null
        self._parts: list[bytes] = []  # earlier chunks' bytes of the current element
        self._pos = 0  # stream offset of the current chunk, for error messages

    def feed(self, chunk: bytes) -> list[Any]:
        """Decode a chunk; return every top-level element it completed, parsed."""
        out: list[Any] = []
        n = len(chunk)
        i = 0
        start = 0  # where the current element begins in this chunk
        while i < n:
            if not self._in_elem:
                i = _WS.match(chunk, i).end()
                if i == n:
                    break
                c = chunk[i]
                state = self._state
                if state == _AFTER:
                    if c == 0x2C:  # ","
                        self._state = _NEXT
                    elif c == 0x5D:  # "]"
                        self._state = _DONE
                    else:
                        self._syntax(chunk, i, "',' or ']' after an element")
                    i += 1
                    continue
                if state == _START:
                    if c != 0x5B:  # "["
                        self._syntax(chunk, i, "'[' at the start of the body")
                    self._state = _FIRST
                    i += 1
                    continue
                if state == _DONE:
                    self._syntax(chunk, i, "nothing after the closing ']'")
                if c == 0x5D and state == _FIRST:  # empty array
                    self._state = _DONE
                    i += 1
                    continue
                if c in b",]":
                    self._syntax(chunk, i, "an element")
                self._in_elem = True
                start = i
                i += 1
                if c == 0x7B or c == 0x5B:  # "{" or "["
                    self._depth = 1
                elif c == _QUOTE:
                    self._in_str = True
                else:
                    self._scalar = True
                continue
            # Inside an element.
            end = -1
            if self._esc:  # the byte after a split "\" is escaped, whatever it is
                self._esc = False
                i += 1
            elif self._in_str:
                j = _STR_BODY.match(chunk, i).end()
                if j == n:
                    i = n
                elif chunk[j] == _QUOTE:
                    self._in_str = False
                    i = j + 1
                    if self._depth == 0:  # a top-level string element
                        end = i
                else:  # a "\" as the last byte
                    self._esc = True
                    i = n
            elif self._scalar:
                m = _SCALAR_END.search(chunk, i)
                if m is None:
                    i = n
                else:
                    i = end = m.start()  # the delimiter is left for the between-elements code
            else:
                j = _SKIP.match(chunk, i).end()
                if j == n:
                    i = n
                else:
                    c = chunk[j]
                    i = j + 1
                    if c == _QUOTE:  # a string the chunk cuts off
                        self._in_str = True
                    elif c == 0x7B or c == 0x5B:
                        self._depth += 1
                    else:
                        self._depth -= 1
                        if self._depth == 0:  # mismatched brackets are left for json.loads to reject
                            end = i
            if end >= 0:
                raw = chunk[start:end]
                if self._parts:
                    self._parts.append(raw)
                    raw = b"".join(self._parts)
                    self._parts = []
                out.append(_loads(raw, f"array element before offset {self._pos + end}"))
                self._in_elem = self._scalar = False
                self._state = _AFTER
        if self._in_elem:
            self._parts.append(chunk[start:] if start else chunk)
        self._pos += n
        return out

    def flush(self) -> list[Any]:
        """End of body: a body cut between elements is accepted (nothing more to emit); mid-element raises."""
        if self._in_elem:
            raw = b"".join(self._parts)
            raise StreamDecodeError(f"JSON array ends inside an element at {self._pos}: {_excerpt(raw)}")
        return []

    def _syntax(self, chunk: bytes, i: int, expected: str) -> NoReturn:
        got = _excerpt(chunk[i : i + 20])
        raise StreamDecodeError(f"bad JSON array syntax at offset {self._pos + i}: expected {expected}, got {got}")


# ----------------------------------------------------------------------------------------- sniffing

_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"


class FramingSniffer:
    """Holds the first bytes of a body whose framing shows only in its first meaningful byte (after whitespace
    and a UTF-8 BOM, which may itself be split across chunks): `[` a JSON array, `{` NDJSON, else SSE."""

    __slots__ = ("_head",)

    def __init__(self) -> None:
        self._head = b""

    def sniff(self, chunk: bytes) -> tuple[bytes, bytes, bytes] | None:
        """None while undecided; else (the first meaningful byte, the body from it on, all bytes so far)."""
        head = self._head + chunk
        rest = head.lstrip(_WHITESPACE)
        if rest.startswith(_BOM):
            rest = rest[len(_BOM) :].lstrip(_WHITESPACE)
        if not rest or _BOM.startswith(rest):  # nothing yet, or perhaps the start of a split BOM
            self._head = head
            return None
        self._head = b""
        return rest[:1], rest, head


# ------------------------------------------------------------------------------------- AWS eventstream


@dataclass(frozen=True, slots=True)
class EventStreamMessage:
    """One AWS eventstream message: its headers (":message-type", ":event-type", …) and raw payload."""

    headers: dict[str, Any]
    payload: bytes


_PRELUDE = struct.Struct(">II")  # total length, headers length (then the prelude CRC)
_PRELUDE_LEN = 12
_MIN_FRAME = 16  # prelude + message CRC


class EventStreamDecoder:
    """application/vnd.amazon.eventstream (Bedrock ConverseStream); CRCs are checked by botocore."""

    __slots__ = ("_buf", "_need", "_parser")

    def __init__(self) -> None:
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
        except (ParserError, KeyError, IndexError, ValueError, struct.error) as e:
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
