"""The engine builds its outputs as the package's own objects once ``remotemedia._runtime`` has
registered them, and in the plain shapes (``(samples, rate)`` tuples, dicts) before: run in a fresh
interpreter, where nothing has registered the classes yet."""

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.requires_native

SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    from remotemedia import _native
    manifest = json.dumps({"version": "1.0", "nodes": [
        {"id": "rs", "type": "AudioResampleNode", "params": {"output_rate": 16000}},
        {"id": "vad", "type": "VADNode"}], "edges": [{"from": "rs", "to": "vad"}]})
    t = np.arange(96000) / 48000
    bursts = (t > 0.5) & (t < 1.2)  # a voiced-like burst between quiet noise
    x = (0.3 * bursts * np.sin(2 * np.pi * 220 * t) + 0.001 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)
    plain = _native.NativePipeline(manifest).run({"": (x, 48000)})["vad"]
    assert type(plain) is dict and type(plain["audio"]) is tuple, plain
    assert plain["audio"][1] == 16000 and plain["audio"][0].shape == (32000,)
    assert len(plain["segments"]) == 1, plain["segments"]

    from remotemedia import Audio, _runtime
    from remotemedia.payloads import VadResult
    assert _runtime.is_rust_runtime_available()  # loads and registers
    out = _native.NativePipeline(manifest).run({"": (x, 48000)})["vad"]
    assert type(out) is VadResult and type(out.audio) is Audio, out
    assert out.audio.sample_rate == 16000
    np.testing.assert_array_equal(out.audio.samples, plain["audio"][0])
    assert out.segments == plain["segments"] and type(out.segments[0]) is tuple
    assert out.frames.dtype == np.bool_ and np.array_equal(out.frames, plain["frames"])
    print("ok")
    """
)


def test_outputs_are_package_objects_once_registered_and_plain_shapes_before():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
