"""The seeded fuzz loop of a client format: bodies of the format, mutated every way tests/support/fuzzing.py knows,
sent through `prepare_call` and `build_upstream` to every chat provider set-up. Each must end in a valid upstream
request or a 400-class ProxyError the format's envelope carries; any other exception fails the test."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from addon import exchange, jsonutil, streaming
from addon.errors import ProxyError
from addon.exchange import ClientRequest, build_upstream, prepare_call, provider_for
from addon.formats import ClientFormat
from addon.rules import Rule
from tests.support.fuzzing import Mutator
from tests.support.rules import CHAT, TARGETS, Target


@pytest.fixture(autouse=True)
def no_last_resort(monkeypatch: pytest.MonkeyPatch) -> None:
    """The translation's last-resort guards (an unexpected exception turned into a 502) fail the test instead."""

    def refuse(message: str, *args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"last-resort guard reached: {message % args}")

    for module in (exchange, streaming):
        monkeypatch.setattr(module.log, "debug", refuse)


def run(
    fmt: ClientFormat,
    bodies: list[dict[str, Any]],
    seed: int,
    cases: int,
    path: str | Callable[[Target, int], str],
    check_error: Callable[[ProxyError, bytes], None],
    keys: tuple[list[str], list[str]] | None = None,
) -> int:
    """Runs `cases` cases; returns how many the providers accepted. `path`: the request path, or a function of the
    target and the case (a format that names the model in the path); `keys`: the top-level and inner keys the
    mutations add (default: OpenAI's)."""
    rules: dict[str, Rule] = {}

    def send(target: Target, data: bytes, case: int) -> None:
        if target.label not in rules:
            rules[target.label] = target.rule()
        rule = rules[target.label]
        where = path if isinstance(path, str) else path(target, case)
        call = prepare_call(rule, {}, ClientRequest({}, {}, "application/json", data, where), fmt)
        up = build_upstream(rule, call)
        body = jsonutil.dumps(up.body) if up.body is not None else b""
        provider_for(rule).sign(call, up, body)
        if up.body is not None:
            json.loads(body.decode("utf-8"))

    targets = [t for t in TARGETS if t.route == CHAT]
    rng = random.Random(seed)
    mutator = Mutator(rng, *(keys or (None, None)))
    accepted = 0
    for case in range(cases):
        target = targets[case % len(targets)]
        base = {**rng.choice(bodies), "model": target.name or target.client_model}
        data = mutator.body(base) if case % 10 else json.dumps(base).encode()
        try:
            send(target, data, case)
            accepted += 1
        except ProxyError as e:
            assert e.status in (400, 413, 415), (seed, case, target.label, e.status, e.message)
            check_error(e, fmt.error_body(e)[0])
        except Exception as e:  # the bug these tests exist to find
            pytest.fail(f"seed {seed} case {case} target {target.label}: {type(e).__name__}: {e} body {data[:300]!r}")
    return accepted
