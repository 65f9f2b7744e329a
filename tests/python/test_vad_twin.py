"""The numpy VAD twin and synthetic signals (no Rust needed): silence, frame rule, streaming,
formats, bad input, accuracy in noise. Agreement with the native node: test_parity.py."""

import numpy as np
import pytest

import synth
from remotemedia._pure import vad as vadmod


def _f1(pred, truth):
    tp = np.sum(pred & truth)
    return 2 * tp / max(2 * tp + np.sum(pred & ~truth) + np.sum(~pred & truth), 1)


@pytest.fixture(scope="module")
def noisy():
    s, t = synth.speech_like(16000, 15.0, 21)
    nz = synth.noise("pink", len(s), 16000, 22)
    return synth.mix_at_snr(s, t, nz, 10.0), t


def test_silence_and_empty():
    segs, frames = vadmod.vad(np.zeros((48000, 1), np.float32), 16000)
    assert segs == [] and len(frames) == 100 and not frames.any()
    segs, frames = vadmod.vad(np.zeros((0, 1), np.float32), 16000)
    assert segs == [] and len(frames) == 0


@pytest.mark.parametrize("ms", [10, 20, 30])
def test_frame_count_is_floor(ms):
    fl = 16000 * ms // 1000
    for n in [fl - 1, fl, fl + 1, 7 * fl + fl // 2]:
        _, frames = vadmod.vad(np.full(n, 0.01, np.float32), 16000, ms)
        assert len(frames) == n // fl


def test_accuracy_in_pink_noise(noisy):
    x, t = noisy
    for ms in (10, 20, 30):
        segs, frames = vadmod.vad(x[:, None], 16000, ms)
        ft = synth.frame_truth(t, 16000 * ms // 1000)
        assert _f1(frames, ft) > 0.82
        assert segs == vadmod.segments_from_frames(frames, ms)


def test_noise_alone_and_steady_tone():
    for kind in ("white", "pink", "hum50"):
        _, frames = vadmod.vad(synth.noise(kind, 16000 * 10, 16000, 3), 16000)
        assert frames.mean() < 0.03
    segs, _ = vadmod.vad(synth.tone(1000.0, 16000, 16000 * 5, 0.5), 16000)
    assert segs == []


def test_streaming_matches_whole(noisy):
    x, _ = noisy
    _, whole = vadmod.vad(x, 16000, 20)
    st = vadmod.VadState(16000, 20)
    rng = np.random.default_rng(0)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.integers(0, 1500))
        parts.append(st.push(x[i : i + n]))
        i += n
    parts.append(st.finish())
    assert np.array_equal(np.concatenate(parts), whole)


def test_formats_channels_and_hangover(noisy):
    x, _ = noisy
    _, mono = vadmod.vad(x, 16000)
    _, stereo = vadmod.vad(np.stack([x, x], axis=1), 16000)
    assert np.array_equal(mono, stereo)
    _, i16 = vadmod.vad(np.round(x * 32768).clip(-32768, 32767).astype(np.int16)[:, None], 16000)
    assert np.mean(i16 == mono) >= 0.99
    _, bare = vadmod.vad(x, 16000, hangover_ms=0)
    assert np.all(mono[bare]) and mono.sum() > bare.sum()
    segs, frames = vadmod.vad(x, 16000, threshold=60.0)
    assert segs == [] and not frames.any()


def test_bad_input():
    x = np.full(16000, 0.1, np.float32)
    x[100] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        vadmod.vad(x, 16000)
    for rate in (7999, 22050, 96000):
        with pytest.raises(ValueError):
            vadmod.vad(np.zeros(1000, np.float32), rate)
    with pytest.raises(ValueError):
        vadmod.vad(np.zeros(1000, np.float32), 16000, frame_duration_ms=25)


def test_synth_is_deterministic_and_snr_exact():
    a, ta = synth.speech_like(8000, 3.0, 5)
    b, tb = synth.speech_like(8000, 3.0, 5)
    assert np.array_equal(a, b) and np.array_equal(ta, tb) and len(a) == 24000
    nz = synth.noise("white", len(a), 8000, 1)
    assert abs(np.sqrt(np.mean(nz.astype(np.float64) ** 2)) - 0.1) < 1e-4
    m = synth.mix_at_snr(a, ta, nz, 5.0).astype(np.float64)
    ps = np.mean(a[ta].astype(np.float64) ** 2)
    pn = np.mean((m - a) ** 2)
    assert abs(10 * np.log10(ps / pn) - 5.0) < 0.01
