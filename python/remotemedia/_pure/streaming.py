"""Streaming sessions on the pure-Python runtime: chunk by chunk through the graph, with one
instance of each stateful node (resampler, VAD) per session, as the native engine does.

The chunked resampler is the twin of the native low-latency resampler (``Resampler::low_latency``):
the same filter as the whole-buffer twin (``resample.resample``), with blocks of one filter length
cut from the stream's first frame, so its concatenated output equals the whole-buffer output up to
float rounding; the VAD is the twin's ``VadState`` carried across chunks.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from ..audio import Audio
from ..errors import InputError
from ..payloads import VadResult
from . import silero
from .builtin import (
    _as_f32_frames,
    _expect_audio,
    _one,
    _shaped_like,
    check_input_rate,
    check_resampler,
    check_resampler_input,
    cut_clips,
    expect_vad,
    silero_mono,
    silero_params,
)
from .denoise import DenoiseStream
from .filter import FilterStream
from .loudness import LoudnessStream
from .resample import _filter_spectrum, block_sizes, output_frames
from . import features
from .vad import VadState, _to_mono

__all__ = ["StreamResampler", "PureSession"]


def _frames(samples: np.ndarray) -> np.ndarray:
    """(frames, channels) float32; an empty chunk (a resampler that completed no frame yet) too."""
    if samples.size == 0:
        return np.zeros((0, samples.shape[1] if samples.ndim == 2 else 1), dtype=np.float32)
    return _as_f32_frames(samples)


class StreamResampler:
    """Chunked twin of ``resample.resample``: ``push`` (frames, channels) float32 chunks, get the
    output frames completed so far; ``finish`` appends the rest, so the stream totals
    ``round(frames * out / in)`` frames."""

    def __init__(self, input_rate: int, output_rate: int, channels: int, quality: str = "high"):
        self.input_rate, self.output_rate, self.channels = input_rate, output_rate, channels
        self.same = input_rate == output_rate
        if not self.same:
            self.fft_in, self.fft_out = block_sizes(input_rate, output_rate, quality)
            # Transforms of two filter lengths, as the native low-latency resampler
            # (Resampler::low_latency): blocks of one filter length.
            self.spec = _filter_spectrum(self.fft_in, self.fft_out, 2 * self.fft_in)
            self.keep = self.fft_in + 1 if self.fft_in < self.fft_out else self.fft_out
            self.pending = np.zeros((channels, 0))
            # The second half of the last block's inverse transform, added to the next block.
            self.tail = np.zeros((channels, self.fft_out))
            self.to_trim = self.fft_out // 2
        self.frames_in = 0
        self.frames_out = 0

    def _blocks(self, x: np.ndarray, limit: Optional[int] = None) -> np.ndarray:
        """Resamples whole blocks ``x`` (channels, k * fft_in); returns the trimmed output frames."""
        ch, n = x.shape
        k = n // self.fft_in
        spec_in = np.fft.rfft(x.reshape(ch, k, self.fft_in), n=2 * self.fft_in, axis=-1)
        spec_out = np.zeros((ch, k, self.fft_out + 1), dtype=np.complex128)
        spec_out[..., : self.keep] = spec_in[..., : self.keep] * self.spec[: self.keep]
        y = np.fft.irfft(spec_out, n=2 * self.fft_out, axis=-1) * (2 * self.fft_out)
        out = np.zeros((ch, k * self.fft_out))
        out += y[..., : self.fft_out].reshape(ch, -1)
        out[:, : self.fft_out] += self.tail
        out[:, self.fft_out :] += y[:, :-1, self.fft_out :].reshape(ch, -1)
        self.tail = y[:, -1, self.fft_out :].copy()
        skip = min(self.to_trim, out.shape[1])
        self.to_trim -= skip
        out = out[:, skip:]
        if limit is not None:
            out = out[:, :limit]
        self.frames_out += out.shape[1]
        return out

    def push(self, frames: np.ndarray) -> np.ndarray:
        """``frames``: (n, channels) float32. Returns (m, channels) float32."""
        self.frames_in += frames.shape[0]
        if self.same:
            self.frames_out += frames.shape[0]
            return np.array(frames, dtype=np.float32)
        x = np.concatenate([self.pending, frames.T.astype(np.float64)], axis=1)
        whole = (x.shape[1] // self.fft_in) * self.fft_in
        self.pending = x[:, whole:]
        if whole == 0:
            return np.zeros((0, self.channels), dtype=np.float32)
        return np.ascontiguousarray(self._blocks(x[:, :whole]).T, dtype=np.float32)

    def finish(self) -> np.ndarray:
        if self.same:
            return np.zeros((0, self.channels), dtype=np.float32)
        total = output_frames(self.frames_in, self.input_rate, self.output_rate)
        parts = []
        while self.frames_out < total:
            block = np.zeros((self.channels, self.fft_in))
            block[:, : self.pending.shape[1]] = self.pending
            self.pending = np.zeros((self.channels, 0))
            parts.append(self._blocks(block, limit=total - self.frames_out))
        out = np.concatenate(parts, axis=1) if parts else np.zeros((self.channels, 0))
        return np.ascontiguousarray(out.T, dtype=np.float32)


class _ResampleStream:
    """One session's ``AudioResampleNode``."""

    def __init__(self, params: Dict[str, Any]):
        self.output_rate = int(params["output_rate"])
        self.input_rate = params.get("input_rate")
        self.quality = params.get("quality") or "high"
        self.key: Optional[Tuple[int, int]] = None
        self.resampler: Optional[StreamResampler] = None
        self.like_1d = True

    def push(self, inputs: Mapping[str, Any]) -> Audio:
        # The native node's checks, in its order and words (push_chunk in src/nodes/resample.rs).
        audio = _expect_audio(_one(inputs, "AudioResampleNode"))
        check_input_rate(audio, self.input_rate)
        frames = _frames(audio.samples)
        key = (audio.sample_rate, frames.shape[1])
        if self.key is not None and key != self.key:
            raise InputError(
                f"this stream started with audio at {self.key[0]} Hz and {self.key[1]} channel(s); "
                f"a chunk at {key[0]} Hz with {key[1]} channel(s) cannot continue it"
            )
        if self.resampler is None:
            if key[0] != self.output_rate:
                # A session's state follows the rate its first chunk picks: bounded before it is built.
                check_resampler(key[0], self.output_rate, key[1], self.quality)
            self.key = key
            self.resampler = StreamResampler(key[0], self.output_rate, key[1], self.quality)
        if key[0] != self.output_rate:
            check_resampler_input(frames)
        self.like_1d = audio.samples.ndim == 1
        return self._audio(self.resampler.push(frames))

    def _audio(self, frames: np.ndarray) -> Audio:
        return Audio._trusted(frames.reshape(-1) if self.like_1d else frames, self.output_rate)

    def finish(self, inputs: Optional[Mapping[str, Any]]) -> Optional[Audio]:
        head = self.push(inputs).samples if inputs is not None else None
        if self.resampler is None:
            return None
        tail = self._audio(self.resampler.finish()).samples
        self.resampler, self.key = None, None
        samples = tail if head is None else np.concatenate([head, tail])
        return Audio._trusted(samples, self.output_rate)


class _VadStream:
    """One session's ``VADNode``: decisions per chunk, segments reported when they close."""

    def __init__(self, params: Dict[str, Any]):
        self.frame_ms = int(params.get("frame_duration_ms") or 30)
        self.kwargs = {"frame_duration_ms": self.frame_ms, "threshold": params.get("threshold")}
        for key in ("hangover_ms", "bridge_ms"):
            if params.get(key) is not None:
                self.kwargs[key] = int(params[key])
        self.state: Optional[VadState] = None
        self.frames_done = 0
        self.open_since: Optional[int] = None
        self.last_audio: Optional[Audio] = None

    def _t(self, i: int) -> float:
        return i * self.frame_ms / 1000.0

    def push(self, inputs: Mapping[str, Any]) -> VadResult:
        audio = _expect_audio(_one(inputs, "VADNode"))
        if self.state is not None and audio.sample_rate != self.state.sample_rate:
            raise InputError(
                f"this stream started with audio at {self.state.sample_rate} Hz; "
                f"a chunk at {audio.sample_rate} Hz cannot continue it"
            )
        # The same mono mix and the same errors as the whole-buffer kernel (builtin.make_vad).
        mono = _to_mono(_frames(audio.samples))
        if self.state is None:
            self.state = VadState(audio.sample_rate, **self.kwargs)
        frames = self.state.push(mono)
        self.last_audio = audio
        return VadResult(segments=self._track(frames), frames=np.asarray(frames, dtype=bool), audio=audio)

    def _track(self, frames) -> List[Tuple[float, float]]:
        """Takes the next decisions; returns the segments they close."""
        segments: List[Tuple[float, float]] = []
        for k, speech in enumerate(frames):
            i = self.frames_done + k
            if speech and self.open_since is None:
                self.open_since = i
            elif not speech and self.open_since is not None:
                segments.append((self._t(self.open_since), self._t(i)))
                self.open_since = None
        self.frames_done += len(frames)
        return segments

    def finish(self, inputs: Optional[Mapping[str, Any]]) -> Optional[VadResult]:
        last = self.push(inputs) if inputs is not None else None
        if self.state is None:
            return last
        rate = self.state.sample_rate
        if last is None:
            empty = np.zeros(0, dtype=np.float32)
            last = VadResult(segments=[], frames=np.zeros(0, dtype=bool), audio=Audio._trusted(empty, rate))
        frames = self.state.finish()
        last["segments"] = list(last["segments"]) + self._track(frames)
        last["frames"] = np.concatenate([last["frames"], np.asarray(frames, dtype=bool)])
        if self.open_since is not None:
            last["segments"].append((self._t(self.open_since), self._t(self.frames_done)))
        self.state = None
        return last


class _SegmentStream:
    """SegmentNode in a session (``Segment::push``/``finish`` in Rust): keeps every chunk's VAD
    result, returns no clips per chunk, and cuts the whole session at its end."""

    def __init__(self, params: Dict[str, Any]):
        self.params = params
        self.parts: List[VadResult] = []

    def push(self, inputs: Mapping[str, Any]) -> list:
        v = expect_vad(next(iter(inputs.values())))
        if self.parts:
            first = self.parts[0]["audio"]
            a = v["audio"]
            if (a.sample_rate, a.channels) != (first.sample_rate, first.channels) and a.frames:
                raise InputError(f"cannot append audio at {a.sample_rate} Hz x {a.channels} to audio at "
                                 f"{first.sample_rate} Hz x {first.channels}")
        self.parts.append(v)
        return []

    def finish(self, inputs: Optional[Mapping[str, Any]]) -> list:
        if inputs is not None:
            self.push(inputs)
        parts, self.parts = self.parts, []
        if not parts:
            return []
        audio = Audio._trusted(np.concatenate([p["audio"].samples for p in parts]), parts[0]["audio"].sample_rate)
        return cut_clips(audio, [s for p in parts for s in p["segments"]], self.params)


class _SileroStream:
    """One session's ``SileroVADNode``: probabilities per chunk, frames and segments once final."""

    def __init__(self, params: Dict[str, Any]):
        self.kwargs = silero_params(params)
        self.vad: Any = None
        self.channels: Optional[int] = None

    def push(self, inputs: Mapping[str, Any]) -> VadResult:
        audio = _expect_audio(_one(inputs, "SileroVADNode"))
        if self.vad is not None and audio.sample_rate != self.vad.net.sample_rate:
            raise InputError(
                f"this stream started with audio at {self.vad.net.sample_rate} Hz; "
                f"a chunk at {audio.sample_rate} Hz cannot continue it"
            )
        mono = silero_mono(audio)
        if self.vad is None:
            self.vad = silero.SileroVad(audio.sample_rate, **self.kwargs)
        probs, frames, segments = self.vad.push(mono)
        self.channels = audio.channels
        return VadResult(segments=segments, frames=np.asarray(frames, dtype=bool), probabilities=probs, audio=audio)

    def finish(self, inputs: Optional[Mapping[str, Any]]) -> Optional[VadResult]:
        last = self.push(inputs) if inputs is not None else None
        if self.vad is None:
            return last
        probs, frames, segments = self.vad.finish()
        if last is None:
            shape = (0,) if self.channels == 1 else (0, self.channels)
            empty = Audio._trusted(np.zeros(shape, dtype=np.float32), self.vad.net.sample_rate)
            last = VadResult(segments=[], frames=np.zeros(0, dtype=bool), audio=empty)
        last["segments"] = list(last["segments"]) + segments
        last["frames"] = np.concatenate([last["frames"], np.asarray(frames, dtype=bool)])
        last["probabilities"] = np.concatenate([last["probabilities"], probs]).astype(np.float32)
        self.vad = None
        return last


_STREAMS = {"AudioResampleNode": _ResampleStream, "VADNode": _VadStream, "SileroVADNode": _SileroStream,
            "SegmentNode": _SegmentStream, **features.STREAMS,
            "FilterNode": FilterStream, "LoudnessNode": LoudnessStream, "DenoiseNode": DenoiseStream}


class PureSession:
    """A streaming session on a pure-runtime :class:`~remotemedia._pure.executor.Executor`."""

    def __init__(self, executor: Any):
        self.ex = executor
        self.streams: Dict[int, Any] = {}
        for i, n in enumerate(executor.graph.nodes):
            if n.type.name in _STREAMS and n.type.python_class is None:
                self.streams[i] = _STREAMS[n.type.name](n.params)
        self.closed = False

    def _check_open(self) -> None:
        if self.closed:
            raise InputError("this streaming session is closed")

    def push(self, inputs: Mapping[str, Any]) -> Dict[str, Any]:
        self._check_open()
        return self._step(inputs, end=False)

    def close(self) -> Dict[str, Any]:
        self._check_open()
        self.closed = True
        return self._step(None, end=True)

    def _gather_edges(self, edges: List[int], outputs: List[Any]) -> Dict[str, Any]:
        """A node's inputs from some of its edges (at a session's end, upstream nodes that had
        nothing left to flush send nothing)."""
        gathered: Dict[str, Any] = {}
        for ei in edges:
            e = self.ex.graph.edges[ei]
            value = outputs[e.src]
            if e.output_key is not None:
                value = self.ex._project(e.src, value, e.output_key)
            gathered[e.port] = value
        return gathered

    def _step(self, inputs: Optional[Mapping[str, Any]], end: bool) -> Dict[str, Any]:
        ex = self.ex
        start = time.perf_counter_ns()
        run = ex._next_run()
        outputs: List[Any] = [None] * len(ex.graph.nodes)
        try:
            for i in ex.graph.order:
                node = ex.graph.nodes[i]
                if end and not node.inputs:
                    node_inputs = None
                elif end and any(outputs[ex.graph.edges[e].src] is None for e in node.inputs):
                    present = [e for e in node.inputs if outputs[ex.graph.edges[e].src] is not None]
                    node_inputs = self._gather_edges(present, outputs) if present else None
                else:
                    node_inputs = ex._gather(i, inputs, outputs)
                if node_inputs is None and i not in self.streams:
                    continue  # a stateless node has nothing to flush
                stream = self.streams.get(i)
                if stream is None:
                    node_call = ex.node_call(i, node_inputs)
                else:
                    node_call = functools.partial(stream.finish if end else stream.push, node_inputs)
                # The same retries, circuit breaker and metrics as a whole run.
                outputs[i] = ex.call(i, run, node_call)
        except BaseException:
            ex._record_run(start, ok=False)
            raise
        ex._record_run(start, ok=True)
        return {k: v for k, v in ex._result(outputs, inputs).items() if v is not None}
