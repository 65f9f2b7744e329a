"""Loopback load on ``remotemedia serve``: N concurrent clients each stream 20 ms chunks of the
bundled speech sample (looped) in real time into ``speech_vad`` through ``remotemedia.connect``;
reports the sessions held, push-to-output latency (median, p99: from sending a chunk to its
``done``), chunks lost, and the server's CPU. The peer, measured in the same run: the same chunks
pushed into a local native session from one thread.

The clients are Python threads in this one process: on a small machine they, not the server, are
the first limit (the report says how late the clients' own schedule ran).

    python benchmarks/serve_bench.py --binary target/release/remotemedia --clients 10 50 100 --seconds 5
"""

import argparse
import os
import re
import subprocess
import threading
import time

import numpy as np

import remotemedia

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFEST = os.path.join(ROOT, "dataflows", "speech_vad.yaml")
SAMPLE = os.path.join(ROOT, "dataflows", "sample_speech.wav")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1e3, q)) if len(xs) else float("nan")


def client(url, chunks, seconds, lat, late, errors):
    try:
        session = remotemedia.connect(url).stream("speech_vad")
        t0 = time.perf_counter()
        n = int(seconds * 50)
        for k in range(n):
            due = t0 + k * 0.02
            now = time.perf_counter()
            if now < due:
                time.sleep(due - now)
            else:
                late.append(now - due)
            t = time.perf_counter()
            session.push(chunks[k % len(chunks)])
            lat.append(time.perf_counter() - t)
        session.close()
    except Exception as e:  # counted: a lost session
        errors.append(repr(e))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "remotemedia"))
    ap.add_argument("--clients", type=int, nargs="+", default=[10, 50, 100])
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    audio = remotemedia.load(SAMPLE)
    s, rate = np.asarray(audio.samples), audio.sample_rate
    step = rate // 50
    chunks = [remotemedia.Audio(s[i:i + step], rate) for i in range(0, len(s) - step + 1, step)]

    local = remotemedia.Pipeline.from_yaml(MANIFEST, runtime_hint="rust").stream()
    local_lat = []
    for c in chunks * 3:
        t = time.perf_counter()
        local.push(c)
        local_lat.append(time.perf_counter() - t)
    local.close()

    proc = subprocess.Popen([args.binary, "serve", MANIFEST, "--listen", "127.0.0.1:0"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = re.search(r"listening on (http://[0-9.:]+)", proc.stderr.readline()).group(1)
        print(f"local session push (peer, same run): median {pct(local_lat, 50):.3f} ms, p99 {pct(local_lat, 99):.3f} ms")
        print("clients | pushes | lost sessions | push-to-output median / p99 (ms) | clients late p99 (ms) | server CPU (cores)")
        for n in args.clients:
            lat, late, errors = [], [], []
            threads = [threading.Thread(target=client, args=(url, chunks, args.seconds, lat, late, errors)) for _ in range(n)]
            c0, w0 = cpu_seconds(proc.pid), time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            cpu = (cpu_seconds(proc.pid) - c0) / (time.perf_counter() - w0)
            print(f"{n} | {len(lat)} | {len(errors)} | {pct(lat, 50):.3f} / {pct(lat, 99):.3f} | {pct(late, 99):.1f} | {cpu:.2f}")
            if errors:
                print("  first error:", errors[0])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
