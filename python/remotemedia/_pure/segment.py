"""Pure-numpy twin of the Rust ``SegmentNode`` (``src/nodes/segment.rs``): the same frame spans and
the same split points (energies summed in float64 in the same order, so equal energies tie the
same way).

Steps, in frames: round and join touching segments; merge those less than ``merge_gap_ms`` apart;
drop those shorter than ``min_duration_s``; pad by ``pad_ms`` (never past the ends, at most half
the gap to a neighbour); split clips longer than ``max_duration_s`` at their quietest 10 ms.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from . import format as fmt
from .schema import rust_display_f64

__all__ = ["spans", "check_params"]


def _frames_of(seconds: float, rate: int) -> int:
    """Rust's ``(seconds * rate).round().max(0.0) as usize``: half away from zero, NaN and
    negatives 0 (``x - floor(x)`` is exact, so no ``x + 0.5`` rounding slips in)."""
    x = float(seconds) * rate
    if x != x or x <= 0:
        return 0
    if x == float("inf"):
        return 2**64 - 1
    f = math.floor(x)
    return int(f) + (1 if x - f >= 0.5 else 0)


def check_params(params: Dict[str, Any]) -> List[Tuple[str, str, str]]:
    """The problems no single param shows (``SegmentParams::problems``)."""
    mx, mn = params.get("max_duration_s"), params.get("min_duration_s", 0.25)
    if mx is not None and mn is not None and mx < mn:
        return [("max_duration_s", f"at least min_duration_s ({rust_display_f64(mn)})", rust_display_f64(mx))]
    return []


def _prefix_energy(x: np.ndarray, a: int, b: int) -> np.ndarray:
    """Running sums of each frame's energy over frames ``a..b`` (float64, channels in order)."""
    seg = x[a:b].astype(np.float64)
    e = seg[:, 0] * seg[:, 0]
    for c in range(1, seg.shape[1]):
        e = e + seg[:, c] * seg[:, c]
    out = np.empty(b - a + 1, dtype=np.float64)
    out[0] = 0.0
    np.cumsum(e, out=out[1:])
    return out


def _split(x: np.ndarray, rate: int, a: int, b: int, max_len: int, min_len: int, out: List[Tuple[int, int]]) -> None:
    if b - a <= max_len:
        out.append((a, b))
        return
    energy = _prefix_energy(x, a, b)
    base = a
    w = max(rate // 200, 1)
    while b - a > max_len:
        rest = b - a
        pieces = -(-rest // max_len)
        lo, hi = rest - (pieces - 1) * max_len, max_len
        keep = min(min_len, max_len // 2)
        if max(lo, keep) <= min(hi, rest - keep):
            lo, hi = max(lo, keep), min(hi, rest - keep)
        p = np.arange(a + lo, a + hi + 1)
        e = energy[np.minimum(p + w, b) - base] - energy[np.maximum(p - w, base) - base]
        # The latest of equally quiet points, as the Rust loop's `<=` picks it.
        best = int(p[len(e) - 1 - int(np.argmin(e[::-1]))])
        out.append((a, best))
        a = best
    out.append((a, b))


def spans(samples: np.ndarray, rate: int, segments: Sequence[Tuple[float, float]], params: Dict[str, Any]) -> List[Tuple[int, int]]:
    """The clips' frame spans ``(start, end)`` for ``segments`` (seconds) over ``samples``."""
    n = samples.shape[0]
    rounded = []
    for s, e in segments:
        a = min(_frames_of(s, rate), n)
        b = min(max(_frames_of(e, rate), a), n)
        if b > a:
            rounded.append((a, b))
    rounded.sort()
    gap = _frames_of(float(params.get("merge_gap_ms") or 0.0) / 1000.0, rate)
    joined: List[List[int]] = []
    for a, b in rounded:
        if joined and (a <= joined[-1][1] or a - joined[-1][1] < gap):
            joined[-1][1] = max(joined[-1][1], b)
        else:
            joined.append([a, b])
    min_len = _frames_of(float(params.get("min_duration_s", 0.25) or 0.0), rate)
    joined = [j for j in joined if j[1] - j[0] >= min_len]
    pad = _frames_of(float(params.get("pad_ms", 30.0) or 0.0) / 1000.0, rate)
    padded: List[Tuple[int, int]] = []
    for i, (a, b) in enumerate(joined):
        left = a if i == 0 else (a - joined[i - 1][1]) // 2
        right = n - b if i + 1 == len(joined) else (joined[i + 1][0] - b) // 2
        padded.append((a - min(pad, left), b + min(pad, right)))
    if params.get("max_duration_s") is None:
        return padded
    max_len = max(_frames_of(float(params["max_duration_s"]), rate), 1)
    x = samples if samples.dtype == np.float32 else fmt.convert(samples, "f32")
    x = x.reshape(n, -1)
    out: List[Tuple[int, int]] = []
    for a, b in padded:
        _split(x, rate, a, b, max_len, min_len, out)
    return out
