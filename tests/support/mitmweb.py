"""A real mitmweb subprocess with the addon, and its HTTP API (the one the web UI itself uses)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from tests.support.mitmdump import ENTRY, free_ports


@dataclass
class Mitmweb:
    proxy_port: int
    web_port: int
    token: str
    log: Path

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    def api(self, path: str) -> Any:
        """GET one of mitmweb's API paths, as JSON."""
        response = httpx.get(
            f"http://127.0.0.1:{self.web_port}{path}",
            headers={"Authorization": f"Bearer {self.token}"},
            trust_env=False,
        )
        response.raise_for_status()
        return response.json()

    def page(self, route: str) -> str:
        """The web UI's URL of one of its routes (e.g. /flows/<id>/request), with the access token."""
        return f"http://127.0.0.1:{self.web_port}/?token={self.token}#{route}"

    def content_view(self, flow_id: str, message: str, view: str = "auto") -> dict[str, Any]:
        """A message of a flow through a contentview, as the UI asks for it: text, view_name, description."""
        return self.api(f"/flows/{flow_id}/{message}/content/{quote(view)}.json")


@contextmanager
def running(tmp_path: Path, rules: Path, *options: str) -> Iterator[Mitmweb]:
    """mitmweb on free ports with the addon and `rules`; stopped at the end. `options`: more `--set k=v` values."""
    proxy_port, web_port = free_ports(2)
    log = tmp_path / "mitmweb.log"
    cmd = [
        str(Path(sys.executable).with_name("mitmweb")), "--no-web-open-browser", "--listen-host", "127.0.0.1",
        "-p", str(proxy_port), "--set", f"web_port={web_port}", "--set", f"confdir={tmp_path / 'conf'}",
        "-s", str(ENTRY), "--set", f"ai_rules={rules}", "--set", f"ai_recordings={tmp_path / 'rec'}",
    ]  # fmt: skip
    for option in options:
        cmd += ["--set", option]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        token = None
        for _ in range(300):
            text = log.read_text(errors="replace")
            match = re.search(r"token=([0-9a-f]+)", text)
            if match and "HTTP(S) proxy listening" in text:
                token = match.group(1)
                break
            assert proc.poll() is None, text
            time.sleep(0.05)
        assert token, log.read_text()
        yield Mitmweb(proxy_port, web_port, token, log)
    finally:
        proc.terminate()
        proc.wait(10)
