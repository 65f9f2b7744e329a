"""LogMelNode, FbankNode and MfccNode on both runtimes: streamed frames equal whole-buffer frames,
the Features payload, analytic signals, and bad input. Parity with the references:
test_features_parity.py."""

import pickle

import numpy as np
import pytest

from remotemedia import AudioResampleNode, FbankNode, Features, GainNode, InputError, LogMelNode, ManifestError, MfccNode, Pipeline

RATE = 16000


def _signal(seconds=2.37, seed=5):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 523.25 * t) * (1 + np.sin(2 * np.pi * 1.3 * t)) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


NODES = [
    lambda: LogMelNode(),
    lambda: LogMelNode(n_mels=128, normalize="none"),
    lambda: LogMelNode(pad_or_trim_s=3.0),
    lambda: LogMelNode(pad_or_trim_s=1.0, normalize="whole"),
    lambda: FbankNode(),
    lambda: FbankNode(snip_edges=False, use_energy=True, dither=1e-4),
    lambda: MfccNode(snip_edges=False),
]


def _whole(runtime, node, x, rate=RATE):
    node.node_id = "f"
    with Pipeline([node], runtime_hint=runtime) as p:
        return p.run_sync((x, rate))["f"]


@pytest.mark.parametrize("make", NODES)
@pytest.mark.parametrize("chunk_ms", [10, 20, 37])
def test_streamed_frames_equal_whole_buffer_frames(runtime, make, chunk_ms):
    x = _signal()
    whole = _whole(runtime, make(), x)
    node = make()
    node.node_id = "f"
    chunk = RATE * chunk_ms // 1000
    parts = []
    with Pipeline([node], runtime_hint=runtime) as p:
        with p.stream() as s:
            for a in range(0, x.size, chunk):
                parts.append(s.push((x[a : a + chunk], RATE))["f"])
            parts.append(s.close()["f"])
    assert all(isinstance(f, Features) for f in parts)
    streamed = np.concatenate(parts)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-6, rtol=0)
    # Frames come out as soon as their samples are in (except Whisper's per-window normalisation,
    # which waits for the window's maximum).
    if not (isinstance(node, LogMelNode) and node.params.get("normalize", "window") != "none"):
        assert sum(f.shape[0] for f in parts[:-1]) >= whole.shape[0] - 3


def test_features_payload_is_a_numpy_array_with_a_frame_rate(runtime):
    f = _whole(runtime, LogMelNode(pad_or_trim_s=30.0), _signal())
    assert isinstance(f, Features) and isinstance(f, np.ndarray)
    assert f.shape == (3000, 80) and f.frames == 3000 and f.bins == 80 and f.frame_rate == 100.0
    assert f.T.shape == (80, 3000)  # Whisper's layout
    assert f.flags.c_contiguous
    back = pickle.loads(pickle.dumps(f))
    assert isinstance(back, Features) and back.frame_rate == 100.0 and np.array_equal(back, f)
    assert "3000 frames x 80 bins" in repr(f)


def test_a_tone_peaks_in_its_mel_band(runtime):
    """Analytic: a 1 kHz tone puts the log-mel maximum in the band whose centre is nearest 1 kHz,
    and the Kaldi fbank maximum likewise; silence is Whisper's floor exactly."""
    t = np.arange(RATE) / RATE
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    mel = _whole(runtime, LogMelNode(normalize="none"), x)
    # Slaney: linear below 1 kHz, 80 bands up to 8 kHz: band centres at mel points 1..80 of 82.
    from remotemedia._pure.features import _hz_to_mel_slaney, _mel_to_hz_slaney

    centres = _mel_to_hz_slaney(np.linspace(0, _hz_to_mel_slaney(8000.0), 82))[1:-1]
    assert int(np.median(mel.argmax(axis=1))) == int(np.argmin(np.abs(centres - 1000)))
    silence = _whole(runtime, LogMelNode(), np.zeros(RATE, np.float32))
    np.testing.assert_array_equal(silence, np.full((100, 80), -1.5, np.float32))  # (log10(1e-10) + 4) / 4
    fb = _whole(runtime, FbankNode(num_mel_bins=40), x)
    assert fb.shape == (98, 40) and fb.frame_rate == 100.0  # 1 + (16000 - 400) // 160
    peak = int(np.median(fb.argmax(axis=1)))
    mel_hz = lambda f: 1127 * np.log(1 + f / 700)  # noqa: E731
    edges = np.linspace(mel_hz(20), mel_hz(8000), 42)
    assert abs(peak - int(np.argmin(np.abs(edges[1:-1] - mel_hz(1000))))) <= 1


def test_int16_input_uses_the_project_scale(runtime):
    x = _signal(1.0)
    ints = np.round(x * 32767).astype(np.int16)
    a = _whole(runtime, FbankNode(), ints)
    b = _whole(runtime, FbankNode(), ints.astype(np.float32) / 32768)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_too_short_for_one_frame_is_an_empty_result(runtime):
    x = _signal(0.009)  # 144 samples: no Whisper frame (n // 160), no 25 ms Kaldi frame
    for node, bins in ((LogMelNode(), 80), (FbankNode(), 80), (MfccNode(), 13)):
        f = _whole(runtime, node, x)
        assert isinstance(f, Features) and f.shape == (0, bins)


def test_bad_input_gets_a_clear_error(runtime):
    x = _signal(0.5)
    with pytest.raises(InputError, match=r"LogMelNode needs 16000 Hz audio \(Whisper's rate\), received 8000 Hz; put an AudioResampleNode"):
        _whole(runtime, LogMelNode(), x, rate=8000)
    stereo = np.stack([x, x], axis=1)
    for node in (LogMelNode(), FbankNode(), MfccNode()):
        with pytest.raises(InputError, match=f"{node.type_name} needs mono audio, received 2 channels"):
            _whole(runtime, node, stereo)
    with pytest.raises(InputError, match="do not fit below the Nyquist frequency 4000 Hz of 8000 Hz audio"):
        _whole(runtime, FbankNode(high_freq=6000.0), x, rate=8000)
    with pytest.raises(InputError, match=r"mel filter \d+ of 200 covers no FFT bin"):
        _whole(runtime, FbankNode(num_mel_bins=200), x)
    # A NaN made inside the pipeline (inf * 0 is refused at the input) reaches the node: an error
    # naming the sample, and the next run works.
    big = np.full(RATE, 3e38, np.float32)
    with Pipeline([GainNode(gain_db=20.0, node_id="g"), LogMelNode(node_id="f")], runtime_hint=runtime) as p:
        with pytest.raises(InputError, match=r"LogMelNode input has a non-finite sample \(inf\) at index 0"):
            p.run_sync((big, RATE))
        assert p.run_sync((x, RATE))["f"].shape == (50, 80)


def test_mfcc_needs_no_more_ceps_than_bins(runtime):
    with pytest.raises(ManifestError, match=r"params\.num_ceps: expected at most num_mel_bins \(23\), found 30"):
        _whole(runtime, MfccNode(num_ceps=30), _signal(0.5))


def test_resample_then_log_mel_chain(runtime):
    x48 = np.repeat(_signal(1.0), 3)
    with Pipeline([AudioResampleNode(16000, node_id="r"), LogMelNode(node_id="f")], runtime_hint=runtime) as p:
        assert p.run_sync((x48, 48000))["f"].shape == (100, 80)
