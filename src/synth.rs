//! Deterministic synthetic test signals: speech-like audio with a ground-truth speech mask, noises
//! (white, pink, mains hum), tones, and mixing at a given SNR. Used by the VAD tests, benchmarks and
//! (through a numpy port) Python tests; no dependencies beyond std, same seed → same samples.
//!
//! The speech model is deliberately simple but has the properties a VAD must cope with: voiced
//! segments made of harmonics of a jittered f0 (90–250 Hz) shaped by moving vowel formants,
//! unvoiced (fricative-like) noise bursts, short gaps inside utterances and pauses of varying length
//! between them, and utterance loudness varying over 6 dB.

use std::f64::consts::PI;

/// A small, fast, deterministic PRNG (xorshift64*, seeded through splitmix64 so that any seed,
/// including 0, gives a good state).
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // splitmix64 step: spreads small seeds over the whole state and never yields 0 in practice;
        // guard anyway because xorshift's state must be non-zero.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng { state: if z == 0 { 0x2545_F491_4F6C_DD1D } else { z } }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)` with 53 bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in `lo..=hi`.
    pub fn int(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Standard normal (Box–Muller, one value per call: simple and deterministic).
    pub fn gauss(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]: ln never sees 0
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

/// Vowel formant targets (F1, F2, F3) in Hz: /a/, /e/, /i/, /o/, /u/.
const VOWELS: [[f64; 3]; 5] = [
    [730.0, 1090.0, 2440.0],
    [530.0, 1840.0, 2480.0],
    [270.0, 2290.0, 3010.0],
    [570.0, 840.0, 2410.0],
    [300.0, 870.0, 2240.0],
];
const FORMANT_BW: [f64; 3] = [90.0, 110.0, 160.0];
const FORMANT_GAIN: [f64; 3] = [1.0, 0.5, 0.25];

/// Spectral envelope of the vocal tract at frequency `f` for formants `fm` (a sum of Lorentzian
/// resonances over a gentle −6 dB/octave tilt above 500 Hz).
fn envelope(f: f64, fm: &[f64; 3]) -> f64 {
    let mut a = 0.02; // a floor so that harmonics between formants are not silent
    for i in 0..3 {
        let x = (f - fm[i]) / FORMANT_BW[i];
        a += FORMANT_GAIN[i] / (1.0 + x * x);
    }
    a / (1.0 + f / 500.0)
}

/// Raised-cosine fade-in/fade-out gain at sample `i` of `len`, with ramps of `ramp` samples.
fn fade(i: usize, len: usize, ramp: usize) -> f64 {
    let ramp = ramp.max(1).min(len / 2).max(1);
    let g = |k: usize| if k >= ramp { 1.0 } else { 0.5 - 0.5 * (PI * k as f64 / ramp as f64).cos() };
    g(i).min(g(len - 1 - i))
}

/// Speech-like audio of `seconds` at `sample_rate`, and its ground truth per sample (`true` inside
/// an utterance, including the short (< 60 ms) gaps between its syllables).
///
/// The signal starts with a pause of 0.3–1.0 s, then alternates utterances (1–8 syllables, each an
/// optional 30–120 ms unvoiced burst followed by an 80–250 ms vowel) and pauses of 0.15–1.5 s.
/// Utterance RMS is about 0.1–0.2 (−20…−14 dBFS). A zero or non-finite duration gives empty output.
pub fn speech_like(sample_rate: u32, seconds: f64, seed: u64) -> (Vec<f32>, Vec<bool>) {
    let rate = sample_rate.max(1) as f64;
    let n = if seconds.is_finite() && seconds > 0.0 { (seconds * rate).round() as usize } else { 0 };
    let mut out = vec![0f32; n];
    let mut truth = vec![false; n];
    let mut rng = Rng::new(seed);
    let secs = |s: f64| (s * rate).round() as usize;
    // Harmonics stop below 4 kHz (telephone band) and below 0.45 × rate (no aliasing).
    let f_top = 4000f64.min(0.45 * rate);

    let mut pos = secs(rng.range(0.3, 1.0));
    while pos < n {
        let f0_base = rng.range(100.0, 220.0);
        let level = 0.2 * 10f64.powf(-rng.range(0.0, 6.0) / 20.0);
        let syllables = rng.int(1, 8);
        let utt_start = pos;
        let mut vowel = VOWELS[rng.int(0, 4) as usize];
        let mut jitter = 0.0f64;
        let mut phase = 0.0f64;
        for _ in 0..syllables {
            if rng.uniform() < 0.5 {
                // Unvoiced burst: pre-emphasised white noise (energy rises with frequency).
                let len = secs(rng.range(0.03, 0.12));
                let amp = level * 0.5 / (1.0f64 + 0.9 * 0.9).sqrt();
                let mut prev = 0.0;
                for i in 0..len {
                    let w = rng.gauss();
                    let y = (w - 0.9 * prev) * amp * fade(i, len, secs(0.01));
                    prev = w;
                    if pos + i < n {
                        out[pos + i] += y as f32;
                    }
                }
                pos += len;
            }
            // Voiced part: harmonics of a jittered, gliding f0 under formants moving to the next vowel.
            let len = secs(rng.range(0.08, 0.25));
            let next = VOWELS[rng.int(0, 4) as usize];
            let glide = rng.range(-0.12, 0.12);
            let mut amps: Vec<f64> = Vec::new();
            let block = secs(0.004).max(1);
            for i in 0..len {
                let t = i as f64 / len as f64;
                // Jitter: a slow random walk of a few percent around the contour.
                jitter = (jitter + 0.0015 * rng.gauss()) * 0.995;
                let f0 = (f0_base * (1.0 + glide * (t - 0.5)) * (1.0 + jitter.clamp(-0.04, 0.04))).clamp(90.0, 250.0);
                if i % block == 0 {
                    // Formant amplitudes change slowly: recompute them every few milliseconds.
                    let fm = [0, 1, 2].map(|k| vowel[k] + (next[k] - vowel[k]) * t);
                    let k_max = (f_top / f0).floor().max(1.0) as usize;
                    amps.clear();
                    amps.extend((1..=k_max).map(|k| envelope(k as f64 * f0, &fm)));
                    let power: f64 = amps.iter().map(|a| a * a / 2.0).sum();
                    let norm = level / power.sqrt().max(1e-12);
                    amps.iter_mut().for_each(|a| *a *= norm);
                }
                phase += 2.0 * PI * f0 / rate;
                if phase > 2.0 * PI {
                    phase -= 2.0 * PI;
                }
                let mut y = 0.0;
                for (k, a) in amps.iter().enumerate() {
                    y += a * ((k + 1) as f64 * phase).sin();
                }
                if pos + i < n {
                    out[pos + i] += (y * fade(i, len, secs(0.015))) as f32;
                }
            }
            pos += len;
            vowel = next;
            if rng.uniform() < 0.3 {
                pos += secs(rng.range(0.02, 0.06));
            }
        }
        let end = pos.min(n);
        if utt_start < end {
            truth[utt_start..end].iter_mut().for_each(|t| *t = true);
        }
        pos += secs(rng.range(0.15, 1.5));
    }
    (out, truth)
}

/// The noises [`noise`] can make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoiseKind {
    /// Gaussian white noise.
    White,
    /// Pink (1/f) noise: Paul Kellet's refined filter over Gaussian white noise.
    Pink,
    /// Mains hum at 50 Hz with harmonics up to the 10th (odd ones stronger), random phases.
    Hum50,
    /// Mains hum at 60 Hz, as `Hum50`.
    Hum60,
}

impl NoiseKind {
    /// Parses `"white"`, `"pink"`, `"hum50"` (or `"hum"`), `"hum60"`.
    pub fn parse(s: &str) -> Option<NoiseKind> {
        match s {
            "white" => Some(NoiseKind::White),
            "pink" => Some(NoiseKind::Pink),
            "hum" | "hum50" => Some(NoiseKind::Hum50),
            "hum60" => Some(NoiseKind::Hum60),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            NoiseKind::White => "white",
            NoiseKind::Pink => "pink",
            NoiseKind::Hum50 => "hum50",
            NoiseKind::Hum60 => "hum60",
        }
    }
}

/// `n` samples of noise at `sample_rate`, scaled to an RMS of exactly 0.1 (−20 dBFS) unless all zero.
pub fn noise(kind: NoiseKind, n: usize, sample_rate: u32, seed: u64) -> Vec<f32> {
    let rate = sample_rate.max(1) as f64;
    let mut rng = Rng::new(seed ^ 0x6E6F_6973_6500_0000);
    let v: Vec<f64> = match kind {
        NoiseKind::White => (0..n).map(|_| rng.gauss()).collect(),
        NoiseKind::Pink => {
            let mut b = [0f64; 7];
            (0..n)
                .map(|_| {
                    let w = rng.gauss();
                    b[0] = 0.99886 * b[0] + w * 0.0555179;
                    b[1] = 0.99332 * b[1] + w * 0.0750759;
                    b[2] = 0.96900 * b[2] + w * 0.1538520;
                    b[3] = 0.86650 * b[3] + w * 0.3104856;
                    b[4] = 0.55000 * b[4] + w * 0.5329522;
                    b[5] = -0.7616 * b[5] - w * 0.0168980;
                    let y = b[0] + b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + w * 0.5362;
                    b[6] = w * 0.115926;
                    y
                })
                .collect()
        }
        NoiseKind::Hum50 | NoiseKind::Hum60 => {
            let f = if kind == NoiseKind::Hum50 { 50.0 } else { 60.0 };
            let parts: Vec<(f64, f64, f64)> = (1..=10)
                .filter(|k| (*k as f64) * f < 0.45 * rate)
                .map(|k| {
                    let amp = if k % 2 == 1 { 1.0 } else { 0.4 } / k as f64;
                    (k as f64 * f, amp, rng.range(0.0, 2.0 * PI))
                })
                .collect();
            (0..n)
                .map(|i| {
                    let t = i as f64 / rate;
                    parts.iter().map(|(fk, a, ph)| a * (2.0 * PI * fk * t + ph).sin()).sum()
                })
                .collect()
        }
    };
    let rms = (v.iter().map(|x| x * x).sum::<f64>() / n.max(1) as f64).sqrt();
    let g = if rms > 0.0 { 0.1 / rms } else { 0.0 };
    v.iter().map(|x| (x * g) as f32).collect()
}

/// `speech + g·noise`, with `g` chosen so that the speech power over the samples where `truth` is
/// set (all samples if none is), divided by the noise power over the whole noise buffer, equals
/// `snr_db`. The output has `speech.len()` samples; a shorter noise is repeated, an empty or silent
/// one (or silent speech) leaves the speech unchanged.
pub fn mix_at_snr(speech: &[f32], truth: &[bool], noise: &[f32], snr_db: f64) -> Vec<f32> {
    let power = |it: &mut dyn Iterator<Item = f32>| {
        let (s, c) = it.fold((0.0f64, 0usize), |(s, c), x| (s + (x as f64) * (x as f64), c + 1));
        if c == 0 {
            0.0
        } else {
            s / c as f64
        }
    };
    let any_truth = truth.iter().any(|t| *t);
    let ps = power(&mut speech.iter().enumerate().filter(|(i, _)| !any_truth || truth.get(*i).copied().unwrap_or(false)).map(|(_, x)| *x));
    let pn = power(&mut noise.iter().copied());
    if noise.is_empty() || pn <= 0.0 || ps <= 0.0 || !snr_db.is_finite() {
        return speech.to_vec();
    }
    let g = (ps / pn / 10f64.powf(snr_db / 10.0)).sqrt() as f32;
    speech.iter().enumerate().map(|(i, s)| s + g * noise[i % noise.len()]).collect()
}

/// `n` samples of `amp · sin(2π·freq·t)` at `sample_rate`.
pub fn tone(freq: f64, sample_rate: u32, n: usize, amp: f32) -> Vec<f32> {
    let rate = sample_rate.max(1) as f64;
    (0..n).map(|i| amp * (2.0 * PI * freq * i as f64 / rate).sin() as f32).collect()
}

/// Per-frame truth from per-sample truth: a frame of `frame_len` samples is speech when at least
/// half of its samples are. Only whole frames count (the VAD's floor rule).
pub fn frame_truth(truth: &[bool], frame_len: usize) -> Vec<bool> {
    if frame_len == 0 {
        return Vec::new();
    }
    truth
        .chunks_exact(frame_len)
        .map(|c| 2 * c.iter().filter(|t| **t).count() >= frame_len)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_seed_dependent() {
        let (a, ta) = speech_like(16000, 3.0, 7);
        let (b, tb) = speech_like(16000, 3.0, 7);
        let (c, _) = speech_like(16000, 3.0, 8);
        assert_eq!(a, b);
        assert_eq!(ta, tb);
        assert_ne!(a, c);
        assert_eq!(a.len(), 48000);
    }

    #[test]
    fn truth_covers_the_energy() {
        let (s, t) = speech_like(16000, 20.0, 1);
        let on: Vec<f64> = s.iter().zip(&t).filter(|(_, t)| **t).map(|(x, _)| (*x as f64).powi(2)).collect();
        let off: f64 = s.iter().zip(&t).filter(|(_, t)| !**t).map(|(x, _)| (*x as f64).powi(2)).sum();
        assert!(!on.is_empty() && on.len() < s.len());
        assert_eq!(off, 0.0, "no signal outside the truth mask");
        let rms = (on.iter().sum::<f64>() / on.len() as f64).sqrt();
        assert!(rms > 0.03 && rms < 0.3, "speech rms {rms}");
    }

    #[test]
    fn noise_rms_and_snr() {
        for kind in [NoiseKind::White, NoiseKind::Pink, NoiseKind::Hum50, NoiseKind::Hum60] {
            let v = noise(kind, 16000, 16000, 3);
            let rms = (v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
            assert!((rms - 0.1).abs() < 1e-4, "{kind:?} rms {rms}");
        }
        let (s, t) = speech_like(16000, 10.0, 2);
        let nz = noise(NoiseKind::White, s.len(), 16000, 4);
        let m = mix_at_snr(&s, &t, &nz, 5.0);
        let ps: f64 = s.iter().zip(&t).filter(|(_, t)| **t).map(|(x, _)| (*x as f64).powi(2)).sum::<f64>()
            / t.iter().filter(|t| **t).count() as f64;
        let pn: f64 = m.iter().zip(&s).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / s.len() as f64;
        assert!((10.0 * (ps / pn).log10() - 5.0).abs() < 0.01);
    }
}
