"""For the addon-level tests (mitmproxy's taddons/tflow, no subprocess): the async request hook run to its end, the
audit records the recorder thread writes, and an addon configured with a rules text."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mitmproxy import http
from mitmproxy.test import taddons

from addon.proxy import AIProxy


def run_request(proxy: AIProxy, f: http.HTTPFlow) -> None:
    asyncio.run(proxy.request(f))  # the hook is async: it may await an OAuth token


def records(folder: Path, count: int = 1) -> list[dict]:
    """The audit records in `folder`, once at least `count` are written (by the recorder's thread)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [json.loads(line) for p in folder.glob("*.jsonl") for line in p.read_text().splitlines()]
        if len(lines) >= count:
            return lines
        time.sleep(0.01)
    raise AssertionError("audit records not written")


@contextmanager
def configured(tmp_path: Path, rules_text: str) -> Iterator[tuple[AIProxy, taddons.context, Path]]:
    """An addon loaded with `rules_text` (written to tmp_path/rules.yaml), recording to tmp_path/rec."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_text)
    proxy = AIProxy()
    with taddons.context(proxy) as tctx:
        tctx.configure(proxy, ai_rules=str(rules), ai_recordings=str(tmp_path / "rec"))
        yield proxy, tctx, rules
        proxy.done()
