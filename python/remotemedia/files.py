"""Audio files: :func:`load`, :func:`save` and :func:`info`, and the file helpers behind
``Pipeline.run_file`` / ``Pipeline.stream_file``.

With the native extension every format is read -- WAV (8/16/24/32-bit integer, 32/64-bit float,
extensible, A-law, µ-law, ADPCM), FLAC, MP3, Ogg Vorbis, AAC and ALAC in MP4/M4A, AIFF, CAF,
Matroska/WebM -- recognised from the content, decoded by symphonia (MPL-2.0) with the GIL released.
The pure-Python runtime reads and writes WAV by the same rules (:mod:`remotemedia.wav`) and says
clearly that other formats need the extension. Both write WAV and FLAC (FLAC: native only).

    audio = remotemedia.load("talk.mp3", rate=16000, mono=True)   # like librosa.load(sr=16000)
    remotemedia.save("talk.flac", audio)                          # format from the extension
    remotemedia.info("talk.mp3").duration
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional, Union

import numpy as np

from . import _runtime
from .audio import Audio, to_audio
from .errors import InputError, RuntimeUnavailableError

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["load", "save", "info", "AudioInfo", "open_reader", "DTYPES"]

#: The ``dtype`` values ``load`` takes (None keeps the file's own sample format).
DTYPES = ("float32", "int16", "int32", None)

#: File extensions ``batch`` takes as audio, compared ignoring case (``audio_io::AUDIO_EXTENSIONS``).
AUDIO_EXTENSIONS = ("wav", "wave", "flac", "mp3", "ogg", "oga", "opus", "m4a", "m4b", "mp4", "aac", "aif", "aiff",
                    "aifc", "caf", "mka", "webm")

#: Extensions of formats that are read but not written (``encode::READ_ONLY_EXTENSIONS``).
_READ_ONLY_EXTENSIONS = ("mp3", "ogg", "oga", "opus", "m4a", "mp4", "aac", "aif", "aiff", "caf", "mka", "webm")


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file holds (``remotemedia.info``), like ``soxi`` / ``soundfile.info``.

    ``frames`` and ``duration`` count what decoding gives (encoder delay and padding trimmed where
    the file declares them); ``bits`` is the stored width of lossless formats, None for lossy ones;
    ``dtype`` is what ``load(..., dtype=None)`` returns."""

    path: str
    container: str
    codec: str
    sample_rate: int
    channels: int
    frames: Optional[int]
    duration: Optional[float]
    bits: Optional[int]
    dtype: str
    lossless: bool
    file_size: int


def _native(runtime_hint: str) -> Any:
    return _runtime.native_module() if _runtime.select_runtime(runtime_hint) == "rust" else None


def _check_dtype(dtype: Optional[str]) -> None:
    if dtype not in DTYPES:
        raise InputError(f'dtype must be "float32", "int16", "int32" or None (as stored), not {dtype!r}')


def load(
    path: PathLike,
    *,
    rate: Optional[int] = None,
    mono: bool = False,
    dtype: Optional[str] = "float32",
    runtime_hint: str = "auto",
) -> Audio:
    """Reads an audio file of any supported format into an :class:`Audio`.

    * ``mono=True`` averages the channels (summed in float64 channel by channel, then float32).
    * ``rate=`` resamples with ``AudioResampleNode`` at its defaults: exactly what a pipeline of that
      one node returns for the decoded audio (after ``mono``).
    * ``dtype``: ``"float32"`` (default; integers scaled to [-1, 1)), ``"int16"``, ``"int32"``, or
      None for the file's own format (int16 for 8/16-bit, int32 for 24/32-bit, float32 for float
      and lossy codecs). Conversions follow ``FormatConverterNode``'s rules.

    Raises ``FileNotFoundError`` for a missing file, :class:`InputError` naming the file for one
    that is not readable audio (not a regular file, unknown format, truncated, corrupt).
    """
    _check_dtype(dtype)
    native = _native(runtime_hint)
    if native is not None:
        return native.load_audio(os.fspath(path), rate, bool(mono), dtype)
    from .wav import read_wav

    audio = read_wav(path)
    if mono and audio.channels > 1:
        audio = downmix_mean(audio)
    if rate is not None:
        audio = _resample(audio, rate)
    if dtype is not None:
        from ._pure.format import convert

        target = {"float32": "f32", "int16": "i16", "int32": "i32"}[dtype]
        audio = Audio._trusted(convert(audio.samples, target), audio.sample_rate)
    return audio


def downmix_mean(audio: Audio) -> Audio:
    """The channels' mean as mono float32, in the native order of operations (``downmix_mean``)."""
    from ._pure.format import convert

    x = convert(audio.samples, "f32")
    acc = x[:, 0].astype(np.float64)
    for c in range(1, x.shape[1]):
        acc += x[:, c]
    return Audio._trusted((acc / x.shape[1]).astype(np.float32), audio.sample_rate)


def _resample(audio: Audio, rate: int) -> Audio:
    from ._pure import builtin
    from ._pure.schema import builtin_types, describe_kind, describe_value
    from ._pure.validate import check_param

    # The resampler's own param spec and the engine's words for it (`wrong` in src/nodes/params.rs,
    # prefixed as audio_io::resample_with_node does), so both runtimes refuse a rate alike.
    spec = builtin_types()["AudioResampleNode"].param("output_rate")
    ok, value = check_param(spec, rate) if not isinstance(rate, (bool, float)) else (False, None)
    if not ok:
        shown = rate.item() if isinstance(rate, np.generic) else rate
        raise InputError(f"rate={shown}: param 'output_rate' must be {describe_kind(spec)}, found {describe_value(shown)}")
    return builtin.make_kernel("AudioResampleNode", {"output_rate": value})({"in": audio})


def _format_for(path: str, format: Optional[str]) -> str:
    if format is not None:
        f = str(format).lower()
        if f in ("wav", "wave"):
            return "wav"
        if f == "flac":
            return "flac"
        raise InputError(f'format must be "wav" or "flac" (or None: from the extension), not {format!r}')
    ext = os.path.splitext(path)[1][1:].lower()
    if ext == "flac":
        return "flac"
    if ext in _READ_ONLY_EXTENSIONS:
        raise InputError(f"cannot write '{path}': remotemedia writes WAV and FLAC, not .{ext}; name the file .wav or .flac")
    return "wav"


def _check_bits(fmt: Optional[str], bits: Optional[int]) -> None:
    if bits is None:
        return
    if bits not in (16, 24, 32) or isinstance(bits, bool):
        raise InputError(f"bits must be 16 or 24 (integer) or 32 (float, WAV only), not {bits}")
    if bits == 32 and fmt == "flac":
        raise InputError("FLAC holds integer samples: bits must be 16 or 24, not 32")


def save(
    path: PathLike,
    audio: Any,
    *,
    format: Optional[str] = None,
    bits: Optional[int] = None,
    runtime_hint: str = "auto",
) -> None:
    """Writes ``audio`` (an :class:`Audio` or ``(samples, rate)``) as WAV or FLAC.

    ``format``: ``"wav"``, ``"flac"`` or None (from the extension: ``.flac`` is FLAC, an extension
    of a format that is only read, such as ``.mp3``, is refused, anything else is WAV). ``bits``: 16
    or 24 (integer PCM) or 32 (32-bit float, WAV only); None keeps the audio's format for WAV
    (float32 -> float, int16 -> 16-bit, int32 -> 32-bit) and gives 16 (int16) or 24 bits for FLAC.

    The file is written under a temporary name in the same folder and renamed into place when
    complete: an error or an interruption never leaves a partial file under ``path``.
    """
    p = os.fspath(path)
    explicit = None if format is None else _format_for(p, format)
    fmt = _format_for(p, explicit)
    _check_bits(fmt, bits)
    native = _native(runtime_hint)
    if native is not None:
        native.save_audio(p, audio, explicit, bits)
        return
    if fmt == "flac":
        raise RuntimeUnavailableError(
            f"cannot write '{p}': the pure-Python runtime writes only WAV; build the native extension "
            "(see docs/python.md) to write FLAC"
        )
    from .wav import write_wav

    write_wav(p, to_audio(audio), bits)


def info(path: PathLike, *, runtime_hint: str = "auto") -> AudioInfo:
    """What ``path`` holds: container, codec, rate, channels, frames, duration, bits, dtype.
    Reads the header only (a file that does not state its length has its packets counted)."""
    p = os.fspath(path)
    native = _native(runtime_hint)
    if native is not None:
        d = native.audio_info(p)
    else:
        from .wav import WavReader

        with WavReader(p) as r:
            h = r.header
            size = os.fstat(r._f.fileno()).st_size
        d = {
            "container": "WAV", "codec": h.codec_name(), "sample_rate": h.sample_rate, "channels": h.channels,
            "frames": h.frames, "duration": h.frames / h.sample_rate, "bits": h.bits,
            "dtype": str(h.dtype), "lossless": True, "file_size": size,
        }
    return AudioInfo(path=p, **d)


class _Reader:
    """A chunk reader on either runtime: ``sample_rate``, ``read(frames) -> Audio | None``, ``close()``."""

    def __init__(self, path: str, runtime: str):
        if runtime == "rust":
            self._r: Any = _runtime.native_module().NativeAudioReader(path)
            self.sample_rate = int(self._r.info()["sample_rate"])
            self.read = self._r.read
        else:
            from .wav import WavReader

            self._r = WavReader(path)
            self.sample_rate = self._r.header.sample_rate
            self.read = self._r.read_frames

    def close(self) -> None:
        self._r.close()


def chunks(path: PathLike, runtime: str, chunk_ms: int = 1000) -> Iterator[Audio]:
    """The file's audio in chunks of ``chunk_ms`` milliseconds, decoded only as they are taken."""
    if isinstance(chunk_ms, bool) or not isinstance(chunk_ms, int) or not 1 <= chunk_ms <= 600_000:
        raise InputError(f"chunk_ms must be an integer from 1 to 600000, not {chunk_ms!r}")
    reader = _Reader(os.fspath(path), runtime)
    try:
        frames = max(1, reader.sample_rate * chunk_ms // 1000)
        while True:
            chunk = reader.read(frames)
            if chunk is None:
                return
            yield chunk
    finally:
        reader.close()


class _Combined:
    """What one sink's outputs over a file add up to (``run_file``)."""

    def __init__(self) -> None:
        self.audio: list = []
        self.segments: list = []
        self.frames: list = []
        self.vad = False
        self.last: Any = None
        self.writer: Any = None
        self.path: Optional[str] = None

    def add(self, value: Any, sink: str, spec: Dict[str, Any], runtime: str) -> None:
        from .payloads import VadResult

        if isinstance(value, VadResult):
            self.vad = True
            self.segments.extend(value["segments"])
            self.frames.append(np.asarray(value["frames"]))
            value = value["audio"]
        if isinstance(value, Audio):
            if self.path is not None:
                if value.frames:
                    if self.writer is None:
                        self.writer = _StreamWriter(self.path, value, spec, runtime)
                    self.writer.write(value)
            else:
                self.audio.append(value)
        else:
            self.last = value

    def result(self) -> Any:
        from .payloads import VadResult

        audio: Any = self.path
        if self.path is None and self.audio:
            first = self.audio[0]
            audio = Audio._trusted(np.concatenate([a.samples for a in self.audio]), first.sample_rate)
        if self.vad:
            frames = np.concatenate(self.frames) if self.frames else np.zeros(0, dtype=bool)
            return VadResult(segments=self.segments, frames=frames, audio=audio)
        return audio if (self.audio or self.path is not None) else self.last


class _StreamWriter:
    """A WAV or FLAC file written chunk by chunk and renamed into place when finished."""

    def __init__(self, path: str, first: Audio, spec: Dict[str, Any], runtime: str):
        fmt = _format_for(path, spec.get("format"))
        bits = spec.get("bits")
        _check_bits(fmt, bits)
        if runtime == "rust":
            self._w: Any = _runtime.native_module().NativeAudioWriter(path, first.sample_rate, first.channels, str(first.samples.dtype), fmt, bits)
        elif fmt == "flac":
            raise RuntimeUnavailableError(
                f"cannot write '{path}': the pure-Python runtime writes only WAV; build the native extension "
                "(see docs/python.md) to write FLAC"
            )
        else:
            from .wav import WavWriter, wav_sample

            self._w = WavWriter(path, wav_sample(first.samples.dtype, bits), first.channels, first.sample_rate, first.samples.dtype)

    def write(self, audio: Audio) -> None:
        self._w.write(audio)

    def finish(self) -> None:
        self._w.finish()

    def abort(self) -> None:
        self._w.abort()


def run_file(pipeline: Any, path: PathLike, output: Any = None, *, format: Optional[str] = None,
             bits: Optional[int] = None, chunk_ms: int = 1000) -> Dict[str, Any]:
    """``Pipeline.run_file``: the file streamed through a session, outputs combined or written."""
    from .payloads import VadResult

    spec = {"format": format, "bits": bits}
    if format is not None:
        _format_for("x", format)
    _check_bits(None if format is None else _format_for("x", format), bits)
    pipeline._ensure()
    runtime = pipeline.runtime
    targets: Dict[str, str] = {}
    first_audio: Optional[str] = None
    if isinstance(output, dict):
        targets = {str(k): os.fspath(v) for k, v in output.items()}
    elif output is not None:
        first_audio = os.fspath(output)
    from ._safety import check_not_input

    for out in ([first_audio] if first_audio else []) + list(targets.values()):
        check_not_input(out, "output", [path])
    combined: Dict[str, _Combined] = {}
    try:
        for outputs in pipeline.stream(chunks(path, runtime, chunk_ms)):
            for sink, value in outputs.items():
                c = combined.get(sink)
                if c is None:
                    c = combined[sink] = _Combined()
                    if sink in targets:
                        c.path = targets[sink]
                    elif first_audio is not None and isinstance(value, (Audio, VadResult)):
                        c.path, first_audio = first_audio, None
                c.add(value, sink, spec, runtime)
        for c in combined.values():
            if c.writer is not None:
                c.writer.finish()
                c.writer = None
    finally:
        for c in combined.values():
            if c.writer is not None:
                c.writer.abort()
    return {sink: c.result() for sink, c in combined.items()}
