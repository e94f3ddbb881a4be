"""Builders for the pure tests of the self-hosted providers (tests/providers/mistral, tests/providers/llama2):
rules built with load_rules_text (so every test also exercises the configuration a user would write), requests
and answers through the pure core, streams translated at every byte offset, and the checks of Kong's
mistral/llama2 unit fixtures, compared on meaning."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from addon.exchange import build_upstream, provider_for, translate_response
from addon.openai_format import FINISH_REASONS
from addon.rules import Rule
from tests.support.chunks import splits as splits
from tests.support.chunks import sse_events
from tests.support.pipeline import call as call
from tests.support.pipeline import client as client
from tests.support.pipeline import refused_request as refused_request
from tests.support.pipeline import up_body as up_body
from tests.support.pipeline import upstream as upstream
from tests.support.rules import one_rule

refused = refused_request  # the builder tests name it so

CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"
USER = [{"role": "user", "content": "Hi"}]
TGI = "http://127.0.0.1:8080"
OLLAMA = "http://127.0.0.1:11434"

# The conversation of docs/providers.md §9, and its exact renderings.
DIALOG = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
]
LLAMA2_DIALOG = (
    "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nWhat is the capital of France? [/INST] Paris. </s>"
    "<s>[INST] And of Italy? [/INST]"
)
LLAMA3_DIALOG = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\nParis.<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nAnd of Italy?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)


def make_rule(provider: str, name: str | None = None, route: str = CHAT, **options: Any) -> Rule:
    return one_rule(provider, name, route, options)


def raw_rule(route: str = CHAT, **options: Any) -> Rule:
    return make_rule("llama2", None, route, **{"upstream_url": f"{TGI}/generate", **options})


def ollama_rule(route: str = CHAT, provider: str = "llama2", **options: Any) -> Rule:
    key = "llama2_format" if provider == "llama2" else "mistral_format"
    return make_rule(provider, "llama3.2", route, **{key: "ollama", "upstream_url": OLLAMA, **options})


def mistral_rule(route: str = CHAT, **options: Any) -> Rule:
    return make_rule("mistral", "mistral-small-latest", route, **options)


def default_body(rule: Rule) -> dict[str, Any]:
    return {"messages": USER} if rule.spec.route_type == CHAT else {"prompt": "Hi"}


def respond(rule: Rule, data: Any, *, body: Any = None, status: int = 200) -> tuple[int, dict[str, Any]]:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    c = call(rule, body if body is not None else default_body(rule))
    return translate_response(provider_for(rule), c, status, raw, "application/json")


def ok(rule: Rule, data: Any, **kw: Any) -> dict[str, Any]:
    status, out = respond(rule, data, **kw)
    assert status == 200, out
    return out


def envelope(rule: Rule, data: Any, status: int, expected_status: int | None = None, **kw: Any) -> dict[str, Any]:
    out_status, out = respond(rule, data, status=status, **kw)
    assert out_status == (expected_status or status)
    assert set(out) == {"error"} and set(out["error"]) == {"message", "type", "param", "code"}
    assert out["error"]["message"]
    return out["error"]


# ---- streams --------------------------------------------------------------------------------------------------


def events(out: bytes) -> list[Any]:
    """The client-side SSE events, ids and timestamps (generated per stream) left out."""
    return sse_events(out)


def translate_stream(rule: Rule, raw: bytes, *, include_usage: bool = False, body: Any = None) -> tuple[list, Any]:
    """Runs the stream through the translator at every split; every split must give the same events."""
    request = dict(body if body is not None else default_body(rule))
    request["stream"] = True
    c = call(rule, request)
    provider = provider_for(rule)
    build_upstream(rule, c)
    expected = None
    result = None
    for pieces in splits(raw):
        t = provider.stream_translator(c, include_usage, True)
        out = b"".join(t.feed(p) for p in pieces) + t.finish()
        got = events(out)
        if expected is None:
            expected, result = got, t.result
        else:
            assert got == expected, f"different output for pieces of sizes {[len(p) for p in pieces][:5]}"
    assert expected is not None
    return expected, result


def chat_text(evs: list[Any]) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content") or "" for e in evs if isinstance(e, dict) and e.get("choices")
    )


def completion_text(evs: list[Any]) -> str:
    return "".join(e["choices"][0].get("text") or "" for e in evs if isinstance(e, dict) and e.get("choices"))


def finishes(evs: list[Any]) -> list[str]:
    return [
        e["choices"][0]["finish_reason"]
        for e in evs
        if isinstance(e, dict) and e.get("choices") and e["choices"][0].get("finish_reason")
    ]


def error_of(evs: list[Any]) -> dict[str, Any]:
    last = evs[-1]
    assert isinstance(last, dict) and set(last) == {"error"}, evs[-3:]
    assert "[DONE]" not in evs
    return last["error"]


def sse(obj: dict[str, Any] | str, space: bool = True) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj)
    return f"data:{' ' if space else ''}{data}\n\n".encode()


def ndjson(*objs: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


# ---- Kong's fixtures (../shared/conformance/kong, skipped when absent) -------------------------------------------

KONG = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "kong" / "ai-proxy"
needs_kong = pytest.mark.skipif(not KONG.is_dir(), reason=f"Kong conformance fixtures not found at {KONG}")
UNIT = KONG / "unit"
KongRules = dict[tuple[str, str, str], Callable[[str], Rule]]  # (provider, format, route) -> the rule Kong tests


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def request_meaning(body: dict[str, Any]) -> dict[str, Any]:
    """What an upstream body means, whatever the format: model, sampling, stream, and the conversation."""
    params = body.get("parameters") or body.get("options") or body
    top_p = params.get("top_p")
    meaning = {
        "model": body.get("model"),
        "max_tokens": params.get("max_tokens", params.get("num_predict", params.get("max_new_tokens"))),
        "temperature": params.get("temperature"),
        "top_p": None if top_p == 1 else top_p,  # top_p 1 filters nothing: the same as none
        "top_k": params.get("top_k"),
        "stream": bool(body.get("stream") or params.get("stream")),
    }
    if "messages" in body:
        meaning["messages"] = [(m["role"], m["content"]) for m in body["messages"]]
    if "prompt" in body:
        meaning["prompt"] = body["prompt"]
    return meaning


def check_kong_unit_request(rule: Rule, provider: str, fmt: str, route: str) -> None:
    """Our upstream body for Kong's unit request means what Kong's expected request means."""
    request = read(UNIT / "requests" / f"llm-v1-{route}.json")
    expected = read(UNIT / "expected-requests" / provider / fmt / f"llm-v1-{route}.json")
    body = up_body(rule, request)
    if fmt != "raw":
        assert request_meaning(body) == request_meaning(expected)
        return
    # Raw: the same parameters; the prompt is the documented template with every turn (Kong's drops the
    # assistant turns and flattens the <<SYS>> block), so it is checked against the template itself.
    assert {k: v for k, v in request_meaning(body).items() if k != "prompt"} == {
        k: v for k, v in request_meaning(expected).items() if k != "prompt"
    }
    if route == "chat":
        messages = request["messages"]
        assert body["inputs"] == (
            f"<s>[INST] <<SYS>>\n{messages[0]['content']}\n<</SYS>>\n\n{messages[1]['content']} [/INST] "
            f"{messages[2]['content']} </s><s>[INST] {messages[3]['content']} [/INST] {messages[4]['content']} </s>"
            f"<s>[INST] {messages[5]['content']} [/INST]"
        )
    else:
        assert body["inputs"] == f"<s>[INST] {request['prompt']} [/INST]"


def check_kong_unit_response(rule: Rule, provider: str, fmt: str, route: str) -> None:
    """Kong's real upstream response, translated, says what Kong's expected response says."""
    request = read(UNIT / "requests" / f"llm-v1-{route}.json")
    real = (UNIT / "real-responses" / provider / fmt / f"llm-v1-{route}.json").read_bytes()
    expected = read(UNIT / "expected-responses" / provider / fmt / f"llm-v1-{route}.json")
    ours = ok(rule, real, body=request)
    (choice,) = ours["choices"]
    (kong_choice,) = expected["choices"]
    raw = json.loads(real)
    kong_text = kong_choice["message"]["content"] if "message" in kong_choice else kong_choice["text"]
    if fmt == "ollama" and route == "completions":
        # Kong's expected text is not in its own input fixture (copied from the chat case): the input's text wins.
        assert kong_text != raw["response"]
        kong_text = raw["response"]
    assert ours["object"] == expected["object"]
    if "message" in kong_choice:
        assert choice["message"]["role"] == kong_choice["message"]["role"]
        assert choice["message"]["content"] == kong_text
    else:
        assert choice["text"] == kong_text
    assert choice["finish_reason"] == kong_choice.get("finish_reason", "stop")
    assert choice["finish_reason"] in FINISH_REASONS
    if "model" in expected:
        assert ours["model"] == expected["model"]
    if fmt == "ollama":
        # Kong's expected usage (130/139) is not the fixture's (26/100); ours is the fixture's own counts.
        prompt, completion = raw["prompt_eval_count"], raw["eval_count"]
        assert ours["usage"] == {"prompt_tokens": prompt, "completion_tokens": completion,
                                 "total_tokens": prompt + completion}  # fmt: skip
    elif fmt == "openai":
        assert ours["usage"] == expected["usage"] == raw["usage"]
    else:
        assert "usage" not in ours


def kong_unit_tests(rules: KongRules) -> tuple[Callable[..., None], Callable[..., None]]:
    """The tests of Kong's unit fixtures for these rules, requests and responses, for a test module to hold:
    `test_kong_unit_requests, test_kong_unit_responses = kong_unit_tests(KONG_RULES)`."""
    cases = [pytest.param(*key, id="-".join(key)) for key in rules]

    def rule(provider: str, fmt: str, route: str) -> Rule:
        return rules[provider, fmt, route](f"llm/v1/{route}")

    @needs_kong
    @pytest.mark.parametrize(("provider", "fmt", "route"), cases)
    def test_kong_unit_requests(provider: str, fmt: str, route: str) -> None:
        check_kong_unit_request(rule(provider, fmt, route), provider, fmt, route)

    @needs_kong
    @pytest.mark.parametrize(("provider", "fmt", "route"), cases)
    def test_kong_unit_responses(provider: str, fmt: str, route: str) -> None:
        check_kong_unit_response(rule(provider, fmt, route), provider, fmt, route)

    return test_kong_unit_requests, test_kong_unit_responses
