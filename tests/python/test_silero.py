"""SileroVADNode against the references run here: onnxruntime on the silero-vad 6.2.3 wheel's own
``silero_vad.onnx`` (probabilities within 1e-4 per chunk) and silero-vad's own
``get_speech_timestamps`` (the same segments), at 16 and 8 kHz, whole buffers and streamed, on
both runtimes (native and the numpy twin)."""

import numpy as np
import pytest

import noisy_speech as ns
import silero_reference as ref
from remotemedia import InputError, Pipeline, SileroVADNode
from remotemedia._pure import silero as twin

TOL = 1e-4


@pytest.fixture(scope="module")
def ort():
    return ref.OrtSilero()


@pytest.fixture(scope="module")
def speech():
    """3.5 s of espeak-ng speech (pink noise at 10 dB) at 16 kHz, starting mid-silence."""
    clip = ns.clean_clips(n=1)[0]
    rng = np.random.default_rng(5)
    noisy, _ = ns.mix(clip, ns.make_noise("pink", clip.samples.size, rng), 10.0)
    return noisy[: 16000 * 7 // 2]


def at_rate(x, rate):
    """16 kHz test audio at ``rate`` (8 kHz: every other sample of a band-limited signal)."""
    if rate == 16000:
        return x
    spectrum = np.fft.rfft(x.astype(np.float64))
    spectrum[spectrum.size // 2 :] = 0
    return np.fft.irfft(spectrum, x.size)[::2].astype(np.float32)


def clips(speech, rate):
    rng = np.random.default_rng(1)
    return {
        "speech": at_rate(speech, rate),
        "noise": (0.2 * rng.standard_normal(rate * 3 // 2 + 77)).astype(np.float32),
        "silence": np.zeros(rate, dtype=np.float32),
    }


def run(runtime, audio, rate, **params):
    with Pipeline([SileroVADNode(**params, node_id="vad")], runtime_hint=runtime) as p:
        return p.run_sync((audio, rate))["vad"]


@pytest.mark.parametrize("rate", [16000, 8000])
def test_probabilities_match_onnxruntime_on_speech_noise_and_silence(runtime, ort, speech, rate):
    for name, audio in clips(speech, rate).items():
        want = ort.probabilities(audio, rate)
        got = run(runtime, audio, rate)["probabilities"]
        assert got.dtype == np.float32 and got.shape == want.shape, name
        err = float(np.max(np.abs(got - want)))
        assert err <= TOL, f"{name} at {rate} Hz: max |p - onnxruntime| = {err:.2e}"
        if name == "speech":
            assert want.max() > 0.9 and want.min() < 0.1, "the clip has speech and pauses"


@pytest.mark.parametrize("rate", [16000, 8000])
def test_streamed_pushes_of_any_size_give_the_whole_buffer_result(runtime, speech, rate):
    audio = at_rate(speech, rate)
    whole = run(runtime, audio, rate)
    # The numpy twin is slow: one push size for it (its chunking is the native one's).
    for ms in (20, 30, 37) if runtime == "rust" else (37,):
        step = rate * ms // 1000
        with Pipeline([SileroVADNode(node_id="vad")], runtime_hint=runtime) as p:
            with p.stream() as s:
                parts = [s.push((audio[i : i + step], rate))["vad"] for i in range(0, audio.size, step)]
                parts.append(s.close()["vad"])
        probs = np.concatenate([r["probabilities"] for r in parts])
        frames = np.concatenate([r["frames"] for r in parts])
        segments = [seg for r in parts for seg in r["segments"]]
        assert np.array_equal(probs, whole["probabilities"]), f"{ms} ms pushes"
        assert np.array_equal(frames, whole["frames"]), f"{ms} ms pushes"
        assert segments == whole["segments"], f"{ms} ms pushes"


def samples_of(segments, rate):
    return [(int(round(s * rate)), int(round(e * rate))) for s, e in segments]


PARAMS = [
    {},
    {"threshold": 0.6, "min_silence_duration_ms": 40, "speech_pad_ms": 10, "min_speech_duration_ms": 100},
    {"max_speech_duration_s": 0.7, "speech_pad_ms": 50},
]


@pytest.mark.parametrize("rate", [16000, 8000])
@pytest.mark.parametrize("params", PARAMS, ids=["defaults", "tight", "max-speech"])
def test_segments_equal_get_speech_timestamps(runtime, ort, speech, rate, params):
    audio = at_rate(speech, rate)
    out = run(runtime, audio, rate, **params)
    got = samples_of(out["segments"], rate)
    assert got, "speech was found"
    # silero-vad's own function with its own model (onnxruntime) ...
    want = [(d["start"], d["end"]) for d in ref.get_speech_timestamps(audio, ort, rate, **params)]
    assert got == want
    # ... and with our probabilities: the post-processing alone, with no model difference at all.
    ours = ref.FixedProbabilities(out["probabilities"])
    assert got == [(d["start"], d["end"]) for d in ref.get_speech_timestamps(audio, ours, rate, **params)]
    # Frames: a chunk is speech when its centre lies in a segment.
    window = 512 if rate == 16000 else 256
    centres = np.arange(out["frames"].size) * window + window // 2
    covered = np.zeros(centres.size, dtype=bool)
    for s, e in got:
        covered |= (centres >= s) & (centres < e)
    assert np.array_equal(out["frames"], covered)


def test_the_post_processing_matches_silero_on_random_probability_tracks():
    """The twin's state machine against get_speech_timestamps_from_probs on 300 random tracks
    (the native one is checked through the node above)."""
    rng = np.random.default_rng(11)
    for case in range(300):
        rate = (16000, 8000)[case % 2]
        n = int(rng.integers(1, 400))
        # Runs of speech-like and silence-like values with values near both thresholds.
        probs = np.clip(np.repeat(rng.uniform(0, 1, n // 4 + 1), 4)[:n] + rng.normal(0, 0.1, n), 0, 1).astype(np.float32)
        length = n * (512 if rate == 16000 else 256) - int(rng.integers(0, 200))
        params = {
            "threshold": float(rng.uniform(0.3, 0.7)),
            "min_speech_duration_ms": int(rng.integers(0, 400)),
            "min_silence_duration_ms": int(rng.integers(0, 300)),
            "speech_pad_ms": int(rng.integers(0, 120)),
        }
        if case % 3 == 0:
            params["max_speech_duration_s"] = float(rng.uniform(0.3, 3.0))
        want = [(d["start"], d["end"]) for d in ref.timestamps_from_probs(probs, rate, max(length, 1), **params)]
        assert twin.speech_timestamps(probs, max(length, 1), rate, **params) == want, (case, params)


def test_raw_mode_decides_each_chunk_by_the_threshold(runtime, speech):
    out = run(runtime, speech, 16000, mode="raw", threshold=0.4)
    assert np.array_equal(out["frames"], out["probabilities"] >= 0.4)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], out["frames"].astype(int), [0]])))
    want = [(s * 512 / 16000, min(e * 512, speech.size) / 16000) for s, e in zip(edges[::2], edges[1::2])]
    assert out["segments"] == want


def test_wrong_rate_nan_and_channels(runtime, speech):
    with pytest.raises(InputError, match="SileroVADNode needs audio at 16000 or 8000 Hz, received 44100 Hz; put an AudioResampleNode before it"):
        run(runtime, speech, 44100)
    bad = speech.copy()
    bad[1000] = np.nan
    # NaN never reaches the node through the input layer, which refuses it first.
    with pytest.raises(InputError, match="NaN"):
        run(runtime, bad, 16000)
    # Several channels: the detector hears their mean.
    stereo = np.stack([speech, 0.5 * speech], axis=1)
    mono = (stereo * np.float32(0.5)).sum(axis=1, dtype=np.float32)
    a, b = run(runtime, stereo, 16000), run(runtime, mono, 16000)
    assert np.array_equal(a["probabilities"], b["probabilities"]) and a["segments"] == b["segments"]
    assert a["audio"].samples.shape == stereo.shape


def test_one_sample_gives_one_probability(runtime, ort):
    x = np.array([0.25], dtype=np.float32)
    out = run(runtime, x, 16000)
    assert out["probabilities"].shape == (1,) and out["frames"].shape == (1,)
    assert abs(out["probabilities"][0] - ort.probabilities(x, 16000)[0]) <= TOL
    assert out["segments"] == []


def test_the_shipped_weights_are_what_the_script_regenerates_from_the_wheel():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, str(root / "scripts" / "silero_weights.py"), "--check"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3" in r.stdout
    assert "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3" in (root / "assets" / "silero_vad" / "PROVENANCE").read_text()
