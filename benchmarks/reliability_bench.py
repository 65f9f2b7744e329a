"""What retries cost when nothing fails: a 2-node pipeline (GainNode -> PassthroughNode, 1 s of
16 kHz f32) with ``retry_policy: none`` next to the same pipeline with ``exponential`` (each node
call then keeps a copy of its inputs for a possible retry), measured interleaved in one process on
the chosen runtime. Prints median and p99 per run_sync call.

    python benchmarks/reliability_bench.py [--runtime rust|python] [--iters N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from python_bench import interleaved  # noqa: E402

from remotemedia import GainNode, PassthroughNode, Pipeline  # noqa: E402


def build(runtime: str, policy: str) -> Pipeline:
    return Pipeline([GainNode(gain_db=-3.0, node_id="g"), PassthroughNode(node_id="out")],
                    runtime_hint=runtime, config={"retry_policy": policy})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", default="rust")
    ap.add_argument("--iters", type=int, default=3000)
    args = ap.parse_args()
    data = (np.random.default_rng(1).uniform(-0.5, 0.5, 16000).astype(np.float32), 16000)
    plain, retrying = build(args.runtime, "none"), build(args.runtime, "exponential")
    a, b = interleaved(args.iters, 200, [lambda: plain.run_sync(data), lambda: retrying.run_sync(data)])
    print(f"runtime={args.runtime} iters={args.iters}")
    print(f"retry_policy=none         median {a['median_us']:8.1f} us  p99 {a['p99_us']:8.1f} us")
    print(f"retry_policy=exponential  median {b['median_us']:8.1f} us  p99 {b['p99_us']:8.1f} us")


if __name__ == "__main__":
    main()
