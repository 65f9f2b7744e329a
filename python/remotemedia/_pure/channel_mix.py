"""Pure-numpy twin of the Rust ``ChannelMixNode`` (``src/nodes/channel_mix.rs``), bit-exact with it:
the same f32 operations in the same order (``acc = g0 * x0; acc += g1 * x1 ...``; the mean divides
the sum of the channels, taken in channel order, by their count). Integer input is converted with
the format convention first (``format.py``).

``to_mono(samples)`` is the downmix on its own, for loaders that offer ``mono=True``.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import format as fmt

__all__ = ["to_mono", "mix", "plan", "check_params", "MAX_CHANNELS"]

MAX_CHANNELS = 256


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _frames(samples: np.ndarray) -> np.ndarray:
    """(frames, channels) float32 with the format convention."""
    x = samples if samples.dtype == np.float32 else fmt.convert(samples, "f32")
    return x.reshape(x.shape[0], -1)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """The mean of the channels as a 1-D float32 array; mono input (1-D, or one column) is
    returned unchanged."""
    if samples.ndim == 1 or samples.shape[1] == 1:
        return samples
    x = _frames(samples)
    acc = x[:, 0].copy()
    for c in range(1, x.shape[1]):
        acc += x[:, c]
    return acc / np.float32(x.shape[1])


def matrix_rows(m: Any) -> Tuple[Optional[List[List[float]]], str]:
    """``(rows, "")`` for a well-formed matrix param, else ``(None, what is wrong)`` in the Rust words."""
    if not isinstance(m, list):
        return None, "a value that is not a list"
    if not m or len(m) > MAX_CHANNELS:
        return None, f"a list of {len(m)} rows"
    rows: List[List[float]] = []
    for o, row in enumerate(m):
        if not isinstance(row, list):
            return None, f"row {o}, which is not a list"
        if not row or len(row) > MAX_CHANNELS:
            return None, f"row {o} with {_plural(len(row), 'gain')}"
        ok = all(isinstance(g, (int, float)) and not isinstance(g, bool) and math.isfinite(g) for g in row)
        if not ok:
            return None, f"row {o} holding something other than a finite number"
        if rows and len(row) != len(rows[0]):
            return None, f"row {o} with {_plural(len(row), 'gain')}, row 0 with {len(rows[0])}"
        rows.append([float(g) for g in row])
    return rows, ""


def check_params(params: Dict[str, Any]) -> List[Tuple[str, str, str]]:
    """The problems no single param shows, as ``(param, expected, found)`` (``ChannelMixParams::problems``)."""
    m = params.get("matrix")
    if m is None:
        return []
    out: List[Tuple[str, str, str]] = []
    if params.get("channel") is not None:
        out.append(("matrix", "either channel or matrix, not both", "both channel and matrix"))
    rows, found = matrix_rows(m)
    if rows is None:
        out.append(("matrix", f"a list of 1 to {MAX_CHANNELS} rows (one per output channel), each a list of 1 to "
                              f"{MAX_CHANNELS} finite numbers (one gain per input channel), all rows the same length", found))
    elif params.get("channels") is not None and int(params["channels"]) != len(rows):
        out.append(("channels", f"the matrix's row count, {len(rows)}", str(int(params["channels"]))))
    return out


def plan(params: Dict[str, Any]) -> Tuple[str, Any]:
    """The mix validated params ask for: ``("mean", channels)``, ``("select", (channel, channels))``
    or ``("matrix", rows)``."""
    channels = int(params.get("channels") or 1)
    if params.get("matrix") is not None:
        rows, _ = matrix_rows(params["matrix"])
        return "matrix", rows
    if params.get("channel") is not None:
        return "select", (int(params["channel"]), channels)
    return "mean", channels


def mix(samples: np.ndarray, how: Tuple[str, Any]) -> Tuple[Optional[np.ndarray], str]:
    """``(mixed samples, "")`` -- the input itself when it already has the channels asked for --
    or ``(None, why not)`` in the Rust node's words."""
    kind, arg = how
    inp = 1 if samples.ndim == 1 else samples.shape[1]
    if kind == "mean" and arg == inp:
        return samples, ""
    if kind == "select" and arg == (0, 1) and inp == 1:
        return samples, ""
    if kind == "mean" and arg == 1:
        return to_mono(samples), ""
    if kind == "mean" and inp == 1:
        gains = [[1.0]] * arg
    elif kind == "mean":
        return None, (f"ChannelMixNode has no default mix from {inp} to {arg} channels (only to mono, or mono to N); "
                      f"give a matrix of {arg} rows of {inp} gains")
    elif kind == "select":
        channel, channels = arg
        if channel >= inp:
            return None, (f"ChannelMixNode takes input channel {channel} (param channel, counted from 0), "
                          f"but the input has {_plural(inp, 'channel')}")
        gains = [[1.0 if i == channel else 0.0 for i in range(inp)]] * channels
    else:
        if len(arg[0]) != inp:
            return None, (f"ChannelMixNode's matrix has {_plural(len(arg[0]), 'gain')} per row, one per input channel, "
                          f"but the input has {_plural(inp, 'channel')}")
        gains = arg
    x = _frames(samples)
    out = np.empty((x.shape[0], len(gains)), dtype=np.float32)
    for o, row in enumerate(gains):
        acc = np.float32(row[0]) * x[:, 0]
        for i in range(1, inp):
            acc += np.float32(row[i]) * x[:, i]
        out[:, o] = acc
    # One output channel is mono: 1-D, as the engine hands mono audio to Python.
    return (out[:, 0] if len(gains) == 1 else out), ""
