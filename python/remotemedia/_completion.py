"""Awaiting the native engine: a call that reports through ``callback(result, error)`` on an engine
thread becomes a future resolved on the caller's event loop (no thread per call)."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Optional


__all__ = ["native_call"]


async def native_call(start: Callable[[Any], None]) -> Dict[str, Any]:
    """Starts a native call that reports through ``callback(result, error)`` on an engine thread,
    and awaits it on the running loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future = loop.create_future()

    def resolve(result: Any, error: Optional[BaseException]) -> None:
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            try:
                future.set_result(result)
            except Exception as e:  # a malformed result must not leave the caller waiting
                future.set_exception(e)

    def callback(result: Any, error: Optional[BaseException]) -> None:
        try:
            loop.call_soon_threadsafe(resolve, result, error)
        except RuntimeError:
            pass  # the loop closed while the chunk was in flight; nobody is waiting

    start(callback)
    return await future
