"""The cleaning nodes against the Python packages users call today, measured interleaved in one
process: FilterNode against ``scipy.signal.sosfilt`` (same Butterworth high-pass order 4 + a peaking
band), LoudnessNode against ``pyloudnorm``'s integrated loudness (like for like: ``mode="measure",
true_peak=False``; also with the true peak, and the default normalize mode), DenoiseNode
(stationary) against ``noisereduce.reduce_noise(stationary=True)`` with the same settings; each as
time per second of audio (median and p99). Then the streaming push cost of each node per 20 ms
chunk. Needs a release build (``maturin develop --release``) and tests/requirements/cleaning.pip.

    python benchmarks/cleaning_bench.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import noisereduce as nr
import pyloudnorm as pyln
import scipy.signal as ss

from remotemedia import DenoiseNode, FilterNode, LoudnessNode, Pipeline

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
import noisy_speech as ns  # noqa: E402
from python_bench import interleaved, summarize  # noqa: E402  (this folder is on sys.path)


def stream_cost(node, x, rate, chunk):
    session = Pipeline([node], runtime_hint="rust").stream()
    clock = time.perf_counter_ns
    times = []
    for i in range(0, x.shape[0] - chunk + 1, chunk):
        part = x[i : i + chunk]
        t = clock()
        session.push((part, rate))
        times.append(clock() - t)
    session.close()
    return summarize(times[10:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    iters = 5 if args.quick else 20
    out = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}

    # Filters: 10 s of stereo 48 kHz noise.
    rate, secs = 48000, 10.0
    x = (np.random.default_rng(0).standard_normal((int(rate * secs), 2)) * 0.1).astype(np.float32)
    bands = [{"type": "highpass", "freq_hz": 80.0, "order": 4}, {"type": "peaking", "freq_hz": 3000.0, "gain_db": 4.0, "q": 1.0}]
    sos = np.concatenate([ss.butter(4, 80.0, "highpass", fs=rate, output="sos"), np.array([[1, 0, 0, 1, 0, 0.0]])])
    fp = Pipeline([FilterNode(bands, node_id="f")], runtime_hint="rust")
    r = interleaved(iters, 2, [lambda: fp.run_sync((x, rate)), lambda: ss.sosfilt(sos, x, axis=0)], per=secs)
    out["filter_48k_stereo_per_s"] = {"remotemedia": r[0], "scipy_sosfilt": r[1]}

    # Loudness: the same stereo 48 kHz signal. Like for like: integrated loudness only (no true
    # peak) against pyloudnorm, which computes nothing else; then the measure mode with the true
    # peak (the default report) and the default normalize mode (measure + true peak + gain).
    meter = pyln.Meter(rate)
    x64 = x.astype(np.float64)
    lean = Pipeline([LoudnessNode(mode="measure", true_peak=False, node_id="l")], runtime_hint="rust")
    full = Pipeline([LoudnessNode(mode="measure", node_id="l")], runtime_hint="rust")
    norm = Pipeline([LoudnessNode(node_id="l")], runtime_hint="rust")
    r = interleaved(iters, 2, [lambda: lean.run_sync((x, rate)), lambda: full.run_sync((x, rate)),
                               lambda: norm.run_sync((x, rate)), lambda: meter.integrated_loudness(x64)], per=secs)
    out["loudness_48k_stereo_per_s"] = {"remotemedia measure, true_peak=False": r[0], "remotemedia measure": r[1],
                                        "remotemedia normalize (default)": r[2], "pyloudnorm": r[3]}

    # Denoise: a noisy-speech clip at 16 kHz, 10 dB white noise.
    item = ns.noisy_set(snrs=(10,), kinds=("white",), n_clips=1)[0]
    y = item.noisy
    dsecs = y.size / ns.RATE
    dp = Pipeline([DenoiseNode(node_id="d")], runtime_hint="rust")
    r = interleaved(iters, 2, [
        lambda: dp.run_sync((y, ns.RATE)),
        lambda: nr.reduce_noise(y=y, sr=ns.RATE, stationary=True, n_fft=1024, prop_decrease=1.0, n_std_thresh_stationary=1.5,
                                freq_mask_smooth_hz=500, time_mask_smooth_ms=50, n_jobs=1),
    ], per=dsecs)
    out["denoise_16k_mono_per_s"] = {"remotemedia": r[0], "noisereduce": r[1]}

    # Streaming push cost per 20 ms chunk.
    out["stream_push_20ms"] = {
        "FilterNode 48k stereo": stream_cost(FilterNode(bands, node_id="f"), x, rate, rate // 50),
        "LoudnessNode 48k stereo": stream_cost(LoudnessNode(node_id="l"), x, rate, rate // 50),
        "DenoiseNode 16k mono": stream_cost(DenoiseNode(node_id="d"), y, ns.RATE, ns.RATE // 50),
    }
    for k, v in out.items():
        if k == "machine":
            print(v)
            continue
        print(k)
        for name, s in v.items():
            print(f"  {name:36s} median {s['median_us']:10.1f} us   p99 {s['p99_us']:10.1f} us")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
