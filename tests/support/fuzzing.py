"""A small seeded mutator of JSON documents and bytes, for the fuzz tests.

Every choice comes from the random.Random the caller passes in, so a (seed, case) pair reproduces a body exactly.
Mutations: a value replaced by a random JSON value of any type, a key deleted or added, a value wrapped or
stringified, raw JSON text spliced in where a value was (NaN, Infinity, 400-digit numbers, lone surrogates,
invalid UTF-8, nesting up to 100,000 deep), and byte-level damage to the serialised body.
"""

from __future__ import annotations

import json
import random
from typing import Any

# Keys a mutation may add: every OpenAI field some translation reads, and a few it never heard of.
TOP_KEYS = [
    "model", "messages", "prompt", "input", "stream", "stream_options", "tools", "tool_choice", "functions",
    "function_call", "response_format", "parallel_tool_calls", "stop", "n", "seed", "top_k", "top_p", "temperature",
    "max_tokens", "max_completion_tokens", "presence_penalty", "frequency_penalty", "suffix", "best_of", "echo",
    "logprobs", "top_logprobs", "logit_bias", "user", "modalities", "dimensions", "encoding_format", "metadata",
    "reasoning_effort", "store", "service_tier", "audio", "prediction", "x-unknown",
]  # fmt: skip
INNER_KEYS = [
    "role", "content", "name", "tool_calls", "tool_call_id", "function_call", "refusal", "reasoning_content",
    "type", "text", "image_url", "url", "detail", "function", "arguments", "parameters", "description", "strict",
    "json_schema", "schema", "properties", "items", "required", "enum", "anyOf", "$ref", "$defs", "id", "index",
    "include_usage", "input_audio", "file", "data", "format",
]  # fmt: skip

STRINGS = [
    "", "x", "auto", "none", "required", "function", "text", "image_url", "json_object", "json_schema", "object",
    "string", "array", "integer", "user", "assistant", "system", "developer", "tool", "float", "base64",
    "\ud800", "a\udfffb", "\x00", "a\r\nx-injected: 1", "m\x7f", "m\x85", "m\u2028", "gpt\nfake",
    "data:image/png;base64,iVBORw0KGgo=", "data:image/png;base64,!!!", "data:;base64,", "http://127.0.0.1:9/x.png",
    "s3://bucket/key.png", "{\"a\": 1}", "{", "[DONE]", "#/$defs/x", "../..", "%0d%0a", "é👋🏽", "x" * 3000,
]  # fmt: skip
NUMBERS = [0, 1, -1, 2, 0.5, -0.0, 1.5e308, 2**31, 2**63, 2**64, 10**400, -(10**400), 3.14]

# Raw JSON text spliced in for a value; json.dumps cannot write these.
RAW_VALUES = [
    b"NaN", b"Infinity", b"-Infinity", b"1" * 400, b"-" + b"9" * 400, b"1e400", b"-1e999", b"1" * 5000,
    b'"\\ud800"', b'"x\\udfff"', b'"\\udc00\\ud800"', b'"\xed\xa0\x80"', b'"\xff\xfe"', b'"\xc3("',
    b'"\xf4\x90\x80\x80"',
    b"[" * 100 + b"]" * 100, b"[" * 1023 + b"]" * 1023, b"[" * 1025 + b"]" * 1025, b'{"a":' * 1500 + b"1" + b"}" * 1500,
    b"[" * 5000 + b"]" * 5000, b"[" * 100_000 + b"]" * 100_000, b"[" * 100_000, b"-", b"01", b"tru", b"[,]",
]  # fmt: skip
_PLACEHOLDER = "\x01fuzz-raw-%d\x01"


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON document (the root included), as tuples of keys and indexes."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


def get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def put(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    """The document with the value at path replaced (the root itself when path is empty)."""
    if not path:
        return value
    get(doc, path[:-1])[path[-1]] = value
    return doc


class Mutator:
    def __init__(
        self, rng: random.Random, top_keys: list[str] | None = None, inner_keys: list[str] | None = None
    ) -> None:
        """`top_keys`/`inner_keys`: the keys mutations add (default: OpenAI's; another client format names its own)."""
        self.rng = rng
        self._raw: list[bytes] = []
        self.top_keys = top_keys or TOP_KEYS
        self.inner_keys = inner_keys or INNER_KEYS

    def value(self, depth: int = 0) -> Any:
        """A random JSON value of any type (strings with lone surrogates and control characters included)."""
        r = self.rng.random()
        if r < 0.1:
            return None
        if r < 0.18:
            return self.rng.choice([True, False])
        if r < 0.35:
            return self.rng.choice(NUMBERS)
        if r < 0.6 or depth > 3:
            return self.rng.choice(STRINGS)
        if r < 0.78:
            return [self.value(depth + 1) for _ in range(self.rng.randint(0, 3))]
        keys = self.inner_keys if self.rng.random() < 0.8 else self.top_keys
        return {self.rng.choice(keys): self.value(depth + 1) for _ in range(self.rng.randint(0, 3))}

    def raw(self) -> str:
        """A placeholder that `serialise` replaces with raw JSON text."""
        self._raw.append(self.rng.choice(RAW_VALUES))
        return _PLACEHOLDER % (len(self._raw) - 1)

    def mutate(self, doc: Any) -> Any:
        """One structural mutation of doc (which it may change in place); returns the new document."""
        targets = paths(doc)
        path = self.rng.choice(targets)
        node = get(doc, path)
        op = self.rng.random()
        if op < 0.3:
            return put(doc, path, self.value())
        if op < 0.45 and path:
            parent = get(doc, path[:-1])
            del parent[path[-1]]
            return doc
        if op < 0.6 and isinstance(node, dict):
            node[self.rng.choice(self.top_keys if not path else self.inner_keys)] = self.value()
            return doc
        if op < 0.72:
            wrap = self.rng.choice([lambda v: [v], lambda v: {"type": v}, lambda v: json.dumps(v), lambda v: [v, v]])
            return put(doc, path, wrap(node))
        if op < 0.95:
            return put(doc, path, self.raw())
        return put(doc, path, self.rng.choice([[], {}, "", 0, None, [json.loads(json.dumps(doc))]]))

    def serialise(self, doc: Any) -> bytes:
        """The document as bytes: escapes or raw surrogates (ED A0 80), then the raw splices, then byte damage."""
        ascii_only = self.rng.random() < 0.5
        text = json.dumps(doc, ensure_ascii=ascii_only, allow_nan=True)
        data = text.encode("utf-8", "surrogatepass")
        for i, raw in enumerate(self._raw):
            data = data.replace(json.dumps(_PLACEHOLDER % i, ensure_ascii=ascii_only).encode(), raw)
        self._raw = []
        if self.rng.random() < 0.1:
            data = self.damage(data)
        return data

    def damage(self, data: bytes) -> bytes:
        """Byte-level damage: cut short, a stray byte inserted, a byte flipped, or the body emptied."""
        if not data:
            return self.rng.choice([b"", b"\xff", b"{"])
        i = self.rng.randrange(len(data))
        op = self.rng.randrange(4)
        if op == 0:
            return data[:i]
        if op == 1:
            return data[:i] + bytes([self.rng.choice([0x00, 0x80, 0xC3, 0xED, 0xFF, 0x22, 0x5C])]) + data[i:]
        if op == 2:
            return data[:i] + bytes([data[i] ^ (1 << self.rng.randrange(8))]) + data[i + 1 :]
        return b""

    def body(self, base: Any, rounds: int = 3) -> bytes:
        """A mutated copy of base, serialised (1 to `rounds` mutations)."""
        doc = json.loads(json.dumps(base))
        for _ in range(self.rng.randint(1, rounds)):
            doc = self.mutate(doc)
        return self.serialise(doc)

    def splits(self, data: bytes) -> list[bytes]:
        """data cut at random offsets (a boundary may fall inside a character, a CRLF or a frame header)."""
        if not data:
            return [data]
        cuts = sorted(self.rng.sample(range(1, len(data) + 1), min(len(data), self.rng.randint(1, 6))))
        out, start = [], 0
        for cut in cuts:
            out.append(data[start:cut])
            start = cut
        if start < len(data):
            out.append(data[start:])
        return [c for c in out if c]
