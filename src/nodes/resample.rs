//! `AudioResampleNode`: changes the sample rate of audio with rubato's synchronous FFT resampler,
//! with whole-buffer output that is exactly `round(frames * out / in)` long and time-aligned.
//!
//! The work is done by [`Resampler`], which also offers a streaming `push`/`finish` API whose
//! concatenated output is bit-identical to [`Resampler::process_whole`] on the same samples: both
//! cut the input into the same fixed FFT blocks counted from the first frame.
//!
//! Algorithm (rubato 5.1 `Fft`, `FixedSync::Both`): the input is cut into blocks of `fft_in`
//! frames; each block is zero-padded to `2*fft_in`, transformed, multiplied by the spectrum of a
//! windowed-sinc low-pass of `fft_in` taps (squared Blackman-Harris window, sum normalised to 1),
//! the spectrum is truncated (downsampling) or zero-extended (upsampling) to `fft_out + 1` bins,
//! inverse-transformed at `2*fft_out` points, and overlap-added. `fft_in / fft_out` equals
//! `input_rate / output_rate` exactly. The filter delays everything by `fft_out / 2` output frames,
//! which is dropped, so output frame `k` is the signal at time `k / output_rate`.

use serde_json::Value;

use rubato::audioadapter_buffers::direct::SequentialSlice;
use rubato::{Fft, FixedSync, Resampler as _, WindowFunction};

use super::{expect_audio, param_i64, param_str, Inputs, Node, NodeType, ParamKind, ParamSpec};
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

/// Float types the resampler can run in.
trait Real: rubato::Sample {
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

/// The rubato state and the reusable staging buffers for one rate pair and channel count.
struct Core<T: Real> {
    fft: Fft<T>,
    channels: usize,
    fft_in: usize,
    fft_out: usize,
    /// One block of input, channel after channel (sequential layout, `channels * fft_in`).
    stage_in: Vec<T>,
    /// Frames of the current block filled so far.
    filled: usize,
    /// One block of output, sequential layout (`channels * fft_out`).
    stage_out: Vec<T>,
    /// Start-up delay still to drop, in output frames.
    to_trim: usize,
    frames_in: u64,
    frames_out: u64,
}

impl<T: Real> Core<T> {
    fn new(input_rate: u32, output_rate: u32, channels: usize, quality: Quality) -> Result<Core<T>, NodeError> {
        let (fft_in, fft_out) = block_sizes(input_rate, output_rate, quality);
        let fft = Fft::<T>::new_custom(
            input_rate as usize,
            output_rate as usize,
            fft_in,
            1,
            channels,
            WindowFunction::BlackmanHarris2,
            FixedSync::Both,
        )
        .map_err(|e| NodeError::permanent(format!("cannot build resampler {input_rate} Hz -> {output_rate} Hz: {e}")))?;
        // new_custom recomputes the block sizes from the chunk; they must be the ones chosen above.
        if fft.fft_size_in() != fft_in || fft.fft_size_out() != fft_out {
            return Err(NodeError::permanent(format!(
                "resampler block sizes {}/{} differ from the expected {fft_in}/{fft_out}",
                fft.fft_size_in(),
                fft.fft_size_out()
            )));
        }
        Ok(Core {
            fft,
            channels,
            fft_in,
            fft_out,
            stage_in: vec![T::of_f32(0.0); channels * fft_in],
            filled: 0,
            stage_out: vec![T::of_f32(0.0); channels * fft_out],
            to_trim: fft_out / 2,
            frames_in: 0,
            frames_out: 0,
        })
    }

    fn reset(&mut self) {
        self.fft.reset();
        self.filled = 0;
        self.to_trim = self.fft_out / 2;
        self.frames_in = 0;
        self.frames_out = 0;
    }

    /// Resamples the staged block and appends up to `limit` trimmed output frames, interleaved.
    fn run_block(&mut self, out: &mut Vec<f32>, limit: Option<usize>) -> Result<(), NodeError> {
        let ch = self.channels;
        {
            let input = SequentialSlice::new(&self.stage_in[..], ch, self.fft_in)
                .map_err(|e| NodeError::permanent(format!("resampler input staging: {e}")))?;
            let mut output = SequentialSlice::new_mut(&mut self.stage_out[..], ch, self.fft_out)
                .map_err(|e| NodeError::permanent(format!("resampler output staging: {e}")))?;
            self.fft
                .process_into_buffer(&input, &mut output, None)
                .map_err(|e| NodeError::permanent(format!("resampling failed: {e}")))?;
        }
        let skip = self.to_trim.min(self.fft_out);
        self.to_trim -= skip;
        let mut emit = self.fft_out - skip;
        if let Some(limit) = limit {
            emit = emit.min(limit);
        }
        let start = out.len();
        out.resize(start + emit * ch, 0.0);
        let dst = &mut out[start..];
        if ch == 1 {
            for (d, s) in dst.iter_mut().zip(&self.stage_out[skip..skip + emit]) {
                *d = s.to_f32();
            }
        } else {
            for c in 0..ch {
                let src = &self.stage_out[c * self.fft_out + skip..c * self.fft_out + skip + emit];
                for (f, s) in src.iter().enumerate() {
                    dst[f * ch + c] = s.to_f32();
                }
            }
        }
        self.frames_out += emit as u64;
        Ok(())
    }

    fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), NodeError> {
        let ch = self.channels;
        let frames = input.len() / ch;
        let mut pos = 0;
        while pos < frames {
            let take = (self.fft_in - self.filled).min(frames - pos);
            let src = &input[pos * ch..(pos + take) * ch];
            if ch == 1 {
                for (d, s) in self.stage_in[self.filled..self.filled + take].iter_mut().zip(src) {
                    *d = T::of_f32(*s);
                }
            } else {
                for c in 0..ch {
                    let base = c * self.fft_in + self.filled;
                    for (f, d) in self.stage_in[base..base + take].iter_mut().enumerate() {
                        *d = T::of_f32(src[f * ch + c]);
                    }
                }
            }
            self.filled += take;
            pos += take;
            if self.filled == self.fft_in {
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
            for c in 0..self.channels {
                let base = c * self.fft_in;
                self.stage_in[base + self.filled..base + self.fft_in].fill(T::of_f32(0.0));
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
        let engine = if input_rate == output_rate {
            Engine::Same
        } else if quality.uses_f64() {
            Engine::F64(Box::new(Core::new(input_rate, output_rate, channels, quality)?))
        } else {
            Engine::F32(Box::new(Core::new(input_rate, output_rate, channels, quality)?))
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

    /// The anti-aliasing filter's cutoff in Hz (where rubato places the sinc's band edge).
    pub fn cutoff_hz(&self) -> Option<f64> {
        let rel = match &self.engine {
            Engine::Same => return None,
            Engine::F32(c) => c.fft.cutoff(),
            Engine::F64(c) => c.fft.cutoff(),
        };
        Some(rel as f64 * self.input_rate as f64 / 2.0)
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
        Ok(AudioBuffer { samples: Samples::F32(out), sample_rate: self.output_rate, channels: input.channels })
    }
}

/// The node: one cached [`Resampler`] per (input rate, channel count) seen.
struct ResampleNode {
    output_rate: u32,
    expected_input_rate: Option<u32>,
    quality: Quality,
    /// Few distinct keys in practice; a short list beats a map.
    cache: Vec<((u32, u16), Resampler)>,
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

impl Node for ResampleNode {
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
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
        if audio.sample_rate == self.output_rate {
            let samples = crate::nodes::format::into_f32(audio.samples);
            return Ok(Payload::Audio(AudioBuffer { samples: Samples::F32(samples), ..audio }));
        }
        let out = self.resampler(audio.sample_rate, audio.channels)?.process_whole(&audio)?;
        Ok(Payload::Audio(out))
    }
}

fn rate_param(params: &super::Params, name: &str) -> Result<Option<u32>, NodeError> {
    match param_i64(params, name)? {
        None => Ok(None),
        Some(r) if (MIN_RATE as i64..=MAX_RATE as i64).contains(&r) => Ok(Some(r as u32)),
        Some(r) => Err(NodeError::permanent(format!(
            "param '{name}' must be from {MIN_RATE} to {MAX_RATE} Hz, found {r}"
        ))),
    }
}

pub fn node_type() -> NodeType {
    let rate = ParamKind::Int { min: MIN_RATE as i64, max: MAX_RATE as i64 };
    NodeType {
        params: vec![
            ParamSpec::required("output_rate", rate.clone(), "output sample rate in Hz"),
            ParamSpec::optional(
                "input_rate",
                rate,
                "expected input sample rate in Hz; audio at another rate is rejected (default: any rate)",
            ),
            ParamSpec::with_default(
                "quality",
                ParamKind::Choice(Quality::NAMES),
                Value::from("high"),
                "filter preset: low, medium, high or very_high",
            ),
        ],
        ..NodeType::new(
            TYPE_NAME,
            "Resamples audio (any channel count, f32/i16/i32 in, f32 out) to output_rate with an FFT \
             windowed-sinc resampler; output is round(frames * out / in) frames, time-aligned.",
            |cfg| {
                let output_rate = rate_param(cfg.params, "output_rate")?
                    .ok_or_else(|| NodeError::permanent("param 'output_rate' is required"))?;
                let expected_input_rate = rate_param(cfg.params, "input_rate")?;
                let quality = match param_str(cfg.params, "quality")? {
                    None => Quality::High,
                    Some(q) => Quality::parse(q).ok_or_else(|| {
                        NodeError::permanent(format!(
                            "param 'quality' must be one of low, medium, high, very_high, found \"{q}\""
                        ))
                    })?,
                };
                let mut node = ResampleNode { output_rate, expected_input_rate, quality, cache: Vec::new() };
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
            for q in [Quality::Low, Quality::Medium, Quality::High, Quality::VeryHigh] {
                let (a, b) = block_sizes(i, o, q);
                assert_eq!((a % 2, b % 2), (0, 0), "{i}->{o} {q:?}");
                assert_eq!(a as u64 * o as u64, b as u64 * i as u64);
                assert!(a.min(b) >= q.min_block());
            }
        }
    }

    #[test]
    fn coprime_rates_work_with_long_blocks() {
        let mut r = Resampler::new(44101, 48000, 2, Quality::Low).expect("resampler");
        assert_eq!(r.block_sizes(), Some((88202, 96000)));
        let x: Vec<f32> = (0..2000).map(|k| ((k / 2) as f32 * 0.05).sin()).collect();
        let mut out = Vec::new();
        r.process_interleaved(&x, &mut out).expect("resample");
        assert_eq!(out.len(), 2 * output_frames(1000, 44101, 48000));
        assert!(out.iter().all(|v| v.is_finite()));
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
