"""The native engine does not hold the interpreter: other threads and coroutines progress during a run."""

import asyncio
import threading
import time

import numpy as np
import pytest

from remotemedia import AudioResampleNode, Pipeline, VADNode

# GIL release is a property of the native runtime.
pytestmark = pytest.mark.requires_native


def long_pipeline():
    # Tens of milliseconds of native work: long enough for other Python code to visibly progress.
    return Pipeline([AudioResampleNode(16000, quality="very_high"), VADNode()], runtime_hint="rust")


def long_input():
    rng = np.random.default_rng(0)
    return (rng.standard_normal(48000 * 60).astype(np.float32) * 0.1, 48000)


def test_another_thread_runs_during_a_native_run():
    p, x = long_pipeline(), long_input()
    p.run_sync(x)  # warm: build the resamplers
    counter = [0]
    running = threading.Event()
    stop = threading.Event()

    def spin():
        running.set()
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    running.wait()
    try:
        before = counter[0]
        start = time.perf_counter()
        p.run_sync(x)
        elapsed = time.perf_counter() - start
        during = counter[0] - before
    finally:
        stop.set()
        t.join()
    assert elapsed > 0.005, "the run was too short to show anything"
    # With the GIL held for the whole run, the other thread could only run at the switch interval
    # (5 ms), i.e. a handful of increments; released, it counts freely.
    assert during > 10_000, f"only {during} increments in {elapsed * 1e3:.1f} ms"


def test_await_run_lets_other_coroutines_run():
    p, x = long_pipeline(), long_input()
    p.run_sync(x)

    async def main():
        ticks = 0
        done = False

        async def ticker():
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = ticks
        out = await p.run(x)
        during = ticks - before
        done = True
        await t
        return out, during

    out, during = asyncio.run(main())
    assert len(out["vad"]["frames"]) == 60 * 1000 // 30
    assert during > 100, f"the event loop ran only {during} times during the run"


def test_many_concurrent_awaits_complete_in_order_of_their_inputs():
    p = Pipeline([AudioResampleNode(16000)], runtime_hint="rust")
    inputs = [(np.full(4800, k / 100, np.float32), 48000) for k in range(50)]

    async def main():
        return await asyncio.gather(*(p.run(x) for x in inputs))

    outs = asyncio.run(main())
    for k, out in enumerate(outs):
        y = out["audio_resample"].samples
        assert y.size == 1600 and abs(float(np.median(y)) - k / 100) < 1e-3
