"""The references the Silero tests compare against, run in the test process (tests/requirements/silero*.pip):

* ``OrtSilero``: onnxruntime (1 intra-op thread) running the silero-vad 6.2.3 wheel's own
  ``silero_vad.onnx`` with the package's chunking: 512 new samples (256 at 8 kHz) after the
  previous call's last 64 (32), state ``[2, 1, 128]``, ``sr`` as int64; the model object
  ``get_speech_timestamps`` expects (``model(chunk, sr).item()``, ``reset_states()``).
* ``get_speech_timestamps``: silero-vad's own function from ``silero_vad/utils_vad.py``.

That module imports torch at the top for its tensor plumbing, but ``get_speech_timestamps``
itself only slices the 1-D audio, zero-pads the last chunk (``torch.nn.functional.pad``), asks
the model for each chunk's probability and hands the list to the pure-Python
``get_speech_timestamps_from_probs``. Rather than installing torch (a CPU wheel is ~200 MB) this
module installs, only when torch is not importable, a stand-in ``torch`` module with exactly the
names utils_vad touches at import (``Tensor``, ``device``, ``no_grad``, ``set_num_threads``) and in
``get_speech_timestamps`` (``is_tensor``, ``nn.functional.pad``), implemented on numpy arrays;
every line of silero-vad's logic runs unchanged. If torch is installed, the real one is used.
"""

from __future__ import annotations

import importlib
import sys
import types
from importlib.util import find_spec
from pathlib import Path
from typing import Dict, List

import numpy as np

GEOMETRY = {16000: (512, 64), 8000: (256, 32)}


def _install_torch_stand_in() -> None:
    if "torch" in sys.modules or find_spec("torch") is not None:
        return
    torch = types.ModuleType("torch")
    torch.__doc__ = "numpy stand-in for the few torch names silero_vad.utils_vad uses (tests only)"

    class Tensor(np.ndarray):
        pass

    def no_grad():
        class _NoGrad:
            def __call__(self, fn):
                return fn

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        return _NoGrad()

    def pad(x, widths, mode="constant", value=0.0):
        return np.pad(np.asarray(x), [(int(widths[0]), int(widths[1]))], mode=mode, constant_values=value)

    torch.Tensor = Tensor
    torch.device = lambda name: name
    torch.no_grad = no_grad
    torch.set_num_threads = lambda n: None
    torch.is_tensor = lambda x: isinstance(x, np.ndarray)
    torch.nn = types.ModuleType("torch.nn")
    torch.nn.functional = types.ModuleType("torch.nn.functional")
    torch.nn.functional.pad = pad
    sys.modules["torch"] = torch
    sys.modules["torch.nn"] = torch.nn
    sys.modules["torch.nn.functional"] = torch.nn.functional


def utils_vad():
    """silero-vad's ``utils_vad`` module (real code; torch stand-in if torch is absent)."""
    _install_torch_stand_in()
    return importlib.import_module("silero_vad.utils_vad")


def onnx_path() -> Path:
    spec = find_spec("silero_vad")
    if spec is None or spec.origin is None:
        raise RuntimeError("silero-vad is not installed (tests/requirements/silero.nodeps.pip)")
    return Path(spec.origin).parent / "data" / "silero_vad.onnx"


class OrtSilero:
    """The wheel's ONNX model under onnxruntime, with silero-vad's per-call contract."""

    def __init__(self):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path()), opts, providers=["CPUExecutionProvider"])
        self.reset_states()

    def reset_states(self) -> None:
        self.state = np.zeros((2, 1, 128), dtype=np.float32)
        self.context = None
        self.sr = None

    def __call__(self, chunk, sr: int) -> np.ndarray:
        window, ctx = GEOMETRY[sr]
        x = np.asarray(chunk, dtype=np.float32).reshape(1, -1)
        if x.shape[1] != window:
            raise ValueError(f"chunk of {x.shape[1]} samples at {sr} Hz; expected {window}")
        if self.sr != sr:
            self.reset_states()
            self.sr = sr
        if self.context is None:
            self.context = np.zeros((1, ctx), dtype=np.float32)
        x = np.concatenate([self.context, x], axis=1)
        out, self.state = self.session.run(None, {"input": x, "state": self.state, "sr": np.array(sr, dtype=np.int64)})
        self.context = x[:, -ctx:]
        return out[0]

    def probabilities(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """One probability per chunk of a whole buffer, the last chunk zero-padded."""
        window, _ = GEOMETRY[sr]
        self.reset_states()
        x = np.asarray(audio, dtype=np.float32)
        padded = np.zeros(-(-x.size // window) * window, dtype=np.float32)
        padded[: x.size] = x
        return np.array([self(padded[i : i + window], sr).item() for i in range(0, padded.size, window)], dtype=np.float32)


def get_speech_timestamps(audio: np.ndarray, model, sr: int, **params) -> List[Dict[str, int]]:
    """silero-vad's ``get_speech_timestamps`` (segments in samples)."""
    return utils_vad().get_speech_timestamps(np.asarray(audio, dtype=np.float32), model, sampling_rate=sr, **params)


def timestamps_from_probs(probs, sr: int, length: int, **params) -> List[Dict[str, int]]:
    """silero-vad's ``get_speech_timestamps_from_probs`` on given probabilities."""
    return utils_vad().get_speech_timestamps_from_probs(
        [float(p) for p in probs], sampling_rate=sr, audio_length_samples=length, **params
    )


class FixedProbabilities:
    """A 'model' that answers with given probabilities in order: runs get_speech_timestamps'
    chunking on our own probabilities."""

    def __init__(self, probs):
        self.probs = list(probs)
        self.i = 0

    def reset_states(self) -> None:
        self.i = 0

    def __call__(self, chunk, sr):
        p = self.probs[self.i]
        self.i += 1
        return np.array([p], dtype=np.float32)
