"""Streaming benchmark (``bash scripts/bench.sh`` runs it): the latency of one ``session.push`` of a
20 ms chunk of 48 kHz audio through resample (16 kHz) + VAD, from Python, next to its peers measured
interleaved in the same process:

* the floor: a no-op call into the extension (``_native.noop``);
* the same chunk written by hand: ``soxr.ResampleStream`` (HQ) + a numpy energy VAD on 30 ms frames;
* the pure-Python runtime's session;

back to back, then paced at one chunk every 20 ms as a live source pushes them. Prints median and
p99 per push (targets for the native session: <= 15 µs median, <= 50 µs p99).

    python benchmarks/streaming_bench.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from remotemedia import AudioResampleNode, Pipeline, VADNode
from remotemedia import _native

RATE = 48000
CHUNK = RATE // 50  # 20 ms


def summarize(ns):
    ns = np.sort(np.asarray(ns, dtype=np.float64))
    return {"median_us": float(np.median(ns)) / 1e3, "p99_us": float(ns[int(round(0.99 * (ns.size - 1)))]) / 1e3}


def row(name, s, note=""):
    print(f"{name:<58} median {s['median_us']:>8.2f} µs  p99 {s['p99_us']:>8.2f} µs  {note}")


def speech_like(seconds):
    t = np.arange(int(RATE * seconds)) / RATE
    env = (np.sin(2 * np.pi * 1.5 * t) > 0).astype(np.float64) * 0.5
    x = sum(np.sin(2 * np.pi * 140 * h * t) / h for h in range(1, 6)) * env * 0.3
    x += np.random.default_rng(0).standard_normal(t.size) * 0.003
    return x.astype(np.float32)


class HandWritten:
    """What users glue together today: soxr's streaming resampler and a per-frame energy VAD."""

    def __init__(self):
        import soxr

        self.rs = soxr.ResampleStream(RATE, 16000, 1, dtype="float32", quality="HQ")
        self.pending = np.zeros(0, np.float32)
        self.floor = 1e-4

    def push(self, chunk):
        y = self.rs.resample_chunk(chunk)
        x = np.concatenate([self.pending, y])
        n = x.size // 480
        self.pending = x[n * 480 :]
        frames = x[: n * 480].reshape(n, 480)
        energy = np.mean(frames * frames, axis=1)
        self.floor = min(self.floor * 1.01, float(energy.min())) if n else self.floor
        return energy > self.floor * 10


def measure(pushers, chunks, rounds, pace_s=0.0):
    """``rounds`` times, for each pusher in turn: a new session, every chunk pushed back to back
    (or one every ``pace_s`` seconds, as a live source pushes them); returns per-push times in ns
    per pusher. Pushers alternate per session, so all are measured in the same conditions."""
    times = [[] for _ in pushers]
    firsts = [[] for _ in pushers]
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for i, make in enumerate(pushers):
            push = make()
            for k, c in enumerate(chunks):
                t = clock()
                push(c)
                dt = clock() - t
                # A session's first push builds its node states (resampler plans, VAD FFT):
                # reported apart, so the figures show a running stream.
                (firsts if k == 0 else times)[i].append(dt)
                if pace_s:
                    time.sleep(max(0.0, pace_s - dt / 1e9))
    measure.firsts = firsts
    return times


def threads_part(nodes, chunks, seconds):
    """1 and then 2 Python threads, each pushing the chunks back to back into sessions of its own
    (a new one per pass) on one 2-worker pipeline, for `seconds`: pushes per second, the real-time
    20 ms streams that rate could hold (pushes/s / 50), and each push's latency. Sessions are dealt
    out over the workers, so two threads' sessions run on different workers."""
    import threading

    p = Pipeline(nodes(), runtime_hint="rust", workers=2)
    warm = p.stream()
    for c in chunks[:10]:
        warm.push((c, RATE))
    out = {}
    for n in (1, 2):
        lat = [[] for _ in range(n)]
        stop = time.perf_counter() + seconds
        barrier = threading.Barrier(n)

        def work(k):
            barrier.wait()
            while time.perf_counter() < stop:
                s = p.stream()
                for c in chunks:
                    t = time.perf_counter_ns()
                    s.push((c, RATE))
                    lat[k].append(time.perf_counter_ns() - t)
                s.close()

        t0 = time.perf_counter()
        ts = [threading.Thread(target=work, args=(k,)) for k in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        wall = time.perf_counter() - t0
        all_ns = [x for l in lat for x in l]
        rate = len(all_ns) / wall
        out[n] = {"pushes_per_s": rate, "streams": rate / 50.0, **summarize(all_ns)}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    signal = speech_like(2.0)
    chunks = [signal[i : i + CHUNK] for i in range(0, signal.size - CHUNK + 1, CHUNK)]
    nodes = lambda: [AudioResampleNode(16000, node_id="resample"), VADNode(frame_duration_ms=30, node_id="vad")]
    native = Pipeline(nodes(), runtime_hint="rust")
    pure = Pipeline(nodes(), runtime_hint="python")

    def session_pusher(p):
        def make():
            s = p.stream()
            return lambda c: s.push((c, RATE))

        return make

    pushers = [
        session_pusher(native),
        lambda: (lambda c: _native.noop()),
        lambda: HandWritten().push,
        session_pusher(pure),
    ]
    rounds = 3 if args.quick else 30
    measure(pushers, chunks[:10], 2)  # warm-up
    t_native, t_noop, t_hand, t_pure = (summarize(t) for t in measure(pushers, chunks, rounds))
    print(f"== streaming: {len(chunks)} pushes of 20 ms (960 samples at 48 kHz) back to back x {rounds} sessions each")
    row("session.push, resample 16k + VAD (native)", t_native, "target <= 15 µs median, <= 50 µs p99")
    row("_native.noop() (floor)", t_noop)
    row("hand-written: soxr.ResampleStream HQ + numpy energy VAD", t_hand,
        f"native/hand = {t_native['median_us'] / t_hand['median_us']:.2f}x")
    row("session.push (pure-Python runtime)", t_pure)
    first = summarize(measure.firsts[0])
    row("native: a session's first push (builds its node states)", first)
    # Paced as a live source: one chunk every 20 ms, so the engine's worker has parked between
    # chunks and each push pays for waking it (REMOTEMEDIA_IDLE_SPIN_US sets how long it polls).
    paced_chunks = chunks[: 25 if args.quick else 100]
    t_paced, t_hand_paced = (summarize(t) for t in measure([pushers[0], pushers[2]], paced_chunks, 1 if args.quick else 3, pace_s=0.02))
    print(f"== paced: {len(paced_chunks)} pushes, one every 20 ms (a live source)")
    row("session.push, resample 16k + VAD (native), paced", t_paced, "the worker parks between chunks")
    row("hand-written soxr + numpy VAD, paced", t_hand_paced)
    threads = threads_part(nodes, chunks, 0.5 if args.quick else 2.0)
    print("== threads: each pushing 20 ms chunks back to back into its own session, 2-worker pipeline")
    for n, r in threads.items():
        print(f"{n} thread(s){'':<34} {r['pushes_per_s']:>9.0f} pushes/s = {r['streams']:>7.0f} real-time streams;"
              f" push median {r['median_us']:.1f} µs p99 {r['p99_us']:.1f} µs")
    if 1 in threads and 2 in threads:
        print(f"{'':<44} 2 threads / 1 thread: {threads[2]['pushes_per_s'] / threads[1]['pushes_per_s']:.2f}x (target >= 1.5x)")
    results_threads = {str(k): v for k, v in threads.items()}
    results = {"threads": results_threads, "native_first_push": first, "native_push": t_native, "noop": t_noop, "handwritten_soxr": t_hand, "pure_push": t_pure,
               "native_push_paced": t_paced, "handwritten_soxr_paced": t_hand_paced}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
