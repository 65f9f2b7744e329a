"""``DenoiseNode`` in numpy: the twin of ``src/nodes/denoise.rs`` (spectral gating: a per-bin
threshold at the noise profile's mean + ``n_std_thresh`` std in dB, a mask smoothed over frequency
and time with noisereduce's triangular kernel, weighted overlap-add; stationary or running noise
estimate; the same frame layout, so a stream's chunks add up as in Rust). Same checks, same words,
same results up to float rounding (Rust runs its FFTs in f32).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from ..audio import Audio
from ..errors import InputError
from .builtin import _as_f32_frames, _expect_audio, _one, _shaped_like, check_finite

__all__ = ["Gate", "DenoiseKernel", "DenoiseStream"]

TYPE_NAME = "DenoiseNode"
QUIET_FRACTION = 0.1
MIN_QUIET_FRAMES = 8
EPS_POWER = 1e-20
RISE_SLOWDOWN = 10.0


def _triangle(n: int) -> np.ndarray:
    return np.array([(n + 1 - abs(i - n)) / (n + 1) for i in range(2 * n + 1)])


def _db(power: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(power + EPS_POWER)


def _smooth(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``x`` smoothed with a symmetric kernel, cut and renormalised near the ends."""
    h = kernel.size // 2
    if h == 0:
        return x.copy()
    num = np.convolve(x, kernel, mode="same")
    den = np.convolve(np.ones_like(x), kernel, mode="same")
    return num / den


class _Profile:
    def __init__(self, levels: List[np.ndarray], n_std: float):
        db = np.array([lv for lv in levels]) if levels else np.zeros((1, 1))
        self.mean = db.mean(axis=0)
        self.var = np.maximum((db * db).mean(axis=0) - self.mean * self.mean, 0.0)
        self.update(n_std)

    def update(self, n_std: float) -> None:
        self.threshold = 10.0 ** ((self.mean + n_std * np.sqrt(self.var)) / 10.0)


def _of_quietest(levels: List[tuple], n_std: float) -> _Profile:
    """``levels``: ``(db, total)`` per frame; the profile of the quietest tenth (ties: frame order)."""
    order = sorted(range(len(levels)), key=lambda i: (levels[i][1], i))
    take = min(max(math.ceil(len(levels) * QUIET_FRACTION), MIN_QUIET_FRAMES), len(levels))
    return _Profile([levels[i][0] for i in order[:take]], n_std)


class Gate:
    """One stream's gate (``Gate`` in Rust): frames in, denoised samples out, in order."""

    def __init__(self, params: Dict[str, Any], rate: int, channels: int, profile_from: Optional[np.ndarray]):
        self.channels = max(int(channels), 1)
        n = self.n = int(params["n_fft"])
        self.hop = n // 4
        self.bins = n // 2 + 1
        self.n_std = float(params["n_std_thresh"])
        self.prop = float(params["prop_decrease"])
        self.nonstationary = params["mode"] == "nonstationary"
        # "preserve": the final mask never below the frame's raw mask (a kept bin stays kept).
        self.preserve = params.get("smoothing", "preserve") == "preserve"
        tc = float(params["time_constant_s"])
        gb = int(math.floor(float(params["freq_mask_smooth_hz"]) / (rate / (n / 2.0))))
        gt = int(math.floor(float(params["time_mask_smooth_ms"]) / (self.hop / rate * 1000.0)))
        self.window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
        self.freq_kernel, self.time_kernel = _triangle(gb), _triangle(gt)
        self.learn_frames = max(math.ceil(tc * rate / self.hop), 1)
        self.alpha = 1.0 - math.exp(-self.hop / (rate * tc))
        self.input = np.zeros((self.channels, n // 2))
        self.next = 0
        self.pending: deque = deque()
        self.pending_from = 0
        self.history: deque = deque()
        self.acc = np.zeros((self.channels, 0))
        self.wsum = np.zeros(0)
        self.out_pos = 0
        self.total_in = 0
        self.profile: Optional[_Profile] = None
        self.learning: Optional[list] = None
        clip = params.get("noise_clip")
        if clip is not None:
            clip = np.asarray(clip, dtype=np.float32)
            if clip.size < n:
                raise InputError(f"{TYPE_NAME} noise_clip has {clip.size} samples, fewer than one STFT frame (n_fft = {n})")
            self.profile = _Profile([db for db, _ in self._mono_levels(clip.reshape(-1, 1))], self.n_std)
        elif profile_from is not None:
            self.profile = _of_quietest(self._mono_levels(profile_from), self.n_std)
        else:
            self.learning = []

    def latency(self) -> int:
        return self.n + (self.time_kernel.size // 2) * self.hop

    def _levels(self, power: np.ndarray) -> tuple:
        return _db(power), float(np.sum(power))

    def _mono_levels(self, frames: np.ndarray) -> List[tuple]:
        """Levels of every frame of the mono mix of (n, channels) audio, laid out as a stream's."""
        mono = frames.astype(np.float64).mean(axis=1) if frames.shape[1] else np.zeros(frames.shape[0])
        count = -(-(mono.size + self.n // 2) // self.hop)
        padded = np.concatenate([np.zeros(self.n // 2), mono, np.zeros(count * self.hop + self.n)])
        out = []
        for k in range(count):
            spec = np.fft.rfft(padded[k * self.hop : k * self.hop + self.n] * self.window)
            out.append(self._levels(np.abs(spec) ** 2))
        return out

    def push(self, frames: np.ndarray) -> np.ndarray:
        self.total_in += frames.shape[0]
        self.input = np.concatenate([self.input, frames.T.astype(np.float64)], axis=1)
        while self.input.shape[1] >= self.n:
            self._analyse()
        return self._drain(False)

    def finish(self) -> np.ndarray:
        while self.next * self.hop < self.total_in + self.n // 2:
            if self.input.shape[1] < self.n:
                self.input = np.concatenate([self.input, np.zeros((self.channels, self.n - self.input.shape[1]))], axis=1)
            self._analyse()
        while self.pending:
            self._finish_frame()
        return self._drain(True)

    def _analyse(self) -> None:
        spectra = np.fft.rfft(self.input[:, : self.n] * self.window, axis=1)
        self.input = self.input[:, self.hop :]
        mono = np.abs(spectra.sum(axis=0) / self.channels) ** 2
        self.next += 1
        self._observe(mono)
        raw = np.where(np.abs(spectra) ** 2 > self.profile.threshold, 1.0, 1.0 - self.prop)
        masks = np.stack([_smooth(m, self.freq_kernel) for m in raw])
        self.pending.append((spectra, masks, raw if self.preserve else None))
        while len(self.pending) > self.time_kernel.size // 2:
            self._finish_frame()

    def _observe(self, mono: np.ndarray) -> None:
        if self.learning is not None:
            self.learning.append(self._levels(mono))
            self.profile = _of_quietest(self.learning, self.n_std)
            if len(self.learning) >= self.learn_frames:
                self.learning = None
            return
        if self.nonstationary:
            p = self.profile
            rate = np.where(mono > p.threshold, self.alpha / RISE_SLOWDOWN, self.alpha)
            d = _db(mono) - p.mean
            p.mean = p.mean + rate * d
            p.var = p.var + rate * (d * d - p.var)
            p.update(self.n_std)

    def _finish_frame(self) -> None:
        look = self.time_kernel.size // 2
        spectra, _, raw = self.pending[0]
        mask = np.zeros((self.channels, self.bins))
        total = 0.0
        for j, w in enumerate(self.time_kernel):
            off = j - look
            if off < 0:
                m = self.history[len(self.history) + off] if -off <= len(self.history) else None
            else:
                m = self.pending[off][1] if off < len(self.pending) else None
            if m is not None:
                mask += w * m
                total += w
        mask = mask / total
        if raw is not None:
            mask = np.maximum(mask, raw)
        spec = spectra * mask
        spec[:, 0] = spec[:, 0].real
        spec[:, -1] = spec[:, -1].real
        y = np.fft.irfft(spec, self.n, axis=1) * self.window
        start = self.pending_from * self.hop - self.n // 2 - self.out_pos
        need = max(start + self.n, 0)
        if self.acc.shape[1] < need:
            self.acc = np.concatenate([self.acc, np.zeros((self.channels, need - self.acc.shape[1]))], axis=1)
            self.wsum = np.concatenate([self.wsum, np.zeros(need - self.wsum.size)])
        lo = max(-start, 0)
        self.acc[:, start + lo : start + self.n] += y[:, lo:]
        self.wsum[start + lo : start + self.n] += self.window[lo:] ** 2
        _, masks, _ = self.pending.popleft()
        self.history.append(masks)
        if len(self.history) > look:
            self.history.popleft()
        self.pending_from += 1

    def _drain(self, end: bool) -> np.ndarray:
        next_start = max(self.pending_from * self.hop - self.n // 2, 0)
        limit = self.total_in if end else min(next_start, self.total_in)
        count = max(limit - self.out_pos, 0)
        acc = np.zeros((self.channels, count))
        got = min(count, self.acc.shape[1])
        acc[:, :got] = self.acc[:, :got]
        w = np.zeros(count)
        w[: min(count, self.wsum.size)] = self.wsum[:count]
        out = np.where(w > 1e-8, acc / np.where(w > 1e-8, w, 1.0), 0.0)
        self.acc = self.acc[:, got:]
        self.wsum = self.wsum[min(count, self.wsum.size) :]
        self.out_pos += count
        return out.T.astype(np.float32)


def _frames_of(audio: Audio) -> np.ndarray:
    frames = _as_f32_frames(audio.samples) if audio.samples.size else np.zeros((0, max(audio.channels, 1)), np.float32)
    check_finite(TYPE_NAME, frames.reshape(-1))
    return frames


class DenoiseKernel:
    """The whole-buffer node: profile from the noise clip or the buffer's quietest frames."""

    def __init__(self, params: Dict[str, Any]):
        self.params = params

    def __call__(self, inputs: Mapping[str, Any]) -> Audio:
        audio = _expect_audio(_one(inputs, TYPE_NAME))
        frames = _frames_of(audio)
        gate = Gate(self.params, audio.sample_rate, frames.shape[1], frames)
        out = np.concatenate([gate.push(frames), gate.finish()])
        return Audio._trusted(_shaped_like(out, audio.samples), audio.sample_rate)


class DenoiseStream:
    """One streaming session's ``DenoiseNode``: output lags input by up to ``Gate.latency()``
    samples; ``finish`` flushes the rest (the output has the input's length)."""

    def __init__(self, params: Dict[str, Any]):
        self.params = params
        self.gate: Optional[Gate] = None
        self.key = None
        self.like: Optional[np.ndarray] = None

    def _chunk(self, audio: Audio) -> np.ndarray:
        if self.gate is not None and self.key != (audio.sample_rate, max(audio.channels, 1)):
            rate, ch = self.key
            raise InputError(
                f"this stream started with audio at {rate} Hz and {ch} channel(s); a chunk at {audio.sample_rate} Hz "
                f"with {audio.channels} channel(s) cannot continue it"
            )
        frames = _frames_of(audio)
        if self.gate is None:
            self.gate = Gate(self.params, audio.sample_rate, frames.shape[1], None)
            self.key = (audio.sample_rate, max(audio.channels, 1))
            self.like = audio.samples
        return self.gate.push(frames)

    def push(self, inputs: Mapping[str, Any]) -> Audio:
        audio = _expect_audio(_one(inputs, TYPE_NAME))
        return Audio._trusted(_shaped_like(self._chunk(audio), audio.samples), audio.sample_rate)

    def finish(self, inputs: Optional[Mapping[str, Any]]) -> Optional[Audio]:
        head = None
        if inputs is not None:
            audio = _expect_audio(_one(inputs, TYPE_NAME))
            head = self._chunk(audio)
        if self.gate is None:
            return None
        out = self.gate.finish() if head is None else np.concatenate([head, self.gate.finish()])
        rate = self.key[0]
        self.gate = None
        return Audio._trusted(_shaped_like(out, self.like), rate)
