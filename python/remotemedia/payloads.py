"""The values that travel along a pipeline's edges, as Python sees them.

* :class:`~remotemedia.audio.Audio` -- audio.
* :class:`VadResult` -- what a ``VADNode`` or ``SileroVADNode`` produces: a mapping with
  ``segments`` (list of ``(start_s, end_s)`` tuples), ``frames`` (numpy bool array, one decision
  per frame), ``probabilities`` (numpy float32 array, one speech probability per frame; empty for
  ``VADNode``) and ``audio`` (the node's input, unchanged).
* a list of :class:`Clip` -- what a ``SegmentNode`` produces: audio cut from a recording, each
  clip knowing where it lies in it.
* :class:`Features` -- what ``LogMelNode``, ``FbankNode`` and ``MfccNode`` produce: a float32
  numpy array of shape ``(frames, bins)`` (time-major; ``.T`` is Whisper's ``(n_mels, frames)``)
  with its ``frame_rate`` in frames per second.
* ``dict`` -- named values (nodes with several outputs); an edge's ``output_key`` picks one.
* anything JSON can hold -- scores, labels, lists.

This module also converts the native module's plain values (``(ndarray, rate)`` tuples) to these.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .audio import Audio

__all__ = ["VadResult", "Clip", "Features", "payload_kind", "from_native", "to_native"]


class VadResult(dict):
    """A ``VADNode`` / ``SileroVADNode`` output: ``{"segments": [(start_s, end_s), ...],
    "frames": ndarray[bool], "probabilities": ndarray[float32], "audio": Audio}``.

    It is a ``dict``, so ``result["segments"]`` works; downstream audio nodes treat it as its audio.
    ``probabilities`` is empty for detectors without them (``VADNode``), also when not given.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if "probabilities" not in self:
            self["probabilities"] = np.zeros(0, dtype=np.float32)

    @property
    def segments(self):
        return self["segments"]

    @property
    def frames(self) -> np.ndarray:
        return self["frames"]

    @property
    def probabilities(self) -> np.ndarray:
        return self["probabilities"]

    @property
    def audio(self) -> Audio:
        return self["audio"]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, dict) or set(self) != set(other):
            return False
        return all(_values_equal(self[k], other[k]) for k in self)

    __hash__ = None

    def __repr__(self) -> str:
        return f"VadResult(segments={self['segments']!r}, frames={int(np.count_nonzero(self['frames']))}/{len(self['frames'])} speech, audio={self['audio']!r})"


class Clip(Audio):
    """Audio cut from a longer recording (a ``SegmentNode`` output is a list of them): an
    :class:`~remotemedia.audio.Audio` that also knows where it lies in the recording.

    ``start_frame`` / ``end_frame`` are frames of the recording at the clip's own rate (exact);
    ``start`` / ``end`` the same in seconds."""

    __slots__ = ("_start_frame",)

    def __init__(self, samples: Any, sample_rate: int, start_frame: int = 0):
        super().__init__(samples, sample_rate)
        if isinstance(start_frame, bool) or not isinstance(start_frame, (int, np.integer)) or start_frame < 0:
            raise TypeError(f"start_frame must be a non-negative integer, received {start_frame!r}")
        self._start_frame = int(start_frame)

    @classmethod
    def _trusted_clip(cls, samples: np.ndarray, sample_rate: int, start_frame: int) -> "Clip":
        c = cls._trusted(samples, sample_rate)
        c._start_frame = int(start_frame)
        return c

    @property
    def start_frame(self) -> int:
        return self._start_frame

    @property
    def end_frame(self) -> int:
        """The frame after the clip's last one, in the recording."""
        return self._start_frame + self.frames

    @property
    def start(self) -> float:
        """Start in seconds from the start of the recording."""
        return self._start_frame / self.sample_rate

    @property
    def end(self) -> float:
        """End in seconds from the start of the recording."""
        return self.end_frame / self.sample_rate

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Clip):
            return NotImplemented
        return self._start_frame == other._start_frame and Audio.__eq__(self, other)

    __hash__ = None

    def __repr__(self) -> str:
        return f"Clip({self.start:.3f}-{self.end:.3f} s, {self.frames} frames x {self.channels} ch, {self.dtype}, {self.sample_rate} Hz)"


class Features(np.ndarray):
    """Model features: a float32 array of shape ``(frames, bins)``, row ``t`` being frame ``t``, with
    ``frame_rate`` (frames per second). It is a numpy array: ``feats.T`` gives ``(bins, frames)``,
    the layout Whisper's encoder takes (``feats.T[None]`` for a batch of one)."""

    frame_rate: float

    def __new__(cls, values: Any, frame_rate: float) -> "Features":
        arr = np.asarray(values, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[1] == 0:
            raise ValueError(f"features are a 2-D (frames, bins) array with at least 1 bin, received shape {arr.shape}")
        rate = float(frame_rate)
        if not (np.isfinite(rate) and rate > 0):
            raise ValueError(f"features need a positive frame rate, received {frame_rate!r}")
        obj = np.ascontiguousarray(arr).view(cls)
        obj.frame_rate = rate
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        self.frame_rate = getattr(obj, "frame_rate", None)

    def __reduce__(self):
        return (Features, (np.asarray(self), self.frame_rate))

    @property
    def frames(self) -> int:
        return int(self.shape[0])

    @property
    def bins(self) -> int:
        return int(self.shape[1]) if self.ndim == 2 else 0

    def __repr__(self) -> str:
        if self.ndim != 2:
            return repr(np.asarray(self))
        return f"Features({self.shape[0]} frames x {self.shape[1]} bins, {self.frame_rate:g} frames/s)"


def _values_equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_values_equal(x, y) for x, y in zip(a, b))
    return a == b


def payload_kind(value: Any) -> str:
    """A short name of a payload's kind, for error messages (same words as the engine)."""
    if isinstance(value, Audio):
        return "audio"
    if isinstance(value, VadResult):
        return "vad result"
    if _is_clip_list(value):
        return "clips"
    if isinstance(value, Features):
        return "features"
    if isinstance(value, dict):
        return "map"
    return "json"


def _is_clip_list(value: Any) -> bool:
    """A non-empty list of clips (an empty one is indistinguishable from a JSON list)."""
    return isinstance(value, list) and bool(value) and all(isinstance(c, Clip) for c in value)


def _is_audio_tuple(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], np.ndarray)
        and isinstance(value[1], (int, np.integer))
    )


def from_native(value: Any) -> Any:
    """Converts a value in the native module's plain shapes (``(ndarray, rate)`` tuples, dicts) into
    the Python payload model; values that already are (what the engine returns once
    ``remotemedia._runtime`` has registered the classes) pass through unchanged."""
    if isinstance(value, (Audio, VadResult, Features)):
        return value
    if _is_audio_tuple(value):
        return Audio._trusted(value[0], int(value[1]))
    if isinstance(value, dict) and set(value) == {"values", "frame_rate"} and isinstance(value["values"], np.ndarray):
        return Features(value["values"], value["frame_rate"])
    if isinstance(value, dict):
        converted = {k: from_native(v) for k, v in value.items()}
        if set(converted) in ({"segments", "frames", "audio"}, {"segments", "frames", "audio", "probabilities"}):
            converted["segments"] = [tuple(s) for s in converted["segments"]]
            converted["frames"] = np.asarray(converted["frames"], dtype=bool)
            if "probabilities" in converted:
                converted["probabilities"] = np.asarray(converted["probabilities"], dtype=np.float32)
            return VadResult(converted)
        return converted
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and set(v) == {"start_frame", "audio"} for v in value):
            # Clips in the plain shape: {"start_frame": k, "audio": (ndarray, rate)}.
            return [Clip._trusted_clip(v["audio"][0], int(v["audio"][1]), v["start_frame"]) for v in value]
        return [from_native(v) for v in value]
    return value


def to_native(value: Any) -> Any:
    """Converts a Python node's output into what the native module takes: audio as
    ``(ndarray, rate)`` tuples, VAD results and maps as dicts, clips as
    ``{"start_frame": k, "audio": (ndarray, rate)}``, JSON values as they are."""
    if isinstance(value, Clip):
        return {"start_frame": value.start_frame, "audio": (value.samples, value.sample_rate)}
    if isinstance(value, Audio):
        return (value.samples, value.sample_rate)
    if isinstance(value, Features):
        return {"values": np.ascontiguousarray(value, dtype=np.float32).view(np.ndarray), "frame_rate": value.frame_rate}
    if isinstance(value, dict):
        return {k: to_native(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_native(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
