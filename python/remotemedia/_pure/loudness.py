"""``LoudnessNode`` in numpy: the twin of ``src/nodes/loudness.rs`` (ITU-R BS.1770-4 / EBU R128
integrated loudness, EBU Tech 3342 loudness range, Annex 2 true peak, normalisation under a
true-peak ceiling, and the per-chunk sliding-window report of a stream). Same checks, same words,
same results up to float rounding.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from ..audio import Audio
from ..errors import InputError
from .builtin import _as_f32_frames, _expect_audio, _one, _shaped_like, check_finite
from .sos import PIECE, Cascade

__all__ = ["k_weighting", "Meter", "normalising_gain", "LoudnessKernel", "LoudnessStream", "default_weights"]

TYPE_NAME = "LoudnessNode"

#: BS.1770-4 Annex 2: the 4x interpolation filter, 4 phases of 12 taps.
TRUE_PEAK_TAPS = np.array(
    [
        [0.0017089843750, 0.0109863281250, -0.0196533203125, 0.0332031250000, -0.0594482421875, 0.1373291015625,
         0.9721679687500, -0.1022949218750, 0.0476074218750, -0.0266113281250, 0.0148925781250, -0.0083007812500],
        [-0.0291748046875, 0.0292968750000, -0.0517578125000, 0.0891113281250, -0.1665039062500, 0.4650878906250,
         0.7797851562500, -0.2003173828125, 0.1015625000000, -0.0582275390625, 0.0330810546875, -0.0189208984375],
        [-0.0189208984375, 0.0330810546875, -0.0582275390625, 0.1015625000000, -0.2003173828125, 0.7797851562500,
         0.4650878906250, -0.1665039062500, 0.0891113281250, -0.0517578125000, 0.0292968750000, -0.0291748046875],
        [-0.0083007812500, 0.0148925781250, -0.0266113281250, 0.0476074218750, -0.1022949218750, 0.9721679687500,
         0.1373291015625, -0.0594482421875, 0.0332031250000, -0.0196533203125, 0.0109863281250, 0.0017089843750],
    ]
)
TAPS = 12
BLOCK_SUBS = 4
SHORT_TERM_SUBS = 30
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
LRA_RELATIVE_GATE_LU = -20.0


def k_weighting(rate: float) -> np.ndarray:
    """BS.1770's K-weighting as two sections at ``rate`` (``k_weighting`` in Rust)."""
    f0, g, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10.0 ** (g / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0, 1.0,
             2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    f0, q = 38.13547087602444, 0.5003270373238773

    def a0_at(r: float) -> float:
        k = math.tan(math.pi * f0 / r)
        return 1.0 + k / q + k * k

    k = math.tan(math.pi * f0 / rate)
    a0 = a0_at(rate)
    # The standard's numerator [1, -2, 1] leaves a pass-band gain of a0 at 48 kHz: kept at every rate.
    c = a0_at(48000.0) / a0
    highpass = [c, -2.0 * c, c, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return np.array([shelf, highpass])


def default_weights(channels: int) -> List[float]:
    """BS.1770's channel weights by channel count (``default_weights`` in Rust)."""
    if channels <= 3:
        return [1.0] * channels
    return {4: [1.0, 1.0, 1.0, 1.41], 5: [1.0, 1.0, 1.0, 1.41, 1.41], 6: [1.0, 1.0, 1.0, 0.0, 1.41, 1.41]}.get(
        channels, [1.0] * channels
    )


def _lufs(mean_square: float) -> Optional[float]:
    return -0.691 + 10.0 * math.log10(mean_square) if mean_square > 0.0 else None


def _phases(rate: int) -> Tuple[int, ...]:
    if rate < 96000:
        return (0, 1, 2, 3)
    if rate < 192000:
        return (0, 2)
    return ()


def _percentile(sorted_values: List[float], q: float) -> float:
    return float(np.percentile(np.asarray(sorted_values), q))


class Meter:
    """A BS.1770 meter for one stream of (frames, channels) audio (``Meter`` in Rust)."""

    def __init__(self, rate: int, weights: List[float], true_peak: bool = True):
        self.rate = int(rate)
        self.true_peak = bool(true_peak)
        self.weights = [float(w) for w in weights]
        self.channels = max(len(self.weights), 1)
        self.kfilter = Cascade(k_weighting(float(rate)), self.channels)
        self.history = np.zeros((self.channels, TAPS - 1))
        self.peak = 0.0
        self.subs_done = 0
        self.sub_energy = 0.0
        self.sub_len = 0
        self.recent: deque = deque(maxlen=SHORT_TERM_SUBS)
        self.blocks: List[float] = []
        self.short_terms: List[float] = []

    def _sub_block_len(self, i: int) -> int:
        return (i + 1) * self.rate // 10 - i * self.rate // 10

    def push(self, frames: np.ndarray) -> float:
        """Measures (n, channels) float32; returns this chunk's largest true peak (linear)."""
        if frames.shape[0] > PIECE:
            # Long buffers in pieces: every intermediate array stays small.
            return max(self.push(frames[i : i + PIECE]) for i in range(0, frames.shape[0], PIECE))
        n = frames.shape[0]
        energy = np.zeros(n)
        chunk_peak = 0.0
        phases = _phases(self.rate)
        for c in range(self.channels):
            x = frames[:, c].astype(np.float64)
            if self.true_peak:
                buf = np.concatenate([self.history[c], x])
                for p in phases:
                    y = np.convolve(buf, TRUE_PEAK_TAPS[p], mode="valid")
                    if y.size:
                        chunk_peak = max(chunk_peak, float(np.max(np.abs(y))))
                if n:
                    # The samples count too (as in Rust: Annex 2's phase 0 is not exactly the identity).
                    chunk_peak = max(chunk_peak, float(np.max(np.abs(x))))
                self.history[c] = buf[buf.size - (TAPS - 1) :]
            y = self.kfilter.run_channel(c, x)
            if self.weights[c] != 0.0:
                energy += self.weights[c] * y * y
        self.peak = max(self.peak, chunk_peak)
        pos = 0
        while pos < n:
            need = self._sub_block_len(self.subs_done) - self.sub_len
            take = min(need, n - pos)
            self.sub_energy += float(np.sum(energy[pos : pos + take]))
            self.sub_len += take
            pos += take
            if self.sub_len == self._sub_block_len(self.subs_done):
                self._close_sub_block()
        return chunk_peak

    def _close_sub_block(self) -> None:
        self.recent.append((self.sub_energy, self.sub_len))
        self.subs_done += 1
        self.sub_energy, self.sub_len = 0.0, 0
        for subs, out in ((BLOCK_SUBS, self.blocks), (SHORT_TERM_SUBS, self.short_terms)):
            if len(self.recent) >= subs:
                last = list(self.recent)[-subs:]
                out.append(sum(e for e, _ in last) / max(sum(k for _, k in last), 1))

    def _sliding(self, subs: int) -> Optional[float]:
        if not self.recent:
            return None
        energy = sum(e for e, _ in list(self.recent)[-subs:])
        return _lufs(energy / (self.rate / 10.0 * subs))

    def integrated_lufs(self) -> Optional[float]:
        def above(gate: float) -> List[float]:
            return [z for z in self.blocks if _lufs(z) is not None and _lufs(z) > gate]

        gated = above(ABSOLUTE_GATE_LUFS)
        if not gated:
            return None
        relative = _lufs(sum(gated) / len(gated)) + RELATIVE_GATE_LU
        gated = above(max(ABSOLUTE_GATE_LUFS, relative))
        return _lufs(sum(gated) / len(gated)) if gated else None

    def loudness_range_lu(self) -> Optional[float]:
        kept = [z for z in self.short_terms if _lufs(z) is not None and _lufs(z) > ABSOLUTE_GATE_LUFS]
        if not kept:
            return None
        gate = _lufs(sum(kept) / len(kept)) + LRA_RELATIVE_GATE_LU
        levels = sorted(_lufs(z) for z in kept if _lufs(z) > gate)
        if not levels:
            return None
        return _percentile(levels, 95.0) - _percentile(levels, 10.0)

    def true_peak_dbtp(self) -> Optional[float]:
        if not self.true_peak:
            return None
        return 20.0 * math.log10(self.peak) if self.peak > 0.0 else None

    def measurement(self) -> Dict[str, Optional[float]]:
        return {
            "integrated_lufs": self.integrated_lufs(),
            "loudness_range_lu": self.loudness_range_lu(),
            "momentary_lufs": self._sliding(BLOCK_SUBS),
            "short_term_lufs": self._sliding(SHORT_TERM_SUBS),
            "true_peak_dbtp": self.true_peak_dbtp(),
        }


def normalising_gain(m: Mapping[str, Optional[float]], target: float, ceiling: float) -> Tuple[float, bool]:
    """``(gain_db, peak_limited)`` that brings ``m`` to ``target`` under ``ceiling``."""
    integrated = m["integrated_lufs"]
    if integrated is None:
        return 0.0, False
    gain = target - integrated
    tp = m["true_peak_dbtp"]
    if tp is not None and tp + gain > ceiling:
        return ceiling - tp, True
    return gain, False


class LoudnessKernel:
    """The whole-buffer node."""

    def __init__(self, params: Dict[str, Any]):
        self.mode = params.get("mode") or "normalize"
        self.target = float(params.get("target_lufs", -23.0) if params.get("target_lufs") is not None else -23.0)
        ceiling = params.get("peak_ceiling_dbtp")
        self.ceiling = float(ceiling) if ceiling is not None else -1.0
        self.channel_weights = params.get("channel_weights")
        # Measured when asked for or when the ceiling needs it (``measures_true_peak`` in Rust).
        tp = params.get("true_peak")
        self.true_peak = (True if tp is None else bool(tp)) or self.mode == "normalize"

    def meter_for(self, audio: Audio) -> Meter:
        channels = max(audio.channels, 1)
        if self.channel_weights is None:
            return Meter(audio.sample_rate, default_weights(channels), self.true_peak)
        if len(self.channel_weights) != channels:
            raise InputError(
                f"{TYPE_NAME} has {len(self.channel_weights)} channel_weights but the audio has {channels} channel(s)"
            )
        return Meter(audio.sample_rate, list(self.channel_weights), self.true_peak)

    @staticmethod
    def frames_of(audio: Audio) -> np.ndarray:
        if audio.samples.size == 0:
            return np.zeros((0, max(audio.channels, 1)), np.float32)
        return _as_f32_frames(audio.samples)

    @staticmethod
    def output(audio: Audio, frames: np.ndarray, report: Dict[str, Any]) -> Dict[str, Any]:
        return {"audio": Audio._trusted(_shaped_like(frames, audio.samples), audio.sample_rate), "loudness": report}

    def __call__(self, inputs: Mapping[str, Any]) -> Dict[str, Any]:
        audio = _expect_audio(_one(inputs, TYPE_NAME))
        meter = self.meter_for(audio)
        frames = self.frames_of(audio)
        check_finite(TYPE_NAME, frames.reshape(-1))
        meter.push(frames)
        m = meter.measurement()
        gain, limited = normalising_gain(m, self.target, self.ceiling) if self.mode == "normalize" else (0.0, False)
        if gain != 0.0:
            frames = frames * np.float32(10.0 ** (gain / 20.0))
        report = {
            "integrated_lufs": m["integrated_lufs"],
            "loudness_range_lu": m["loudness_range_lu"],
            "true_peak_dbtp": m["true_peak_dbtp"],
            "gain_db": float(gain),
            "peak_limited": limited,
        }
        return self.output(audio, frames, report)


class LoudnessStream(LoudnessKernel):
    """One streaming session's ``LoudnessNode`` (``LoudnessNode::chunk`` in Rust)."""

    def __init__(self, params: Dict[str, Any]):
        super().__init__(params)
        self.meter: Optional[Meter] = None
        self.gain = 0.0
        self.last: Optional[Audio] = None

    def chunk(self, audio: Audio, last: bool) -> Dict[str, Any]:
        if self.meter is not None and (self.meter.rate, self.meter.channels) != (audio.sample_rate, max(audio.channels, 1)):
            raise InputError(
                f"this stream started with audio at {self.meter.rate} Hz and {self.meter.channels} channel(s); a chunk "
                f"at {audio.sample_rate} Hz with {audio.channels} channel(s) cannot continue it"
            )
        fresh = self.meter_for(audio) if self.meter is None else None
        frames = self.frames_of(audio)
        check_finite(TYPE_NAME, frames.reshape(-1))
        if fresh is not None:
            self.meter, self.gain = fresh, 0.0
        chunk_peak = self.meter.push(frames)
        m = self.meter.measurement()
        limited = False
        gain_after = self.gain
        if self.mode == "normalize":
            if m["integrated_lufs"] is not None:
                gain_after = self.target - m["integrated_lufs"]
            g0, g1 = 10.0 ** (self.gain / 20.0), 10.0 ** (gain_after / 20.0)
            limit = 10.0 ** ((self.ceiling - 20.0 * math.log10(chunk_peak)) / 20.0) if chunk_peak > 0.0 else math.inf
            limited = max(g0, g1) > limit
            n = frames.shape[0]
            ramp = np.minimum(g0 + (g1 - g0) * np.arange(1, n + 1) / max(n, 1), limit).astype(np.float32)
            frames = frames * ramp[:, None]
            self.gain = gain_after
        report = {
            "momentary_lufs": m["momentary_lufs"],
            "short_term_lufs": m["short_term_lufs"],
            "integrated_lufs": m["integrated_lufs"],
            "loudness_range_lu": m["loudness_range_lu"] if last else None,
            "true_peak_dbtp": m["true_peak_dbtp"],
            "gain_db": float(gain_after) if self.mode == "normalize" else 0.0,
            "peak_limited": limited,
        }
        self.last = audio
        return self.output(audio, frames, report)

    def push(self, inputs: Mapping[str, Any]) -> Dict[str, Any]:
        return self.chunk(_expect_audio(_one(inputs, TYPE_NAME)), last=False)

    def finish(self, inputs: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
        if inputs is not None:
            audio = _expect_audio(_one(inputs, TYPE_NAME))
        elif self.meter is not None:
            shape = (0,) if self.last is None or self.last.samples.ndim == 1 else (0, self.meter.channels)
            audio = Audio._trusted(np.zeros(shape, np.float32), self.meter.rate)
        else:
            return None
        try:
            return self.chunk(audio, last=True)
        finally:
            self.meter = None
