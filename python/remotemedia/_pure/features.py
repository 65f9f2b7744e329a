"""Pure-numpy twins of the native feature nodes: ``LogMelNode`` (src/nodes/log_mel.rs), ``FbankNode``
and ``MfccNode`` (src/nodes/fbank.rs, mfcc.rs on the Kaldi front end in src/nodes/kaldi.rs), with
the framing of src/nodes/spectral.rs, so whole buffers and streams give the same frames as the
engine. The native nodes compute in f32, these in f64: values agree to ~1e-5.

Each ``*Stream`` class is one node instance's state: ``push(inputs)`` returns the frames a chunk
completes, ``finish(inputs)`` the rest, ``whole(inputs)`` one buffer's features. The node's params
arrive validated, with their defaults, from the engine's registry (``schema.json``).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from ..errors import InputError
from ..payloads import Features
from .builtin import _as_f32_frames, _expect_audio, _one, _rust_f32
from .schema import rust_display_f64 as _rust_f64

__all__ = ["FrameStream", "LogMelStream", "FbankStream", "MfccStream", "STREAMS", "slaney_filters", "kaldi_filters"]

_EPS32 = float(np.finfo(np.float32).eps)


# ---- framing (src/nodes/spectral.rs) ----


def reflect_index(idx: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Position ``idx`` reflected into ``0..n``: ``"numpy"`` mirrors without the edge sample
    (np.pad's ``reflect``), ``"kaldi"`` repeats it; as often as needed."""
    if mode == "numpy":
        if n == 1:
            return np.zeros_like(idx)
        period = 2 * (n - 1)
        m = np.mod(idx, period)
        return np.where(m >= n, period - m, m)
    m = np.mod(idx, 2 * n)
    return np.where(m >= n, 2 * n - 1 - m, m)


class FrameStream:
    """Twin of ``spectral::FrameStream``: frame ``i`` covers samples ``i*shift + offset ..+ length``;
    ``push`` returns the frames whose samples have all arrived, ``finish`` the rest (reflection, or
    zeros up to ``exact_len``)."""

    def __init__(self, length: int, shift: int, offset: int, reflect: str, count: str, exact_len: Optional[int] = None):
        self.length, self.shift, self.offset = length, shift, offset
        self.reflect, self.count, self.exact_len = reflect, count, exact_len
        self.reset()

    def reset(self) -> None:
        self.kept = np.zeros(0, dtype=np.float32)
        self.base = 0
        self.received = 0
        self.next = 0

    def frames(self, n: int) -> int:
        n = self.exact_len if self.exact_len is not None else n
        if self.count == "whisper":
            return n // self.shift
        if self.count == "snip":
            return 0 if n < self.length else 1 + (n - self.length) // self.shift
        return (n + self.shift // 2) // self.shift

    def _read(self, first: int, last: int, end: Optional[int]) -> np.ndarray:
        starts = np.arange(first, last, dtype=np.int64) * self.shift + self.offset
        idx = starts[:, None] + np.arange(self.length, dtype=np.int64)[None, :]
        n = end if end is not None else self.received
        j = reflect_index(idx, max(n, 1), self.reflect)
        inside = (j < self.received) & (j >= self.base) & (n > 0)
        vals = self.kept[np.clip(j - self.base, 0, max(self.kept.size - 1, 0))] if self.kept.size else np.zeros(idx.shape, np.float32)
        return np.where(inside, vals, np.float32(0.0)).astype(np.float32)

    def push(self, chunk: np.ndarray) -> np.ndarray:
        if self.exact_len is not None:
            chunk = chunk[: max(self.exact_len - self.received, 0)]
        self.kept = np.concatenate([self.kept, chunk.astype(np.float32, copy=False)])
        self.received += chunk.size
        limit = self.frames(self.exact_len) if self.exact_len is not None else None
        # Frames ending inside what has arrived, once a frame reaching before the start has every
        # sample its reflection reads.
        last = (self.received - self.length - self.offset) // self.shift + 1
        if limit is not None:
            last = min(last, limit)
        start = self.next * self.shift + self.offset
        if start < 0 and -start + 1 > self.received:
            last = self.next
        last = max(last, self.next)
        out = self._read(self.next, last, None)
        self.next = last
        next_start = max(self.next * self.shift + self.offset, 0)
        reach = max(self.received - 2 * (self.length + self.shift), 0)
        keep_from = max(min(next_start, reach), self.base)
        self.kept = self.kept[keep_from - self.base :]
        self.base = keep_from
        return out

    def finish(self) -> np.ndarray:
        total = self.frames(self.received)
        end = self.exact_len if self.exact_len is not None else self.received
        out = self._read(self.next, max(total, self.next), end)
        self.reset()
        return out


def _power(frames: np.ndarray, n_fft: int, magnitude: bool = False) -> np.ndarray:
    spec = np.fft.rfft(frames.astype(np.float64), n=n_fft, axis=-1)
    power = spec.real**2 + spec.imag**2
    return np.sqrt(power) if magnitude else power


# ---- LogMelNode ----

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
WINDOW_FRAMES = 3000


def _hz_to_mel_slaney(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-300) / 1000.0) / (math.log(6.4) / 27.0), f / (200.0 / 3.0))


def _mel_to_hz_slaney(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((math.log(6.4) / 27.0) * (m - 15.0)), (200.0 / 3.0) * m)


def slaney_filters(sample_rate: float, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """librosa's ``filters.mel`` defaults (Slaney scale and norm), ``(n_mels, n_fft//2 + 1)`` float32."""
    bins = n_fft // 2 + 1
    freqs = np.arange(bins) * (sample_rate / 2.0) / (bins - 1)
    lo, hi = _hz_to_mel_slaney(fmin), _hz_to_mel_slaney(fmax)
    points = _mel_to_hz_slaney(lo + (hi - lo) * np.arange(n_mels + 2) / (n_mels + 1))
    left, centre, right = points[:-2, None], points[1:-1, None], points[2:, None]
    rising = (freqs[None, :] - left) / (centre - left)
    falling = (right - freqs[None, :]) / (right - centre)
    return (np.maximum(np.minimum(rising, falling), 0.0) * (2.0 / (right - left))).astype(np.float32)


def _periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def _mono(audio: Any, node: str) -> np.ndarray:
    """The Rust nodes' input checks and words (spectral::mono_samples)."""
    if audio.channels != 1:
        raise InputError(f"{node} needs mono audio, received {audio.channels} channels; pick or mix down one channel before it")
    x = _as_f32_frames(audio.samples)[:, 0] if audio.samples.size else np.zeros(0, dtype=np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{node} input has a non-finite sample ({_rust_f32(x[i])}) at index {i}")
    return x


def _features(values: np.ndarray, bins: int, rate: float) -> Features:
    return Features(np.asarray(values, dtype=np.float32).reshape(-1, bins), rate)


class LogMelStream:
    """One ``LogMelNode`` instance: Whisper's log-mel of a signal pushed whole or in chunks."""

    def __init__(self, params: Dict[str, Any]):
        self.n_mels = int(params["n_mels"])
        self.normalize = params["normalize"]
        pad = params.get("pad_or_trim_s")
        exact = int(round(float(pad) * SAMPLE_RATE)) if pad is not None else None
        self.frames = FrameStream(N_FFT, HOP, -N_FFT // 2, "numpy", "whisper", exact)
        self.filters = slaney_filters(SAMPLE_RATE, N_FFT, self.n_mels, 0.0, SAMPLE_RATE / 2.0).astype(np.float64)
        self.window = _periodic_hann(N_FFT)
        self.held = np.zeros((0, self.n_mels))

    def _input(self, inputs: Mapping[str, Any]) -> np.ndarray:
        audio = _expect_audio(_one(inputs, "LogMelNode"))
        if audio.sample_rate != SAMPLE_RATE:
            raise InputError(
                f"LogMelNode needs 16000 Hz audio (Whisper's rate), received {audio.sample_rate} Hz; "
                "put an AudioResampleNode (output_rate: 16000) before it"
            )
        return _mono(audio, "LogMelNode")

    def _step(self, frames: np.ndarray, end: bool) -> Features:
        power = _power(frames * self.window, N_FFT)
        logs = np.log10(np.maximum(power @ self.filters.T, 1e-10))
        if self.normalize == "none":
            out = logs
        else:
            self.held = np.concatenate([self.held, logs])
            if end:
                ready = self.held.shape[0]
            elif self.normalize == "window":
                ready = self.held.shape[0] // WINDOW_FRAMES * WINDOW_FRAMES
            else:
                ready = 0
            out, self.held = self.held[:ready], self.held[ready:]
            step = WINDOW_FRAMES if self.normalize == "window" else max(out.shape[0], 1)
            out = out.copy()
            for a in range(0, out.shape[0], step):
                w = out[a : a + step]
                w[:] = (np.maximum(w, w.max() - 8.0) + 4.0) / 4.0
        if end:
            self.held = np.zeros((0, self.n_mels))
        return _features(out, self.n_mels, SAMPLE_RATE / HOP)

    def push(self, inputs: Mapping[str, Any]) -> Features:
        return self._step(self.frames.push(self._input(inputs)), end=False)

    def finish(self, inputs: Optional[Mapping[str, Any]]) -> Features:
        head = self.push(inputs) if inputs is not None else None
        tail = self._step(self.frames.finish(), end=True)
        return tail if head is None else _features(np.concatenate([head, tail]), self.n_mels, tail.frame_rate)

    def whole(self, inputs: Mapping[str, Any]) -> Features:
        self.frames.reset()
        self.held = np.zeros((0, self.n_mels))
        return self.finish(inputs)


# ---- the Kaldi front end (src/nodes/kaldi.rs) ----


def kaldi_window(kind: str, n: int, blackman_coeff: float) -> np.ndarray:
    a = 2.0 * np.pi / n if kind == "hann" else 2.0 * np.pi / (n - 1)
    x = a * np.arange(n)
    if kind in ("hanning", "hann"):
        return 0.5 - 0.5 * np.cos(x)
    if kind == "sine":
        return np.sin(0.5 * x)
    if kind == "hamming":
        return 0.54 - 0.46 * np.cos(x)
    if kind == "povey":
        return (0.5 - 0.5 * np.cos(x)) ** 0.85
    if kind == "blackman":
        return blackman_coeff - 0.5 * np.cos(x) + (0.5 - blackman_coeff) * np.cos(2.0 * x)
    return np.ones(n)


def kaldi_filters(sample_rate: float, n_fft: int, n_mels: int, low: float, high: float) -> np.ndarray:
    """Kaldi's mel banks in f32, ``(n_mels, n_fft//2 + 1)`` (the Nyquist bin gets no weight)."""
    f32 = np.float32

    def mel(f):
        return f32(1127.0) * np.log(f32(1.0) + np.asarray(f, dtype=f32) / f32(700.0))

    fft_bins = n_fft // 2
    width = f32(sample_rate) / f32(n_fft)
    lo, hi = mel(low), mel(high)
    delta = (hi - lo) / f32(n_mels + 1)
    x = mel(width * np.arange(fft_bins, dtype=f32))
    out = np.zeros((n_mels, fft_bins + 1), dtype=f32)
    for m in range(n_mels):
        left, centre, right = lo + f32(m) * delta, lo + f32(m + 1) * delta, lo + f32(m + 2) * delta
        inside = (x > left) & (x < right)
        w = np.where(x <= centre, (x - left) / (centre - left), (right - x) / (right - centre))
        out[m, :fft_bins] = np.where(inside, w, f32(0.0))
    return out


class _Gauss:
    """The native dither's generator (xorshift64*, Box-Muller), value for value."""

    SEED = 0x9E3779B97F4A7C15
    MASK = (1 << 64) - 1

    def __init__(self) -> None:
        self.s = self.SEED

    def _uniform(self) -> float:
        s = self.s
        s ^= s >> 12
        s ^= (s << 25) & self.MASK
        s ^= s >> 27
        self.s = s
        return (float(((s * 0x2545F4914F6CDD1D) & self.MASK) >> 11) + 0.5) / float(1 << 53)

    def normal(self, count: int) -> np.ndarray:
        out = np.empty(count, dtype=np.float32)
        for i in range(count):
            u, v = self._uniform(), self._uniform()
            out[i] = math.sqrt(-2.0 * math.log(u)) * math.cos(2.0 * math.pi * v)
        return out


class _FrontEnd:
    """Twin of ``kaldi::FrontEnd`` for one sample rate, with the same checks and words."""

    def __init__(self, p: Dict[str, Any], rate: int, mel_bins: int):
        f32 = np.float32
        self.p, self.rate = p, rate
        length = int(f32(rate) * f32(0.001) * f32(p["frame_length_ms"]))
        shift = int(f32(rate) * f32(0.001) * f32(p["frame_shift_ms"]))
        if length < 2 or shift < 1:
            raise InputError(
                f"frame_length_ms {_rust_f64(p['frame_length_ms'])} / frame_shift_ms {_rust_f64(p['frame_shift_ms'])} "
                f"give frames of {length} / {shift} samples at {rate} Hz; need at least 2 / 1"
            )
        padded = 1 << (length - 1).bit_length() if p["round_to_power_of_two"] else length
        if padded % 2:
            raise InputError(
                f"a frame of {length} samples (frame_length_ms {_rust_f64(p['frame_length_ms'])} at {rate} Hz) is odd: "
                "set round_to_power_of_two or choose an even frame length"
            )
        nyquist = f32(0.5) * f32(rate)
        low = f32(p["low_freq"])
        high = f32(p["high_freq"]) if p["high_freq"] > 0 else nyquist + f32(p["high_freq"])
        if low >= nyquist or high <= 0 or high > nyquist or high <= low:
            raise InputError(
                f"mel filters from low_freq {_rust_f64(p['low_freq'])} Hz to high_freq {_rust_f64(p['high_freq'])} Hz "
                f"(= {_rust_f32(high)} Hz) do not fit below the Nyquist frequency {_rust_f32(nyquist)} Hz of {rate} Hz audio"
            )
        self.filters = kaldi_filters(rate, padded, mel_bins, low, high)
        empty = np.flatnonzero(~self.filters.any(axis=1))
        if empty.size:
            raise InputError(
                f"mel filter {int(empty[0])} of {mel_bins} covers no FFT bin ({padded}-point FFT at {rate} Hz from "
                f"{_rust_f32(low)} to {_rust_f32(high)} Hz): use fewer mel bins or a longer frame"
            )
        self.filters = self.filters.astype(np.float64)
        snip = p["snip_edges"]
        self.frames = FrameStream(
            length, shift, 0 if snip else shift // 2 - length // 2, "kaldi", "snip" if snip else "centred"
        )
        self.padded = padded
        self.window = kaldi_window(p["window_type"], length, p["blackman_coeff"])
        self.noise = _Gauss()

    @property
    def frame_rate(self) -> float:
        return self.rate / self.frames.shift

    def step(self, frames: np.ndarray, with_energy: bool, magnitude: bool) -> Tuple[np.ndarray, np.ndarray]:
        p = self.p
        x = frames.astype(np.float64) * p["input_scale"]
        if p["dither"] != 0.0 and x.size:
            x = x + self.noise.normal(x.size).reshape(x.shape).astype(np.float64) * np.float32(p["dither"])
        if p["remove_dc_offset"]:
            x = x - x.mean(axis=1, keepdims=True)
        energy = lambda v: np.log(np.maximum((v * v).sum(axis=1), _EPS32))  # noqa: E731
        energies = energy(x) if with_energy and p["raw_energy"] else np.zeros(x.shape[0])
        c = p["preemph_coeff"]
        if c != 0.0:
            x = np.concatenate([x[:, :1] * (1.0 - c), x[:, 1:] - c * x[:, :-1]], axis=1)
        x = x * self.window
        if with_energy and not p["raw_energy"]:
            energies = energy(x)
        mel = _power(x, self.padded, magnitude) @ self.filters.T
        return mel, energies


class _KaldiStream:
    """Twin of ``kaldi::KaldiNode``: one front end per rate, one stream per session."""

    TYPE = ""

    def __init__(self, params: Dict[str, Any]):
        self.p = params
        self.front: Optional[_FrontEnd] = None
        self.streaming: Optional[int] = None
        log_floor = np.log(np.float32(params["energy_floor"])) if params["energy_floor"] > 0 else None
        self.log_energy_floor = log_floor

    mel_bins = 0
    dim = 0
    use_energy = False
    magnitude = False

    def rows(self, mel: np.ndarray, energies: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _energy(self, energies: np.ndarray) -> np.ndarray:
        return energies if self.log_energy_floor is None else np.maximum(energies, self.log_energy_floor)

    def _run(self, audio: Any) -> Features:
        if audio is not None:
            rate = audio.sample_rate
        elif self.streaming is not None:
            rate = self.streaming
        elif self.front is not None:
            rate = self.front.rate
        else:
            return _features(np.zeros((0, self.dim)), self.dim, 1.0)
        samples = _mono(audio, self.TYPE) if audio is not None else None
        if self.streaming is not None and self.streaming != rate:
            raise InputError(
                f"this stream started with audio at {self.streaming} Hz; a chunk at {rate} Hz cannot continue it"
            )
        if self.front is None or self.front.rate != rate:
            self.front = _FrontEnd(self.p, rate, self.mel_bins)
        front = self.front
        frames = front.frames.push(samples) if samples is not None else front.frames.finish()
        if samples is None:
            front.noise = _Gauss()
        mel, energies = front.step(frames, self.use_energy, self.magnitude)
        return _features(self.rows(mel, energies), self.dim, front.frame_rate)

    def whole(self, inputs: Mapping[str, Any]) -> Features:
        audio = _expect_audio(_one(inputs, self.TYPE))
        self.streaming = None
        if self.front is not None:
            self.front.frames.reset()
            self.front.noise = _Gauss()
        head = self._run(audio)
        tail = self._run(None)
        return _features(np.concatenate([head, tail]), self.dim, head.frame_rate)

    def push(self, inputs: Mapping[str, Any]) -> Features:
        audio = _expect_audio(_one(inputs, self.TYPE))
        out = self._run(audio)
        self.streaming = audio.sample_rate
        return out

    def finish(self, inputs: Optional[Mapping[str, Any]]) -> Optional[Features]:
        head = self.push(inputs) if inputs is not None else None
        if self.streaming is None:
            return head
        tail = self._run(None)
        self.streaming = None
        return tail if head is None else _features(np.concatenate([head, tail]), self.dim, tail.frame_rate)


class FbankStream(_KaldiStream):
    TYPE = "FbankNode"

    def __init__(self, params: Dict[str, Any]):
        super().__init__(params)
        self.mel_bins = int(params["num_mel_bins"])
        self.use_energy = bool(params["use_energy"])
        self.magnitude = not params["use_power"]
        self.dim = self.mel_bins + int(self.use_energy)

    def rows(self, mel: np.ndarray, energies: np.ndarray) -> np.ndarray:
        out = np.log(np.maximum(mel, _EPS32)) if self.p["use_log_fbank"] else mel
        if self.use_energy:
            out = np.concatenate([self._energy(energies)[:, None], out], axis=1)
        return out


class MfccStream(_KaldiStream):
    TYPE = "MfccNode"

    def __init__(self, params: Dict[str, Any]):
        super().__init__(params)
        self.mel_bins = int(params["num_mel_bins"])
        self.dim = ceps = int(params["num_ceps"])
        self.use_energy = bool(params["use_energy"])
        if ceps > self.mel_bins:
            raise InputError(f"param 'num_ceps' ({ceps}) must be at most num_mel_bins ({self.mel_bins})")
        k = np.arange(ceps)[:, None]
        n = np.arange(self.mel_bins)[None, :]
        self.dct = np.sqrt(2.0 / self.mel_bins) * np.cos(np.pi / self.mel_bins * (n + 0.5) * k)
        self.dct[0] = np.sqrt(1.0 / self.mel_bins)
        q = float(params["cepstral_lifter"])
        self.lifter = np.ones(ceps) if q == 0.0 else 1.0 + 0.5 * q * np.sin(np.pi * np.arange(ceps) / q)

    def rows(self, mel: np.ndarray, energies: np.ndarray) -> np.ndarray:
        out = (np.log(np.maximum(mel, _EPS32)) @ self.dct.T) * self.lifter
        if self.use_energy and out.shape[0]:
            out[:, 0] = self._energy(energies)
        return out


#: The stream class of each feature node type (the pure runtime's sessions and kernels).
STREAMS = {"LogMelNode": LogMelStream, "FbankNode": FbankStream, "MfccNode": MfccStream}


def mfcc_check_params(params: Dict[str, Any]) -> List[Tuple[str, str, str]]:
    """MfccNode's cross-param check (src/nodes/mfcc.rs, check_ceps): at most as many cepstra as mel bins."""
    ceps, bins = params.get("num_ceps"), params.get("num_mel_bins")
    if ceps is not None and bins is not None and ceps > bins:
        return [("num_ceps", f"at most num_mel_bins ({bins})", str(ceps))]
    return []
