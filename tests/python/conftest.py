"""Shared fixtures: every pipeline test runs on both runtimes where it can.

``runtime`` is ``"rust"`` (skipped, with the import error as reason, when ``remotemedia._native``
cannot be imported), ``"python"``, or the native code path of the wrapper against a Python stand-in
for the bindings; pass it as ``runtime_hint`` so no fallback warning is involved.
"""

import numpy as np
import pytest

from remotemedia import _runtime


@pytest.fixture(params=["rust", "python", "fake-native"])
def runtime(request, monkeypatch):
    """``fake-native`` runs the wrapper's native code path against ``fake_native.py``."""
    if request.param == "rust" and not _runtime.is_rust_runtime_available():
        pytest.skip(f"native module remotemedia._native not importable ({_runtime.native_import_error()})")
    if request.param == "fake-native":
        import fake_native

        _runtime.is_rust_runtime_available()  # probe first, so the patch is not overwritten
        monkeypatch.setattr(_runtime, "_native", fake_native)
        return "rust"
    return request.param


def tone(freq_hz=440.0, rate=16000, seconds=0.1, amplitude=0.5, channels=None, dtype=np.float32):
    """A sine tone; ``channels`` makes it 2-D (frames, channels) with channel k scaled by 1/(k+1)."""
    t = np.arange(int(round(rate * seconds))) / rate
    x = amplitude * np.sin(2 * np.pi * freq_hz * t)
    if channels is not None:
        x = np.stack([x / (k + 1) for k in range(channels)], axis=1)
    if np.dtype(dtype).kind == "i":
        scale = 32767 if np.dtype(dtype) == np.int16 else 2**31 - 1
        return np.round(x * scale).astype(dtype)
    return x.astype(dtype)


def require_twin(runtime, name):
    """Skips a python-runtime case whose numpy kernel module (merged from another branch) is missing."""
    if runtime == "python" or not _runtime.is_rust_runtime_available() or _runtime.native_module().__name__ == "fake_native":
        import importlib

        try:
            importlib.import_module(f"remotemedia._pure.{name}")
        except ImportError as e:
            pytest.skip(f"remotemedia._pure.{name} not available yet ({e})")


def dominant_frequency(x, rate):
    """The frequency in Hz of the largest FFT bin of a mono signal (Hann-windowed)."""
    x = np.asarray(x, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return np.argmax(spectrum) * rate / x.size
