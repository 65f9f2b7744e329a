"""The nodes' portable paths against their vector kernels: ``REMOTEMEDIA_NO_SIMD=1`` sends every
kernel of ours down the path a CPU without AVX2/FMA/AVX-512 takes (``nodes::cpu``). CI machines
have those instructions, so without this the portable paths would never run outside their unit
tests. A child process computes each node's output with the switch on; this one, with it off,
computes the same and compares: the same results within each node's float32 budget."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.requires_native

CHILD = r"""
import json, sys
import numpy as np
from remotemedia import Pipeline, _native
from remotemedia import LogMelNode, FbankNode, MfccNode, FilterNode, LoudnessNode, DenoiseNode, SileroVADNode, VADNode

def speechy(rate, seconds, seed):
    t = np.arange(int(rate * seconds)) / rate
    env = (np.sin(2 * np.pi * 1.3 * t + seed) > 0) * 0.5
    x = sum(np.sin(2 * np.pi * (130 + 11 * seed) * h * t) / h for h in range(1, 7)) * env * 0.3
    return (x + np.random.default_rng(seed).standard_normal(t.size) * 0.01).astype(np.float32)

x16 = speechy(16000, 3.0, 1)
x48 = np.ascontiguousarray(np.stack([speechy(48000, 1.0, 2), speechy(48000, 1.0, 3)], axis=1))
runs = {
    "log_mel": ([LogMelNode(node_id="n")], x16, 16000),
    "fbank": ([FbankNode(node_id="n")], x16, 16000),
    "mfcc": ([MfccNode(node_id="n")], x16, 16000),
    "filter": ([FilterNode([{"type": "lowpass", "freq_hz": 4000.0, "order": 4}], node_id="n")], x48, 48000),
    "loudness": ([LoudnessNode(node_id="n")], x48, 48000),
    "denoise": ([DenoiseNode(node_id="n")], x16, 16000),
    "silero": ([SileroVADNode(node_id="n")], x16, 16000),
    "vad": ([VADNode(node_id="n")], x16, 16000),
}
out = {}
for name, (nodes, x, rate) in runs.items():
    r = Pipeline(nodes, runtime_hint="rust").run_sync((x, rate))["n"]
    if isinstance(r, dict) and "frames" in r:
        out[name] = np.asarray(r["probabilities"] if r["probabilities"].size else r["frames"], dtype=np.float32)
    elif isinstance(r, dict) and "loudness" in r:
        out[name] = np.asarray(r["audio"].samples, dtype=np.float32)
        report = r["loudness"]
        out[name + "_report"] = np.array([report["integrated_lufs"], report["true_peak_dbtp"]], dtype=np.float32)
    else:
        out[name] = np.asarray(getattr(r, "samples", r), dtype=np.float32)
np.savez(sys.argv[1], **out)
print(json.dumps(_native.simd_features()))
"""

# Largest difference allowed between the two paths, by node (absolute, in the output's units):
# the same operations in another order or width, so float32 rounding apart.
BUDGET = {"log_mel": 1e-4, "fbank": 1e-3, "mfcc": 1e-3, "filter": 1e-5, "loudness": 1e-5, "loudness_report": 1e-3, "denoise": 1e-5,
          "silero": 1e-4, "vad": 0.0}


def run_child(tmp_path, no_simd):
    env = dict(os.environ)
    env.pop("REMOTEMEDIA_NO_SIMD", None)
    if no_simd:
        env["REMOTEMEDIA_NO_SIMD"] = "1"
    out = tmp_path / ("portable.npz" if no_simd else "vector.npz")
    done = subprocess.run([sys.executable, "-c", CHILD, str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return dict(np.load(out)), json.loads(done.stdout.strip().splitlines()[-1])


def test_every_node_gives_the_same_results_on_its_portable_path(tmp_path):
    vector, features = run_child(tmp_path, no_simd=False)
    portable, off = run_child(tmp_path, no_simd=True)
    assert not any(off["used"].values()), off
    assert off["hardware"] == features["hardware"]
    assert features["used"] == features["hardware"]
    # Without AVX2 both runs took the portable paths: then they must agree exactly.
    vector_paths = features["hardware"]["avx2"]
    for name, want in vector.items():
        got = portable[name]
        assert got.shape == want.shape, name
        diff = float(np.max(np.abs(got.astype(np.float64) - want))) if want.size else 0.0
        assert diff <= (BUDGET[name] if vector_paths else 0.0), f"{name}: portable path differs by {diff}"
