"""Clocks for retry delays and circuit-breaker cooldowns, on both runtimes.

A pipeline reads time from :class:`SystemClock` unless ``Pipeline.set_clock`` gives it another.
:class:`FakeClock` is for tests: its time moves only when told to, or -- when the runtime waits for
a retry -- jumps straight to the moment the retry is due and records the wait, so tests check
delays against the policy without sleeping.

A clock is any object with ``now() -> float`` (seconds, monotonic), ``sleep(seconds)`` and
``async asleep(seconds)``. The native engine calls ``now()``; it waits with its own timers unless
the clock says ``virtual = True``, in which case it calls ``sleep`` (which moves virtual time) and
goes on at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import List

__all__ = ["SystemClock", "FakeClock"]


class SystemClock:
    """The system's monotonic clock; ``sleep`` really sleeps."""

    virtual = False

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


class FakeClock:
    """Virtual time for tests, starting at 0.0. ``sleep``/``asleep`` advance it at once and
    record the duration in :attr:`sleeps`; :meth:`advance` moves it by hand."""

    virtual = True

    def __init__(self) -> None:
        self._now = 0.0
        self._lock = threading.Lock()
        #: Every wait the runtime asked for, in seconds, in order.
        self.sleeps: List[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if seconds > 0:
                self._now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
