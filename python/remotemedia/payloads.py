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

The native engine builds these objects itself (``remotemedia._runtime`` registers the classes). This
module holds the pure runtime's rules for what a Python node may return (:func:`node_output`): the same rules, limits
and words as the native engine's conversion (``payload_from_py`` in src/python/convert.rs), so a
custom node's output is accepted or refused alike, and passed on as the same values, on both
runtimes.
"""

from __future__ import annotations

import json
import math
import operator
from typing import Any, Iterator, List

import numpy as np

from .audio import Audio
from .errors import InputError
from .limits import VALUE_ITEMS, VALUE_NESTING

__all__ = ["VadResult", "Clip", "Features", "OutputError", "payload_kind", "node_output",
           "private_copy"]


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


# ---- what a Python node may return ----


class OutputError(InputError):
    """A Python node returned a value that cannot be passed on (raised as the ``InputError`` of
    the node by the runtimes; this subclass only tells the pure runtime's executor where it came
    from)."""


def _has(obj: Any, name: str) -> bool:
    # As the engine's hasattr: any exception while looking counts as "no".
    try:
        return hasattr(obj, name)
    except Exception:  # noqa: BLE001
        return False


def _looks_like_audio(obj: Any) -> bool:
    if _has(obj, "samples") and _has(obj, "sample_rate"):
        return True
    return isinstance(obj, tuple) and len(obj) == 2 and _has(obj[0], "dtype")


def _quote_key(s: str) -> str:
    return json.dumps(s[:60] + "…" if len(s) > 60 else s, ensure_ascii=False)


def _unicode(s: str) -> bool:
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


_ACCEPTED = {np.dtype(np.float32): "f32", np.dtype(np.int16): "i16", np.dtype(np.int32): "i32"}


def _audio(obj: Any, what: str) -> Audio:
    """Audio a node returned, checked in the engine's order and words (``check_audio`` in
    src/python/convert.rs), as the engine's own copy: the caller's array is never passed on."""
    if isinstance(obj, tuple):
        samples, rate = obj
    else:
        try:
            samples, rate = obj.samples, obj.sample_rate
        except Exception as e:  # noqa: BLE001
            raise OutputError(f"{type(e).__name__}: {e}") from None
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, np.integer)) or not -(2**63) <= int(rate) < 2**63:
        raise OutputError(f"{what}: sample_rate must be an integer, got {type(rate).__name__}")
    rate = int(rate)
    if rate <= 0 or rate > 2**32 - 1:
        raise OutputError(f"{what}: sample_rate must be a positive number of Hz, got {rate}")
    if not isinstance(samples, np.ndarray) or samples.dtype not in _ACCEPTED:
        dtype = str(samples.dtype) if isinstance(samples, np.ndarray) else type(samples).__name__
        raise OutputError(f"{what}: samples must be a numpy array of float32, int16 or int32, got {dtype}")
    if not samples.flags.c_contiguous:
        raise OutputError(f"{what}: samples must be a C-contiguous array (use np.ascontiguousarray)")
    if samples.ndim not in (1, 2):
        raise OutputError(f"{what}: samples must be 1-D (mono) or 2-D (frames, channels), got a {samples.ndim}-D array")
    if samples.size == 0:
        raise OutputError(f"{what}: samples are empty (shape [{', '.join(str(n) for n in samples.shape)}])")
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    if channels > 65535:
        raise OutputError(f"{what}: unsupported channel count {channels}")
    if samples.dtype == np.float32:
        bad = ~np.isfinite(samples.reshape(-1))
        if bad.any():
            i = int(np.argmax(bad))
            raise OutputError(f"samples contain NaN or infinity ({int(bad.sum())} values, the first at frame {i // channels})")
    # The engine hands mono back as 1-D, whatever shape it came in.
    copy = np.array(samples.reshape(-1) if channels == 1 else samples, dtype=samples.dtype, order="C")
    return Audio._trusted(copy, rate)


class _Walk:
    """One conversion: where it is, what it has counted, which containers it is inside (the
    twin of ``Walk`` in src/python/convert.rs, check for check)."""

    def __init__(self) -> None:
        self.path: List[str] = []
        self.open: List[int] = []
        self.items = 0

    def at(self) -> str:
        p = self.path
        if len(p) > 10:
            return "output" + "".join(p[:5]) + "[…]" + "".join(p[-4:])
        return "output" + "".join(p)

    def count(self) -> None:
        self.items += 1
        if self.items > VALUE_ITEMS:
            raise OutputError(f"{self.at()}: more than {VALUE_ITEMS} values in one output")

    def enter(self, obj: Any) -> None:
        if id(obj) in self.open:
            raise OutputError(f"{self.at()}: contains itself (a reference cycle)")
        if len(self.open) >= VALUE_NESTING:
            raise OutputError(f"{self.at()}: nested more than {VALUE_NESTING} levels deep")
        self.open.append(id(obj))

    def leave(self) -> None:
        self.open.pop()

    def key(self, k: Any) -> str:
        if not isinstance(k, str):
            raise OutputError(f"{self.at()}: dict keys must be strings, got {type(k).__name__}")
        if not _unicode(k):
            raise OutputError(f"{self.at()}: a key that is not valid Unicode (a lone surrogate)")
        return str(k)

    def payload(self, obj: Any) -> Any:
        self.count()
        if isinstance(obj, list) and obj and all(_has(x, "start_frame") and _has(x, "samples") for x in obj):
            return self.clips(list(obj))
        if _looks_like_audio(obj):
            return _audio(obj, self.at())
        features = self.features(obj)
        if features is not None:
            return features
        if isinstance(obj, dict):
            if _is_vad_shaped(obj):
                return self.vad(obj)
            self.enter(obj)
            out = {}
            for k, v in obj.items():
                key = self.key(k)
                self.path.append(f"[{_quote_key(key)}]")
                out[key] = self.payload(v)
                self.path.pop()
            self.leave()
            # The engine keeps a map's keys in order (a BTreeMap).
            return {k: out[k] for k in sorted(out)}
        return self.json(obj, True)

    def clips(self, items: List[Any]) -> List["Clip"]:
        out = []
        for i, x in enumerate(items):
            self.path.append(f"[{i}]")
            self.count()
            try:
                start = operator.index(x.start_frame)
                if not 0 <= start < 2**64:
                    raise ValueError
            except Exception:  # noqa: BLE001
                raise OutputError(f"{self.at()}: start_frame must be a non-negative integer") from None
            a = _audio(x, self.at())
            out.append(Clip._trusted_clip(a.samples, a.sample_rate, start))
            self.path.pop()
        return out

    def features(self, obj: Any) -> Any:
        """Features (a 2-D float32 array with ``frame_rate``, or ``{"values": such an array,
        "frame_rate": r}``) as the runtime's own :class:`Features` copy; ``None`` for anything else."""
        if isinstance(obj, dict):
            if len(obj) != 2 or "values" not in obj or "frame_rate" not in obj:
                return None
            values, rate = obj["values"], obj["frame_rate"]
        elif _has(obj, "frame_rate") and _has(obj, "dtype"):
            values = obj
            try:
                rate = obj.frame_rate
            except Exception:  # noqa: BLE001
                return None
        else:
            return None
        if not isinstance(values, np.ndarray) or values.dtype != np.float32 or values.ndim != 2:
            return None
        if isinstance(rate, (str, bytes, bytearray, memoryview)):
            rate_ok = False
        else:
            try:
                rate = float(rate)
                rate_ok = True
            except Exception:  # noqa: BLE001
                rate_ok = False
        if not rate_ok:
            raise OutputError(f"{self.at()}: features: frame_rate must be a number, got {type(rate).__name__}")
        if values.shape[1] == 0:
            raise OutputError(f"{self.at()}: features: features need at least 1 bin per frame")
        if not (math.isfinite(rate) and rate > 0):
            from ._pure.schema import rust_display_f64

            raise OutputError(f"{self.at()}: features: features need a positive frame rate, found {rust_display_f64(rate)}")
        copy = np.array(values, dtype=np.float32, order="C").view(Features)
        copy.frame_rate = rate
        return copy

    def field(self, key: str, v: Any) -> Any:
        self.path.append(f"[{_quote_key(key)}]")
        self.count()
        return self.json(v, True)

    def vad(self, d: dict) -> "VadResult":
        """A VAD result (the engine's ``Walk::vad``): segments as (start_s, end_s) pairs of
        numbers, frames as booleans, probabilities as numbers, the audio checked as audio."""
        self.enter(d)
        segments = self.field("segments", d["segments"])
        if not isinstance(segments, list):
            raise OutputError(f"{self.at()}: a VAD result's segments must be a list of (start_s, end_s) pairs")
        if not all(isinstance(s, list) and len(s) == 2 and all(_json_number(x) for x in s) for s in segments):
            raise OutputError(f"{self.at()}: a VAD result's segments must be (start_s, end_s) pairs of numbers")
        self.path.pop()
        frames = self.field("frames", d["frames"])
        if not isinstance(frames, list):
            raise OutputError(f"{self.at()}: a VAD result's frames must be a list or array of booleans")
        if not all(isinstance(x, bool) for x in frames):
            raise OutputError(f"{self.at()}: a VAD result's frames must be booleans")
        self.path.pop()
        probabilities: List[Any] = []
        if "probabilities" in d:
            probabilities = self.field("probabilities", d["probabilities"])
            if not isinstance(probabilities, list):
                raise OutputError(f"{self.at()}: a VAD result's probabilities must be a list or array of numbers")
            if not all(_json_number(x) for x in probabilities):
                raise OutputError(f"{self.at()}: a VAD result's probabilities must be numbers")
            self.path.pop()
        self.path.append('["audio"]')
        self.count()
        audio = _audio(d["audio"], self.at())
        self.path.pop()
        self.leave()
        return VadResult(
            segments=[(float(a), float(b)) for a, b in segments],
            frames=np.array(frames, dtype=bool),
            probabilities=np.array(probabilities, dtype=np.float32),
            audio=audio,
        )

    def json(self, obj: Any, tolist: bool) -> Any:
        if obj is None:
            return None
        if isinstance(obj, bool):
            return bool(obj)
        if isinstance(obj, int):
            if -(2**63) <= obj < 2**64:
                return int(obj)
            raise OutputError(f"{self.at()}: an integer of {obj.bit_length()} bits is out of range (from -2**63 to 2**64-1)")
        if isinstance(obj, float):
            v = float(obj)
            if v != v or v in (float("inf"), float("-inf")):
                shown = "nan" if v != v else ("inf" if v > 0 else "-inf")
                raise OutputError(f"{self.at()}: {shown} cannot be passed between nodes (JSON numbers are finite); use None")
            return v
        if isinstance(obj, str):
            if not _unicode(obj):
                raise OutputError(f"{self.at()}: a string that is not valid Unicode (a lone surrogate)")
            return str(obj)
        if tolist and _has(obj, "tolist"):
            # numpy arrays and scalars; the size first, before tolist() allocates it all.
            try:
                size = obj.size
                size = size if isinstance(size, int) and size >= 0 else None
            except Exception:  # noqa: BLE001
                size = None
            if size is not None and self.items + size > VALUE_ITEMS:
                raise OutputError(f"{self.at()}: more than {VALUE_ITEMS} values in one output")
            try:
                converted = obj.tolist()
            except Exception as e:  # noqa: BLE001
                raise OutputError(f"{self.at()}: {type(e).__name__}: {e}") from None
            return self.json(converted, False)
        if _looks_like_audio(obj):
            raise OutputError(f"{self.at()}: audio inside a list cannot be passed between nodes; return a dict of named audio")
        if isinstance(obj, dict):
            self.enter(obj)
            out = {}
            for k, v in obj.items():
                key = self.key(k)
                self.path.append(f"[{_quote_key(key)}]")
                self.count()
                out[key] = self.json(v, True)
                self.path.pop()
            self.leave()
            return {k: out[k] for k in sorted(out)}
        if isinstance(obj, (list, tuple)):
            self.enter(obj)
            items = []
            for i, x in enumerate(list(obj)):
                self.path.append(f"[{i}]")
                self.count()
                items.append(self.json(x, True))
                self.path.pop()
            self.leave()
            return items
        if isinstance(obj, (set, frozenset)):
            hint = "; a set has no order: return sorted(...) or a list"
        elif _has(obj, "__next__"):
            hint = "; an iterator or generator is never consumed (it could be endless): return a list"
        else:
            hint = ""
        raise OutputError(
            f"{self.at()}: cannot pass a {type(obj).__name__} between nodes; "
            f"return audio, a dict or JSON values (None, bool, int, float, str, list){hint}"
        )


def _is_vad_shaped(d: dict) -> bool:
    """Exactly the keys of a VAD result: segments, frames, audio (and probabilities)."""
    keys = set(d) if len(d) in (3, 4) else set()
    return keys in ({"segments", "frames", "audio"}, {"segments", "frames", "audio", "probabilities"})


def _json_number(x: Any) -> bool:
    # After the JSON walk: ints and floats, not booleans (serde's as_f64 is None for a bool).
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def node_output(value: Any) -> Any:
    """What a Python node returned, as the values the engine passes on (and returns from a
    sink): audio as the runtime's own :class:`Audio` copy, clips, features and VAD-shaped dicts
    as :class:`Clip`, :class:`Features` and :class:`VadResult` copies, other dicts with their keys
    in order, tuples and numpy arrays as lists, numpy scalars as numbers. Raises :class:`OutputError` naming where in the
    value a rule or limit was broken (see ``payload_from_py`` in src/python/convert.rs for the
    rules; the native engine applies the same ones with the same words)."""
    return _Walk().payload(value)


def payload_arrays(value: Any) -> Iterator[np.ndarray]:
    """Every numpy array a payload holds (audio and clip samples, features, a VAD result's arrays,
    those inside dicts, lists and tuples)."""
    if isinstance(value, (Audio, Clip)):
        yield value.samples
    elif isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from payload_arrays(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from payload_arrays(v)


def unshared(value: Any, sources: List[np.ndarray]) -> Any:
    """``value``, or its :func:`private_copy` where one of its arrays shares memory with one of
    ``sources`` (a run's input arrays): an output of the pure runtime never aliases the caller's
    input, as the native engine's never does (a pass-through node there hands back its own copy)."""
    if sources and any(np.may_share_memory(a, s) for a in payload_arrays(value) for s in sources):
        return private_copy(value)
    return value


def private_copy(value: Any) -> Any:
    """A payload with every array and container copied, for a Python node on the pure runtime:
    the native engine hands each node values of its own, so a node that modifies its input in
    place changes neither the caller's array nor what other nodes receive."""
    if isinstance(value, Clip):
        return Clip._trusted_clip(value.samples.copy(), value.sample_rate, value.start_frame)
    if isinstance(value, Audio):
        return Audio._trusted(value.samples.copy(), value.sample_rate)
    if isinstance(value, Features):
        copy = np.array(value, dtype=np.float32, order="C").view(Features)
        copy.frame_rate = value.frame_rate
        return copy
    if isinstance(value, VadResult):
        return VadResult({k: private_copy(v) for k, v in value.items()})
    if isinstance(value, dict):
        return {k: private_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [private_copy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(private_copy(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.copy()
    return value
