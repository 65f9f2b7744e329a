"""Batch and cluster benchmark (``bash scripts/bench.sh`` runs it): the main job (1 s of 48 kHz int16
-> f32 -> 16 kHz -> 30 ms VAD) over a batch of items, in one run:

1. ``Pipeline.run_batch`` on the native engine with 1 and with 2 workers, interleaved: per-item time
   (batch wall time / items; median and p99 over the repeats) and throughput. The 1-worker run is
   the peer the 2-worker speed-up is measured against (target >= 1.8x on 2 free cores).
2. ``remotemedia batch`` on a directory of the same items with 1 process and with 2 processes
   (``remotemedia spawn -n 2``), 1 worker each: the batch's own wall time from report.json
   (median and p99 over the repeats, per item and as throughput) and the whole command's time.

    python benchmarks/batch_bench.py [--quick] [--items N] [--binary PATH] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from remotemedia import Pipeline
from remotemedia.audio import to_audio
from remotemedia.wav import write_wav

MANIFEST = {
    "version": "1.0",
    "name": "speech_vad",
    "nodes": [
        {"id": "to_f32", "type": "FormatConverterNode", "params": {"target_format": "f32"}},
        {"id": "resample_16k", "type": "AudioResampleNode", "params": {"output_rate": 16000}},
        {"id": "vad", "type": "VADNode", "params": {"frame_duration_ms": 30}},
    ],
    "edges": [{"from": "to_f32", "to": "resample_16k"}, {"from": "resample_16k", "to": "vad"}],
}


def speech_like_i16(seed, seconds=1.0, rate=48000):
    t = np.arange(int(rate * seconds)) / rate
    env = (np.sin(2 * np.pi * 1.5 * t + seed) > 0).astype(np.float64) * 0.5
    x = sum(np.sin(2 * np.pi * (120 + 5 * seed % 60) * h * t) / h for h in range(1, 6)) * env * 0.3
    x += np.random.default_rng(seed).standard_normal(t.size) * 0.003
    return np.round(x * 32767).astype(np.int16)


def pct(values, q):
    v = np.sort(np.asarray(values, dtype=np.float64))
    return float(v[int(round(q * (v.size - 1)))])


def stats(walls_s, items, cpus_s=None):
    per_item_us = [w / items * 1e6 for w in walls_s]
    med = float(np.median(walls_s))
    extra = {}
    if cpus_s:
        # CPU seconds used per wall second: how many cores the batch actually got.
        extra["cpu_per_item_median_us"] = float(np.median(cpus_s)) / items * 1e6
        extra["parallelism"] = float(np.median([c / w for c, w in zip(cpus_s, walls_s)]))
    return {
        **extra,
        "per_item_median_us": float(np.median(per_item_us)),
        "per_item_p99_us": pct(per_item_us, 0.99),
        "items_per_s": items / med,
        "batch_median_ms": med * 1e3,
        "batch_p99_ms": pct(walls_s, 0.99) * 1e3,
        "repeats": len(walls_s),
    }


def row(name, s):
    cpu = ""
    if "parallelism" in s:
        cpu = f"  (CPU {s['cpu_per_item_median_us']:.0f} µs/item, {s['parallelism']:.2f} cores busy)"
    print(f"{name:<44} per item median {s['per_item_median_us']:>8.1f} µs  p99 {s['per_item_p99_us']:>8.1f} µs"
          f"  {s['items_per_s']:>8.1f} items/s{cpu}")


def engine_part(items, repeats):
    p = Pipeline.from_dict(MANIFEST, runtime_hint="rust")
    batch = [(x, 48000) for x in items]
    for w in (1, 2):
        p.run_batch(batch[:8], workers=w)  # install the 2-worker pipeline and warm both
    walls = {1: [], 2: []}
    cpus = {1: [], 2: []}
    for _ in range(repeats):
        for w in (1, 2):
            c = time.process_time()
            t = time.perf_counter()
            out = p.run_batch(batch, workers=w)
            walls[w].append(time.perf_counter() - t)
            cpus[w].append(time.process_time() - c)
            assert all(isinstance(r, dict) for r in out), "every item succeeds"
    return {w: stats(walls[w], len(items), cpus[w]) for w in (1, 2)}


def find_binary(given):
    if given:
        return given
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for profile in ("release", "debug"):
        path = os.path.join(root, "target", profile, "remotemedia")
        if os.path.exists(path):
            return path
    return shutil.which("remotemedia")


def cli_part(binary, items, repeats):
    tmp = tempfile.mkdtemp(prefix="remotemedia-batch-bench-")
    try:
        manifest = os.path.join(tmp, "speech_vad.json")
        with open(manifest, "w") as f:
            json.dump(MANIFEST, f)
        inputs = os.path.join(tmp, "in")
        os.makedirs(inputs)
        for k, x in enumerate(items):
            write_wav(os.path.join(inputs, f"item_{k:04d}.wav"), to_audio((x, 48000)))
        commands = {
            "1 process": [binary, "batch", manifest, inputs, "--workers", "1", "--no-progress"],
            "2 processes": [binary, "spawn", "-n", "2", "--", "batch", manifest, inputs, "--workers", "1", "--no-progress"],
        }
        walls = {k: [] for k in commands}
        whole = {k: [] for k in commands}
        cpus = {k: [] for k in commands}
        for r in range(repeats + 1):
            for name, cmd in commands.items():
                out = os.path.join(tmp, f"out-{name.replace(' ', '_')}")
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                res = subprocess.run(cmd + ["--out", out], capture_output=True, text=True)
                elapsed = time.perf_counter() - t
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
                if res.returncode != 0:
                    raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr}")
                with open(os.path.join(out, "report.json")) as f:
                    report = json.load(f)
                assert report["ok"] == len(items), report["failed"]
                if r > 0:  # the first round warms the page cache and the binary
                    walls[name].append(report["wall_s"])
                    whole[name].append(elapsed)
                    cpus[name].append(cpu)
        same = _same_outputs(os.path.join(tmp, "out-1_process"), os.path.join(tmp, "out-2_processes"))
        result = {k: stats(walls[k], len(items)) for k in commands}
        for k in commands:
            result[k]["command_median_ms"] = float(np.median(whole[k])) * 1e3
            # CPU of the whole command (all processes, start-up and file I/O included).
            result[k]["command_cpu_median_ms"] = float(np.median(cpus[k])) * 1e3
        return result, same
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _same_outputs(a, b):
    names = sorted(n for n in os.listdir(a) if n != "report.json")
    if names != sorted(n for n in os.listdir(b) if n != "report.json"):
        return False
    for n in names:
        with open(os.path.join(a, n), "rb") as fa, open(os.path.join(b, n), "rb") as fb:
            if fa.read() != fb.read():
                return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--items", type=int, default=64)
    ap.add_argument("--binary", help="the remotemedia executable (default: target/release, then target/debug)")
    ap.add_argument("--json")
    args = ap.parse_args()
    repeats = 5 if args.quick else 15
    items = [speech_like_i16(k) for k in range(args.items)]
    cores = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cores
    print(f"== batch benchmark: {args.items} items of 1 s 48 kHz int16 -> f32 -> 16 kHz -> VAD; "
          f"{usable} usable cores, load average {os.getloadavg()[0]:.1f}")
    results = {"items": args.items, "cores": usable, "loadavg_start": os.getloadavg()[0]}

    engine = engine_part(items, repeats)
    row("run_batch, 1 worker", engine[1])
    row("run_batch, 2 workers", engine[2])
    speedup = engine[2]["items_per_s"] / engine[1]["items_per_s"]
    print(f"{'':<44} 2 workers / 1 worker: {speedup:.2f}x throughput (target >= 1.8x on 2 free cores)")
    results["engine"] = {"1_worker": engine[1], "2_workers": engine[2], "speedup": speedup}

    binary = find_binary(args.binary)
    if binary is None:
        print("remotemedia executable not found (cargo build --release): process part skipped")
    else:
        cli, same = cli_part(binary, items, max(3, repeats // 3))
        for name in ("1 process", "2 processes"):
            row(f"remotemedia batch, {name} x 1 worker", cli[name])
            print(f"{'':<44} whole command (start-up, reading, writing) median {cli[name]['command_median_ms']:.1f} ms,"
                  f" CPU {cli[name]['command_cpu_median_ms']:.1f} ms")
        pspeed = cli["2 processes"]["items_per_s"] / cli["1 process"]["items_per_s"]
        print(f"{'':<44} 2 processes / 1 process: {pspeed:.2f}x throughput; identical output files: {same}")
        results["cli"] = {"binary": binary, **cli, "speedup": pspeed, "identical_outputs": same}
    results["loadavg_end"] = os.getloadavg()[0]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
