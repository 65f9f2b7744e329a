"""AudioResampleNode on both runtimes (the numpy kernel comes from the resample branch)."""

import numpy as np
import pytest

from remotemedia import AudioResampleNode, InputError, Pipeline

from conftest import dominant_frequency, tone


def resample(runtime, x, rate, out_rate, **kw):
    return Pipeline([AudioResampleNode(out_rate, node_id="r", **kw)], runtime_hint=runtime).run_sync((x, rate))["r"]


@pytest.mark.parametrize("quality", ["low", "medium", "high", "very_high"])
def test_48k_to_16k_keeps_a_1khz_tone(runtime, quality):
    x = tone(1000, rate=48000, seconds=1.0, amplitude=0.5)
    out = resample(runtime, x, 48000, 16000, quality=quality)
    assert out.sample_rate == 16000 and out.samples.dtype == np.float32 and out.samples.ndim == 1
    assert abs(out.frames - 16000) <= 2
    assert dominant_frequency(out.samples, 16000) == pytest.approx(1000, abs=2)
    middle = out.samples[2000:-2000].astype(np.float64)
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_upsampling_44k1_to_48k(runtime):
    x = tone(440, rate=44100, seconds=0.5)
    out = resample(runtime, x, 44100, 48000)
    assert abs(out.frames - 24000) <= 2
    assert dominant_frequency(out.samples, 48000) == pytest.approx(440, abs=3)


def test_stereo_channels_stay_apart(runtime):
    x = tone(1000, rate=48000, seconds=0.5, channels=2)  # channel 1 is half of channel 0
    out = resample(runtime, x, 48000, 16000)
    assert out.samples.shape[1] == 2
    body = out.samples[1000:-1000]
    np.testing.assert_allclose(body[:, 1], body[:, 0] / 2, atol=1e-5)


def test_int16_input_is_scaled_to_f32(runtime):
    x = tone(1000, rate=48000, seconds=0.5, amplitude=0.5, dtype=np.int16)
    out = resample(runtime, x, 48000, 16000)
    assert out.samples.dtype == np.float32
    assert np.max(np.abs(out.samples[1000:-1000])) == pytest.approx(0.5, rel=0.02)


def test_input_rate_mismatch_is_an_input_error(runtime):
    with pytest.raises(InputError) as e:
        resample(runtime, tone(rate=44100), 44100, 16000, input_rate=48000)
    assert "48000" in str(e.value) and "44100" in str(e.value)
