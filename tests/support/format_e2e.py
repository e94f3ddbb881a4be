"""The end-to-end environment of a client-format test: one fake server per provider, one mitmdump whose rules send
each provider's virtual host to its fake, and the helpers every such test wants (the last request a fake saw,
checked free of the client's key; the audit record of one exchange)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.fakes import FakeUpstream, Recorded
from tests.support.mitmdump import Mitmdump


@dataclass
class FormatEnv:
    proxy: Mitmdump
    fakes: dict[str, FakeUpstream]
    client_key: str

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port('regular')}"

    def seen(self, provider: str) -> Recorded:
        """The last request the provider's fake received; the client's key never reaches it."""
        req = self.fakes[provider].requests[-1]
        assert self.client_key not in json.dumps(req.headers) and self.client_key not in req.body.decode()
        return req

    def record(self, marker: str, timeout: float = 10.0) -> dict[str, Any]:
        """The last audit record whose payload holds `marker` (records are written by a background thread)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in self.proxy.records() if marker in json.dumps(r.get("payload"))]
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"no record holds {marker!r}")

    def reset(self) -> FormatEnv:
        for fake in self.fakes.values():
            fake.reset()
        return self


@contextmanager
def format_env(
    workdir: Path, providers: Iterable[str], rules: Callable[[dict[str, FakeUpstream]], str], client_key: str
) -> Iterator[FormatEnv]:
    fakes = {name: FakeUpstream(name) for name in providers}
    proxy = Mitmdump(workdir, rules(fakes)).start()
    try:
        yield FormatEnv(proxy, fakes, client_key)
    finally:
        proxy.stop()
        for fake in fakes.values():
            fake.close()


def queue_answer(fake: FakeUpstream, builder: Any, stream: bool) -> None:
    """Queue the provider's native answer (`builder(stream)`); None leaves the fake's OpenAI-style default."""
    if builder is not None:
        fake.queue(builder(stream))


def rules_yaml(
    llm_format: str,
    hosts: str,
    providers: dict[str, tuple[str, str, Any]],
    auth: dict[str, str],
    fakes: dict[str, FakeUpstream],
    small: str,
    path: str = "",
) -> str:
    """One rule per provider (`{provider}.{hosts}`) for clients of `llm_format`: the provider's model, with
    `small` (a model-name pattern) aliased to `<model>-small` and every other name to the model. `providers`:
    name -> (model, extra options, native answer builder); `auth`: name -> the rule's auth (default: a bearer)."""
    out = "rules:\n"
    for provider, (model, extra, _) in providers.items():
        bearer = "{header_name: Authorization, header_value: 'Bearer provider-e2e-fake-key-0011'}"
        where = f", path: {path!r}" if path else ""
        out += f"""
  - name: {llm_format}-to-{provider}
    match: {{host: {provider}.{hosts}{where}}}
    llm_format: {llm_format}
    model:
      provider: {provider}
      name: {model}
      aliases: {{"{small}": {model}-small, "*": {model}}}
      options: {{{extra}upstream_url: "{fakes[provider].url}"}}
    auth: {auth.get(provider, bearer)}
    logging: {{log_payloads: true}}
"""
    return out
