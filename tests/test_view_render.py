"""How the "AI Exchange" view renders. In mitmproxy's console: a real ConsoleMaster and its flow view's own code
path (FlowDetails.content_view: the body check, prettify_message, the line cut-off, syntax highlighting, urwid
text) at a terminal's width; every row of the view must be one screen row (urwid wraps wider ones, which would
break the columns), and a stream's response tab must show the view, not "[content missing]". In mitmweb: at the
fixed width. A passed-through stream's stand-in body, in the response's own content encoding."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from mitmproxy import contentviews, http, options
from mitmproxy.test import tutils

from addon import columns, exchange_view, webview
from addon.exchange_view import STAND_IN_NOTE
from addon.proxy import AIProxy
from tests.support.addon import answer, exchange, running, stream_answer
from tests.support.fakes import anthropic_message, anthropic_stream
from tests.support.views import sides
from tests.test_webview import CHAT, RULES, secrets_absent, view

COLUMNS = 100  # the terminal


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[AIProxy]:
    with running(tmp_path, RULES) as addon:
        yield addon


def console_rows(flows: list[http.HTTPFlow], message: str) -> list[tuple[str, list[str]]]:
    """(view name and description, screen rows) of `message` of each flow, as mitmproxy's console shows it."""

    async def show() -> list[tuple[str, list[str]]]:
        from mitmproxy.tools.console import flowview, master

        console = master.ConsoleMaster(options.Options())
        console.view.add(flows)
        shown = []
        for f in flows:
            console.view.focus.flow = f
            details = flowview.FlowDetails(console)
            try:
                description, widgets = details.content_view("auto", getattr(f, message))
            finally:  # it listens for views being added, and this console has no window to redraw
                contentviews.registry.on_change.disconnect(details.contentview_changed)
            rows = [r.decode().rstrip() for w in widgets for r in w.render((COLUMNS,)).text]
            shown.append((description.strip(), rows))
        return shown

    size = os.terminal_size((COLUMNS, 40))
    with mock.patch("shutil.get_terminal_size", return_value=size):
        return asyncio.run(show())


def test_the_console_shows_the_view_at_its_width(proxy: AIProxy) -> None:
    plain = exchange(proxy, CHAT)
    answer(proxy, plain, anthropic_message("It is a PNG; Paris is sunny."))
    streamed = exchange(proxy, {**CHAT, "stream": True})
    stream_answer(proxy, streamed, anthropic_stream(), seconds=0.5)
    for tab, section in (("request", "Requests"), ("response", "Answers")):
        for f, (name, rows) in zip((plain, streamed), console_rows([plain, streamed], tab), strict=True):
            assert name == "AI Exchange", (tab, name, rows[:3])
            # the view's own lines, at the console's width, are the screen rows: nothing wrapped by urwid
            text = webview.render(f, tab == "response", COLUMNS - 1)
            assert rows == [line.rstrip() for line in text.split("\n")]
            assert max(columns.width(r) for r in rows) <= COLUMNS - 1
            left, right, _ = sides("\n".join(rows), section)  # the separator in one column on every row
            assert left and right
    (_, rows), _ = console_rows([streamed, plain], "response")
    provider, received, titles = sides("\n".join(rows), "Answers")
    assert titles.startswith("provider answered (anthropic)") and titles.endswith("│ client received (openai)")
    assert '        "content": "The sum of 1 + 1 is 2."' in received and "(not kept)" in provider


def test_mitmweb_gets_the_fixed_width(proxy: AIProxy) -> None:
    f = exchange(proxy, CHAT)
    answer(proxy, f, anthropic_message("Paris is sunny " * 60))  # long (and no base64): wrapped in its column
    assert webview.view_width() == exchange_view.WIDTH  # no console: mitmweb, mitmdump or a script
    text = contentviews.prettify_message(f.response, f).text
    rows = text.split("\n")
    assert max(columns.width(r) for r in rows) <= exchange_view.WIDTH
    _, received, _ = sides(text, "Answers")
    assert sum(1 for line in received if line.lstrip().startswith("↪")) >= 5


def test_a_passed_through_stream_gets_its_stand_in_in_its_own_encoding(proxy: AIProxy) -> None:
    f = exchange(proxy, {"model": "gpt-x", "stream": True, "messages": []}, host="keep.internal")
    headers = http.Headers(content_type="text/event-stream", content_encoding="gzip")
    f.response = tutils.tresp(content=b"", headers=headers)
    proxy.responseheaders(f)
    assert f.response.stream  # passed on as it comes (watched for silence)
    f.response.data.content = None  # what mitmproxy keeps of a streamed body
    proxy.response(f)
    assert f.response.headers["content-encoding"] == "gzip" and f.response.raw_content[:2] == b"\x1f\x8b"
    body = f.response.content.decode()  # decoded as any gzip body: mitmweb's "Raw" and exports read it so
    assert body.startswith(STAND_IN_NOTE) and "(passed on as the provider sent it: not kept)" in body
    resp = view(f, "response")
    assert resp.view_name == "AI Exchange" and resp.description == "[decoded gzip]"
    provider, received, _ = sides(resp.text, "Answers")
    assert provider[0] == "HTTP 200 (passed on unchanged: see beside)" and received[0] == "HTTP 200"
    secrets_absent(resp.text, view(f).text)
