"""The built-in nodes in numpy: GainNode, MixNode and PassthroughNode here; AudioResampleNode,
VADNode, FormatConverterNode, ChannelMixNode and SegmentNode call the kernels in ``resample.py``,
``vad.py``, ``format.py``, ``channel_mix.py`` and ``segment.py``.

Each ``make_*`` takes the node's validated params and returns a kernel ``inputs -> payload``
(``inputs``: port name -> payload). Kernels raise :class:`InputError` for unusable data; the
executor adds the node's id. Results match the Rust nodes bit for bit where the arithmetic allows
(f32 arithmetic in the same order).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, Mapping

import numpy as np

from ..audio import Audio
from ..errors import InputError, RemoteMediaError
from ..nodes import Node
from ..payloads import Clip, VadResult, payload_kind

__all__ = ["make_kernel", "KernelNode"]

Kernel = Callable[[Mapping[str, Any]], Any]

_FORMAT_NAMES = {np.dtype(np.float32): "f32", np.dtype(np.int16): "i16", np.dtype(np.int32): "i32"}


def _twin(name: str, node_type: str):
    """Imports a DSP kernel module lazily, so pipelines without that node never need it."""
    try:
        return importlib.import_module(f"remotemedia._pure.{name}")
    except ImportError as e:
        raise RemoteMediaError(
            f"the pure-Python {node_type} needs remotemedia._pure.{name}, which cannot be imported ({e})"
        ) from e


def _one(inputs: Mapping[str, Any], node_type: str) -> Any:
    if not inputs:
        raise InputError(f"{node_type} received no input")
    return next(iter(inputs.values()))


def _expect_audio(payload: Any) -> Audio:
    if isinstance(payload, Audio):
        return payload
    if isinstance(payload, VadResult):
        return payload["audio"]
    raise InputError(f"expected audio, received {payload_kind(payload)}")


def format_name(samples: np.ndarray) -> str:
    return _FORMAT_NAMES.get(samples.dtype, str(samples.dtype))


def _as_f32_frames(samples: np.ndarray) -> np.ndarray:
    """(frames, channels) float32, integer samples scaled with the project convention."""
    if samples.dtype != np.float32:
        samples = _twin("format", "converter").convert(samples, "f32")
    return samples.reshape(samples.shape[0], -1)


#: The resampler's limit on sample magnitude (MAX_ABS_SAMPLE in src/nodes/resample.rs).
_MAX_ABS_SAMPLE = np.float32(1e30)


def _rust_f32(v: Any) -> str:
    """An f32 as Rust's ``Display`` writes it (``inf``, ``NaN``, shortest digits, no exponent)."""
    v = np.float32(v)
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return np.format_float_positional(v, trim="-")


def check_finite(node_type: str, flat: np.ndarray) -> None:
    """The engine's error for a NaN or infinite sample (``check_finite`` in ``src/nodes/mod.rs``)."""
    bad = ~np.isfinite(flat)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{node_type} input contains a non-finite sample ({_rust_f32(flat[i])}) at index {i}")


def _shaped_like(frames: np.ndarray, like: np.ndarray) -> np.ndarray:
    return frames.reshape(-1) if like.ndim == 1 else frames


def check_resampler(rate: int, output_rate: int, channels: int, quality: str) -> None:
    """What ``Resampler::new`` refuses, in its order and words (src/nodes/resample.rs): a rate
    outside its range, a rate pair and channel count needing too much state."""
    kernel = _twin("resample", "AudioResampleNode")
    if not kernel.MIN_RATE <= rate <= kernel.MAX_RATE:
        raise InputError(f"input sample rate {rate} Hz is outside {kernel.MIN_RATE}..={kernel.MAX_RATE} Hz")
    problem = kernel.state_problem(rate, output_rate, channels, quality)
    if problem is not None:
        raise InputError(problem)


def check_resampler_input(frames: np.ndarray) -> None:
    """The resampler's check of its samples (``Resampler::check_input``): finite, within +/-1e30."""
    flat = frames.reshape(-1)
    bad = ~(np.abs(flat) <= _MAX_ABS_SAMPLE)  # true for NaN too
    if bad.any():
        pos = int(np.argmax(bad))
        raise InputError(
            f"sample {pos} (frame {pos // frames.shape[1]}) is {_rust_f32(flat[pos])}; "
            "the resampler needs finite samples within +/-1e30"
        )


def check_input_rate(audio: Audio, input_rate: Any) -> None:
    """The node's ``input_rate`` param against the audio's rate (``checked_audio`` in Rust)."""
    if input_rate is not None and audio.sample_rate != input_rate:
        raise InputError(
            f"AudioResampleNode expects input at {input_rate} Hz (param input_rate) "
            f"but received audio at {audio.sample_rate} Hz"
        )


def make_resample(params: Dict[str, Any]) -> Kernel:
    output_rate = int(params["output_rate"])
    input_rate = params.get("input_rate")
    quality = params.get("quality") or "high"

    def run(inputs: Mapping[str, Any]) -> Audio:
        audio = _expect_audio(_one(inputs, "AudioResampleNode"))
        check_input_rate(audio, input_rate)
        kernel = _twin("resample", "AudioResampleNode")
        frames = _as_f32_frames(audio.samples)
        if audio.sample_rate != output_rate:
            # The same checks, in the same order and words, as the Rust node (src/nodes/resample.rs).
            check_resampler(audio.sample_rate, output_rate, frames.shape[1], quality)
            check_resampler_input(frames)
        out = kernel.resample(frames, audio.sample_rate, output_rate, quality)
        return Audio._trusted(_shaped_like(np.asarray(out, dtype=np.float32), audio.samples), output_rate)

    return run


def make_vad(params: Dict[str, Any]) -> Kernel:
    kwargs = {"frame_duration_ms": int(params.get("frame_duration_ms") or 30), "threshold": params.get("threshold")}
    for key in ("hangover_ms", "bridge_ms"):
        if params.get(key) is not None:
            kwargs[key] = int(params[key])

    def run(inputs: Mapping[str, Any]) -> VadResult:
        audio = _expect_audio(_one(inputs, "VADNode"))
        kernel = _twin("vad", "VADNode")
        # The Rust node's input checks and words (src/nodes/vad.rs), so both runtimes raise the
        # same InputError rather than the kernel's ValueError.
        rate = audio.sample_rate
        if not 8000 <= rate <= 48000 or rate % 100 != 0:
            raise InputError(
                "VADNode needs a sample rate that is a multiple of 100 Hz from 8000 to 48000 Hz "
                f"(e.g. 8000, 16000, 32000, 48000), received {rate} Hz; put an AudioResampleNode before it"
            )
        if audio.samples.dtype == np.float32:
            x = audio.samples.reshape(audio.frames, -1)
            mono = x[:, 0] if x.shape[1] == 1 else (x * np.float32(1.0 / x.shape[1])).sum(axis=1, dtype=np.float32)
            bad = ~np.isfinite(mono)
            if bad.any():
                i = int(np.argmax(bad))
                raise InputError(f"VADNode input contains a non-finite sample ({_rust_f32(mono[i])}) at index {i}")
        segments, frames = kernel.vad(_as_f32_frames(audio.samples), audio.sample_rate, **kwargs)
        return VadResult(
            segments=[(float(s), float(e)) for s, e in segments],
            frames=np.asarray(frames, dtype=bool),
            audio=audio,
        )

    return run


def silero_mono(audio: Audio) -> np.ndarray:
    """The Rust node's input checks and words (src/nodes/silero/network.rs), then its mono mix."""
    if audio.sample_rate not in (16000, 8000):
        raise InputError(
            f"SileroVADNode needs audio at 16000 or 8000 Hz, received {audio.sample_rate} Hz; "
            "put an AudioResampleNode before it"
        )
    x = _as_f32_frames(audio.samples)
    mono = x[:, 0] if x.shape[1] == 1 else (x * np.float32(1.0 / x.shape[1])).sum(axis=1, dtype=np.float32)
    bad = ~np.isfinite(mono)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"SileroVADNode input contains a non-finite sample ({_rust_f32(mono[i])}) at index {i}")
    return mono


def silero_params(params: Dict[str, Any]) -> Dict[str, Any]:
    """Validated node params (defaults filled in) as the twin's keyword arguments."""
    return {k: v for k, v in params.items() if v is not None}


def make_silero(params: Dict[str, Any]) -> Kernel:
    kwargs = silero_params(params)

    def run(inputs: Mapping[str, Any]) -> VadResult:
        audio = _expect_audio(_one(inputs, "SileroVADNode"))
        mono = silero_mono(audio)
        probs, frames, segments = _twin("silero", "SileroVADNode").detect(mono, audio.sample_rate, **kwargs)
        return VadResult(segments=segments, frames=frames, probabilities=probs, audio=audio)

    return run


def make_format(params: Dict[str, Any]) -> Kernel:
    target = params["target_format"]

    def run(inputs: Mapping[str, Any]) -> Audio:
        audio = _expect_audio(_one(inputs, "FormatConverterNode"))
        out = _twin("format", "FormatConverterNode").convert(audio.samples, target)
        return Audio._trusted(np.asarray(out).reshape(audio.samples.shape), audio.sample_rate)

    return run


def make_gain(params: Dict[str, Any]) -> Kernel:
    # The factor is computed in f64 and rounded to f32 once, then applied in f32, as in Rust.
    factor = np.float32(10.0 ** (float(params.get("gain_db") or 0.0) / 20.0))

    def run(inputs: Mapping[str, Any]) -> Audio:
        audio = _expect_audio(_one(inputs, "GainNode"))
        if audio.samples.dtype != np.float32:
            raise InputError(
                f"GainNode needs f32 samples, received {format_name(audio.samples)}; put a FormatConverterNode before it"
            )
        # Overflow to inf is the node's defined f32 behaviour (as in Rust), not worth a warning;
        # a node downstream that needs finite samples refuses them with an InputError.
        with np.errstate(over="ignore"):
            return Audio._trusted(audio.samples * factor, audio.sample_rate)

    return run


def make_mix(params: Dict[str, Any]) -> Kernel:
    def f32(port: str, payload: Any) -> Audio:
        audio = _expect_audio(payload)
        if audio.samples.dtype != np.float32:
            raise InputError(f"MixNode input '{port}' has {format_name(audio.samples)} samples; it needs f32")
        return audio

    def run(inputs: Mapping[str, Any]) -> Audio:
        if not inputs:
            raise InputError("MixNode received no inputs")
        # Sum in port-name order so the result does not depend on arrival order.
        ports = sorted(inputs)
        first_port = ports[0]
        first = f32(first_port, inputs[first_port])
        flats = [first.samples.reshape(-1)]
        for port in ports[1:]:
            nxt = f32(port, inputs[port])
            if nxt.sample_rate != first.sample_rate or nxt.channels != first.channels:
                raise InputError(
                    f"input '{port}' is {nxt.sample_rate} Hz x{nxt.channels} but '{first_port}' is "
                    f"{first.sample_rate} Hz x{first.channels}"
                )
            flats.append(nxt.samples.reshape(-1))
        acc = np.zeros(max(f.size for f in flats), dtype=np.float32)
        acc[: flats[0].size] = flats[0]
        for f in flats[1:]:
            acc[: f.size] += f
        shaped = acc if first.samples.ndim == 1 else acc.reshape(-1, first.channels)
        return Audio._trusted(shaped, first.sample_rate)

    return run


def make_channel_mix(params: Dict[str, Any]) -> Kernel:
    twin = _twin("channel_mix", "ChannelMixNode")
    how = twin.plan(params)

    def run(inputs: Mapping[str, Any]) -> Audio:
        audio = _expect_audio(_one(inputs, "ChannelMixNode"))
        out, why = twin.mix(audio.samples, how)
        if out is None:
            raise InputError(why)
        return audio if out is audio.samples else Audio._trusted(out, audio.sample_rate)

    return run


def expect_vad(payload: Any) -> VadResult:
    """The VAD result a SegmentNode is given, or the InputError the Rust node raises."""
    if not isinstance(payload, VadResult):
        raise InputError(
            f"SegmentNode needs a VAD result (speech segments and their audio), received {payload_kind(payload)}; "
            "put it after a VAD node, on the VAD's whole output (no output_key)"
        )
    return payload


def cut_clips(audio: Audio, segments: Any, params: Dict[str, Any]) -> list:
    """``audio`` cut into clips at the spans of ``segments`` (``segment::cut`` in Rust)."""
    x = audio.samples
    spans = _twin("segment", "SegmentNode").spans(x, audio.sample_rate, segments, params)
    return [Clip._trusted_clip(x[a:b], audio.sample_rate, a) for a, b in spans]


def make_segment(params: Dict[str, Any]) -> Kernel:
    def run(inputs: Mapping[str, Any]) -> list:
        vad = expect_vad(_one(inputs, "SegmentNode"))
        return cut_clips(vad["audio"], vad["segments"], params)

    return run


def make_features(type_name: str) -> Callable[[Dict[str, Any]], Kernel]:
    """LogMelNode, FbankNode, MfccNode: one buffer's features from a fresh stream (``features.py``)."""

    def make(params: Dict[str, Any]) -> Kernel:
        stream = _twin("features", type_name).STREAMS[type_name](params)
        return stream.whole

    return make


def make_passthrough(params: Dict[str, Any]) -> Kernel:
    return lambda inputs: _one(inputs, "PassthroughNode")


_MAKERS = {
    "AudioResampleNode": make_resample,
    "VADNode": make_vad,
    "SileroVADNode": make_silero,
    "FormatConverterNode": make_format,
    "GainNode": make_gain,
    "MixNode": make_mix,
    "PassthroughNode": make_passthrough,
    "ChannelMixNode": make_channel_mix,
    "SegmentNode": make_segment,
    **{t: make_features(t) for t in ("LogMelNode", "FbankNode", "MfccNode")},
    "FilterNode": lambda params: _twin("filter", "FilterNode").FilterKernel(params),
    "LoudnessNode": lambda params: _twin("loudness", "LoudnessNode").LoudnessKernel(params),
    "DenoiseNode": lambda params: _twin("denoise", "DenoiseNode").DenoiseKernel(params),
}


def make_kernel(type_name: str, params: Dict[str, Any]) -> Kernel:
    """The numpy implementation of a built-in node type, configured with validated ``params``."""
    return _MAKERS[type_name](params)


class KernelNode(Node):
    """A built-in node's numpy kernel behind the :class:`Node` protocol: what the pure runtime runs,
    and what the native runtime calls back for built-in nodes with ``runtime_hint: python``."""

    inputs = "any"
    #: Kernels take VAD results as their Rust nodes do (audio nodes use the audio themselves).
    accepts_vad_result = True

    def __init__(self, node_id: str, type_name: str, params: Dict[str, Any]):
        super().__init__(node_id=node_id, **params)
        self.type_name = type_name
        self._kernel = make_kernel(type_name, params)

    def _rm_call(self, inputs: Mapping[str, Any]) -> Any:
        return self._kernel(dict(inputs))

    async def _rm_call_async(self, inputs: Mapping[str, Any]) -> Any:
        return self._rm_call(inputs)
