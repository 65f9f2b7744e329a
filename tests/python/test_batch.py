"""Pipeline.run_batch / arun_batch on both runtimes, and ``python -m remotemedia batch``: results in
input order, the same for 1 and 2 workers, a failing item reported as its exception while the
others complete, and the report listing every input."""

import asyncio
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from remotemedia import Pipeline
from remotemedia.audio import to_audio
from remotemedia.errors import InputError, ManifestError, NodeError
from remotemedia.nodes import Node
from remotemedia.wav import write_wav

from conftest import tone

CONVERT_GAIN = {
    "version": "1.0",
    "nodes": [
        {"id": "to_f32", "type": "FormatConverterNode", "params": {"target_format": "f32"}},
        {"id": "gain", "type": "GainNode", "params": {"gain_db": -6.0}},
    ],
    "edges": [{"from": "to_f32", "to": "gain"}],
}

CONVERT_VAD = {
    "version": "1.0",
    "nodes": [
        {"id": "to_f32", "type": "FormatConverterNode", "params": {"target_format": "f32"}},
        {"id": "vad", "type": "VADNode", "params": {"frame_duration_ms": 30}},
    ],
    "edges": [{"from": "to_f32", "to": "vad"}],
}

GAIN = 10 ** (-6.0 / 20)


def item(k, rate=16000):
    """Item k: an int16 tone whose amplitude encodes k."""
    amp = (1000 + 500 * k) / 32768
    return (tone(440.0, rate=rate, seconds=0.1, amplitude=amp, dtype=np.int16), rate)


def peak(audio):
    return float(np.max(np.abs(np.asarray(audio.samples, dtype=np.float64))))


def test_results_in_input_order_and_equal_for_one_and_two_workers(runtime):
    p = Pipeline.from_dict(CONVERT_GAIN, runtime_hint=runtime)
    items = [item(k) for k in range(16)]
    one = p.run_batch(items, workers=1)
    two = p.run_batch(items, workers=2)
    default = p.run_batch(items)
    assert len(one) == len(two) == len(default) == 16
    for k, (a, b, c) in enumerate(zip(one, two, default)):
        expected = (1000 + 500 * k) / 32768 * GAIN
        assert peak(a["gain"]) == pytest.approx(expected, rel=1e-3, abs=1e-5)
        np.testing.assert_array_equal(a["gain"].samples, b["gain"].samples)
        np.testing.assert_array_equal(a["gain"].samples, c["gain"].samples)
    # A batch item gives what a single run gives.
    single = p.run_sync(items[3])
    np.testing.assert_array_equal(single["gain"].samples, one[3]["gain"].samples)


def test_failing_item_reported_while_the_others_complete(runtime):
    p = Pipeline.from_dict(CONVERT_VAD, runtime_hint=runtime)
    rates = [16000, 22050, 8000, 16000, 22050, 48000]
    results = p.run_batch([item(k, r) for k, r in enumerate(rates)], workers=2)
    assert len(results) == len(rates)
    for k, (r, rate) in enumerate(zip(results, rates)):
        if rate % 100 == 0:
            assert isinstance(r, dict), f"item {k}: {r!r}"
            assert len(r["vad"]["frames"]) == 3  # 0.1 s in 30 ms frames
        else:
            # The item's own exception, naming the node (the native VAD raises InputError, the
            # pure-Python one NodeError: the same rate check, worded by each runtime).
            assert isinstance(r, (InputError, NodeError)), f"item {k}: {r!r}"
            assert r.node_id == "vad"
            assert "22050" in str(r)
    # The pipeline is still usable.
    assert isinstance(p.run_sync(item(0)), dict)


def test_a_batch_larger_than_one_part_keeps_order_failures_and_checks(runtime):
    # The native runtime hands a batch over in parts of ~384k samples, each its own epoch: 40
    # items of 1 s at 16 kHz span two parts. Results stay in input order, a failing item in the
    # later part is reported in its place, and a bad item in the later part stops the batch
    # before any part runs (the pipeline's metrics count no execution).
    p = Pipeline.from_dict({**CONVERT_VAD, "config": {"enable_metrics": True}}, runtime_hint=runtime)
    items = [(tone(440.0, rate=16000, seconds=1.0, amplitude=(k + 1) / 64, dtype=np.int16), 16000) for k in range(40)]
    items[33] = (np.zeros(16000, np.float64), 16000)  # not a sample format the engine takes
    with pytest.raises(InputError, match=r"^run_batch item 33: "):
        p.run_batch(items, workers=2)
    assert p.get_metrics()["total_executions"] == 0
    items[33] = (tone(440.0, rate=16000, seconds=1.0, amplitude=34 / 64, dtype=np.int16), 16000)
    items[30] = (tone(440.0, rate=22050, seconds=1.0, amplitude=0.5, dtype=np.int16), 22050)  # the VAD refuses 22.05 kHz
    results = p.run_batch(items, workers=2)
    assert len(results) == 40
    for k, r in enumerate(results):
        if k == 30:
            assert isinstance(r, (InputError, NodeError)) and r.node_id == "vad", r
            continue
        assert len(r["vad"]["frames"]) == 33, k  # 1 s in 30 ms frames
        assert peak(r["vad"]["audio"]) == pytest.approx((k + 1) / 64, rel=1e-3), k


def test_recordings_of_mixed_lengths_over_many_parts_equal_for_one_and_two_workers(runtime):
    # Lengths from 0.25 s to 6 s at 16 kHz, 96 s in all: the native runtime hands this over in
    # several parts, at most three in flight, each item on the worker with the least audio
    # outstanding, so placement depends on timing. Results must not: same order, same samples.
    p = Pipeline.from_dict(CONVERT_GAIN, runtime_hint=runtime)
    seconds = [6.0, 0.25, 3.0, 0.5] * 10
    items = [(tone(440.0, rate=16000, seconds=s, amplitude=(k + 1) / 64, dtype=np.int16), 16000)
             for k, s in enumerate(seconds)]
    one = p.run_batch(items, workers=1)
    two = p.run_batch(items, workers=2)
    assert len(one) == len(two) == len(items)
    for k, (a, b, s) in enumerate(zip(one, two, seconds)):
        assert len(a["gain"].samples) == int(16000 * s), k
        assert peak(a["gain"]) == pytest.approx((k + 1) / 64 * GAIN, rel=1e-3), k
        np.testing.assert_array_equal(a["gain"].samples, b["gain"].samples)


class Picky(Node):
    def process(self, data):
        if data.sample_rate != 16000:
            raise ValueError(f"wants 16 kHz, got {data.sample_rate}")
        return data


def test_python_node_failure_is_a_node_error_item(runtime):
    p = Pipeline([Picky(node_id="picky")], runtime_hint=runtime)
    results = p.run_batch([item(0), item(1, 8000), item(2)])
    assert isinstance(results[0], dict) and isinstance(results[2], dict)
    assert isinstance(results[1], NodeError)
    assert results[1].node_id == "picky"
    assert "wants 16 kHz, got 8000" in str(results[1])
    assert isinstance(results[1].__cause__, ValueError)


def test_arun_batch_and_bad_arguments(runtime):
    p = Pipeline.from_dict(CONVERT_GAIN, runtime_hint=runtime)
    out = asyncio.run(p.arun_batch([item(0), item(1)], workers=2))
    assert [peak(r["gain"]) for r in out] == pytest.approx([1000 / 32768 * GAIN, 1500 / 32768 * GAIN], rel=1e-3)
    assert p.run_batch([]) == []
    with pytest.raises(InputError, match="run_batch item 1"):
        p.run_batch([item(0), "not audio"])
    nan = np.full(480, 0.1, np.float32)
    nan[7] = np.nan
    # A plain (samples, rate) tuple is checked by the engine itself on the native runtime: the
    # same words, the item's index, and nothing runs.
    with pytest.raises(InputError, match=r"^run_batch item 2: samples contain NaN or infinity \(1 values, the first at frame 7\)"):
        p.run_batch([item(0), item(1), (nan, 16000)])
    assert [peak(r["gain"]) for r in p.run_batch([item(0)])] == pytest.approx([1000 / 32768 * GAIN], rel=1e-3)
    for bad in (0, -3, 257, 10**30, 1.5, True, "2"):
        with pytest.raises(ManifestError, match=r"run_batch\(workers=\): expected an integer from 1 to 256, found "):
            p.run_batch([item(0)], workers=bad)
    for bad in (None, 5):
        with pytest.raises(InputError, match=f"run_batch takes an iterable of items .*, received {type(bad).__name__}$"):
            p.run_batch(bad)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "remotemedia", *args], capture_output=True, text=True)


@pytest.mark.requires_native
def test_cli_batch_report_lists_every_input(tmp_path):
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps(CONVERT_VAD))
    inputs = tmp_path / "in"
    inputs.mkdir()
    for k, rate in enumerate([16000, 22050, 8000]):
        write_wav(str(inputs / f"item_{k:02}.wav"), to_audio(item(k, rate)))
    (inputs / "item_03.wav").write_bytes(b"RIFF but not really")
    out = tmp_path / "out"
    res = _cli("batch", str(manifest), str(inputs), "--out", str(out), "--workers", "2")
    assert res.returncode == 1, res.stderr
    assert "batch: 4 items, 2 ok, 2 failed" in res.stdout
    assert "2 of 4 items failed" in res.stderr
    report = json.loads((out / "report.json").read_text())
    assert [r["input"] for r in report["results"]] == [f"item_{k:02}.wav" for k in range(4)]
    assert [r["status"] for r in report["results"]] == ["ok", "error", "ok", "error"]
    assert report["results"][1]["error"]["node_id"] == "vad"
    assert report["results"][3]["error"]["stage"] == "read"
    vad = json.loads((out / "item_00.vad.json").read_text())
    assert vad["kind"] == "vad" and vad["frames"] == 3


def test_peak_memory_of_a_10000_item_batch_stays_near_that_of_a_1000_item_batch(runtime):
    # The batch scheduler keeps a bounded window of items in flight and lets each item's engine
    # state go when it settles, so a batch ten times longer must not need much more memory than
    # what its results themselves hold. Every item is the same small input object (the inputs
    # cost nothing per item) and a result is 16 samples, so the results of 10,000 items are a few
    # MB; the peak RSS of separate processes is compared (issue 13: <= 1.2x).
    script = textwrap.dedent(
        """
        import resource, sys
        import numpy as np
        from remotemedia import Pipeline
        runtime, n = sys.argv[1], int(sys.argv[2])
        x = (np.arange(16, dtype=np.float32) / 16 - 0.5)
        p = Pipeline([{"id": "gain", "type": "GainNode", "params": {"gain_db": -6.0}}],
                     runtime_hint=runtime, workers=2)
        p.run_batch([(x, 16000)] * 100)
        out = p.run_batch([(x, 16000)] * n)
        assert len(out) == n, len(out)
        expected = x * np.float32(10 ** (-6.0 / 20))
        for k in (0, n // 2, n - 1):
            got = np.asarray(out[k]["gain"].samples)
            assert np.allclose(got, expected, atol=1e-6), (k, got)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        """
    )
    peak_kib = {}
    for n in (1000, 10000):
        done = subprocess.run([sys.executable, "-c", script, runtime, str(n)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        peak_kib[n] = int(done.stdout.strip())
    assert peak_kib[10000] <= 1.2 * peak_kib[1000], peak_kib


def test_items_of_every_dtype_and_stereo_match_run_sync_and_are_released(runtime):
    # The native batch copies each item on the worker that runs it, holding a reference to the
    # caller's array until then: every sample format and a stereo item must come out as
    # run_sync's, and once the batch returns no reference may be left on the arrays.
    p = Pipeline.from_dict(CONVERT_GAIN, runtime_hint=runtime)
    x = tone(440.0, rate=16000, seconds=0.1, amplitude=0.25, dtype=np.float32)
    arrays = [
        x,
        np.round(x * 32767).astype(np.int16),
        np.round(x.astype(np.float64) * 2147483647).astype(np.int32),
        np.ascontiguousarray(np.stack([x, -0.5 * x], axis=1)),
    ]
    before = [sys.getrefcount(a) for a in arrays]
    items = [(a, 16000) for a in arrays]
    out = p.run_batch(items, workers=2)
    for a, got in zip(arrays, out):
        want = p.run_sync((a, 16000))["gain"].samples
        np.testing.assert_array_equal(got["gain"].samples, want)
    assert np.asarray(out[3]["gain"].samples).shape == (x.size, 2)
    del items, out, a, got, want
    p.run_sync((x, 16000))  # a call that takes the GIL: references dropped on workers are released by now
    assert [sys.getrefcount(a) for a in arrays] == before


def test_items_taken_as_they_are_and_items_converted_first_give_run_syncs_outputs_and_words(runtime):
    # On the native runtime a plain (samples, rate) tuple is checked by the engine and anything
    # else is converted by the package first (called back per item): a batch mixing both must
    # give each item what run_sync gives it, and a bad item of either kind run_sync's own words
    # after its index.
    p = Pipeline.from_dict(CONVERT_GAIN, runtime_hint=runtime)
    x = tone(440.0, rate=16000, seconds=0.1, amplitude=0.25, dtype=np.float32)
    wide = np.stack([x, x], axis=1)
    items = [
        (x, 16000),  # plain
        to_audio((x, 16000)),  # an Audio object
        (wide[:, 0], 16000),  # not contiguous: the package copies it
        (np.round(x * 32767).astype(np.int16), np.int64(16000)),  # a numpy rate
        {"to_f32": (x, 16000)},  # by source id
    ]
    out = p.run_batch(items, workers=2)
    assert len(out) == len(items)
    for it, got in zip(items, out):
        want = p.run_sync(it)["gain"]
        np.testing.assert_array_equal(np.asarray(got["gain"].samples), np.asarray(want.samples))
        assert got["gain"].sample_rate == want.sample_rate == 16000
    inf = x.copy()
    inf[3] = np.inf
    for bad in ((inf[1::2], 8000), (x.astype(np.float64), 16000), (x, 0), (x[:0], 16000), "not audio", (x, 16000, 1)):
        with pytest.raises(InputError) as sync_error:
            p.run_sync(bad)
        with pytest.raises(InputError) as batch_error:
            p.run_batch([items[0], bad], workers=2)
        assert str(batch_error.value) == f"run_batch item 1: {sync_error.value}"
