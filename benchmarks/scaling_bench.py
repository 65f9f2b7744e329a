"""Scaling benchmark: every figure of the "every core" issue, for 1, 2, 4, ... workers up to the
machine's usable cores, in one run. The work is the main job (1 s of 48 kHz int16 -> f32 -> 16 kHz
-> 30 ms VAD) over a batch of items (2,048 by default), and for streaming 20 ms chunks through
resample + VAD.

For each worker count W:

1. ``Pipeline.run_batch(workers=W)`` items/s, and its ceiling measured in the same rounds: W child
   processes, each pinned to a CPU of its own, each running 1/W of the batch on a 1-worker
   pipeline (the same code, nothing shared): what W cores give this work on this machine. Rounds
   interleave the worker counts and the ceilings, so a busy machine slows all alike.
2. ``remotemedia batch --workers W`` on a folder of WAV files (reading and writing included, a
   fresh output folder per command and round): the batch's own items/s from report.json, set
   against run_batch's at the same W (16-core target >= 0.8 of it; 2-core target: its 2w/1w >= 0.9
   of run_batch's 2w/1w).
3. ``remotemedia spawn -n P -- batch ... --workers W/P`` against the same command in 1 process of
   W workers (P = 4 from 16 workers up, else 2; target 4 x 4 >= 90 % of 1 x 16).
4. Streaming from W Python threads, each pushing into sessions of its own on a W-worker pipeline:
   real-time streams held (pushes/s / 50) and p50/p99 push latency. A push runs on its caller's
   thread holding the GIL throughout (NativeSession::push: a ~5 µs chunk is dearer to hand over
   than to run), so the GIL time per push is its whole latency, and Python threads share one core.
5. Streaming from W Rust threads against W pinned processes (benchmarks/stream_scaling.rs, run
   as a child; built by ``cargo bench --bench stream_scaling --no-run``).

Prints a table per part and the targets, and with ``--json FILE`` all figures.

    python benchmarks/scaling_bench.py [--items N] [--workers 1,2,4] [--rounds R] [--binary PATH]
        [--stream-binary PATH] [--scratch DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from batch_bench import (  # noqa: E402
    MANIFEST, HalfBatch, batch_folder, find_binary, mount_of, run_batch_command, speech_like_i16, stats, usable_cores)
from streaming_bench import CHUNK, RATE, speech_like, summarize  # noqa: E402

from remotemedia import AudioResampleNode, Pipeline, VADNode  # noqa: E402


def default_counts(cores):
    counts, n = [], 1
    while n < cores:
        counts.append(n)
        n *= 2
    return counts + [cores]


def engine_part(items, counts, rounds):
    """run_batch at each worker count and the pinned-process ceiling at each, interleaved."""
    p = Pipeline.from_dict(MANIFEST, runtime_hint="rust")
    batch = [(x, 48000) for x in items]
    n = len(items)
    for w in counts:
        # Each pool installed and warmed on the whole batch before timing (see half_child).
        p.run_batch(batch, workers=w)
    shares = {w: [HalfBatch(k, (k * n // w, (k + 1) * n // w), wait=False) for k in range(w)] for w in counts}
    for hs in shares.values():
        for h in hs:
            h.ready()
    walls = {("engine", w): [] for w in counts} | {("ceiling", w): [] for w in counts}
    cpus = {w: [] for w in counts}
    try:
        for _ in range(rounds):
            for w in counts:
                c = time.process_time()
                t = time.perf_counter()
                out = p.run_batch(batch, workers=w)
                walls[("engine", w)].append(time.perf_counter() - t)
                cpus[w].append(time.process_time() - c)
                assert len(out) == n and all(isinstance(r, dict) for r in out), "every item succeeds"
                t = time.perf_counter()
                for h in shares[w]:
                    h.go()
                walls[("ceiling", w)].append(max(h.done() for h in shares[w]) - t)
    finally:
        for hs in shares.values():
            for h in hs:
                h.close()
    return {w: {"run_batch": stats(walls[("engine", w)], n, cpus[w]), "ceiling": stats(walls[("ceiling", w)], n)} for w in counts}


def cli_part(binary, items, counts, rounds, scratch):
    """`remotemedia batch --workers W` and `spawn -n P -- batch --workers W/P` at each count, in a
    rotating order, each into a fresh folder; the batch's own wall time from report.json."""
    tmp = tempfile.mkdtemp(prefix="remotemedia-scaling-", dir=scratch)
    try:
        manifest, inputs = batch_folder(tmp, items)
        commands = {}
        for w in counts:
            commands[("batch", w)] = ["batch", manifest, inputs, "--workers", str(w), "--no-progress"]
            if w >= 2:
                procs = 4 if w >= 16 and w % 4 == 0 else 2
                if w % procs == 0:
                    commands[("spawn", w)] = ["spawn", "-n", str(procs), "--", "batch", manifest, inputs,
                                              "--workers", str(w // procs), "--no-progress"]
        walls = {k: [] for k in commands}
        names = list(commands)
        for r in range(rounds + 1):
            for key in names[r % len(names):] + names[: r % len(names)]:
                out = os.path.join(tmp, f"out-{key[0]}-{key[1]}-{r}")
                report = run_batch_command([binary, *commands[key]], out, len(items))
                if r > 0:  # the first round warms the page cache and the binary
                    walls[key].append(report["wall_s"])
                shutil.rmtree(out, ignore_errors=True)
        result = {k: stats(v, len(items)) for k, v in walls.items()}
        for k, cmd in commands.items():
            result[k]["processes"] = int(cmd[2]) if k[0] == "spawn" else 1
        mount, fstype, options = mount_of(tmp)
        return result, {"type": fstype, "mount": mount, "options": options}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def python_streaming_part(counts, seconds, rounds):
    """W Python threads pushing 20 ms chunks into sessions of their own on a W-worker pipeline."""
    x = speech_like(2.0)
    chunks = [x[i : i + CHUNK] for i in range(0, x.size - CHUNK + 1, CHUNK)]
    pipes = {w: Pipeline([AudioResampleNode(16000, node_id="resample"), VADNode(frame_duration_ms=30, node_id="vad")],
                         runtime_hint="rust", workers=w) for w in counts}
    for p in pipes.values():
        s = p.stream()
        for c in chunks[:10]:
            s.push((c, RATE))
        s.close()
    rates = {w: [] for w in counts}
    lats = {w: [] for w in counts}
    for _ in range(rounds):
        for w in counts:
            p = pipes[w]
            lat = [[] for _ in range(w)]
            barrier = threading.Barrier(w + 1)
            stop = [0.0]

            def work(k):
                barrier.wait()
                clock, mine = time.perf_counter_ns, lat[k]
                while time.perf_counter() < stop[0]:
                    s = p.stream()
                    for c in chunks:
                        t0 = clock()
                        s.push((c, RATE))
                        mine.append(clock() - t0)
                    s.close()

            ts = [threading.Thread(target=work, args=(k,)) for k in range(w)]
            for th in ts:
                th.start()
            stop[0] = time.perf_counter() + seconds
            t0 = time.perf_counter()
            barrier.wait()
            for th in ts:
                th.join()
            wall = time.perf_counter() - t0
            pushes = sum(len(v) for v in lat)
            rates[w].append(pushes / wall)
            lats[w].extend(v for vs in lat for v in vs)
    out = {}
    for w in counts:
        s = summarize(lats[w])
        r = float(np.median(rates[w]))
        out[w] = {"pushes_per_s": r, "streams": r / 50, "p50_us": s["median_us"], "p99_us": s["p99_us"]}
    return out


def find_stream_binary(given):
    if given:
        return given
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    found = sorted(glob.glob(os.path.join(root, "target", "release", "deps", "stream_scaling-*")), key=os.path.getmtime)
    found = [f for f in found if os.access(f, os.X_OK) and not f.endswith(".d")]
    return found[-1] if found else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=2048)
    ap.add_argument("--workers", help="worker counts, e.g. 1,2,4 (default: 1, 2, 4, ... up to the usable cores)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0, help="per streaming measurement")
    ap.add_argument("--binary", help="the remotemedia executable (default: target/release, then target/debug)")
    ap.add_argument("--stream-binary", help="the stream_scaling bench executable (default: newest in target/release/deps)")
    ap.add_argument("--scratch", help="folder for the CLI part's files (default: the system temp dir)")
    ap.add_argument("--skip", default="", help="parts to leave out: engine,cli,pystream,rsstream")
    ap.add_argument("--json")
    args = ap.parse_args()
    cores = usable_cores()
    counts = [int(v) for v in args.workers.split(",")] if args.workers else default_counts(cores)
    skip = set(filter(None, args.skip.split(",")))
    items = [speech_like_i16(k) for k in range(args.items)]
    results = {"items": args.items, "cores": cores, "counts": counts, "cpu": cpu_model(), "loadavg_start": os.getloadavg()[0]}
    print(f"== scaling benchmark: {args.items} items of 1 s 48 kHz int16 -> f32 -> 16 kHz -> VAD; {cores} usable cores "
          f"({results['cpu']}); load average {results['loadavg_start']:.1f}; worker counts {counts}", flush=True)

    engine = {}
    if "engine" not in skip:
        engine = engine_part(items, counts, args.rounds)
        print(f"{'workers':>7} {'run_batch items/s':>18} {'ceiling items/s':>16} {'of ceiling':>10} {'vs 1 worker':>11} {'cores busy':>10}")
        one = engine[counts[0]]["run_batch"]["items_per_s"]
        for w in counts:
            e, c = engine[w]["run_batch"], engine[w]["ceiling"]
            print(f"{w:>7} {e['items_per_s']:>18,.0f} {c['items_per_s']:>16,.0f} {e['items_per_s'] / c['items_per_s']:>10.2f} "
                  f"{e['items_per_s'] / one:>10.2f}x {e['parallelism']:>10.2f}")
        results["engine"] = {str(w): v for w, v in engine.items()}
        print(f"   targets: 16 cores, 16 workers >= 0.85 of the ceiling; 2 cores, 2 workers >= 0.95 of it", flush=True)

    binary = find_binary(args.binary)
    if "cli" not in skip and binary:
        cli, fs = cli_part(binary, items, counts, max(2, args.rounds // 2), args.scratch)
        print(f"remotemedia batch on {len(items)} WAV files ({fs['type']} at {fs['mount']}), report.json wall time:")
        print(f"{'workers':>7} {'batch items/s':>14} {'of run_batch':>12} {'vs 1 worker':>11}   spawn P x W/P items/s, of 1 x W")
        one = cli[("batch", counts[0])]["items_per_s"]
        for w in counts:
            b = cli[("batch", w)]
            rb = engine.get(w, {}).get("run_batch", {}).get("items_per_s")
            line = f"{w:>7} {b['items_per_s']:>14,.0f} {(b['items_per_s'] / rb if rb else float('nan')):>12.2f} {b['items_per_s'] / one:>10.2f}x"
            if ("spawn", w) in cli:
                s = cli[("spawn", w)]
                line += f"   {s['processes']} x {w // s['processes']}: {s['items_per_s']:>9,.0f} = {s['items_per_s'] / b['items_per_s']:.0%}"
            print(line)
        if len(counts) > 1 and counts[0] == 1 and engine:
            w = counts[1]
            ratio = (cli[("batch", w)]["items_per_s"] / one) / (engine[w]["run_batch"]["items_per_s"] / engine[1]["run_batch"]["items_per_s"])
            print(f"   {w}w/1w of the CLI over run_batch's {w}w/1w: {ratio:.2f} (2-core target >= 0.9)")
        print("   targets: 16 workers >= 0.8 of run_batch's items/s; spawn 4 x 4 >= 90 % of 1 x 16", flush=True)
        results["cli"] = {f"{k[0]}_{k[1]}": v for k, v in cli.items()}
        results["cli_filesystem"] = fs

    if "pystream" not in skip:
        py = python_streaming_part(counts, args.seconds, max(1, args.rounds // 2))
        print("streaming from Python threads (each push holds the GIL throughout: its latency is its GIL time):")
        for w in counts:
            r = py[w]
            print(f"{w:>7} threads {r['pushes_per_s']:>10,.0f} pushes/s = {r['streams']:>7,.0f} real-time streams; "
                  f"push p50 {r['p50_us']:.1f} µs p99 {r['p99_us']:.1f} µs", flush=True)
        results["python_streaming"] = {str(w): v for w, v in py.items()}

    stream_binary = find_stream_binary(args.stream_binary)
    if "rsstream" not in skip and stream_binary:
        path = os.path.join(tempfile.mkdtemp(prefix="remotemedia-stream-"), "stream.json")
        res = subprocess.run([stream_binary, "--threads", ",".join(map(str, counts)), "--seconds", str(args.seconds),
                              "--rounds", str(max(1, args.rounds // 2)), "--json", path], capture_output=True, text=True)
        sys.stdout.write(res.stdout)
        if res.returncode != 0:
            print(f"stream_scaling failed ({res.returncode}): {res.stderr[-2000:]}")
        else:
            with open(path) as f:
                results["rust_streaming"] = json.load(f)
            print("   targets: 16 threads >= 0.75 of the ceiling with push p99 <= 2 ms; 2 threads >= 1.5x 1 thread", flush=True)
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    elif "rsstream" not in skip:
        print("stream_scaling not built (cargo bench --bench stream_scaling --no-run): Rust streaming part skipped")

    results["loadavg_end"] = os.getloadavg()[0]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
