"""The two runtimes agree on real signals: format conversion bit for bit, resampled audio within 1e-4,
VAD decisions on at least 99% of frames (the bundled speech sample and synthetic noisy speech)."""

from pathlib import Path

import numpy as np
import pytest

from remotemedia import AudioResampleNode, FormatConverterNode, Pipeline, VADNode
import synth
from remotemedia.wav import read_wav

pytestmark = pytest.mark.requires_native

SAMPLE = Path(__file__).resolve().parents[2] / "dataflows" / "sample_speech.wav"


def both(nodes, data):
    """Runs the same pipeline on each runtime; returns (rust outputs, python outputs)."""
    return tuple(Pipeline(nodes(), runtime_hint=rt).run_sync(data) for rt in ("rust", "python"))


@pytest.fixture(scope="module")
def speech():
    a = read_wav(SAMPLE)
    return a.samples, a.sample_rate


def noisy(rate, kind, snr_db, seed=5):
    s, truth = synth.speech_like(rate, 6.0, seed)
    return synth.mix_at_snr(s, truth, synth.noise(kind, s.size, rate, seed + 1), snr_db).astype(np.float32)


def test_format_conversion_is_bit_exact(speech):
    rust, py = both(lambda: [FormatConverterNode("f32", node_id="f")], speech)
    assert rust["f"].samples.dtype == np.float32
    assert np.array_equal(rust["f"].samples.view(np.uint32), py["f"].samples.view(np.uint32))
    # Back to int16 from floats with ties, overflow and NaN-free extremes.
    x = np.concatenate([rust["f"].samples * 3, np.array([0.5, -0.5, 1.5 / 32768, 2.5 / 32768, 1.0, -1.0, 7.0], np.float32)])
    rust, py = both(lambda: [FormatConverterNode("i16", node_id="f")], (x, 48000))
    assert np.array_equal(rust["f"].samples, py["f"].samples)


@pytest.mark.parametrize("quality", ["low", "medium", "high", "very_high"])
def test_resampled_speech_agrees_within_1e_4(speech, quality):
    nodes = lambda: [FormatConverterNode("f32", node_id="f"), AudioResampleNode(16000, quality=quality, node_id="r")]
    rust, py = both(nodes, speech)
    a, b = rust["r"].samples, py["r"].samples
    assert a.shape == b.shape == (round(speech[0].size / 3),)
    assert np.max(np.abs(a - b)) <= 1e-4


@pytest.mark.parametrize("rates", [(16000, 48000), (44100, 16000), (8000, 22050)])
def test_resampled_noise_agrees_within_1e_4(rates):
    x = noisy(rates[0], "pink", 10.0)
    rust, py = both(lambda: [AudioResampleNode(rates[1], node_id="r")], (x, rates[0]))
    assert np.max(np.abs(rust["r"].samples - py["r"].samples)) <= 1e-4


@pytest.mark.parametrize("kind", ["white", "pink", "hum50"])
@pytest.mark.parametrize("snr_db", [20.0, 5.0, 0.0])
def test_vad_decisions_agree_on_noisy_speech(kind, snr_db):
    x = noisy(16000, kind, snr_db)
    rust, py = both(lambda: [VADNode(frame_duration_ms=30, node_id="v")], (x, 16000))
    a, b = rust["v"].frames, py["v"].frames
    assert a.shape == b.shape and a.size == x.size // 480
    assert np.mean(a == b) >= 0.99


def test_the_main_job_agrees_on_the_bundled_sample(speech):
    nodes = lambda: [
        FormatConverterNode("f32", node_id="to_f32"),
        AudioResampleNode(16000, node_id="resample_16k"),
        VADNode(frame_duration_ms=30, node_id="vad"),
    ]
    rust, py = both(nodes, speech)
    assert np.mean(rust["vad"].frames == py["vad"].frames) >= 0.99
    assert len(rust["vad"].segments) == len(py["vad"].segments) >= 2
    for (s1, e1), (s2, e2) in zip(rust["vad"].segments, py["vad"].segments):
        assert abs(s1 - s2) <= 0.03 and abs(e1 - e2) <= 0.03
