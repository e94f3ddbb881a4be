"""The addon in-process, under mitmproxy's taddons, configured with a rules text: for tests that drive its hooks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mitmproxy.test import taddons

from addon.proxy import AIProxy


@contextmanager
def running(tmp_path: Path, rules: str, **options: Any) -> Iterator[AIProxy]:
    """An AIProxy loaded (options registered, contentview added) and configured with `rules`; done() at the end."""
    path = tmp_path / "rules.yaml"
    path.write_text(rules)
    addon = AIProxy()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, ai_rules=str(path), ai_recordings=str(tmp_path / "rec"), **options)
        yield addon
        addon.done()
