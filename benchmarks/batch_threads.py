"""Where a batch's time goes, thread by thread: ``Pipeline.run_batch`` of the main job (1 s of
48 kHz int16 -> f32 -> 16 kHz -> 30 ms VAD) with W workers, and for each batch what the kernel's
scheduler counted for every thread of this process (``/proc/self/task/*/schedstat`` and
``status``; Linux only):

- run: the share of the batch's wall time the thread ran on a CPU; the calling thread (``python``)
  converts inputs, builds every item's Python result and hands parts over, the workers
  (``timely:work-N``) run the items;
- queued: the share it was ready to run but waited for a CPU (another thread had it);
- parks / preempted: voluntary context switches (it blocked or parked: a worker out of work, the
  caller waiting for results) and involuntary ones (the scheduler took its CPU).

Why: ``scaling_bench.py`` says how far ``run_batch`` is from its ceiling; this says why: workers
that park (out of work), workers queued behind the calling thread, or a calling thread whose own
work grows with the pool. It is the diagnostic of the every-core issue's 16-core run
(``scripts/scaling_bundle.sh`` runs it there).

    python benchmarks/batch_threads.py [--workers 2,16] [--items 2048] [--batches 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from batch_bench import MANIFEST, speech_like_i16, usable_cores  # noqa: E402

from remotemedia import Pipeline  # noqa: E402


def snapshot():
    """{tid: (name, run_ns, queued_ns, voluntary, involuntary)} for this process's threads."""
    threads = {}
    for tid in os.listdir("/proc/self/task"):
        base = f"/proc/self/task/{tid}"
        try:
            with open(f"{base}/comm") as f:
                name = f.read().strip()
            with open(f"{base}/schedstat") as f:
                run, queued, _ = (int(v) for v in f.read().split())
            with open(f"{base}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except (OSError, ValueError):
            continue  # a thread that ended between the listing and the reads
        threads[tid] = (name, run, queued, int(status["voluntary_ctxt_switches"]), int(status["nonvoluntary_ctxt_switches"]))
    return threads


def one_batch(p, batch, workers):
    """One timed batch and, for every thread that ran during it, its counters' differences."""
    before = snapshot()
    t = time.perf_counter()
    out = p.run_batch(batch, workers=workers)
    wall = time.perf_counter() - t
    after = snapshot()
    assert len(out) == len(batch) and all(isinstance(r, dict) for r in out), "every item succeeds"
    threads = []
    for tid, (name, run, queued, vol, inv) in after.items():
        if tid not in before:
            continue
        b = before[tid]
        d = (run - b[1], queued - b[2], vol - b[3], inv - b[4])
        if d[0] > 0 or d[2] or d[3]:
            threads.append({"name": name, "caller": tid == str(os.getpid()), "run": d[0] / 1e9 / wall,
                            "queued": d[1] / 1e9 / wall, "parks": d[2], "preempted": d[3]})
    return wall, threads


def summarize(workers, items, walls, batches):
    """Medians over the batches: the caller's figures and the workers' (min / median / max)."""
    def med(values):
        return float(np.median(values))

    callers = [[t for t in b if t["caller"]] for b in batches]
    pool = [[t for t in b if t["name"].startswith("timely")] for b in batches]
    row = {"workers": workers, "items_per_s": items / med(walls), "cores_busy": med([sum(t["run"] for t in b) for b in batches]),
           "cpu_us_per_item": med([sum(t["run"] for t in b) * w / items * 1e6 for b, w in zip(batches, walls)])}
    for key in ("run", "queued", "parks", "preempted"):
        row[f"caller_{key}"] = med([sum(t[key] for t in c) for c in callers])
        row[f"worker_{key}"] = [med([min(t[key] for t in b) for b in pool]), med([med([t[key] for t in b]) for b in pool]),
                                med([max(t[key] for t in b) for b in pool])]
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", help="worker counts (default: 2 and the usable cores)")
    ap.add_argument("--items", type=int, default=2048)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    if not os.path.exists("/proc/self/task"):
        raise SystemExit("batch_threads.py reads /proc/self/task/*/schedstat: Linux only")
    cores = usable_cores()
    counts = [int(v) for v in args.workers.split(",")] if args.workers else sorted({min(2, cores), cores})
    p = Pipeline.from_dict(MANIFEST, runtime_hint="rust")
    batch = [(speech_like_i16(k), 48000) for k in range(args.items)]
    print(f"== run_batch thread by thread: {args.items} items of 1 s, {cores} usable cores, medians of {args.batches} batches")
    print(f"{'workers':>7} {'items/s':>9} {'busy':>5} {'cpu µs/item':>11} | {'caller run':>10} {'queued':>6} {'parks':>5} {'preempted':>9} | "
          f"workers run (min/med/max)   queued (min/med/max)   parks (min/med/max)   preempted (min/med/max)")
    rows = []
    for w in counts:
        for _ in range(2):  # the pool installed and its allocator warm before timing
            p.run_batch(batch, workers=w)
        walls, batches = [], []
        for _ in range(args.batches):
            wall, threads = one_batch(p, batch, w)
            walls.append(wall)
            batches.append(threads)
        r = summarize(w, args.items, walls, batches)
        rows.append(r)
        wr, wq, wp, wi = r["worker_run"], r["worker_queued"], r["worker_parks"], r["worker_preempted"]
        print(f"{w:>7} {r['items_per_s']:>9,.0f} {r['cores_busy']:>5.2f} {r['cpu_us_per_item']:>11.1f} | {r['caller_run']:>10.2f} "
              f"{r['caller_queued']:>6.2f} {r['caller_parks']:>5.0f} {r['caller_preempted']:>9.0f} | "
              f"{wr[0]:.2f} / {wr[1]:.2f} / {wr[2]:.2f}         {wq[0]:.2f} / {wq[1]:.2f} / {wq[2]:.2f}     "
              f"{wp[0]:.0f} / {wp[1]:.0f} / {wp[2]:.0f}       {wi[0]:.0f} / {wi[1]:.0f} / {wi[2]:.0f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"items": args.items, "cores": cores, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
