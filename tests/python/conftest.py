"""Shared fixtures: every pipeline test runs on both runtimes.

``runtime`` is ``"rust"`` or ``"python"``; pass it as ``runtime_hint`` so no fallback warning is
involved. Tests that need the native extension carry ``@pytest.mark.requires_native`` (or a module's
``pytestmark``); the ``"rust"`` cases of ``runtime`` need it too. Where ``remotemedia._native`` cannot
be imported those tests are skipped with the import error as the reason, unless
``REMOTEMEDIA_REQUIRE_NATIVE=1`` (the project's test script and CI set it), which makes a missing
extension a failure instead of a quiet skip. ``require_native()`` is the one place that decides.

``REMOTEMEDIA_BLOCK_NATIVE=1`` makes ``remotemedia._native`` unimportable (as on a platform without a
wheel), so the whole suite runs on the pure-numpy runtime: every test not marked ``requires_native``
must then pass as it does with the extension (the product's "same code, same results" promise), and
scripts/test.sh runs that pass too. native_block/sitecustomize.py does it, here before ``remotemedia``
is first imported and, through ``PYTHONPATH``, in every Python subprocess the variable reaches.
"""

import os
import runpy

import numpy as np
import pytest

NATIVE_BLOCK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "native_block")
runpy.run_path(os.path.join(NATIVE_BLOCK_DIR, "sitecustomize.py"))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (NATIVE_BLOCK_DIR, os.environ.get("PYTHONPATH")) if p)

from remotemedia import _runtime  # noqa: E402  (after the block above)


NATIVE_MISSING = "native module remotemedia._native not importable"


def require_native():
    """Returns the native module, or skips (fails under REMOTEMEDIA_REQUIRE_NATIVE=1) with the reason."""
    if not _runtime.is_rust_runtime_available():
        reason = f"{NATIVE_MISSING} ({_runtime.native_import_error()})"
        if os.environ.get("REMOTEMEDIA_REQUIRE_NATIVE") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return _runtime.native_module()


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "requires_native: needs remotemedia._native; skipped without it, failed under REMOTEMEDIA_REQUIRE_NATIVE=1",
    )


def pytest_collection_modifyitems(items):
    # A "rust" case of `runtime` needs the extension whether it comes from the fixture below or
    # from a test's own parametrize (which replaces the fixture): both get the marker here.
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("runtime") == "rust":
            item.add_marker(pytest.mark.requires_native)


def pytest_runtest_setup(item):
    if item.get_closest_marker("requires_native") is not None:
        require_native()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # The one way a test here may skip is a missing extension (require_native); any other skip
    # (a skipif, an importorskip) would let a check vanish quietly, so it is reported as a failure.
    report = (yield).get_result()
    if report.skipped and not getattr(report, "wasxfail", None):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if NATIVE_MISSING not in reason:
            report.outcome = "failed"
            report.longrepr = f"skipped other than by require_native / requires_native: {reason}"


@pytest.fixture(params=["rust", "python"])
def runtime(request):
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
