"""Audio buffers as Python sees them, and the checks every run's input goes through.

An :class:`Audio` is a numpy array plus a sample rate. Samples are float32, int16 or int32; a 1-D
array is mono, a 2-D array is ``(frames, channels)`` -- interleaved in memory, exactly the engine's
own layout, so C-contiguous arrays reach the engine without reshuffling.

Copies: inputs are copied at most once. A C-contiguous array of an accepted dtype is wrapped as it
is; a non-contiguous one (a strided slice, a transposed view, Fortran order) is copied once into
C order. Nothing else copies on the Python side; the native engine reads the array in place for
``run_sync`` and ``run_batch`` and copies it once for ``await run`` and streaming pushes.
"""

from __future__ import annotations

import numbers
from typing import Any, Tuple

import numpy as np

from .errors import InputError

__all__ = ["Audio", "to_audio", "ACCEPTED_DTYPES", "MAX_CHANNELS"]

ACCEPTED_DTYPES = (np.dtype(np.float32), np.dtype(np.int16), np.dtype(np.int32))
_DTYPE_NAMES = "float32, int16 or int32"
#: More channels than this almost always means a ``(channels, frames)`` array.
MAX_CHANNELS = 256
MAX_RATE = 2**32 - 1


class Audio:
    """A buffer of audio: ``samples`` (1-D mono or 2-D ``(frames, channels)``) and ``sample_rate`` in Hz.

    ``np.asarray(audio)`` gives the samples. Construction checks the data (see :func:`to_audio`).
    """

    __slots__ = ("_samples", "_sample_rate")

    def __init__(self, samples: Any, sample_rate: int):
        self._samples = _check_samples(samples)
        self._sample_rate = _check_rate(sample_rate)

    @classmethod
    def _trusted(cls, samples: np.ndarray, sample_rate: int) -> "Audio":
        """Wraps engine output without re-checking it (NaN may legitimately appear after a node)."""
        a = cls.__new__(cls)
        a._samples = samples
        a._sample_rate = int(sample_rate)
        return a

    @property
    def samples(self) -> np.ndarray:
        return self._samples

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def channels(self) -> int:
        return 1 if self._samples.ndim == 1 else int(self._samples.shape[1])

    @property
    def frames(self) -> int:
        return int(self._samples.shape[0])

    @property
    def duration(self) -> float:
        """Duration in seconds."""
        return self.frames / self._sample_rate

    @property
    def dtype(self) -> np.dtype:
        return self._samples.dtype

    def __array__(self, dtype=None, copy=None):
        if dtype is None or np.dtype(dtype) == self._samples.dtype:
            return self._samples.copy() if copy else self._samples
        return self._samples.astype(dtype)

    def __len__(self) -> int:
        return self.frames

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Audio):
            return NotImplemented
        return (
            self._sample_rate == other._sample_rate
            and self._samples.dtype == other._samples.dtype
            and self._samples.shape == other._samples.shape
            and bool(np.array_equal(self._samples, other._samples))
        )

    __hash__ = None  # mutable contents

    def __repr__(self) -> str:
        return (
            f"Audio({self.frames} frames x {self.channels} ch, {self._samples.dtype}, "
            f"{self._sample_rate} Hz, {self.duration:.3f} s)"
        )


def to_audio(obj: Any) -> Audio:
    """Normalises one run input: an :class:`Audio` or a ``(samples, sample_rate)`` tuple.

    Raises :class:`~remotemedia.errors.InputError` naming the problem otherwise.
    """
    if isinstance(obj, Audio):
        return obj
    if isinstance(obj, tuple) and len(obj) == 2:
        return Audio(obj[0], obj[1])
    if isinstance(obj, np.ndarray):
        raise InputError("audio input needs a sample rate: pass (samples, sample_rate) or Audio(samples, sample_rate)")
    raise InputError(f"expected audio as (samples, sample_rate) or Audio, received {type(obj).__name__}")


def _check_samples(samples: Any) -> np.ndarray:
    if not isinstance(samples, np.ndarray):
        raise InputError(f"samples must be a numpy array of {_DTYPE_NAMES}, received {type(samples).__name__}")
    if samples.dtype not in ACCEPTED_DTYPES:
        hint = " (convert with samples.astype(np.float32))" if samples.dtype.kind in "fiu" else ""
        raise InputError(f"samples must be {_DTYPE_NAMES}, received {samples.dtype}{hint}")
    if samples.ndim not in (1, 2):
        raise InputError(
            f"samples must be 1-D (mono) or 2-D (frames, channels), received a {samples.ndim}-D array of shape {samples.shape}"
        )
    if samples.size == 0:
        raise InputError(f"samples are empty (shape {samples.shape}); a run needs at least one frame")
    if samples.ndim == 2 and samples.shape[1] > MAX_CHANNELS:
        raise InputError(
            f"samples have shape {samples.shape}: {samples.shape[1]} channels is more than {MAX_CHANNELS}; "
            "arrays are (frames, channels) -- pass samples.T if yours is (channels, frames)"
        )
    if samples.dtype.kind == "f" and not np.isfinite(samples).all():
        bad = np.flatnonzero(~np.isfinite(samples.reshape(-1)))
        frame = int(bad[0]) // (1 if samples.ndim == 1 else samples.shape[1])
        raise InputError(f"samples contain NaN or infinity ({bad.size} values, the first at frame {frame})")
    if not samples.flags.c_contiguous:
        samples = np.ascontiguousarray(samples)  # the one copy inputs may get
    return samples


def _check_rate(rate: Any) -> int:
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, numbers.Real):
        raise InputError(f"sample_rate must be a positive integer in Hz, received {rate!r}")
    if isinstance(rate, numbers.Integral):
        value = int(rate)
    elif float(rate).is_integer():
        value = int(rate)
    else:
        raise InputError(f"sample_rate must be a whole number of Hz, received {rate!r}")
    if not 0 < value <= MAX_RATE:
        raise InputError(f"sample_rate must be a positive integer in Hz, received {rate!r}")
    return value


def audio_tuple(audio: Audio) -> Tuple[np.ndarray, int]:
    """The ``(samples, rate)`` form the native module takes."""
    return audio.samples, audio.sample_rate
