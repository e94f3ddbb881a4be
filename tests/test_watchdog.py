"""The upstream timeouts of one exchange, on a clock the test moves by hand."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest

from addon.rules import RulesError, load_rules_text
from addon.watchdog import Timeouts, Watchdog


class Handle:
    def __init__(self, when: float, callback: Any) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    """Just enough of an event loop: time() and call_at(), advanced by `advance`."""

    def __init__(self) -> None:
        self.now = 0.0
        self.handles: list[Handle] = []

    def time(self) -> float:
        return self.now

    def is_closed(self) -> bool:
        return False

    def call_at(self, when: float, callback: Any) -> Handle:
        handle = Handle(when, callback)
        self.handles.append(handle)
        return handle

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            due = [h for h in self.handles if not h.cancelled and h.when <= end]
            if not due:
                break
            first = min(due, key=lambda h: h.when)
            first.cancelled = True
            self.now = max(self.now, first.when)
            first.callback()
        self.now = end


LIMITS = Timeouts(connect_timeout=1000, read_timeout=5000, idle_timeout=2000, total_timeout=20000)


def watch(connected_at: float | None = None) -> tuple[Watchdog, Clock, list[str]]:
    clock, fired = Clock(), []

    def connected_ago() -> float | None:
        return None if connected_at is None or clock.now < connected_at else clock.now - connected_at

    dog = Watchdog(LIMITS, connected_ago, fired.append, loop=clock)  # type: ignore[arg-type]
    return dog, clock, fired


def test_connect_timeout_fires_when_no_connection_is_made() -> None:
    _, clock, fired = watch(connected_at=None)
    clock.advance(0.999)
    assert fired == []
    clock.advance(0.002)
    assert fired == ["connect_timeout"]


def test_read_timeout_counts_from_the_connection() -> None:
    dog, clock, fired = watch(connected_at=0.5)
    clock.advance(5.4)
    assert fired == [] and dog.phase == "read_timeout"
    clock.advance(0.2)  # 5.6 s: 5 s after the connection was made at 0.5 s
    assert fired == ["read_timeout"]


def test_a_reused_connection_waits_for_the_first_byte_from_the_start() -> None:
    _, clock, fired = watch(connected_at=-100.0)  # connected long before this request
    clock.advance(4.9)
    assert fired == []
    clock.advance(0.2)
    assert fired == ["read_timeout"]


def test_stream_chunks_hold_off_the_idle_timeout_but_not_the_total() -> None:
    dog, clock, fired = watch(connected_at=0.0)
    clock.advance(1.0)
    dog.response_started(streamed=True)
    for _ in range(18):  # a chunk every 1.5 s: never idle for 2 s
        clock.advance(1.5)
        dog.activity()
        if fired:
            break
    assert fired == ["total_timeout"]
    assert clock.now == pytest.approx(20.5)


def test_idle_timeout_fires_after_silence() -> None:
    dog, clock, fired = watch(connected_at=0.0)
    dog.response_started(streamed=True)
    clock.advance(1.5)
    dog.activity()
    clock.advance(1.9)
    assert fired == []
    clock.advance(0.2)
    assert fired == ["idle_timeout"]


def test_a_whole_body_is_bounded_by_the_total_only() -> None:
    dog, clock, fired = watch(connected_at=0.0)
    dog.response_started(streamed=False)
    clock.advance(19.9)
    assert fired == []
    clock.advance(0.2)
    assert fired == ["total_timeout"]


def test_stop_cancels_every_deadline() -> None:
    dog, clock, fired = watch(connected_at=None)
    dog.stop()
    clock.advance(100)
    assert fired == []


def test_messages_name_the_rule_key() -> None:
    assert LIMITS.describe("read_timeout") == "the upstream sent no response within read_timeout (5000 ms)"


RULE = """
rules:
  - name: r
    match: {host: a.internal}
    model: {provider: openai}
"""


def test_rules_take_timeouts_in_milliseconds_with_defaults() -> None:
    [rule] = load_rules_text(RULE)
    assert rule.timeouts == Timeouts()
    [rule] = load_rules_text(RULE + "    read_timeout: 1500\n    idle_timeout: 700\n")
    assert rule.timeouts.read_timeout == 1500 and rule.timeouts.idle_timeout == 700


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_rules_refuse_a_timeout_that_is_not_a_positive_number(value: str) -> None:
    with pytest.raises(RulesError, match="connect_timeout"):
        load_rules_text(RULE + f"    connect_timeout: {value}\n")


def test_a_stopped_watchdog_lets_go_of_its_exchange_without_the_garbage_collector() -> None:
    # The callbacks hold the exchange, which holds the watchdog: a cycle that only the cyclic collector would free,
    # keeping an agent's parsed request alive until one of its full passes.
    class Exchange:
        watchdog: Watchdog | None = None
        fired: list[str] = []

    def ended_exchange() -> weakref.ref[Exchange]:
        ex = Exchange()
        ex.watchdog = Watchdog(LIMITS, lambda: None, lambda name: ex.fired.append(name), loop=Clock())  # type: ignore[arg-type]
        ex.watchdog.stop()
        return weakref.ref(ex)

    gc.disable()
    try:
        assert ended_exchange()() is None
    finally:
        gc.enable()
