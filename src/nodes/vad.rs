//! `VADNode`: voice activity detection by speech-band energy against per-band noise floors tracked
//! with minimum statistics, a rise common to every band discounted as a change of noise level,
//! an adaptive threshold, bridged pauses and a hangover; one FFT per frame.
//!
//! The detector itself is [`VadState`]: it carries the noise floors, the threshold statistics, the
//! hangover and a partial frame across [`VadState::push`] calls, so a stream cut into chunks of any
//! size gets exactly the decisions of the whole buffer. The node runs one fresh detector per buffer.
//! `python/remotemedia/_pure/vad.py` is a numpy twin of this algorithm; keep the two in step.
//! Algorithm, parameters and measured accuracy: `docs/nodes.md#vadnode`.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use super::params::node_params;
use super::{all_finite, expect_audio, Inputs, Node, NodeType, ParamKind};
use crate::data::{AudioBuffer, Payload, Samples, VadResult};
use crate::error::NodeError;

pub const TYPE_NAME: &str = "VADNode";

/// Default frame length in milliseconds.
pub const DEFAULT_FRAME_MS: u32 = 30;
/// Default hangover in milliseconds: after the last speech frame of a run this much more is
/// speech, so word endings (quieter than the noise at low SNR) stay inside the segment.
pub const DEFAULT_HANGOVER_MS: u32 = 180;
/// Default bridge in milliseconds: a pause up to this long between two speech frames is speech.
/// Frames after a speech frame wait for their decision until the pause ends or outgrows it.
pub const DEFAULT_BRIDGE_MS: u32 = 390;
/// Lowest and highest sample rate accepted (Hz); the rate must also be a multiple of 100 Hz so that
/// 10, 20 and 30 ms are whole numbers of samples.
pub const MIN_RATE: u32 = 8000;
pub const MAX_RATE: u32 = 48000;

/// Band edges in Hz: eight bands of about half an octave covering the speech band (200–4000 Hz);
/// at every accepted rate and frame length each holds at least one FFT bin (bins are < 100 Hz
/// apart). Eight rather than four so that speech, which raises only some of them, is told
/// apart from a louder noise, which raises them all.
const BAND_EDGES_HZ: [u64; 9] = [200, 300, 450, 700, 1000, 1400, 2000, 2800, 4000];
const NB: usize = 8;
/// When every band is at least this far (dB) above its floor, the common rise is taken as the
/// noise getting louder: the score counts only each band's rise above the smallest one.
const GAIN_CAP_DB: f64 = 3.0;
/// Added to band powers before taking logs: −100 dB, far below any real signal.
const EPS_POWER: f64 = 1e-10;
/// Time constant of the band-level smoothing that feeds the minimum tracker.
const SMOOTH_TAU_S: f64 = 0.04;
/// Minimum statistics: the floor is the minimum over `SUBWINDOWS` sub-windows of ~250 ms (~2 s).
const SUBWINDOW_MS: u32 = 250;
const SUBWINDOWS: usize = 8;
/// A frame is never speech when its speech-band power is below this (dB re full scale).
const ABS_GATE_DB: f64 = -65.0;
/// Adaptive threshold = mean + K·std of the score over noise-like frames, clamped to [MIN, MAX] dB.
const ADAPT_TAU_S: f64 = 1.0;
const ADAPT_K: f64 = 2.5;
/// Frames whose score is above mean + GATE·std do not update the noise statistics.
const ADAPT_GATE: f64 = 2.0;
const ADAPT_MIN_DB: f64 = 3.0;
const ADAPT_MAX_DB: f64 = 12.0;
/// Start-up noise-score statistics (typical of stationary noise), giving a 4.5 dB first threshold.
const INIT_MEAN_DB: f64 = 1.5;
const INIT_VAR_DB2: f64 = 1.0;

/// What a detector is configured with.
#[derive(Clone, Debug, PartialEq)]
pub struct VadConfig {
    /// Hz; a multiple of 100 from 8000 to 48000.
    pub sample_rate: u32,
    /// 10, 20 or 30.
    pub frame_duration_ms: u32,
    /// Fixed threshold in dB above the noise floor (mean over the 4 bands); `None`: adaptive.
    pub threshold_db: Option<f64>,
    /// 0 to 2000 ms.
    pub hangover_ms: u32,
    /// 0 to 2000 ms.
    pub bridge_ms: u32,
}

impl VadConfig {
    /// Defaults: adaptive threshold, [`DEFAULT_HANGOVER_MS`], [`DEFAULT_BRIDGE_MS`].
    pub fn new(sample_rate: u32, frame_duration_ms: u32) -> VadConfig {
        VadConfig {
            sample_rate,
            frame_duration_ms,
            threshold_db: None,
            hangover_ms: DEFAULT_HANGOVER_MS,
            bridge_ms: DEFAULT_BRIDGE_MS,
        }
    }

    /// Checks every field; the message says what is accepted.
    pub fn validate(&self) -> Result<(), NodeError> {
        if ![10, 20, 30].contains(&self.frame_duration_ms) {
            return Err(NodeError::permanent(format!(
                "frame_duration_ms must be 10, 20 or 30, found {}",
                self.frame_duration_ms
            )));
        }
        if !(MIN_RATE..=MAX_RATE).contains(&self.sample_rate) || !self.sample_rate.is_multiple_of(100) {
            return Err(NodeError::invalid_input(format!(
                "VADNode needs a sample rate that is a multiple of 100 Hz from {MIN_RATE} to {MAX_RATE} Hz \
                 (e.g. 8000, 16000, 32000, 48000), received {} Hz; put an AudioResampleNode before it",
                self.sample_rate
            )));
        }
        if let Some(t) = self.threshold_db {
            if !t.is_finite() {
                return Err(NodeError::permanent(format!("threshold must be a finite number of dB, found {t}")));
            }
        }
        if self.hangover_ms > 2000 {
            return Err(NodeError::permanent(format!("hangover_ms must be from 0 to 2000, found {}", self.hangover_ms)));
        }
        if self.bridge_ms > 2000 {
            return Err(NodeError::permanent(format!("bridge_ms must be from 0 to 2000, found {}", self.bridge_ms)));
        }
        Ok(())
    }

    /// Samples per frame.
    pub fn frame_len(&self) -> usize {
        (self.sample_rate as u64 * self.frame_duration_ms as u64 / 1000) as usize
    }
}

/// A streaming voice activity detector. Feed it mono f32 samples with [`push`](VadState::push);
/// each complete frame yields one decision. State carried across calls: the noise floors, the
/// threshold statistics, the hangover and the samples of a not yet complete frame.
pub struct VadState {
    config: VadConfig,
    frame_len: usize,
    /// Complex FFT of half the real length: the windowed frame goes in two samples per value.
    fft: Arc<dyn Fft<f32>>,
    window: Vec<f32>,
    buf: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    bands: [(usize, usize); NB],
    /// Per bin `k` from `bands[0].0` to `bands[NB-1].1`: the three weights that give the real
    /// FFT's `|X[k]|²` from the complex half-length transform Z (see [`VadState::band_powers`]),
    /// one array each so the per-bin loop vectorises.
    bin_weights: [Vec<f32>; 3],
    /// Per-bin powers of the current frame (scratch, same bins as `bin_weights`).
    bin_power: Vec<f32>,
    scale: f64,
    smooth: f64,
    adapt: f64,
    sub_frames: u32,
    hang_frames: u32,
    /// Frames a pause after speech stays undecided: the longer of the bridge and the hangover.
    hold_frames: u32,
    // ---- state reset by `reset` ----
    pending: Vec<f32>,
    started: bool,
    smoothed: [f64; NB],
    cur_min: [f64; NB],
    ring: [[f64; NB]; SUBWINDOWS - 1],
    ring_len: usize,
    ring_pos: usize,
    count: u32,
    noise_mean: f64,
    noise_var: f64,
    prev_raw: bool,
    /// The last decided frame was speech: the undecided frames after it may still be bridged.
    in_run: bool,
    /// Frames scored but not yet decided (a pause after speech, or a lone raw frame).
    undecided: u32,
    frames_done: u64,
}

impl VadState {
    /// Plans the FFT (once; reuse the state with [`reset`](VadState::reset) rather than rebuilding).
    pub fn new(config: VadConfig) -> Result<VadState, NodeError> {
        config.validate()?;
        let frame_len = config.frame_len();
        let fft_len = frame_len.next_power_of_two().max(2);
        let fft = FftPlanner::<f32>::new().plan_fft_forward(fft_len / 2);
        // Hann window sampled at bin centres (no zero end points: every sample counts).
        let window: Vec<f32> = (0..frame_len)
            .map(|n| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * (n as f64 + 0.5) / frame_len as f64).cos()) as f32)
            .collect();
        let sum_w2: f64 = (0..frame_len)
            .map(|n| {
                let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * (n as f64 + 0.5) / frame_len as f64).cos();
                w * w
            })
            .sum();
        // Band power normalised so that a sine of amplitude A in the band reads A²/2 (dB re full scale).
        let scale = 2.0 / (fft_len as f64 * sum_w2);
        let rate = config.sample_rate as u64;
        let mut bands = [(0usize, 0usize); NB];
        for (b, band) in bands.iter_mut().enumerate() {
            // Bin k (frequency k·rate/fft_len) is in the band when lo <= f < hi; integer arithmetic.
            let (lo, hi) = (BAND_EDGES_HZ[b] * fft_len as u64, BAND_EDGES_HZ[b + 1] * fft_len as u64);
            let first = (0..=fft_len / 2).find(|k| *k as u64 * rate >= lo).unwrap_or(fft_len / 2 + 1);
            let end = (first..=fft_len / 2).find(|k| *k as u64 * rate >= hi).unwrap_or(fft_len / 2 + 1);
            *band = (first, end);
        }
        // |X[k]|² = ((1+p)|Z[k]|² + (1-p)|Z[h-k]|²)/2 - q Im(Z[k] Z[h-k]), h = fft_len/2, where
        // p + jq = -j e^{-2πik/fft_len}, i.e. p = -sin θ, q = -cos θ (θ = 2πk/fft_len). This is the
        // usual real-FFT unpacking X[k] = (Z[k] + Z*[h-k])/2 - j e^{-2πik/N} (Z[k] - Z*[h-k])/2,
        // squared out, so only the band bins are unpacked and no complex X is formed.
        // Every band bin satisfies 1 <= k < h (200 Hz > 0 and 4 kHz <= Nyquist), so h-k is in range.
        let weights = |f: fn(f64, f64) -> f64| -> Vec<f32> {
            (bands[0].0..bands[NB - 1].1)
                .map(|k| {
                    let th = 2.0 * std::f64::consts::PI * k as f64 / fft_len as f64;
                    f(-th.sin(), -th.cos()) as f32
                })
                .collect()
        };
        let bin_weights = [weights(|p, _| 0.5 * (1.0 + p)), weights(|p, _| 0.5 * (1.0 - p)), weights(|_, q| -q)];
        let frame_s = config.frame_duration_ms as f64 / 1000.0;
        let ms = config.frame_duration_ms;
        let mut state = VadState {
            frame_len,
            buf: vec![Complex::new(0.0, 0.0); fft_len / 2],
            scratch: vec![Complex::new(0.0, 0.0); fft.get_inplace_scratch_len()],
            fft,
            bin_power: vec![0.0; bin_weights[0].len()],
            bin_weights,
            window,
            bands,
            scale,
            smooth: 1.0 - (-frame_s / SMOOTH_TAU_S).exp(),
            adapt: 1.0 - (-frame_s / ADAPT_TAU_S).exp(),
            sub_frames: (SUBWINDOW_MS + ms / 2) / ms,
            hang_frames: config.hangover_ms.div_ceil(ms),
            hold_frames: config.hangover_ms.div_ceil(ms).max(config.bridge_ms.div_ceil(ms)),
            config,
            pending: Vec::with_capacity(frame_len),
            started: false,
            smoothed: [0.0; NB],
            cur_min: [f64::INFINITY; NB],
            ring: [[0.0; NB]; SUBWINDOWS - 1],
            ring_len: 0,
            ring_pos: 0,
            count: 0,
            noise_mean: INIT_MEAN_DB,
            noise_var: INIT_VAR_DB2,
            prev_raw: false,
            in_run: false,
            undecided: 0,
            frames_done: 0,
        };
        state.reset();
        Ok(state)
    }

    pub fn config(&self) -> &VadConfig {
        &self.config
    }

    /// Samples per frame.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// Frames scored since the last reset (the frames of a pause after speech are decided later).
    pub fn frames_decided(&self) -> u64 {
        self.frames_done
    }

    /// Forgets everything carried between calls; the next sample starts a new stream.
    pub fn reset(&mut self) {
        self.pending.clear();
        self.started = false;
        self.smoothed = [0.0; NB];
        self.cur_min = [f64::INFINITY; NB];
        self.ring_len = 0;
        self.ring_pos = 0;
        self.count = 0;
        self.noise_mean = INIT_MEAN_DB;
        self.noise_var = INIT_VAR_DB2;
        self.prev_raw = false;
        self.in_run = false;
        self.undecided = 0;
        self.frames_done = 0;
    }

    /// Decides every frame completed by `samples` (mono, full scale ±1) and returns the decisions.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<bool>, NodeError> {
        let mut out = Vec::with_capacity((self.pending.len() + samples.len()) / self.frame_len);
        self.push_into(samples, &mut out)?;
        Ok(out)
    }

    /// As [`push`](VadState::push), appending to `out`. On error (a NaN or infinite sample) nothing
    /// is consumed and the state is unchanged.
    pub fn push_into(&mut self, samples: &[f32], out: &mut Vec<bool>) -> Result<(), NodeError> {
        if !all_finite(samples) {
            let i = samples.iter().position(|x| !x.is_finite()).unwrap_or(0);
            return Err(NodeError::invalid_input(format!(
                "VADNode input contains a non-finite sample ({}) at index {i}",
                samples.get(i).copied().unwrap_or(f32::NAN)
            )));
        }
        let mut rest = samples;
        if !self.pending.is_empty() {
            let need = self.frame_len - self.pending.len();
            if rest.len() < need {
                self.pending.extend_from_slice(rest);
                return Ok(());
            }
            let (head, tail) = rest.split_at(need);
            self.pending.extend_from_slice(head);
            rest = tail;
            let frame = std::mem::take(&mut self.pending);
            self.frame(&frame, out);
            self.pending = frame;
            self.pending.clear();
        }
        let mut chunks = rest.chunks_exact(self.frame_len);
        for frame in &mut chunks {
            self.frame(frame, out);
        }
        self.pending.extend_from_slice(chunks.remainder());
        Ok(())
    }

    /// Ends the stream: returns the decisions of a pause still open (its first hangover frames
    /// are speech, the rest not). A trailing partial frame gets no decision: it is dropped (so a
    /// buffer of `n` samples yields `floor(n / frame_len)` decisions over `push` and `finish`).
    pub fn finish(&mut self) -> Vec<bool> {
        self.pending.clear();
        let mut out = Vec::new();
        self.settle(self.undecided, &mut out);
        out
    }

    /// Decides the first `n` undecided frames as not bridged: after a run, its first hangover
    /// frames are speech, the rest not.
    fn settle(&mut self, n: u32, out: &mut Vec<bool>) {
        let speech = if self.in_run { self.hang_frames.min(n) } else { 0 };
        out.extend(std::iter::repeat_n(true, speech as usize));
        out.extend(std::iter::repeat_n(false, (n - speech) as usize));
        self.undecided -= n;
        self.in_run = false;
    }

    /// One frame of exactly `frame_len` samples → the decisions it settles (see [`decide`]).
    ///
    /// The windowed frame, zero-padded to `fft_len`, is transformed as `fft_len/2` complex values
    /// (even samples real, odd imaginary); the band powers are unpacked from that transform bin by
    /// bin with `bin_weights`. Same spectrum as a real FFT of `fft_len` points, at about half the
    /// cost: no unpacking of the bins outside 200-4000 Hz, no separate power pass.
    fn frame(&mut self, frame: &[f32], out: &mut Vec<bool>) {
        let powers = self.band_powers(frame);
        self.decide(&powers, out);
    }

    /// The 4 band powers of one frame, scaled so a sine of amplitude A in a band reads A²/2.
    fn band_powers(&mut self, frame: &[f32]) -> [f64; NB] {
        let pairs = frame.chunks_exact(2);
        let odd = pairs.remainder().first().copied();
        let mut used = 0;
        for ((slot, x), w) in self.buf.iter_mut().zip(pairs).zip(self.window.chunks_exact(2)) {
            *slot = Complex::new(x[0] * w[0], x[1] * w[1]);
            used += 1;
        }
        if let (Some(x), Some(w)) = (odd, self.window.last()) {
            self.buf[used] = Complex::new(x * w, 0.0);
            used += 1;
        }
        // The FFT runs in place: the zero padding must be rewritten every frame.
        self.buf[used..].fill(Complex::new(0.0, 0.0));
        self.fft.process_with_scratch(&mut self.buf, &mut self.scratch);
        let h = self.buf.len();
        let (k0, k1) = (self.bands[0].0, self.bands[NB - 1].1);
        // Z[k] forwards and Z[h-k] backwards over the band bins; an element-wise loop (vectorised).
        let lo = &self.buf[k0..k1];
        let hi = self.buf[h - k1 + 1..h - k0 + 1].iter().rev();
        let [wa, wc, wx] = &self.bin_weights;
        for (((((pw, a), c), wa), wc), wx) in self.bin_power.iter_mut().zip(lo).zip(hi).zip(wa).zip(wc).zip(wx) {
            *pw = wa * (a.re * a.re + a.im * a.im) + wc * (c.re * c.re + c.im * c.im) + wx * (a.re * c.im + a.im * c.re);
        }
        let mut powers = [0f64; NB];
        for (p, &(a, b)) in powers.iter_mut().zip(&self.bands) {
            let bp = sum8(&self.bin_power[a - k0..b - k0]);
            // Absurdly loud (finite) input can overflow the f32 spectrum to inf or NaN; clamp so
            // the floors and statistics stay finite and the stream stays usable.
            *p = if bp.is_finite() { bp } else { f32::MAX } as f64 * self.scale;
        }
        powers
    }

    /// The decision logic, in f64; mirrors `VadState._decide` in the numpy twin line by line.
    /// Appends the decisions the frame settles: none while a pause after speech is undecided,
    /// the whole pause at once when it ends.
    fn decide(&mut self, powers: &[f64; NB], out: &mut Vec<bool>) {
        let levels = powers.map(|p| 10.0 * (p + EPS_POWER).log10());
        let total = 10.0 * (powers.iter().sum::<f64>() + EPS_POWER).log10();
        if !self.started {
            self.smoothed = levels;
            self.started = true;
        }
        let mut ds = [0f64; NB];
        for b in 0..NB {
            let s = self.smoothed[b] + self.smooth * (levels[b] - self.smoothed[b]);
            self.smoothed[b] = s;
            if s < self.cur_min[b] {
                self.cur_min[b] = s;
            }
            let mut floor = self.cur_min[b];
            for m in &self.ring[..self.ring_len] {
                if m[b] < floor {
                    floor = m[b];
                }
            }
            ds[b] = levels[b] - floor;
        }
        // Every band well above its floor: the noise got louder (or it is loud speech, which
        // still rises above its quietest band); only the rise above the common one counts.
        let common = ds.iter().copied().fold(f64::INFINITY, f64::min);
        let reference = if common >= GAIN_CAP_DB { common } else { 0.0 };
        let mut score = 0.0;
        for d in ds {
            if d > reference {
                score += d - reference;
            }
        }
        score /= NB as f64;
        self.count += 1;
        if self.count == self.sub_frames {
            // The oldest sub-window minimum leaves the ring (order within it does not matter).
            self.ring[self.ring_pos] = self.cur_min;
            self.ring_pos = (self.ring_pos + 1) % (SUBWINDOWS - 1);
            self.ring_len = (self.ring_len + 1).min(SUBWINDOWS - 1);
            self.cur_min = [f64::INFINITY; NB];
            self.count = 0;
        }
        let thr = match self.config.threshold_db {
            Some(t) => t,
            None => (self.noise_mean + ADAPT_K * self.noise_var.sqrt()).clamp(ADAPT_MIN_DB, ADAPT_MAX_DB),
        };
        let raw = score > thr && total > ABS_GATE_DB;
        let dev = score - self.noise_mean;
        if dev < ADAPT_GATE * self.noise_var.sqrt() {
            // Noise statistics follow the frames that look like noise; the gate keeps speech out
            // of them (without it, missed speech raises the threshold, which misses more speech).
            self.noise_mean += self.adapt * dev;
            self.noise_var += self.adapt * (dev * dev - self.noise_var);
        }
        self.frames_done += 1;
        // Two raw speech frames in a row are speech: isolated noise peaks are not.
        let pair = raw && self.prev_raw;
        self.prev_raw = raw;
        if pair {
            // Everything since the last speech frame (a pause short enough to bridge, or the
            // first frame of the pair) is speech.
            out.extend(std::iter::repeat_n(true, self.undecided as usize + 1));
            self.undecided = 0;
            self.in_run = true;
            return;
        }
        self.undecided += 1;
        // A raw frame stays undecided: it is speech if the next one is raw too.
        let keep = u32::from(raw);
        if !self.in_run || self.undecided - keep > self.hold_frames {
            self.settle(self.undecided - keep, out);
        }
    }
}

/// Sum of `v` with 8 independent accumulators so the compiler can vectorise it (a single running
/// f32 sum is a serial dependency chain: several times slower).
fn sum8(v: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    acc.iter().sum::<f32>() + tail
}

/// Speech segments as `(start_s, end_s)` pairs, in seconds.
pub type Segments = Vec<(f64, f64)>;

/// The start of frame `i`, in seconds.
fn seconds(i: u64, frame_duration_ms: u32) -> f64 {
    i as f64 * frame_duration_ms as f64 / 1000.0
}

/// Runs of speech frames as `(start_s, end_s)`: frame `i` covers `[i, i+1) · frame_duration_ms`.
pub fn segments(frames: &[bool], frame_duration_ms: u32) -> Segments {
    let t = |i: usize| seconds(i as u64, frame_duration_ms);
    let mut out = Vec::new();
    let mut start = None;
    for (i, f) in frames.iter().enumerate() {
        match (f, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((t(s), t(i)));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((t(s), t(frames.len())));
    }
    out
}

/// The buffer as mono f32: i16 / i32 scaled by 1/32768 and 1/2³¹, channels averaged.
pub fn to_mono(audio: &AudioBuffer) -> Result<Vec<f32>, NodeError> {
    let ch = audio.channels as usize;
    if ch == 0 {
        return Err(NodeError::invalid_input("audio with 0 channels"));
    }
    if !audio.samples.len().is_multiple_of(ch) {
        return Err(NodeError::invalid_input(format!(
            "{} samples is not a whole number of frames of {ch} channels",
            audio.samples.len()
        )));
    }
    fn mix<T: Copy>(v: &[T], ch: usize, f: impl Fn(T) -> f32) -> Vec<f32> {
        if ch == 1 {
            return v.iter().map(|x| f(*x)).collect();
        }
        // Scale before summing: huge finite samples cannot overflow to inf, and identical channels
        // average to exactly the mono value for 1, 2 and 4 channels.
        let inv = 1.0 / ch as f32;
        v.chunks_exact(ch).map(|c| c.iter().map(|x| f(*x) * inv).sum::<f32>()).collect()
    }
    Ok(match &audio.samples {
        Samples::F32(v) => mix(v, ch, |x| x),
        Samples::I16(v) => mix(v, ch, crate::nodes::format::s_i16_to_f32),
        Samples::I32(v) => mix(v, ch, crate::nodes::format::s_i32_to_f32),
    })
}

/// The buffer as mono f32: mono f32 (the usual case) is read in place, anything else is mixed
/// down to a copy by [`to_mono`].
pub fn mono_view(audio: &AudioBuffer) -> Result<std::borrow::Cow<'_, [f32]>, NodeError> {
    match (&audio.samples, audio.channels) {
        (Samples::F32(v), 1) => Ok(std::borrow::Cow::Borrowed(v)),
        _ => Ok(std::borrow::Cow::Owned(to_mono(audio)?)),
    }
}

/// Convenience: decisions and segments for one whole buffer of mono samples.
pub fn detect(samples: &[f32], config: VadConfig) -> Result<(Segments, Vec<bool>), NodeError> {
    let mut state = VadState::new(config)?;
    let mut frames = state.push(samples)?;
    frames.extend(state.finish());
    Ok((segments(&frames, state.config.frame_duration_ms), frames))
}

node_params! {
    /// The node's params: the schema, the factory ([`VadParams::from_params`]) and the detector
    /// ([`VadParams::config`]) all come from this one declaration.
    pub struct VadParams {
        frame_duration_ms: i64 = i64::from(DEFAULT_FRAME_MS), ParamKind::IntChoice(&[10, 20, 30]),
            "frame length in ms: one decision per frame";
        threshold: Option<f64> = None, ParamKind::Float { min: 0.0, max: 60.0 },
            "fixed decision threshold in dB above the tracked noise floor (mean over 8 speech bands); \
             absent: adaptive (2.5 std above the recent noise score, 3 to 12 dB)";
        hangover_ms: i64 = i64::from(DEFAULT_HANGOVER_MS), ParamKind::Int { min: 0, max: 2000 },
            "ms after the last speech frame of a run that are still speech";
        bridge_ms: i64 = i64::from(DEFAULT_BRIDGE_MS), ParamKind::Int { min: 0, max: 2000 },
            "a pause up to this long (ms) between speech frames is speech; frames after speech are \
             decided up to this much later";
    }
}

impl VadParams {
    /// The detector's configuration for audio at `sample_rate`.
    pub fn config(&self, sample_rate: u32) -> VadConfig {
        VadConfig {
            sample_rate,
            // Checked against the declared kinds (at most 2000), so they fit in u32.
            frame_duration_ms: self.frame_duration_ms as u32,
            threshold_db: self.threshold,
            hangover_ms: self.hangover_ms as u32,
            bridge_ms: self.bridge_ms as u32,
        }
    }
}

struct VadNode {
    params: VadParams,
    /// Kept between runs so the FFT is planned once per sample rate, reset before every run.
    state: Option<VadState>,
    /// In a streaming session: where the session stands.
    stream: Option<VadStream>,
}

/// A streaming session's position: frames decided so far, the start of a segment still open,
/// and the channel count of its audio (to shape an empty final output).
struct VadStream {
    frames_done: u64,
    open_since: Option<u64>,
    channels: u16,
}

impl VadStream {
    /// Takes the next decisions; returns the segments they close, in seconds from the start.
    fn track(&mut self, frames: &[bool], frame_ms: u32) -> Segments {
        let mut closed = Vec::new();
        for (k, &speech) in frames.iter().enumerate() {
            let i = self.frames_done + k as u64;
            match (speech, self.open_since) {
                (true, None) => self.open_since = Some(i),
                (false, Some(start)) => {
                    closed.push((seconds(start, frame_ms), seconds(i, frame_ms)));
                    self.open_since = None;
                }
                _ => {}
            }
        }
        self.frames_done += frames.len() as u64;
        closed
    }
}

impl VadNode {
    fn config_for(&self, sample_rate: u32) -> VadConfig {
        self.params.config(sample_rate)
    }

    /// Decides the frames a chunk completes; segments are reported when they close, in seconds
    /// from the start of the session, so the chunks' reports add up to the whole-buffer result.
    fn push_chunk(&mut self, audio: AudioBuffer) -> Result<VadResult, NodeError> {
        let config = self.config_for(audio.sample_rate);
        config.validate()?;
        if let (Some(state), Some(_)) = (&self.state, &self.stream) {
            if state.config().sample_rate != audio.sample_rate {
                return Err(NodeError::invalid_input(format!(
                    "this stream started with audio at {} Hz; a chunk at {} Hz cannot continue it",
                    state.config().sample_rate,
                    audio.sample_rate
                )));
            }
        }
        let mono = mono_view(&audio)?;
        let state = match (&mut self.state, &self.stream) {
            (Some(s), Some(_)) => s,
            (Some(s), None) if s.config == config => {
                s.reset();
                s
            }
            (slot, _) => slot.insert(VadState::new(config)?),
        };
        let frames = state.push(&mono)?;
        let stream = self.stream.get_or_insert(VadStream { frames_done: 0, open_since: None, channels: audio.channels });
        let ms = self.params.frame_duration_ms as u32;
        let segments = stream.track(&frames, ms);
        Ok(VadResult { segments, frames, frame_duration_ms: ms, audio, probabilities: Vec::new() })
    }
}

impl Node for VadNode {
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        let audio = expect_audio(inputs.one()?)?;
        let config = self.config_for(audio.sample_rate);
        config.validate()?;
        let mono = mono_view(&audio)?;
        let state = match &mut self.state {
            Some(s) if s.config == config => {
                s.reset();
                s
            }
            slot => slot.insert(VadState::new(config)?),
        };
        let mut frames = state.push(&mono)?;
        frames.extend(state.finish());
        let ms = self.params.frame_duration_ms as u32;
        Ok(Payload::Vad(Box::new(VadResult {
            segments: segments(&frames, ms),
            frames,
            frame_duration_ms: ms,
            audio,
            probabilities: Vec::new(),
        })))
    }

    fn push(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        let audio = expect_audio(inputs.one()?)?;
        Ok(Payload::Vad(Box::new(self.push_chunk(audio)?)))
    }

    /// The last chunk's decisions, those of a pause still undecided, and the segment still open,
    /// closed at the end of the stream. A trailing partial frame gets no decision, as in the
    /// whole-buffer run.
    fn finish(&mut self, inputs: Option<Inputs>) -> Result<Option<Payload>, NodeError> {
        let last = match inputs {
            Some(inputs) => Some(self.push_chunk(expect_audio(inputs.one()?)?)?),
            None => None,
        };
        let Some(mut stream) = self.stream.take() else { return Ok(last.map(|v| Payload::Vad(Box::new(v)))) };
        let rate = self.state.as_ref().map_or(0, |s| s.config().sample_rate);
        let ms = self.params.frame_duration_ms as u32;
        let mut result = last.unwrap_or_else(|| VadResult {
            segments: Vec::new(),
            frames: Vec::new(),
            frame_duration_ms: ms,
            audio: AudioBuffer { samples: Samples::F32(Vec::new().into()), sample_rate: rate, channels: stream.channels },
            probabilities: Vec::new(),
        });
        if let Some(state) = &mut self.state {
            let frames = state.finish();
            result.segments.extend(stream.track(&frames, ms));
            result.frames.extend(frames);
        }
        if let Some(start) = stream.open_since {
            result.segments.push((seconds(start, ms), seconds(stream.frames_done, ms)));
        }
        Ok(Some(Payload::Vad(Box::new(result))))
    }
}

pub fn node_type() -> NodeType {
    NodeType {
        params: VadParams::specs(),
        outputs: vec!["audio".into(), "segments".into(), "frames".into()],
        stateful: true,
        ..NodeType::new(
            TYPE_NAME,
            "Voice activity detection: speech-band energy over per-band noise floors (minimum statistics), \
             a rise common to all bands discounted as louder noise, adaptive threshold, bridged pauses and a \
             hangover. Input: audio at 8-48 kHz (multiple of 100 Hz); output: a VAD result (segments in s, \
             one decision per frame, the input audio unchanged).",
            |cfg| Ok(Box::new(VadNode { params: VadParams::from_params(cfg.params)?, state: None, stream: None })),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The unpacked band powers equal those of a plain real FFT (realfft) of the windowed frame,
    /// for even and odd frame lengths.
    #[test]
    fn band_powers_match_a_real_fft() {
        for (rate, ms) in [(8000u32, 10u32), (8100, 10), (16000, 30), (44100, 30), (48000, 20)] {
            let mut st = VadState::new(VadConfig::new(rate, ms)).expect("config");
            let n = st.frame_len;
            // Broadband (deterministic white noise), so every band holds real power.
            let mut seed = 12345u32;
            let frame: Vec<f32> = (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                    (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
                })
                .collect();
            let got = st.band_powers(&frame);
            let fft_len = n.next_power_of_two();
            let r2c = realfft::RealFftPlanner::<f64>::new().plan_fft_forward(fft_len);
            let mut input = vec![0.0f64; fft_len];
            for i in 0..n {
                input[i] = frame[i] as f64 * st.window[i] as f64;
            }
            let mut spec = r2c.make_output_vec();
            r2c.process(&mut input, &mut spec).expect("fft");
            for (b, &(lo, hi)) in st.bands.iter().enumerate() {
                let want: f64 = spec[lo..hi].iter().map(|x| x.norm_sqr()).sum::<f64>() * st.scale;
                let rel = (got[b] - want).abs() / want;
                assert!(rel < 1e-4, "{rate} Hz {ms} ms band {b}: {} vs {want}", got[b]);
            }
        }
    }
}
