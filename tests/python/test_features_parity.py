"""LogMelNode, FbankNode and MfccNode against their references, run here on both runtimes:
HF's WhisperFeatureExtractor (numpy path), a numpy transcription of openai-whisper's
``log_mel_spectrogram`` (librosa's Slaney filters), and kaldi-native-fbank (dither 0).
The references are test-only dependencies (tests/requirements/features.pip)."""

import functools
import os

import numpy as np
import pytest
from scipy.signal import resample_poly

import kaldi_native_fbank as knf
import librosa
from transformers import WhisperFeatureExtractor

from remotemedia import FbankNode, LogMelNode, MfccNode, Pipeline
from remotemedia.wav import read_wav

RATE = 16000
SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "dataflows", "sample_speech.wav")


def _speech():
    a = read_wav(SAMPLE)
    x = a.samples.astype(np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if a.samples.dtype == np.int16:
        x = x / 32768.0
    return resample_poly(x, RATE, a.sample_rate).astype(np.float32)


def _signals():
    rng = np.random.default_rng(16)
    t = np.arange(int(4.3 * RATE)) / RATE
    tones = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3150.5 * t) + 0.05 * np.sin(2 * np.pi * 7000 * t)
    return {
        "speech": _speech(),
        "tones": tones.astype(np.float32),
        "silence": np.zeros(3 * RATE + 77, np.float32),
        "clipping_noise": np.clip(rng.normal(0, 0.8, 2 * RATE + 13), -1, 1).astype(np.float32),
    }


SIGNALS = _signals()


def run_node(runtime, node, x, rate=RATE):
    node.node_id = "f"
    with Pipeline([node], runtime_hint=runtime) as p:
        out = p.run_sync((x, rate))["f"]
    assert out.dtype == np.float32 and out.ndim == 2
    return out


# ---- Whisper ----


def _mel_power(x, n_mels=80):
    """Mel power of the centred, reflect-padded frames (the last one dropped), float64."""
    padded = np.pad(x.astype(np.float64), 200, mode="reflect")
    count = 1 + (padded.size - 400) // 160
    frames = np.lib.stride_tricks.sliding_window_view(padded, 400)[::160][:count]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    power = np.abs(np.fft.rfft(frames * window, axis=1)[:-1]) ** 2
    return power @ _librosa_filters(n_mels).T.astype(np.float64)


@functools.lru_cache(maxsize=None)
def _librosa_filters(n_mels):
    return librosa.filters.mel(sr=RATE, n_fft=400, n_mels=n_mels)


def openai_log_mel(x, n_mels, pad_or_trim_s=None):
    """openai-whisper's log_mel_spectrogram (whisper/audio.py) transcribed to numpy: torch.stft's
    centred frames (reflect padding of 200), periodic Hann, power, last frame dropped, librosa's
    Slaney filters, log10 clamp, max - 8 floor, (x + 4) / 4. ``pad_or_trim_s``: whisper.pad_or_trim."""
    x = x.astype(np.float64)
    if pad_or_trim_s is not None:
        n = int(pad_or_trim_s * RATE)
        x = np.pad(x[:n], (0, max(n - x.size, 0)))
    log_spec = np.log10(np.maximum(_mel_power(x, n_mels), 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def hf_log_mel(x, n_mels, pad_or_trim_s=None):
    fe = _hf_extractor(n_mels)
    if pad_or_trim_s is None:
        out = fe(x, sampling_rate=RATE, return_tensors="np", padding="longest", truncation=False)
    else:
        out = fe(x, sampling_rate=RATE, return_tensors="np", padding="max_length", max_length=int(pad_or_trim_s * RATE))
    return out["input_features"][0].T


@functools.lru_cache(maxsize=None)
def _hf_extractor(n_mels):
    return WhisperFeatureExtractor(feature_size=n_mels)


@pytest.mark.parametrize("n_mels", [80, 128])
@pytest.mark.parametrize("pad", [None, 30.0])
def test_log_mel_matches_hf_and_openai_whisper(runtime, n_mels, pad):
    worst = {}
    for name, x in SIGNALS.items():
        got = run_node(runtime, LogMelNode(n_mels=n_mels, pad_or_trim_s=pad), x)
        frames = int(pad * 100) if pad else x.size // 160
        assert got.shape == (frames, n_mels)
        assert got.frame_rate == 100.0
        for ref_name, ref in (("hf", hf_log_mel(x, n_mels, pad)), ("openai", openai_log_mel(x, n_mels, pad))):
            assert ref.shape == got.shape, (name, ref_name)
            worst[(name, ref_name)] = float(np.abs(got - ref).max())
    assert max(worst.values()) <= 1e-4, worst


def test_log_mel_filters_are_librosas():
    from remotemedia._pure.features import slaney_filters

    for n_mels in (80, 128):
        ours = slaney_filters(RATE, 400, n_mels, 0.0, 8000.0)
        np.testing.assert_allclose(ours, _librosa_filters(n_mels), rtol=1e-5, atol=1e-7)


def test_whole_and_window_normalisation_differ_as_the_references_do(runtime):
    """Past 30 s, "whole" floors at the input's maximum (openai-whisper's log_mel_spectrogram on
    the whole file) and "window" at each 30 s window's maximum (each window normalised alone, as
    HF does; its frames are the continuous transform's, so the ones at the window's edges see the
    neighbouring audio where HF's would see a cut)."""
    rng = np.random.default_rng(3)
    x = np.concatenate([0.5 * rng.standard_normal(30 * RATE), 1e-4 * rng.standard_normal(12 * RATE)]).astype(np.float32)
    whole = run_node(runtime, LogMelNode(normalize="whole"), x)
    np.testing.assert_allclose(whole, openai_log_mel(x, 80), atol=1e-4)
    window = run_node(runtime, LogMelNode(normalize="window"), x)
    assert window.shape == whole.shape == (4200, 80)
    np.testing.assert_array_equal(window[:3000], whole[:3000])
    raw = run_node(runtime, LogMelNode(normalize="none"), x)
    np.testing.assert_allclose(raw, np.log10(np.maximum(_mel_power(x), 1e-10)), atol=1e-4)
    second = raw[3000:]
    np.testing.assert_allclose(window[3000:], (np.maximum(second, second.max() - 8) + 4) / 4, atol=1e-6)
    # The quiet part sits at the whole input's floor but keeps its detail in its own window.
    assert np.ptp(window[3100:]) > 2 * np.ptp(whole[3100:])


# ---- Kaldi ----

FBANK_CASES = [
    {},
    {"window_type": "hamming"},
    {"window_type": "hanning"},
    {"window_type": "hann"},
    {"window_type": "rectangular"},
    {"window_type": "sine"},
    {"window_type": "blackman"},
    {"snip_edges": False},
    {"use_energy": True},
    {"use_energy": True, "raw_energy": False, "snip_edges": False},
    {"use_energy": True, "energy_floor": 1.0},
    {"remove_dc_offset": False, "preemph_coeff": 0.0},
    {"num_mel_bins": 23, "low_freq": 60.0, "high_freq": -400.0},
    {"num_mel_bins": 40, "low_freq": 0.0, "high_freq": 7000.0},
    {"num_mel_bins": 128, "frame_length_ms": 50.0},
    {"frame_length_ms": 20.0, "frame_shift_ms": 5.0, "round_to_power_of_two": False},
    {"use_power": False},
    {"use_log_fbank": False},
    {"input_scale": 32768.0, "use_energy": True},
]

MFCC_CASES = [
    {},
    {"num_ceps": 20, "num_mel_bins": 40},
    {"cepstral_lifter": 0.0, "use_energy": False},
    {"num_mel_bins": 80, "num_ceps": 80, "snip_edges": False, "window_type": "hamming"},
    {"energy_floor": 2.0, "raw_energy": False},
    {"input_scale": 32768.0},
]

_FRAME_OPTS = {
    "frame_length_ms": "frame_length_ms", "frame_shift_ms": "frame_shift_ms", "window_type": "window_type",
    "snip_edges": "snip_edges", "remove_dc_offset": "remove_dc_offset", "preemph_coeff": "preemph_coeff",
    "round_to_power_of_two": "round_to_power_of_two",
}
_MEL_OPTS = {"num_mel_bins": "num_bins", "low_freq": "low_freq", "high_freq": "high_freq"}


def knf_features(kind, x, params):
    opts = knf.FbankOptions() if kind == "fbank" else knf.MfccOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = RATE
    if kind == "fbank":
        opts.mel_opts.num_bins = 80  # FbankNode's default (kaldi-native-fbank's is 23)
    for k, v in params.items():
        if k in _FRAME_OPTS:
            setattr(opts.frame_opts, _FRAME_OPTS[k], v)
        elif k in _MEL_OPTS:
            setattr(opts.mel_opts, _MEL_OPTS[k], v)
        elif k != "input_scale":
            setattr(opts, k, v)
    comp = knf.OnlineFbank(opts) if kind == "fbank" else knf.OnlineMfcc(opts)
    comp.accept_waveform(RATE, (x.astype(np.float64) * params.get("input_scale", 1.0)).astype(np.float32).tolist())
    comp.input_finished()
    return np.array([comp.get_frame(i) for i in range(comp.num_frames_ready)], dtype=np.float32)


def _kaldi_signals():
    """The signals, 2 s each. The tones get noise 35 dB below them: pure tones in digital silence
    (or over a floor 60-80 dB down) leave mel bands 85-95 dB below the frame's peak, where
    kaldi-native-fbank's own f32 arithmetic is off the exact value by up to 4e-3 (its output and
    the f64 twin's differ there by that much, and only there)."""
    floor = 1e-2 * np.random.default_rng(7).standard_normal(2 * RATE + 123)
    out = {name: x[: 2 * RATE + 123] for name, x in SIGNALS.items()}
    out["tones"] = (out["tones"] + floor).astype(np.float32)
    return out


def _kaldi_parity(runtime, kind, cases):
    node_class = FbankNode if kind == "fbank" else MfccNode
    worst = {}
    for i, params in enumerate(cases):
        for name, x in _kaldi_signals().items():
            got = run_node(runtime, node_class(**params), x)
            ref = knf_features(kind, x, params)
            assert got.shape == ref.shape, (params, name)
            assert got.frame_rate == RATE / int(RATE * params.get("frame_shift_ms", 10.0) / 1000)
            err = np.abs(got - ref)
            if not params.get("use_log_fbank", True):
                err = err / np.maximum(np.abs(ref), 1e-3)  # raw energies: relative
            elif kind == "fbank":
                # Log bands more than 80 dB (18.4 nats) under their frame's loudest band are below
                # the f32 reference's own precision (its values and exact ones differ there by up
                # to 4e-3): the low bands of pre-emphasised tones.
                bands = ref[:, int(params.get("use_energy", False)) :]
                err[:, -bands.shape[1] :] *= bands >= bands.max(axis=1, keepdims=True) - 18.4
            worst[(i, name)] = float(err.max())
    assert max(worst.values()) <= 1e-3, {k: v for k, v in worst.items() if v > 1e-3}


def test_fbank_matches_kaldi_native_fbank(runtime):
    _kaldi_parity(runtime, "fbank", FBANK_CASES)


def test_mfcc_matches_kaldi_native_fbank(runtime):
    _kaldi_parity(runtime, "mfcc", MFCC_CASES)
