"""FilterNode on both runtimes against scipy.signal, run in the test: Butterworth filters of orders 1-8
at 8, 16, 44.1 and 48 kHz (``butter(..., output="sos")`` + ``sosfilt`` / ``sosfiltfilt``), RBJ
cookbook bands against the cookbook formulas evaluated here in float64, streamed chunks against the
whole buffer, and the errors for bad params and bad audio."""

import math

import numpy as np
import pytest
import scipy.signal as ss

from remotemedia import FilterNode, GainNode, InputError, ManifestError, Pipeline

RATES = (8000, 16000, 44100, 48000)
KINDS = {"lowpass": 0.2, "highpass": 0.05, "bandpass": (0.05, 0.3), "bandstop": (0.05, 0.3)}


def noise(rate, seconds=0.25, channels=None, seed=0):
    shape = (int(rate * seconds),) if channels is None else (int(rate * seconds), channels)
    return (np.random.default_rng(seed).standard_normal(shape) * 0.25).astype(np.float32)


def band(kind, rate, order):
    edges = KINDS[kind]
    if isinstance(edges, tuple):
        return {"type": kind, "low_hz": edges[0] * rate, "high_hz": edges[1] * rate, "order": order}, [e * rate for e in edges]
    return {"type": kind, "freq_hz": edges * rate, "order": order}, edges * rate


def run(runtime, bands, x, rate, zero_phase=False):
    p = Pipeline([FilterNode(bands, zero_phase=zero_phase, node_id="f")], runtime_hint=runtime)
    return np.asarray(p.run_sync((x, rate))["f"])


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_butterworth_matches_scipy_sosfilt_and_sosfiltfilt(runtime, kind, rate):
    x = noise(rate)
    for order in range(1, 9):
        spec, wn = band(kind, rate, order)
        sos = ss.butter(order, wn, kind, fs=rate, output="sos")
        got = run(runtime, [spec], x, rate)
        assert got.dtype == np.float32 and got.shape == x.shape
        assert np.max(np.abs(got - ss.sosfilt(sos, x.astype(np.float64)))) <= 1e-5, (kind, rate, order)
        got = run(runtime, [spec], x, rate, zero_phase=True)
        assert np.max(np.abs(got - ss.sosfiltfilt(sos, x.astype(np.float64)))) <= 1e-5, (kind, rate, order, "zero phase")


def cookbook(kind, f0, q, gain_db, rate):
    """The Audio EQ Cookbook's biquads (R. Bristow-Johnson), written out again here in float64."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * f0 / rate
    alpha = math.sin(w0) / (2 * q)
    c = math.cos(w0)
    if kind == "peaking":
        b, den = [1 + alpha * a, -2 * c, 1 - alpha * a], [1 + alpha / a, -2 * c, 1 - alpha / a]
    elif kind == "lowshelf":
        r = 2 * math.sqrt(a) * alpha
        b = [a * ((a + 1) - (a - 1) * c + r), 2 * a * ((a - 1) - (a + 1) * c), a * ((a + 1) - (a - 1) * c - r)]
        den = [(a + 1) + (a - 1) * c + r, -2 * ((a - 1) + (a + 1) * c), (a + 1) + (a - 1) * c - r]
    elif kind == "highshelf":
        r = 2 * math.sqrt(a) * alpha
        b = [a * ((a + 1) + (a - 1) * c + r), -2 * a * ((a - 1) + (a + 1) * c), a * ((a + 1) + (a - 1) * c - r)]
        den = [(a + 1) - (a - 1) * c + r, 2 * ((a - 1) - (a + 1) * c), (a + 1) - (a - 1) * c - r]
    else:  # notch
        b, den = [1, -2 * c, 1], [1 + alpha, -2 * c, 1 - alpha]
    return np.array(b) / den[0], np.array(den) / den[0]


def test_eq_bands_match_the_cookbook_in_float64(runtime):
    rate = 44100
    x = noise(rate, seconds=0.5, channels=2)
    bands = [
        {"type": "peaking", "freq_hz": 1000.0, "gain_db": 6.0, "q": 2.0},
        {"type": "lowshelf", "freq_hz": 120.0, "gain_db": -9.0},
        {"type": "highshelf", "freq_hz": 8000.0, "gain_db": 3.5, "q": 0.9},
        {"type": "notch", "freq_hz": 50.0, "q": 20.0},
        {"type": "highpass", "freq_hz": 30.0, "order": 3},
    ]
    defaults = {"peaking": 1.0, "lowshelf": 1 / math.sqrt(2), "highshelf": 1 / math.sqrt(2), "notch": 30.0}
    want = x.astype(np.float64)
    for b in bands[:-1]:
        num, den = cookbook(b["type"], b["freq_hz"], b.get("q", defaults[b["type"]]), b.get("gain_db", 0.0), rate)
        want = ss.lfilter(num, den, want, axis=0)
    want = ss.sosfilt(ss.butter(3, 30.0, "highpass", fs=rate, output="sos"), want, axis=0)
    got = run(runtime, bands, x, rate)
    assert got.shape == x.shape
    assert np.max(np.abs(got - want)) <= 1e-5
    # The shapes themselves: +6 dB at the peak's centre, half the shelf's gain at its corner.
    w, h = ss.freqz(*cookbook("peaking", 1000.0, 2.0, 6.0, rate), worN=[1000.0], fs=rate)
    assert abs(20 * np.log10(abs(h[0])) - 6.0) < 1e-9
    w, h = ss.freqz(*cookbook("lowshelf", 120.0, 1 / math.sqrt(2), -9.0, rate), worN=[120.0], fs=rate)
    assert abs(20 * np.log10(abs(h[0])) + 4.5) < 1e-9


@pytest.mark.parametrize("chunk", [160, 441, 1000])
def test_streamed_chunks_add_up_to_the_whole_buffer(runtime, chunk):
    rate = 44100
    x = noise(rate, seconds=0.6, channels=2, seed=3)
    bands = [{"type": "bandpass", "low_hz": 200.0, "high_hz": 5000.0, "order": 6}, {"type": "peaking", "freq_hz": 2500.0, "gain_db": -4.0}]
    p = Pipeline([FilterNode(bands, node_id="f")], runtime_hint=runtime)
    whole = np.asarray(p.run_sync((x, rate))["f"])
    session = p.stream()
    parts = [np.asarray(session.push((x[i : i + chunk], rate))["f"]) for i in range(0, x.shape[0], chunk)]
    assert "f" not in session.close()
    assert np.max(np.abs(np.concatenate(parts) - whole)) <= 1e-6
    # A new session starts from silence again.
    again = p.stream()
    first = np.asarray(again.push((x[:chunk], rate))["f"])
    np.testing.assert_allclose(first, whole[:chunk], atol=1e-6)


def test_integer_input_is_filtered_as_f32(runtime):
    x = (noise(16000) * 32767).astype(np.int16)
    got = run(runtime, [{"type": "lowpass", "freq_hz": 3000.0}], x, 16000)
    want = ss.sosfilt(ss.butter(2, 3000.0, fs=16000, output="sos"), x.astype(np.float64) / 32768.0)
    assert got.dtype == np.float32 and np.max(np.abs(got - want)) <= 1e-5


def test_cutoff_at_or_above_nyquist_is_an_input_error_naming_the_band(runtime):
    p = Pipeline([FilterNode([{"type": "highpass", "freq_hz": 20.0}, {"type": "lowpass", "freq_hz": 8000.0}], node_id="f")], runtime_hint=runtime)
    with pytest.raises(InputError) as e:
        p.run_sync((noise(16000), 16000))
    assert 'bands[1] ("lowpass"): freq_hz 8000 Hz is not below the Nyquist frequency (8000 Hz) of 16000 Hz audio' in str(e.value)
    # The same pipeline filters audio at a rate where the band fits.
    assert run(runtime, [{"type": "lowpass", "freq_hz": 8000.0}], noise(48000), 48000).shape == (12000,)
    assert np.asarray(p.run_sync((noise(44100), 44100))["f"]).shape == (11025,)


@pytest.mark.parametrize(
    "bands, path, expected, found",
    [
        ([{"type": "lowpass", "freq_hz": 100, "order": 0}], "bands[0].order", "an integer from 1 to 16", "0"),
        ([{"type": "peaking", "freq_hz": 100, "gain_db": 3, "q": 0}], "bands[0].q", "a number from 0.01 to 100", "0"),
        ([{"type": "peaking", "freq_hz": 100, "gain_db": 3, "q": -1}], "bands[0].q", "a number from 0.01 to 100", "-1"),
        ([{"type": "lowpas", "freq_hz": 100}], "bands[0].type", 'did you mean "lowpass"?', '"lowpas"'),
        ([{"type": "highpass"}], "bands[0].freq_hz", 'a number from 1 to 1000000 (required by type "highpass")', "nothing"),
        ([{"type": "bandpass", "low_hz": 3000, "high_hz": 300}], "bands[0].high_hz", "a number above low_hz (3000.0)", "300.0"),
        ([{"type": "lowpass", "freq_hz": 100, "gain_db": 3}], "bands[0].gain_db", 'a field of type "lowpass": freq_hz, order', 'the unknown field "gain_db"'),
        ([], "bands", "a list of 1 to 32 items", "an empty list"),
    ],
)
def test_bad_params_are_manifest_errors_with_a_path(runtime, bands, path, expected, found):
    with pytest.raises(ManifestError) as e:
        Pipeline([FilterNode(bands, node_id="f")], runtime_hint=runtime).run_sync((noise(16000), 16000))
    problems = e.value.problems
    assert len(problems) == 1, problems
    assert problems[0].path == f"nodes[0].params.{path}"
    assert expected in problems[0].expected and problems[0].found == found


def test_zero_phase_in_a_stream_and_non_finite_input_are_input_errors(runtime):
    p = Pipeline([FilterNode([{"type": "lowpass", "freq_hz": 1000.0}], zero_phase=True, node_id="f")], runtime_hint=runtime)
    with pytest.raises(InputError, match="zero_phase filters whole buffers"):
        p.stream().push((noise(16000), 16000))
    # Inputs are checked on the way in; an upstream node can still overflow to inf.
    p = Pipeline([GainNode(60.0, node_id="g"), FilterNode([{"type": "lowpass", "freq_hz": 1000.0}], node_id="f")], runtime_hint=runtime)
    x = noise(16000)
    x[100] = 1e36
    with pytest.raises(InputError, match=r"non-finite sample \(inf\) at index 100"):
        p.run_sync((x, 16000))
    x[100] = 0.0
    assert np.isfinite(np.asarray(p.run_sync((x, 16000))["f"])).all()
