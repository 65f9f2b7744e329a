"""The values that travel along a pipeline's edges, as Python sees them.

* :class:`~remotemedia.audio.Audio` -- audio.
* :class:`VadResult` -- what a ``VADNode`` or ``SileroVADNode`` produces: a mapping with
  ``segments`` (list of ``(start_s, end_s)`` tuples), ``frames`` (numpy bool array, one decision
  per frame), ``probabilities`` (numpy float32 array, one speech probability per frame; empty for
  ``VADNode``) and ``audio`` (the node's input, unchanged).
* ``dict`` -- named values (nodes with several outputs); an edge's ``output_key`` picks one.
* anything JSON can hold -- scores, labels, lists.

This module also converts the native module's plain values (``(ndarray, rate)`` tuples) to these.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .audio import Audio

__all__ = ["VadResult", "payload_kind", "from_native", "to_native"]


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
    if isinstance(value, dict):
        return "map"
    return "json"


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
    if isinstance(value, (Audio, VadResult)):
        return value
    if _is_audio_tuple(value):
        return Audio._trusted(value[0], int(value[1]))
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
        return [from_native(v) for v in value]
    return value


def to_native(value: Any) -> Any:
    """Converts a Python node's output into what the native module takes: audio as
    ``(ndarray, rate)`` tuples, VAD results and maps as dicts, JSON values as they are."""
    if isinstance(value, Audio):
        return (value.samples, value.sample_rate)
    if isinstance(value, dict):
        return {k: to_native(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_native(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
