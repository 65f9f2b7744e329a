"""Inputs lent to the engine: ``run_sync`` and ``run_batch`` read the caller's arrays where they lie
(no copy), so these check what a copy used to guarantee for free: no node writes the caller's
array (nodes that work in place copy a lent input first), no output shares memory with an input,
and the engine lets go of every array once the call is over."""

import sys
import time

import numpy as np
import pytest

from remotemedia import GainNode, PassthroughNode, Pipeline, VADNode

from conftest import tone

GAIN = np.float32(10 ** (6 / 20))


def inputs():
    x = tone(seconds=0.5)
    return [
        x,
        np.round(x * 32767).astype(np.int16),
        np.round(x.astype(np.float64) * 2147483647).astype(np.int32),
        np.ascontiguousarray(np.stack([x, -0.5 * x], axis=1)),
    ]


def test_a_node_that_works_in_place_leaves_the_callers_array_as_it_was(runtime):
    p = Pipeline([GainNode(6.0, node_id="g")], runtime_hint=runtime)
    for x in (tone(seconds=0.5), np.ascontiguousarray(np.stack([tone(seconds=0.5)] * 2, axis=1))):
        kept = x.copy()
        out = p.run_sync((x, 16000))["g"].samples
        np.testing.assert_array_equal(x, kept)
        np.testing.assert_array_equal(out, kept * GAIN)
        assert not np.shares_memory(out, x)
        batch = p.run_batch([(x, 16000), (x, 16000)])
        np.testing.assert_array_equal(x, kept)
        for item in batch:
            np.testing.assert_array_equal(item["g"].samples, kept * GAIN)


def test_outputs_never_share_memory_with_the_input(runtime):
    # The engine's outputs are its own buffers, whether its input was lent or not; the pure
    # runtime copies an output that would alias the input (a pass-through hands its input on).
    for x in inputs():
        p = Pipeline([PassthroughNode(node_id="p")], runtime_hint=runtime)
        out = p.run_sync((x, 16000))["p"].samples
        np.testing.assert_array_equal(out, x)
        assert not np.shares_memory(out, x)
        out[...] = 0  # the output is the caller's to write
        assert np.any(x != 0)
    # A VAD result passes its input on: that audio is a copy too.
    x = tone(seconds=0.5)
    v = Pipeline([VADNode(node_id="v")], runtime_hint=runtime).run_sync((x, 16000))["v"]
    np.testing.assert_array_equal(v.audio.samples, x)
    assert not np.shares_memory(v.audio.samples, x)
    # In a stream too.
    with Pipeline([PassthroughNode(node_id="p")], runtime_hint=runtime).stream() as s:
        out = s.push((x, 16000))["p"].samples
    np.testing.assert_array_equal(out, x)
    assert not np.shares_memory(out, x)


def test_a_read_only_array_is_read_in_place(runtime):
    x = tone(seconds=0.5)
    x.flags.writeable = False
    p = Pipeline([GainNode(6.0, node_id="g")], runtime_hint=runtime)
    np.testing.assert_array_equal(p.run_sync((x, 16000))["g"].samples, x * GAIN)
    np.testing.assert_array_equal(p.run_batch([(x, 16000)])[0]["g"].samples, x * GAIN)


@pytest.mark.requires_native
@pytest.mark.parametrize("seconds", [0.5, 30.0], ids=["on-this-thread", "on-the-workers"])
def test_the_engine_lets_go_of_every_lent_array(seconds):
    # 30 s of 48 kHz is above the engine's inline bound (2**20 samples): it runs on the workers,
    # which drop their reference without the GIL (released at the next call that takes it).
    p = Pipeline([PassthroughNode(node_id="p")], runtime_hint="rust")
    arrays = [np.resize(a, (int(seconds * 48000),) + a.shape[1:]) for a in inputs()]
    before = [sys.getrefcount(a) for a in arrays]
    for _ in range(20):
        for a in arrays:
            p.run_sync((a, 48000))
    del a
    p.run_batch([(a, 48000) for a in arrays])
    # A worker may drop an item's input a moment after its result was delivered, without the GIL:
    # pyo3 releases that reference at the next call that takes the GIL. So: within a second.
    for _ in range(100):
        p.run_sync((tone(), 16000))
        if [sys.getrefcount(a) for a in arrays] == before:
            break
        time.sleep(0.01)
    assert [sys.getrefcount(a) for a in arrays] == before
