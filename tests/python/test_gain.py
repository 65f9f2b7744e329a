import numpy as np
import pytest

from remotemedia import Audio, GainNode, InputError, Pipeline

from conftest import tone


def run(runtime, gain_db, x, rate=16000):
    p = Pipeline([GainNode(gain_db, node_id="g")], runtime_hint=runtime)
    return p.run_sync((x, rate))["g"]


@pytest.mark.parametrize("gain_db", [0.0, 6.0, -20.0, -120.0, 60.0])
def test_gain_scales_by_ten_to_the_db_over_twenty(runtime, gain_db):
    x = tone(amplitude=0.5)
    out = run(runtime, gain_db, x)
    factor = np.float32(10.0 ** (gain_db / 20.0))
    assert out.samples.dtype == np.float32
    # f32 multiply by the f32-rounded factor: exactly what the engine computes.
    np.testing.assert_array_equal(out.samples, x * factor)
    np.testing.assert_allclose(out.samples, x.astype(np.float64) * 10 ** (gain_db / 20), rtol=1e-6, atol=1e-30)


def test_minus_six_db_halves_the_amplitude(runtime):
    out = run(runtime, -20 * np.log10(2), tone(amplitude=0.8, freq_hz=100, seconds=0.05))
    assert abs(np.max(np.abs(out.samples)) - 0.4) < 1e-3


def test_stereo_shape_and_rate_are_kept(runtime):
    x = tone(channels=2, rate=48000)
    out = run(runtime, 3.0, x, rate=48000)
    assert out.samples.shape == x.shape and out.sample_rate == 48000


def test_input_is_not_modified(runtime):
    x = tone()
    before = x.copy()
    run(runtime, 12.0, x)
    np.testing.assert_array_equal(x, before)


def test_integer_samples_are_rejected_naming_the_node(runtime):
    p = Pipeline([GainNode(6.0, node_id="boost")], runtime_hint=runtime)
    with pytest.raises(InputError) as e:
        p.run_sync((tone(dtype=np.int16), 16000))
    assert "boost" in str(e.value) and "f32" in str(e.value) and "i16" in str(e.value)
    # The pipeline stays usable.
    assert isinstance(p.run_sync((tone(), 16000))["boost"], Audio)
