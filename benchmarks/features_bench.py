"""Feature nodes against their references, in one run, per second of audio (1 s, 30 s, 10 min of
16 kHz speech-like audio); median and p99 of repeated runs, each peer measured in the same run:

1. ``LogMelNode`` (native engine, ``Pipeline.run_sync``) against HF's ``WhisperFeatureExtractor``
   (numpy path, no padding) and, when torch imports, openai-whisper's algorithm on torch (1 thread:
   ``torch.stft`` + mel matrix + log10 + floor, as ``whisper.audio.log_mel_spectrogram``).
   Targets: >= 10x HF, >= 1x torch.
2. ``FbankNode`` against kaldi-native-fbank's ``OnlineFbank`` (dither 0). Target: >= 1.5x.
3. The full chain file -> 16 kHz -> VAD -> log-mel through ``Pipeline.run_batch`` with 1 and 2
   workers: WAV files of 48 kHz int16 speech-like audio read in the loop, ``AudioResampleNode`` ->
   ``VADNode`` -> ``LogMelNode`` (30 s windows) on each; items per second and the 2/1 worker ratio.

Build the extension with ``maturin develop --release`` first. torch is not a test requirement
(``pip install torch`` from the package registry brings ~4 GB of CUDA libraries); install it by
hand for the torch peer. ``OPENBLAS_NUM_THREADS=1`` puts HF's numpy path on one thread.

    python benchmarks/features_bench.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

from remotemedia import FbankNode, LogMelNode, Pipeline
from remotemedia.wav import read_wav, write_wav
from remotemedia.audio import Audio

RATE = 16000


def speech_like(seconds, seed=1, rate=RATE):
    t = np.arange(int(rate * seconds)) / rate
    env = (np.sin(2 * np.pi * 1.5 * t + seed) > 0) * 0.5
    x = sum(np.sin(2 * np.pi * (120 + 7 * seed % 60) * h * t) / h for h in range(1, 6)) * env * 0.3
    return (x + np.random.default_rng(seed).standard_normal(t.size) * 0.003).astype(np.float32)


def pct(values, q):
    v = np.sort(np.asarray(values, dtype=np.float64))
    return float(v[int(round(q * (v.size - 1)))])


def timed(fn, budget_s, min_reps=3, max_reps=200):
    """Runs ``fn`` repeatedly (one warm-up) within about ``budget_s``; returns the times in s."""
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < min_reps or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def summary(times, seconds):
    return {
        "median_ms": float(np.median(times)) * 1e3,
        "p99_ms": pct(times, 0.99) * 1e3,
        "us_per_audio_s": float(np.median(times)) / seconds * 1e6,
        "reps": len(times),
    }


def torch_log_mel():
    """openai-whisper's log_mel_spectrogram on torch (1 thread), or None without torch."""
    try:
        import librosa
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    filters = torch.from_numpy(librosa.filters.mel(sr=RATE, n_fft=400, n_mels=80))
    window = torch.hann_window(400)

    def run(x):
        audio = torch.from_numpy(x)
        stft = torch.stft(audio, 400, 160, window=window, return_complex=True)
        mag = stft[..., :-1].abs() ** 2
        log_spec = torch.clamp(filters @ mag, min=1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
        return (log_spec + 4.0) / 4.0

    return run


def bench_features(lengths, budget_s):
    from transformers import WhisperFeatureExtractor
    import kaldi_native_fbank as knf

    fe = WhisperFeatureExtractor(feature_size=80)
    torch_run = torch_log_mel()
    log_mel = Pipeline([LogMelNode(normalize="whole", node_id="f")], runtime_hint="rust")
    fbank = Pipeline([FbankNode(node_id="f")], runtime_hint="rust")
    rows = []
    for seconds in lengths:
        x = speech_like(seconds)
        audio = Audio(x, RATE)
        row = {"seconds": seconds}
        row["log_mel"] = summary(timed(lambda: log_mel.run_sync(audio), budget_s), seconds)
        row["hf_whisper"] = summary(
            timed(lambda: fe(x, sampling_rate=RATE, return_tensors="np", padding="longest", truncation=False), budget_s, min_reps=1),
            seconds,
        )
        if torch_run is not None:
            row["torch_whisper"] = summary(timed(lambda: torch_run(x), budget_s), seconds)
        row["fbank"] = summary(timed(lambda: fbank.run_sync(audio), budget_s), seconds)
        opts = knf.FbankOptions()
        opts.frame_opts.dither = 0.0
        opts.mel_opts.num_bins = 80

        def knf_run():
            f = knf.OnlineFbank(opts)
            f.accept_waveform(RATE, x)
            f.input_finished()
            return f.get_frames(list(range(f.num_frames_ready))) if hasattr(f, "get_frames") else [f.get_frame(i) for i in range(f.num_frames_ready)]

        row["knf_fbank"] = summary(timed(knf_run, budget_s, min_reps=1), seconds)
        row["log_mel_vs_hf"] = row["hf_whisper"]["median_ms"] / row["log_mel"]["median_ms"]
        if torch_run is not None:
            row["log_mel_vs_torch"] = row["torch_whisper"]["median_ms"] / row["log_mel"]["median_ms"]
        row["fbank_vs_knf"] = row["knf_fbank"]["median_ms"] / row["fbank"]["median_ms"]
        rows.append(row)
        peers = f"HF {row['log_mel_vs_hf']:.1f}x"
        if torch_run is not None:
            peers += f", torch {row['log_mel_vs_torch']:.2f}x"
        print(
            f"{seconds:>5g} s  LogMelNode {row['log_mel']['median_ms']:8.2f} ms (p99 {row['log_mel']['p99_ms']:.2f}) "
            f"= {row['log_mel']['us_per_audio_s']:.0f} us/s  vs {peers}  (HF {row['hf_whisper']['median_ms']:.1f} ms"
            + (f", torch {row['torch_whisper']['median_ms']:.2f} ms" if torch_run is not None else "")
            + ")"
        )
        print(
            f"{'':>7}  FbankNode  {row['fbank']['median_ms']:8.2f} ms (p99 {row['fbank']['p99_ms']:.2f}) "
            f"= {row['fbank']['us_per_audio_s']:.0f} us/s  vs knf {row['fbank_vs_knf']:.2f}x  (knf {row['knf_fbank']['median_ms']:.2f} ms)"
        )
    if torch_run is None:
        print("(torch not installed: no openai-whisper torch peer in this run)")
    return rows


CHAIN = {
    "version": "1.0",
    "nodes": [
        {"id": "resample_16k", "type": "AudioResampleNode", "params": {"output_rate": 16000}},
        {"id": "vad", "type": "VADNode", "params": {"frame_duration_ms": 30}},
        {"id": "log_mel", "type": "LogMelNode", "params": {}},
    ],
    "edges": [
        {"from": "resample_16k", "to": "vad"},
        {"from": "vad", "to": "log_mel", "output_key": "audio"},
    ],
}


def bench_chain(items, seconds, budget_s):
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i in range(items):
            x = speech_like(seconds, seed=i, rate=48000)
            path = os.path.join(d, f"item{i:03d}.wav")
            write_wav(path, Audio(np.round(x * 32767).astype(np.int16), 48000))
            paths.append(path)
        pipelines = {w: Pipeline.from_dict(dict(CHAIN, config={"workers": w}), runtime_hint="rust") for w in (1, 2)}

        def run(w):
            return pipelines[w].run_batch([read_wav(p) for p in paths])

        times = {1: [], 2: []}
        for w in (1, 2):
            run(w)
        start = time.perf_counter()
        while time.perf_counter() - start < budget_s or len(times[2]) < 3:
            for w in (1, 2):  # interleaved, so both see the same load
                t0 = time.perf_counter()
                run(w)
                times[w].append(time.perf_counter() - t0)
        for w in (1, 2):
            med = float(np.median(times[w]))
            rows[w] = {"items_per_s": items / med, "batch_median_ms": med * 1e3, "batch_p99_ms": pct(times[w], 0.99) * 1e3,
                       "reps": len(times[w])}
        rows["speedup_2w"] = rows[2]["items_per_s"] / rows[1]["items_per_s"]
    print(
        f"chain file -> 16 kHz -> VAD -> log-mel, {items} x {seconds:g} s items: 1 worker {rows[1]['items_per_s']:.1f} items/s "
        f"(batch p99 {rows[1]['batch_p99_ms']:.1f} ms), 2 workers {rows[2]['items_per_s']:.1f} items/s "
        f"(p99 {rows[2]['batch_p99_ms']:.1f} ms): {rows['speedup_2w']:.2f}x"
    )
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short budgets, no 10-minute input")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    lengths = (1, 30) if args.quick else (1, 30, 600)
    budget = 0.5 if args.quick else 3.0
    # HF's numpy path uses BLAS: its threads (and their spinning) change its time a lot on 2 cores.
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}, OPENBLAS_NUM_THREADS {blas}")
    doc = {"features": bench_features(lengths, budget), "chain": bench_chain(16, 4.0, budget * 2)}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)


if __name__ == "__main__":
    main()
