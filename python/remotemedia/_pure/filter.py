"""``FilterNode`` in numpy: the twin of ``src/nodes/filter.rs`` (Butterworth filters and RBJ cookbook
bands, applied in order as one cascade of sections from ``sos.py``; zero-phase for whole buffers;
state carried across a streaming session's chunks). Same checks, same words, same results up to
float rounding.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

import numpy as np

from ..audio import Audio
from ..errors import InputError
from .builtin import _as_f32_frames, _expect_audio, _one, _shaped_like, check_finite
from .schema import rust_display_f64 as _num
from .sos import Cascade, butterworth, cookbook

__all__ = ["FilterKernel", "FilterStream"]

TYPE_NAME = "FilterNode"
_BUTTERWORTH = ("lowpass", "highpass", "bandpass", "bandstop")


def design(bands, rate: int) -> np.ndarray:
    """Every band's sections at ``rate``, in order (``FilterParams::design`` in Rust)."""
    nyquist = rate / 2.0
    rows = []
    for i, band in enumerate(bands):
        kind = band["type"]
        fields = ("low_hz", "high_hz") if kind in ("bandpass", "bandstop") else ("freq_hz",)
        for field in fields:
            f = float(band[field])
            if f >= nyquist:
                raise InputError(
                    f'{TYPE_NAME} bands[{i}] ("{kind}"): {field} {_num(f)} Hz is not below the Nyquist frequency '
                    f"({_num(nyquist)} Hz) of {rate} Hz audio"
                )
        if kind in _BUTTERWORTH:
            lo, hi = (band["freq_hz"], 0.0) if len(fields) == 1 else (band["low_hz"], band["high_hz"])
            rows.append(butterworth(int(band["order"]), kind, float(lo), float(hi), float(rate)))
        else:
            rows.append(cookbook(kind, float(band["freq_hz"]), float(band["q"]), float(band.get("gain_db") or 0.0), float(rate)))
    return np.concatenate(rows) if rows else np.zeros((0, 6))


class FilterKernel:
    """The whole-buffer node: a fresh cascade per buffer (designs kept per rate and channel count)."""

    def __init__(self, params: Dict[str, Any]):
        self.bands = params["bands"]
        self.zero_phase = bool(params.get("zero_phase"))
        self.cascade: Optional[Cascade] = None
        self.key = None

    def cascade_for(self, rate: int, channels: int) -> Cascade:
        if self.key != (rate, channels):
            self.cascade, self.key = Cascade(design(self.bands, rate), channels), (rate, channels)
        return self.cascade

    def run(self, audio: Audio, continuing: bool = False) -> Audio:
        frames = _as_f32_frames(audio.samples) if audio.samples.size else np.zeros((0, audio.channels), np.float32)
        cascade = self.cascade_for(audio.sample_rate, max(audio.channels, 1))
        check_finite(TYPE_NAME, frames.reshape(-1))
        if not continuing:
            cascade.reset()
        out = cascade.filtfilt(frames) if self.zero_phase else cascade.process(frames)
        return Audio._trusted(_shaped_like(out, audio.samples), audio.sample_rate)

    def __call__(self, inputs: Mapping[str, Any]) -> Audio:
        return self.run(_expect_audio(_one(inputs, TYPE_NAME)))


class FilterStream(FilterKernel):
    """One streaming session's ``FilterNode``: the state flows from chunk to chunk."""

    def __init__(self, params: Dict[str, Any]):
        super().__init__(params)
        self.started = False

    def push(self, inputs: Mapping[str, Any]) -> Audio:
        audio = _expect_audio(_one(inputs, TYPE_NAME))
        if self.zero_phase:
            raise InputError(
                f"{TYPE_NAME} with zero_phase filters whole buffers forward and backward; a streaming session "
                "cannot look ahead: use zero_phase: false"
            )
        if self.started and self.key != (audio.sample_rate, max(audio.channels, 1)):
            rate, ch = self.key
            raise InputError(
                f"this stream started with audio at {rate} Hz and {ch} channel(s); a chunk at {audio.sample_rate} Hz "
                f"with {audio.channels} channel(s) cannot continue it"
            )
        out = self.run(audio, continuing=self.started)
        self.started = True
        return out

    def finish(self, inputs: Optional[Mapping[str, Any]]) -> Optional[Audio]:
        return self.push(inputs) if inputs is not None else None
