"""The client-format seam: the OpenAI format through it, and a second format plugged in as one object."""

from __future__ import annotations

import json
from typing import Any

import pytest

from addon.errors import ProxyError, bad_request
from addon.exchange import ClientRequest, build_upstream, prepare_call
from addon.formats import OPENAI, ClientFormat
from addon.openai_format import CHAT
from addon.streaming import StreamResult
from tests.support.rules import make_rule

BODY = {"messages": [{"role": "user", "content": "hi"}]}


def request(body: Any) -> ClientRequest:
    return ClientRequest({}, {}, "application/json", json.dumps(body).encode())


def test_openai_is_the_standard_format_decoded_by_validation() -> None:
    assert OPENAI.decode(CHAT, "/v1/chat/completions", BODY, []) is BODY
    with pytest.raises(ProxyError) as e:
        OPENAI.decode(CHAT, "/v1/chat/completions", {"messages": [{"role": ["user"], "content": "hi"}]}, [])
    assert e.value.status == 400 and e.value.param == "messages[0].role"


def test_openai_writer_and_errors_are_the_openai_stream() -> None:
    writer = OPENAI.writer(CHAT, "m", include_usage=False, keep_payload=False)
    assert writer.text("Hi").startswith(b'data: {"id":"chatcmpl-')
    result = StreamResult()
    event = OPENAI.stream_error(result, ProxyError(502, "gone"))
    assert json.loads(event[6:])["error"]["message"] == "gone" and result.error is not None
    body, headers = OPENAI.error_body(bad_request("no", param="x"))
    assert json.loads(body)["error"]["param"] == "x" and headers == {}


class Shouting:
    """A toy client format: a body {"say": text} means one user message; answers come back upper-case."""

    name = "shouting"

    def decode(self, route_type: str, path: str, body: Any, dropped: list[str]) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("say"), str):
            raise bad_request("'say' must be a string", param="say")
        return {"messages": [{"role": "user", "content": body["say"]}]}

    def encode(self, route_type: str, response: dict[str, Any]) -> dict[str, Any]:
        return {"said": response["choices"][0]["message"]["content"].upper()}

    def writer(self, *args: Any) -> Any:
        return OPENAI.writer(*args)

    def error_body(self, err: ProxyError) -> tuple[bytes, dict[str, str]]:
        return json.dumps({"oops": err.message}).encode(), {}

    def error_status(self, status: int) -> int:
        return status

    def error_from_envelope(self, status: int, data: Any) -> ProxyError:
        return ProxyError(status, data["error"]["message"])

    def stream_error(self, result: StreamResult, err: ProxyError) -> bytes:
        return OPENAI.stream_error(result, err)

    def local_answer(self, method: str, path: str, body: bytes, models: list[str]) -> dict[str, Any] | None:
        return None


def test_a_client_format_is_one_object_and_providers_do_not_know_it() -> None:
    fmt: ClientFormat = Shouting()
    rule = make_rule("anthropic", "claude-fake")
    call = prepare_call(rule, {}, request({"say": "hello"}), fmt)
    up = build_upstream(rule, call)
    assert up.body is not None and up.body["messages"] == [{"role": "user", "content": "hello"}]
    with pytest.raises(ProxyError) as e:
        prepare_call(rule, {}, request({"say": 1}), fmt)
    assert e.value.param == "say"
    assert fmt.encode(CHAT, {"choices": [{"message": {"content": "ok"}}]}) == {"said": "OK"}


def test_openai_clients_keep_the_providers_own_stream_translator() -> None:
    """The stream bridge re-reads OpenAI-format streams only for clients of another format."""
    from addon.formats import ANTHROPIC
    from addon.stream_bridge import Reencoded, client_translator
    from addon.streaming import OpenAIPassthrough

    rule = make_rule("openai", "gpt-fake")
    call = prepare_call(rule, {}, request({**BODY, "stream": True}), OPENAI)
    assert isinstance(client_translator(rule_provider(rule), call, False, False), OpenAIPassthrough)
    body = {"model": "gpt-fake", "max_tokens": 5, "messages": BODY["messages"], "stream": True}
    call = prepare_call(rule, {}, request(body), ANTHROPIC)
    assert isinstance(client_translator(rule_provider(rule), call, False, False), Reencoded)


def rule_provider(rule: Any) -> Any:
    from addon.exchange import provider_for

    return provider_for(rule)
