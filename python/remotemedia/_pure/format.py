"""Pure-numpy twin of the Rust ``FormatConverterNode`` (``src/nodes/format.rs``), bit-exact with it.

Convention (the same table as the Rust module):

=========== ================================================================================
from -> to  rule
=========== ================================================================================
i16 -> f32  ``x / 32768`` (exact)
i32 -> f32  ``x / 2147483648``, correctly rounded (one rounding in the int -> float32 cast)
f32 -> i16  ``x * 32768`` clipped to [-32768, 32767], rounded to nearest, ties to even
            (``np.rint``); NaN -> 0, +inf -> 32767, -inf -> -32768
f32 -> i32  the same in float64 with the i32 range; NaN -> 0
i16 -> i32  ``x * 65536``
i32 -> i16  ``x / 65536`` rounded to nearest, ties to even, clipped
same        returned unchanged (no copy)
=========== ================================================================================

Arrays of any shape are accepted (interleaved ``(frames, channels)`` stays as it is).
"""

from __future__ import annotations

import numpy as np

__all__ = ["convert", "FORMATS"]

#: Manifest spelling -> numpy dtype.
FORMATS = {"f32": np.dtype(np.float32), "i16": np.dtype(np.int16), "i32": np.dtype(np.int32)}


def _f32_to_int(x: np.ndarray, scale: float, lo: float, hi: float, dtype, work) -> np.ndarray:
    # Scaling by a power of two is exact in `work` (float32 for i16, float64 for i32, where the
    # bound 2147483647 must be representable); clipping before rounding equals clipping after
    # because the bounds are integers. np.clip keeps NaN, which is then mapped to 0.
    with np.errstate(over="ignore", invalid="ignore"):
        y = x.astype(work) * work(scale)
        y = np.rint(np.clip(y, work(lo), work(hi)))
        y[np.isnan(y)] = 0
        return y.astype(dtype)


def convert(samples: np.ndarray, target_format: str) -> np.ndarray:
    """Converts ``samples`` (float32, int16 or int32) to ``target_format`` ("f32", "i16", "i32")."""
    if target_format not in FORMATS:
        raise ValueError(f"target_format must be one of 'f32', 'i16', 'i32', found {target_format!r}")
    samples = np.asarray(samples)
    src = samples.dtype
    if src not in FORMATS.values():
        raise TypeError(f"samples must be float32, int16 or int32, found {src}")
    dst = FORMATS[target_format]
    if src == dst:
        return samples
    if dst == np.float32:
        # int -> float32 rounds once (to nearest even); the power-of-two scale is then exact.
        scale = 1.0 / 32768.0 if src == np.int16 else 1.0 / 2147483648.0
        return samples.astype(np.float32) * np.float32(scale)
    if src == np.float32:
        if dst == np.int16:
            return _f32_to_int(samples, 32768.0, -32768.0, 32767.0, np.int16, np.float32)
        return _f32_to_int(samples, 2147483648.0, -2147483648.0, 2147483647.0, np.int32, np.float64)
    if dst == np.int32:  # i16 -> i32
        return samples.astype(np.int32) << 16
    # i32 -> i16: x / 65536 is exact in float64, np.rint ties to even.
    return np.clip(np.rint(samples.astype(np.float64) / 65536.0), -32768, 32767).astype(np.int16)
