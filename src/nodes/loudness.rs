//! `LoudnessNode`: ITU-R BS.1770-4 / EBU R128 loudness measurement (K-weighting, 400 ms blocks
//! with 75 % overlap, absolute gate -70 LUFS, relative gate -10 LU), loudness range (EBU Tech
//! 3342) and true peak (BS.1770-4 Annex 2, 4x oversampled), and normalisation to a target loudness
//! under a true-peak ceiling.
//!
//! The measurement is [`Meter`]: it K-weights the channels with [`super::sos::Cascade`], sums the
//! channel-weighted energy per 100 ms sub-block, and keeps what momentary (400 ms), short-term
//! (3 s) and integrated loudness need, so a stream measures chunk by chunk what a whole buffer
//! measures at once. Every param lives in [`LoudnessParams`]. `python/remotemedia/_pure/loudness.py`
//! is the numpy twin. Params, algorithm, streaming gain and measured accuracy:
//! `docs/nodes.md#loudnessnode`.

use std::collections::VecDeque;

use serde_json::{json, Value};

use super::sos::{Cascade, Section};
use super::sos_split::Split;
use super::{check_finite, expect_audio, param_bool, param_f64, param_str, Inputs, Node, NodeType, ParamKind, ParamSpec, Params};
use crate::data::{AudioBuffer, Payload, Samples};
use crate::error::NodeError;
use crate::nodes::format::into_f32;

pub const TYPE_NAME: &str = "LoudnessNode";

/// What the node does with the audio besides measuring it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Scale to the target loudness (under the true-peak ceiling).
    Normalize,
    /// Pass the audio on unchanged.
    Measure,
}

/// Every param of `LoudnessNode`.
#[derive(Clone, Debug, PartialEq)]
pub struct LoudnessParams {
    pub mode: Mode,
    pub target_lufs: f64,
    pub peak_ceiling_dbtp: f64,
    /// Per-channel weights; `None`: BS.1770's by channel count (see [`default_weights`]).
    pub channel_weights: Option<Vec<f64>>,
    /// Measure the true peak in mode measure (its 4x oversampling costs more than the rest of
    /// the meter); normalize always measures it, since the ceiling needs it.
    pub true_peak: bool,
}

impl LoudnessParams {
    pub const MODES: &'static [&'static str] = &["normalize", "measure"];
    pub const TARGET: ParamKind = ParamKind::Float { min: -70.0, max: 0.0 };
    pub const DEFAULT_TARGET_LUFS: f64 = -23.0;
    pub const CEILING: ParamKind = ParamKind::Float { min: -30.0, max: 30.0 };
    pub const DEFAULT_CEILING_DBTP: f64 = -1.0;
    pub const MAX_CHANNELS: usize = 64;

    pub fn specs() -> Vec<ParamSpec> {
        vec![
            ParamSpec::with_default(
                "mode",
                ParamKind::Choice(Self::MODES),
                Value::from("normalize"),
                "normalize: scale to target_lufs under the true-peak ceiling; measure: pass the audio on unchanged",
            ),
            ParamSpec::with_default(
                "target_lufs",
                Self::TARGET,
                Value::from(Self::DEFAULT_TARGET_LUFS),
                "integrated loudness to normalise to, in LUFS (EBU R128: -23; streaming services: -14 to -16)",
            ),
            ParamSpec::with_default(
                "peak_ceiling_dbtp",
                Self::CEILING,
                Value::from(Self::DEFAULT_CEILING_DBTP),
                "highest true peak after normalisation, in dBTP: the gain is lowered to stay under it",
            ),
            ParamSpec::optional(
                "channel_weights",
                ParamKind::List { item: Box::new(ParamKind::Float { min: 0.0, max: 10.0 }), min_len: 1, max_len: Self::MAX_CHANNELS },
                "weight of each channel's energy (default BS.1770: 1.0 for L, R, C, 1.41 for surrounds, 0 for the LFE of 5.1)",
            ),
            ParamSpec::with_default(
                "true_peak",
                ParamKind::Bool,
                Value::from(true),
                "measure the true peak (4x oversampled) in mode measure; false reports it as null and skips its cost. \
                 normalize always measures it, for the ceiling",
            ),
        ]
    }

    pub fn from_params(params: &Params) -> Result<LoudnessParams, NodeError> {
        let mode = match param_str(params, "mode")?.unwrap_or("normalize") {
            "measure" => Mode::Measure,
            _ => Mode::Normalize,
        };
        let channel_weights = match params.get("channel_weights") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|v| v.as_f64().ok_or_else(|| NodeError::permanent(format!("param 'channel_weights' must hold numbers, found {v}"))))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(v) => return Err(NodeError::permanent(format!("param 'channel_weights' must be a list of numbers, found {v}"))),
        };
        Ok(LoudnessParams {
            mode,
            target_lufs: param_f64(params, "target_lufs")?.unwrap_or(Self::DEFAULT_TARGET_LUFS),
            peak_ceiling_dbtp: param_f64(params, "peak_ceiling_dbtp")?.unwrap_or(Self::DEFAULT_CEILING_DBTP),
            channel_weights,
            true_peak: param_bool(params, "true_peak")?.unwrap_or(true),
        })
    }

    /// The channel weights for `channels` channels; `InvalidInput` when the given list does not
    /// have one weight per channel.
    /// Whether the meter measures the true peak: asked for, or needed by the ceiling.
    pub fn measures_true_peak(&self) -> bool {
        self.true_peak || self.mode == Mode::Normalize
    }

    pub fn weights(&self, channels: usize) -> Result<Vec<f64>, NodeError> {
        match &self.channel_weights {
            None => Ok(default_weights(channels)),
            Some(w) if w.len() == channels => Ok(w.clone()),
            Some(w) => Err(NodeError::invalid_input(format!(
                "{TYPE_NAME} has {} channel_weights but the audio has {channels} channel(s)",
                w.len()
            ))),
        }
    }
}

/// BS.1770's channel weights by count: 1.0 for the front channels, 1.41 (+1.5 dB) for the
/// surrounds in pyloudnorm's order L, R, C, Ls, Rs (up to 5 channels); 5.1 in the order L, R, C,
/// LFE, Ls, Rs with the LFE left out; 1.0 for every channel of other layouts.
pub fn default_weights(channels: usize) -> Vec<f64> {
    match channels {
        0..=3 => vec![1.0; channels],
        4 => vec![1.0, 1.0, 1.0, 1.41],
        5 => vec![1.0, 1.0, 1.0, 1.41, 1.41],
        6 => vec![1.0, 1.0, 1.0, 0.0, 1.41, 1.41],
        n => vec![1.0; n],
    }
}

/// The K-weighting filter at `rate`: BS.1770's pre-filter (a high shelf of about +4 dB above
/// 1.5 kHz) and RLB high-pass, from the analog parameters that reproduce the standard's 48 kHz
/// coefficients exactly (as libebur128 and pyloudnorm's "DeMan" filters design them), so other
/// rates get the same curve.
pub fn k_weighting(rate: f64) -> Vec<Section> {
    let (f0, g, q) = (1681.974450955533, 3.999843853973347, 0.7071752369554196);
    let k = (std::f64::consts::PI * f0 / rate).tan();
    let vh = 10f64.powf(g / 20.0);
    let vb = vh.powf(0.4996667741545416);
    let a0 = 1.0 + k / q + k * k;
    let shelf = Section {
        b: [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0],
        a: [2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0],
    };
    let (f0, q) = (38.13547087602444, 0.5003270373238773);
    let a0_at = |r: f64| {
        let k = (std::f64::consts::PI * f0 / r).tan();
        1.0 + k / q + k * k
    };
    let k = (std::f64::consts::PI * f0 / rate).tan();
    let a0 = a0_at(rate);
    // The standard's numerator [1, -2, 1] leaves a pass-band gain of a0 at 48 kHz; libebur128
    // keeps [1, -2, 1] at every rate, which adds 0.09 dB at 16 kHz. Scaled, the gain is the
    // standard's at every rate (16 kHz speech then reads within 0.002 LU of its 48 kHz copy).
    let c = a0_at(48000.0) / a0;
    let highpass = Section { b: [c, -2.0 * c, c], a: [2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0] };
    vec![shelf, highpass]
}

/// BS.1770-4 Annex 2: the 4x oversampling interpolation filter, 4 phases of 12 taps.
#[allow(clippy::excessive_precision)] // the standard's table as printed, so it can be checked against it
pub const TRUE_PEAK_TAPS: [[f32; 12]; 4] = [
    [
        0.0017089843750, 0.0109863281250, -0.0196533203125, 0.0332031250000, -0.0594482421875, 0.1373291015625,
        0.9721679687500, -0.1022949218750, 0.0476074218750, -0.0266113281250, 0.0148925781250, -0.0083007812500,
    ],
    [
        -0.0291748046875, 0.0292968750000, -0.0517578125000, 0.0891113281250, -0.1665039062500, 0.4650878906250,
        0.7797851562500, -0.2003173828125, 0.1015625000000, -0.0582275390625, 0.0330810546875, -0.0189208984375,
    ],
    [
        -0.0189208984375, 0.0330810546875, -0.0582275390625, 0.1015625000000, -0.2003173828125, 0.7797851562500,
        0.4650878906250, -0.1665039062500, 0.0891113281250, -0.0517578125000, 0.0292968750000, -0.0291748046875,
    ],
    [
        -0.0083007812500, 0.0148925781250, -0.0266113281250, 0.0476074218750, -0.1022949218750, 0.9721679687500,
        0.1373291015625, -0.0594482421875, 0.0332031250000, -0.0196533203125, 0.0109863281250, 0.0017089843750,
    ],
];

const TAPS: usize = 12;
/// Gating block and its step, in 100 ms sub-blocks.
const BLOCK_SUBS: usize = 4;
const SHORT_TERM_SUBS: usize = 30;
const ABSOLUTE_GATE_LUFS: f64 = -70.0;
const RELATIVE_GATE_LU: f64 = -10.0;
/// Tech 3342: short-term values below this relative to their own power mean are left out of LRA.
const LRA_RELATIVE_GATE_LU: f64 = -20.0;

/// Loudness in LUFS of a channel-weighted mean square (BS.1770 eq. 2), `None` for silence.
fn lufs(mean_square: f64) -> Option<f64> {
    (mean_square > 0.0).then(|| -0.691 + 10.0 * mean_square.log10())
}

/// Phases the true-peak meter interpolates at this rate: 4x below 96 kHz, 2x below 192 kHz
/// (Annex 2's phases 0 and 2), the samples themselves above.
fn phases(rate: u32) -> &'static [usize] {
    match rate {
        0..96000 => &[0, 1, 2, 3],
        96000..192000 => &[0, 2],
        _ => &[],
    }
}

/// True peak of one channel: the largest magnitude of the samples and of the interpolated
/// signal, with the last 11 samples carried so a stream's chunks see across their seams.
#[derive(Clone, Debug)]
struct PeakMeter {
    /// The last `TAPS - 1` samples, then the current chunk.
    buf: Vec<f32>,
    max: f32,
}

impl PeakMeter {
    fn new() -> PeakMeter {
        PeakMeter { buf: vec![0.0; TAPS - 1], max: 0.0 }
    }

    /// Measures `x`; returns this chunk's own true peak (linear).
    fn push(&mut self, samples: &[f32], channel: usize, channels: usize, phases: &[usize]) -> f32 {
        self.buf.truncate(TAPS - 1);
        // One channel of interleaved frames (a plain loop: `step_by`'s fold cost a tenth of
        // the meter's time).
        let frames = samples.len() / channels;
        self.buf.resize(TAPS - 1 + frames, 0.0);
        for (d, f) in self.buf[TAPS - 1..].iter_mut().zip(samples.chunks_exact(channels)) {
            *d = f[channel];
        }
        // The samples count too: Annex 2's phase 0 is not exactly the identity, and a true peak
        // below a sample's magnitude would let normalisation put that sample over the ceiling.
        let raw = abs_max(&self.buf[TAPS - 1..], 0.0);
        let chunk_max = if phases.is_empty() { raw } else { interpolated_peak(&self.buf, phases, raw) };
        let keep = self.buf.len() - (TAPS - 1);
        self.buf.drain(..keep);
        self.max = self.max.max(chunk_max);
        chunk_max
    }
}

/// The largest |y| of the polyphase interpolation of `buf` (history first), each output
/// `y_p[n] = sum_k h_p[k] x[n - k]`, or `floor` if none is larger.
fn interpolated_peak(buf: &[f32], phases: &[usize], floor: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::nodes::cpu::simd().avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe { interpolated_peak_avx2(buf, phases, floor) };
        }
    }
    interpolated_peak_plain::<false>(buf, phases, floor)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn interpolated_peak_avx2(buf: &[f32], phases: &[usize], floor: f32) -> f32 {
    interpolated_peak_plain::<true>(buf, phases, floor)
}

/// The largest of `floor` and the magnitudes of `x` (finite: the node checks its input first).
/// Eight running maxima compared with `>`, which compile to packed max instructions; `f32::max`
/// folded one value at a time stays scalar (its NaN rule orders the reduction), and was most of
/// the true peak's cost: the tile bounds below read every sample about 1.3 times.
#[inline(always)]
fn abs_max(x: &[f32], floor: f32) -> f32 {
    let mut m = [floor; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (m, &v) in m.iter_mut().zip(c) {
            let a = v.abs();
            *m = if a > *m { a } else { *m };
        }
    }
    let mut top = chunks.remainder().iter().fold(floor, |t, &v| if v.abs() > t { v.abs() } else { t });
    for v in m {
        top = if v > top { v } else { top };
    }
    top
}

/// Tiles of 32 outputs: for each tap, a whole tile's products at once (vectorised), then the
/// tile's largest magnitude. A tile is skipped when it cannot beat the peak so far: no output
/// exceeds the largest input magnitude it reads times the phase's sum of |taps| (at most 2.1),
/// and most tiles of real audio sit well below the loudest sample (the result is the same).
/// `FMA`: the products are fused multiply-adds (where the CPU has them).
#[inline(always)]
fn interpolated_peak_plain<const FMA: bool>(buf: &[f32], phases: &[usize], floor: f32) -> f32 {
    const TILE: usize = 32;
    // Above the rounding of the tile's sums, so a skipped tile is certainly below the peak.
    const MARGIN: f32 = 1.0 + 1e-4;
    let madd = |h: f32, x: f32, a: f32| if FMA { h.mul_add(x, a) } else { a + h * x };
    let n = buf.len() + 1 - TAPS;
    let gain: [f32; 4] = std::array::from_fn(|p| TRUE_PEAK_TAPS[p].iter().map(|h| h.abs()).sum::<f32>() * MARGIN);
    let mut max = floor;
    let mut start = 0;
    while start < n {
        let len = TILE.min(n - start);
        let reach = abs_max(&buf[start..start + len + TAPS - 1], 0.0);
        for &p in phases {
            if reach * gain[p] <= max {
                continue;
            }
            let h = &TRUE_PEAK_TAPS[p];
            #[cfg(target_arch = "x86_64")]
            if FMA && len == TILE {
                // SAFETY: `FMA` is only set on the AVX2 and FMA path; the tile reads
                // buf[start..start + TILE + TAPS - 1], inside `buf` (len == TILE).
                max = max.max(unsafe { tile_abs_max_avx2(buf[start..start + TILE + TAPS - 1].as_ptr(), h) });
                continue;
            }
            let mut acc = [0f32; TILE];
            if len == TILE {
                for (k, &hk) in h.iter().enumerate() {
                    // Output n reads x[n - k], which sits at buf[n + TAPS - 1 - k].
                    let src: &[f32; TILE] = buf[start + TAPS - 1 - k..][..TILE].try_into().expect("TILE long");
                    for (a, &x) in acc.iter_mut().zip(src) {
                        *a = madd(hk, x, *a);
                    }
                }
            } else {
                for (k, &hk) in h.iter().enumerate() {
                    let src = &buf[start + TAPS - 1 - k..start + TAPS - 1 - k + len];
                    for (a, &x) in acc[..len].iter_mut().zip(src) {
                        *a = madd(hk, x, *a);
                    }
                }
            }
            max = abs_max(&acc[..len], max);
        }
        start += len;
    }
    max
}

/// The largest |y| of one whole tile (32 outputs; `src` points at its first output's oldest
/// input) in four registers. Written out because LLVM kept the plain loop's accumulators in a
/// stack array, stored and reloaded at every tap (a store-forwarding stall per tap). The same
/// fused products in the same order as the plain loop: the same result.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_abs_max_avx2(src: *const f32, h: &[f32; TAPS]) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_ps(); 4];
    for (k, &hk) in h.iter().enumerate() {
        let (hk, from) = (_mm256_set1_ps(hk), src.add(TAPS - 1 - k));
        for (i, a) in acc.iter_mut().enumerate() {
            *a = _mm256_fmadd_ps(hk, _mm256_loadu_ps(from.add(8 * i)), *a);
        }
    }
    let magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let [a, b, c, d] = acc.map(|a| _mm256_and_ps(a, magnitude));
    let m = _mm256_max_ps(_mm256_max_ps(a, b), _mm256_max_ps(c, d));
    let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    let m = _mm_max_ss(m, _mm_shuffle_ps::<0b01>(m, m));
    _mm_cvtss_f32(m)
}

/// A BS.1770 loudness meter for one stream of interleaved audio.
#[derive(Clone, Debug)]
pub struct Meter {
    rate: u32,
    channels: usize,
    weights: Vec<f64>,
    kfilter: Cascade,
    /// One per channel, or none when the true peak is not measured.
    peaks: Vec<PeakMeter>,
    /// Sub-blocks completed so far, and the weighted energy and samples of the one under way.
    subs_done: usize,
    sub_energy: f64,
    sub_len: usize,
    /// The last [`SHORT_TERM_SUBS`] sub-blocks' `(energy, samples)`.
    recent: VecDeque<(f64, usize)>,
    /// Mean squares of every 400 ms gating block, and of every 3 s window (for LRA), so far.
    blocks: Vec<f64>,
    short_terms: Vec<f64>,
    /// Scratch: one span's K-weighted energy per channel.
    energy: Vec<f64>,
    /// The time-split K-weighting for long pushes ([`Split`]; `None` without AVX2 and FMA),
    /// and its per-sub-block energies.
    split: Option<Split>,
    split_energy: Vec<f64>,
}

/// What a meter has measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    pub integrated_lufs: Option<f64>,
    pub loudness_range_lu: Option<f64>,
    pub momentary_lufs: Option<f64>,
    pub short_term_lufs: Option<f64>,
    /// dBTP; `None` for digital silence.
    pub true_peak_dbtp: Option<f64>,
}

impl Meter {
    /// A meter at `rate` with one weight per channel; `true_peak` false leaves the true peak
    /// unmeasured (reported as `None`).
    pub fn new(rate: u32, weights: Vec<f64>, true_peak: bool) -> Meter {
        let channels = weights.len().max(1);
        let kfilter = Cascade::new(k_weighting(rate as f64), channels);
        let split = if kfilter.vectorised() { Split::new(kfilter.sections()) } else { None };
        Meter {
            rate,
            channels,
            kfilter,
            split,
            split_energy: Vec::new(),
            peaks: if true_peak { vec![PeakMeter::new(); channels] } else { Vec::new() },
            weights,
            subs_done: 0,
            sub_energy: 0.0,
            sub_len: 0,
            recent: VecDeque::with_capacity(SHORT_TERM_SUBS + 1),
            blocks: Vec::new(),
            short_terms: Vec::new(),
            energy: vec![0.0; channels],
        }
    }

    /// The same meter without the time-split path: every sample through the serial kernel
    /// (what the split path is compared with).
    pub fn serial(mut self) -> Meter {
        self.split = None;
        self
    }

    /// Samples in sub-block `i`: sub-block boundaries at `floor(i * rate / 10)`, so rates that
    /// are not a multiple of 10 Hz still tile the signal exactly.
    fn sub_block_len(&self, i: usize) -> usize {
        let r = self.rate as u64;
        ((i as u64 + 1) * r / 10 - i as u64 * r / 10) as usize
    }

    /// Measures interleaved samples; returns the largest true peak among this chunk's channels
    /// (linear; 0 when the true peak is not measured), for a caller that limits the chunk's gain.
    pub fn push(&mut self, samples: &[f32]) -> f32 {
        let ch = self.channels;
        let frames = samples.len() / ch;
        let phases = phases(self.rate);
        let mut chunk_peak = 0f32;
        for c in 0..self.peaks.len() {
            chunk_peak = chunk_peak.max(self.peaks[c].push(samples, c, ch, phases));
        }
        // K-weighting of all channels at once, each sub-block's span squared and summed in the
        // cascade's kernel (in f64; the K-weighted audio itself is never needed), then weighted.
        let mut pos = 0;
        while pos < frames {
            if self.sub_len == 0 {
                let used = self.push_split(&samples[pos * ch..frames * ch]);
                if used > 0 {
                    pos += used;
                    continue;
                }
            }
            let need = self.sub_block_len(self.subs_done) - self.sub_len;
            let take = need.min(frames - pos);
            self.kfilter.energy(&samples[pos * ch..(pos + take) * ch], &mut self.energy);
            self.sub_energy += self.energy.iter().zip(&self.weights).map(|(e, w)| e * w).sum::<f64>();
            self.sub_len += take;
            pos += take;
            if self.sub_len == self.sub_block_len(self.subs_done) {
                self.close_sub_block();
            }
        }
        chunk_peak
    }

    /// Measures as many whole sub-blocks from the start of `samples` as the time-split path
    /// takes (none when the span is too short for it to pay: each chunk at least twice
    /// [`Split::head`]); returns the frames used. The chunks are equal and a whole number of
    /// the sub-block pattern's period (10 / gcd(rate, 10) sub-blocks, one for rates that are
    /// a multiple of 10 Hz), so every chunk has the same sub-block boundaries.
    fn push_split(&mut self, samples: &[f32]) -> usize {
        let Some(head) = self.split.as_ref().map(Split::head) else { return 0 };
        let ch = self.channels;
        let frames = samples.len() / ch;
        let chunks = Split::chunks(ch);
        if frames < chunks * 2 * head {
            return 0;
        }
        let period = 10 / gcd(self.rate as usize, 10);
        let per_chunk = frames / chunks;
        let mut bounds = Vec::new();
        let mut len = 0;
        loop {
            let next = self.sub_block_len(self.subs_done + bounds.len());
            if len + next > per_chunk {
                break;
            }
            len += next;
            bounds.push(len);
        }
        bounds.truncate(bounds.len() / period * period);
        let Some(&span) = bounds.last() else { return 0 };
        if span < 2 * head {
            return 0;
        }
        let (split, energy) = (self.split.as_mut().expect("checked above"), &mut self.split_energy);
        split.energies(self.kfilter.state_mut(), &samples[..chunks * span * ch], ch, &bounds, energy);
        let energy = std::mem::take(&mut self.split_energy);
        for k in 0..chunks {
            for (j, &end) in bounds.iter().enumerate() {
                let e = &energy[(k * bounds.len() + j) * ch..][..ch];
                self.sub_energy = e.iter().zip(&self.weights).map(|(e, w)| e * w).sum::<f64>();
                self.sub_len = end - if j == 0 { 0 } else { bounds[j - 1] };
                self.close_sub_block();
            }
        }
        self.split_energy = energy;
        chunks * span
    }

    fn close_sub_block(&mut self) {
        self.recent.push_back((self.sub_energy, self.sub_len));
        if self.recent.len() > SHORT_TERM_SUBS {
            self.recent.pop_front();
        }
        self.subs_done += 1;
        self.sub_energy = 0.0;
        self.sub_len = 0;
        if let Some(ms) = self.window(BLOCK_SUBS) {
            self.blocks.push(ms);
        }
        if let Some(ms) = self.window(SHORT_TERM_SUBS) {
            self.short_terms.push(ms);
        }
    }

    /// Mean square of the last `subs` complete sub-blocks, once there are that many.
    fn window(&self, subs: usize) -> Option<f64> {
        if self.recent.len() < subs {
            return None;
        }
        let (e, n) = self.recent.iter().rev().take(subs).fold((0.0, 0usize), |(e, n), &(de, dn)| (e + de, n + dn));
        Some(e / n.max(1) as f64)
    }

    /// Momentary (400 ms) or short-term (3 s) loudness at the last 100 ms boundary; a stream's
    /// first sub-blocks are measured as if silence preceded them.
    fn sliding(&self, subs: usize) -> Option<f64> {
        if self.recent.is_empty() {
            return None;
        }
        let (e, _) = self.recent.iter().rev().take(subs).fold((0.0, 0usize), |(e, n), &(de, dn)| (e + de, n + dn));
        let nominal = self.rate as f64 / 10.0 * subs as f64;
        lufs(e / nominal)
    }

    /// Integrated loudness so far: gated mean of the 400 ms blocks (BS.1770-4 eq. 7).
    pub fn integrated_lufs(&self) -> Option<f64> {
        let above = |gate: f64| self.blocks.iter().copied().filter(move |&z| lufs(z).is_some_and(|l| l > gate));
        let (sum, n) = above(ABSOLUTE_GATE_LUFS).fold((0.0, 0usize), |(s, n), z| (s + z, n + 1));
        if n == 0 {
            return None;
        }
        let relative = lufs(sum / n as f64)? + RELATIVE_GATE_LU;
        let (sum, n) = above(ABSOLUTE_GATE_LUFS.max(relative)).fold((0.0, 0usize), |(s, n), z| (s + z, n + 1));
        if n == 0 {
            return None;
        }
        lufs(sum / n as f64)
    }

    /// Loudness range so far (EBU Tech 3342): the 10th to 95th percentile of the gated
    /// short-term loudness values, as numpy's default (linear) percentile.
    pub fn loudness_range_lu(&self) -> Option<f64> {
        let abs: Vec<f64> = self.short_terms.iter().filter_map(|&z| lufs(z)).filter(|&l| l > ABSOLUTE_GATE_LUFS).collect();
        if abs.is_empty() {
            return None;
        }
        let mean = self.short_terms.iter().filter(|&&z| lufs(z).is_some_and(|l| l > ABSOLUTE_GATE_LUFS)).sum::<f64>() / abs.len() as f64;
        let gate = lufs(mean)? + LRA_RELATIVE_GATE_LU;
        let mut kept: Vec<f64> = abs.into_iter().filter(|&l| l > gate).collect();
        if kept.is_empty() {
            return None;
        }
        kept.sort_by(f64::total_cmp);
        Some(percentile(&kept, 95.0) - percentile(&kept, 10.0))
    }

    pub fn true_peak_dbtp(&self) -> Option<f64> {
        if self.peaks.is_empty() {
            return None;
        }
        let max = self.peaks.iter().fold(0f32, |m, p| m.max(p.max));
        (max > 0.0).then(|| 20.0 * (max as f64).log10())
    }

    pub fn measurement(&self) -> Measurement {
        Measurement {
            integrated_lufs: self.integrated_lufs(),
            loudness_range_lu: self.loudness_range_lu(),
            momentary_lufs: self.sliding(BLOCK_SUBS),
            short_term_lufs: self.sliding(SHORT_TERM_SUBS),
            true_peak_dbtp: self.true_peak_dbtp(),
        }
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// numpy's default percentile of sorted values: linear between the closest ranks.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    let next = sorted[(i + 1).min(sorted.len() - 1)];
    sorted[i] + frac * (next - sorted[i])
}

/// The gain in dB that brings `m` to `target` without its true peak passing `ceiling`, and
/// whether the ceiling lowered it; 0 dB when there is nothing to measure (silence, or less
/// than one 400 ms block above the absolute gate).
pub fn normalising_gain(m: &Measurement, target: f64, ceiling: f64) -> (f64, bool) {
    let Some(integrated) = m.integrated_lufs else { return (0.0, false) };
    let gain = target - integrated;
    match m.true_peak_dbtp {
        Some(tp) if tp + gain > ceiling => (ceiling - tp, true),
        _ => (gain, false),
    }
}

fn opt(v: Option<f64>) -> Value {
    v.map_or(Value::Null, Value::from)
}

struct LoudnessNode {
    params: LoudnessParams,
    /// In a streaming session: the meter and the gain the last chunk ended with (dB).
    stream: Option<(Meter, f64)>,
}

impl LoudnessNode {
    fn meter_for(&self, audio: &AudioBuffer) -> Result<Meter, NodeError> {
        let weights = self.params.weights(audio.channels.max(1) as usize)?;
        Ok(Meter::new(audio.sample_rate, weights, self.params.measures_true_peak()))
    }

    fn output(audio: AudioBuffer, report: Value) -> Payload {
        Payload::Map([("audio".to_string(), Payload::Audio(audio)), ("loudness".to_string(), Payload::Json(report))].into())
    }

    fn whole(&mut self, audio: AudioBuffer) -> Result<Payload, NodeError> {
        let mut meter = self.meter_for(&audio)?;
        let (rate, channels) = (audio.sample_rate, audio.channels);
        let mut samples = into_f32(audio.samples);
        check_finite(TYPE_NAME, &samples)?;
        meter.push(&samples);
        let m = meter.measurement();
        let (gain_db, limited) = match self.params.mode {
            Mode::Normalize => normalising_gain(&m, self.params.target_lufs, self.params.peak_ceiling_dbtp),
            Mode::Measure => (0.0, false),
        };
        if gain_db != 0.0 {
            let factor = 10f64.powf(gain_db / 20.0) as f32;
            samples.iter_mut().for_each(|x| *x *= factor);
        }
        let report = json!({
            "integrated_lufs": opt(m.integrated_lufs),
            "loudness_range_lu": opt(m.loudness_range_lu),
            "true_peak_dbtp": opt(m.true_peak_dbtp),
            "gain_db": gain_db,
            "peak_limited": limited,
        });
        Ok(Self::output(AudioBuffer { samples: Samples::F32(samples.into()), sample_rate: rate, channels }, report))
    }

    /// One chunk of a stream: measured, then (normalize) scaled by a gain that ramps from the
    /// previous chunk's to `target - integrated so far`, never above the ceiling for this chunk's
    /// own true peak. Reports the sliding-window loudness at the chunk's end.
    fn chunk(&mut self, audio: AudioBuffer, last: bool) -> Result<Payload, NodeError> {
        if let Some((meter, _)) = &self.stream {
            if (meter.rate, meter.channels) != (audio.sample_rate, audio.channels.max(1) as usize) {
                return Err(NodeError::invalid_input(format!(
                    "this stream started with audio at {} Hz and {} channel(s); a chunk at {} Hz with {} channel(s) \
                     cannot continue it",
                    meter.rate, meter.channels, audio.sample_rate, audio.channels
                )));
            }
        }
        let fresh = if self.stream.is_none() { Some(self.meter_for(&audio)?) } else { None };
        let (rate, channels) = (audio.sample_rate, audio.channels);
        let mut samples = into_f32(audio.samples);
        check_finite(TYPE_NAME, &samples)?;
        let (meter, gain_before) = self.stream.get_or_insert_with(|| (fresh.expect("built above"), 0.0));
        let chunk_peak = meter.push(&samples);
        let m = meter.measurement();
        let mut limited = false;
        let mut gain_after = *gain_before;
        if self.params.mode == Mode::Normalize {
            if let Some(i) = m.integrated_lufs {
                gain_after = self.params.target_lufs - i;
            }
            let ceiling = (chunk_peak > 0.0).then(|| self.params.peak_ceiling_dbtp - 20.0 * (chunk_peak as f64).log10());
            let (g0, g1) = (10f64.powf(*gain_before / 20.0), 10f64.powf(gain_after / 20.0));
            let limit = ceiling.map_or(f64::INFINITY, |c| 10f64.powf(c / 20.0));
            limited = g0.max(g1) > limit;
            let frames = samples.len() / channels.max(1) as usize;
            for (i, frame) in samples.chunks_mut(channels.max(1) as usize).enumerate() {
                let g = (g0 + (g1 - g0) * (i + 1) as f64 / frames as f64).min(limit) as f32;
                frame.iter_mut().for_each(|x| *x *= g);
            }
            *gain_before = gain_after;
        }
        let report = json!({
            "momentary_lufs": opt(m.momentary_lufs),
            "short_term_lufs": opt(m.short_term_lufs),
            "integrated_lufs": opt(m.integrated_lufs),
            "loudness_range_lu": opt(if last { m.loudness_range_lu } else { None }),
            "true_peak_dbtp": opt(m.true_peak_dbtp),
            "gain_db": if self.params.mode == Mode::Normalize { gain_after } else { 0.0 },
            "peak_limited": limited,
        });
        Ok(Self::output(AudioBuffer { samples: Samples::F32(samples.into()), sample_rate: rate, channels }, report))
    }
}

impl Node for LoudnessNode {
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        self.whole(expect_audio(inputs.one()?)?)
    }

    fn push(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        self.chunk(expect_audio(inputs.one()?)?, false)
    }

    /// The last chunk (or an empty one), reporting the session's loudness range too.
    fn finish(&mut self, inputs: Option<Inputs>) -> Result<Option<Payload>, NodeError> {
        let audio = match inputs {
            Some(i) => expect_audio(i.one()?)?,
            None => match &self.stream {
                Some((m, _)) => AudioBuffer { samples: Samples::F32(Vec::new().into()), sample_rate: m.rate, channels: m.channels as u16 },
                None => return Ok(None),
            },
        };
        let out = self.chunk(audio, true);
        self.stream = None;
        out.map(Some)
    }
}

pub fn node_type() -> NodeType {
    NodeType {
        params: LoudnessParams::specs(),
        outputs: vec!["audio".into(), "loudness".into()],
        stateful: true,
        ..NodeType::new(
            TYPE_NAME,
            "ITU-R BS.1770-4 / EBU R128 loudness: integrated loudness, loudness range and true peak (4x \
             oversampled), and normalisation to target_lufs under a true-peak ceiling. Output: the audio \
             (normalised, or unchanged with mode measure) and a loudness report; in streams, momentary and \
             short-term loudness per chunk.",
            |cfg| Ok(Box::new(LoudnessNode { params: LoudnessParams::from_params(cfg.params)?, stream: None })),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At 48 kHz the designed K-weighting equals the coefficients printed in BS.1770-4.
    #[test]
    fn k_weighting_at_48k_is_the_standards() {
        let k = k_weighting(48000.0);
        let want = [
            ([1.53512485958697, -2.69169618940638, 1.19839281085285], [-1.69065929318241, 0.73248077421585]),
            ([1.0, -2.0, 1.0], [-1.99004745483398, 0.99007225036621]),
        ];
        for (s, (b, a)) in k.iter().zip(want) {
            for (x, y) in s.b.iter().zip(b) {
                assert!((x - y).abs() < 1e-8, "{x} vs {y}");
            }
            for (x, y) in s.a.iter().zip(a) {
                assert!((x - y).abs() < 1e-8, "{x} vs {y}");
            }
        }
    }

    /// The polyphase peak finds the peak between samples: a sine at fs/4 sampled at ±45° reads
    /// 0.707 at the samples and 1.0 interpolated.
    #[test]
    fn true_peak_finds_inter_sample_peaks() {
        let x: Vec<f32> = (0..4800).map(|i| (std::f64::consts::FRAC_PI_2 * i as f64 + std::f64::consts::FRAC_PI_4).sin() as f32).collect();
        let mut m = Meter::new(48000, vec![1.0], true);
        m.push(&x);
        let tp = m.true_peak_dbtp().expect("not silent");
        assert!(tp > -0.5 && tp < 0.3, "{tp}");
        assert!(x.iter().fold(0f32, |a, v| a.max(v.abs())) < 0.71);
    }

    /// Without the true peak the loudness is the same and the peak reads None.
    #[test]
    fn true_peak_off_measures_the_same_loudness() {
        let x: Vec<f32> = (0..2 * 48000 * 3).map(|i| ((i / 2) as f64 * 0.05).sin() as f32 * if i % 2 == 0 { 0.3 } else { 0.1 }).collect();
        let (mut on, mut off) = (Meter::new(48000, vec![1.0, 1.0], true), Meter::new(48000, vec![1.0, 1.0], false));
        on.push(&x);
        assert_eq!(off.push(&x), 0.0);
        let (a, b) = (on.measurement(), off.measurement());
        assert_eq!(a.integrated_lufs, b.integrated_lufs);
        assert_eq!(a.loudness_range_lu, b.loudness_range_lu);
        assert!(a.true_peak_dbtp.is_some() && b.true_peak_dbtp.is_none());
    }

    /// A reproducible noise sample in [-1, 1) (xorshift), so the tests need no crate.
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// The time-split path measures what the serial kernel measures: every 400 ms block's mean
    /// square within 1e-9 relative (1e-6 beyond stereo, where the serial path squares outputs
    /// rounded to f32; blocks above the absolute gate), integrated loudness and
    /// loudness range within 1e-6 LU, on long noise, DC and a step (the chunks' zero-state
    /// transients cancelled by the correction), at 44.1 and 48 kHz, mono, stereo and 5.1;
    /// whole and in pushes of odd sizes, the state carried from a split span to the next push.
    #[test]
    fn time_split_equals_the_serial_kernel() {
        for rate in [44100u32, 48000] {
            for ch in [1usize, 2, 6] {
                let frames = rate as usize * 7 + 1234;
                let n = noise(frames * ch, rate as u64 + ch as u64);
                let signals: [(&str, Vec<f32>); 3] = [
                    ("noise", n.iter().enumerate().map(|(i, v)| v * 0.3 * (1.0 + (i / ch) as f32 / frames as f32)).collect()),
                    ("dc", vec![0.5; frames * ch]),
                    ("step", (0..frames * ch).map(|i| if i / ch > 40_000 { 0.5 } else { 0.0 }).collect()),
                ];
                for (what, x) in &signals {
                    let weights = default_weights(ch);
                    let mut serial = Meter::new(rate, weights.clone(), false).serial();
                    serial.push(x);
                    let mut whole = Meter::new(rate, weights.clone(), false);
                    assert!(whole.split.is_some() || !whole.kfilter.vectorised());
                    whole.push(x);
                    let mut pushed = Meter::new(rate, weights.clone(), false);
                    let cuts = [0, 777, 777 + rate as usize * 4, 777 + rate as usize * 4 + 5, frames];
                    for w in cuts.windows(2) {
                        pushed.push(&x[w[0] * ch..w[1] * ch]);
                    }
                    for m in [&whole, &pushed] {
                        assert_eq!(m.blocks.len(), serial.blocks.len());
                        for (i, (a, b)) in m.blocks.iter().zip(&serial.blocks).enumerate() {
                            if lufs(*b).is_some_and(|l| l > ABSOLUTE_GATE_LUFS) {
                                // Beyond stereo the serial path squares its outputs rounded to f32.
                                let tol = if ch <= 2 { 1e-9 } else { 1e-6 };
                                assert!((a - b).abs() <= tol * b, "{what} {rate} Hz {ch} ch block {i}: {a} vs {b}");
                            } else {
                                assert!(lufs(*a).is_none_or(|l| l <= ABSOLUTE_GATE_LUFS), "{what} {rate} Hz {ch} ch block {i}: {a} vs {b}");
                            }
                        }
                        let (got, want) = (m.measurement(), serial.measurement());
                        for (g, w) in [(got.integrated_lufs, want.integrated_lufs), (got.loudness_range_lu, want.loudness_range_lu)] {
                            match (g, w) {
                                (Some(g), Some(w)) => assert!((g - w).abs() < 1e-6, "{what} {rate} Hz {ch} ch: {g} vs {w}"),
                                (g, w) => assert_eq!(g, w, "{what} {rate} Hz {ch} ch"),
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn percentile_is_numpys_linear_one() {
        let v = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 100.0), 8.0);
        assert!((percentile(&v, 50.0) - 3.0).abs() < 1e-12);
        assert!((percentile(&v, 95.0) - 7.4).abs() < 1e-12);
    }
}
