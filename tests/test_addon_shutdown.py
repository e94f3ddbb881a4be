"""The addon's shutdown (lifecycle hooks with taddons/tflow): every exchange in flight when the proxy stops gets
exactly one record, written by its own late hook or, if it gets none, at interpreter exit."""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import exceptions, http
from mitmproxy.test import taddons, tflow, tutils

from addon import proxy as proxy_module
from addon.proxy import AIProxy
from tests.support.fakes import openai_chat, openai_stream, sse

RULES = """
rules:
  - name: openai
    match: {host: openai.internal, path: /v1/chat/completions}
    model: {provider: openai, name: gpt-fake-1, options: {upstream_url: "http://127.0.0.1:9"}}
    auth: {header_name: Authorization, header_value: "Bearer shutdown-unit-key-0001"}
    logging: {log_payloads: true}
"""


@pytest.fixture
def tctx(tmp_path: Path) -> Iterator[tuple[AIProxy, taddons.context]]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    addon = AIProxy()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, ai_rules=str(rules), ai_recordings=str(tmp_path / "rec"), ai_shutdown_grace_ms=0)
        yield addon, tctx
        if addon.recorder is not None:
            addon.recorder.close()


def flow(stream: bool = False) -> http.HTTPFlow:
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": stream}
    req = tutils.treq(
        host="openai.internal",
        port=80,
        scheme=b"http",
        method=b"POST",
        path=b"/v1/chat/completions",
        headers=http.Headers([(b"content-type", b"application/json")]),
        content=json.dumps(body).encode(),
    )
    f = tflow.tflow(req=req)
    f.response = None
    return f


def sent(addon: AIProxy, f: http.HTTPFlow) -> http.HTTPFlow:
    asyncio.run(addon.request(f))
    assert f.response is None and f.id in addon._exchanges  # on its way to the upstream
    return f


def streaming(addon: AIProxy, f: http.HTTPFlow, chunks: list[bytes]) -> list[bytes]:
    """Upstream stream headers, then `chunks` through the translation; returns what the client got."""
    f.response = tutils.tresp(content=b"", headers=http.Headers(content_type="text/event-stream"))
    addon.responseheaders(f)
    assert callable(f.response.stream)
    out: list[bytes] = []
    for chunk in chunks:
        got = f.response.stream(chunk)
        out += [got] if isinstance(got, bytes) else got
    return out


def records(tmp_path: Path) -> list[dict]:
    folder = tmp_path / "rec"
    return [json.loads(line) for p in sorted(folder.glob("*.jsonl")) for line in p.read_text().splitlines()]


def shutting_down(tctx: taddons.context) -> None:
    tctx.master.should_exit.set()  # what SIGTERM/SIGINT do before mitmproxy calls `done`


def at_exit(addon: AIProxy) -> None:
    proxy_module._finish_at_exit(weakref.ref(addon))  # what the exit hook registered by `done` does


def test_unload_records_an_exchange_in_flight_once(tctx, tmp_path: Path) -> None:
    addon, _ = tctx
    f = sent(addon, flow())
    assert addon.done() is None
    f.response = tutils.tresp(content=json.dumps(openai_chat()).encode())
    addon.response(f)  # a late hook: the exchange is already recorded
    f.error = tflow.terr("late")
    addon.error(f)
    [record] = records(tmp_path)
    assert record["id"] == f.id
    assert (record["meta"]["status"], record["meta"]["error"]) == (502, "proxy shut down before the upstream answered")


def test_shutdown_leaves_exchanges_to_their_late_hooks(tctx, tmp_path: Path) -> None:
    addon, tctx = tctx
    answered, cut = sent(addon, flow()), sent(addon, flow())
    shutting_down(tctx)
    assert addon.done() is None  # grace 0: nothing to wait for
    assert addon.recorder is not None and addon.recorder.closed
    # While asyncio.run cancels the connections, one answer still arrives and the other connection is cut.
    answered.response = tutils.tresp(content=json.dumps(openai_chat()).encode())
    addon.response(answered)
    cut.error = tflow.terr("Connection killed.")
    addon.error(cut)
    at_exit(addon)  # nothing left for the exit hook
    by_id = {r["id"]: r for r in records(tmp_path)}
    assert len(records(tmp_path)) == 2
    assert by_id[answered.id]["meta"]["status"] == 200 and by_id[answered.id]["meta"]["error"] is None
    assert by_id[answered.id]["usage"]["total_tokens"] == 37
    meta = by_id[cut.id]["meta"]
    assert (meta["status"], meta["error"]) == (502, "proxy shut down before the upstream answered")


def test_stream_cut_mid_stream_is_recorded_at_exit(tctx, tmp_path: Path) -> None:
    addon, tctx = tctx
    f = sent(addon, flow(stream=True))
    events = openai_stream(include_usage=True)
    got = streaming(addon, f, events[:2])  # the role chunk and the first delta
    assert got
    shutting_down(tctx)
    addon.done()
    assert records(tmp_path) == []  # still in flight: its hooks may yet come
    at_exit(addon)
    [record] = records(tmp_path)
    assert record["meta"]["stream"] is True and record["meta"]["status"] == 200
    assert record["meta"]["error"] == "proxy shut down mid-stream"
    assert record["payload"]["client_response"]["choices"][0]["message"]["content"] == "The sum "
    assert record["usage"]["total_tokens"] is None  # no usage had arrived
    at_exit(addon)
    assert len(records(tmp_path)) == 1


def test_stream_cut_by_its_error_hook_says_shut_down(tctx, tmp_path: Path) -> None:
    addon, tctx = tctx
    f = sent(addon, flow(stream=True))
    streaming(addon, f, openai_stream()[:2])
    shutting_down(tctx)
    addon.done()
    f.error = tflow.terr("Connection killed.")
    addon.error(f)
    at_exit(addon)
    [record] = records(tmp_path)
    assert (record["meta"]["status"], record["meta"]["error"]) == (200, "proxy shut down mid-stream")


def test_upstream_error_mid_stream_during_shutdown_keeps_its_message(tctx, tmp_path: Path) -> None:
    addon, tctx = tctx
    f = sent(addon, flow(stream=True))
    error = sse({"error": {"message": "upstream overloaded", "type": "server_error"}})
    streaming(addon, f, [*openai_stream()[:2], error])
    shutting_down(tctx)
    addon.done()
    f.error = tflow.terr("Connection killed.")
    addon.error(f)
    [record] = records(tmp_path)
    assert record["meta"]["error"] == "upstream overloaded"


def test_stream_that_ended_before_its_response_hook_is_a_whole_answer(tctx, tmp_path: Path) -> None:
    addon, tctx = tctx
    f = sent(addon, flow(stream=True))
    got = streaming(addon, f, [*openai_stream(include_usage=True), b""])
    assert got[-1].endswith(b"data: [DONE]\n\n")  # the client has the whole stream
    shutting_down(tctx)
    addon.done()
    at_exit(addon)
    [record] = records(tmp_path)
    assert (record["meta"]["status"], record["meta"]["error"]) == (200, None)
    assert record["usage"]["total_tokens"] == 37
    assert record["payload"]["client_response"]["choices"][0]["message"]["content"] == "The sum of 1 + 1 is 2."


def test_grace_period_lets_an_exchange_finish_on_its_own(tctx, tmp_path: Path) -> None:
    addon, tctx = tctx
    tctx.options.update(ai_shutdown_grace_ms=60_000)  # an upper bound: the wait ends when nothing is in flight
    f = sent(addon, flow())
    shutting_down(tctx)
    waiting = addon.done()
    assert waiting is not None  # mitmproxy awaits it

    async def main() -> None:
        task = asyncio.ensure_future(waiting)
        await asyncio.sleep(0)
        assert not task.done() and not addon.recorder.closed  # still serving the exchange
        f.response = tutils.tresp(content=json.dumps(openai_chat()).encode())
        addon.response(f)
        await task

    asyncio.run(main())
    assert addon.recorder.closed
    [record] = records(tmp_path)
    assert (record["meta"]["status"], record["meta"]["error"]) == (200, None)


def test_grace_period_over_leaves_the_rest_marked(tctx, tmp_path: Path) -> None:
    addon, tctx = tctx
    tctx.options.update(ai_shutdown_grace_ms=1)
    f = sent(addon, flow())
    shutting_down(tctx)
    asyncio.run(addon.done())
    assert addon.recorder.closed and f.id in addon._exchanges
    at_exit(addon)
    [record] = records(tmp_path)
    assert (record["meta"]["status"], record["meta"]["error"]) == (502, "proxy shut down before the upstream answered")


def test_no_wait_when_nothing_is_in_flight(tctx) -> None:
    addon, tctx = tctx
    tctx.options.update(ai_shutdown_grace_ms=60_000)
    shutting_down(tctx)
    assert addon.done() is None


def test_shutdown_grace_option_validated(tctx) -> None:
    addon, tctx = tctx
    with pytest.raises(exceptions.OptionsError, match="ai_shutdown_grace_ms"):
        tctx.configure(addon, ai_shutdown_grace_ms=-1)
