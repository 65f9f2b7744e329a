"""Tests of the numpy twin of AudioResampleNode against analytic tones (agreement with the native
node: test_parity.py)."""

import importlib.util

import numpy as np
import pytest

from remotemedia._pure import resample as rs

PAIRS = [(48000, 16000), (16000, 48000), (44100, 16000), (8000, 192000), (192000, 8000), (22050, 48000)]


def tone(freq, rate, frames, amp=0.5):
    return (amp * np.sin(2 * np.pi * freq * np.arange(frames) / rate)).astype(np.float32)[:, None]


@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize("quality", rs.QUALITIES)
def test_tone_snr_and_length(pair, quality):
    i, o = pair
    y = rs.resample(tone(997.0, i, i), i, o, quality)
    assert y.shape == (round(i * o / i), 1) and y.dtype == np.float32
    edge = rs.block_sizes(i, o, quality)[1] // 2
    ref = 0.5 * np.sin(2 * np.pi * 997.0 * np.arange(len(y)) / o)
    err = y[edge:-edge, 0].astype(np.float64) - ref[edge:-edge]
    snr = 10 * np.log10(np.sum(ref[edge:-edge] ** 2) / np.sum(err**2))
    assert snr > 118.0, snr


def test_alias_rejection_48k_to_16k():
    y = rs.resample(tone(10000.0, 48000, 48000), 48000, 16000, "high")
    level = 10 * np.log10(np.mean(y[128:-128].astype(np.float64) ** 2) / 0.125)
    assert level < -120.0


def test_stereo_empty_and_tiny():
    x = np.concatenate([tone(997.0, 48000, 4800), tone(3000.0, 48000, 4800)], axis=1)
    y = rs.resample(x, 48000, 16000)
    assert y.shape == (1600, 2)
    assert rs.resample(np.zeros((0, 2), np.float32), 16000, 48000).shape == (0, 2)
    assert rs.resample(np.ones((1, 1), np.float32), 48000, 16000).shape == (0, 1)
    assert rs.resample(np.ones((1, 1), np.float32), 8000, 192000).shape == (24, 1)
    same = rs.resample(x, 48000, 48000)
    assert np.array_equal(same, x)


def test_bad_args():
    with pytest.raises(ValueError):
        rs.resample(np.zeros((10, 1), np.float32), 48000, 16000, "ultra")
    with pytest.raises(ValueError):
        rs.resample(np.zeros((10, 1), np.float32), 4000, 16000)
