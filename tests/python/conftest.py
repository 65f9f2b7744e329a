"""Shared fixtures: every pipeline test runs on both runtimes.

``runtime`` is ``"rust"`` or ``"python"``; pass it as ``runtime_hint`` so no fallback warning is
involved. Tests that need the native extension carry ``@pytest.mark.requires_native`` (or a module's
``pytestmark``); the ``"rust"`` cases of ``runtime`` need it too. Where ``remotemedia._native`` cannot
be imported those tests are skipped with the import error as the reason, unless
``REMOTEMEDIA_REQUIRE_NATIVE=1`` (the project's test script and CI set it), which makes a missing
extension a failure instead of a quiet skip. ``require_native()`` is the one place that decides.
"""

import os

import numpy as np
import pytest

from remotemedia import _runtime


def require_native():
    """Returns the native module, or skips (fails under REMOTEMEDIA_REQUIRE_NATIVE=1) with the reason."""
    if not _runtime.is_rust_runtime_available():
        reason = f"native module remotemedia._native not importable ({_runtime.native_import_error()})"
        if os.environ.get("REMOTEMEDIA_REQUIRE_NATIVE") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return _runtime.native_module()


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "requires_native: needs remotemedia._native; skipped without it, failed under REMOTEMEDIA_REQUIRE_NATIVE=1",
    )


def pytest_runtest_setup(item):
    if item.get_closest_marker("requires_native") is not None:
        require_native()


@pytest.fixture(params=["rust", "python"])
def runtime(request):
    if request.param == "rust":
        require_native()
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



def dominant_frequency(x, rate):
    """The frequency in Hz of the largest FFT bin of a mono signal (Hann-windowed)."""
    x = np.asarray(x, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return np.argmax(spectrum) * rate / x.size
