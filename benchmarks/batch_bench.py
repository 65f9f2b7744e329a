"""Batch and cluster benchmark (``bash scripts/bench.sh`` runs it): the main job (1 s of 48 kHz int16
-> f32 -> 16 kHz -> 30 ms VAD) over a batch of items, in one run:

1. ``Pipeline.run_batch`` on the native engine with 1 and with 2 workers, interleaved: per-item time
   (batch wall time / items; median and p99 over the repeats) and throughput. The 1-worker run is
   the peer the 2-worker speed-up is measured against (target >= 1.8x on 2 free cores).
2. The same on recordings of different lengths (every other item 8 s, the rest 1 s): items placed
   on the worker with the least audio outstanding (the engine's default) against placement by item
   index (``REMOTEMEDIA_BALANCE=0``, in a child process of this script), each as 2 workers / 1.
   Interleaved with part 1, the ceiling: two child processes, each pinned to a core of its own,
   each running half the batch on a 1-worker pipeline (the same code, nothing shared between the
   halves): what two cores give this work on this machine, engine or not.
3. ``remotemedia batch`` on a directory of the same items with 1 process and with 2 processes
   (``remotemedia spawn -n 2``), 1 worker each, and with 1 process of 2 workers: the batch's own
   wall time from report.json (median and p99 over the repeats, per item and as throughput; files
   read and written included, on the workers) and the whole command's time. The 2-worker / 1-worker
   ratio is set against run_batch's from part 1 (target >= 0.9 of it). The commands run in a
   rotating order (each round starts with the next one), and each round also times the
   filesystem's own peer: creating as many small files as the batch writes, the way the CLI
   makes them (on Linux unnamed, then linked to their names), on one thread, in the same folder
   kind. Every command of every
   round (and every peer round) writes into a fresh folder of its own, as a user's batch would,
   and nothing is deleted until the end. Why: on ext4 (this VM's root, mounted with the default
   ``auto_da_alloc``) a rename that replaces an existing file starts writing the new file back
   on the renaming thread, 2,000-2,800 µs per file here against ~50 µs for a new name, so
   rounds that wrote over the previous round's outputs measured that instead of the batch (a
   2-worker / 1-worker ratio of 0.64 in one run, 0.95 in the next); and on a journal-less ext4
   a new inode costs 100-1,000+ µs of kernel CPU when many files were deleted in the last
   ~30 s. The folder's filesystem and mount options are printed. ``--scratch DIR`` puts the
   folders elsewhere (e.g. /dev/shm).

    python benchmarks/batch_bench.py [--quick] [--items N] [--binary PATH] [--scratch DIR] [--json FILE]
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


def usable_cores():
    """The CPUs this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


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


def engine_part(items, repeats, ceiling=False):
    """1 worker and 2 workers, interleaved; with `ceiling`, also two separate processes that each
    run half the batch on a 1-worker pipeline pinned to a core of its own, Python caller included:
    the same code with nothing shared, so what two cores give this work here."""
    p = Pipeline.from_dict(MANIFEST, runtime_hint="rust")
    batch = [(x, 48000) for x in items]
    for w in (1, 2):
        p.run_batch(batch[:8], workers=w)  # install the 2-worker pipeline and warm both
    contenders = [1, 2]
    halves = []
    if ceiling:
        half = len(items) // 2
        halves = [HalfBatch(0, (0, half)), HalfBatch(1, (half, len(items)))]
        contenders.append("halves")
    walls = {c: [] for c in contenders}
    cpus = {1: [], 2: []}
    try:
        for _ in range(repeats):
            for w in contenders:
                if w == "halves":
                    t = time.perf_counter()
                    for h in halves:
                        h.go()
                    walls[w].append(max(h.done() for h in halves) - t)
                    continue
                c = time.process_time()
                t = time.perf_counter()
                out = p.run_batch(batch, workers=w)
                walls[w].append(time.perf_counter() - t)
                cpus[w].append(time.process_time() - c)
                assert all(isinstance(r, dict) for r in out), "every item succeeds"
    finally:
        for h in halves:
            h.close()
    return {w: stats(walls[w], len(items), cpus.get(w)) for w in contenders}


class HalfBatch:
    """A child process (this script with --half-child) holding items[start:end] and a 1-worker
    pipeline, pinned to one core with its caller thread; `go` starts its batch, `done` returns the
    monotonic time it finished (CLOCK_MONOTONIC is system-wide, so comparable with ours)."""

    def __init__(self, index, span, wait=True):
        cpus = sorted(os.sched_getaffinity(0))
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--half-child", f"{span[0]}:{span[1]}:{cpus[index % len(cpus)]}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if wait:
            self.ready()

    def ready(self):
        """Waits for the child to have its items and a warm pipeline (children started together
        get ready together)."""
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit("half-batch child failed to start")

    def go(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def done(self):
        return float(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def half_child(spec):
    start, end, cpu = (int(v) for v in spec.split(":"))
    os.sched_setaffinity(0, {cpu})
    p = Pipeline.from_dict(MANIFEST, runtime_hint="rust")
    batch = [(speech_like_i16(k), 48000) for k in range(start, end)]
    # Warmed on its whole share, twice: a fresh process's first batches pay for the memory its
    # allocator has not reserved yet (page faults on every buffer), measured at 0.3-0.5x the
    # speed of later ones for 512 items; the parent's pipeline is warm by the time it is timed.
    for _ in range(2):
        p.run_batch(batch, workers=1)
    print("ready", flush=True)
    for line in sys.stdin:
        out = p.run_batch(batch, workers=1)
        print(repr(time.perf_counter()), flush=True)
        assert all(isinstance(r, dict) for r in out), "every item succeeds"
    return 0


def mixed_items(n=32):
    """Recordings of different lengths: every other one 8 s, the rest 1 s (144 s in all). Placed
    by index, every long one lands on the same worker."""
    return [speech_like_i16(k, seconds=8.0 if k % 2 == 0 else 1.0) for k in range(n)]


def mixed_part(repeats):
    """2 workers / 1 worker on the mixed batch, balanced here and placed by index in a child."""
    balanced = engine_part(mixed_items(), repeats)
    env = dict(os.environ, REMOTEMEDIA_BALANCE="0")
    child = subprocess.run([sys.executable, os.path.abspath(__file__), "--mixed-child", str(repeats)],
                           capture_output=True, text=True, env=env)
    if child.returncode != 0:
        raise SystemExit(f"index-placement child failed: {child.stderr}")
    by_index = {int(k): v for k, v in json.loads(child.stdout).items()}
    return balanced, by_index


def find_binary(given):
    if given:
        return given
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for profile in ("release", "debug"):
        path = os.path.join(root, "target", profile, "remotemedia")
        if os.path.exists(path):
            return path
    return shutil.which("remotemedia")


def mount_of(path):
    """(mount point, filesystem type, options) of the filesystem holding `path`: /proc/mounts'
    longest mount point above it, with ext4's full option list (defaults such as auto_da_alloc
    included) from /proc/fs/ext4/DEVICE/options where it is readable."""
    path, best = os.path.realpath(path), ("", "unknown", "", "")
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 4 and (path == parts[1] or path.startswith(parts[1].rstrip("/") + "/")):
                    if len(parts[1]) >= len(best[0]):
                        best = (parts[1], parts[2], parts[3], parts[0])
    except OSError:
        pass
    options = best[2]
    if best[1] == "ext4":
        try:
            with open(f"/proc/fs/ext4/{os.path.basename(best[3])}/options") as f:
                options = ",".join(f.read().split())
        except OSError:
            pass
    return best[0], best[1], options


def _linkat():
    """``link(fd, path)``: names the unnamed file open as ``fd`` (libc's ``linkat`` through
    /proc), raising OSError; None where that cannot be done (not Linux, no /proc)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "O_TMPFILE") or not os.path.isdir("/proc/self/fd"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def link(fd, path):
        # AT_FDCWD = -100, AT_SYMLINK_FOLLOW = 0x400
        if libc.linkat(-100, f"/proc/self/fd/{fd}".encode(), -100, path.encode(), 0x400) != 0:
            raise OSError(ctypes.get_errno(), "linkat", path)

    return link


def create_files(folder, count, size):
    """The filesystem's peer of a batch's writes: `count` files of `size` bytes made the way the
    CLI makes each output (src/file_safety.rs): on Linux an unnamed file (``O_TMPFILE``) written
    and then linked to its name, else written under a temporary name and renamed; on one thread,
    into `folder` (a fresh one each round). Returns the wall seconds."""
    os.makedirs(folder, exist_ok=True)
    data = b"x" * size
    link = _linkat()
    t = time.perf_counter()
    for k in range(count):
        final = os.path.join(folder, f"f{k:05d}.json")
        if link is not None:
            try:
                fd = os.open(folder, os.O_WRONLY | os.O_TMPFILE, 0o666)
            except OSError:
                link = None  # no unnamed files on this filesystem: the named way, as the CLI
            else:
                try:
                    os.write(fd, data)
                    link(fd, final)
                finally:
                    os.close(fd)
                continue
        tmp = os.path.join(folder, f".f{k:05d}.part")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, final)
    return time.perf_counter() - t



def batch_folder(tmp, items):
    """The main job's manifest and a folder of the items as 48 kHz WAV files, in `tmp`: (manifest
    path, input folder)."""
    manifest = os.path.join(tmp, "speech_vad.json")
    with open(manifest, "w") as f:
        json.dump(MANIFEST, f)
    inputs = os.path.join(tmp, "in")
    os.makedirs(inputs)
    for k, x in enumerate(items):
        write_wav(os.path.join(inputs, f"item_{k:05d}.wav"), to_audio((x, 48000)))
    return manifest, inputs


def run_batch_command(cmd, out, items):
    """Runs a `remotemedia batch` (or `spawn ... batch`) command line writing into `out`; every
    item must succeed. Returns its report.json."""
    res = subprocess.run(cmd + ["--out", out], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr}")
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    assert report["ok"] == items, report["failed"]
    return report


def cli_part(binary, items, repeats, scratch=None):
    tmp = tempfile.mkdtemp(prefix="remotemedia-batch-bench-", dir=scratch)
    try:
        manifest, inputs = batch_folder(tmp, items)
        commands = {
            "1 process": [binary, "batch", manifest, inputs, "--workers", "1", "--no-progress"],
            "1 process x 2 workers": [binary, "batch", manifest, inputs, "--workers", "2", "--no-progress"],
            "2 processes": [binary, "spawn", "-n", "2", "--", "batch", manifest, inputs, "--workers", "1", "--no-progress"],
        }
        walls = {k: [] for k in commands}
        whole = {k: [] for k in commands}
        cpus = {k: [] for k in commands}
        fs_walls = []
        names = list(commands)
        for r in range(repeats + 1):
            # Rotating order: no command always follows the same one (see the module's note).
            for name in names[r % len(names):] + names[:r % len(names)]:
                cmd = commands[name]
                # A fresh folder per command and round (see the module's note).
                out = os.path.join(tmp, f"out-{name.replace(' ', '_')}-{r}")
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                report = run_batch_command(cmd, out, len(items))
                elapsed = time.perf_counter() - t
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
                if r > 0:  # the first round warms the page cache and the binary
                    walls[name].append(report["wall_s"])
                    whole[name].append(elapsed)
                    cpus[name].append(cpu)
            first = os.path.join(tmp, f"out-1_process-{r}")
            size = max(1, int(np.median([os.path.getsize(os.path.join(first, n))
                                         for n in os.listdir(first) if n != "report.json"][:64] or [1])))
            wall = create_files(os.path.join(tmp, f"fs-peer-{r}"), len(items), size)
            if r > 0:
                fs_walls.append(wall)
        same = _same_outputs(os.path.join(tmp, f"out-1_process-{repeats}"), os.path.join(tmp, f"out-2_processes-{repeats}"))
        result = {k: stats(walls[k], len(items)) for k in commands}
        mount, fstype, options = mount_of(tmp)
        result["filesystem"] = {"type": fstype, "mount": mount, "options": options, **stats(fs_walls, len(items))}
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
    ap.add_argument("--scratch", help="folder for the CLI part's inputs and outputs (default: the system temp dir)")
    ap.add_argument("--json")
    ap.add_argument("--mixed-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--half-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mixed_child:
        print(json.dumps(engine_part(mixed_items(), args.mixed_child)))
        return 0
    if args.half_child:
        return half_child(args.half_child)
    repeats = 5 if args.quick else 15
    items = [speech_like_i16(k) for k in range(args.items)]
    usable = usable_cores()
    print(f"== batch benchmark: {args.items} items of 1 s 48 kHz int16 -> f32 -> 16 kHz -> VAD; "
          f"{usable} usable cores, load average {os.getloadavg()[0]:.1f}")
    results = {"items": args.items, "cores": usable, "loadavg_start": os.getloadavg()[0]}

    engine = engine_part(items, repeats, ceiling=usable >= 2)
    row("run_batch, 1 worker", engine[1])
    row("run_batch, 2 workers", engine[2])
    speedup = engine[2]["items_per_s"] / engine[1]["items_per_s"]
    print(f"{'':<44} 2 workers / 1 worker: {speedup:.2f}x throughput (target >= 1.8x on 2 free cores)")
    results["engine"] = {"1_worker": engine[1], "2_workers": engine[2], "speedup": speedup}
    if "halves" in engine:
        row("2 processes x half the batch, 1 core each", engine["halves"])
        ceiling = engine["halves"]["items_per_s"] / engine[1]["items_per_s"]
        print(f"{'':<44} / 1 worker: {ceiling:.2f}x: what 2 cores give this work here (the ceiling); "
              f"2 workers reach {speedup / ceiling:.0%} of it")
        results["engine"].update(halves=engine["halves"], ceiling=ceiling)

    balanced, by_index = mixed_part(repeats)
    mixed = {}
    for name, r in (("least outstanding", balanced), ("by item index", by_index)):
        ratio = r[2]["items_per_s"] / r[1]["items_per_s"]
        mixed[name] = {"1_worker": r[1], "2_workers": r[2], "speedup": ratio}
        print(f"{'mixed 16 x 8 s + 16 x 1 s, ' + name:<44} 1 worker {r[1]['batch_median_ms']:>6.2f} ms, 2 workers "
              f"{r[2]['batch_median_ms']:>6.2f} ms per batch: {ratio:.2f}x")
    results["mixed"] = mixed

    binary = find_binary(args.binary)
    if binary is None:
        print("remotemedia executable not found (cargo build --release): process part skipped")
    else:
        cli, same = cli_part(binary, items, max(3, repeats // 3), args.scratch)
        fs = cli["filesystem"]
        print(f"{'output folders on':<44} {fs['type']} at {fs['mount']} ({fs['options']}); a fresh folder per command and round")
        print(f"{'creating the output files alone (' + fs['type'] + ')':<44} per file median "
              f"{fs['per_item_median_us']:>8.1f} µs  p99 {fs['per_item_p99_us']:>8.1f} µs  (1 thread, same folder kind: "
              f"the filesystem's share of each item)")
        for name in ("1 process", "2 processes"):
            row(f"remotemedia batch, {name} x 1 worker", cli[name])
            print(f"{'':<44} whole command (start-up, reading, writing) median {cli[name]['command_median_ms']:.1f} ms,"
                  f" CPU {cli[name]['command_cpu_median_ms']:.1f} ms")
        row("remotemedia batch, 1 process x 2 workers", cli["1 process x 2 workers"])
        wspeed = cli["1 process x 2 workers"]["items_per_s"] / cli["1 process"]["items_per_s"]
        print(f"{'':<44} 2 workers / 1 worker: {wspeed:.2f}x throughput, {wspeed / speedup:.2f} of run_batch's "
              f"{speedup:.2f}x (target >= 0.9; files read and written on the workers)")
        results["cli_workers"] = {"speedup": wspeed, "of_run_batch": wspeed / speedup}
        pspeed = cli["2 processes"]["items_per_s"] / cli["1 process"]["items_per_s"]
        print(f"{'':<44} 2 processes / 1 process: {pspeed:.2f}x throughput; identical output files: {same}")
        # The spawn row: P processes x W workers against 1 process x P*W workers (here
        # 2 x 1 against 1 x 2; the target on 16 cores is 4 x 4 >= 90 % of 1 x 16).
        spawn_vs = cli["2 processes"]["items_per_s"] / cli["1 process x 2 workers"]["items_per_s"]
        print(f"{'spawn 2 processes x 1 worker vs 1 x 2 workers':<44} {spawn_vs:.0%} of the single process's "
              f"items/s (target on 16 cores: 4 x 4 >= 90 % of 1 x 16)")
        results["cli"] = {"binary": binary, **cli, "speedup": pspeed, "identical_outputs": same,
                          "spawn_2x1_of_1x2": spawn_vs}
    results["loadavg_end"] = os.getloadavg()[0]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
