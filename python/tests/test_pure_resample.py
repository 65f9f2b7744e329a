"""Tests of the numpy twin of AudioResampleNode against analytic tones, and (when the native
outputs have been written by `cargo run --release --example resample_measure`) against the
native node: max abs difference <= 1e-4."""

import importlib.util
import pathlib

import numpy as np
import pytest

_PATH = pathlib.Path(__file__).resolve().parents[1] / "remotemedia" / "_pure" / "resample.py"
# Loaded by path so the test does not need the compiled package.
_spec = importlib.util.spec_from_file_location("_pure_resample", _PATH)
rs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rs)

PAIRS = [(48000, 16000), (16000, 48000), (44100, 16000), (8000, 192000), (192000, 8000), (22050, 48000)]
PARITY_DIR = pathlib.Path("/tmp/resample_parity")


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


@pytest.mark.skipif(not (PARITY_DIR / "index.txt").exists(), reason="native outputs not written")
def test_parity_with_native_outputs():
    for line in (PARITY_DIR / "index.txt").read_text().splitlines():
        name, i, o, ch, q = line.split()
        i, o, ch = int(i), int(o), int(ch)
        x = np.fromfile(PARITY_DIR / f"{name}_in.f32", dtype=np.float32).reshape(-1, ch)
        ref = np.fromfile(PARITY_DIR / f"{name}_out.f32", dtype=np.float32).reshape(-1, ch)
        y = rs.resample(x, i, o, q)
        assert y.shape == ref.shape, name
        if ref.size:
            assert np.max(np.abs(y.astype(np.float64) - ref)) <= 1e-4, name
