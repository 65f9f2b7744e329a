"""Fuzzes the conversion of Python nodes' outputs on both runtimes: random values (nested lists,
tuples and dicts, sets, big and small ints, NaN/inf, lone surrogates, numpy arrays and scalars,
audio, generators, self-containing and deeply nested containers) returned by a custom node, run
on the native and the pure-Python runtime. Every value must get the same verdict on both: the
same passed-on value (compared by type and content), or an ``InputError`` with the same message
(the native one's ``(run N)`` aside). Anything else (another exception class, a crash, a
mismatch) is a failure, printed with the seed that reproduces it.

    python scripts/fuzz_outputs.py --seconds 300 [--seed 1]
    python scripts/fuzz_outputs.py --count 120 --seed 7      # what tests/python/test_node_outputs.py runs

docs/reliability.md records runs with their exec counts.
"""

import argparse
import math
import random
import re
import sys
import time

import numpy as np

from remotemedia import Audio, InputError, Node, Pipeline


class Returns(Node):
    value = None

    def process(self, audio):
        return self.value


def scalar(r):
    return r.choice([
        lambda: None, lambda: r.random() < 0.5, lambda: r.randint(-5, 5),
        lambda: r.choice([2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**63) - 1, 10**30]),
        lambda: r.uniform(-1e6, 1e6), lambda: r.choice([math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7e308]),
        lambda: "".join(r.choice("ab\u00e9\U0001f600\x00\"\\") for _ in range(r.randint(0, 5))),
        lambda: "\ud800" if r.random() < 0.3 else "x",
        lambda: r.choice([np.float32(1.5), np.int64(-3), np.bool_(True), np.float64("nan"), np.uint64(2**64 - 1)]),
        lambda: np.arange(r.randint(0, 4), dtype=r.choice([np.int16, np.float32, np.float64, np.int64])),
        lambda: b"bytes", lambda: object(), lambda: {1, 2}, lambda: frozenset(),
        lambda: (x for x in range(2)), lambda: iter([1]),
        lambda: Audio(np.ones(r.randint(1, 4), np.float32) * 0.5, 16000),
        lambda: (np.zeros(r.randint(0, 3), r.choice([np.float32, np.float64, np.int16])), r.choice([16000, 0, -1, 2**33])),
    ])()


def value(r, depth):
    if depth > 4 or r.random() < 0.4:
        return scalar(r)
    kind = r.choice([0] * 6 + [1] * 4 + [2] * 6 + [3] * 2 + [4] * 1)  # heavy values (3, 4) rarer
    if kind == 0:
        return [value(r, depth + 1) for _ in range(r.randint(0, 4))]
    if kind == 1:
        return tuple(value(r, depth + 1) for _ in range(r.randint(0, 3)))
    if kind == 2:
        keys = [r.choice(["a", "b", "c", "\u00e9", 1, None, (1,)]) if r.random() < 0.2 else r.choice("abcdef") for _ in range(r.randint(0, 4))]
        return {k: value(r, depth + 1) for k in keys}
    if kind == 3:  # deep or self-containing
        if r.random() < 0.5:
            x = [1]
            x.append(x if r.random() < 0.5 else {"me": x})
            return x
        top = cur = []
        for _ in range(r.choice([99, 100, 101, 101, 4000])):
            cur.append([])
            cur = cur[0]
        return top
    return r.choice([[0] * 10, [0] * 1_000_000, [0] * 1_000_001, np.zeros(1_000_001, np.int8)])


def outcome(p, v):
    p._python_nodes["n"].value = v
    try:
        return ("ok", p.run_sync((np.zeros(160, np.float32), 16000))["n"])
    except InputError as e:
        return ("InputError", re.sub(r" \(run \d+\)", "", str(e)))


def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, Audio):
        return a.sample_rate == b.sample_rate and a.samples.dtype == b.samples.dtype and np.array_equal(a.samples, b.samples)
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == b or (a != a and b != b)
    return a == b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=0, help="stop after this many values (0: run --seconds)")
    args = ap.parse_args()
    pipes = {rt: Pipeline([Returns(node_id="n")], runtime_hint=rt) for rt in ("rust", "python")}
    end = time.monotonic() + args.seconds
    n = accepted = refused = failures = 0
    start = time.monotonic()
    while (n < args.count) if args.count else (time.monotonic() < end):
        seed = args.seed * 1_000_003 + n
        got = {}
        for rt, p in pipes.items():
            try:
                got[rt] = outcome(p, value(random.Random(seed), 0))
            except Exception as e:  # noqa: BLE001 -- any other class is a finding
                got[rt] = ("other", f"{type(e).__name__}: {e}")
        (ka, va), (kb, vb) = got["rust"], got["python"]
        if ka != kb or ka == "other" or (ka == "ok" and not same(va, vb)) or (ka == "InputError" and va != vb):
            failures += 1
            print(f"MISMATCH seed {seed}: rust {got['rust']!r:.300} / python {got['python']!r:.300}", flush=True)
        accepted += ka == "ok"
        refused += ka == "InputError"
        n += 1
    print(f"{n} values, {accepted} passed on, {refused} refused alike, {failures} mismatches, {time.monotonic() - start:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
