"""Pure-numpy twin of the native ``SileroVADNode`` (src/nodes/silero_vad.rs, src/nodes/silero/):
the Silero VAD v6 network and silero-vad's timestamp post-processing, step by step.

Used where the native extension is unavailable and as a second implementation in tests. It is
slow (a Python loop over the LSTM steps) but computes in float64, so its probabilities sit within
~1e-6 of onnxruntime's, as the native f32 ones do.

The network, per chunk of ``W`` new samples (512 at 16 kHz, 256 at 8 kHz) with the stream's
previous ``C`` samples (64 / 32; zeros at the start) in front of them:
  * reflect-pad ``C`` samples on the right; frames of ``2C·2`` samples (256 / 128) with a hop of
    half that; periodic Hann window; real FFT; magnitude (4 frames of 129 / 65 bins);
  * conv1d k=3 pad=1 with strides 1, 2, 2, 1 (channels 128, 64, 64, 128), each followed by ReLU;
  * one LSTM cell (PyTorch gate order i, f, g, o) over the chunks, state carried across them;
  * ReLU, a 1x1 convolution, sigmoid: the chunk's speech probability.
The last chunk of a buffer is zero-padded to ``W`` samples, as ``get_speech_timestamps`` does.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

#: New samples per chunk, context samples and STFT length per supported rate.
GEOMETRY = {16000: (512, 64, 256), 8000: (256, 32, 128)}
HIDDEN = 128
#: Silero's default post-processing params (get_speech_timestamps).
DEFAULTS = {
    "threshold": 0.5,
    "min_speech_duration_ms": 250,
    "min_silence_duration_ms": 100,
    "speech_pad_ms": 30,
    "max_speech_duration_s": None,
}
#: get_speech_timestamps' fixed ``min_silence_at_max_speech`` (ms).
MIN_SILENCE_AT_MAX_SPEECH_MS = 98

_WEIGHTS_NAME = "silero_vad_v6.safetensors"
_weights_cache: Dict[int, Dict[str, np.ndarray]] = {}


def _weights_bytes() -> bytes:
    """The shipped weights: the repository's file in a source checkout, else the copy embedded in
    the native extension (an installed wheel carries the extension, not the assets folder)."""
    here = Path(__file__).resolve()
    for root in here.parents:
        candidate = root / "assets" / "silero_vad" / _WEIGHTS_NAME
        if candidate.is_file():
            return candidate.read_bytes()
    try:
        from .. import _native  # type: ignore[attr-defined]

        return bytes(_native.silero_weights())
    except (ImportError, AttributeError) as e:
        raise RuntimeError(
            f"the Silero VAD weights ({_WEIGHTS_NAME}) are neither in assets/silero_vad/ above "
            f"{here.parent} nor in the native extension ({e})"
        ) from None


def parse_safetensors(data: bytes) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """Tensors (float32) and metadata of a safetensors file."""
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8 : 8 + n].decode())
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise ValueError(f"tensor {name}: dtype {info['dtype']}, expected F32")
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[base + a : base + b], dtype="<f4").reshape(info["shape"])
    return out, meta


def weights(rate: int) -> Dict[str, np.ndarray]:
    """The network's tensors for ``rate`` (16000 or 8000), float64, loaded once."""
    if rate not in _weights_cache:
        tensors, _ = parse_safetensors(_weights_bytes())
        prefix = "16k." if rate == 16000 else "8k."
        _weights_cache[rate] = {k[len(prefix) :]: v.astype(np.float64) for k, v in tensors.items() if k.startswith(prefix)}
    return _weights_cache[rate]


def _conv1d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int) -> np.ndarray:
    """x [N, Cin, T], w [Cout, Cin, 3], padding 1 -> ReLU(conv) [N, Cout, T']."""
    n, cin, t = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1)))
    t_out = (t + 2 - 3) // stride + 1
    cols = np.stack([xp[:, :, k : k + stride * (t_out - 1) + 1 : stride] for k in range(3)], axis=-1)  # N, Cin, T', 3
    y = np.einsum("nctk,ock->not", cols, w) + b[None, :, None]
    return np.maximum(y, 0.0)


def front_end(windows: np.ndarray, rate: int) -> np.ndarray:
    """Chunks with their context, [N, C + W] -> encoder features [N, 128] (no state involved)."""
    w_new, ctx, n_fft = GEOMETRY[rate]
    wt = weights(rate)
    x = np.asarray(windows, dtype=np.float64)
    padded = np.concatenate([x, x[:, -2 : -2 - ctx : -1]], axis=1)
    hop = n_fft // 2
    n_frames = (padded.shape[1] - n_fft) // hop + 1
    frames = np.stack([padded[:, t * hop : t * hop + n_fft] for t in range(n_frames)], axis=1)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    mag = np.abs(np.fft.rfft(frames * hann, axis=-1)).transpose(0, 2, 1)  # N, bins, frames
    h = _conv1d(mag, wt["conv1.weight"], wt["conv1.bias"], 1)
    h = _conv1d(h, wt["conv2.weight"], wt["conv2.bias"], 2)
    h = _conv1d(h, wt["conv3.weight"], wt["conv3.bias"], 2)
    h = _conv1d(h, wt["conv4.weight"], wt["conv4.bias"], 1)
    return h[:, :, 0]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def decode(features: np.ndarray, rate: int, state: np.ndarray) -> np.ndarray:
    """The LSTM over the chunks' features [N, 128] in order, updating ``state`` ([2, 128]: h, c)
    in place; returns the N probabilities (float32)."""
    wt = weights(rate)
    gates_in = features @ wt["lstm.weight_ih"].T + wt["lstm.bias_ih"] + wt["lstm.bias_hh"]
    w_hh = wt["lstm.weight_hh"]
    w_out = wt["out.weight"].reshape(-1)
    b_out = float(wt["out.bias"][0])
    h, c = state[0].copy(), state[1].copy()
    out = np.empty(features.shape[0], dtype=np.float32)
    for n in range(features.shape[0]):
        g = gates_in[n] + w_hh @ h
        i, f, gg, o = _sigmoid(g[:HIDDEN]), _sigmoid(g[HIDDEN : 2 * HIDDEN]), np.tanh(g[2 * HIDDEN : 3 * HIDDEN]), _sigmoid(g[3 * HIDDEN :])
        c = f * c + i * gg
        h = o * np.tanh(c)
        out[n] = _sigmoid(float(np.maximum(h, 0.0) @ w_out) + b_out)
    state[0], state[1] = h, c
    return out


class SileroState:
    """Streaming network: ``push`` mono float samples, get the probabilities of the chunks they
    complete; ``finish`` zero-pads a partial last chunk and returns its probability."""

    def __init__(self, sample_rate: int):
        if sample_rate not in GEOMETRY:
            raise ValueError(f"Silero VAD runs at 8000 or 16000 Hz, got {sample_rate}")
        self.sample_rate = sample_rate
        self.window, self.context, _ = GEOMETRY[sample_rate]
        self.reset()

    def reset(self) -> None:
        self.state = np.zeros((2, HIDDEN))
        self.ctx = np.zeros(self.context, dtype=np.float32)
        self.pending = np.zeros(0, dtype=np.float32)
        self.samples_seen = 0

    def _run(self, x: np.ndarray) -> np.ndarray:
        """Whole chunks ``x`` (a multiple of W samples) -> their probabilities."""
        n = x.size // self.window
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        stream = np.concatenate([self.ctx, x])
        idx = np.arange(n)[:, None] * self.window + np.arange(self.context + self.window)[None, :]
        probs = decode(front_end(stream[idx], self.sample_rate), self.sample_rate, self.state)
        self.ctx = stream[-self.context :].copy()
        return probs

    def push(self, samples: np.ndarray) -> np.ndarray:
        x = np.concatenate([self.pending, np.asarray(samples, dtype=np.float32).reshape(-1)])
        self.samples_seen += int(np.asarray(samples).size)
        whole = x.size // self.window * self.window
        self.pending = x[whole:].copy()
        return self._run(x[:whole])

    def finish(self) -> np.ndarray:
        if self.pending.size == 0:
            return np.zeros(0, dtype=np.float32)
        x = np.zeros(self.window, dtype=np.float32)
        x[: self.pending.size] = self.pending
        self.pending = np.zeros(0, dtype=np.float32)
        return self._run(x)


def probabilities(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """One speech probability per chunk of a whole mono buffer (the last chunk zero-padded)."""
    st = SileroState(sample_rate)
    return np.concatenate([st.push(samples), st.finish()])


class Timestamper:
    """silero-vad's ``get_speech_timestamps_from_probs``, fed one probability at a time.

    Segments (in samples) come out as soon as nothing later can change them, so a stream gives
    exactly the segments of the whole buffer. The twin of ``src/nodes/silero/timestamps.rs``."""

    def __init__(self, sample_rate: int, threshold: float = 0.5, neg_threshold: Optional[float] = None,
                 min_speech_duration_ms: int = 250, min_silence_duration_ms: int = 100, speech_pad_ms: int = 30,
                 max_speech_duration_s: Optional[float] = None):
        self.window = GEOMETRY[sample_rate][0]
        self.threshold = threshold
        self.neg_threshold = max(threshold - 0.15, 0.01) if neg_threshold is None else neg_threshold
        self.min_speech = sample_rate * min_speech_duration_ms / 1000
        self.pad = sample_rate * speech_pad_ms // 1000
        max_s = math.inf if max_speech_duration_s is None else max_speech_duration_s
        self.max_speech = sample_rate * max_s - self.window - 2 * self.pad
        self.min_silence = sample_rate * min_silence_duration_ms / 1000
        self.min_silence_at_max = sample_rate * MIN_SILENCE_AT_MAX_SPEECH_MS / 1000
        self.n = 0
        #: The stream's length in samples once known: padding never reaches past it.
        self.length = math.inf
        self.start: Optional[int] = None  # the open speech's start: triggered
        self.temp_end = 0
        self.prev_end = 0
        self.next_start = 0
        self.possible_ends: List[Tuple[int, int]] = []
        # A closed speech whose end padding waits for the next one: (padded start, raw end).
        self.held: Optional[Tuple[int, int]] = None

    def _close(self, start: int, end: int) -> List[Tuple[int, int]]:
        """A speech closes: it becomes the held one; the one held before is final now."""
        out = []
        if self.held is None:
            padded_start = max(0, start - self.pad)
        else:
            h_start, h_end = self.held
            silence = start - h_end
            if silence < 2 * self.pad:
                out.append((h_start, h_end + silence // 2))
                padded_start = max(0, start - silence // 2)
            else:
                out.append((h_start, self._pad_end(h_end)))
                padded_start = max(0, start - self.pad)
        self.held = (padded_start, end)
        return out

    def push(self, p: float) -> List[Tuple[int, int]]:
        """One chunk's probability; returns the segments that became final."""
        out = self._step(float(p))
        self.n += 1
        # Nothing that starts later than `earliest` can pull the held speech's end in.
        earliest = self.start if self.start is not None else self.n * self.window
        if self.held is not None and earliest - self.held[1] >= 2 * self.pad:
            out.append((self.held[0], self._pad_end(self.held[1])))
            self.held = None
        return out

    def _pad_end(self, end: int) -> int:
        # silero-vad clamps only the last speech to the audio's length; a speech followed by
        # another never reaches it, so clamping every one is the same.
        return int(min(self.length, end + self.pad))

    def set_length(self, length: int) -> None:
        """The stream's length in samples: call before pushing the last (zero-padded) chunk."""
        self.length = length

    def _step(self, p: float) -> List[Tuple[int, int]]:
        out: List[Tuple[int, int]] = []
        cur = self.window * self.n
        if p >= self.threshold and self.temp_end:
            sil = cur - self.temp_end
            if sil > self.min_silence_at_max:
                self.possible_ends.append((self.temp_end, sil))
            self.temp_end = 0
            if self.next_start < self.prev_end:
                self.next_start = cur
        if p >= self.threshold and self.start is None:
            self.start = cur
            return out
        if self.start is not None and cur - self.start > self.max_speech:
            if self.possible_ends:
                self.prev_end, dur = max(self.possible_ends, key=lambda x: x[1])
                out += self._close(self.start, self.prev_end)
                self.next_start = self.prev_end + dur
                self.start = self.next_start if self.next_start < self.prev_end + cur else None
                self.prev_end = self.next_start = self.temp_end = 0
                self.possible_ends = []
            else:
                out += self._close(self.start, cur)
                self.start = None
                self.prev_end = self.next_start = self.temp_end = 0
                self.possible_ends = []
                return out
        if p < self.neg_threshold and self.start is not None:
            if not self.temp_end:
                self.temp_end = cur
            if cur - self.temp_end < self.min_silence:
                return out
            if self.temp_end - self.start > self.min_speech:
                out += self._close(self.start, self.temp_end)
            self.start = None
            self.prev_end = self.next_start = self.temp_end = 0
            self.possible_ends = []
        return out

    def horizon(self) -> int:
        """Every segment still to come starts at or after this sample."""
        if self.held is not None:
            return self.held[0]
        earliest = self.start if self.start is not None else self.n * self.window
        return max(0, earliest - self.pad)

    def finish(self, length: int) -> List[Tuple[int, int]]:
        """The end of the stream (``length`` samples): the open and held speeches close."""
        self.length = length
        out = []
        if self.start is not None and length - self.start > self.min_speech:
            out += self._close(self.start, length)
        self.start = None
        if self.held is not None:
            out.append((self.held[0], self._pad_end(self.held[1])))
            self.held = None
        return out


def speech_timestamps(probs: np.ndarray, length: int, sample_rate: int, **params) -> List[Tuple[int, int]]:
    """Segments in samples, as ``get_speech_timestamps`` gives them for these probabilities."""
    t = Timestamper(sample_rate, **params)
    t.set_length(length)
    out = []
    for p in probs:
        out += t.push(p)
    return out + t.finish(length)


def frames_from_segments(segments: List[Tuple[int, int]], first: int, count: int, window: int) -> np.ndarray:
    """Chunk decisions: chunk ``i`` is speech when its centre sample lies in a segment."""
    centres = (np.arange(first, first + count) * window + window // 2)[:, None]
    if not segments:
        return np.zeros(count, dtype=bool)
    seg = np.asarray(segments, dtype=np.int64)
    return np.any((centres >= seg[None, :, 0]) & (centres < seg[None, :, 1]), axis=1)


#: Chunk length in ms at both rates: one frame decision and one probability per chunk.
FRAME_MS = 32


class SileroVad:
    """One stream's (or whole buffer's) detector: the network and the decisions, as the native
    node's ``SileroVad`` (src/nodes/silero_vad.rs). ``push`` and ``finish`` return
    ``(probabilities, frames, segments)``: the chunks computed, the frames decided (in
    timestamps mode a frame waits until no later segment can cover it) and the segments that
    became final, in seconds."""

    def __init__(self, sample_rate: int, mode: str = "timestamps", threshold: float = 0.5, **stamp_params):
        self.net = SileroState(sample_rate)
        self.mode = mode
        self.threshold = threshold
        self.stamp_params = dict(stamp_params, threshold=threshold)
        self.reset()

    def reset(self) -> None:
        self.net.reset()
        self.stamps = Timestamper(self.net.sample_rate, **self.stamp_params)
        self.spans: List[Tuple[int, int]] = []
        self.probs = 0
        self.frames = 0
        self.open_since: Optional[int] = None

    def _sec(self, sample: int) -> float:
        return sample / self.net.sample_rate

    def push(self, samples: np.ndarray):
        probs = self.net.push(samples)
        frames, segments = self._decide(probs)
        return probs, frames, segments

    def finish(self):
        length = self.net.samples_seen
        self.stamps.set_length(length)
        probs = self.net.finish()
        frames, segments = self._decide(probs)
        w = self.net.window
        if self.mode == "timestamps":
            self._take(self.stamps.finish(length), segments)
            frames += self._decide_frames(self.probs)
        elif self.open_since is not None:
            segments.append((self._sec(self.open_since * w), self._sec(min(self.probs * w, length))))
        self.reset()
        return probs, frames, segments

    def _take(self, spans, segments) -> None:
        for s, e in spans:
            segments.append((self._sec(s), self._sec(e)))
            self.spans.append((s, e))

    def _decide(self, probs: np.ndarray):
        w = self.net.window
        frames: List[bool] = []
        segments: List[Tuple[float, float]] = []
        if self.mode == "raw":
            for k, p in enumerate(probs):
                speech = float(p) >= self.threshold
                i = self.probs + k
                if speech and self.open_since is None:
                    self.open_since = i
                elif not speech and self.open_since is not None:
                    segments.append((self._sec(self.open_since * w), self._sec(i * w)))
                    self.open_since = None
                frames.append(speech)
            self.probs += len(probs)
            self.frames = self.probs
            return frames, segments
        spans = []
        for p in probs:
            spans += self.stamps.push(p)
        self.probs += len(probs)
        self._take(spans, segments)
        horizon = self.stamps.horizon()
        decided = min(-(-(horizon - w // 2) // w) if horizon > w // 2 else 0, self.probs)
        frames += self._decide_frames(max(decided, self.frames))
        return frames, segments

    def _decide_frames(self, until: int) -> List[bool]:
        w = self.net.window
        out = []
        while self.frames < until:
            centre = self.frames * w + w // 2
            while self.spans and self.spans[0][1] <= centre:
                self.spans.pop(0)
            out.append(bool(self.spans) and self.spans[0][0] <= centre)
            self.frames += 1
        return out


def detect(samples: np.ndarray, sample_rate: int, **params):
    """``(probabilities, frames, segments)`` for one whole mono buffer."""
    vad = SileroVad(sample_rate, **params)
    p1, f1, s1 = vad.push(samples)
    p2, f2, s2 = vad.finish()
    return np.concatenate([p1, p2]), np.asarray(f1 + f2, dtype=bool), s1 + s2
