#!/usr/bin/env python3
"""Soak test: many Python threads running pipelines at once, for a long time.

Phases (each run's result is compared with the single-threaded result for the same input):

1. shared   -- THREADS threads x RUNS runs on ONE shared pipeline;
2. separate -- THREADS threads x RUNS runs, each thread on its own pipeline;
3. churn    -- PIPELINES pipelines created, run once and dropped, one after another.

The pipeline is ``flaky (Python node) -> AudioResampleNode 48k->16k -> VADNode``. The Python node
raises for inputs marked "poison" (every 7th input of the set), so a node failing midway is part of
every phase: those runs must raise NodeError, and every later run must still succeed.

Resident memory is read from /proc/self/statm after a warm-up (every kind of work done once, so
caches, resampler plans and thread-local event loops exist) and again at the end, with glibc's
mmap threshold pinned (see ``pin_mmap_threshold``); the growth is reported
in percent. A thread that does not finish within the timeout is reported as a deadlock.

    python scripts/soak.py                      # full: 8 threads x 2000 runs, 100 pipelines
    python scripts/soak.py --runs 100 --pipelines 10 --runtime python

Prints a summary and exits 1 if anything went wrong. ``tests/python/test_soak.py`` runs a reduced
form of the same code.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import threading
import time
from typing import Any, Dict, List, Optional

import numpy as np

from remotemedia import Node, NodeError, Pipeline

RATE_IN = 48000
INPUTS = 14  # distinct inputs; runs cycle through them
POISON_EVERY = 7  # inputs 0 and 7 make the Python node raise
POISON_MARK = np.float32(0.123)


class Flaky(Node):
    """Passes audio on, except that it raises for poisoned input (first sample == POISON_MARK)."""

    def process(self, audio):
        if audio.samples[0] == POISON_MARK:
            raise RuntimeError("poisoned input")
        return audio


def make_pipeline(runtime: str) -> Pipeline:
    # The circuit breaker is off: poisoned inputs are 1 in 7 of each thread's runs, but nothing
    # keeps 5 of them from reaching the node one after another when 8 threads share a pipeline.
    # Under CPU load that happens (measured: a run of exactly 5 poisoned calls in a row on the
    # shared pipeline, pinned to one busy core, about 1 soak in 10), the breaker then opens as
    # designed and every run fails fast for its 30 s cooldown: correct, but not what this test
    # compares. The breaker's own rules are tested in test_reliability.py; here ``circuit_opens``
    # must stay 0 (see ``breaker_opens``), so a breaker that opened anyway is still caught.
    return Pipeline(
        [
            Flaky(node_id="flaky"),
            {"id": "r", "type": "AudioResampleNode", "params": {"output_rate": 16000, "input_rate": RATE_IN}},
            {"id": "v", "type": "VADNode", "params": {"frame_duration_ms": 30}},
        ],
        runtime_hint=runtime,
        config={"circuit_breaker_threshold": 0},
    )


def breaker_opens(p: Pipeline) -> int:
    """How often any node's circuit breaker opened (reported whether or not metrics are on)."""
    return sum(int(n.get("circuit_opens", 0)) for n in p.get_metrics()["node_metrics"])


def make_inputs(seconds: float = 0.1) -> List[np.ndarray]:
    """Noise with a tone burst whose position and pitch differ per input; poisoned ones are marked."""
    n = int(RATE_IN * seconds)
    out = []
    for i in range(INPUTS):
        rng = np.random.default_rng(i)
        x = rng.standard_normal(n) * 0.01
        t = np.arange(n) / RATE_IN
        start = (i % 5) * n // 10
        x[start : start + n // 3] += 0.3 * np.sin(2 * np.pi * (300 + 50 * i) * t[start : start + n // 3])
        x = x.astype(np.float32)
        if i % POISON_EVERY == 0:
            x[0] = POISON_MARK
        out.append(x)
    return out


def fingerprint(result: Dict[str, Any]) -> tuple:
    """What a run must reproduce exactly: the VAD decisions and the resampled audio, bit for bit."""
    v = result["v"]
    return (np.asarray(v["frames"]).tobytes(), np.asarray(v["audio"].samples).tobytes())


def run_one(p: Pipeline, x: np.ndarray) -> Any:
    try:
        return fingerprint(p.run_sync((x, RATE_IN)))
    except NodeError as e:
        return ("NodeError", "poisoned input" in str(e) and e.node_id == "flaky")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs = 0
        self.expected_errors = 0
        self.mismatches: List[str] = []

    def add(self, runs: int, errors: int, mismatches: List[str]) -> None:
        with self.lock:
            self.runs += runs
            self.expected_errors += errors
            self.mismatches.extend(mismatches[:5])


def threaded(pipelines: List[Pipeline], threads: int, runs: int, inputs, expected, timeout_s: float) -> Dict[str, Any]:
    tally = Tally()
    start_barrier = threading.Barrier(threads)
    crashed: List[str] = []

    def worker(t: int) -> None:
        try:
            p = pipelines[t % len(pipelines)]
            mism, errs = [], 0
            start_barrier.wait()
            for r in range(runs):
                i = (t * 5 + r) % len(inputs)
                got = run_one(p, inputs[i])
                if got != expected[i]:
                    mism.append(f"thread {t} run {r} input {i}")
                elif got[0] == "NodeError":
                    errs += 1
            tally.add(runs, errs, mism)
        except BaseException as e:  # reported, never swallowed
            crashed.append(f"thread {t}: {type(e).__name__}: {e}")

    ts = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    deadline = t0 + timeout_s
    for t in ts:
        t.join(max(0.0, deadline - time.perf_counter()))
    hung = sum(t.is_alive() for t in ts)
    return {
        "runs": tally.runs,
        "expected_node_errors": tally.expected_errors,
        "mismatches": tally.mismatches,
        "thread_failures": crashed,
        "hung_threads": hung,
        "seconds": time.perf_counter() - t0,
    }


def pin_mmap_threshold() -> bool:
    """Fixes glibc's mmap threshold at its 128 KiB default (``mallopt(M_MMAP_THRESHOLD)``).

    Measured here: with the default *dynamic* threshold, the first free of a large block raises
    the threshold, later blocks of that size come from the heap, and resident memory steps up
    once by ~8 MB at a random moment (then stays flat for any number of further runs). That step
    is the allocator, not a leak, but it lands after the warm-up about half the time and would
    read as +18 %. Pinning the threshold removes it; ``--glibc-default`` keeps the default."""
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024) == 1  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def soak(runtime: str = "rust", threads: int = 8, runs: int = 2000, pipelines: int = 100,
         warmup_runs: int = 50, timeout_s: float = 1800.0, log=None, pin_malloc: bool = True) -> Dict[str, Any]:
    say = log or (lambda *_: None)
    pinned = pin_mmap_threshold() if pin_malloc else False
    inputs = make_inputs()
    reference = make_pipeline(runtime)
    expected = [run_one(reference, x) for x in inputs]
    assert sum(e[0] == "NodeError" for e in expected) == len(range(0, INPUTS, POISON_EVERY))
    assert all(e[1] for e in expected if e[0] == "NodeError"), "the poisoned runs failed for another reason"

    shared = make_pipeline(runtime)
    # The warm-up does every kind of work once (shared, separate, churn), so that per-thread
    # allocator arenas, resampler plans and event loops exist before the baseline is read.
    say(f"warm-up: {threads} threads x {warmup_runs} runs, shared, then separate twice; 2 pipelines churned")
    warm = threaded([shared], threads, warmup_runs, inputs, expected, timeout_s)
    # Two generations of separate pipelines: measured on the native runtime, resident memory steps
    # up once (~8 MB) when the second set of pipelines replaces the first, then stays flat for any
    # number of further sets; reading the baseline before that step would report it as growth.
    for _ in range(2):
        warm_own = [make_pipeline(runtime) for _ in range(threads)]
        warm_sep = threaded(warm_own, threads, warmup_runs, inputs, expected, timeout_s)
        for ph in ("runs", "expected_node_errors", "hung_threads"):
            warm[ph] += warm_sep[ph]
        for ph in ("mismatches", "thread_failures"):
            warm[ph] += warm_sep[ph]
        del warm_own
    for k in range(2):
        p = make_pipeline(runtime)
        run_one(p, inputs[k])
        p.close()
        del p
    gc.collect()
    rss_start = rss_bytes()

    say(f"shared: {threads} threads x {runs} runs on one pipeline")
    phase_shared = threaded([shared], threads, runs, inputs, expected, timeout_s)
    say(f"separate: {threads} threads x {runs} runs, one pipeline each")
    own = [make_pipeline(runtime) for _ in range(threads)]
    phase_separate = threaded(own, threads, runs, inputs, expected, timeout_s)
    del own

    say(f"churn: {pipelines} pipelines created, run and dropped")
    churn_mismatches = []
    t0 = time.perf_counter()
    for k in range(pipelines):
        p = make_pipeline(runtime)
        i = k % len(inputs)
        if run_one(p, inputs[i]) != expected[i]:
            churn_mismatches.append(f"pipeline {k} input {i}")
        p.close()
        del p
    churn = {"pipelines": pipelines, "mismatches": churn_mismatches, "seconds": time.perf_counter() - t0}

    # After the poisoned runs, the shared pipeline still gives every good result.
    after = [run_one(shared, x) == e for x, e in zip(inputs, expected)]
    opens = breaker_opens(shared)
    gc.collect()
    rss_end = rss_bytes()
    phases = [warm, phase_shared, phase_separate]
    ok = (
        all(not ph["mismatches"] and not ph["thread_failures"] and ph["hung_threads"] == 0 for ph in phases)
        and not churn_mismatches
        and all(after)
        and opens == 0
    )
    return {
        "runtime": shared.runtime,
        "threads": threads,
        "runs_per_thread": runs,
        "warmup": warm,
        "shared": phase_shared,
        "separate": phase_separate,
        "churn": churn,
        "good_after_poison": all(after),
        "breaker_opens": opens,
        "rss_start_mb": rss_start / 2**20,
        "rss_end_mb": rss_end / 2**20,
        "rss_growth_pct": 100.0 * (rss_end - rss_start) / rss_start,
        "mmap_threshold_pinned": pinned,
        "ok": ok,
    }


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runtime", choices=("rust", "python"), default="rust")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--runs", type=int, default=2000, help="runs per thread in each threaded phase")
    ap.add_argument("--pipelines", type=int, default=100, help="pipelines created and dropped")
    ap.add_argument("--json", metavar="FILE", help="also write the summary as JSON")
    ap.add_argument("--glibc-default", action="store_true",
                    help="leave glibc's dynamic mmap threshold alone (see pin_mmap_threshold)")
    args = ap.parse_args(argv)
    s = soak(args.runtime, args.threads, args.runs, args.pipelines, log=lambda m: print(m, flush=True),
             pin_malloc=not args.glibc_default)
    for name in ("shared", "separate"):
        ph = s[name]
        print(f"{name:9s} {ph['runs']} runs in {ph['seconds']:.1f} s ({ph['runs'] / ph['seconds']:.0f} runs/s), "
              f"{ph['expected_node_errors']} expected NodeErrors, {len(ph['mismatches'])} mismatches, "
              f"{len(ph['thread_failures'])} thread failures, {ph['hung_threads']} hung threads")
    c = s["churn"]
    print(f"churn     {c['pipelines']} pipelines in {c['seconds']:.1f} s, {len(c['mismatches'])} mismatches")
    print(f"memory    RSS {s['rss_start_mb']:.1f} MB after warm-up -> {s['rss_end_mb']:.1f} MB at the end "
          f"({s['rss_growth_pct']:+.2f} %; glibc mmap threshold pinned: {s['mmap_threshold_pinned']})")
    print(f"runtime   {s['runtime']}; good results after poisoned runs: {s['good_after_poison']}; "
          f"circuit breaker opened {s['breaker_opens']} times; "
          f"{'OK' if s['ok'] else 'FAILED'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(s, f, indent=2)
    return 0 if s["ok"] and s["rss_growth_pct"] < 10.0 else 1


if __name__ == "__main__":
    sys.exit(main())
