"""Second-order sections in numpy: the twin of ``src/nodes/sos.rs`` (Butterworth designs as scipy's
``butter(..., output="sos")``, the RBJ audio-EQ-cookbook biquads, and a cascade that carries its
state from call to call or filters forward and backward as scipy's ``sosfiltfilt``).

Sections are rows ``[b0, b1, b2, 1, a1, a2]`` run in direct form I, state ``[x[-1], x[-2], y[-1],
y[-2]]``, in float64. numpy has no recursive filter, so each section runs in blocks of ``BLOCK``
samples: a block's outputs are a matrix product of its inputs and the state before it (the same
block form as the Rust kernel, with longer blocks); the last two outputs of each block, which
the next one depends on, follow a two-dimensional linear recurrence solved for all blocks at once.
"""

from __future__ import annotations

import math
from typing import List, Sequence

import numpy as np

__all__ = ["butterworth", "cookbook", "response_db", "filtfilt_padlen", "Cascade"]

#: Samples per block of the numpy kernel: long enough that the Python loop over blocks is short,
#: short enough that the block products stay small (multi-threaded BLAS slowed larger ones down
#: by 10x on a loaded machine).
BLOCK = 32
#: Samples filtered at a time: long signals go through in pieces that stay in the CPU's cache.
PIECE = 1 << 15
#: Roots within this of the real axis count as real.
_REAL_EPS = 1e-12


def butterworth(order: int, kind: str, low_hz: float, high_hz: float, rate: float) -> np.ndarray:
    """Sections of a digital Butterworth filter, as ``butterworth`` in Rust (``kind``: lowpass,
    highpass, bandpass or bandstop; ``low_hz`` is the cut-off of low- and high-pass filters)."""
    n = max(int(order), 1)

    def warp(f: float) -> float:
        return 2.0 * rate * math.tan(math.pi * f / rate)

    m = 2.0 * np.arange(n) - n + 1.0
    proto = -np.exp(1j * math.pi * m / (2.0 * n))
    prod_neg = np.prod(-proto)
    if kind == "lowpass":
        wo = warp(low_hz)
        zeros, poles, gain = np.zeros(0, complex), proto * wo, wo**n
    elif kind == "highpass":
        wo = warp(low_hz)
        zeros, poles, gain = np.zeros(n, complex), wo / proto, (1.0 / prod_neg).real
    else:
        wl, wh = warp(low_hz), warp(high_hz)
        wo, bw = math.sqrt(wl * wh), wh - wl
        scaled = proto * (bw / 2.0) if kind == "bandpass" else (bw / 2.0) / proto
        root = np.sqrt(scaled * scaled - wo * wo)
        poles = np.concatenate([scaled + root, scaled - root])
        if kind == "bandpass":
            zeros, gain = np.zeros(n, complex), bw**n
        else:
            zeros, gain = np.concatenate([np.full(n, 1j * wo), np.full(n, -1j * wo)]), (1.0 / prod_neg).real
    fs2 = 2.0 * rate
    zd = (fs2 + zeros) / (fs2 - zeros)
    pd = (fs2 + poles) / (fs2 - poles)
    zd = np.concatenate([zd, -np.ones(pd.size - zd.size)])
    k = gain * (np.prod(fs2 - zeros) / np.prod(fs2 - poles)).real
    return _sections_from_zpk(zd, pd, k)


def _quadratics(roots: np.ndarray) -> List[tuple]:
    """Monic quadratics (or linears) whose roots are ``roots``: ``(largest |root|, [1, c1, c2])``."""
    out, reals = [], []
    for r in roots:
        if abs(r.imag) <= _REAL_EPS * max(abs(r), 1.0):
            reals.append(float(r.real))
        elif r.imag > 0:
            out.append((abs(r), [1.0, -2.0 * r.real, abs(r) ** 2]))
    reals.sort()
    i, j = 0, len(reals)
    while j >= i + 2:
        r1, r2 = reals[i], reals[j - 1]
        out.append((max(abs(r1), abs(r2)), [1.0, -(r1 + r2), r1 * r2]))
        i, j = i + 1, j - 1
    if j > i:
        out.append((abs(reals[i]), [1.0, -reals[i], 0.0]))
    return out


def _sections_from_zpk(zeros: np.ndarray, poles: np.ndarray, gain: float) -> np.ndarray:
    pairs = [(pr, b, a) for (pr, a), (_, b) in zip(_quadratics(poles), _quadratics(zeros))]
    pairs.sort(key=lambda x: x[0])
    sos = np.array([[b[0], b[1], b[2], 1.0, a[1], a[2]] for _, b, a in pairs], dtype=np.float64).reshape(-1, 6)
    if sos.shape[0]:
        sos[0, :3] *= gain
    return sos


def cookbook(kind: str, freq_hz: float, q: float, gain_db: float, rate: float) -> np.ndarray:
    """One RBJ cookbook section (``kind``: peaking, lowshelf, highshelf or notch) as a (1, 6) row."""
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * freq_hz / rate
    sin, cos = math.sin(w0), math.cos(w0)
    alpha = sin / (2.0 * q)
    sa = 2.0 * math.sqrt(a) * alpha
    if kind == "peaking":
        b, den = [1 + alpha * a, -2 * cos, 1 - alpha * a], [1 + alpha / a, -2 * cos, 1 - alpha / a]
    elif kind == "lowshelf":
        b = [a * ((a + 1) - (a - 1) * cos + sa), 2 * a * ((a - 1) - (a + 1) * cos), a * ((a + 1) - (a - 1) * cos - sa)]
        den = [(a + 1) + (a - 1) * cos + sa, -2 * ((a - 1) + (a + 1) * cos), (a + 1) + (a - 1) * cos - sa]
    elif kind == "highshelf":
        b = [a * ((a + 1) + (a - 1) * cos + sa), -2 * a * ((a - 1) + (a + 1) * cos), a * ((a + 1) + (a - 1) * cos - sa)]
        den = [(a + 1) - (a - 1) * cos + sa, 2 * ((a - 1) - (a + 1) * cos), (a + 1) - (a - 1) * cos - sa]
    elif kind == "notch":
        b, den = [1.0, -2 * cos, 1.0], [1 + alpha, -2 * cos, 1 - alpha]
    else:
        raise ValueError(f"unknown cookbook band {kind!r}")
    return np.array([[b[0] / den[0], b[1] / den[0], b[2] / den[0], 1.0, den[1] / den[0], den[2] / den[0]]])


def response_db(sos: np.ndarray, freq_hz: float, rate: float) -> float:
    """The cascade's gain at ``freq_hz``, in dB."""
    z = np.exp(-1j * 2.0 * math.pi * freq_hz / rate)
    h = np.prod((sos[:, 0] + sos[:, 1] * z + sos[:, 2] * z * z) / (1.0 + sos[:, 4] * z + sos[:, 5] * z * z))
    return 20.0 * math.log10(abs(h))


def filtfilt_padlen(sos: np.ndarray) -> int:
    """scipy's default ``padlen`` for ``sosfiltfilt``."""
    zb = int(np.sum(sos[:, 2] == 0.0))
    za = int(np.sum(sos[:, 5] == 0.0))
    return 3 * (2 * sos.shape[0] + 1 - min(zb, za))


def _df1_run(row: np.ndarray, x: Sequence[float], state: Sequence[float]) -> np.ndarray:
    """Direct form I over ``x`` from ``state`` ``[x[-1], x[-2], y[-1], y[-2]]``, in Python floats
    (the order of operations of ``df1`` in Rust)."""
    b0, b1, b2, _, a1, a2 = (float(v) for v in row)
    x1, x2, y1, y2 = (float(v) for v in state)
    out = []
    for v in x:
        y = b0 * v + b1 * x1 + b2 * x2 - a2 * y2 - a1 * y1
        x1, x2, y1, y2 = v, x1, y, y1
        out.append(y)
    return np.array(out)


class _BlockForm:
    """One section's block form: ``y = T @ x + P @ state`` for a block of ``BLOCK`` inputs."""

    def __init__(self, row: np.ndarray):
        impulse = [1.0] + [0.0] * (BLOCK - 1)
        h = _df1_run(row, impulse, (0.0, 0.0, 0.0, 0.0))
        # T is lower-triangular Toeplitz: column j is the impulse response delayed by j.
        i, j = np.indices((BLOCK, BLOCK))
        self.t = np.where(i >= j, h[np.maximum(i - j, 0)], 0.0)
        zeros = [0.0] * BLOCK
        self.p = np.stack([_df1_run(row, zeros, np.eye(4)[j]) for j in range(4)], axis=1)
        # How the block's last two outputs follow from the previous block's last two.
        self.carry = self.p[[-1, -2]][:, [2, 3]]


class Cascade:
    """Sections over (frames, channels) audio of a fixed channel count, state carried across calls."""

    def __init__(self, sos: np.ndarray, channels: int):
        self.sos = np.asarray(sos, dtype=np.float64).reshape(-1, 6)
        self.channels = max(int(channels), 1)
        self.forms = [_BlockForm(row) for row in self.sos]
        self.state = np.zeros((self.channels, self.sos.shape[0], 4))

    def reset(self) -> None:
        self.state[:] = 0.0

    def process(self, frames: np.ndarray) -> np.ndarray:
        """Filters (frames, channels) float32, continuing from the previous call; float32 out."""
        x = np.asarray(frames, dtype=np.float64).reshape(frames.shape[0], -1)
        out = np.empty_like(x)
        for c in range(self.channels):
            out[:, c] = self.run_channel(c, x[:, c])
        return out.astype(np.float32)

    def run_channel(self, channel: int, x: np.ndarray) -> np.ndarray:
        """One channel's float64 samples through every section, continuing from its state."""
        x = np.asarray(x, dtype=np.float64)
        if x.size <= PIECE:
            return self._run_piece(channel, x)
        return np.concatenate([self._run_piece(channel, x[i : i + PIECE]) for i in range(0, x.size, PIECE)])

    def _run_piece(self, channel: int, y: np.ndarray) -> np.ndarray:
        for s, form in enumerate(self.forms):
            y = self._section(form, self.state[channel, s], y)
        return y

    @staticmethod
    def _section(form: _BlockForm, state: np.ndarray, x: np.ndarray) -> np.ndarray:
        n = x.size
        if n == 0:
            return x.copy()
        k = -(-n // BLOCK)
        xp = np.zeros(k * BLOCK)
        xp[:n] = x
        blocks = xp.reshape(k, BLOCK)
        # Each block's previous two inputs are known up front: only the outputs are carried.
        x1 = np.concatenate([[state[0]], blocks[:-1, -1]])
        x2 = np.concatenate([[state[1]], blocks[:-1, -2]])
        base = blocks @ form.t.T + np.outer(x1, form.p[:, 0]) + np.outer(x2, form.p[:, 1])
        # The last two outputs entering each block: v[i+1] = carry @ v[i] + base[i, (-1, -2)], from
        # v[0] = (y[-1], y[-2]); solved for every block at once by a doubling scan (after the
        # round with shift s, v[i] holds the terms of its last 2s blocks).
        v = np.empty((k, 2))
        v[0] = state[2], state[3]
        v[1:] = base[:-1][:, [-1, -2]]
        power, shift = form.carry, 1
        while shift < k:
            v[shift:] = v[shift:] + v[:-shift] @ power.T
            power, shift = power @ power, 2 * shift
        y = (base + np.outer(v[:, 0], form.p[:, 2]) + np.outer(v[:, 1], form.p[:, 3])).reshape(-1)[:n]
        xs = np.concatenate([[state[1], state[0]], x])
        ys = np.concatenate([[state[3], state[2]], y])
        state[:] = (xs[-1], xs[-2], ys[-1], ys[-2])
        return y

    def _settle(self, channel: int, level: float) -> None:
        """The state a constant input ``level`` settles to (scipy's ``sosfilt_zi(sos) * level``)."""
        u = level
        for s, row in enumerate(self.sos):
            y = u * (row[0] + row[1] + row[2]) / (1.0 + row[4] + row[5])
            self.state[channel, s] = (u, u, y, y)
            u = y

    def filtfilt(self, frames: np.ndarray) -> np.ndarray:
        """Zero-phase filtering of a whole buffer, as scipy's ``sosfiltfilt`` (odd extension of
        ``filtfilt_padlen`` samples, at most ``frames - 1``); leaves the state reset."""
        x = np.asarray(frames, dtype=np.float64).reshape(frames.shape[0], -1)
        n = x.shape[0]
        out = np.empty_like(x)
        if n == 0:
            return out.astype(np.float32)
        pad = min(filtfilt_padlen(self.sos), n - 1)
        for c in range(self.channels):
            v = x[:, c]
            ext = np.concatenate([2.0 * v[0] - v[pad:0:-1], v, 2.0 * v[-1] - v[-2 : -pad - 2 : -1]]) if pad else v.copy()
            self._settle(c, ext[0])
            y = self.run_channel(c, ext)[::-1]
            self._settle(c, y[0])
            y = self.run_channel(c, y)[::-1]
            out[:, c] = y[pad : pad + n]
        self.reset()
        return out.astype(np.float32)
