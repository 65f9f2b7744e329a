"""numpy port of ``remotemedia::synth`` (src/synth.rs): deterministic speech-like signals with a
ground-truth mask, noises (white, pink, mains hum), tones and mixing at a given SNR.

Same PRNG (xorshift64* seeded through splitmix64), same draw order and same formulas as the Rust
module, so a given seed gives the same signal structure (utterance and pause lengths, f0, vowels) and,
up to floating-point rounding, the same samples. Pure Python loops where the Rust code is sequential
(PRNG, jitter, pink filter): a few seconds of audio per second of CPU time, fine for tests.
Test-only since the one CLI is Rust's (the package's CLI used it to print the same signals).
"""

from __future__ import annotations

import math

import numpy as np

_MASK = (1 << 64) - 1

VOWELS = (
    (730.0, 1090.0, 2440.0),
    (530.0, 1840.0, 2480.0),
    (270.0, 2290.0, 3010.0),
    (570.0, 840.0, 2410.0),
    (300.0, 870.0, 2240.0),
)
FORMANT_BW = (90.0, 110.0, 160.0)
FORMANT_GAIN = (1.0, 0.5, 0.25)
NOISE_KINDS = ("white", "pink", "hum50", "hum60")


class Rng:
    """xorshift64*, seeded through splitmix64 (any seed, including 0, is fine)."""

    def __init__(self, seed: int) -> None:
        z = (seed + 0x9E3779B97F4A7C15) & _MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        z ^= z >> 31
        self.state = z if z != 0 else 0x2545F4914F6CDD1D

    def next_u64(self) -> int:
        x = self.state
        x ^= x >> 12
        x ^= (x << 25) & _MASK
        x ^= x >> 27
        self.state = x
        return (x * 0x2545F4914F6CDD1D) & _MASK

    def uniform(self) -> float:
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))

    def range(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.uniform()

    def int(self, lo: int, hi: int) -> int:
        return lo + self.next_u64() % (hi - lo + 1)

    def gauss(self) -> float:
        u1 = 1.0 - self.uniform()
        u2 = self.uniform()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

    def gauss_array(self, n: int) -> np.ndarray:
        u = np.array([self.uniform() for _ in range(2 * n)], dtype=np.float64)
        u1 = 1.0 - u[0::2]
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u[1::2])


def _envelope(f: np.ndarray, fm) -> np.ndarray:
    a = np.full_like(f, 0.02)
    for i in range(3):
        x = (f - fm[i]) / FORMANT_BW[i]
        a += FORMANT_GAIN[i] / (1.0 + x * x)
    return a / (1.0 + f / 500.0)


def _fade(length: int, ramp: int) -> np.ndarray:
    ramp = max(min(max(ramp, 1), length // 2), 1)
    k = np.arange(length)
    g = lambda j: np.where(j >= ramp, 1.0, 0.5 - 0.5 * np.cos(np.pi * j / ramp))  # noqa: E731
    return np.minimum(g(k), g(length - 1 - k))


def speech_like(sample_rate: int, seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Speech-like float32 samples and a per-sample bool truth mask (see src/synth.rs)."""
    rate = float(max(sample_rate, 1))
    n = int(round(seconds * rate)) if math.isfinite(seconds) and seconds > 0 else 0
    out = np.zeros(n, dtype=np.float64)
    truth = np.zeros(n, dtype=bool)
    rng = Rng(seed)

    def secs(s: float) -> int:
        return int(math.floor(s * rate + 0.5))  # Rust's round(): half away from zero (s >= 0)

    def add(pos: int, y: np.ndarray) -> None:
        if pos < n:
            m = min(len(y), n - pos)
            out[pos : pos + m] += y[:m]

    f_top = min(4000.0, 0.45 * rate)
    pos = secs(rng.range(0.3, 1.0))
    while pos < n:
        f0_base = rng.range(100.0, 220.0)
        level = 0.2 * 10.0 ** (-rng.range(0.0, 6.0) / 20.0)
        syllables = rng.int(1, 8)
        utt_start = pos
        vowel = VOWELS[rng.int(0, 4)]
        jitter = 0.0
        phase = 0.0
        for _ in range(syllables):
            if rng.uniform() < 0.5:
                length = secs(rng.range(0.03, 0.12))
                amp = level * 0.5 / math.sqrt(1.0 + 0.9 * 0.9)
                w = rng.gauss_array(length)
                prev = np.concatenate([[0.0], w[:-1]])
                add(pos, (w - 0.9 * prev) * amp * _fade(length, secs(0.01)))
                pos += length
            length = secs(rng.range(0.08, 0.25))
            nxt = VOWELS[rng.int(0, 4)]
            glide = rng.range(-0.12, 0.12)
            block = max(secs(0.004), 1)
            g = rng.gauss_array(length)
            f0 = np.empty(length)
            ph = np.empty(length)
            for i in range(length):
                t = i / length
                jitter = (jitter + 0.0015 * g[i]) * 0.995
                f = f0_base * (1.0 + glide * (t - 0.5)) * (1.0 + min(max(jitter, -0.04), 0.04))
                f0[i] = min(max(f, 90.0), 250.0)
                phase += 2.0 * math.pi * f0[i] / rate
                if phase > 2.0 * math.pi:
                    phase -= 2.0 * math.pi
                ph[i] = phase
            y = np.zeros(length)
            for b0 in range(0, length, block):
                t = b0 / length
                fm = [vowel[k] + (nxt[k] - vowel[k]) * t for k in range(3)]
                k_max = max(int(math.floor(max(f_top / f0[b0], 1.0))), 1)
                k = np.arange(1, k_max + 1, dtype=np.float64)
                amps = _envelope(k * f0[b0], fm)
                amps *= level / max(math.sqrt(float(np.sum(amps * amps / 2.0))), 1e-12)
                seg = ph[b0 : b0 + block]
                y[b0 : b0 + block] = np.sin(np.outer(seg, k)) @ amps
            add(pos, y * _fade(length, secs(0.015)))
            pos += length
            vowel = nxt
            if rng.uniform() < 0.3:
                pos += secs(rng.range(0.02, 0.06))
        end = min(pos, n)
        if utt_start < end:
            truth[utt_start:end] = True
        pos += secs(rng.range(0.15, 1.5))
    return out.astype(np.float32), truth


def noise(kind: str, n: int, sample_rate: int, seed: int) -> np.ndarray:
    """``n`` float32 samples of ``kind`` noise ("white", "pink", "hum50"/"hum", "hum60"), RMS 0.1."""
    rate = float(max(sample_rate, 1))
    rng = Rng(seed ^ 0x6E6F697365000000)
    if kind == "white":
        v = rng.gauss_array(n)
    elif kind == "pink":
        w = rng.gauss_array(n)
        v = np.empty(n)
        b0 = b1 = b2 = b3 = b4 = b5 = b6 = 0.0
        for i in range(n):
            x = w[i]
            b0 = 0.99886 * b0 + x * 0.0555179
            b1 = 0.99332 * b1 + x * 0.0750759
            b2 = 0.96900 * b2 + x * 0.1538520
            b3 = 0.86650 * b3 + x * 0.3104856
            b4 = 0.55000 * b4 + x * 0.5329522
            b5 = -0.7616 * b5 - x * 0.0168980
            v[i] = b0 + b1 + b2 + b3 + b4 + b5 + b6 + x * 0.5362
            b6 = x * 0.115926
    elif kind in ("hum", "hum50", "hum60"):
        f = 60.0 if kind == "hum60" else 50.0
        t = np.arange(n) / rate
        v = np.zeros(n)
        for k in range(1, 11):
            if k * f < 0.45 * rate:
                amp = (1.0 if k % 2 == 1 else 0.4) / k
                v += amp * np.sin(2.0 * np.pi * k * f * t + rng.range(0.0, 2.0 * math.pi))
    else:
        raise ValueError(f"unknown noise kind {kind!r}; expected one of {NOISE_KINDS}")
    rms = math.sqrt(float(np.sum(v * v)) / max(n, 1))
    g = 0.1 / rms if rms > 0 else 0.0
    return (v * g).astype(np.float32)


def mix_at_snr(speech: np.ndarray, truth: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """speech + g * noise with speech power (over ``truth`` samples) / noise power = ``snr_db``."""
    s = np.asarray(speech, dtype=np.float64)
    nz = np.asarray(noise, dtype=np.float64)
    t = np.asarray(truth, dtype=bool)
    active = s[t[: len(s)]] if t.any() else s
    ps = float(np.mean(active * active)) if active.size else 0.0
    pn = float(np.mean(nz * nz)) if nz.size else 0.0
    if nz.size == 0 or pn <= 0 or ps <= 0 or not math.isfinite(snr_db):
        return np.asarray(speech, dtype=np.float32).copy()
    g = np.float32(math.sqrt(ps / pn / 10.0 ** (snr_db / 10.0)))
    reps = np.resize(np.asarray(noise, dtype=np.float32), len(s))
    return (np.asarray(speech, dtype=np.float32) + g * reps).astype(np.float32)


def tone(freq: float, sample_rate: int, n: int, amp: float) -> np.ndarray:
    t = np.arange(n) / float(max(sample_rate, 1))
    return (amp * np.sin(2.0 * np.pi * freq * t)).astype(np.float32)


def frame_truth(truth: np.ndarray, frame_len: int) -> np.ndarray:
    """A frame is speech when at least half of its samples are; whole frames only."""
    nf = len(truth) // frame_len if frame_len > 0 else 0
    t = np.asarray(truth[: nf * frame_len], dtype=bool).reshape(nf, frame_len)
    return t.sum(axis=1) * 2 >= frame_len
