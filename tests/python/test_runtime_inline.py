"""``run_sync`` on the calling thread (issue 13): where the engine allows (no metrics, no Python
node, input up to 2**20 samples) a run is computed by the thread that waits for it, through the
same node runners as on the workers. These tests hold it to the workers' answers: ``run``
(asyncio) and ``run_batch`` always go to the workers, and a pipeline with metrics on keeps
``run_sync`` there too."""

import asyncio
import threading

import numpy as np
import pytest

from remotemedia import Audio, InputError, Node, NodeError, Pipeline

pytestmark = pytest.mark.requires_native

MAIN_JOB = [
    {"id": "to_f32", "type": "FormatConverterNode", "params": {"target_format": "f32"}},
    {"id": "resample_16k", "type": "AudioResampleNode", "params": {"output_rate": 16000}},
    {"id": "vad", "type": "VADNode", "params": {"frame_duration_ms": 30}},
]


def main_job(**kw):
    # Every node's output is returned, so each node type is compared, not only the last.
    return Pipeline(MAIN_JOB, outputs=["to_f32", "resample_16k", "vad"], runtime_hint="rust", **kw)


def tone_burst(seconds, rate=48000):
    """Silence, a 440 Hz tone at half scale over the middle fifth, silence; int16."""
    n = int(round(seconds * rate))
    i = np.arange(n)
    x = np.where((i >= 2 * n // 5) & (i < 3 * n // 5), np.sin(i * 440.0 * 2 * np.pi / rate) * 16384.0, 0.0)
    return x.astype(np.int16)


def on_workers(p, data):
    return asyncio.run(p.run(data))


def assert_same(a, b):
    assert set(a) == set(b)
    for k in ("to_f32", "resample_16k"):
        assert a[k].sample_rate == b[k].sample_rate
        np.testing.assert_array_equal(np.asarray(a[k].samples), np.asarray(b[k].samples))
    va, vb = a["vad"], b["vad"]
    assert va["segments"] == vb["segments"]
    np.testing.assert_array_equal(va["frames"], vb["frames"])
    np.testing.assert_array_equal(va["probabilities"], vb["probabilities"])
    np.testing.assert_array_equal(va["audio"].samples, vb["audio"].samples)


@pytest.mark.parametrize("seconds", [0.01, 0.1, 1.0, 3.0])
def test_run_sync_gives_what_the_workers_give(seconds):
    p = main_job()
    x = tone_burst(seconds)
    there = on_workers(p, (x, 48000))
    batch = p.run_batch([(x, 48000)])[0]
    first = p.run_sync((x, 48000))
    # The resampler and the VAD are stateful: the next call starts from a clean state again.
    again = p.run_sync((x, 48000))
    for got in (batch, first, again):
        assert_same(got, there)
    np.testing.assert_array_equal(first["to_f32"].samples, x.astype(np.float32) / np.float32(32768))
    assert first["resample_16k"].samples.size == round(seconds * 16000)
    if seconds >= 1.0:
        (start, end), = first["vad"]["segments"]
        assert abs(start - 0.4 * seconds) < 0.1 and abs(end - 0.6 * seconds) < 0.35
    # The input array is the caller's and stays untouched.
    np.testing.assert_array_equal(x, tone_burst(seconds))


def test_run_sync_matches_a_pipeline_with_metrics_on_the_workers():
    x = tone_burst(0.5)
    assert_same(main_job().run_sync((x, 48000)), main_job(enable_metrics=True).run_sync((x, 48000)))


def test_an_error_names_the_node_as_on_the_workers():
    p = Pipeline(MAIN_JOB[:1] + MAIN_JOB[2:], runtime_hint="rust")
    x = tone_burst(0.1, 16050)
    with pytest.raises(InputError) as here:
        p.run_sync((x, 16050))
    with pytest.raises(InputError) as there:
        on_workers(p, (x, 16050))
    assert type(here.value) is type(there.value)
    message = str(here.value)
    assert "node 'vad' (VADNode) rejected its input" in message and "multiple of 100 Hz" in message
    # The same words but for the run's number.
    strip = lambda s: s.split(": ", 1)[1]
    assert strip(message) == strip(str(there.value))
    # The pipeline is fine for the next call.
    assert p.run_sync((tone_burst(0.1, 16000), 16000))["vad"]["frames"].size > 0


class WhereAmI(Node):
    """Halves its input and notes the thread it ran on."""

    threads = []

    def process(self, audio):
        WhereAmI.threads.append(threading.get_ident())
        return Audio(audio.samples * np.float32(0.5), audio.sample_rate)


def test_a_python_node_keeps_the_run_on_the_workers():
    WhereAmI.threads.clear()
    p = Pipeline([{"id": "g", "type": "GainNode", "params": {"gain_db": 0.0}}, WhereAmI(node_id="half")], runtime_hint="rust")
    x = np.full(480, 0.5, dtype=np.float32)
    out = p.run_sync((x, 16000))
    np.testing.assert_array_equal(out["half"].samples, np.full(480, 0.25, dtype=np.float32))
    assert WhereAmI.threads and WhereAmI.threads[-1] != threading.get_ident(), "ran on a worker"


def test_threads_calling_run_sync_at_once_get_their_own_answers():
    p = main_job()
    inputs = [tone_burst(s) for s in (0.05, 0.1, 0.2, 0.3)]
    expected = [on_workers(p, (x, 48000)) for x in inputs]
    errors = []

    def call(k):
        try:
            for _ in range(20):
                assert_same(p.run_sync((inputs[k], 48000)), expected[k])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=call, args=(k,)) for k in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def plain_and_not_plain_inputs():
    """Inputs next to the line ``run_sync``'s fast path (``NativePipeline.run_plain``) draws."""
    x = tone_burst(0.05)
    f = x.astype(np.float32) / 32768
    yield "int16", (x, 48000)
    yield "float32", (f, 48000)
    yield "int32", (x.astype(np.int32), 48000)
    yield "stereo", (np.ascontiguousarray(np.stack([x, x], axis=1)), 48000)
    yield "300 channels", (np.zeros((4, 300), np.int16), 48000)
    yield "float64", (f.astype(np.float64), 48000)
    yield "big-endian float32", (f.astype(">f4"), 48000)
    yield "list", (list(f[:100]), 48000)
    yield "strided", (f[::2], 48000)
    yield "Fortran stereo", (np.asfortranarray(np.stack([f, f], axis=1)), 48000)
    yield "empty", (np.zeros(0, np.float32), 48000)
    yield "3-D", (np.zeros((4, 2, 2), np.float32), 48000)
    yield "ndarray subclass", (np.ma.masked_array(f), 48000)
    yield "rate numpy int", (x, np.int64(48000))
    yield "rate float", (x, 48000.0)
    yield "rate bool", (x, True)
    yield "rate 0", (x, 0)
    yield "rate 2**32", (x, 2**32)
    yield "rate int subclass", (x, type("Hz", (int,), {})(48000))
    yield "list pair", [x, 48000]
    yield "triple", (x, 48000, 1)
    yield "NaN", (np.array([0.0, np.nan, 1.0], np.float32), 48000)
    yield "Audio", Audio(x, 48000)
    yield "dict", {"to_f32": (x, 48000)}


def outcome(fn, data):
    try:
        return "ok", fn(data)
    except Exception as e:  # the class and the words are what is compared
        return type(e), str(e)


@pytest.mark.parametrize("name,data", list(plain_and_not_plain_inputs()), ids=lambda v: v if isinstance(v, str) else "")
def test_the_fast_path_takes_only_plain_inputs_and_answers_as_the_general_path(name, data):
    from remotemedia.pipeline import _plain_audio_tuple

    p = main_job()
    p.run_sync((tone_burst(0.01), 48000))  # compiled
    engine = p._engine
    fast = outcome(engine.run_plain, data)
    if fast == ("ok", None):
        return  # not taken: run_sync goes the general way, which is what it always did
    # Taken only where the package would have handed the input over unchanged ...
    assert _plain_audio_tuple(data), name
    # ... and then the same outputs, or the same error in the same words, as the general path.
    general = outcome(lambda d: engine.run({"": d}), data)
    assert fast[0] == general[0], (name, fast, general)
    if fast[0] == "ok":
        assert_same(fast[1], general[1])
    else:
        assert fast[1] == general[1]
