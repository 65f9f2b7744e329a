"""LoudnessNode on both runtimes: integrated loudness against pyloudnorm (run in the test) on speech,
music-like tones and noise; the EBU Tech 3341 test signals that can be synthesised (stereo and
5-channel sines, gated cases) and the Tech 3342 loudness-range cases; true peak between samples;
normalisation under the true-peak ceiling; silence; per-chunk momentary and short-term loudness in
streams; and the errors for bad params."""

import numpy as np
import pyloudnorm as pyln
import pytest
import scipy.signal as ss

import noisy_speech as ns
from remotemedia import InputError, LoudnessNode, ManifestError, Pipeline

RATE = 48000


def sine(dbfs, seconds, rate=RATE, freq=1000.0, channels=2):
    """A sine of peak level ``dbfs`` on every channel (EBU Tech 3341's signals are stereo)."""
    t = np.arange(int(round(seconds * rate))) / rate
    x = 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t)
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


def steps(*parts, rate=RATE):
    return np.concatenate([sine(db, s, rate) for db, s in parts])


def measure(runtime, x, rate=RATE, **params):
    p = Pipeline([LoudnessNode(mode="measure", node_id="l", **params)], runtime_hint=runtime)
    return p.run_sync((x, rate))["l"]["loudness"]


@pytest.fixture(scope="module")
def speech():
    return ns.clean_clips(n=1)[0].samples


def music_like(rate, seconds=6.0):
    """Five harmonic notes with swelling envelopes, stereo with a delayed, quieter right channel."""
    t = np.arange(int(rate * seconds)) / rate
    x = np.zeros_like(t)
    for k, f0 in enumerate([220.0, 277.2, 329.6, 440.0, 110.0]):
        env = np.clip(np.sin(np.pi * (t - 0.7 * k) / 2.5), 0, None) ** 2
        x += sum(np.sin(2 * np.pi * f0 * h * t) / h**1.5 for h in range(1, 12) if f0 * h < rate / 2) * env * 0.08
    return np.stack([x, np.roll(x, 1000) * 0.8], axis=1).astype(np.float32)


def pink(rate, seconds, channels=2, seed=0):
    return np.stack([ns.make_noise("pink", int(rate * seconds), np.random.default_rng(seed + c)) * 0.05 for c in range(channels)], axis=1).astype(np.float32)


def test_integrated_loudness_matches_pyloudnorm(runtime, speech):
    cases = [
        ("speech 16 kHz", speech, 16000),
        ("speech 48 kHz", ns._resample(speech[: 8 * 16000].astype(np.float64), 16000, 48000).astype(np.float32), 48000),
        ("music 44.1 kHz", music_like(44100), 44100),
        ("music 16 kHz", music_like(16000), 16000),
        ("pink noise 48 kHz", pink(48000, 5.0), 48000),
        ("white noise 44.1 kHz", (np.random.default_rng(7).standard_normal((44100 * 4, 2)) * 0.1).astype(np.float32), 44100),
    ]
    for name, x, rate in cases:
        got = measure(runtime, x, rate)["integrated_lufs"]
        want = pyln.Meter(rate).integrated_loudness(x.astype(np.float64))
        assert abs(got - want) <= 0.1, (name, got, want)
        # pyloudnorm's "DeMan" filters are the same K-weighting design as ours at 48 kHz.
        if rate == 48000:
            exact = pyln.Meter(rate, filter_class="DeMan").integrated_loudness(x.astype(np.float64))
            assert abs(got - exact) <= 0.01, (name, got, exact)


# EBU Tech 3341 (2016), table 1: the cases built from sine tones, and their expected loudness.
TECH_3341 = {
    "case 1": (steps((-23, 20)), -23.0),
    "case 2": (steps((-33, 20)), -33.0),
    "case 3": (steps((-36, 10), (-23, 60), (-36, 10)), -23.0),
    "case 4": (steps((-72, 10), (-36, 10), (-23, 60), (-36, 10), (-72, 10)), -23.0),
    "case 5": (steps((-26, 20), (-20, 20.1), (-26, 20)), -23.0),
}


@pytest.mark.parametrize("case", sorted(TECH_3341))
def test_ebu_tech_3341_integrated_loudness(runtime, case):
    x, want = TECH_3341[case]
    report = measure(runtime, x)
    assert abs(report["integrated_lufs"] - want) <= 0.1, report


def test_ebu_tech_3341_case_6_five_channels(runtime):
    # L, R, C, Ls, Rs at -28, -28, -24, -30, -30 dBFS: the surrounds weigh 1.41.
    x = np.concatenate([sine(db, 20, channels=1) for db in (-28, -28, -24, -30, -30)], axis=1)
    assert abs(measure(runtime, x)["integrated_lufs"] + 23.0) <= 0.1


def test_ebu_tech_3341_momentary_and_short_term_of_a_steady_tone(runtime):
    p = Pipeline([LoudnessNode(mode="measure", node_id="l")], runtime_hint=runtime)
    session = p.stream()
    x = steps((-23, 4))
    for i in range(0, x.shape[0], 960):
        report = session.push((x[i : i + 960], RATE))["l"]["loudness"]
    assert abs(report["momentary_lufs"] + 23.0) <= 0.1 and abs(report["short_term_lufs"] + 23.0) <= 0.1


# EBU Tech 3342 (2016): loudness range of stepped sines, expected LRA +/- 1 LU.
TECH_3342 = {
    "case 1": (((-20, 20), (-30, 20)), 10.0),
    "case 2": (((-20, 20), (-15, 20)), 5.0),
    "case 3": (((-40, 20), (-20, 20)), 20.0),
    "case 4": (((-50, 20), (-35, 20), (-20, 20), (-35, 20), (-50, 20)), 15.0),
}


@pytest.mark.parametrize("case", sorted(TECH_3342))
def test_ebu_tech_3342_loudness_range(runtime, case):
    parts, want = TECH_3342[case]
    assert abs(measure(runtime, steps(*parts))["loudness_range_lu"] - want) <= 1.0


def test_true_peak_is_found_between_samples(runtime):
    # A sine at fs/4 sampled 45 degrees off its peaks: every sample is at 0.707 of the peak.
    t = np.arange(RATE) / RATE
    x = (0.5 * np.sin(2 * np.pi * 12000 * t + np.pi / 4)).astype(np.float32)
    sample_peak = 20 * np.log10(np.max(np.abs(x)))
    tp = measure(runtime, x)["true_peak_dbtp"]
    # Tech 3341's tolerance for true peak: +0.2 / -0.4 dB.
    assert -6.02 - 0.4 <= tp <= -6.02 + 0.2 and sample_peak < -9.0
    # Cross-check against 4x oversampling by scipy on a speech-like signal.
    y = music_like(RATE, 2.0)
    ref = 20 * np.log10(np.max(np.abs(ss.resample_poly(y.astype(np.float64), 4, 1, axis=0))))
    assert abs(measure(runtime, y)["true_peak_dbtp"] - ref) <= 0.1


def test_normalisation_reaches_the_target(runtime, speech):
    p = Pipeline([LoudnessNode(target_lufs=-20.0, peak_ceiling_dbtp=0.0, node_id="l")], runtime_hint=runtime)
    out = p.run_sync((speech, 16000))["l"]
    y = np.asarray(out["audio"])
    assert y.shape == speech.shape and y.dtype == np.float32
    assert abs(pyln.Meter(16000).integrated_loudness(y.astype(np.float64)) + 20.0) <= 0.1
    assert abs(measure(runtime, y, 16000)["integrated_lufs"] + 20.0) <= 0.01
    report = out["loudness"]
    assert not report["peak_limited"] and abs(report["gain_db"] - (-20.0 - report["integrated_lufs"])) < 1e-9
    np.testing.assert_allclose(y, speech * np.float32(10 ** (report["gain_db"] / 20)), rtol=1e-6)


def test_the_true_peak_ceiling_lowers_the_gain(runtime):
    # Quiet noise with a few loud clicks: reaching -10 LUFS would push the clicks far over 0 dBTP.
    x = pink(RATE, 4.0, channels=1)[:, 0] * 0.2
    x[RATE::RATE // 2] = 0.9
    p = Pipeline([LoudnessNode(target_lufs=-10.0, peak_ceiling_dbtp=-1.0, node_id="l")], runtime_hint=runtime)
    out = p.run_sync((x, RATE))["l"]
    report = out["loudness"]
    assert report["peak_limited"]
    assert abs(report["gain_db"] - (-1.0 - report["true_peak_dbtp"])) < 1e-9
    after = measure(runtime, np.asarray(out["audio"]))
    assert after["true_peak_dbtp"] <= -1.0 + 1e-3 and after["integrated_lufs"] < -10.5


def test_true_peak_off_measures_the_same_and_normalize_keeps_the_ceiling(runtime):
    # Measure without the true peak: the same loudness and range, the peak reported as None.
    x = music_like(RATE, 4.0)
    full, lean = measure(runtime, x), measure(runtime, x, true_peak=False)
    assert full["true_peak_dbtp"] is not None and lean["true_peak_dbtp"] is None
    assert lean["integrated_lufs"] == full["integrated_lufs"] and lean["loudness_range_lu"] == full["loudness_range_lu"]
    # normalize needs the peak for its ceiling, so true_peak=False does not switch it off there.
    y = pink(RATE, 4.0, channels=1)[:, 0] * 0.2
    y[RATE::RATE // 2] = 0.9
    p = Pipeline([LoudnessNode(target_lufs=-10.0, true_peak=False, node_id="l")], runtime_hint=runtime)
    report = p.run_sync((y, RATE))["l"]["loudness"]
    assert report["peak_limited"] and report["true_peak_dbtp"] > -1.0


def test_silence_and_short_clips_are_reported_not_normalised(runtime):
    p = Pipeline([LoudnessNode(node_id="l")], runtime_hint=runtime)
    for x in (np.zeros(RATE, np.float32), sine(-20, 0.3, channels=1)[:, 0], sine(-80, 2.0, channels=1)[:, 0]):
        out = p.run_sync((x, RATE))["l"]
        report = out["loudness"]
        assert report["integrated_lufs"] is None and report["loudness_range_lu"] is None
        assert report["gain_db"] == 0.0 and not report["peak_limited"]
        np.testing.assert_array_equal(np.asarray(out["audio"]), x)
    assert p.run_sync((np.zeros(RATE, np.float32), RATE))["l"]["loudness"]["true_peak_dbtp"] is None


def test_a_stream_reports_sliding_loudness_per_chunk_and_adds_up_to_the_whole(runtime):
    x = steps((-23, 5), (-33, 4))
    whole = measure(runtime, x)
    p = Pipeline([LoudnessNode(mode="measure", node_id="l")], runtime_hint=runtime)
    session = p.stream()
    chunk = RATE // 50
    reports, audio = [], []
    for i in range(0, x.shape[0], chunk):
        out = session.push((x[i : i + chunk], RATE))["l"]
        reports.append(out["loudness"])
        audio.append(np.asarray(out["audio"]))
    final = session.close()["l"]["loudness"]
    np.testing.assert_array_equal(np.concatenate(audio), x)
    momentary = np.array([r["momentary_lufs"] for r in reports], dtype=float)
    short = np.array([r["short_term_lufs"] for r in reports], dtype=float)
    step = 5 * 50  # the chunk where the level drops
    assert abs(momentary[step - 1] + 23) < 0.1 and abs(momentary[step + 20] + 33) < 0.1  # 400 ms later
    assert short[step + 20] > -30 and abs(short[step + 150] + 33) < 0.1  # 3 s later
    assert all(r["loudness_range_lu"] is None for r in reports)
    for key in ("integrated_lufs", "loudness_range_lu", "true_peak_dbtp"):
        assert abs(final[key] - whole[key]) < 1e-6, key


def test_a_normalising_stream_converges_on_the_whole_buffer_gain(runtime, speech):
    whole = Pipeline([LoudnessNode(target_lufs=-20.0, node_id="l")], runtime_hint=runtime).run_sync((speech, 16000))["l"]["loudness"]
    session = Pipeline([LoudnessNode(target_lufs=-20.0, peak_ceiling_dbtp=-3.0, node_id="l")], runtime_hint=runtime).stream()
    chunk = 320
    for i in range(0, speech.size, chunk):
        out = session.push((speech[i : i + chunk], 16000))["l"]
        # No chunk's samples pass the ceiling, whatever the gain was heading for.
        assert np.max(np.abs(np.asarray(out["audio"])), initial=0.0) <= 10 ** (-3.0 / 20) * 1.0001
    # The gain the stream ends with is the whole buffer's (not limited there): the measurement has settled.
    assert not whole["peak_limited"]
    assert abs(out["loudness"]["gain_db"] - whole["gain_db"]) < 0.05


@pytest.mark.parametrize(
    "params, path, expected",
    [
        ({"target_lufs": 5.0}, "target_lufs", "a number from -70 to 0"),
        ({"target_lufs": -80}, "target_lufs", "a number from -70 to 0"),
        ({"mode": "measur"}, "mode", 'did you mean "measure"?'),
        ({"channel_weights": []}, "channel_weights", "a list of 1 to 64 items"),
    ],
)
def test_bad_params_are_manifest_errors(runtime, params, path, expected):
    with pytest.raises(ManifestError) as e:
        Pipeline([LoudnessNode(node_id="l", **params)], runtime_hint=runtime).run_sync((sine(-20, 1.0), RATE))
    assert [p.path for p in e.value.problems] == [f"nodes[0].params.{path}"]
    assert expected in e.value.problems[0].expected


def test_channel_weights_must_match_the_channels(runtime):
    p = Pipeline([LoudnessNode(channel_weights=[1.0, 1.0, 1.0], node_id="l")], runtime_hint=runtime)
    with pytest.raises(InputError, match=r"has 3 channel_weights but the audio has 2 channel\(s\)"):
        p.run_sync((sine(-20, 1.0), RATE))
    # Weights that fit: an LFE-like channel left out counts nothing.
    x = np.concatenate([sine(-23, 2.0, channels=2), sine(-3, 2.0, channels=1)], axis=1)
    got = Pipeline([LoudnessNode(mode="measure", channel_weights=[1.0, 1.0, 0.0], node_id="l")], runtime_hint=runtime).run_sync((x, RATE))
    assert abs(got["l"]["loudness"]["integrated_lufs"] + 23.0) < 0.1
