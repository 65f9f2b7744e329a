"""Streaming sessions on both runtimes: chunked resampling and VAD add up to the whole-buffer
results at 10, 20, 30 and 37 ms chunks, interleaved sessions keep their state apart, the async
forms give the same outputs, and misuse raises InputError."""

import asyncio
import threading

import numpy as np
import pytest

from remotemedia import AudioResampleNode, InputError, Pipeline, VADNode
import synth

RATE = 48000


def noisy_speech(seconds, seed):
    s, truth = synth.speech_like(RATE, seconds, seed)
    n = synth.noise("pink", s.size, RATE, seed + 1)
    return synth.mix_at_snr(s, truth, n, 10.0).astype(np.float32)


def main_job(runtime):
    return Pipeline([AudioResampleNode(output_rate=16000, node_id="resample"), VADNode(node_id="vad")], runtime_hint=runtime)


class Collected:
    """What a session's outputs add up to."""

    def __init__(self):
        self.audio, self.frames, self.segments = [], [], []

    def add(self, out):
        if "resample" in out:
            self.audio.append(np.asarray(out["resample"]))
        if "vad" in out:
            v = out["vad"]
            self.frames.append(np.asarray(v["frames"], dtype=bool))
            self.segments.extend(tuple(s) for s in v["segments"])
            self.audio.append(np.asarray(v["audio"]))
        return self

    def samples(self):
        return np.concatenate(self.audio) if self.audio else np.zeros(0, np.float32)

    def decisions(self):
        return np.concatenate(self.frames) if self.frames else np.zeros(0, bool)


def stream(pipeline, signal, chunk):
    got = Collected()
    session = pipeline.stream()
    for start in range(0, signal.size, chunk):
        got.add(session.push((signal[start : start + chunk], RATE)))
    return got.add(session.close())


def snr_db(ref, test):
    err = np.sum((ref.astype(np.float64) - test) ** 2)
    return np.inf if err == 0 else 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / err)


@pytest.mark.parametrize("ms", [10, 20, 30, 37])
def test_chunked_resampling_equals_the_whole_buffer(runtime, ms):
    p = Pipeline([AudioResampleNode(output_rate=16000, node_id="resample")], runtime_hint=runtime)
    signal = noisy_speech(1.2, 3)
    whole = np.asarray(p.run_sync((signal, RATE))["resample"])
    got = stream(p, signal, RATE * ms // 1000).samples()
    assert got.shape == whole.shape == (round(signal.size / 3),)
    assert snr_db(whole, got) >= 100.0
    # The same filter in another block layout (one filter length per block): only rounding differs.
    assert np.max(np.abs(got - whole)) <= 1e-5


@pytest.mark.parametrize("ms", [10, 20, 30, 37])
def test_chunked_vad_matches_the_whole_buffer(runtime, ms):
    p = main_job(runtime)
    signal = noisy_speech(4.0, 11)
    whole = p.run_sync((signal, RATE))["vad"]
    assert whole["segments"] and not whole["frames"].all(), "speech with pauses"
    got = stream(p, signal, RATE * ms // 1000)
    np.testing.assert_array_equal(got.decisions(), whole["frames"])
    assert got.segments == [tuple(s) for s in whole["segments"]]
    np.testing.assert_allclose(got.samples(), np.asarray(whole["audio"]), rtol=0, atol=1e-5)


def test_a_resampler_session_ends_with_the_filter_tail(runtime):
    """A 1 kHz tone pushed in 20 ms chunks comes out as a 1 kHz tone of round(n/3) samples at 16 kHz."""
    p = Pipeline([AudioResampleNode(output_rate=16000, node_id="resample")], runtime_hint=runtime)
    t = np.arange(RATE // 2) / RATE
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    s = p.stream()
    parts = [np.asarray(s.push((x[i : i + 960], RATE))["resample"]) for i in range(0, x.size, 960)]
    tail = np.asarray(s.close()["resample"])
    assert parts[0].size == 128, "a 16 ms block less the filter delay: output from the first chunk on"
    y = np.concatenate(parts + [tail])
    assert y.size == 8000
    expected = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(8000) / 16000)
    inner = slice(200, -200)  # away from the edges, where the filter sees the zeros beyond the signal
    assert snr_db(expected[inner], y[inner]) > 100


def test_interleaved_sessions_give_the_same_outputs_as_each_alone(runtime):
    p = main_job(runtime)
    signals = [noisy_speech(1.5, 100 + k) for k in range(3)]
    alone = [stream(p, s, 960) for s in signals]
    sessions = [p.stream() for _ in signals]
    got = [Collected() for _ in signals]
    for start in range(0, max(s.size for s in signals), 960):
        for k in reversed(range(len(signals))):
            if start < signals[k].size:
                got[k].add(sessions[k].push((signals[k][start : start + 960], RATE)))
    for k, s in enumerate(sessions):
        got[k].add(s.close())
        np.testing.assert_array_equal(got[k].decisions(), alone[k].decisions())
        assert got[k].segments == alone[k].segments
        np.testing.assert_array_equal(got[k].samples(), alone[k].samples())


def test_sessions_on_threads_keep_their_order(runtime):
    p = main_job(runtime)
    signals = [noisy_speech(1.0, 200 + k) for k in range(4)]
    alone = [stream(p, s, 960) for s in signals]
    results = [None] * len(signals)

    def work(k):
        results[k] = stream(p, signals[k], 960)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(signals))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(len(signals)):
        np.testing.assert_array_equal(results[k].decisions(), alone[k].decisions())
        np.testing.assert_array_equal(results[k].samples(), alone[k].samples())


def test_async_forms_match_the_blocking_ones(runtime):
    p = main_job(runtime)
    signal = noisy_speech(1.5, 21)
    chunks = [(signal[i : i + 960], RATE) for i in range(0, signal.size, 960)]
    reference = stream(p, signal, 960)

    async def by_apush():
        got = Collected()
        s = p.stream()
        # Queue every chunk before awaiting any: they must still be processed in order.
        pending = [asyncio.ensure_future(s.apush(c)) for c in chunks]
        for out in await asyncio.gather(*pending):
            got.add(out)
        return got.add(await s.aclose())

    async def by_iteration():
        async def source():
            for c in chunks:
                yield c

        got = Collected()
        async for out in p.stream(source()):
            got.add(out)
        return got

    for got in (asyncio.run(by_apush()), asyncio.run(by_iteration())):
        np.testing.assert_array_equal(got.decisions(), reference.decisions())
        assert got.segments == reference.segments
        np.testing.assert_array_equal(got.samples(), reference.samples())


def test_sync_iteration_and_context_manager(runtime):
    p = main_job(runtime)
    signal = noisy_speech(1.0, 31)
    chunks = [(signal[i : i + 1440], RATE) for i in range(0, signal.size, 1440)]
    got = Collected()
    for out in p.stream(chunks):
        got.add(out)
    np.testing.assert_array_equal(got.decisions(), stream(p, signal, 1440).decisions())
    with p.stream() as s:
        s.push(chunks[0])
    assert s.closed


def test_pushing_after_close_raises_and_the_pipeline_still_works(runtime):
    p = main_job(runtime)
    signal = noisy_speech(0.5, 41)
    s = p.stream()
    s.push((signal[:960], RATE))
    s.close()
    with pytest.raises(InputError, match="session is closed"):
        s.push((signal[:960], RATE))
    with pytest.raises(InputError, match="session is closed"):
        s.close()
    assert "vad" in p.run_sync((signal, RATE))


def test_a_chunk_at_another_rate_cannot_continue_a_stream(runtime):
    p = main_job(runtime)
    s = p.stream()
    s.push((np.zeros(960, np.float32), RATE))
    with pytest.raises(InputError, match="cannot continue it") as info:
        s.push((np.zeros(441, np.float32), 44100))
    assert info.value.node_id == "resample"
    # The session goes on at its own rate.
    s.push((np.zeros(960, np.float32), RATE))
    s.close()


def test_a_bad_chunk_fails_its_push_and_the_session_continues(runtime):
    p = main_job(runtime)
    signal = noisy_speech(1.0, 51)
    reference = stream(p, signal, 960)
    s = p.stream()
    got = Collected()
    for i, start in enumerate(range(0, signal.size, 960)):
        chunk = signal[start : start + 960]
        if i == 4:
            bad = chunk.copy()
            bad[3] = np.nan
            with pytest.raises(InputError):
                s.push((bad, RATE))
        got.add(s.push((chunk, RATE)))
    got.add(s.close())
    np.testing.assert_array_equal(got.decisions(), reference.decisions())
    np.testing.assert_array_equal(got.samples(), reference.samples())
