//! `DenoiseNode`: spectral-gating noise reduction. Each STFT bin is kept when its level is above
//! the noise profile's mean + `n_std_thresh` standard deviations (in dB) for that frequency, and
//! attenuated by `prop_decrease` otherwise; the mask is smoothed over frequency and time with the
//! triangular kernel noisereduce uses, and the signal is rebuilt by weighted overlap-add.
//!
//! The noise profile comes from `noise_clip` when given, otherwise from the quietest tenth of the
//! frames (of the whole buffer; in a stream, of its first `time_constant_s`). `stationary` keeps
//! the profile; `nonstationary` follows the noise with a running per-bin mean and variance that
//! learn from the bins the gate calls noise. [`Gate`] processes frames in order and carries
//! everything across a stream's chunks; its latency is `n_fft + n_grad_time * hop` samples (see
//! [`Gate::latency`]). Every param lives in [`DenoiseParams`]. `python/remotemedia/_pure/denoise.py`
//! is the numpy twin. Params, algorithm, latency and measured quality: `docs/nodes.md#denoisenode`.

use std::collections::VecDeque;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use serde_json::Value;

use super::{check_finite, expect_audio, param_f64, param_i64, param_str, Inputs, Node, NodeType, ParamKind, ParamSpec, Params};
use crate::data::{AudioBuffer, Payload, Samples};
use crate::error::NodeError;
use crate::nodes::format::into_f32;

pub const TYPE_NAME: &str = "DenoiseNode";

/// How the noise profile evolves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Fixed profile: steady noise (hiss, hum, fans).
    Stationary,
    /// Running per-bin estimate with time constant `time_constant_s`: noise whose level changes.
    Nonstationary,
}

/// Every param of `DenoiseNode`.
#[derive(Clone, Debug, PartialEq)]
pub struct DenoiseParams {
    pub mode: Mode,
    pub n_fft: usize,
    pub n_std_thresh: f64,
    pub prop_decrease: f64,
    pub freq_mask_smooth_hz: f64,
    pub time_mask_smooth_ms: f64,
    pub time_constant_s: f64,
    /// Noise-only samples (mono, at the audio's rate).
    pub noise_clip: Option<Vec<f32>>,
}

impl DenoiseParams {
    pub const MODES: &'static [&'static str] = &["stationary", "nonstationary"];
    pub const N_FFT: &'static [i64] = &[256, 512, 1024, 2048, 4096];
    pub const DEFAULT_N_FFT: usize = 1024;
    pub const DEFAULT_N_STD: f64 = 1.5;
    pub const DEFAULT_FREQ_SMOOTH_HZ: f64 = 500.0;
    pub const DEFAULT_TIME_SMOOTH_MS: f64 = 50.0;
    pub const DEFAULT_TIME_CONSTANT_S: f64 = 2.0;
    pub const MAX_NOISE_CLIP: usize = 480_000;

    pub fn specs() -> Vec<ParamSpec> {
        vec![
            ParamSpec::with_default(
                "mode",
                ParamKind::Choice(Self::MODES),
                Value::from("stationary"),
                "stationary: one noise profile; nonstationary: a running per-bin estimate (time_constant_s)",
            ),
            ParamSpec::with_default(
                "n_fft",
                ParamKind::IntChoice(Self::N_FFT),
                Value::from(Self::DEFAULT_N_FFT as i64),
                "STFT length in samples (periodic Hann window, hop n_fft / 4)",
            ),
            ParamSpec::with_default(
                "n_std_thresh",
                ParamKind::Float { min: 0.0, max: 10.0 },
                Value::from(Self::DEFAULT_N_STD),
                "a bin is signal when its level exceeds the noise mean by this many standard deviations (dB)",
            ),
            ParamSpec::with_default(
                "prop_decrease",
                ParamKind::Float { min: 0.0, max: 1.0 },
                Value::from(1.0),
                "how much of the noise to remove: 1.0 gates it out, 0.5 halves it, 0 leaves the audio unchanged",
            ),
            ParamSpec::with_default(
                "freq_mask_smooth_hz",
                ParamKind::Float { min: 0.0, max: 20000.0 },
                Value::from(Self::DEFAULT_FREQ_SMOOTH_HZ),
                "width of the mask's smoothing over frequency, in Hz (as noisereduce)",
            ),
            ParamSpec::with_default(
                "time_mask_smooth_ms",
                ParamKind::Float { min: 0.0, max: 1000.0 },
                Value::from(Self::DEFAULT_TIME_SMOOTH_MS),
                "width of the mask's smoothing over time, in ms (as noisereduce); adds latency in streams",
            ),
            ParamSpec::with_default(
                "time_constant_s",
                ParamKind::Float { min: 0.05, max: 60.0 },
                Value::from(Self::DEFAULT_TIME_CONSTANT_S),
                "nonstationary: time constant of the running noise estimate; streams without noise_clip learn \
                 the profile over this long",
            ),
            ParamSpec::optional(
                "noise_clip",
                ParamKind::List { item: Box::new(ParamKind::Float { min: -1000.0, max: 1000.0 }), min_len: 1, max_len: Self::MAX_NOISE_CLIP },
                "noise-only samples (mono, at the audio's sample rate) to take the noise profile from",
            ),
        ]
    }

    pub fn from_params(params: &Params) -> Result<DenoiseParams, NodeError> {
        let mode = match param_str(params, "mode")?.unwrap_or("stationary") {
            "nonstationary" => Mode::Nonstationary,
            _ => Mode::Stationary,
        };
        let noise_clip = match params.get("noise_clip") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|v| v.as_f64().map(|x| x as f32).ok_or_else(|| NodeError::permanent(format!("param 'noise_clip' must hold numbers, found {v}"))))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(v) => return Err(NodeError::permanent(format!("param 'noise_clip' must be a list of numbers, found {v}"))),
        };
        Ok(DenoiseParams {
            mode,
            n_fft: param_i64(params, "n_fft")?.map_or(Self::DEFAULT_N_FFT, |n| n as usize),
            n_std_thresh: param_f64(params, "n_std_thresh")?.unwrap_or(Self::DEFAULT_N_STD),
            prop_decrease: param_f64(params, "prop_decrease")?.unwrap_or(1.0),
            freq_mask_smooth_hz: param_f64(params, "freq_mask_smooth_hz")?.unwrap_or(Self::DEFAULT_FREQ_SMOOTH_HZ),
            time_mask_smooth_ms: param_f64(params, "time_mask_smooth_ms")?.unwrap_or(Self::DEFAULT_TIME_SMOOTH_MS),
            time_constant_s: param_f64(params, "time_constant_s")?.unwrap_or(Self::DEFAULT_TIME_CONSTANT_S),
            noise_clip,
        })
    }

    pub fn hop(&self) -> usize {
        self.n_fft / 4
    }

    /// Half-widths of the mask's smoothing kernel in bins and frames, as noisereduce computes
    /// them (`int(hz / (rate / (n_fft / 2)))`, `int(ms / (hop / rate * 1000))`).
    pub fn smoothing(&self, rate: u32) -> (usize, usize) {
        let bins = (self.freq_mask_smooth_hz / (rate as f64 / (self.n_fft as f64 / 2.0))).floor() as usize;
        let frames = (self.time_mask_smooth_ms / (self.hop() as f64 / rate as f64 * 1000.0)).floor() as usize;
        (bins, frames)
    }
}

/// Share of the frames, the quietest by total power, the profile is estimated from.
const QUIET_FRACTION: f64 = 0.1;
/// At least this many frames (or all there are) go into an estimated profile.
const MIN_QUIET_FRAMES: usize = 8;
/// Power floor before taking dB (-200 dB): digital silence stays finite.
const EPS_POWER: f32 = 1e-20;
/// The running estimate rises this many times more slowly on bins the gate calls signal, so a
/// lasting rise of the noise is still learned while speech barely moves it.
const RISE_SLOWDOWN: f32 = 10.0;

/// `noisereduce`'s triangular kernel of half-width `n`: `[1, 2, ..., n+1, ..., 2, 1] / (n + 1)`.
fn triangle(n: usize) -> Vec<f32> {
    (0..2 * n + 1).map(|i| (n + 1 - i.abs_diff(n)) as f32 / (n + 1) as f32).collect()
}

fn db(power: f32) -> f32 {
    10.0 * (power + EPS_POWER).log10()
}

/// One frame's per-bin powers, its total power (what the quietest frames are chosen by) and,
/// once a profile needs them, its levels in dB: a whole buffer's profile reads only its quietest
/// tenth, so the logarithms of the other frames (most of the node's time once) are never taken.
#[derive(Clone, Debug)]
struct Levels {
    power: Vec<f32>,
    /// Empty until [`Levels::with_db`].
    db: Vec<f32>,
    total: f64,
}

impl Levels {
    fn of(power: Vec<f32>) -> Levels {
        let total = power.iter().map(|&p| p as f64).sum();
        Levels { power, db: Vec::new(), total }
    }

    fn with_db(&mut self) -> &Levels {
        if self.db.is_empty() {
            self.db = self.power.iter().map(|&p| db(p)).collect();
        }
        self
    }
}

/// Per-bin noise statistics in dB and the linear power threshold they give.
#[derive(Clone, Debug)]
struct Profile {
    mean: Vec<f32>,
    var: Vec<f32>,
    threshold: Vec<f32>,
}

impl Profile {
    /// Mean and variance of every bin over `frames` (their dB levels computed).
    fn of<'a>(frames: impl Iterator<Item = &'a Levels>, bins: usize, n_std: f32) -> Profile {
        let (mut sum, mut sq, mut n) = (vec![0f64; bins], vec![0f64; bins], 0usize);
        for f in frames {
            for ((s, q), &d) in sum.iter_mut().zip(&mut sq).zip(&f.db) {
                *s += d as f64;
                *q += d as f64 * d as f64;
            }
            n += 1;
        }
        let n = n.max(1) as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let var: Vec<f32> = sum.iter().zip(&sq).map(|(s, q)| ((q / n) - (s / n) * (s / n)).max(0.0) as f32).collect();
        let mut p = Profile { threshold: vec![0.0; bins], mean, var };
        p.update_threshold(n_std);
        p
    }

    /// The profile of the quietest frames (see [`QUIET_FRACTION`]); ties keep frame order.
    fn of_quietest(frames: &mut [Levels], bins: usize, n_std: f32) -> Profile {
        let mut order: Vec<usize> = (0..frames.len()).collect();
        order.sort_by(|&a, &b| frames[a].total.total_cmp(&frames[b].total).then(a.cmp(&b)));
        let take = ((frames.len() as f64 * QUIET_FRACTION).ceil() as usize).max(MIN_QUIET_FRAMES).min(frames.len());
        for &i in &order[..take] {
            frames[i].with_db();
        }
        Profile::of(order[..take].iter().map(|&i| &frames[i]), bins, n_std)
    }

    fn update_threshold(&mut self, n_std: f32) {
        for ((t, m), v) in self.threshold.iter_mut().zip(&self.mean).zip(&self.var) {
            *t = 10f32.powf((m + n_std * v.sqrt()) / 10.0);
        }
    }
}

/// One analysed frame waiting for its time-smoothed mask: its spectra and its mask so far.
struct Pending {
    spectra: Vec<Vec<Complex<f32>>>,
    masks: Vec<Vec<f32>>,
}

/// The gate for one stream of interleaved audio: frames in, denoised samples out, in order.
pub struct Gate {
    params: DenoiseParams,
    channels: usize,
    n: usize,
    hop: usize,
    bins: usize,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    ifft: Arc<dyn ComplexToReal<f32>>,
    /// The mask's smoothing over frequency.
    freq_smooth: Smoother,
    time_kernel: Vec<f32>,
    /// The noise profile: known (noise clip, or the whole buffer's quietest frames) or being
    /// learned; `None` only before a stream's first frame.
    profile: Option<Profile>,
    /// While a stream learns its profile: the levels of its frames so far.
    learning: Option<Vec<Levels>>,
    learn_frames: usize,
    alpha: f32,
    // ---- the stream's position ----
    /// Per channel: samples from the start of the next frame on, after the first `input_from`
    /// (already consumed: dropped in bulk, not one hop at a time, so a whole buffer is not
    /// moved once per frame).
    input: Vec<Vec<f32>>,
    input_from: usize,
    /// Index of the next frame to analyse; its first sample is `next * hop - n / 2`.
    next: usize,
    /// Frames analysed whose mask still needs later frames, oldest first, from frame `pending_from`.
    pending: VecDeque<Pending>,
    pending_from: usize,
    /// Masks of the last frames finished (the time smoothing looks back at them).
    history: VecDeque<Vec<Vec<f32>>>,
    /// Per channel: the overlap-add accumulator and the window-square sum, from sample `out_pos`
    /// (plain vectors: a frame's overlap-add is then one vectorised loop; the consumed front is
    /// dropped once per push, as `input`'s).
    acc: Vec<Vec<f32>>,
    wsum: Vec<f32>,
    out_pos: usize,
    /// Samples pushed so far (the output has the same length).
    total_in: usize,
    /// Scratch buffers, kept so the per-frame work allocates only what a pending frame keeps
    /// (its spectra and masks): the transforms' scratch (realfft's `process` would allocate
    /// it on every call), the mono powers, the raw mask, the time-smoothed mask and the
    /// masked spectrum.
    frame: Vec<f32>,
    spec: Vec<Complex<f32>>,
    mono: Vec<Complex<f32>>,
    fft_scratch: Vec<Complex<f32>>,
    ifft_scratch: Vec<Complex<f32>>,
    mono_power: Vec<f32>,
    raw_mask: Vec<f32>,
    mask: Vec<f32>,
    masked: Vec<Complex<f32>>,
    /// Spectra and masks of finished frames, reused by later frames instead of allocated.
    spare_spectra: Vec<Vec<Complex<f32>>>,
    spare_masks: Vec<Vec<f32>>,
}

impl Gate {
    /// A gate for `channels` channels at `rate`. `profile_from`: the whole buffer, whose
    /// quietest frames give the profile when there is no noise clip (`None`: learn it from the
    /// stream's first `time_constant_s`).
    pub fn new(params: &DenoiseParams, rate: u32, channels: usize, profile_from: Option<&[f32]>) -> Result<Gate, NodeError> {
        let n = params.n_fft;
        let hop = params.hop();
        let bins = n / 2 + 1;
        let mut planner = RealFftPlanner::<f32>::new();
        let (fft, ifft) = (planner.plan_fft_forward(n), planner.plan_fft_inverse(n));
        let (fft_scratch, ifft_scratch) = (fft.make_scratch_vec(), ifft.make_scratch_vec());
        let (gb, gt) = params.smoothing(rate);
        let mut gate = Gate {
            channels: channels.max(1),
            n,
            hop,
            bins,
            // Periodic Hann (scipy's default `get_window("hann", n)`).
            window: (0..n).map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos()) as f32).collect(),
            fft,
            ifft,
            freq_smooth: Smoother::new(gb, bins),
            time_kernel: triangle(gt),
            profile: None,
            learning: None,
            learn_frames: ((params.time_constant_s * rate as f64 / hop as f64).ceil() as usize).max(1),
            alpha: (1.0 - (-(hop as f64) / (rate as f64 * params.time_constant_s)).exp()) as f32,
            input: vec![vec![0.0; n / 2]; channels.max(1)],
            input_from: 0,
            next: 0,
            pending: VecDeque::new(),
            pending_from: 0,
            history: VecDeque::new(),
            acc: vec![Vec::new(); channels.max(1)],
            wsum: Vec::new(),
            out_pos: 0,
            total_in: 0,
            frame: vec![0.0; n],
            spec: vec![Complex::new(0.0, 0.0); bins],
            mono: vec![Complex::new(0.0, 0.0); bins],
            fft_scratch,
            ifft_scratch,
            mono_power: Vec::with_capacity(bins),
            raw_mask: Vec::with_capacity(bins),
            mask: vec![0.0; bins],
            masked: vec![Complex::new(0.0, 0.0); bins],
            spare_spectra: Vec::new(),
            spare_masks: Vec::new(),
            params: params.clone(),
        };
        let n_std = params.n_std_thresh as f32;
        if let Some(clip) = &params.noise_clip {
            if clip.len() < n {
                return Err(NodeError::invalid_input(format!(
                    "{TYPE_NAME} noise_clip has {} samples, fewer than one STFT frame (n_fft = {n})",
                    clip.len()
                )));
            }
            let mut levels = gate.mono_levels(clip, 1);
            gate.profile = Some(Profile::of(levels.iter_mut().map(|l| &*l.with_db()), bins, n_std));
        } else if let Some(all) = profile_from {
            let mut levels = gate.mono_levels(all, gate.channels);
            gate.profile = Some(Profile::of_quietest(&mut levels, bins, n_std));
        } else {
            gate.learning = Some(Vec::new());
        }
        Ok(gate)
    }

    /// Output samples lag input samples by at most this many (plus up to one hop).
    pub fn latency(&self) -> usize {
        self.n + (self.time_kernel.len() / 2) * self.hop
    }

    /// Levels of the mono mix of every frame of `samples` (interleaved, `channels`), the frames
    /// laid out as the gate lays out a stream's.
    fn mono_levels(&mut self, samples: &[f32], channels: usize) -> Vec<Levels> {
        let frames = samples.len() / channels;
        let count = (frames + self.n / 2).div_ceil(self.hop);
        let inv = 1.0 / channels as f32;
        (0..count)
            .map(|k| {
                let start = (k * self.hop) as isize - (self.n / 2) as isize;
                // Frame samples [lo, hi) lie inside the signal; the rest is zero padding.
                let lo = ((-start).max(0) as usize).min(self.n);
                let hi = ((frames as isize - start).max(0) as usize).clamp(lo, self.n);
                self.frame[..lo].fill(0.0);
                self.frame[hi..].fill(0.0);
                let first = (start + lo as isize) as usize;
                let (frame, window) = (&mut self.frame[lo..hi], &self.window[lo..hi]);
                if channels == 1 {
                    // The mix of one channel is the channel (`x * 1.0`, exactly).
                    for ((v, &x), &w) in frame.iter_mut().zip(&samples[first..first + (hi - lo)]).zip(window) {
                        *v = x * w;
                    }
                } else {
                    let mixed = samples[first * channels..(first + hi - lo) * channels].chunks_exact(channels);
                    for ((v, f), &w) in frame.iter_mut().zip(mixed).zip(window) {
                        *v = f.iter().sum::<f32>() * inv * w;
                    }
                }
                let _ = self.fft.process_with_scratch(&mut self.frame, &mut self.spec, &mut self.fft_scratch);
                Levels::of(self.spec.iter().map(|c| c.norm_sqr()).collect())
            })
            .collect()
    }

    /// Pushes interleaved samples; returns the denoised samples now final (interleaved).
    pub fn push(&mut self, samples: &[f32]) -> Vec<f32> {
        let ch = self.channels;
        self.total_in += samples.len() / ch;
        for (c, buf) in self.input.iter_mut().enumerate() {
            if ch == 1 {
                buf.extend_from_slice(samples);
            } else {
                buf.extend(samples.iter().skip(c).step_by(ch));
            }
        }
        while self.input[0].len() - self.input_from >= self.n {
            self.analyse();
        }
        self.drop_consumed();
        self.drain(false)
    }

    /// Drops the consumed input samples.
    fn drop_consumed(&mut self) {
        let from = std::mem::take(&mut self.input_from);
        self.input.iter_mut().for_each(|b| drop(b.drain(..from)));
    }

    /// Ends the stream: the last frames, zero-padded, and every remaining sample.
    pub fn finish(&mut self) -> Vec<f32> {
        // Frames start every hop until one starts at or after the last sample.
        while (self.next * self.hop) < self.total_in + self.n / 2 {
            for buf in &mut self.input {
                buf.resize(self.input_from + self.n, 0.0);
            }
            self.analyse();
        }
        while !self.pending.is_empty() {
            self.finish_frame();
        }
        self.drain(true)
    }

    /// Analyses the next frame (the first `n` samples of `input`) and finishes every frame whose
    /// time-smoothing window is now complete.
    fn analyse(&mut self) {
        let (n, bins) = (self.n, self.bins);
        self.mono.iter_mut().for_each(|c| *c = Complex::new(0.0, 0.0));
        let mut spectra = Vec::with_capacity(self.channels);
        for c in 0..self.channels {
            for ((f, &x), &w) in self.frame.iter_mut().zip(&self.input[c][self.input_from..self.input_from + n]).zip(&self.window) {
                *f = x * w;
            }
            let _ = self.fft.process_with_scratch(&mut self.frame, &mut self.spec, &mut self.fft_scratch);
            for (m, s) in self.mono.iter_mut().zip(&self.spec) {
                *m += s;
            }
            let mut kept = self.spare_spectra.pop().unwrap_or_default();
            kept.clear();
            kept.extend_from_slice(&self.spec);
            spectra.push(kept);
        }
        self.input_from += self.hop;
        self.next += 1;
        // The mono powers feed only a profile being learned or a running estimate.
        if self.learning.is_some() || self.params.mode == Mode::Nonstationary {
            let inv = 1.0 / self.channels as f32;
            let mut mono = std::mem::take(&mut self.mono_power);
            mono.clear();
            mono.extend(self.mono.iter().map(|c| (c * inv).norm_sqr()));
            self.observe(&mono);
            debug_assert_eq!(bins, mono.len());
            self.mono_power = mono;
        }
        let profile = self.profile.as_ref().expect("observe sets a profile");
        let p = self.params.prop_decrease as f32;
        let raw = &mut self.raw_mask;
        let masks = spectra
            .iter()
            .map(|s| {
                raw.clear();
                raw.extend(s.iter().zip(&profile.threshold).map(|(x, &t)| if x.norm_sqr() > t { 1.0 } else { 1.0 - p }));
                let mut mask = self.spare_masks.pop().unwrap_or_default();
                self.freq_smooth.smooth(&raw[..], &mut mask);
                mask
            })
            .collect();
        self.pending.push_back(Pending { spectra, masks });
        let look_ahead = self.time_kernel.len() / 2;
        while self.pending.len() > look_ahead {
            self.finish_frame();
        }
    }

    /// Updates the noise profile with a frame's mono powers: while a stream learns its profile,
    /// the quietest of its frames so far; then, in nonstationary mode, the running estimate.
    fn observe(&mut self, mono: &[f32]) {
        let n_std = self.params.n_std_thresh as f32;
        if let Some(learning) = &mut self.learning {
            let mut levels = Levels::of(mono.to_vec());
            // Every frame may be among the quietest later: its dB now, once.
            levels.with_db();
            learning.push(levels);
            self.profile = Some(Profile::of_quietest(learning, self.bins, n_std));
            if learning.len() >= self.learn_frames {
                self.learning = None;
            }
            return;
        }
        if self.params.mode == Mode::Nonstationary {
            let a = self.alpha;
            let profile = self.profile.as_mut().expect("known unless learning");
            for (((m, v), t), &x) in profile.mean.iter_mut().zip(&mut profile.var).zip(&profile.threshold).zip(mono) {
                let rate = if x > *t { a / RISE_SLOWDOWN } else { a };
                let d = db(x) - *m;
                *m += rate * d;
                *v += rate * (d * d - *v);
            }
            profile.update_threshold(n_std);
        }
    }

    /// Time-smooths the oldest pending frame's mask over the frames around it (the kernel cut
    /// where there are none: the stream's start, or its end), applies it and overlap-adds it.
    fn finish_frame(&mut self) {
        let look_ahead = self.time_kernel.len() / 2;
        let Some(current) = self.pending.front() else { return };
        let mut frames: Vec<&Vec<Vec<f32>>> = Vec::with_capacity(self.time_kernel.len());
        let mut weights: Vec<f32> = Vec::with_capacity(self.time_kernel.len());
        for (j, w) in self.time_kernel.iter().enumerate() {
            let offset = j as isize - look_ahead as isize;
            let m = if offset < 0 {
                let back = (-offset) as usize;
                (back <= self.history.len()).then(|| &self.history[self.history.len() - back])
            } else {
                self.pending.get(offset as usize).map(|p| &p.masks)
            };
            if let Some(m) = m {
                frames.push(m);
                weights.push(*w);
            }
        }
        let total: f32 = weights.iter().sum();
        let ch = self.channels;
        let mask = &mut self.mask;
        let start = (self.pending_from * self.hop) as isize - (self.n / 2) as isize;
        let out_start = start - self.out_pos as isize;
        // The accumulators cover the frame (samples before 0 are dropped): frame sample
        // `skip + i` lands on accumulator index `from + i`.
        let need = (out_start + self.n as isize).max(0) as usize;
        let skip = ((-out_start).max(0) as usize).min(self.n);
        let from = need - (self.n - skip);
        for c in 0..ch {
            mask.iter_mut().for_each(|v| *v = 0.0);
            for (m, &w) in frames.iter().zip(&weights) {
                for (v, &x) in mask.iter_mut().zip(&m[c]) {
                    *v += w * x;
                }
            }
            let spec = &mut self.masked;
            for ((o, s), &m) in spec.iter_mut().zip(&current.spectra[c]).zip(mask.iter()) {
                *o = s * (m / total);
            }
            // The inverse transform needs real DC and Nyquist bins.
            spec[0].im = 0.0;
            spec[self.bins - 1].im = 0.0;
            let _ = self.ifft.process_with_scratch(spec, &mut self.frame, &mut self.ifft_scratch);
            let scale = 1.0 / self.n as f32;
            let acc = &mut self.acc[c];
            if acc.len() < need {
                acc.resize(need, 0.0);
            }
            for ((a, &y), &w) in acc[from..need].iter_mut().zip(&self.frame[skip..]).zip(&self.window[skip..]) {
                *a += y * scale * w;
            }
        }
        if self.wsum.len() < need {
            self.wsum.resize(need, 0.0);
        }
        for (a, &w) in self.wsum[from..need].iter_mut().zip(&self.window[skip..]) {
            *a += w * w;
        }
        let done = self.pending.pop_front().expect("front exists");
        self.spare_spectra.extend(done.spectra);
        self.history.push_back(done.masks);
        if self.history.len() > look_ahead {
            if let Some(old) = self.history.pop_front() {
                self.spare_masks.extend(old);
            }
        }
        self.pending_from += 1;
    }

    /// Takes the output samples no later frame can change (all of them at the end).
    fn drain(&mut self, end: bool) -> Vec<f32> {
        // Frame `pending_from` (the next to be overlap-added) starts at this sample.
        let next_start = ((self.pending_from * self.hop) as isize - (self.n / 2) as isize).max(0) as usize;
        let limit = if end { self.total_in } else { next_start.min(self.total_in) };
        let count = limit.saturating_sub(self.out_pos);
        let ch = self.channels;
        let mut out = vec![0f32; count * ch];
        for (c, acc) in self.acc.iter_mut().enumerate() {
            for (i, (y, w)) in acc.drain(..count.min(acc.len())).zip(self.wsum.iter()).enumerate() {
                out[i * ch + c] = if *w > 1e-8 { y / w } else { 0.0 };
            }
        }
        self.wsum.drain(..count.min(self.wsum.len()));
        self.out_pos += count;
        out
    }
}

/// Rows of a fixed length smoothed with the triangular kernel of half-width `h` ([`triangle`]);
/// near the ends the kernel is cut and renormalised. The triangle of half-width `h` is a box of
/// `h + 1` ones convolved with itself, so the sums are two running sums (in f64: no drift) of the
/// zero-padded row, divided by the same sums of a row of ones, computed once here: O(1) per bin
/// whatever the width. (Each call once recomputed those and read every value through a `dyn Fn`,
/// a sixth of the node's time.)
struct Smoother {
    h: usize,
    /// The kernel's sums over a row of ones: the normalisation at each bin.
    weights: Vec<f64>,
    first: Vec<f64>,
    sums: Vec<f64>,
}

impl Smoother {
    fn new(h: usize, len: usize) -> Smoother {
        let mut s = Smoother { h, weights: Vec::new(), first: Vec::new(), sums: Vec::new() };
        if h > 0 {
            s.triangle_sums(&vec![1.0f64; len]);
            s.weights = std::mem::take(&mut s.sums);
        }
        s
    }

    /// Into `self.sums`: for each i, the triangle's weighted sum of `x` around i. Each running
    /// sum is a prefix sum (one add per value on the serial chain) and differences of it.
    fn triangle_sums<T: Copy + Into<f64>>(&mut self, x: &[T]) {
        let (h, n) = (self.h, x.len());
        // prefix[j] = x[0] + ... + x[j - 1] of the zero-padded row, j in 0..=n + h.
        let prefix = &mut self.first;
        prefix.clear();
        prefix.push(0.0);
        let mut run = 0.0;
        for j in 0..n + h {
            run += if j < n { x[j].into() } else { 0.0 };
            prefix.push(run);
        }
        // Box sums over [j - h, j] for j in 0..n + h, then their prefix sums: the triangle at i
        // (sums over [i - h, i + h]) is the box sums over [j - h, j] for j in [i, i + h].
        let boxed = |j: usize| prefix[j + 1] - prefix[(j + 1).saturating_sub(h + 1)];
        self.sums.clear();
        self.sums.push(0.0);
        let mut run = 0.0;
        for j in 0..n + h {
            run += boxed(j);
            self.sums.push(run);
        }
        // sums[j] now holds the prefix of the box sums; the triangle at i is sums[i + h + 1] - sums[i].
        for i in 0..n {
            self.sums[i] = self.sums[i + h + 1] - self.sums[i];
        }
        self.sums.truncate(n);
    }

    /// `x` smoothed into `out` (`x` has the length given to [`Smoother::new`]).
    fn smooth(&mut self, x: &[f32], out: &mut Vec<f32>) {
        out.clear();
        if self.h == 0 || x.is_empty() {
            out.extend_from_slice(x);
            return;
        }
        self.triangle_sums(x);
        out.extend(self.sums.iter().zip(&self.weights).map(|(s, w)| (s / w) as f32));
    }
}

struct DenoiseNode {
    params: DenoiseParams,
    stream: Option<(u32, Gate)>,
}

impl DenoiseNode {
    fn samples(audio: AudioBuffer) -> Result<(u32, u16, Vec<f32>), NodeError> {
        let (rate, channels) = (audio.sample_rate, audio.channels);
        let samples = into_f32(audio.samples);
        check_finite(TYPE_NAME, &samples)?;
        Ok((rate, channels, samples))
    }

    fn audio(samples: Vec<f32>, rate: u32, channels: u16) -> Payload {
        Payload::Audio(AudioBuffer { samples: Samples::F32(samples), sample_rate: rate, channels })
    }

    fn chunk(&mut self, audio: AudioBuffer) -> Result<Payload, NodeError> {
        if let Some((rate, gate)) = &self.stream {
            if (*rate, gate.channels) != (audio.sample_rate, audio.channels.max(1) as usize) {
                return Err(NodeError::invalid_input(format!(
                    "this stream started with audio at {rate} Hz and {} channel(s); a chunk at {} Hz with {} channel(s) \
                     cannot continue it",
                    gate.channels, audio.sample_rate, audio.channels
                )));
            }
        }
        let (rate, channels, samples) = Self::samples(audio)?;
        if self.stream.is_none() {
            self.stream = Some((rate, Gate::new(&self.params, rate, channels.max(1) as usize, None)?));
        }
        let (_, gate) = self.stream.as_mut().expect("set above");
        Ok(Self::audio(gate.push(&samples), rate, channels))
    }
}

impl Node for DenoiseNode {
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        let (rate, channels, samples) = Self::samples(expect_audio(inputs.one()?)?)?;
        let mut gate = Gate::new(&self.params, rate, channels.max(1) as usize, Some(&samples))?;
        let mut out = gate.push(&samples);
        out.extend(gate.finish());
        Ok(Self::audio(out, rate, channels))
    }

    fn push(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        self.chunk(expect_audio(inputs.one()?)?)
    }

    fn finish(&mut self, inputs: Option<Inputs>) -> Result<Option<Payload>, NodeError> {
        let mut head = match inputs {
            Some(i) => Some(self.chunk(expect_audio(i.one()?)?)?),
            None => None,
        };
        let Some((rate, mut gate)) = self.stream.take() else { return Ok(head) };
        let tail = gate.finish();
        let channels = gate.channels as u16;
        match &mut head {
            Some(Payload::Audio(a)) => {
                if let Samples::F32(v) = &mut a.samples {
                    v.extend(tail);
                }
            }
            _ => head = Some(Self::audio(tail, rate, channels)),
        }
        Ok(head)
    }
}

pub fn node_type() -> NodeType {
    NodeType {
        params: DenoiseParams::specs(),
        stateful: true,
        ..NodeType::new(
            TYPE_NAME,
            "Spectral-gating noise reduction: STFT bins below the noise profile's mean + n_std_thresh std (dB) \
             are attenuated by prop_decrease, with the mask smoothed over time and frequency; the profile from \
             noise_clip or the quietest frames, fixed (stationary) or running (nonstationary). f32/i16/i32 in, \
             f32 out, same length; streams lag by n_fft + (time_mask_smooth_ms in hops) * hop samples.",
            |cfg| Ok(Box::new(DenoiseNode { params: DenoiseParams::from_params(cfg.params)?, stream: None })),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The running-sum smoothing equals the kernel applied directly, cut and renormalised at the
    /// ends, for widths from none to wider than the row.
    #[test]
    fn smooth_equals_the_direct_kernel() {
        let x: Vec<f32> = (0..37).map(|i| if (i * 7) % 5 < 2 { 1.0 } else { 0.25 }).collect();
        for h in [0, 1, 3, 16, 40] {
            let k = triangle(h);
            let mut got = Vec::new();
            Smoother::new(h, x.len()).smooth(&x, &mut got);
            for i in 0..x.len() {
                let (mut s, mut w) = (0f64, 0f64);
                for (j, &kj) in k.iter().enumerate() {
                    let t = i as isize + j as isize - h as isize;
                    if t >= 0 && (t as usize) < x.len() {
                        s += kj as f64 * x[t as usize] as f64;
                        w += kj as f64;
                    }
                }
                assert!((got[i] as f64 - s / w).abs() < 1e-6, "h {h} i {i}: {} vs {}", got[i], s / w);
            }
        }
    }
}
