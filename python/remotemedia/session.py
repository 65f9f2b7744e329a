"""``Session``: a pipeline run chunk by chunk, for real-time audio.

``session = pipeline.stream()`` opens one; ``session.push(chunk)`` returns the outputs that chunk
completed (keyed by sink node id, like ``run``); ``session.close()`` flushes what the stateful nodes
still hold (the resampler's last samples, the VAD's open segment). Stateful nodes keep one state per
session, so many sessions can share one pipeline. Per chunk, an ``AudioResampleNode`` returns the
resampled samples completed so far and a ``VADNode`` returns the decisions of the frames completed
(``frames``), the segments that ended in this chunk (``segments``, in seconds from the session's
start) and the chunk's audio: concatenated over the session they equal the whole-buffer results.

Async forms: ``await session.apush(chunk)``, ``await session.aclose()``, and iteration over a
source of chunks::

    async for outputs in pipeline.stream(mic_chunks):   # an iterable or async iterable
        ...                                             # the last item is close()'s flush
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any, AsyncIterator, Dict, Iterator, Optional

from ._completion import native_call
from .errors import InputError
from .limits import STREAM_SESSIONS

# Guards every pipeline's count of open sessions (``_open_sessions``).
_count_lock = threading.Lock()


def _opened(pipeline: Any) -> None:
    """Counts a session opening on ``pipeline``, or refuses it beyond ``STREAM_SESSIONS``: each
    open session holds its own state in every stateful node, so their number is bounded."""
    with _count_lock:
        n = getattr(pipeline, "_open_sessions", 0)
        if n >= STREAM_SESSIONS:
            raise InputError(
                f"this pipeline has {n} open streaming sessions, the most it may have; close one first"
            )
        pipeline._open_sessions = n + 1


def _released(pipeline: Any) -> None:
    with _count_lock:
        pipeline._open_sessions = max(0, getattr(pipeline, "_open_sessions", 1) - 1)

__all__ = ["Session"]


class Session:
    """One streaming session on a :class:`~remotemedia.Pipeline` (see the module docs)."""

    def __init__(self, pipeline: Any, chunks: Any = None):
        pipeline._ensure()
        self._pipeline = pipeline
        self._native = pipeline.runtime == "rust"
        _opened(pipeline)
        try:
            if self._native:
                self._inner = pipeline._engine.stream()
            else:
                from ._pure.streaming import PureSession

                self._inner = PureSession(pipeline._engine)
        except BaseException:
            _released(pipeline)
            raise
        # Frees the session's place when it is closed, or when it is dropped unclosed.
        self._release = weakref.finalize(self, _released, pipeline)
        self._chunks = chunks
        self._closed = False
        # Serialises apush/aclose on the pure runtime, whose nodes run on the caller's loop.
        self._lock: Optional[asyncio.Lock] = None

    # ---- blocking forms ----

    def push(self, chunk: Any) -> Dict[str, Any]:
        """Processes one chunk (same forms as ``Pipeline.run``); returns the outputs it completed."""
        self._check_open()
        if self._native:
            return self._inner.push(self._pipeline._native_payload(chunk))
        return self._inner.push(self._pipeline._inputs(chunk))

    def close(self) -> Dict[str, Any]:
        """Ends the session; returns what the nodes still held. Further pushes raise InputError."""
        self._check_open()
        self._closed = True
        self._release()
        return self._inner.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise InputError("this streaming session is closed")

    # ---- async forms ----

    async def apush(self, chunk: Any) -> Dict[str, Any]:
        """As :meth:`push`, without blocking the event loop on the native engine. Chunks queued by
        several ``apush`` calls before any completes are still processed in call order."""
        self._check_open()
        if not self._native:
            async with self._async_lock():
                return self._inner.push(self._pipeline._inputs(chunk))
        payload = self._pipeline._native_payload(chunk)
        return await native_call(lambda cb: self._inner.push_async(payload, cb))

    async def aclose(self) -> Dict[str, Any]:
        """As :meth:`close`, awaitable."""
        self._check_open()
        self._closed = True
        self._release()
        if not self._native:
            async with self._async_lock():
                return self._inner.close()
        return await native_call(self._inner.close_async)

    def _async_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    # ---- iteration over a source of chunks ----

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        if self._chunks is None:
            raise TypeError("iterate over pipeline.stream(chunks): this session was opened without chunks")
        for chunk in self._chunks:
            yield self.push(chunk)
        yield self.close()

    async def __aiter__(self) -> AsyncIterator[Dict[str, Any]]:
        if self._chunks is None:
            raise TypeError("iterate over pipeline.stream(chunks): this session was opened without chunks")
        if hasattr(self._chunks, "__aiter__"):
            async for chunk in self._chunks:
                yield await self.apush(chunk)
        else:
            for chunk in self._chunks:
                yield await self.apush(chunk)
        yield await self.aclose()

    # ---- context managers: an open session is closed on exit ----

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._closed:
            self.close()

    async def __aenter__(self) -> "Session":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if not self._closed:
            await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Session {state} on {self._pipeline!r}>"
