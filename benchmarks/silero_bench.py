"""SileroVADNode against onnxruntime (1 intra-op thread) on the silero-vad 6.2.3 wheel's model, in
one run, on the same audio (speech with pauses in pink noise, 16 kHz):

1. Streaming: one 32 ms chunk (512 samples) pushed at a time from Python through
   ``pipeline.stream()``, against onnxruntime called per chunk with silero-vad's contract
   (context + state kept by the caller): time per chunk, median and p99. Target <= 0.5x.
2. Whole buffers of 10 s and 60 s: ``pipeline.run_sync`` against onnxruntime over every chunk of
   the buffer (as ``get_speech_timestamps`` runs it): time per second of audio, median and p99
   over the repeats. Target <= 0.15x.
3. ``run_batch`` of ``--items`` 5 s files with 1 and 2 workers, for SileroVADNode and, as the
   yardstick, the DSP ``VADNode``: items per second and the 2-worker / 1-worker ratio.

Needs the native extension built with ``--release`` and tests/requirements/silero*.pip.

    python benchmarks/silero_bench.py [--quick] [--items 1000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "python"))

import silero_reference as ref  # noqa: E402
from remotemedia import Pipeline, SileroVADNode, VADNode  # noqa: E402
from remotemedia import _runtime  # noqa: E402

RATE = 16000


def audio(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like bursts (harmonics under an on/off envelope) in pink noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    env = (np.sin(2 * np.pi * 0.4 * t + seed) > 0.2).astype(np.float64)
    f0 = 110 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    x = sum(np.sin(h * phase) / h for h in range(1, 12)) * env * 0.2
    white = np.fft.rfft(rng.standard_normal(n))
    pink = np.fft.irfft(white / np.sqrt(np.maximum(np.fft.rfftfreq(n, 1 / RATE), 20.0)), n)
    return (x + 0.02 * pink / np.std(pink)).astype(np.float32)


def stats(us):
    v = np.sort(np.asarray(us, dtype=np.float64))
    return float(np.median(v)), float(v[int(round(0.99 * (v.size - 1)))])


def streaming(n_chunks: int):
    x = audio(n_chunks * 512 / RATE + 1, seed=1)
    ort = ref.OrtSilero()
    ort.reset_states()
    ours, theirs = [], []
    with Pipeline([SileroVADNode(node_id="vad")]) as p:
        with p.stream() as s:
            # Interleaved, so both see the same machine load.
            for k in range(n_chunks):
                chunk = x[k * 512 : (k + 1) * 512]
                t = time.perf_counter_ns()
                s.push((chunk, RATE))
                ours.append((time.perf_counter_ns() - t) / 1e3)
                t = time.perf_counter_ns()
                ort(chunk, RATE).item()
                theirs.append((time.perf_counter_ns() - t) / 1e3)
    return stats(ours[10:]), stats(theirs[10:])


def whole(seconds: float, repeats: int):
    x = audio(seconds, seed=2)
    ort = ref.OrtSilero()
    ours, theirs = [], []
    with Pipeline([SileroVADNode(node_id="vad")]) as p:
        p.run_sync((x, RATE))
        for _ in range(repeats):
            t = time.perf_counter()
            p.run_sync((x, RATE))
            ours.append((time.perf_counter() - t) / seconds * 1e6)
            t = time.perf_counter()
            ort.probabilities(x, RATE)
            theirs.append((time.perf_counter() - t) / seconds * 1e6)
    return stats(ours), stats(theirs)


def batch(node_factory, items: int, repeats: int):
    xs = [audio(5.0, seed=10 + i % 50) for i in range(items)]
    out = {}
    for workers in (1, 2):
        with Pipeline([node_factory()], workers=workers) as p:
            p.run_batch([(x, RATE) for x in xs[:4]])
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                p.run_batch([(x, RATE) for x in xs])
                times.append(time.perf_counter() - t)
        out[workers] = items / float(np.median(times))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not _runtime.is_rust_runtime_available():
        print(f"the native extension is not importable: {_runtime.native_import_error()}", file=sys.stderr)
        return 1
    result = {}
    n = 300 if args.quick else 2000
    (om, op), (tm, tp) = streaming(n)
    result["streaming_us_per_chunk"] = {"silero_vad_node": [om, op], "onnxruntime": [tm, tp], "ratio_median": om / tm}
    print(f"streaming, 1 chunk (32 ms) per push, {n} pushes: SileroVADNode {om:.1f} / {op:.1f} µs (median / p99), "
          f"onnxruntime {tm:.1f} / {tp:.1f} µs -> {om / tm:.3f}x (target <= 0.5x)")
    for seconds in (10.0, 60.0):
        reps = 3 if args.quick else (15 if seconds == 10 else 5)
        (om, op), (tm, tp) = whole(seconds, reps)
        result[f"whole_{seconds:g}s_us_per_audio_s"] = {"silero_vad_node": [om, op], "onnxruntime": [tm, tp], "ratio_median": om / tm}
        print(f"whole buffer {seconds:g} s, {reps} runs: SileroVADNode {om:.0f} / {op:.0f} µs per s of audio, "
              f"onnxruntime {tm:.0f} / {tp:.0f} µs -> {om / tm:.3f}x (target <= 0.15x)")
    items = min(args.items, 100) if args.quick else args.items
    reps = 1 if args.quick else 3
    for name, factory in (("SileroVADNode", lambda: SileroVADNode(node_id="vad")), ("VADNode", lambda: VADNode(node_id="vad"))):
        r = batch(factory, items, reps)
        result[f"batch_{name}_items_per_s"] = {"1": r[1], "2": r[2], "ratio": r[2] / r[1]}
        print(f"run_batch {items} x 5 s, {name}: 1 worker {r[1]:.0f} items/s, 2 workers {r[2]:.0f} items/s "
              f"-> {r[2] / r[1]:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
