"""A noisy-speech set of our own making, for VAD quality and noise-reduction tests and benchmarks.

Speech comes from espeak-ng (installed by the test command from the distribution's packages):
sentences in several voices and speeds, laid out with silences between them, at 16 kHz. The
reference labels come from the clean speech itself: a 10 ms frame is speech when its RMS is within
40 dB of the clip's loudest frame, pauses shorter than 200 ms inside an utterance count as speech
(as a listener, and every VAD's hangover, treats them) and islands shorter than 30 ms do not.

Noise of five kinds is mixed in at a given SNR, measured over the speech frames only:
white, pink (1/f), brown (1/f^2), hum (50 Hz and harmonics plus hiss) and modulated (pink noise
whose level swings by 12 dB at 0.3-2 Hz: non-stationary). Everything is seeded and deterministic.

    from noisy_speech import noisy_set, frame_scores, segments_to_frames
    for item in noisy_set(snrs=(None, 20, 10, 5, 0)):
        decisions = segments_to_frames(my_vad(item.noisy, 16000), item.clip.labels.size)
        p, r, f1, fa = frame_scores(decisions, item.clip.labels)
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

RATE = 16000
#: Scoring frames of 10 ms.
FRAME_S = 0.010
KINDS = ("white", "pink", "brown", "hum", "modulated")

SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "Six spoons of fresh snow peas, five thick slabs of blue cheese, and maybe a snack.",
    "We also need a small plastic snake and a big toy frog for the kids.",
    "She can scoop these things into three red bags, and we will go meet her on Wednesday.",
    "The rainbow is a division of white light into many beautiful colors.",
    "These take the shape of a long round arch, with its path high above.",
    "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow.",
    "Throughout the centuries people have explained the rainbow in various ways.",
    "Some have accepted it as a miracle without physical explanation.",
    "To the Hebrews it was a token that there would be no more universal floods.",
    "The Greeks used to imagine that it was a sign from the gods to foretell war or heavy rain.",
]
VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb-scotland", "en-us+m5", "en-029+f2"]


@dataclass
class Clip:
    name: str
    #: float32 mono samples at RATE, peak about 0.5.
    samples: np.ndarray
    #: One bool per 10 ms frame: speech.
    labels: np.ndarray


@dataclass
class Item:
    clip: Clip
    #: Noise kind, or "clean".
    kind: str
    #: SNR in dB over the speech frames; None for the clean clip.
    snr_db: Optional[float]
    #: Speech plus noise, float32.
    noisy: np.ndarray
    #: The noise that was added (zeros for the clean clip), float32.
    noise: np.ndarray


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, voice: str = "en-us", speed: int = 160) -> np.ndarray:
    """One utterance from espeak-ng, float64 at RATE."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed: the test command installs it (apt-get install espeak-ng)")
    out = subprocess.run([exe, "-v", voice, "-s", str(speed), "--stdout", text], check=True, capture_output=True, timeout=60).stdout
    with wave.open(io.BytesIO(out)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
    return _resample(x, rate, RATE)


def _resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Band-limited resampling through the spectrum (numpy only; utterances start and end in
    near-silence, so the transform's periodic edges do not matter)."""
    if src == dst:
        return x
    n_out = int(round(x.size * dst / src))
    spectrum = np.fft.rfft(x)
    keep = min(spectrum.size, n_out // 2 + 1)
    out = np.zeros(n_out // 2 + 1, dtype=complex)
    out[:keep] = spectrum[:keep]
    return np.fft.irfft(out, n_out) * (n_out / x.size)


def frame_rms_db(x: np.ndarray) -> np.ndarray:
    n = int(round(FRAME_S * RATE))
    frames = x[: x.size // n * n].reshape(-1, n)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)


def _close_gaps(mask: np.ndarray, max_gap: int, min_island: int) -> np.ndarray:
    mask = mask.copy()
    runs = _runs(mask)
    for start, end, value in runs:
        if not value and end - start < max_gap and start > 0 and end < mask.size:
            mask[start:end] = True
    for start, end, value in _runs(mask):
        if value and end - start < min_island:
            mask[start:end] = False
    return mask


def _runs(mask: np.ndarray) -> List[Tuple[int, int, bool]]:
    runs = []
    start = 0
    for i in range(1, mask.size + 1):
        if i == mask.size or mask[i] != mask[start]:
            runs.append((start, i, bool(mask[start])))
            start = i
    return runs


def labels_of(speech: np.ndarray) -> np.ndarray:
    """Reference labels of a clean signal (see the module docs)."""
    db = frame_rms_db(speech)
    raw = db > db.max() - 40.0
    return _close_gaps(raw, max_gap=20, min_island=3)


def clean_clips(n: int = 6, seed: int = 0) -> List[Clip]:
    """``n`` clips of 2-3 utterances each with 0.4-1.5 s of silence around and between them."""
    rng = np.random.default_rng(seed)
    clips = []
    for c in range(n):
        parts = [np.zeros(int(rng.uniform(0.4, 1.5) * RATE))]
        for u in range(int(rng.integers(2, 4))):
            text = SENTENCES[(c * 3 + u) % len(SENTENCES)]
            voice = VOICES[(c + u) % len(VOICES)]
            parts.append(speak(text, voice, speed=int(rng.integers(140, 190))))
            parts.append(np.zeros(int(rng.uniform(0.4, 1.5) * RATE)))
        x = np.concatenate(parts)
        n_frames = x.size // int(FRAME_S * RATE)
        x = x[: n_frames * int(FRAME_S * RATE)]
        x = 0.5 * x / np.max(np.abs(x))
        clips.append(Clip(name=f"clip{c}", samples=x.astype(np.float32), labels=labels_of(x)))
    return clips


def make_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise of one kind, float64."""
    white = rng.standard_normal(n)
    if kind == "white":
        x = white
    elif kind in ("pink", "brown", "modulated"):
        spectrum = np.fft.rfft(white)
        f = np.maximum(np.fft.rfftfreq(n, 1 / RATE), 20.0)
        power = 1.0 if kind in ("pink", "modulated") else 2.0
        x = np.fft.irfft(spectrum / f ** (power / 2), n)
        if kind == "modulated":
            t = np.arange(n) / RATE
            rate_hz = rng.uniform(0.3, 2.0)
            x = x * 10 ** (6 * np.sin(2 * np.pi * rate_hz * t + rng.uniform(0, 2 * np.pi)) / 20)
    elif kind == "hum":
        t = np.arange(n) / RATE
        x = sum(np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 8))
        x = x / np.sqrt(np.mean(x**2)) + 0.3 * white
    else:
        raise ValueError(f"unknown noise kind {kind!r}; kinds: {', '.join(KINDS)}")
    return x / np.sqrt(np.mean(x**2))


def mix(clip: Clip, noise: np.ndarray, snr_db: float) -> Tuple[np.ndarray, np.ndarray]:
    """The clip plus ``noise`` scaled to ``snr_db`` over the clip's speech frames: (noisy, scaled noise)."""
    n = int(FRAME_S * RATE)
    speech = clip.samples.astype(np.float64)
    mask = np.repeat(clip.labels, n)[: speech.size]
    p_speech = np.mean(speech[mask] ** 2)
    scaled = noise[: speech.size] * np.sqrt(p_speech / 10 ** (snr_db / 10) / np.mean(noise[: speech.size] ** 2))
    noisy = speech + scaled
    peak = np.max(np.abs(noisy))
    gain = 0.99 / peak if peak > 0.99 else 1.0
    return (noisy * gain).astype(np.float32), (scaled * gain).astype(np.float32)


def noisy_set(snrs: Sequence[Optional[float]] = (None, 20, 10, 5, 0), kinds: Sequence[str] = KINDS, n_clips: int = 6, seed: int = 0) -> List[Item]:
    """Every clip at every SNR; ``None`` in ``snrs`` is the clean clip (once, not per kind)."""
    rng = np.random.default_rng(seed + 1)
    items = []
    for clip in clean_clips(n_clips, seed):
        for snr in snrs:
            if snr is None:
                items.append(Item(clip, "clean", None, clip.samples.copy(), np.zeros_like(clip.samples)))
                continue
            for kind in kinds:
                noisy, noise = mix(clip, make_noise(kind, clip.samples.size, rng), float(snr))
                items.append(Item(clip, kind, float(snr), noisy, noise))
    return items


def segments_to_frames(segments, n_frames: int) -> np.ndarray:
    """Speech segments in seconds as one bool per 10 ms frame (a frame counts when its centre is inside)."""
    centres = (np.arange(n_frames) + 0.5) * FRAME_S
    out = np.zeros(n_frames, dtype=bool)
    for start, end in segments:
        out |= (centres >= start) & (centres < end)
    return out


def frame_scores(decisions: np.ndarray, labels: np.ndarray) -> Tuple[float, float, float, float]:
    """(precision, recall, F1, false-alarm rate) of per-frame decisions against labels, in percent.
    The false-alarm rate is the share of non-speech frames called speech."""
    d = np.asarray(decisions, dtype=bool)[: labels.size]
    l = labels[: d.size]
    tp = np.sum(d & l)
    fp = np.sum(d & ~l)
    fn = np.sum(~d & l)
    precision = 100.0 * tp / max(tp + fp, 1)
    recall = 100.0 * tp / max(tp + fn, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    fa = 100.0 * fp / max(np.sum(~l), 1)
    return float(precision), float(recall), float(f1), float(fa)
