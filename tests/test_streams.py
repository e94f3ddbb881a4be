"""addon.streams: each decoder yields the same events however the body is cut into chunks.

Every fixture is decoded whole, in 1-byte pieces, split in two at every byte offset and in a few three-piece
splits; all must give the same events, equal to the expected ones. The Kong conformance data is read in
place from ../shared/conformance/kong and those tests skip when it is absent.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from addon.streams import (
    EventStreamDecoder,
    EventStreamMessage,
    JSONArrayDecoder,
    NDJSONDecoder,
    SSEDecoder,
    SSEEvent,
    StreamDecodeError,
)

Decoder = type[SSEDecoder] | type[NDJSONDecoder] | type[JSONArrayDecoder] | type[EventStreamDecoder]

KONG = Path(__file__).resolve().parents[1].parent / "shared" / "conformance" / "kong"


# ------------------------------------------------------------------------------------------------ helpers


def decode(cls: Decoder, pieces: Sequence[bytes]) -> list[Any]:
    dec = cls()
    out: list[Any] = []
    for piece in pieces:
        out.extend(dec.feed(piece))
    out.extend(dec.flush())
    return out


# Up to this size a fixture is split at every offset. Beyond it (only the synthetic large fixtures) that
# would be quadratic in test time, so we split at every offset of the first 2 KB, in a stride of 97
# elsewhere, and in a window of +-4 bytes around each event boundary the caller names.
FULL_SPLIT_LIMIT = 4096


def split_variants(data: bytes, boundaries: Sequence[int] = ()) -> Iterator[list[bytes]]:
    n = len(data)
    yield [data]
    yield [data[i : i + 1] for i in range(n)]
    if n <= FULL_SPLIT_LIMIT:
        offsets: Sequence[int] = range(1, n)
    else:
        chosen = set(range(1, 2048)) | set(range(2048, n, 97))
        for b in boundaries:
            chosen.update(range(max(1, b - 4), min(n, b + 5)))
        offsets = sorted(chosen)
    for i in offsets:
        yield [data[:i], data[i:]]
    if n >= 3:
        rng = random.Random(n)  # deterministic per fixture
        cuts = [(1, n - 1), (n // 3, 2 * n // 3), (n // 2, n // 2 + 1)]
        cuts += [tuple(sorted(rng.sample(range(1, n), 2))) for _ in range(5)]
        for a, b in cuts:
            yield [data[:a], data[a:b], data[b:]]


def assert_split_invariant(cls: Decoder, data: bytes, expected: list[Any], boundaries: Sequence[int] = ()) -> None:
    for pieces in split_variants(data, boundaries):
        got = decode(cls, pieces)
        if got != expected:  # report the split, not a huge list diff
            cut = [len(p) for p in pieces] if len(pieces) <= 3 else f"{len(pieces)} pieces"
            pytest.fail(f"split {cut}: {len(got)} events, expected {len(expected)}\n{got!r:.2000}")


def assert_raises_every_split(cls: Decoder, data: bytes, match: str | None = None) -> None:
    for pieces in split_variants(data):
        with pytest.raises(StreamDecodeError, match=match):
            decode(cls, pieces)


def ends(data: bytes, sep: bytes) -> list[int]:
    """Offsets just past each occurrence of sep: where events end."""
    out, i = [], data.find(sep)
    while i >= 0:
        out.append(i + len(sep))
        i = data.find(sep, i + 1)
    return out


def E(data: str, event: str = "message", id: str | None = None, retry: int | None = None) -> SSEEvent:
    return SSEEvent(data, event, id, retry)


# ---------------------------------------------------------------------------------------------------- SSE

ANTHROPIC_SSE = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"id":"msg_1","role":"assistant","usage":{"input_tokens":5}}}\n\n'
    b"event: ping\n"
    b'data: {"type": "ping"}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi \\u00e9"}}\n\n'
    b"event: message_stop\n"
    b'data: {"type":"message_stop"}\n\n'
)

SSE_CASES = [
    pytest.param(
        ANTHROPIC_SSE,
        [
            E(
                '{"type":"message_start","message":{"id":"msg_1","role":"assistant","usage":{"input_tokens":5}}}',
                "message_start",
            ),
            E('{"type": "ping"}', "ping"),
            E(
                '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi \\u00e9"}}',
                "content_block_delta",
            ),
            E('{"type":"message_stop"}', "message_stop"),
        ],
        id="anthropic-event-names",
    ),
    pytest.param(b'data: {"a":1}\r\n\r\nevent: e\r\ndata: x\r\n\r\n', [E('{"a":1}'), E("x", "e")], id="crlf"),
    pytest.param(b"data: a\r\rdata: b\r\r", [E("a"), E("b")], id="cr"),
    # "\r\n", "\r", "\n" in one event; then "\n" + "\r" + "\r\n": one dispatching blank line and one spare.
    pytest.param(b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\n\r\r\n", [E("a\nb\nc"), E("d")], id="mixed-line-ends"),
    pytest.param(b": hello\n\n:\ndata: x\n: comment inside an event\ndata: y\n\n: bye\n", [E("x\ny")], id="comments"),
    pytest.param(b'data: {\ndata:   "a": 1\ndata: }\n\n', [E('{\n  "a": 1\n}')], id="multi-line-data"),
    pytest.param(
        b'data:{"token":{"text":"Hi"}}\n\ndata:[DONE]\n\n',
        [E('{"token":{"text":"Hi"}}'), E("[DONE]")],
        id="tgi-no-space",
    ),
    pytest.param(
        'event: délta\ndata: {"text":"héllo 👋🏽 世界"}\n\n'.encode(),
        [E('{"text":"héllo 👋🏽 世界"}', "délta")],
        id="utf8-multibyte",
    ),
    pytest.param(b"data: a\n\ndata: b", [E("a"), E("b")], id="final-event-without-newline"),
    pytest.param(b"data: a\n\ndata: [DONE]\n", [E("a"), E("[DONE]")], id="final-event-without-blank-line"),
    pytest.param(b"data: a\xe4\xb8", [E("a\ufffd")], id="truncated-utf8-at-end"),
    pytest.param(b"data: a\xffb\n\n", [E("a\ufffdb")], id="invalid-utf8-replaced"),
    pytest.param(b"\xef\xbb\xbfdata: x\n\n", [E("x")], id="bom-at-start-skipped"),
    pytest.param(b"data: \xef\xbb\xbfx\n\n", [E("\ufeffx")], id="bom-later-kept"),
    pytest.param(
        b"id: 1\ndata: a\n\ndata: b\n\nid: 2\x00x\nretry: 1000\ndata: c\n\n"
        b"retry: 1x\nretry: \xc2\xb2\ndata: d\n\nid\ndata: e\n\n",
        [E("a", id="1"), E("b", id="1"), E("c", id="1", retry=1000), E("d", id="1"), E("e", id="")],
        id="id-persists-nul-ignored-retry-digits-only",
    ),
    pytest.param(
        b"event: ping\n\ndata: x\n\nevent:\ndata: y\n\nretry: 5\n\ndata: z\n\nevent: orphan\n",
        [E("x"), E("y"), E("z")],
        id="dataless-blocks-not-dispatched-but-reset",
    ),
    pytest.param(b"data\n\ndata\ndata\n\n", [E(""), E("\n")], id="field-without-colon"),
    pytest.param(b"foo: bar\nDATA: no\ndata : no\ndata: yes\n\n", [E("yes")], id="unknown-fields-ignored"),
    pytest.param(b"data:  two\n\ndata:\tx\n\n", [E(" two"), E("\tx")], id="only-one-space-stripped"),
    pytest.param(b"", [], id="empty-body"),
    pytest.param(b": keep-alive\n\n: keep-alive\n\n", [], id="only-comments"),
]


def large_sse() -> bytes:
    lines = [
        f'event: delta\ndata: {{"i":{i},"text":"chunk {i} — ünïcode 👋🏽 \\n {"x" * (i % 40)}"}}\n\n' for i in range(80)
    ]
    return "".join(lines).encode()


@pytest.mark.parametrize(("data", "expected"), SSE_CASES)
def test_sse(data: bytes, expected: list[SSEEvent]) -> None:
    assert_split_invariant(SSEDecoder, data, expected)


def test_sse_large_fixture_strided_splits() -> None:
    data = large_sse()
    assert len(data) > FULL_SPLIT_LIMIT
    expected = decode(SSEDecoder, [data])
    assert len(expected) == 80
    assert [json.loads(e.data)["i"] for e in expected] == list(range(80))
    assert all(e.event == "delta" for e in expected)
    assert_split_invariant(SSEDecoder, data, expected, ends(data, b"\n\n"))


def test_sse_cr_then_lf_across_chunks_is_one_line_end() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\r") == []
    assert dec.feed(b"\n") == []  # completes "\r\n", not a second (blank) line
    assert dec.feed(b"\n") == [E("a")]
    assert dec.feed(b"data: b\r") == []
    assert dec.feed(b"") == []  # an empty read in between must not lose the pending "\r"
    assert dec.feed(b"\n") == []
    assert dec.feed(b"\r") == [E("b")]  # a blank line
    assert dec.feed(b"data: c\r") == []
    assert dec.feed(b"data: d\r\r") == [E("c\nd")]  # after "\r", anything but "\n" starts a new line


def test_sse_event_emitted_on_the_byte_that_completes_it() -> None:
    dec = SSEDecoder()
    emitted_at = [i for i in range(len(ANTHROPIC_SSE)) if dec.feed(ANTHROPIC_SSE[i : i + 1])]
    assert [i + 1 for i in emitted_at] == ends(ANTHROPIC_SSE, b"\n\n")


def test_sse_flush_empties_the_decoder() -> None:
    dec = SSEDecoder()
    dec.feed(b"data: a")
    assert dec.flush() == [E("a")]
    assert dec.flush() == []


# ------------------------------------------------------------------------------------------------- NDJSON

OLLAMA_NDJSON = (
    '{"model":"llama3","created_at":"2024-07-01T10:00:00Z","message":{"role":"assistant","content":"Hé"},'
    '"done":false}\n'
    '{"model":"llama3","created_at":"2024-07-01T10:00:01Z","message":{"role":"assistant","content":" 👋🏽 世界"},'
    '"done":false}\n'
    '{"model":"llama3","created_at":"2024-07-01T10:00:02Z","message":{"role":"assistant","content":""},'
    '"done":true,"done_reason":"stop","prompt_eval_count":12,"eval_count":3}\n'
).encode()

NDJSON_CASES = [
    pytest.param(OLLAMA_NDJSON, [json.loads(line) for line in OLLAMA_NDJSON.splitlines()], id="ollama-emoji"),
    pytest.param(b'{"a":1}\r\n\r\n  \n{"b":[1,2]}\r\n\t\r\n', [{"a": 1}, {"b": [1, 2]}], id="crlf-and-blank-lines"),
    pytest.param(b'{"a":1}\n{"b":"\\n"}', [{"a": 1}, {"b": "\n"}], id="last-line-without-newline"),
    pytest.param(b'1\n"s"\nnull\n[1]\n', [1, "s", None, [1]], id="any-json-value"),
    pytest.param(b'\xef\xbb\xbf{"a":1}\n', [{"a": 1}], id="bom"),
    pytest.param(b"", [], id="empty-body"),
    pytest.param(b"\n\r\n \n", [], id="only-blank-lines"),
]


@pytest.mark.parametrize(("data", "expected"), NDJSON_CASES)
def test_ndjson(data: bytes, expected: list[Any]) -> None:
    assert_split_invariant(NDJSONDecoder, data, expected)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"a":1}\n{"a":\n{"b":2}\n', id="bad-line"),
        pytest.param(b'{"a":1}\n{"a"', id="bad-last-line"),
        pytest.param(b'{"a":1}\n\xff\n', id="invalid-utf8"),
        pytest.param(b'{"a":1} {"b":2}\n', id="two-values-on-a-line"),
    ],
)
def test_ndjson_errors(data: bytes) -> None:
    assert_raises_every_split(NDJSONDecoder, data, match="invalid JSON line")


def test_ndjson_error_message_has_excerpt() -> None:
    with pytest.raises(StreamDecodeError, match=r"'\{\"oops\": '"):
        NDJSONDecoder().feed(b'{"oops": \n')


# --------------------------------------------------------------------------------------------- JSON array

# Gemini streamGenerateContent without alt=sse; strings hold ] } , [ { and escaped quotes and backslashes,
# the second text ends in an escaped backslash right before its closing quote.
GEMINI_ARRAY = (
    b'[{"candidates":[{"content":{"parts":[{"text":"a ] b } c , d \\" e \\\\ f [ {"}],"role":"model"},'
    b'"index":0}]}\r\n'
    b",\r\n"
    b'{"candidates":[{"content":{"parts":[{"text":"tail \\\\"}],"role":"model"},"index":0}]}\r\n'
    b",\r\n"
    b'{"candidates":[{"content":{"parts":[{"text":"\\\\\\"]}\\u00e9 \xf0\x9f\x91\x8b"}],"role":"model"},'
    b'"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":6,"candidatesTokenCount":9}}\r\n'
    b"]"
)


def gemini_texts(elements: list[Any]) -> list[str]:
    return [p["text"] for e in elements for c in e["candidates"] for p in c["content"]["parts"]]


JSON_ARRAY_CASES = [
    pytest.param(GEMINI_ARRAY, None, id="gemini"),  # expected: checked in test_json_array_gemini_meaning
    pytest.param(b"[]", [], id="empty-array"),
    pytest.param(b" \r\n[ \r\n ]\r\n", [], id="empty-array-whitespace"),
    pytest.param(b"", [], id="empty-body"),
    pytest.param(
        b'[1, -2.5e3 ,"s\\"]",true,false,null, [] ,{}, [[1],[2]], "\\\\"]',
        [1, -2500.0, 's"]', True, False, None, [], {}, [[1], [2]], "\\"],
        id="any-json-values",
    ),
    pytest.param(
        b'\r\n[\r\n\r\n{"a":"}"}\r\n\r\n,\r\n\r\n{"b":"{"}\r\n]\r\n', [{"a": "}"}, {"b": "{"}], id="whitespace"
    ),
    pytest.param(
        '[{"text":"héllo 👋🏽 世界 \\u00e9"},\n{"t":"\\ud83d\\udc4b"}]'.encode(),
        [{"text": "héllo 👋🏽 世界 é"}, {"t": "👋"}],
        id="utf8",
    ),
    # A body cut between elements (as in Kong's partial fixtures) is not an error: nothing is lost.
    pytest.param(b'[{"a":1},{"b":2}\n', [{"a": 1}, {"b": 2}], id="cut-after-element"),
    pytest.param(b'[{"a":1},', [{"a": 1}], id="cut-after-comma"),
    pytest.param(b"[", [], id="cut-after-bracket"),
]


@pytest.mark.parametrize(("data", "expected"), JSON_ARRAY_CASES)
def test_json_array(data: bytes, expected: list[Any] | None) -> None:
    reference = decode(JSONArrayDecoder, [data])
    if expected is not None:
        assert reference == expected
    assert_split_invariant(JSONArrayDecoder, data, reference)


def test_json_array_gemini_meaning() -> None:
    elements = decode(JSONArrayDecoder, [GEMINI_ARRAY])
    assert gemini_texts(elements) == ['a ] b } c , d " e \\ f [ {', "tail \\", '\\"]}é 👋']
    assert elements[2]["usageMetadata"] == {"promptTokenCount": 6, "candidatesTokenCount": 9}


def test_json_array_large_fixture_strided_splits() -> None:
    objs = [
        {"candidates": [{"content": {"parts": [{"text": f"part {i} " + '"]}{[,\\ ü 👋 ' + "y" * (60 + 5 * i)}]}}]}
        for i in range(24)
    ]
    data = b"[" + b"\r\n,\r\n".join(json.dumps(o, ensure_ascii=False).encode() for o in objs) + b"]"
    assert len(data) > FULL_SPLIT_LIMIT
    assert_split_invariant(JSONArrayDecoder, data, objs, ends(data, b"}\r\n,"))


def test_json_array_element_emitted_on_the_byte_that_completes_it() -> None:
    dec = JSONArrayDecoder()
    emitted_at = [i for i in range(len(GEMINI_ARRAY)) if dec.feed(GEMINI_ARRAY[i : i + 1])]
    # Each element ends with the "}" just before its "\r\n".
    assert emitted_at == [i for i in range(len(GEMINI_ARRAY)) if GEMINI_ARRAY.startswith(b"}\r\n", i)]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(b'{"a":1}', "expected '\\['", id="not-an-array"),
        pytest.param(b'[{"a":1} {"b":2}]', "expected ',' or ']'", id="missing-comma"),
        pytest.param(b'[,{"a":1}]', "expected an element", id="leading-comma"),
        pytest.param(b'[{"a":1},]', "expected an element", id="trailing-comma"),
        pytest.param(b'[{"a":1}] x', "nothing after", id="data-after-array"),
        pytest.param(b'[{"a":}]', "invalid JSON array element", id="bad-element"),
        pytest.param(b'[{"a":[1}]}]', "invalid JSON array element", id="mismatched-brackets"),
        pytest.param(b'[{"a":"b', "ends inside an element", id="cut-in-string"),
        pytest.param(b'[{"a":1}, {"b"', "ends inside an element", id="cut-in-second-element"),
        pytest.param(b'["abc\\', "ends inside an element", id="cut-after-backslash"),
        pytest.param(b"[12", "ends inside an element", id="cut-in-number"),
    ],
)
def test_json_array_errors(data: bytes, match: str) -> None:
    assert_raises_every_split(JSONArrayDecoder, data, match=match)


# ---------------------------------------------------------------------------------------- AWS eventstream


def es_header(name: str, value: str) -> bytes:
    """One header of type 7 (string)."""
    n, v = name.encode(), value.encode()
    return bytes([len(n)]) + n + b"\x07" + struct.pack(">H", len(v)) + v


def es_frame(headers: dict[str, str], payload: bytes, raw_headers: bytes | None = None) -> bytes:
    """An eventstream message: prelude (total len, headers len, CRC32), headers, payload, message CRC32."""
    hb = raw_headers if raw_headers is not None else b"".join(es_header(k, v) for k, v in headers.items())
    prelude = struct.pack(">II", 12 + len(hb) + len(payload) + 4, len(hb))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + hb + payload
    return message + struct.pack(">I", binascii.crc32(message))


def bedrock_event(event_type: str, body: Any) -> EventStreamMessage:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return EventStreamMessage(headers, json.dumps(body, ensure_ascii=False).encode())


CONVERSE_STREAM = [
    bedrock_event("messageStart", {"role": "assistant"}),
    bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Héllo 👋🏽"}}),
    bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": " wörld"}}),
    bedrock_event("contentBlockStop", {"contentBlockIndex": 0}),
    bedrock_event("messageStop", {"stopReason": "end_turn"}),
    bedrock_event(
        "metadata",
        {"usage": {"inputTokens": 9, "outputTokens": 4, "totalTokens": 13}, "metrics": {"latencyMs": 321}},
    ),
]
THROTTLED = EventStreamMessage(
    {
        ":exception-type": "throttlingException",
        ":content-type": "application/json",
        ":message-type": "exception",
    },
    b'{"message":"Too many requests, please wait before trying again."}',
)
EMPTY_PAYLOAD = EventStreamMessage({":message-type": "event", ":event-type": "ping"}, b"")


def es_bytes(messages: list[EventStreamMessage]) -> bytes:
    return b"".join(es_frame(m.headers, m.payload) for m in messages)


EVENTSTREAM_CASES = [
    pytest.param(CONVERSE_STREAM, id="converse-stream"),
    pytest.param([*CONVERSE_STREAM[:2], THROTTLED], id="exception-frame"),
    pytest.param([EMPTY_PAYLOAD, CONVERSE_STREAM[0]], id="empty-payload"),
    pytest.param([], id="empty-body"),
]


@pytest.mark.parametrize("messages", EVENTSTREAM_CASES)
def test_eventstream(messages: list[EventStreamMessage]) -> None:
    assert_split_invariant(EventStreamDecoder, es_bytes(messages), messages)


def test_eventstream_exception_headers() -> None:
    (msg,) = decode(EventStreamDecoder, [es_bytes([THROTTLED])])
    assert msg.headers[":message-type"] == "exception"
    assert msg.headers[":exception-type"] == "throttlingException"
    assert json.loads(msg.payload)["message"].startswith("Too many requests")


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


GOOD_FRAMES = es_bytes(CONVERSE_STREAM[:3])
FIRST_LEN = len(es_frame(CONVERSE_STREAM[0].headers, CONVERSE_STREAM[0].payload))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(_flip(GOOD_FRAMES, FIRST_LEN - 1), "Checksum", id="message-crc"),
        pytest.param(_flip(GOOD_FRAMES, FIRST_LEN + 40), "Checksum", id="payload-byte"),
        pytest.param(_flip(GOOD_FRAMES, FIRST_LEN + 9), "Checksum", id="prelude-crc"),
        pytest.param(_flip(GOOD_FRAMES, FIRST_LEN + 2), "Checksum", id="prelude-length"),
        pytest.param(GOOD_FRAMES[:-5], "ends inside a frame", id="truncated-frame"),
        pytest.param(GOOD_FRAMES[: FIRST_LEN + 5], "ends inside a frame", id="truncated-prelude"),
        pytest.param(es_frame({}, b"{}", raw_headers=b"\x01a\x2a"), "bad eventstream frame", id="bad-header-type"),
        pytest.param(es_frame({":a": "x", ":b": "y"}, b"")[:-4] + b"\0\0\0\0", "Checksum", id="zero-crc"),
    ],
)
def test_eventstream_errors(data: bytes, match: str) -> None:
    assert_raises_every_split(EventStreamDecoder, data, match=match)


def test_eventstream_bad_prelude_fails_fast() -> None:
    # A corrupt prelude is reported as soon as its 12 bytes are in, not after the claimed length arrives.
    frame = es_frame(CONVERSE_STREAM[0].headers, CONVERSE_STREAM[0].payload)
    dec = EventStreamDecoder()
    with pytest.raises(StreamDecodeError, match="Checksum"):
        dec.feed(b"\x00\xff" + frame[2:12])  # length 16 MB more than it is; prelude CRC no longer matches
    lengths = struct.pack(">II", 20, 8)  # 8 bytes of headers cannot fit in a 20-byte frame
    with pytest.raises(StreamDecodeError, match="bad eventstream prelude"):
        EventStreamDecoder().feed(lengths + struct.pack(">I", binascii.crc32(lengths)))


def test_eventstream_messages_returned_as_soon_as_complete() -> None:
    frames = [es_frame(m.headers, m.payload) for m in CONVERSE_STREAM]
    dec = EventStreamDecoder()
    for frame, msg in zip(frames, CONVERSE_STREAM, strict=True):
        assert dec.feed(frame[:-1]) == []
        assert dec.feed(frame[-1:]) == [msg]
    assert dec.flush() == []


# ---------------------------------------------------------------------------------------- linear time


# -------------------------------------------------------------------------- Kong conformance data, in place


def kong(rel: str) -> Path:
    if not KONG.is_dir():
        pytest.skip(f"peer conformance data not present at {KONG}")
    path = KONG / rel
    assert path.exists(), path
    return path


def sse_json(events: list[SSEEvent]) -> list[Any]:
    return [json.loads(e.data) for e in events if e.data != "[DONE]"]


CHUNK_FORMATS = "ai-proxy/unit/streaming-chunk-formats"
# Kong's framing tests: which decoder each directory needs.
KONG_CHUNK_FORMATS: dict[str, Decoder] = {
    "text-event-stream": SSEDecoder,
    "complete-json": NDJSONDecoder,  # Cohere v1: JSON lines, "\r\n", no final newline
    "partial-json-beginning": JSONArrayDecoder,
    "partial-json-end": JSONArrayDecoder,
    "partial-json-split": JSONArrayDecoder,
    "partial-json-split-three-parts": JSONArrayDecoder,
    "aws": EventStreamDecoder,
}
# partial-json-end is the tail of a Gemini array as a later read sees it (",{...}]"); our decoders are
# per-body, so we give it a made-up first element and the opening bracket, and drop that element again.
KONG_PREFIX = {"partial-json-end": b'[{"prefix":true}'}


def test_kong_chunk_formats_all_covered() -> None:
    present = {p.name for p in kong(CHUNK_FORMATS).iterdir() if p.is_dir()}
    assert present == set(KONG_CHUNK_FORMATS)


@pytest.mark.parametrize("name", sorted(KONG_CHUNK_FORMATS))
def test_kong_chunk_formats(name: str) -> None:
    folder = kong(f"{CHUNK_FORMATS}/{name}")
    cls = KONG_CHUNK_FORMATS[name]
    reads = [p.read_bytes() for p in sorted(folder.glob("input*.bin"))]  # consecutive reads of one stream
    if name in KONG_PREFIX:
        reads.insert(0, KONG_PREFIX[name])
    data = b"".join(reads)
    reference = decode(cls, [data])
    assert decode(cls, reads) == reference
    assert_split_invariant(cls, data, reference)

    if (folder / "expected-output.json").exists():
        expected = [e["data"] for e in json.loads((folder / "expected-output.json").read_text())]
    else:
        expected_text = (folder / "expected-output.bin").read_text()

    if name == "text-event-stream":
        # The body ends in "data: [DONE]" without its blank line: Kong keeps that as an unfinished frame and
        # leaves it out; what feed() alone returns is exactly Kong's output, and flush() adds [DONE].
        assert [e.data for e in reference] == [*expected, "[DONE]"]
        dec = SSEDecoder()
        assert [e.data for e in dec.feed(data)] == expected
        assert sse_json(reference)[-1]["choices"][0]["finish_reason"] == "stop"
    elif name == "complete-json":
        assert reference == [json.loads(d) for d in expected]
    elif name == "partial-json-beginning":
        assert reference == [json.loads(d) for d in expected]  # the body stops after an element: no error
    elif name == "partial-json-end":
        # Kong turns the closing "]" into a "[DONE]" event; for us it means the array is closed.
        assert expected[-1] == "[DONE]"
        assert reference[1:] == [json.loads(d) for d in expected[:-1]]
        dec = JSONArrayDecoder()
        dec.feed(data)
        with pytest.raises(StreamDecodeError, match="nothing after"):
            dec.feed(b"{}")
    elif name.startswith("partial-json-split"):
        # Kong's expected output is the concatenated text (a Kong transformation); the framing meaning is
        # that our elements carry exactly that text, and each read yields the elements it completes.
        assert "".join(gemini_texts(reference)) == expected_text
        dec = JSONArrayDecoder()
        per_read = [len(dec.feed(r)) for r in reads]
        assert sum(per_read) == len(reference) and per_read[0] == 1
    elif name == "aws":
        assert len(reference) == len(expected)
        for msg, exp in zip(reference, expected, strict=True):
            exp = json.loads(exp)
            assert msg.headers == exp["headers"]
            assert json.loads(msg.payload) == json.loads(exp["body"])
        # Our test encoder reproduces real AWS frames byte for byte.
        assert es_bytes(reference) == data


REAL_STREAM_FRAMES: dict[str, Decoder] = {
    "openai/llm-v1-chat.txt": SSEDecoder,
    "openai/llm-v1-completions.txt": SSEDecoder,
    "cohere/llm-v1-chat.txt": NDJSONDecoder,
    "cohere/llm-v1-completions.txt": NDJSONDecoder,
}


@pytest.mark.parametrize("rel", sorted(REAL_STREAM_FRAMES))
def test_kong_real_stream_frames(rel: str) -> None:
    data = kong(f"ai-proxy/unit/real-stream-frames/{rel}").read_bytes()
    cls = REAL_STREAM_FRAMES[rel]
    reference = decode(cls, [data])
    assert_split_invariant(cls, data, reference)
    (event,) = reference  # one frame, terminated by a single "\n": dispatched at flush
    value = json.loads(event.data) if isinstance(event, SSEEvent) else event
    choice = value["choices"][0] if "choices" in value else value
    assert choice.get("text", choice.get("delta", {}).get("content")) == "the answer"


STREAMING = "extracted-from-spec/09-streaming"
WIRE_DECODERS: dict[str, Decoder] = {
    "openai_llm_v1_chat_good": SSEDecoder,
    "openai_llm_v1_chat_partial": SSEDecoder,
    "anthropic_llm_v1_chat_good": SSEDecoder,
    "cohere_llm_v1_chat_good": NDJSONDecoder,  # served as text/event-stream, but it is JSON lines
    "gemini_llm_v1_chat_functions_good": JSONArrayDecoder,
}


def check_wire_meaning(name: str, events: list[Any]) -> None:
    if name.startswith("openai"):
        assert events[-1].data == "[DONE]"
        chunks = sse_json(events)
        assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "The answer to 1 + 1 is 2."
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    elif name.startswith("anthropic"):
        assert all(json.loads(e.data)["type"] == e.event for e in events)
        deltas = [json.loads(e.data)["delta"] for e in events if e.event == "content_block_delta"]
        assert "".join(d["text"] for d in deltas) == "1 + 1 = 2"
        assert events[0].event == "message_start" and events[-1].event == "message_stop"
    elif name.startswith("cohere"):
        texts = [e["text"] for e in events if e["event_type"] == "text-generation"]
        assert events[0]["event_type"] == "stream-start" and events[-1]["event_type"] == "stream-end"
        assert "".join(texts) == events[-1]["response"]["text"]
    else:
        (element,) = events
        (part,) = element["candidates"][0]["content"]["parts"]
        assert part["functionCall"] == {"name": "add", "args": {"a": 2, "b": 12}}


def test_kong_wire_all_covered() -> None:
    manifest = json.loads(kong(f"{STREAMING}/MANIFEST.json").read_text())
    assert set(manifest) == set(WIRE_DECODERS)


@pytest.mark.parametrize("name", sorted(WIRE_DECODERS))
def test_kong_wire(name: str) -> None:
    wire = kong(f"{STREAMING}/{name}.wire.txt").read_bytes()
    writes = [c.encode() for c in json.loads(kong(f"{STREAMING}/{name}.chunks.json").read_text())]
    manifest = json.loads(kong(f"{STREAMING}/MANIFEST.json").read_text())[name]
    assert len(writes) == manifest["chunks"] and b"".join(writes) == wire
    cls = WIRE_DECODERS[name]
    reference = decode(cls, [wire])
    assert decode(cls, writes) == reference
    assert_split_invariant(cls, wire, reference)
    check_wire_meaning(name, reference)


def bedrock_stream() -> list[bytes]:
    reads = []
    for i in (1, 2, 3):
        raw = base64.b64decode(kong(f"ai-proxy/bedrock/chunks/chunk-{i}.txt").read_text())
        assert raw == kong(f"extracted-from-spec/bedrock/chunk-{i}.eventstream.bin").read_bytes()
        reads.append(raw)
    return reads


def test_kong_bedrock_chunks() -> None:
    reads = bedrock_stream()
    data = b"".join(reads)
    reference = decode(EventStreamDecoder, [data])
    assert [m for r in reads for m in decode(EventStreamDecoder, [r])] == reference  # each read: whole frames
    assert_split_invariant(EventStreamDecoder, data, reference)
    assert es_bytes(reference) == data

    types = [m.headers[":event-type"] for m in reference]
    assert types == ["messageStart", "contentBlockStart", *["contentBlockDelta"] * 5, "contentBlockStop",
                     "messageStop", "metadata"]  # fmt: skip
    bodies = [json.loads(m.payload) for m in reference]
    assert bodies[1]["start"]["toolUse"]["name"] == "add"
    tool_input = "".join(b["delta"]["toolUse"]["input"] for b in bodies if "delta" in b)
    assert json.loads(tool_input) == {"a": 2, "b": 12}
    assert bodies[-2]["stopReason"] == "tool_use"
    assert bodies[-1]["usage"]["totalTokens"] == 522


@pytest.mark.parametrize(
    ("body", "first"),
    [(b"[{}]", b"["), (b'\xef\xbb\xbf \r\n{"a":1}\n', b"{"), (b"\n\ndata: x\n\n", b"d"), (b"  \xef\xbb\xbf[1]", b"[")],
)
def test_framing_sniffer_decides_on_the_first_meaningful_byte_wherever_the_body_splits(
    body: bytes, first: bytes
) -> None:
    from addon.streams import FramingSniffer

    for cut in range(len(body) + 1):
        sniffer = FramingSniffer()
        found = sniffer.sniff(body[:cut]) if cut else None
        seen = body[:cut]
        if found is None:  # undecided: the sniffer kept the first piece and decides on the second
            found, seen = sniffer.sniff(body[cut:]), body
        assert found is not None
        got_first, rest, everything = found
        assert got_first == first
        assert everything == seen and seen.endswith(rest) and rest.startswith(first)
