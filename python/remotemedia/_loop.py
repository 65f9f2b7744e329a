"""Running a custom node's coroutines from synchronous code, without a new event loop per call.

Each thread that calls an ``async def`` node gets one event loop, created on first use and kept
alive (engine threads call nodes many times; creating a loop per call costs ~50 us and breaks
loop-bound resources such as client sessions). A thread that already runs a loop (a Jupyter cell
calling ``run_sync``) cannot nest another one, so such calls go to one shared background loop.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Coroutine

# Keyed by OS thread id rather than held in threading.local: the native engine's worker threads
# get a fresh Python thread state each time they take the GIL, which would empty a
# threading.local between calls.
_loops: dict = {}
_loops_lock = threading.Lock()
_background_lock = threading.Lock()
_background_loop = None


def _thread_loop() -> asyncio.AbstractEventLoop:
    ident = threading.get_ident()
    with _loops_lock:
        loop = _loops.get(ident)
        if loop is None or loop.is_closed():
            loop = asyncio.new_event_loop()
            _loops[ident] = loop
        return loop


def _shared_background_loop() -> asyncio.AbstractEventLoop:
    global _background_loop
    with _background_lock:
        if _background_loop is None:
            loop = asyncio.new_event_loop()
            t = threading.Thread(target=loop.run_forever, name="remotemedia-async-nodes", daemon=True)
            t.start()
            _background_loop = loop
        return _background_loop


def run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """Runs ``coro`` to completion from synchronous code and returns its result."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _thread_loop().run_until_complete(coro)
    return asyncio.run_coroutine_threadsafe(coro, _shared_background_loop()).result()
