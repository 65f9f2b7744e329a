"""Audio files in every format the readers take, made from known samples: WAV variants by soundfile
(libsndfile), FLAC/ALAC/AIFF/MP3/Vorbis/AAC/Opus by ffmpeg from those WAVs. Used by the file tests and
``benchmarks/decode_bench.py``; needs ``ffmpeg`` (tests/requirements/files.apt) and ``soundfile``
(files.pip). Nothing is committed: every file is made in a temporary folder from a seeded signal.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Dict, NamedTuple, Optional

import numpy as np


class Made(NamedTuple):
    """One generated file and what decoding it must give."""

    path: str
    #: The stored samples as the reader returns them with ``dtype=None`` (None for lossy formats).
    exact: Optional[np.ndarray]
    #: The float32 reference signal (for lossy formats: the signal before encoding).
    signal: np.ndarray
    rate: int
    lossless: bool


def signal(rate: int, seconds: float, channels: int, seed: int = 7) -> np.ndarray:
    """Two tones per channel plus a little noise, in [-0.6, 0.6]: float64 (frames, channels)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(rate * seconds))) / rate
    cols = []
    for c in range(channels):
        f1, f2 = 220.0 * (c + 1), 1375.0 + 97.0 * c
        x = 0.35 * np.sin(2 * np.pi * f1 * t) + 0.2 * np.sin(2 * np.pi * f2 * t + c) + 0.02 * rng.standard_normal(t.size)
        cols.append(x)
    return np.stack(cols, axis=1)


def require(tool: str) -> str:
    """The tool's path; a missing tool is an error (the test command installs it), never a skip."""
    path = shutil.which(tool)
    if path is None:
        raise RuntimeError(f"{tool} is not installed: scripts/test.sh installs it from tests/requirements/files.apt")
    return path


def ffmpeg(src: str, dst: str, *args: str) -> str:
    subprocess.run([require("ffmpeg"), "-nostdin", "-v", "error", "-y", "-i", src, *args, dst], check=True, timeout=120)
    return dst


def ffmpeg_decode(path: str, channels: int) -> np.ndarray:
    """ffmpeg's float32 decode of ``path`` as (frames, channels)."""
    out = subprocess.run([require("ffmpeg"), "-nostdin", "-v", "error", "-i", path, "-f", "f32le", "-acodec", "pcm_f32le", "-"],
                         check=True, capture_output=True, timeout=120).stdout
    return np.frombuffer(out, dtype="<f4").reshape(-1, channels)


def make_all(folder: str, rate: int = 44100, seconds: float = 1.5, channels: int = 2) -> Dict[str, Made]:
    """Every format, named by what it is (``wav_pcm16``, ``flac24``, ``mp3``, ...)."""
    import soundfile as sf

    os.makedirs(folder, exist_ok=True)
    x = signal(rate, seconds, channels)
    x32 = x.astype(np.float32)
    i16 = np.round(x * 32767).astype(np.int16)
    i24 = np.round(x * 8388607).astype(np.int32)  # 24-bit values
    i32 = np.round(x * 2147483647).astype(np.int32)
    u8 = np.round(x * 127).astype(np.int16)  # 8-bit values
    made: Dict[str, Made] = {}

    def wav(name: str, data, subtype: str, exact, fmt: str = "WAV") -> str:
        path = os.path.join(folder, f"{name}.wav")
        sf.write(path, data, rate, subtype=subtype, format=fmt)
        made[name] = Made(path, exact, x32, rate, True)
        return path

    src16 = wav("wav_pcm16", i16, "PCM_16", i16)
    src24 = wav("wav_pcm24", i24 << 8, "PCM_24", i24 << 8)  # soundfile takes int32 full scale
    wav("wav_pcm32", i32, "PCM_32", i32)
    wav("wav_u8", (u8 << 8).astype(np.int16), "PCM_U8", (u8 << 8).astype(np.int16))
    wav("wav_float", x32, "FLOAT", x32)
    wav("wav_double", x, "DOUBLE", x.astype(np.float32))
    wav("wavex_pcm16", i16, "PCM_16", i16, fmt="WAVEX")
    wav("wavex_pcm24", i24 << 8, "PCM_24", i24 << 8, fmt="WAVEX")
    wav("wavex_float", x32, "FLOAT", x32, fmt="WAVEX")
    x6 = signal(rate, 0.5, 6, seed=3)
    i6 = np.round(x6 * 32767).astype(np.int16)
    p6 = os.path.join(folder, "wav_6ch.wav")
    sf.write(p6, i6, rate, subtype="PCM_16")
    made["wav_6ch"] = Made(p6, i6, x6.astype(np.float32), rate, True)

    def conv(name: str, src: str, ext: str, exact, lossless: bool, *args: str) -> None:
        path = ffmpeg(src, os.path.join(folder, f"{name}.{ext}"), *args)
        made[name] = Made(path, exact, x32, rate, lossless)

    conv("flac16", src16, "flac", i16, True, "-c:a", "flac")
    conv("flac24", src24, "flac", i24 << 8, True, "-c:a", "flac")
    conv("alac16", src16, "m4a", i16, True, "-c:a", "alac")
    conv("alac24", src24, "m4a", i24 << 8, True, "-c:a", "alac")
    conv("aiff16", src16, "aiff", i16, True, "-c:a", "pcm_s16be")
    conv("aiff24", src24, "aiff", i24 << 8, True, "-c:a", "pcm_s24be")
    conv("mp3", src16, "mp3", None, False, "-c:a", "libmp3lame", "-b:a", "192k")
    conv("vorbis", src16, "ogg", None, False, "-c:a", "libvorbis", "-q:a", "6")
    conv("aac", src16, "m4a", None, False, "-c:a", "aac", "-b:a", "192k")
    conv("opus", src16, "opus", None, False, "-c:a", "libopus", "-b:a", "96k")
    return made


def best_lag(ref: np.ndarray, test: np.ndarray, max_lag: int = 4096) -> int:
    """The lag (frames ``test`` is behind ``ref``) within ``max_lag`` that maximises their
    cross-correlation on channel 0: the codec delay one decoder trims and the other does not."""
    r, t = ref[:, 0].astype(np.float64), test[:, 0].astype(np.float64)
    size = 1 << int(np.ceil(np.log2(r.size + t.size)))
    xc = np.fft.irfft(np.fft.rfft(t, size) * np.conj(np.fft.rfft(r, size)), size)
    lags = np.r_[0:max_lag + 1, -max_lag:0]
    return int(lags[np.argmax(xc[lags])])


def aligned(ref: np.ndarray, test: np.ndarray, lag: int) -> tuple:
    """The overlapping parts of ``ref`` and ``test`` with ``test`` shifted back by ``lag``."""
    a, b = ref[max(0, -lag):], test[max(0, lag):]
    m = min(a.shape[0], b.shape[0])
    return a[:m].astype(np.float64), b[:m].astype(np.float64)


def snr_db(ref: np.ndarray, test: np.ndarray, max_lag: int = 4096) -> tuple:
    """SNR of ``test`` against ``ref`` in dB after aligning the codec delay, the lag found, and the
    overlap's length in frames."""
    lag = best_lag(ref, test, max_lag)
    a, b = aligned(ref, test, lag)
    noise = np.sum((a - b) ** 2)
    snr = float("inf") if noise == 0 else float(10 * np.log10(np.sum(a * a) / noise))
    return snr, lag, a.shape[0]
