"""Upstream timeouts for one exchange: connect, time to first byte, idle between stream chunks, and total.

One timer per exchange on the event loop, re-armed only when it fires: a stream chunk costs one clock read
(`activity`), not a timer. When a deadline passes, `on_expiry` gets the name of the rule key that fired; the glue
then closes the upstream connection and answers the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

# Defaults in milliseconds, as Kong spells its timeouts. The first byte of a non-streamed answer from a reasoning
# model can take minutes; the SDKs' own default is 600 s.
DEFAULT_CONNECT_MS = 10_000
DEFAULT_READ_MS = 300_000
DEFAULT_IDLE_MS = 120_000
DEFAULT_TOTAL_MS = 900_000


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_timeout: int = DEFAULT_CONNECT_MS
    read_timeout: int = DEFAULT_READ_MS
    idle_timeout: int = DEFAULT_IDLE_MS
    total_timeout: int = DEFAULT_TOTAL_MS

    def describe(self, name: str) -> str:
        """What the client and the record are told when `name` fired."""
        ms = getattr(self, name)
        what = {
            "connect_timeout": "could not be connected to",
            "read_timeout": "sent no response",
            "idle_timeout": "sent nothing more",
            "total_timeout": "did not finish its answer",
        }[name]
        return f"the upstream {what} within {name} ({ms} ms)"


class Watchdog:
    """The deadlines of one exchange. Phases: connect -> read (first byte) -> idle (streams) -> done."""

    __slots__ = (
        "_connected_ago",
        "_handle",
        "_loop",
        "_on_expiry",
        "_phase",
        "_phase_start",
        "_started",
        "_total_end",
        "limits",
    )

    def __init__(
        self,
        limits: Timeouts,
        connected_ago: Callable[[], float | None],
        on_expiry: Callable[[str], None],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.limits = limits
        self._loop = loop or asyncio.get_running_loop()
        self._connected_ago = connected_ago  # seconds since the upstream connection was made, None if not yet
        self._on_expiry = on_expiry
        self._handle: asyncio.TimerHandle | None = None
        now = self._loop.time()
        self._phase = "connect_timeout"
        self._started = self._phase_start = now  # for idle, _phase_start is the time of the last chunk
        self._total_end = now + limits.total_timeout / 1000
        self._arm()

    @property
    def phase(self) -> str:
        return self._phase

    def response_started(self, streamed: bool) -> None:
        """The response headers arrived: from here only the idle gap (streams) and the total deadline apply."""
        if self._phase == "done":
            return
        self._phase = "idle_timeout" if streamed else "total_only"
        self._phase_start = self._loop.time()
        self._arm()

    def activity(self) -> None:
        """A stream chunk arrived."""
        self._phase_start = self._loop.time()

    def stop(self) -> None:
        self._phase = "done"
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        # The callbacks hold the flow and the exchange, which hold this watchdog: let go of them, so an ended
        # exchange (an agent's parsed 200 KB request and its translation) is freed at once by its reference
        # count rather than by the cyclic garbage collector, whose full passes walk the whole proxy's heap.
        self._connected_ago, self._on_expiry = _not_connected, _ignore

    def _phase_end(self) -> float:
        limits = self.limits
        if self._phase == "connect_timeout":
            # Checked at whichever comes first: a reused connection goes straight to waiting for the first byte.
            return self._phase_start + min(limits.connect_timeout, limits.read_timeout) / 1000
        if self._phase == "read_timeout":
            return self._phase_start + limits.read_timeout / 1000
        if self._phase == "idle_timeout":
            return self._phase_start + limits.idle_timeout / 1000
        return self._total_end

    def _arm(self, when: float | None = None) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self._loop.is_closed():  # only in hook-level tests that run each hook in a loop of its own
            self._handle = None
            return
        self._handle = self._loop.call_at(min(when or self._phase_end(), self._total_end), self._check)

    def _check(self) -> None:
        self._handle = None
        if self._phase == "done":
            return
        now = self._loop.time()
        if now >= self._total_end:
            return self._expire("total_timeout")
        if self._phase == "connect_timeout":
            ago = self._connected_ago()
            if ago is not None:
                # Connected (or a kept-alive connection was reused): the first byte is awaited since then.
                self._phase, self._phase_start = "read_timeout", max(self._started, now - ago)
            else:
                connect_end = self._started + self.limits.connect_timeout / 1000
                if now >= connect_end:
                    return self._expire("connect_timeout")
                return self._arm(connect_end)
        if self._phase in ("read_timeout", "idle_timeout") and now >= self._phase_end():
            return self._expire(self._phase)
        self._arm()

    def _expire(self, name: str) -> None:
        self._phase = "done"
        self._on_expiry(name)


def _not_connected() -> float | None:
    return None


def _ignore(name: str) -> None:
    pass
