"""Audio file benchmark (release build), in one run:

1. Decode time per second of audio, ``remotemedia.load(path, dtype=None)`` against
   ``soundfile.read(path, dtype=...)`` (libsndfile) on the same files: WAV 16-bit, WAV 24-bit,
   FLAC 16-bit, Ogg Vorbis, MP3 (60 s of 44.1 kHz stereo, made by soundfile and ffmpeg from one
   seeded signal). The two readers alternate, repeat after repeat; median and p99 per file.
2. ``remotemedia batch`` over N mixed-format files (WAV, FLAC, MP3, Ogg, M4A; 1 s each) with 1 and 2
   workers: the batch's wall time from report.json, median and p99 over the repeats.
3. Peak RSS of ``remotemedia run --stream FILE`` (resample to 16 kHz, VAD, output written) on a
   1-minute and a 2-hour 16 kHz mono FLAC: ``ru_maxrss`` of the child, and the ratio.

    python benchmarks/decode_bench.py [--quick] [--binary PATH] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
from audio_files import ffmpeg, signal  # noqa: E402

import remotemedia as rm  # noqa: E402

STREAM_MANIFEST = """version: "1.0"
nodes:
  - {id: resample, type: AudioResampleNode, params: {output_rate: 16000}}
  - {id: vad, type: VADNode, params: {}}
edges:
  - {from: resample, to: vad}
"""


def pct(values, q):
    v = np.sort(np.asarray(values, dtype=np.float64))
    return float(v[int(round(q * (v.size - 1)))])


def make_files(folder, seconds):
    import soundfile as sf

    x = signal(44100, seconds, 2)
    i16 = np.round(x * 32767).astype(np.int16)
    files = {}
    files["wav16"] = os.path.join(folder, "a16.wav")
    sf.write(files["wav16"], i16, 44100, subtype="PCM_16")
    files["wav24"] = os.path.join(folder, "a24.wav")
    sf.write(files["wav24"], (np.round(x * 8388607).astype(np.int32) << 8), 44100, subtype="PCM_24")
    files["flac16"] = ffmpeg(files["wav16"], os.path.join(folder, "a.flac"), "-c:a", "flac")
    files["vorbis"] = ffmpeg(files["wav16"], os.path.join(folder, "a.ogg"), "-c:a", "libvorbis", "-q:a", "5")
    files["mp3"] = ffmpeg(files["wav16"], os.path.join(folder, "a.mp3"), "-c:a", "libmp3lame", "-b:a", "192k")
    return files


def bench_decode(files, seconds, repeats):
    import soundfile as sf

    dtypes = {"wav16": "int16", "wav24": "int32", "flac16": "int16", "vorbis": "float32", "mp3": "float32"}
    rows = {}
    for name, path in files.items():
        ours, theirs = [], []
        # Warm both (page cache, first-call costs) before timing.
        rm.load(path, dtype=None)
        sf.read(path, dtype=dtypes[name])
        for _ in range(repeats):
            t = time.perf_counter()
            a = rm.load(path, dtype=None)
            ours.append((time.perf_counter() - t) / seconds)
            t = time.perf_counter()
            b, _ = sf.read(path, dtype=dtypes[name])
            theirs.append((time.perf_counter() - t) / seconds)
        assert a.samples.shape[0] > 0 and b.shape[0] > 0
        rows[name] = {
            "remotemedia_ms_per_s": {"median": 1e3 * pct(ours, 0.5), "p99": 1e3 * pct(ours, 0.99)},
            "soundfile_ms_per_s": {"median": 1e3 * pct(theirs, 0.5), "p99": 1e3 * pct(theirs, 0.99)},
            "ratio_median": pct(ours, 0.5) / pct(theirs, 0.5),
            "frames": {"remotemedia": int(a.samples.shape[0]), "soundfile": int(b.shape[0])},
        }
        print(f"{name:7s} remotemedia {rows[name]['remotemedia_ms_per_s']['median']:.3f} ms/s "
              f"(p99 {rows[name]['remotemedia_ms_per_s']['p99']:.3f})  soundfile "
              f"{rows[name]['soundfile_ms_per_s']['median']:.3f} ms/s (p99 {rows[name]['soundfile_ms_per_s']['p99']:.3f})  "
              f"ratio {rows[name]['ratio_median']:.2f}", flush=True)
    return rows


def bench_batch(binary, folder, items, repeats):
    import soundfile as sf

    inputs = os.path.join(folder, "batch_in")
    os.makedirs(inputs, exist_ok=True)
    exts = ["wav", "flac", "mp3", "ogg", "m4a"]
    seeds = {}
    for k, ext in enumerate(exts):
        src = os.path.join(folder, f"seed{k}.wav")
        sf.write(src, np.round(signal(44100, 1.0, 1, seed=k) * 32767).astype(np.int16), 44100, subtype="PCM_16")
        seeds[ext] = src if ext == "wav" else ffmpeg(src, os.path.join(folder, f"seed{k}.{ext}"))
    for i in range(items):
        ext = exts[i % len(exts)]
        shutil.copyfile(seeds[ext], os.path.join(inputs, f"item{i:05d}.{ext}"))
    manifest = os.path.join(folder, "batch.yaml")
    with open(manifest, "w") as f:
        f.write(STREAM_MANIFEST)
    out = {}
    walls = {1: [], 2: []}
    for _ in range(repeats):
        for workers in (1, 2):
            o = os.path.join(folder, f"batch_out_{workers}")
            shutil.rmtree(o, ignore_errors=True)
            subprocess.run([binary, "batch", manifest, inputs, "--out", o, "--workers", str(workers), "--no-progress"],
                           check=True, capture_output=True)
            report = json.load(open(os.path.join(o, "report.json")))
            assert report["ok"] == items, {k: report[k] for k in ("ok", "failed")}
            walls[workers].append(1e3 * report["wall_s"])
    for workers, w in walls.items():
        out[f"workers_{workers}"] = {"wall_ms": {"median": pct(w, 0.5), "p99": pct(w, 0.99)},
                                     "items_per_s": items / (pct(w, 0.5) / 1e3)}
    out["speedup_2_over_1"] = pct(walls[1], 0.5) / pct(walls[2], 0.5)
    print(f"batch {items} mixed files: 1 worker {pct(walls[1], 0.5):.0f} ms, 2 workers {pct(walls[2], 0.5):.0f} ms "
          f"(x{out['speedup_2_over_1']:.2f})", flush=True)
    return out


def child_maxrss_kb(cmd):
    """Peak RSS of one child process, in KiB (via a fresh python that waits for it)."""
    code = ("import resource,subprocess,sys;subprocess.run(sys.argv[1:],check=True,capture_output=True);"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    return int(subprocess.run([sys.executable, "-c", code, *cmd], check=True, capture_output=True, text=True).stdout)


def bench_stream_memory(binary, folder, long_s):
    manifest = os.path.join(folder, "stream.yaml")
    with open(manifest, "w") as f:
        f.write(STREAM_MANIFEST)
    out = {}
    sox = shutil.which("sox")
    for label, seconds in (("1 min", 60), (f"{long_s / 3600:g} h", long_s)):
        path = os.path.join(folder, f"long_{seconds}.flac")
        # Speech-like bursts of a tone in noise, 16 kHz mono FLAC (sox makes it without holding it).
        subprocess.run([sox, "-n", "-r", "16000", "-c", "1", "-b", "16", path, "synth", str(seconds), "sine", "300",
                        "synth", "pinknoise", "mix", "tremolo", "0.5", "100", "vol", "0.5"], check=True)
        wav_out = os.path.join(folder, f"out_{seconds}.wav")
        t = time.perf_counter()
        kb = child_maxrss_kb([binary, "run", manifest, "--stream", path, "--output", wav_out, "--json",
                              os.path.join(folder, f"out_{seconds}.json")])
        wall = time.perf_counter() - t
        out[label] = {"seconds": seconds, "max_rss_mb": kb / 1024, "wall_s": wall,
                      "file_mb": os.path.getsize(path) / 2**20, "decoded_f32_mb": seconds * 16000 * 4 / 2**20}
        print(f"run --stream {label}: max RSS {kb / 1024:.1f} MB, {wall:.1f} s "
              f"(file {out[label]['file_mb']:.1f} MB, decoded f32 {out[label]['decoded_f32_mb']:.0f} MB)", flush=True)
        os.remove(path)
        os.remove(wav_out)
    labels = list(out)
    # Issue 19's case, read whole (plain `run`): 10 minutes of 44.1 kHz stereo 24-bit WAV.
    path = os.path.join(folder, "ten_min_24bit.wav")
    subprocess.run([sox, "-n", "-r", "44100", "-c", "2", "-b", "24", path, "synth", "600", "sine", "300",
                    "synth", "pinknoise", "mix", "vol", "0.5"], check=True)
    kb = child_maxrss_kb([binary, "run", manifest, "--input", path])
    decoded = 600 * 44100 * 2 * 4 / 2**20
    out["run_10min_44k_stereo_24bit"] = {"max_rss_mb": kb / 1024, "decoded_f32_mb": decoded,
                                         "bound_mb": 2 * decoded + 50}
    print(f"run (whole file) 10 min 44.1 kHz stereo 24-bit: max RSS {kb / 1024:.0f} MB "
          f"(decoded f32 {decoded:.0f} MB; bound 2x + 50 = {2 * decoded + 50:.0f} MB)", flush=True)
    os.remove(path)
    out["ratio"] = out[labels[1]]["max_rss_mb"] / out[labels[0]]["max_rss_mb"]
    print(f"peak RSS ratio {labels[1]} / {labels[0]}: {out['ratio']:.3f}", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the script runs")
    ap.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "remotemedia"))
    ap.add_argument("--json")
    args = ap.parse_args()
    seconds, repeats, items, long_s = (5, 3, 20, 600) if args.quick else (60, 15, 1000, 7200)
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "python": platform.python_version()}
    result = {"machine": machine}
    with tempfile.TemporaryDirectory() as folder:
        files = make_files(folder, seconds)
        result["decode"] = bench_decode(files, seconds, repeats)
        result["batch"] = bench_batch(args.binary, folder, items, 3 if not args.quick else 1)
        result["stream_memory"] = bench_stream_memory(args.binary, folder, long_s)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
