"""Seeded fuzz tests: no body crashes the proxy.

Client side: valid requests of every route type, mutated (types swapped, keys deleted, random values anywhere,
deep nesting, huge numbers, NaN, lone surrogates, invalid UTF-8), go through the pure core (prepare_call,
build_upstream, the body's serialisation and Bedrock's signing) for every provider set-up: each ends in a valid
upstream request or a ProxyError 400/413/415 in the OpenAI envelope, never another exception.

Upstream side: valid answers and streams of every provider, mutated the same way (streams also split at random
offsets), are translated into a 2xx OpenAI answer or a 502 `bad_upstream_response` envelope, and a stream into
OpenAI events that end in an error event when they cannot end normally, never an exception.

A failure names the seed, the case and the set-up: `FUZZ_SEED=<seed> pytest tests/test_fuzz.py -k <test>`
replays the same bodies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import sys
from typing import Any

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from addon import exchange, jsonutil, native, preserve, streaming
from addon.errors import ProxyError
from addon.exchange import ClientRequest, build_upstream, prepare_call, provider_for, translate_response
from addon.providers import Call
from addon.proxy import AIProxy
from addon.rules import Rule
from addon.streams import EventStreamDecoder, JSONArrayDecoder, NDJSONDecoder, SSEDecoder, StreamDecodeError
from addon.templating import TemplateContext
from tests.support import samples
from tests.support.fuzzing import Mutator
from tests.support.rules import CHAT, COMPLETIONS, EMBEDDINGS, SELF_HOSTED, TARGETS, Target, make_rule

SEED = int(os.environ.get("FUZZ_SEED", "20260525"))


@pytest.fixture(autouse=True)
def no_last_resort(monkeypatch: pytest.MonkeyPatch) -> None:
    """The last-resort guards of translate_response and the stream translators hide nothing from this file: a
    case that reaches one fails, with the exception the parser raised."""

    def refuse(message: str, *args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"last-resort guard reached: {message % args}: {sys.exc_info()[1]!r}")

    for module in (exchange, streaming):  # hasattr: the file also runs on code without them
        if hasattr(module, "log"):
            monkeypatch.setattr(module.log, "debug", refuse)


CLIENT_CASES = {CHAT: 1200, COMPLETIONS: 700, EMBEDDINGS: 500}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "A city"},
                "days": {"type": "integer", "enum": [1, 2, 3]},
                "units": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}},
            },
            "required": ["city"],
            "$defs": {"tag": {"type": "object", "properties": {"name": {"type": "string"}}}},
        },
        "strict": False,
    },
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer",
        "schema": {"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"]},
        "strict": True,
    },
}
CHAT_BODIES: list[dict[str, Any]] = [
    {"messages": [{"role": "user", "content": "Hi"}]},
    {
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": [{"type": "text", "text": "What is the weather?"}, IMAGE], "name": "bob"},
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "user", "content": "Thanks"},
        ],
        "tools": [TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": True,
        "temperature": 0.5,
        "top_p": 0.9,
        "max_tokens": 100,
        "stop": ["\n\n"],
        "user": "user-1",
    },
    {
        "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "JSON only."}]},
            {"role": "user", "content": "1 + 1?"},
        ],
        "response_format": SCHEMA,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 50,
        "n": 1,
    },
    {
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "function_call": {"name": "get_weather", "arguments": "{}"}},
            {"role": "function", "name": "get_weather", "content": "sunny"},
        ],
        "functions": [TOOL["function"]],
        "function_call": "auto",
        "response_format": {"type": "json_object"},
        "top_k": 5,
        "seed": 7,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
    },
]
COMPLETIONS_BODIES: list[dict[str, Any]] = [
    {"prompt": "Hi"},
    {"prompt": ["Say hi"], "max_tokens": 5, "temperature": 0.2, "stop": "\n", "stream": True, "n": 1, "seed": 3},
    {"prompt": "def add(a, b):", "suffix": "    return c", "max_tokens": 16, "top_p": 0.5},
]
EMBEDDINGS_BODIES: list[dict[str, Any]] = [
    {"input": "hello"},
    {"input": ["a", "b"], "dimensions": 256, "encoding_format": "base64", "user": "u"},
    {"input": [1, 2, 3], "encoding_format": "float"},
    {"input": [[1, 2], [3]]},
]
BODIES = {CHAT: CHAT_BODIES, COMPLETIONS: COMPLETIONS_BODIES, EMBEDDINGS: EMBEDDINGS_BODIES}
_RULES: dict[tuple[str, str], Rule] = {}


def rule_of(target: Target) -> Rule:
    key = (target.label, target.route)
    if key not in _RULES:
        _RULES[key] = target.rule()
    return _RULES[key]


def base_body(target: Target, body: dict[str, Any]) -> dict[str, Any]:
    return body if target.name is not None else {**body, "model": target.client_model}


def send(target: Target, data: bytes) -> None:
    """What the glue does with a client body, up to the bytes that would leave: raises ProxyError or nothing."""
    rule = rule_of(target)
    call = prepare_call(rule, {}, ClientRequest({}, {}, "application/json", data))
    up = build_upstream(rule, call)
    body = jsonutil.dumps(up.body) if up.body is not None else b""
    provider_for(rule).sign(call, up, body)
    # What leaves must be valid, strict JSON and clean headers, with a model fit for the x-ai-proxy-model header.
    if up.body is not None:
        json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    assert not _CONTROL.search(up.url), up.url
    for name, value in up.headers.items():
        assert not _CONTROL.search(name + value), (name, value)
    assert call.model is None or not _CONTROL.search(call.model), call.model


def _refuse_constant(name: str) -> None:
    raise AssertionError(f"upstream body holds {name}")


def check_refusal(err: ProxyError) -> None:
    assert err.status in (400, 413, 415), (err.status, err.message)
    envelope = err.envelope()
    assert set(envelope) == {"error"} and set(envelope["error"]) == {"message", "type", "param", "code"}
    assert isinstance(err.message, str) and err.message
    json.loads(err.body())


def replay_hint(seed: int, case: int, target: Target, data: bytes) -> str:
    return f"seed {seed} case {case} target {target.label} ({target.route}) body {data[:300]!r}"


@pytest.mark.parametrize("route", [CHAT, COMPLETIONS, EMBEDDINGS])
def test_client_bodies_never_crash(route: str) -> None:
    targets = [t for t in TARGETS if t.route == route]
    seed = SEED + [CHAT, COMPLETIONS, EMBEDDINGS].index(route)
    rng = random.Random(seed)
    mutator = Mutator(rng)
    for case in range(CLIENT_CASES[route]):
        target = targets[case % len(targets)]
        data = mutator.body(base_body(target, rng.choice(BODIES[route])))
        try:
            send(target, data)
        except ProxyError as e:
            try:
                check_refusal(e)
            except AssertionError as failure:
                pytest.fail(f"{replay_hint(seed, case, target, data)}: bad refusal {failure}")
        except Exception as e:  # any other exception is the bug this test exists to find
            pytest.fail(f"{replay_hint(seed, case, target, data)}: {type(e).__name__}: {e}")


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: f"{t.route.rsplit('/', 1)[1]}-{t.label}")
def test_every_base_body_reaches_its_provider(target: Target) -> None:
    """The fuzz starts from requests a provider takes, so that its mutations reach deep into each translation."""
    accepted = 0
    for body in BODIES[target.route]:
        try:
            send(target, json.dumps(base_body(target, body)).encode())
            accepted += 1
        except ProxyError:
            pass
    assert accepted, f"no base body is accepted by {target.label}"


# ==============================================================================================================
# Upstream answers and streams
# ==============================================================================================================

ANSWER_CASES = 1500
STREAM_CASES = 1500
ANSWER_TARGETS = TARGETS
STREAM_TARGETS = [t for t in TARGETS if t.route != EMBEDDINGS]
_CALLS: dict[tuple[str, str, bool], Call] = {}


def call_of(target: Target, stream: bool) -> Call:
    """A prepared call of the target's first accepted base body (streamed when asked)."""
    key = (target.label, target.route, stream)
    if key not in _CALLS:
        for body in BODIES[target.route]:
            request = base_body(target, {**body, "stream": True} if stream else body)
            if target.route == EMBEDDINGS:
                request.pop("stream", None)
            try:
                call = prepare_call(rule_of(target), {}, ClientRequest({}, {}, "application/json", _dumps(request)))
                build_upstream(rule_of(target), call)
            except ProxyError:
                continue
            _CALLS[key] = call
            break
    return _CALLS[key]


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def translate(target: Target, data: bytes) -> tuple[int, dict[str, Any]]:
    provider = provider_for(rule_of(target))
    call = call_of(target, False)
    call.response_headers = {"content-type": "application/json"}
    return translate_response(provider, call, 200, data, "application/json")


def check_answer(status: int, out: Any) -> None:
    """A 2xx translation the glue can serialise, or a 502 bad_upstream_response envelope."""
    assert isinstance(out, dict), out
    serialised = jsonutil.dumps(out)
    json.loads(serialised.decode("utf-8"), parse_constant=_refuse_constant)
    if status == 200:
        assert "error" not in out, out
        _check_usage(out.get("usage"))
        return
    assert set(out) == {"error"} and set(out["error"]) == {"message", "type", "param", "code"}, out
    assert (status == 502 and out["error"]["code"] == "bad_upstream_response") or out["error"]["code"] in _VERDICTS, (
        status,
        out,
    )


# A provider's own verdict on a 2xx body it answered (Cohere's finish_reason ERROR and friends).
_VERDICTS = {"generation_error", "generation_timeout", "content_filter", "max_tokens_reached", "upstream_error"}


def _check_usage(usage: Any) -> None:
    if usage is None:
        return
    assert isinstance(usage, dict), usage
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = usage.get(key)
        assert value is None or (isinstance(value, int) and 0 <= value < 2**63), (key, value)


@pytest.mark.parametrize("seed", [SEED, SEED + 1])
def test_upstream_answers_never_crash(seed: int) -> None:
    rng = random.Random(seed)
    mutator = Mutator(rng)
    for case in range(ANSWER_CASES // 2):
        target = ANSWER_TARGETS[case % len(ANSWER_TARGETS)]
        data = mutator.body(samples.answer(target))
        try:
            check_answer(*translate(target, data))
        except Exception as e:  # the bug this test exists to find
            pytest.fail(f"{replay_hint(seed, case, target, data)}: {type(e).__name__}: {e}")


def run_stream(target: Target, pieces: list[bytes]) -> bytes:
    call = call_of(target, True)
    call.response_headers = {"content-type": "text/event-stream"}
    translator = provider_for(rule_of(target)).stream_translator(call, True, True)
    out = b"".join(translator.feed(p) for p in pieces)
    return out + translator.finish()


def check_stream(out: bytes) -> None:
    """OpenAI SSE events, each valid JSON (or [DONE]), ending in [DONE] or an error event."""
    assert out.endswith(b"\n\n"), out[-200:]
    events = [e for e in out.decode("utf-8").split("\n\n") if e]
    for event in events:
        assert event.startswith("data: "), event
        if event != "data: [DONE]":
            json.loads(event[6:], parse_constant=_refuse_constant)
    last = events[-1]
    assert last == "data: [DONE]" or "error" in json.loads(last[6:]), last


def mutated_stream(mutator: Mutator, rng: random.Random, target: Target) -> bytes:
    framing, events = samples.stream(target)
    events = list(events)
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        i = rng.randrange(len(events))
        if op < 0.6:  # one event's JSON mutated, reframed (so a CRC or a line end does not hide it)
            item = events[i]
            if framing in ("sse", "eventstream"):
                name, payload = item
                events[i] = (name, _mutated_json(mutator, payload))
            else:
                events[i] = _mutated_json(mutator, item)
        elif op < 0.75:
            del events[i]
        elif op < 0.9:
            events.insert(i, events[rng.randrange(len(events))] if events else (None, {}))
        else:
            events = events[: rng.randrange(len(events) + 1)]
        if not events:
            break
    data = samples.frame(framing, events)
    return mutator.damage(data) if rng.random() < 0.2 else data


def _mutated_json(mutator: Mutator, payload: Any) -> Any:
    """A mutated event payload: the serialised bytes as they are (raw splices and byte damage included)."""
    if isinstance(payload, bytes):  # mutated before
        return mutator.damage(payload)
    return payload if isinstance(payload, str) else mutator.body(payload)


@pytest.mark.parametrize("seed", [SEED, SEED + 1])
def test_upstream_streams_never_crash(seed: int) -> None:
    rng = random.Random(seed)
    mutator = Mutator(rng)
    for case in range(STREAM_CASES // 2):
        target = STREAM_TARGETS[case % len(STREAM_TARGETS)]
        data = mutated_stream(mutator, rng, target)
        try:
            check_stream(run_stream(target, mutator.splits(data)))
        except Exception as e:  # the bug this test exists to find
            pytest.fail(f"{replay_hint(seed, case, target, data)}: {type(e).__name__}: {e}")


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: f"{t.route.rsplit('/', 1)[1]}-{t.label}")
def test_every_base_answer_translates(target: Target) -> None:
    """The upstream fuzz starts from answers each translation takes whole, streamed and not."""
    status, out = translate(target, _dumps(samples.answer(target)))
    assert status == 200, out
    check_answer(status, out)
    if target.route != EMBEDDINGS:
        framing, events = samples.stream(target)
        out_stream = run_stream(target, [samples.frame(framing, events)])
        check_stream(out_stream)
        assert out_stream.endswith(b"data: [DONE]\n\n") and b'"error"' not in out_stream, out_stream


# ==============================================================================================================
# Framing decoders, native formats, preserve, and the addon itself
# ==============================================================================================================

DECODER_CASES = 1200


@pytest.mark.parametrize("seed", [SEED])
def test_framing_decoders_raise_only_stream_decode_errors(seed: int) -> None:
    rng = random.Random(seed)
    mutator = Mutator(rng)
    decoders = [SSEDecoder, NDJSONDecoder, JSONArrayDecoder, EventStreamDecoder]
    framings = {
        SSEDecoder: "sse",
        NDJSONDecoder: "ndjson",
        JSONArrayDecoder: "array",
        EventStreamDecoder: "eventstream",
    }
    sources = [t for t in STREAM_TARGETS if t.label in ("anthropic", "cohere-v1", "llama2-ollama", "bedrock", "gemini")]
    for case in range(DECODER_CASES):
        kind = decoders[case % len(decoders)]
        _, events = samples.stream(rng.choice(sources))
        if kind is EventStreamDecoder:
            events = [(e[0] or "chunk", e[1]) if isinstance(e, tuple) else ("chunk", e) for e in events]
        elif kind is SSEDecoder:
            events = [e if isinstance(e, tuple) else (None, e) for e in events]
        else:
            events = [e[1] if isinstance(e, tuple) else e for e in events]
        data = samples.frame(
            framings[kind], [e for e in events if not (isinstance(e, tuple) and isinstance(e[1], str))]
        )
        data = mutator.damage(data) if rng.random() < 0.7 else bytes(rng.randrange(256) for _ in range(40))
        decoder = kind()
        try:
            for piece in mutator.splits(data):
                decoder.feed(piece)
            decoder.flush()
        except StreamDecodeError:
            pass
        except Exception as e:  # the bug this test exists to find
            pytest.fail(f"seed {seed} case {case} {kind.__name__} {data[:200]!r}: {type(e).__name__}: {e}")


NASTY_BODIES = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"messages": [{"role": "user", "content": "\xed\xa0\x80"}]}',
    b'{"messages": [{"role": ["user"], "content": "Hi"}]}',
    b'{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": ' + b"9" * 400 + b"}",
    b'{"messages": [{"role": "user", "content": "Hi"}], "temperature": NaN}',
    b'{"messages": [{"role": "user", "content": "\\ud800"}]}',
    b'{"messages": [{"role": "user", "content": "Hi"}], "model": "m\\r\\nx-injected: 1"}',
    b"",
    b"[]",
]


@pytest.mark.parametrize("fmt", native.native_formats())
def test_native_and_preserve_requests_never_crash(fmt: str) -> None:
    rng = random.Random(SEED)
    mutator = Mutator(rng)
    native_rule = make_rule(fmt, options={"upstream_url": SELF_HOSTED}, llm_format=fmt)
    preserve_rule = make_rule("openai", route="preserve", options={"upstream_url": SELF_HOSTED})
    paths = ["/v1/messages", "/v1beta/models/g%0d%0a:streamGenerateContent", "/model/m%0d%0a/converse", "/generate"]
    bodies = [*NASTY_BODIES, *(mutator.body(CHAT_BODIES[1]) for _ in range(150))]
    for i, body in enumerate(bodies):
        path = paths[i % len(paths)]
        request = native.NativeRequest("POST", path, [], {"content-type": "application/json"}, body)
        options = native_rule.resolve_options(TemplateContext({}, {}, {}))
        try:
            up = native.build_request(
                native.adapter_for(fmt), request, route_type=CHAT, options=options, auth=native_rule.spec.auth,
                configured_model=None,
            )  # fmt: skip
            assert up.model is None or not _CONTROL.search(up.model), up.model
        except ProxyError as e:
            check_refusal(e)
        preserve.build(preserve_rule, {}, "POST", path, {}, {"content-type": "application/json"}, body)
        preserve.usage_of("application/json", body)


def test_client_model_with_control_characters_is_refused_naming_model() -> None:
    rule = make_rule("openai")
    for model in ("m\r\nx-injected: 1", "m\x00", "m\x7f", "m\x85"):
        with pytest.raises(ProxyError) as e:
            send(
                Target("openai", "openai", CHAT),
                json.dumps({"model": model, "messages": [{"role": "user", "content": "x"}]}).encode(),
            )
        assert e.value.status == 400 and e.value.param == "model", e.value.message
    request = native.NativeRequest("POST", "/model/m%0d%0a/converse", [], {}, b"{}")
    with pytest.raises(ProxyError) as e:
        native.build_request(native.adapter_for("bedrock"), request, route_type=CHAT, options=rule.spec.model.options,
                             auth=None, configured_model=None)  # fmt: skip
    assert e.value.param == "model"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": ["user"]}]},
         "messages[2].role"),
        ({"messages": [{"role": "user", "content": "\ud800"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": "a"}], "max_tokens": 10**400}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "a"}], "tools": [{"type": "function", "function": {"name": 1}}]},
         "tools[0]"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": 5}]}]},
         "messages[0].content[0]"),
        ({"messages": [{"role": "assistant", "tool_calls": [{"function": []}]}]}, "messages[0].tool_calls[0]"),
        ({"messages": [{"role": "user", "content": "a"}], "response_format": {"type": "json_schema",
                                                                             "json_schema": []}}, "response_format"),
    ],
)  # fmt: skip
def test_refusals_name_the_field(body: dict[str, Any], param: str) -> None:
    data = json.dumps(body).encode()  # lone surrogates become \\ud800 escapes, as a client's JSON encoder writes them
    for target in (Target("openai", "openai", CHAT), Target("anthropic", "anthropic", CHAT, "claude-fake")):
        with pytest.raises(ProxyError) as e:
            send(target, data)
        assert (e.value.status, e.value.param) == (400, param), e.value.message
        assert param in e.value.message or param.split("[")[0] in e.value.message


ADDON_RULES = """
rules:
  - name: fuzz-anthropic
    match: {host: anthropic.internal}
    model: {provider: anthropic, name: claude-fake, options: {upstream_url: "http://127.0.0.1:9/v1/messages"}}
  - name: fuzz-native
    match: {host: bedrock.internal}
    llm_format: bedrock
    model: {provider: bedrock, options: {bedrock: {aws_region: us-east-1}}}
    auth: {aws_access_key_id: AKIDFAKEFUZZ00000001, aws_secret_access_key: fake/Fuzz+Secret0000000000000}
"""


def test_addon_answers_the_nastiest_bodies_with_400_and_logs_no_error(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(ADDON_RULES)
    proxy = AIProxy()
    with taddons.context(proxy) as tctx:
        tctx.configure(proxy, ai_rules=str(rules), ai_recordings=str(tmp_path / "rec"))
        with caplog.at_level(logging.DEBUG):
            for body in NASTY_BODIES:
                for host, path in (("anthropic.internal", b"/v1/chat/completions"),
                                   ("bedrock.internal", b"/model/m%0d%0a/converse")):  # fmt: skip
                    flow = _flow(host, path, body)
                    asyncio.run(proxy.request(flow))
                    assert flow.response is not None and flow.response.status_code == 400, (host, body[:80])
                    if host == "anthropic.internal":
                        error = json.loads(flow.response.content)["error"]
                        assert set(error) == {"message", "type", "param", "code"}
                    assert flow.request.host == host  # nothing was sent upstream
        proxy.done()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def _flow(host: str, path: bytes, body: bytes) -> http.HTTPFlow:
    headers = http.Headers([(b"content-type", b"application/json")])
    req = tutils.treq(host=host, port=443, scheme=b"https", method=b"POST", path=path, headers=headers, content=body)
    return tflow.tflow(req=req)
