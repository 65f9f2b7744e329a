//! `AudioResampleNode`: changes the sample rate of audio with rubato's synchronous FFT resampling
//! algorithm (run on rustfft/realfft with a longer transform), with whole-buffer output that is
//! exactly `round(frames * out / in)` long and time-aligned.
//!
//! The work is done by [`Resampler`], which also offers a streaming `push`/`finish` API whose
//! concatenated output is bit-identical to [`Resampler::process_whole`] on the same samples: both
//! cut the input into the same fixed FFT blocks counted from the first frame.
//!
//! Algorithm (rubato 5.1 `Fft`, `FixedSync::Both`, with the transform decoupled from the filter):
//! the filter is a windowed-sinc low-pass of `fft_in` taps (squared Blackman-Harris window, sum
//! normalised to 1, rubato's cutoff); the input is cut into blocks of `n_in - fft_in` frames
//! ([`fft_lengths`]: `n_in = 8*fft_in` unless that is very long); each block is zero-padded to
//! `n_in`, transformed, multiplied by the filter's spectrum, truncated (downsampling) or
//! zero-extended (upsampling) to `n_out/2 + 1` bins, inverse-transformed at `n_out` points and
//! overlap-added. `fft_in / fft_out` and `n_in / n_out` equal `input_rate / output_rate` exactly.
//! The filter delays everything by `fft_out / 2` output frames, which is dropped, so output frame
//! `k` is the signal at time `k / output_rate`. rubato's own `Fft` uses `n_in = 2*fft_in`, which
//! spends half of the FFT work on zero padding (2x slower here).

use serde_json::Value;

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner};
use rubato::{calculate_cutoff, WindowFunction};

use super::params::node_params;
use super::{expect_audio, Inputs, Node, NodeType, ParamKind};
use crate::data::{AudioBuffer, Payload, Samples};
use crate::error::NodeError;

pub const TYPE_NAME: &str = "AudioResampleNode";

/// Lowest and highest sample rate the node accepts, in Hz.
pub const MIN_RATE: u32 = 8_000;
pub const MAX_RATE: u32 = 192_000;

/// Most channels the resampler accepts (the Python input layer's limit too).
pub const MAX_CHANNELS: usize = 256;

/// A quality preset: how long the anti-aliasing filter is, and the float precision inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Quality {
    Low,
    Medium,
    High,
    VeryHigh,
}

impl Quality {
    pub const NAMES: &'static [&'static str] = &["low", "medium", "high", "very_high"];

    pub fn parse(s: &str) -> Option<Quality> {
        match s {
            "low" => Some(Quality::Low),
            "medium" => Some(Quality::Medium),
            "high" => Some(Quality::High),
            "very_high" => Some(Quality::VeryHigh),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Quality::Low => "low",
            Quality::Medium => "medium",
            Quality::High => "high",
            Quality::VeryHigh => "very_high",
        }
    }

    /// Minimum FFT block length on the lower-rate side, in frames of that side.
    ///
    /// This is the filter length counted at the lower of the two rates, which is what sets the
    /// transition band relative to the lower Nyquist frequency (rubato derives the cutoff from it).
    pub fn min_block(self) -> usize {
        match self {
            Quality::Low => 64,
            Quality::Medium => 128,
            Quality::High => 256,
            Quality::VeryHigh => 1024,
        }
    }

    /// Whether the FFTs run in f64; f32 cannot reach the very_high noise floor.
    pub fn uses_f64(self) -> bool {
        matches!(self, Quality::VeryHigh)
    }
}

/// Largest sample magnitude accepted: far above any real audio, far below where f32 FFT block
/// sums could overflow.
pub const MAX_ABS_SAMPLE: f32 = 1e30;

/// Output frames for `frames` input frames: `round(frames * output_rate / input_rate)`, halves up.
pub fn output_frames(frames: usize, input_rate: u32, output_rate: u32) -> usize {
    let num = frames as u128 * output_rate as u128 * 2 + input_rate as u128;
    (num / (2 * input_rate as u128)) as usize
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn largest_prime_factor(mut n: usize) -> usize {
    let mut largest = 1;
    let mut p = 2;
    while p * p <= n {
        while n.is_multiple_of(p) {
            largest = p;
            n /= p;
        }
        p += 1;
    }
    largest.max(n)
}

/// The FFT block sizes `(fft_in, fft_out)` used for a rate pair and preset.
///
/// Both must be even: the sinc is centred on tap `fft_in / 2` and rubato reports the delay as
/// `fft_out / 2` output frames; with odd sizes the two differ by half a sample and the output
/// would be misaligned. `fft_in:fft_out = min_in:min_out` are coprime, so the block multiple `k`
/// must be even. Among the first few admissible `k` the one with the smoothest FFT lengths wins,
/// since an FFT with a large prime factor is several times slower.
pub fn block_sizes(input_rate: u32, output_rate: u32, quality: Quality) -> (usize, usize) {
    let g = gcd(input_rate as usize, output_rate as usize);
    let (min_in, min_out) = (input_rate as usize / g, output_rate as usize / g);
    let small = min_in.min(min_out);
    let mut k = quality.min_block().div_ceil(small).max(2);
    k += k % 2;
    let smooth = |k: usize| largest_prime_factor(k * min_in).max(largest_prime_factor(k * min_out)) <= 7;
    let limit = k + k / 4;
    let best = (k..=limit).step_by(2).find(|&k| smooth(k)).unwrap_or(k);
    (best * min_in, best * min_out)
}

/// Forward and inverse FFT lengths `(n_in, n_out)` for the block sizes `(fft_in, fft_out)`.
///
/// rubato's `Fft` transforms every block of `fft_in` frames at `2*fft_in` points: half of each
/// transform is zero padding for the `fft_in`-tap filter. Here the filter stays the same but the
/// transform is `FFT_FACTOR` times the filter length, so each block carries `(FFT_FACTOR - 1)`
/// filter lengths of new input and the padding is `1/FFT_FACTOR` of the work (measured: 48k→16k
/// `high` 768-tap filter, factor 2 ≈ 210 µs per second of audio, factor 8 ≈ 90 µs). Lengths whose
/// complex half would exceed `MAX_HALF_FFT` points fall back to smaller factors (down to 2, the
/// rubato layout), so very long filters (rates with a tiny common divisor) stay bounded.
pub fn fft_lengths(fft_in: usize, fft_out: usize) -> (usize, usize) {
    fft_lengths_for(fft_in, fft_out, FFT_FACTOR)
}

/// As [`fft_lengths`] with at most `factor` filter lengths per transform (2: rubato's layout,
/// blocks of one filter length, what streaming sessions use for low latency).
pub fn fft_lengths_for(fft_in: usize, fft_out: usize, factor: usize) -> (usize, usize) {
    let mut f = factor.max(2);
    while f > 2 && fft_in.max(fft_out) * f / 2 > MAX_HALF_FFT {
        f /= 2;
    }
    (f * fft_in, f * fft_out)
}

/// Why a resampler for this rate pair, channel count and preset would hold too much state, if it
/// would. Its buffers and FFT plans grow with the block length, which follows the rates' common
/// divisor, and the sender of a stream picks its rate: 191999 -> 16000 Hz needs blocks of 383998
/// frames (about 50 MB for one channel). Rate pairs beyond `RESAMPLER_BLOCK_FRAMES`, and channel
/// counts beyond `RESAMPLER_BLOCK_SAMPLES` in all, are refused before anything is allocated.
pub fn state_problem(input_rate: u32, output_rate: u32, channels: usize, quality: Quality) -> Option<String> {
    use crate::limits::{RESAMPLER_BLOCK_FRAMES, RESAMPLER_BLOCK_SAMPLES};
    if input_rate == output_rate {
        return None;
    }
    let (fft_in, fft_out) = block_sizes(input_rate, output_rate, quality);
    let block = fft_in.max(fft_out);
    if block > RESAMPLER_BLOCK_FRAMES {
        let g = gcd(input_rate as usize, output_rate as usize);
        return Some(format!(
            "resampling {input_rate} Hz to {output_rate} Hz needs FFT blocks of {block} frames (the rates' greatest \
             common divisor is only {g} Hz); the resampler takes at most {RESAMPLER_BLOCK_FRAMES} (rates that are \
             multiples of 25 Hz always fit)"
        ));
    }
    if block * channels > RESAMPLER_BLOCK_SAMPLES {
        return Some(format!(
            "resampling {input_rate} Hz to {output_rate} Hz with {channels} channels needs FFT blocks of {block} frames \
             per channel, {} samples in all; the resampler holds at most {RESAMPLER_BLOCK_SAMPLES}",
            block * channels
        ));
    }
    None
}

/// Transform length in filter lengths (a power of two keeps the FFT lengths smooth).
const FFT_FACTOR: usize = 8;
/// The same for streaming: a block is then one filter length (48k→16k `high`: 768 frames,
/// 16 ms) instead of seven (112 ms), so a live stream's output lags its input by one block less.
pub const STREAM_FFT_FACTOR: usize = 2;
/// Largest complex FFT (half the real length) chosen when a smaller factor is possible.
const MAX_HALF_FFT: usize = 1 << 15;

/// Float types the resampler can run in.
trait Real: rustfft::FftNum + rustfft::num_traits::Float {
    fn of_f32(x: f32) -> Self;
    fn to_f32(self) -> f32;
}

impl Real for f32 {
    fn of_f32(x: f32) -> f32 {
        x
    }
    fn to_f32(self) -> f32 {
        self
    }
}

impl Real for f64 {
    fn of_f32(x: f32) -> f64 {
        x as f64
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
}

/// The relative cutoff (of the input Nyquist frequency), exactly as rubato 5.1's `Fft` computes it.
fn relative_cutoff(fft_in: usize, fft_out: usize) -> f32 {
    let window = WindowFunction::BlackmanHarris2;
    if fft_in > fft_out {
        calculate_cutoff::<f32>(fft_out, window) * fft_out as f32 / fft_in as f32
    } else {
        calculate_cutoff::<f32>(fft_in, window)
    }
}

/// The `fft_in`-tap low-pass, in f64: a sinc centred on tap `fft_in/2` with the given relative
/// cutoff, times a periodic Blackman-Harris window squared, normalised to sum 1 (rubato's
/// `make_sincs` with one phase, computed in f64 rather than the working precision).
fn filter_taps(fft_in: usize, cutoff: f32) -> Vec<f64> {
    use std::f64::consts::PI;
    let n = fft_in as f64;
    let c = cutoff as f64;
    let mut taps: Vec<f64> = (0..fft_in)
        .map(|i| {
            let ph = 2.0 * PI * i as f64 / n;
            let w = 0.35875 - 0.48829 * ph.cos() + 0.14128 * (2.0 * ph).cos() - 0.01168 * (3.0 * ph).cos();
            let x = (i as f64 - (fft_in / 2) as f64) * c;
            let sinc = if x == 0.0 { 1.0 } else { (PI * x).sin() / (PI * x) };
            w * w * sinc
        })
        .collect();
    let sum: f64 = taps.iter().sum();
    taps.iter_mut().for_each(|t| *t /= sum);
    taps
}

/// Block-convolution resampler state for one rate pair and channel count (rubato's `Fft`
/// algorithm with a longer transform; see [`fft_lengths`]).
///
/// Per block and channel: `block_in` new frames plus zero padding are transformed at `n_in` real
/// points (one complex FFT of `n_in/2` points on the samples taken in pairs); only the `keep`
/// bins that survive are unpacked into the real spectrum, multiplied by the filter's spectrum and
/// inverse-transformed at `n_out` points; the first `block_out` frames plus the previous block's
/// tail are the output, the last `fft_out` frames the next tail.
struct Core<T: Real> {
    channels: usize,
    fft_in: usize,
    fft_out: usize,
    block_in: usize,
    block_out: usize,
    /// Spectrum bins carried from input to output (the rest are zero).
    keep: usize,
    fwd: Arc<dyn rustfft::Fft<T>>,
    fwd_scratch: Vec<Complex<T>>,
    /// Per channel: the block being filled, two frames per complex value, then the zero padding;
    /// the forward FFT runs in place on it.
    stage: Vec<Vec<Complex<T>>>,
    /// Frames of the current block filled so far.
    filled: usize,
    /// `-j * exp(-2πik/n_in)`: unpacks bin `k` of the real transform from the complex one.
    twiddles: Vec<Complex<T>>,
    /// Half the filter's spectrum scaled by `1/n_in` (the unpacking's factor 1/2 and the
    /// unnormalised transform pair folded in), bins `0..keep`.
    filter: Vec<Complex<T>>,
    inv: Arc<dyn ComplexToReal<T>>,
    inv_scratch: Vec<Complex<T>>,
    spec_out: Vec<Complex<T>>,
    time_out: Vec<T>,
    /// Per channel: the last `fft_out` frames of the previous block's output.
    tails: Vec<Vec<T>>,
    /// Start-up delay still to drop, in output frames.
    to_trim: usize,
    frames_in: u64,
    frames_out: u64,
}

impl<T: Real> Core<T> {
    fn new(input_rate: u32, output_rate: u32, channels: usize, quality: Quality, factor: usize) -> Result<Core<T>, NodeError> {
        let (fft_in, fft_out) = block_sizes(input_rate, output_rate, quality);
        let (n_in, n_out) = fft_lengths_for(fft_in, fft_out, factor);
        let keep = if fft_in < fft_out { n_in / 2 + 1 } else { n_out / 2 };
        let cutoff = relative_cutoff(fft_in, fft_out);

        // The filter's spectrum at n_in points, in f64 whatever the working precision.
        let taps = filter_taps(fft_in, cutoff);
        let mut planner64 = RealFftPlanner::<f64>::new();
        let r2c = planner64.plan_fft_forward(n_in);
        let mut padded = vec![0.0f64; n_in];
        for (p, t) in padded.iter_mut().zip(&taps) {
            *p = *t / n_in as f64;
        }
        let mut spectrum = r2c.make_output_vec();
        r2c.process(&mut padded, &mut spectrum)
            .map_err(|e| NodeError::permanent(format!("cannot build the resampling filter: {e}")))?;
        let filter: Vec<Complex<T>> = spectrum[..keep]
            .iter()
            .map(|h| Complex::new(T::from_f64(0.5 * h.re).unwrap_or(T::zero()), T::from_f64(0.5 * h.im).unwrap_or(T::zero())))
            .collect();
        let twiddles: Vec<Complex<T>> = (0..keep)
            .map(|k| {
                let a = -2.0 * std::f64::consts::PI * k as f64 / n_in as f64;
                // -j * (cos a + j sin a) = sin a - j cos a
                Complex::new(T::from_f64(a.sin()).unwrap_or(T::zero()), T::from_f64(-a.cos()).unwrap_or(T::zero()))
            })
            .collect();

        let fwd = rustfft::FftPlanner::<T>::new().plan_fft_forward(n_in / 2);
        let inv = RealFftPlanner::<T>::new().plan_fft_inverse(n_out);
        Ok(Core {
            channels,
            fft_in,
            fft_out,
            block_in: n_in - fft_in,
            block_out: n_out - fft_out,
            keep,
            fwd_scratch: vec![Complex::new(T::zero(), T::zero()); fwd.get_inplace_scratch_len()],
            fwd,
            stage: vec![vec![Complex::new(T::zero(), T::zero()); n_in / 2]; channels],
            filled: 0,
            twiddles,
            filter,
            inv_scratch: inv.make_scratch_vec(),
            spec_out: inv.make_input_vec(),
            time_out: inv.make_output_vec(),
            inv,
            tails: vec![vec![T::zero(); fft_out]; channels],
            to_trim: fft_out / 2,
            frames_in: 0,
            frames_out: 0,
        })
    }

    fn reset(&mut self) {
        self.filled = 0;
        self.tails.iter_mut().for_each(|t| t.fill(T::zero()));
        self.to_trim = self.fft_out / 2;
        self.frames_in = 0;
        self.frames_out = 0;
    }

    /// Transforms the staged block of channel `c` and leaves its `block_out` output frames
    /// (tail of the previous block added) in `time_out[..block_out]`.
    fn transform(&mut self, c: usize) -> Result<(), NodeError> {
        let half = self.stage[c].len();
        let buf = &mut self.stage[c];
        buf[self.block_in / 2..].fill(Complex::new(T::zero(), T::zero()));
        self.fwd.process_with_scratch(buf, &mut self.fwd_scratch);
        // Real spectrum bin k from the half-length complex transform Z of the pairs:
        // X[k] = (Z[k] + conj Z[half-k]) / 2 - j e^{-2πik/n_in} (Z[k] - conj Z[half-k]) / 2, with Z
        // periodic (Z[half] = Z[0]; upsampling keeps bin half, the input Nyquist bin).
        let z = &*buf;
        let bin = |k: usize| {
            let a = z[k % half];
            let b = z[(half - k) % half].conj();
            (a + b + self.twiddles[k] * (a - b)) * self.filter[k]
        };
        // Bins 1..half need no wrap-around: a straight loop over Z forwards and backwards.
        let inner = self.keep.min(half);
        self.spec_out[0] = bin(0);
        let fwd = z[1..inner].iter();
        let bwd = z[half - inner + 1..half].iter().rev();
        for ((((y, a), c), tw), h) in self.spec_out[1..inner].iter_mut().zip(fwd).zip(bwd).zip(&self.twiddles[1..]).zip(&self.filter[1..]) {
            let b = c.conj();
            *y = (*a + b + *tw * (*a - b)) * *h;
        }
        if self.keep > half {
            self.spec_out[half] = bin(half);
        }
        self.spec_out[self.keep..].fill(Complex::new(T::zero(), T::zero()));
        // Bin 0 and the Nyquist bin are real for a real signal; the rounding must not say otherwise.
        self.spec_out[0].im = T::zero();
        if let Some(last) = self.spec_out.last_mut() {
            last.im = T::zero();
        }
        self.inv
            .process_with_scratch(&mut self.spec_out, &mut self.time_out, &mut self.inv_scratch)
            .map_err(|e| NodeError::permanent(format!("resampling failed: {e}")))?;
        let tail = &mut self.tails[c];
        for (y, t) in self.time_out.iter_mut().zip(tail.iter()) {
            *y = *y + *t;
        }
        tail.copy_from_slice(&self.time_out[self.block_out..]);
        Ok(())
    }

    /// Resamples the staged block and appends up to `limit` trimmed output frames, interleaved.
    fn run_block(&mut self, out: &mut Vec<f32>, limit: Option<usize>) -> Result<(), NodeError> {
        let ch = self.channels;
        let skip = self.to_trim.min(self.block_out);
        self.to_trim -= skip;
        let mut emit = self.block_out - skip;
        if let Some(limit) = limit {
            emit = emit.min(limit);
        }
        let start = out.len();
        out.resize(start + emit * ch, 0.0);
        for c in 0..ch {
            self.transform(c)?;
            let src = &self.time_out[skip..skip + emit];
            let dst = &mut out[start..];
            if ch == 1 {
                for (d, s) in dst.iter_mut().zip(src) {
                    *d = Real::to_f32(*s);
                }
            } else {
                for (f, s) in src.iter().enumerate() {
                    dst[f * ch + c] = Real::to_f32(*s);
                }
            }
        }
        self.frames_out += emit as u64;
        Ok(())
    }

    /// Writes `take` frames of channel `c` from the interleaved `src` into the staged block at
    /// frame `self.filled` (two frames per complex value: even frames real, odd imaginary).
    fn stage_channel(&mut self, c: usize, src: &[f32], take: usize) {
        let ch = self.channels;
        let buf = &mut self.stage[c];
        for f in 0..take {
            let x = T::of_f32(src[f * ch + c]);
            let pos = self.filled + f;
            let slot = &mut buf[pos / 2];
            if pos % 2 == 0 {
                slot.re = x;
            } else {
                slot.im = x;
            }
        }
    }

    /// Mono fast path of [`stage_channel`]: whole pairs copied straight into complex values.
    fn stage_mono(&mut self, src: &[f32]) {
        let buf = &mut self.stage[0];
        let mut src = src;
        let mut pos = self.filled;
        if pos % 2 == 1 && !src.is_empty() {
            buf[pos / 2].im = T::of_f32(src[0]);
            src = &src[1..];
            pos += 1;
        }
        let pairs = src.chunks_exact(2);
        let rest = pairs.remainder();
        for (slot, p) in buf[pos / 2..].iter_mut().zip(pairs) {
            *slot = Complex::new(T::of_f32(p[0]), T::of_f32(p[1]));
        }
        if let Some(&x) = rest.first() {
            buf[(pos + src.len() - 1) / 2].re = T::of_f32(x);
        }
    }

    fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), NodeError> {
        let ch = self.channels;
        let frames = input.len() / ch;
        let mut pos = 0;
        while pos < frames {
            let take = (self.block_in - self.filled).min(frames - pos);
            let src = &input[pos * ch..(pos + take) * ch];
            if ch == 1 {
                self.stage_mono(src);
            } else {
                for c in 0..ch {
                    self.stage_channel(c, src, take);
                }
            }
            self.filled += take;
            pos += take;
            if self.filled == self.block_in {
                self.run_block(out, None)?;
                self.filled = 0;
            }
        }
        self.frames_in += frames as u64;
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<f32>, input_rate: u32, output_rate: u32) -> Result<(), NodeError> {
        let total = output_frames(self.frames_in as usize, input_rate, output_rate) as u64;
        while self.frames_out < total {
            // Zero the unfilled rest of the block (an odd fill leaves a half-used complex value).
            let first_free = self.filled.div_ceil(2);
            for buf in &mut self.stage {
                if self.filled % 2 == 1 {
                    buf[self.filled / 2].im = T::zero();
                }
                buf[first_free..].fill(Complex::new(T::zero(), T::zero()));
            }
            self.filled = 0;
            let left = (total - self.frames_out) as usize;
            self.run_block(out, Some(left))?;
        }
        self.reset();
        Ok(())
    }
}

enum Engine {
    /// Equal rates: samples are copied through.
    Same,
    F32(Box<Core<f32>>),
    F64(Box<Core<f64>>),
}

/// A resampler for one rate pair and channel count; build it once and reuse it.
pub struct Resampler {
    input_rate: u32,
    output_rate: u32,
    channels: usize,
    quality: Quality,
    engine: Engine,
}

impl Resampler {
    /// Builds the resampler (30-300 µs for common pairs; more for pairs whose rates share only a
    /// small common divisor, since the FFT blocks then get long).
    pub fn new(input_rate: u32, output_rate: u32, channels: usize, quality: Quality) -> Result<Resampler, NodeError> {
        Resampler::with_fft_factor(input_rate, output_rate, channels, quality, FFT_FACTOR)
    }

    /// A resampler for live streams: the same filter, with transforms of two filter lengths
    /// ([`STREAM_FFT_FACTOR`]), so output comes in blocks of one filter length. About twice the
    /// work of [`new`](Resampler::new) per second of audio; its output equals `new`'s up to
    /// float rounding (the convolution is the same, only the block layout differs).
    pub fn low_latency(input_rate: u32, output_rate: u32, channels: usize, quality: Quality) -> Result<Resampler, NodeError> {
        Resampler::with_fft_factor(input_rate, output_rate, channels, quality, STREAM_FFT_FACTOR)
    }

    fn with_fft_factor(input_rate: u32, output_rate: u32, channels: usize, quality: Quality, factor: usize) -> Result<Resampler, NodeError> {
        for (what, rate) in [("input", input_rate), ("output", output_rate)] {
            if !(MIN_RATE..=MAX_RATE).contains(&rate) {
                return Err(NodeError::invalid_input(format!(
                    "{what} sample rate {rate} Hz is outside {MIN_RATE}..={MAX_RATE} Hz"
                )));
            }
        }
        if channels == 0 {
            return Err(NodeError::invalid_input("audio must have at least one channel"));
        }
        // Staging and FFT buffers are per channel and a whole block long, whatever the input's
        // length: found while fuzzing, an empty buffer claiming 65535 channels made the node size
        // buffers of up to ~10 GB (rate pair dependent). The Python input layer has the same limit.
        if channels > MAX_CHANNELS {
            return Err(NodeError::invalid_input(format!(
                "audio has {channels} channels; the resampler takes at most {MAX_CHANNELS}"
            )));
        }
        if let Some(problem) = state_problem(input_rate, output_rate, channels, quality) {
            return Err(NodeError::invalid_input(problem));
        }
        let engine = if input_rate == output_rate {
            Engine::Same
        } else if quality.uses_f64() {
            Engine::F64(Box::new(Core::new(input_rate, output_rate, channels, quality, factor)?))
        } else {
            Engine::F32(Box::new(Core::new(input_rate, output_rate, channels, quality, factor)?))
        };
        Ok(Resampler { input_rate, output_rate, channels, quality, engine })
    }

    pub fn input_rate(&self) -> u32 {
        self.input_rate
    }

    pub fn output_rate(&self) -> u32 {
        self.output_rate
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    pub fn quality(&self) -> Quality {
        self.quality
    }

    /// FFT block sizes `(input frames, output frames)`; `None` for equal rates.
    pub fn block_sizes(&self) -> Option<(usize, usize)> {
        match &self.engine {
            Engine::Same => None,
            Engine::F32(c) => Some((c.fft_in, c.fft_out)),
            Engine::F64(c) => Some((c.fft_in, c.fft_out)),
        }
    }

    /// The anti-aliasing filter's cutoff in Hz (where rubato places the sinc's band edge;
    /// examples/resample_measure.rs reports it).
    pub fn cutoff_hz(&self) -> Option<f64> {
        let (fft_in, fft_out) = self.block_sizes()?;
        Some(relative_cutoff(fft_in, fft_out) as f64 * self.input_rate as f64 / 2.0)
    }

    /// Output frames near each end of a whole buffer that the filter computes partly from the
    /// zeros beyond the buffer's edges (half the filter length, in output frames).
    pub fn edge_frames(&self) -> usize {
        self.block_sizes().map_or(0, |(_, out)| out / 2)
    }

    /// Forgets any streamed input; the next `push` starts a new stream.
    pub fn reset(&mut self) {
        match &mut self.engine {
            Engine::Same => {}
            Engine::F32(c) => c.reset(),
            Engine::F64(c) => c.reset(),
        }
    }

    /// Rejects data the FFTs cannot take: a NaN or infinity (or a value so large that the block
    /// sums overflow f32) turns into a NaN imaginary part at DC, which rubato's inverse FFT
    /// treats as a fatal error.
    // `!(|x| <= max)` is deliberate: it is true for NaN too, where `|x| > max` is not.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    fn check_input(&self, input: &[f32]) -> Result<(), NodeError> {
        if !input.len().is_multiple_of(self.channels) {
            return Err(NodeError::invalid_input(format!(
                "{} samples is not a whole number of frames of {} channels",
                input.len(),
                self.channels
            )));
        }
        if matches!(self.engine, Engine::Same) {
            return Ok(());
        }
        // No early exit, so the scan vectorises; `!(|x| <= max)` is also true for NaN.
        let bad = input.iter().fold(false, |acc, &x| acc | !(x.abs() <= MAX_ABS_SAMPLE));
        if bad {
            let pos = input.iter().position(|x| !(x.abs() <= MAX_ABS_SAMPLE)).unwrap_or(0);
            return Err(NodeError::invalid_input(format!(
                "sample {} (frame {}) is {}; the resampler needs finite samples within +/-{MAX_ABS_SAMPLE:e}",
                pos,
                pos / self.channels,
                input.get(pos).copied().unwrap_or(f32::NAN)
            )));
        }
        Ok(())
    }

    /// Streams one chunk of interleaved samples, appending the output frames that are complete.
    ///
    /// The output of all `push` calls followed by [`finish`](Resampler::finish) equals
    /// [`process_interleaved`](Resampler::process_interleaved) on the concatenated input.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), NodeError> {
        self.check_input(input)?;
        match &mut self.engine {
            Engine::Same => out.extend_from_slice(input),
            Engine::F32(c) => c.push(input, out)?,
            Engine::F64(c) => c.push(input, out)?,
        }
        Ok(())
    }

    /// Ends the stream: appends the remaining output, so the stream's total is
    /// `round(frames_in * output_rate / input_rate)` frames, then resets for the next stream.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), NodeError> {
        let (i, o) = (self.input_rate, self.output_rate);
        match &mut self.engine {
            Engine::Same => {}
            Engine::F32(c) => c.finish(out, i, o)?,
            Engine::F64(c) => c.finish(out, i, o)?,
        }
        Ok(())
    }

    /// Resamples a whole interleaved buffer into `out` (cleared first): exactly
    /// `round(frames * output_rate / input_rate)` frames, without start-up delay.
    pub fn process_interleaved(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), NodeError> {
        out.clear();
        let frames = input.len() / self.channels;
        out.reserve(output_frames(frames, self.input_rate, self.output_rate) * self.channels);
        self.reset();
        self.push(input, out)?;
        self.finish(out)
    }

    /// Resamples a whole buffer. Integer samples are converted to f32 first (i16: x/32768,
    /// i32: x/2147483648); the output is always f32 at `output_rate`.
    pub fn process_whole(&mut self, input: &AudioBuffer) -> Result<AudioBuffer, NodeError> {
        if input.sample_rate != self.input_rate {
            return Err(NodeError::invalid_input(format!(
                "audio is at {} Hz but this resampler was built for {} Hz",
                input.sample_rate, self.input_rate
            )));
        }
        if input.channels as usize != self.channels {
            return Err(NodeError::invalid_input(format!(
                "audio has {} channels but this resampler was built for {}",
                input.channels, self.channels
            )));
        }
        let converted;
        let samples: &[f32] = match &input.samples {
            Samples::F32(v) => v,
            other => {
                converted = crate::nodes::format::to_f32(other);
                &converted
            }
        };
        let mut out = Vec::new();
        self.process_interleaved(samples, &mut out)?;
        Ok(AudioBuffer { samples: Samples::F32(out.into()), sample_rate: self.output_rate, channels: input.channels })
    }
}

/// The node: one cached [`Resampler`] per (input rate, channel count) seen.
struct ResampleNode {
    output_rate: u32,
    expected_input_rate: Option<u32>,
    quality: Quality,
    /// Few distinct keys in practice; a short list beats a map.
    cache: Vec<((u32, u16), Resampler)>,
    /// In a streaming session: the (rate, channels) its first chunk fixed.
    stream: Option<(u32, u16)>,
    /// That session's low-latency resampler (none at equal rates).
    stream_resampler: Option<Resampler>,
}

/// How many resamplers a node keeps; the least recently built is dropped beyond that.
const CACHE_LIMIT: usize = 8;

impl ResampleNode {
    fn resampler(&mut self, rate: u32, channels: u16) -> Result<&mut Resampler, NodeError> {
        let key = (rate, channels);
        let idx = match self.cache.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let r = Resampler::new(rate, self.output_rate, channels as usize, self.quality)?;
                if self.cache.len() >= CACHE_LIMIT {
                    self.cache.remove(0);
                }
                self.cache.push((key, r));
                self.cache.len() - 1
            }
        };
        Ok(&mut self.cache[idx].1)
    }
}

impl ResampleNode {
    /// The input audio after the checks every call shares: the expected rate, whole frames.
    fn checked_audio(&self, inputs: Inputs) -> Result<AudioBuffer, NodeError> {
        let audio = expect_audio(inputs.one()?)?;
        if let Some(expected) = self.expected_input_rate {
            if audio.sample_rate != expected {
                return Err(NodeError::invalid_input(format!(
                    "AudioResampleNode expects input at {expected} Hz (param input_rate) but received audio at {} Hz",
                    audio.sample_rate
                )));
            }
        }
        if audio.channels == 0 {
            return Err(NodeError::invalid_input("audio must have at least one channel"));
        }
        if !audio.samples.len().is_multiple_of(audio.channels as usize) {
            return Err(NodeError::invalid_input(format!(
                "{} samples is not a whole number of frames of {} channels",
                audio.samples.len(),
                audio.channels
            )));
        }
        Ok(audio)
    }

    /// Streams one chunk through the session's resampler, appending the completed output frames.
    /// The session's rate and channels are fixed by its first chunk that is accepted: a first
    /// chunk the resampler refuses (a rate pair needing too much state) leaves no trace.
    fn push_chunk(&mut self, audio: AudioBuffer, out: &mut Vec<f32>) -> Result<(), NodeError> {
        let key = (audio.sample_rate, audio.channels);
        if let Some(k) = self.stream {
            if k != key {
                return Err(NodeError::invalid_input(format!(
                    "this stream started with audio at {} Hz and {} channel(s); a chunk at {} Hz with {} channel(s) cannot continue it",
                    k.0, k.1, key.0, key.1
                )));
            }
        }
        if key.0 != self.output_rate && self.stream_resampler.is_none() {
            self.stream_resampler = Some(Resampler::low_latency(key.0, self.output_rate, key.1 as usize, self.quality)?);
        }
        self.stream = Some(key);
        let samples = crate::nodes::format::into_f32(audio.samples);
        match &mut self.stream_resampler {
            None => {
                out.extend_from_slice(&samples);
                Ok(())
            }
            Some(r) => r.push(&samples, out),
        }
    }

    fn output(&self, samples: Vec<f32>, channels: u16) -> Payload {
        Payload::Audio(AudioBuffer { samples: Samples::F32(samples.into()), sample_rate: self.output_rate, channels })
    }
}

impl Node for ResampleNode {
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        let audio = self.checked_audio(inputs)?;
        if audio.sample_rate == self.output_rate {
            let samples = crate::nodes::format::into_f32(audio.samples);
            return Ok(Payload::Audio(AudioBuffer { samples: Samples::F32(samples.into()), ..audio }));
        }
        // Integer input becomes f32 before the resampler's output is allocated, in place for i32
        // and with the i16 buffer freed at once: the input is never held twice.
        let audio = AudioBuffer { samples: Samples::F32(crate::nodes::format::into_f32(audio.samples).into()), ..audio };
        let out = self.resampler(audio.sample_rate, audio.channels)?.process_whole(&audio)?;
        Ok(Payload::Audio(out))
    }

    /// A chunk's completed output frames, from the session's low-latency resampler (blocks of
    /// one filter length, cut from the stream's first frame): the chunks' outputs concatenate to
    /// the whole-buffer output up to float rounding, whatever the chunk sizes.
    fn push(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        let audio = self.checked_audio(inputs)?;
        let channels = audio.channels;
        let mut out = Vec::with_capacity(output_frames(audio.frames() + 1, audio.sample_rate, self.output_rate) * channels as usize);
        self.push_chunk(audio, &mut out)?;
        Ok(self.output(out, channels))
    }

    /// The last chunk (if any) plus the filter's tail, so the stream totals
    /// `round(frames * out / in)` frames.
    fn finish(&mut self, inputs: Option<Inputs>) -> Result<Option<Payload>, NodeError> {
        let mut out = Vec::new();
        if let Some(inputs) = inputs {
            let audio = self.checked_audio(inputs)?;
            self.push_chunk(audio, &mut out)?;
        }
        let Some((_, channels)) = self.stream.take() else { return Ok(None) };
        if let Some(mut r) = self.stream_resampler.take() {
            r.finish(&mut out)?;
        }
        Ok(Some(self.output(out, channels)))
    }
}

/// The rates a param may name.
const RATE: ParamKind = ParamKind::Int { min: MIN_RATE as i64, max: MAX_RATE as i64 };

node_params! {
    /// AudioResampleNode's params.
    pub struct ResampleParams {
        output_rate: i64, RATE, "output sample rate in Hz";
        input_rate: Option<i64> = None, RATE,
            "expected input sample rate in Hz; audio at another rate is rejected (default: any rate)";
        quality: &'static str = "high", ParamKind::Choice(Quality::NAMES),
            "filter preset: low, medium, high or very_high";
    }
}

/// The manifest check of a node with both rates given: a pair the resampler would refuse
/// ([`state_problem`]) is a manifest problem, not a failure of every run.
fn check_rate_pair(params: &super::Params) -> Vec<(String, String, String)> {
    let rate = |k: &str| params.get(k).and_then(Value::as_u64).and_then(|r| u32::try_from(r).ok());
    let (Some(input_rate), Some(output_rate)) = (rate("input_rate"), rate("output_rate")) else { return Vec::new() };
    let quality = params.get("quality").and_then(Value::as_str).and_then(Quality::parse).unwrap_or(Quality::High);
    if input_rate == output_rate {
        return Vec::new();
    }
    let (fft_in, fft_out) = block_sizes(input_rate, output_rate, quality);
    let block = fft_in.max(fft_out);
    if block <= crate::limits::RESAMPLER_BLOCK_FRAMES {
        return Vec::new();
    }
    vec![(
        "input_rate".into(),
        format!(
            "a rate the resampler can take to output_rate (FFT blocks of at most {} frames; rates that are multiples of 25 Hz always fit)",
            crate::limits::RESAMPLER_BLOCK_FRAMES
        ),
        format!("{input_rate}, which with output_rate {output_rate} needs blocks of {block} frames"),
    )]
}

pub fn node_type() -> NodeType {
    NodeType {
        params: ResampleParams::specs(),
        stateful: true,
        check: Some(check_rate_pair),
        ..NodeType::new(
            TYPE_NAME,
            "Resamples audio (any channel count, f32/i16/i32 in, f32 out) to output_rate with an FFT \
             windowed-sinc resampler; output is round(frames * out / in) frames, time-aligned.",
            |cfg| {
                let p = ResampleParams::from_params(cfg.params)?;
                // The ranges were checked against RATE, so the rates fit in u32.
                let output_rate = p.output_rate as u32;
                let expected_input_rate = p.input_rate.map(|r| r as u32);
                // `quality` is one of Quality::NAMES, each of which `parse` reads.
                let quality = Quality::parse(p.quality).unwrap_or(Quality::High);
                let mut node = ResampleNode { output_rate, expected_input_rate, quality, cache: Vec::new(), stream: None, stream_resampler: None };
                // Build the expected pair up front so the first run pays no construction cost.
                if let Some(rate) = expected_input_rate {
                    node.resampler(rate, 1)?;
                }
                Ok(Box::new(node))
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_frames_rounds_half_up_without_float_error() {
        assert_eq!(output_frames(48000, 48000, 16000), 16000);
        assert_eq!(output_frames(1, 48000, 16000), 0);
        assert_eq!(output_frames(2, 48000, 16000), 1); // 0.667
        assert_eq!(output_frames(3, 44100, 22050), 2); // 1.5 rounds up
        assert_eq!(output_frames(1, 8000, 192000), 24);
        assert_eq!(output_frames(0, 8000, 192000), 0);
    }

    #[test]
    fn block_sizes_are_even_and_in_the_rate_ratio() {
        for &(i, o) in &[(48000u32, 16000u32), (44100, 16000), (22050, 48000), (8000, 192000), (44101, 48000), (191999, 8000)] {
            // (block_sizes itself has no limit: the refusal is state_problem's.)
            for q in [Quality::Low, Quality::Medium, Quality::High, Quality::VeryHigh] {
                let (a, b) = block_sizes(i, o, q);
                assert_eq!((a % 2, b % 2), (0, 0), "{i}->{o} {q:?}");
                assert_eq!(a as u64 * o as u64, b as u64 * i as u64);
                assert!(a.min(b) >= q.min_block());
            }
        }
    }

    #[test]
    fn rates_with_a_small_common_divisor_work_up_to_the_block_limit() {
        // 44101 -> 48000: divisor 1, blocks of 88202/96000 frames: refused before allocating.
        let e = Resampler::new(44101, 48000, 2, Quality::Low).err().expect("refused");
        assert_eq!(e.kind, crate::error::NodeErrorKind::InvalidInput);
        assert!(e.message.contains("needs FFT blocks of 96000 frames") && e.message.contains("divisor is only 1 Hz"), "{}", e.message);
        let e = Resampler::low_latency(191_999, 16_000, 1, Quality::High).err().expect("refused");
        assert!(e.message.contains("383998 frames"), "{}", e.message);
        // 44056 (NTSC pull-down) -> 48000: divisor 8, blocks of 12000 frames: fine.
        let mut r = Resampler::new(44056, 48000, 2, Quality::Low).expect("resampler");
        assert_eq!(r.block_sizes(), Some((11014, 12000)));
        let x: Vec<f32> = (0..2000).map(|k| ((k / 2) as f32 * 0.05).sin()).collect();
        let mut out = Vec::new();
        r.process_interleaved(&x, &mut out).expect("resample");
        assert_eq!(out.len(), 2 * output_frames(1000, 44056, 48000));
        assert!(out.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn every_pair_of_rates_that_are_multiples_of_25_hz_fits() {
        // The claim the limit's message makes, checked on a grid of pairs (every multiple of
        // 25 Hz would be 54 million pairs): the standard rates, and multiples of 25 Hz a prime
        // step apart, for the longest preset.
        let standard = [8000u32, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000];
        let grid: Vec<u32> = standard.iter().copied().chain((8000..=192_000).step_by(25 * 53)).collect();
        for &a in &grid {
            for &b in &grid {
                for q in [Quality::High, Quality::VeryHigh] {
                    assert_eq!(state_problem(a, b, 1, q), None, "{a} -> {b} {q:?}");
                }
            }
        }
        // Channels count towards the state: 48k -> 16k fits with every channel the node takes.
        assert_eq!(state_problem(48000, 16000, MAX_CHANNELS, Quality::VeryHigh), None);
        let e = state_problem(8000, 192_000, 256, Quality::VeryHigh).expect("too much state");
        assert!(e.contains("256 channels") && e.contains("at most 1048576"), "{e}");
    }

    #[test]
    fn rates_out_of_range_are_errors() {
        assert!(Resampler::new(7999, 16000, 1, Quality::High).is_err());
        assert!(Resampler::new(48000, 192001, 1, Quality::High).is_err());
        assert!(Resampler::new(48000, 16000, 0, Quality::High).is_err());
    }

    #[test]
    fn channel_counts_beyond_the_limit_are_refused_before_allocating() {
        // Regression (fuzzing): 65535 channels used to allocate gigabytes even for an empty buffer.
        assert!(Resampler::new(48000, 16000, MAX_CHANNELS, Quality::Low).is_ok());
        let e = Resampler::new(48000, 16000, 65535, Quality::High).err().expect("refused");
        assert_eq!(e.kind, crate::error::NodeErrorKind::InvalidInput);
        assert!(e.message.contains("65535 channels") && e.message.contains("at most 256"), "{}", e.message);
    }
}
