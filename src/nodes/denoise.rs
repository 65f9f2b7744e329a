//! `DenoiseNode`: spectral-gating noise reduction. Each STFT bin is kept when its level is above
//! the noise profile's mean + `n_std_thresh` standard deviations (in dB) for that frequency, and
//! attenuated by `prop_decrease` otherwise; the mask is smoothed over frequency and time with the
//! triangular kernel noisereduce uses (by default, [`Smoothing::Preserve`], never below the frame's
//! own 0/1 mask, so a kept bin stays kept), and the signal is rebuilt by weighted overlap-add.
//!
//! The noise profile comes from `noise_clip` when given, otherwise from the quietest tenth of the
//! frames (of the whole buffer; in a stream, of its first `time_constant_s`). `stationary` keeps
//! the profile; `nonstationary` follows the noise with a running per-bin mean and variance that
//! learn from the bins the gate calls noise. [`Gate`] processes frames in order and carries
//! everything across a stream's chunks; its latency is `n_fft + n_grad_time * hop` samples (see
//! [`Gate::latency`]). Every param lives in [`DenoiseParams`]. `python/remotemedia/_pure/denoise.py`
//! is the numpy twin. Params, algorithm, latency and measured quality: `docs/nodes.md#denoisenode`.

use std::collections::VecDeque;

use realfft::num_complex::Complex;
use serde_json::Value;

use super::{check_finite, expect_audio, param_f64, param_i64, param_str, Inputs, Node, NodeType, ParamKind, ParamSpec, Params};
use crate::data::{AudioBuffer, Payload, Samples};
use crate::error::NodeError;
use crate::nodes::format::into_f32;
use crate::nodes::spectral::log10_floored;

mod kernels;
mod real_fft;

use kernels::{Level, Smoother};
use real_fft::RealFft;

pub const TYPE_NAME: &str = "DenoiseNode";

/// How the noise profile evolves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Fixed profile: steady noise (hiss, hum, fans).
    Stationary,
    /// Running per-bin estimate with time constant `time_constant_s`: noise whose level changes.
    Nonstationary,
}

/// How the mask's smoothing treats the bins the threshold kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Smoothing {
    /// The smoothed mask, but never below the frame's raw mask: a kept bin stays kept (a
    /// harmonic between gated bins is not averaged down with them), the gated ones are softened.
    Preserve,
    /// noisereduce's: the plain weighted average of the raw masks around the bin.
    Average,
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
    pub smoothing: Smoothing,
    /// Noise-only samples (mono, at the audio's rate).
    pub noise_clip: Option<Vec<f32>>,
}

impl DenoiseParams {
    pub const MODES: &'static [&'static str] = &["stationary", "nonstationary"];
    pub const SMOOTHINGS: &'static [&'static str] = &["preserve", "average"];
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
            ParamSpec::with_default(
                "smoothing",
                ParamKind::Choice(Self::SMOOTHINGS),
                Value::from("preserve"),
                "preserve: the smoothed mask never falls below the bin's own 0/1 gate, so a bin above the threshold \
                 passes whole and smoothing only softens the gating (at 20 dB SNR it raises STOI and segmental SNR, \
                 which average lowers); average: noisereduce's plain weighted average (kept bins between gated ones \
                 are lowered; higher PESQ)",
            ),
        ]
    }

    pub fn from_params(params: &Params) -> Result<DenoiseParams, NodeError> {
        let mode = match param_str(params, "mode")?.unwrap_or("stationary") {
            "nonstationary" => Mode::Nonstationary,
            _ => Mode::Stationary,
        };
        let smoothing = match param_str(params, "smoothing")?.unwrap_or("preserve") {
            "average" => Smoothing::Average,
            _ => Smoothing::Preserve,
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
            smoothing,
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
/// A mono whole buffer keeps the spectra of its profile pass for the gate (one forward
/// transform per frame instead of two) up to this many complex values, 64 MiB: about 4 minutes
/// at 16 kHz with the default `n_fft`. Longer buffers are transformed again.
const MAX_KEPT_SPECTRA: usize = 1 << 23;

/// Buffers a node keeps from one whole-buffer call to the next are let go above this many values
/// (16 MiB of kept spectra: about a minute at 16 kHz), so an idle node does not hold a long
/// clip's memory.
const MAX_REUSED: usize = 1 << 21;

/// What one whole-buffer call leaves to the next on the same node ([`Gate::whole_reusing`]): the
/// planned transforms and the memory of the kept spectra and window sums, so a node run on clip
/// after clip neither plans again nor has fresh pages zeroed for them.
#[derive(Default)]
pub struct Reuse {
    fft: Option<RealFft>,
    kept: Vec<Complex<f32>>,
    kept_power: Vec<f32>,
    wsum: Vec<f32>,
}

/// `noisereduce`'s triangular kernel of half-width `n`: `[1, 2, ..., n+1, ..., 2, 1] / (n + 1)`.
fn triangle(n: usize) -> Vec<f32> {
    (0..2 * n + 1).map(|i| (n + 1 - i.abs_diff(n)) as f32 / (n + 1) as f32).collect()
}

fn db(power: f32) -> f32 {
    10.0 * (power + EPS_POWER).log10()
}

/// [`db`] of every power, appended to `out`, with the vectorised logarithm (within 2e-7 of
/// libm's relatively: the profile's levels, a tenth of the frames, took 6 % of the node in libm).
fn extend_db(out: &mut Vec<f32>, power: &[f32]) {
    let start = out.len();
    out.extend(power.iter().map(|&p| p + EPS_POWER));
    let row = &mut out[start..];
    log10_floored(row, EPS_POWER);
    row.iter_mut().for_each(|v| *v *= 10.0);
}

/// The frames a profile is estimated from: the quietest by total power ([`QUIET_FRACTION`], at
/// least [`MIN_QUIET_FRAMES`]), quietest first; ties keep frame order.
fn quietest(totals: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..totals.len()).collect();
    order.sort_by(|&a, &b| totals[a].total_cmp(&totals[b]).then(a.cmp(&b)));
    let take = ((totals.len() as f64 * QUIET_FRACTION).ceil() as usize).max(MIN_QUIET_FRAMES).min(totals.len());
    order.truncate(take);
    order
}

/// Per-bin noise statistics in dB and the linear power threshold they give.
#[derive(Clone, Debug)]
struct Profile {
    mean: Vec<f32>,
    var: Vec<f32>,
    threshold: Vec<f32>,
}

impl Profile {
    /// Mean and variance of every bin over `rows` (levels in dB).
    fn of<'a>(rows: impl Iterator<Item = &'a [f32]>, bins: usize, n_std: f32) -> Profile {
        let (mut sum, mut sq, mut n) = (vec![0f64; bins], vec![0f64; bins], 0usize);
        for row in rows {
            for ((s, q), &d) in sum.iter_mut().zip(&mut sq).zip(row) {
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

    fn update_threshold(&mut self, n_std: f32) {
        for ((t, m), v) in self.threshold.iter_mut().zip(&self.mean).zip(&self.var) {
            *t = 10f32.powf((m + n_std * v.sqrt()) / 10.0);
        }
    }
}

/// A stream's frames while it learns its profile: their levels in dB (frames × bins, flat) and
/// their total powers.
struct Learning {
    db: Vec<f32>,
    totals: Vec<f64>,
}

/// One analysed frame waiting for its time-smoothed mask: its spectra (none when the gate keeps
/// the whole buffer's), its mask so far and, with `Smoothing::Preserve`, its raw 0/1 mask (the
/// frequency smoothing's row is overwritten by the frames analysed before this one finishes),
/// per channel.
struct Pending {
    spectra: Vec<Vec<Complex<f32>>>,
    masks: Vec<Vec<f32>>,
    raw: Vec<Vec<f32>>,
}

/// The gate for one stream of interleaved audio: frames in, denoised samples out, in order.
pub struct Gate {
    params: DenoiseParams,
    channels: usize,
    n: usize,
    hop: usize,
    bins: usize,
    window: Vec<f32>,
    /// The overlap-add's factors: the window over `n` (the inverse transform's scale, a power
    /// of two, folded in exactly) and the window squared.
    synth: Vec<f32>,
    window_sq: Vec<f32>,
    fft: RealFft,
    level: Level,
    /// The mask's smoothing over frequency.
    freq_smooth: Smoother,
    time_kernel: Vec<f32>,
    /// The noise profile: known (noise clip, or the whole buffer's quietest frames) or being
    /// learned; `None` only before a stream's first frame.
    profile: Option<Profile>,
    /// While a stream learns its profile: its frames so far.
    learning: Option<Learning>,
    learn_frames: usize,
    alpha: f32,
    /// A mono whole buffer's spectra (frames × bins, flat) from the profile pass, which the gate
    /// reads instead of transforming the same frames again; empty otherwise (then `input`).
    kept: Vec<Complex<f32>>,
    /// Their powers, likewise: the mask compares these with the threshold.
    kept_power: Vec<f32>,
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
    /// (its spectra and masks): the frame, the mono spectrum and powers, the time-smoothed mask
    /// and the masked spectrum.
    frame: Vec<f32>,
    spec: Vec<Complex<f32>>,
    mono: Vec<Complex<f32>>,
    mono_power: Vec<f32>,
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
        Gate::build(params, rate, channels, profile_from, None)
    }

    /// A whole buffer (interleaved, `channels`) denoised: the same as a gate built with
    /// `profile_from: Some(samples)`, pushed `samples` and finished, with the profile pass's
    /// spectra kept for the gate when the audio is mono (see [`MAX_KEPT_SPECTRA`]) and the output
    /// normalised in place.
    pub fn whole(params: &DenoiseParams, rate: u32, channels: usize, samples: &[f32]) -> Result<Vec<f32>, NodeError> {
        Gate::whole_reusing(params, rate, channels, samples, &mut Reuse::default())
    }

    /// [`Gate::whole`] with what the last call on `reuse` left (and leaving its own there).
    pub fn whole_reusing(params: &DenoiseParams, rate: u32, channels: usize, samples: &[f32], reuse: &mut Reuse) -> Result<Vec<f32>, NodeError> {
        let mut gate = Gate::build(params, rate, channels, Some(samples), Some(reuse))?;
        let frames = samples.len() / gate.channels;
        for acc in &mut gate.acc {
            acc.reserve_exact(frames + gate.n);
        }
        gate.wsum.reserve_exact(frames + gate.n);
        gate.feed(samples);
        let out = gate.finish();
        let small = |len: usize| len <= MAX_REUSED;
        reuse.fft = Some(gate.fft);
        reuse.kept = Some(gate.kept).filter(|v| small(v.capacity())).unwrap_or_default();
        reuse.kept_power = Some(gate.kept_power).filter(|v| small(v.capacity())).unwrap_or_default();
        reuse.wsum = Some(gate.wsum).filter(|v| small(v.capacity())).unwrap_or_default();
        Ok(out)
    }

    /// `reuse`: a whole buffer's call (its spectra may be kept); `None`: a stream.
    fn build(params: &DenoiseParams, rate: u32, channels: usize, profile_from: Option<&[f32]>, reuse: Option<&mut Reuse>) -> Result<Gate, NodeError> {
        let keep = reuse.is_some();
        let mut reuse = reuse.map(std::mem::take).unwrap_or_default();
        let n = params.n_fft;
        let hop = params.hop();
        let bins = n / 2 + 1;
        let (gb, gt) = params.smoothing(rate);
        // Periodic Hann (scipy's default `get_window("hann", n)`).
        let window: Vec<f32> = (0..n).map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos()) as f32).collect();
        reuse.kept.clear();
        reuse.kept_power.clear();
        reuse.wsum.clear();
        let mut gate = Gate {
            channels: channels.max(1),
            n,
            hop,
            bins,
            synth: window.iter().map(|&w| w * (1.0 / n as f32)).collect(),
            window_sq: window.iter().map(|&w| w * w).collect(),
            window,
            fft: reuse.fft.take().filter(|f| f.size() == n).unwrap_or_else(|| RealFft::new(n)),
            level: Level::detect(),
            freq_smooth: Smoother::new(gb, bins, params.prop_decrease as f32),
            time_kernel: triangle(gt),
            profile: None,
            learning: None,
            learn_frames: ((params.time_constant_s * rate as f64 / hop as f64).ceil() as usize).max(1),
            alpha: (1.0 - (-(hop as f64) / (rate as f64 * params.time_constant_s)).exp()) as f32,
            kept: std::mem::take(&mut reuse.kept),
            kept_power: std::mem::take(&mut reuse.kept_power),
            input: Vec::new(),
            input_from: 0,
            next: 0,
            pending: VecDeque::new(),
            pending_from: 0,
            history: VecDeque::new(),
            acc: vec![Vec::new(); channels.max(1)],
            wsum: std::mem::take(&mut reuse.wsum),
            out_pos: 0,
            total_in: 0,
            frame: vec![0.0; n],
            spec: vec![Complex::new(0.0, 0.0); bins],
            mono: vec![Complex::new(0.0, 0.0); bins],
            mono_power: vec![0.0; bins],
            mask: vec![0.0; bins],
            masked: vec![Complex::new(0.0, 0.0); bins],
            spare_spectra: Vec::new(),
            spare_masks: Vec::new(),
            params: params.clone(),
        };
        let n_std = params.n_std_thresh as f32;
        let level = gate.level;
        if let Some(clip) = &params.noise_clip {
            if clip.len() < n {
                return Err(NodeError::invalid_input(format!(
                    "{TYPE_NAME} noise_clip has {} samples, fewer than one STFT frame (n_fft = {n})",
                    clip.len()
                )));
            }
            let mut levels = Vec::new();
            for k in 0..gate.frame_count(clip.len()) {
                gate.mono_spectrum(clip, 1, k);
                kernels::powers(level, &gate.spec, &mut gate.mono_power);
                extend_db(&mut levels, &gate.mono_power);
            }
            gate.profile = Some(Profile::of(levels.chunks_exact(bins), bins, n_std));
        } else if let Some(all) = profile_from {
            let ch = gate.channels;
            let count = gate.frame_count(all.len() / ch);
            let keep = keep && ch == 1 && count * bins <= MAX_KEPT_SPECTRA;
            if keep {
                gate.kept.reserve_exact(count * bins);
                gate.kept_power.reserve_exact(count * bins);
            }
            let mut totals = Vec::with_capacity(count);
            for k in 0..count {
                gate.mono_spectrum(all, ch, k);
                totals.push(kernels::powers(level, &gate.spec, &mut gate.mono_power));
                if keep {
                    gate.kept.extend_from_slice(&gate.spec);
                    gate.kept_power.extend_from_slice(&gate.mono_power);
                }
            }
            // The levels of the quietest frames only (a tenth): their kept spectra, or their
            // frames transformed again.
            let rows = quietest(&totals);
            let mut levels = Vec::with_capacity(rows.len() * bins);
            for &k in &rows {
                let power = if keep {
                    &gate.kept_power[k * bins..(k + 1) * bins]
                } else {
                    gate.mono_spectrum(all, ch, k);
                    kernels::powers(level, &gate.spec, &mut gate.mono_power);
                    &gate.mono_power[..]
                };
                extend_db(&mut levels, power);
            }
            gate.profile = Some(Profile::of(levels.chunks_exact(bins), bins, n_std));
        } else {
            gate.learning = Some(Learning { db: Vec::new(), totals: Vec::new() });
        }
        if gate.kept.is_empty() {
            gate.input = vec![vec![0.0; n / 2]; gate.channels];
            gate.kept_power.clear();
        }
        Ok(gate)
    }

    /// Output samples lag input samples by at most this many (plus up to one hop).
    pub fn latency(&self) -> usize {
        self.n + (self.time_kernel.len() / 2) * self.hop
    }

    /// How many frames a buffer of `frames` samples per channel has: they start every hop from
    /// `-n / 2` until one starts at or after its last sample.
    fn frame_count(&self, frames: usize) -> usize {
        (frames + self.n / 2).div_ceil(self.hop)
    }

    /// Into `self.spec`: the spectrum of frame `k` of the mono mix of `samples` (interleaved,
    /// `channels`), the frame laid out as the gate lays out a stream's.
    fn mono_spectrum(&mut self, samples: &[f32], channels: usize, k: usize) {
        let frames = samples.len() / channels;
        let inv = 1.0 / channels as f32;
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
            kernels::windowed(self.level, frame, &samples[first..first + (hi - lo)], window);
        } else {
            let mixed = samples[first * channels..(first + hi - lo) * channels].chunks_exact(channels);
            for ((v, f), &w) in frame.iter_mut().zip(mixed).zip(window) {
                *v = f.iter().sum::<f32>() * inv * w;
            }
        }
        self.fft.forward(self.level, &mut self.frame, &mut self.spec);
    }

    /// Pushes interleaved samples; returns the denoised samples now final (interleaved).
    pub fn push(&mut self, samples: &[f32]) -> Vec<f32> {
        self.feed(samples);
        self.drain(false)
    }

    /// Takes interleaved samples and analyses every frame they complete.
    fn feed(&mut self, samples: &[f32]) {
        let ch = self.channels;
        self.total_in += samples.len() / ch;
        if self.kept.is_empty() {
            for (c, buf) in self.input.iter_mut().enumerate() {
                if ch == 1 {
                    buf.extend_from_slice(samples);
                } else {
                    buf.extend(samples.iter().skip(c).step_by(ch));
                }
            }
        }
        // Frame `next` ends at sample `next * hop + n / 2`.
        while self.next * self.hop + self.n / 2 <= self.total_in {
            self.analyse();
        }
        self.drop_consumed();
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

    /// Analyses the next frame (the first `n` samples of `input`, or its kept spectrum) and
    /// finishes every frame whose time-smoothing window is now complete.
    fn analyse(&mut self) {
        let (n, bins, k, level) = (self.n, self.bins, self.next, self.level);
        let kept = !self.kept.is_empty();
        // The mono spectrum feeds only a profile being learned or a running estimate.
        let needs_mono = self.learning.is_some() || self.params.mode == Mode::Nonstationary;
        let mut spectra = Vec::new();
        if !kept {
            spectra.reserve(self.channels);
            if needs_mono {
                self.mono.fill(Complex::new(0.0, 0.0));
            }
            for c in 0..self.channels {
                kernels::windowed(level, &mut self.frame, &self.input[c][self.input_from..self.input_from + n], &self.window);
                let mut kept = self.spare_spectra.pop().unwrap_or_default();
                kept.resize(bins, Complex::new(0.0, 0.0));
                self.fft.forward(level, &mut self.frame, &mut kept);
                if needs_mono {
                    for (m, s) in self.mono.iter_mut().zip(&kept) {
                        *m += s;
                    }
                }
                spectra.push(kept);
            }
            self.input_from += self.hop;
        }
        self.next += 1;
        if needs_mono {
            let mut mono = std::mem::take(&mut self.mono_power);
            let total = if kept {
                // (The total feeds only a profile being learned: never with kept spectra.)
                mono.copy_from_slice(&self.kept_power[k * bins..(k + 1) * bins]);
                0.0
            } else {
                if self.channels > 1 {
                    let inv = 1.0 / self.channels as f32;
                    self.mono.iter_mut().for_each(|c| *c *= inv);
                }
                kernels::powers(level, &self.mono, &mut mono)
            };
            self.observe(&mono, total);
            self.mono_power = mono;
        }
        let profile = self.profile.as_ref().expect("observe sets a profile");
        let mut masks = Vec::with_capacity(self.channels);
        let preserve = self.params.smoothing == Smoothing::Preserve;
        let mut raw = Vec::with_capacity(if preserve { self.channels } else { 0 });
        for c in 0..self.channels {
            if kept {
                kernels::above_power(level, &self.kept_power[k * bins..(k + 1) * bins], &profile.threshold, self.freq_smooth.row_mut());
            } else {
                kernels::above(level, &spectra[c], &profile.threshold, self.freq_smooth.row_mut());
            }
            if preserve {
                let mut row = self.spare_masks.pop().unwrap_or_default();
                row.clear();
                row.extend_from_slice(self.freq_smooth.row_mut());
                raw.push(row);
            }
            let mut mask = self.spare_masks.pop().unwrap_or_default();
            self.freq_smooth.smooth(level, &mut mask);
            masks.push(mask);
        }
        self.pending.push_back(Pending { spectra, masks, raw });
        let look_ahead = self.time_kernel.len() / 2;
        while self.pending.len() > look_ahead {
            self.finish_frame();
        }
    }

    /// Updates the noise profile with a frame's mono powers and their total: while a stream
    /// learns its profile, the quietest of its frames so far; then, in nonstationary mode, the
    /// running estimate.
    fn observe(&mut self, mono: &[f32], total: f64) {
        let n_std = self.params.n_std_thresh as f32;
        let bins = self.bins;
        if let Some(learning) = &mut self.learning {
            // Every frame may be among the quietest later: its dB now, once.
            extend_db(&mut learning.db, mono);
            learning.totals.push(total);
            let rows = quietest(&learning.totals);
            self.profile = Some(Profile::of(rows.iter().map(|&i| &learning.db[i * bins..(i + 1) * bins]), bins, n_std));
            if learning.totals.len() >= self.learn_frames {
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
        if self.pending.is_empty() {
            return;
        }
        let (bins, k, level) = (self.bins, self.pending_from, self.level);
        // The masks of frame `k + j - look_ahead`, where it exists.
        let (history, pending) = (&self.history, &self.pending);
        let masks_at = |j: usize| -> Option<&Vec<Vec<f32>>> {
            if j < look_ahead {
                let back = look_ahead - j;
                (back <= history.len()).then(|| &history[history.len() - back])
            } else {
                pending.get(j - look_ahead).map(|p| &p.masks)
            }
        };
        let total: f32 = self.time_kernel.iter().enumerate().filter(|&(j, _)| masks_at(j).is_some()).map(|(_, w)| w).sum();
        let ch = self.channels;
        let start = (k * self.hop) as isize - (self.n / 2) as isize;
        let out_start = start - self.out_pos as isize;
        // The accumulators cover the frame (samples before 0 are dropped): frame sample
        // `skip + i` lands on accumulator index `from + i`.
        let need = (out_start + self.n as isize).max(0) as usize;
        let skip = ((-out_start).max(0) as usize).min(self.n);
        let from = need - (self.n - skip);
        for c in 0..ch {
            // The weighted sum of the masks present, two rows a pass.
            let (mut held, mut started): (Option<(f32, &[f32])>, bool) = (None, false);
            for (j, &w) in self.time_kernel.iter().enumerate() {
                let Some(m) = masks_at(j) else { continue };
                match held.take() {
                    None => held = Some((w, &m[c])),
                    Some((a, x)) => {
                        kernels::two_scaled(level, &mut self.mask, a, x, w, &m[c], started);
                        started = true;
                    }
                }
            }
            if let Some((a, x)) = held {
                if started {
                    kernels::add_scaled(level, &mut self.mask, a, x);
                } else {
                    kernels::scaled(level, &mut self.mask, a, x);
                }
            }
            let spec = if self.kept.is_empty() { &pending[0].spectra[c][..] } else { &self.kept[k * bins..(k + 1) * bins] };
            match pending[0].raw.get(c) {
                // The max with the raw 0/1 mask folded into the gain: one more vector op a bin.
                Some(raw) => kernels::apply_keeping(level, spec, &self.mask, raw, 1.0 / total, &mut self.masked),
                None => kernels::apply(level, spec, &self.mask, 1.0 / total, &mut self.masked),
            }
            self.fft.inverse(level, &mut self.masked, &mut self.frame);
            let acc = &mut self.acc[c];
            if acc.len() < need {
                acc.resize(need, 0.0);
            }
            kernels::overlap_add(level, &mut acc[from..need], &self.frame[skip..], &self.synth[skip..]);
        }
        if self.wsum.len() < need {
            self.wsum.resize(need, 0.0);
        }
        kernels::add_scaled(level, &mut self.wsum[from..need], 1.0, &self.window_sq[skip..]);
        let done = self.pending.pop_front().expect("front exists");
        self.spare_spectra.extend(done.spectra);
        self.spare_masks.extend(done.raw);
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
        let (ch, level) = (self.channels, self.level);
        for acc in &mut self.acc {
            if acc.len() < count {
                acc.resize(count, 0.0);
            }
        }
        if self.wsum.len() < count {
            self.wsum.resize(count, 0.0);
        }
        self.out_pos += count;
        let out = if ch == 1 {
            let acc = &mut self.acc[0];
            let mut out = if end {
                // The accumulator is the output: no copy.
                let mut all = std::mem::take(acc);
                all.truncate(count);
                all
            } else {
                let part = acc[..count].to_vec();
                acc.drain(..count);
                part
            };
            kernels::normalise(level, &mut out, &self.wsum[..count]);
            out
        } else {
            let mut out = vec![0f32; count * ch];
            for (c, acc) in self.acc.iter_mut().enumerate() {
                kernels::normalise(level, &mut acc[..count], &self.wsum[..count]);
                for (o, y) in out.iter_mut().skip(c).step_by(ch).zip(acc.drain(..count)) {
                    *o = y;
                }
            }
            out
        };
        self.wsum.drain(..count);
        out
    }
}

struct DenoiseNode {
    params: DenoiseParams,
    stream: Option<(u32, Gate)>,
    reuse: Reuse,
}

impl DenoiseNode {
    fn samples(audio: AudioBuffer) -> Result<(u32, u16, Vec<f32>), NodeError> {
        let (rate, channels) = (audio.sample_rate, audio.channels);
        let samples = into_f32(audio.samples);
        check_finite(TYPE_NAME, &samples)?;
        Ok((rate, channels, samples))
    }

    fn audio(samples: Vec<f32>, rate: u32, channels: u16) -> Payload {
        Payload::Audio(AudioBuffer { samples: Samples::F32(samples.into()), sample_rate: rate, channels })
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
        let out = Gate::whole_reusing(&self.params, rate, channels.max(1) as usize, &samples, &mut self.reuse)?;
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
                    v.make_mut().extend(tail);
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
            |cfg| Ok(Box::new(DenoiseNode { params: DenoiseParams::from_params(cfg.params)?, stream: None, reuse: Reuse::default() })),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(n_fft: usize, mode: Mode) -> DenoiseParams {
        DenoiseParams {
            mode,
            n_fft,
            n_std_thresh: DenoiseParams::DEFAULT_N_STD,
            prop_decrease: 0.9,
            freq_mask_smooth_hz: DenoiseParams::DEFAULT_FREQ_SMOOTH_HZ,
            time_mask_smooth_ms: DenoiseParams::DEFAULT_TIME_SMOOTH_MS,
            time_constant_s: DenoiseParams::DEFAULT_TIME_CONSTANT_S,
            smoothing: Smoothing::Preserve,
            noise_clip: None,
        }
    }

    /// Bursts of a tone in a deterministic noise floor.
    fn noisy(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed | 1;
        (0..len)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let noise = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                let tone = if (i / 4000) % 2 == 1 { (i as f32 * 0.07).sin() * 0.4 } else { 0.0 };
                tone + noise * 0.05
            })
            .collect()
    }

    /// A whole mono buffer through the kept spectra equals the same buffer pushed through a gate
    /// that transforms every frame itself (the stream path), sample for sample.
    #[test]
    fn kept_spectra_give_the_streams_result() {
        for (mode, smoothing) in [(Mode::Stationary, Smoothing::Preserve), (Mode::Nonstationary, Smoothing::Preserve), (Mode::Stationary, Smoothing::Average)] {
            for n_fft in [256, 1024] {
                let (p, x) = (DenoiseParams { smoothing, ..params(n_fft, mode) }, noisy(37_123, 7));
                let whole = Gate::whole(&p, 16000, 1, &x).unwrap();
                let mut gate = Gate::new(&p, 16000, 1, Some(&x)).unwrap();
                let mut pushed = gate.push(&x);
                pushed.extend(gate.finish());
                assert_eq!(whole, pushed, "{mode:?} {smoothing:?} n_fft {n_fft}");
            }
        }
    }

    /// What a call leaves for the next (plans, buffers) changes nothing: calls of other lengths,
    /// sizes and channel counts in a row give what fresh calls give.
    #[test]
    fn reused_buffers_change_nothing() {
        let mut reuse = Reuse::default();
        let calls = [(1024, 1, 48_000), (1024, 1, 9_000), (512, 1, 20_000), (1024, 2, 30_000), (1024, 1, 48_000)];
        for (i, &(n_fft, channels, len)) in calls.iter().enumerate() {
            let (p, x) = (params(n_fft, Mode::Stationary), noisy(len, i as u64 + 3));
            let fresh = Gate::whole(&p, 16000, channels, &x).unwrap();
            let reused = Gate::whole_reusing(&p, 16000, channels, &x, &mut reuse).unwrap();
            assert_eq!(fresh, reused, "call {i}");
        }
    }
}
