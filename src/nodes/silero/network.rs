//! The Silero VAD v6 network: speech probabilities for 32 ms chunks, streaming or whole-buffer.
//!
//! Per chunk of `W` new samples (512 at 16 kHz, 256 at 8 kHz) with the stream's previous `C`
//! samples (64 / 32; zeros at the start) in front, as silero-vad's own wrapper feeds its model:
//! 1. reflect-pad `C` samples on the right; 4 frames of `N` = 256 / 128 samples, hop `N/2`;
//!    periodic Hann window; real FFT (the ONNX graph's STFT is a convolution with exactly that
//!    basis); magnitudes, `N/2 + 1` bins per frame;
//! 2. four 1-D convolutions (kernel 3, padding 1, strides 1, 2, 2, 1; 128, 64, 64, 128 channels),
//!    each followed by ReLU, leaving one 128-value vector per chunk;
//! 3. an LSTM cell (128 units) whose state runs from chunk to chunk; ReLU; a 1x1 convolution;
//!    sigmoid: the chunk's speech probability.
//!
//! Steps 1-2 depend on the chunk's samples only, so [`SileroState::push`] runs them for a block
//! of up to [`BLOCK`] chunks at once (each weight matrix then stays in cache across the block's
//! columns), then the LSTM through the block in order. Streaming pushes of any size give the
//! probabilities of the whole-buffer run exactly: both cut the stream into the same chunks.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use super::kernel::{dense, matvec_add};
use super::weights::{self, Weights, HIDDEN};
use crate::error::NodeError;

/// Chunks whose front end is computed together.
pub const BLOCK: usize = 32;
/// STFT frames per chunk.
const FRAMES: usize = 4;

/// Chunk, context and FFT sizes of a supported rate; `None` for other rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub rate: u32,
    /// New samples per chunk.
    pub window: usize,
    /// Samples of the previous chunk put in front of each chunk.
    pub context: usize,
    /// STFT frame length.
    pub n_fft: usize,
}

impl Geometry {
    pub fn of(rate: u32) -> Option<Geometry> {
        match rate {
            16000 => Some(Geometry { rate, window: 512, context: 64, n_fft: 256 }),
            8000 => Some(Geometry { rate, window: 256, context: 32, n_fft: 128 }),
            _ => None,
        }
    }

    /// Chunks for `n` samples: the last, partial chunk is zero-padded, as silero-vad does.
    pub fn chunks(&self, n: usize) -> usize {
        n.div_ceil(self.window)
    }
}

/// Work buffers for one block; the zero slots between chunks are never written.
struct Scratch {
    /// One chunk with its context and the reflect padding: `C + W + C` samples.
    padded: Vec<f32>,
    fft_in: Vec<f32>,
    fft_out: Vec<Complex<f32>>,
    fft_scratch: Vec<Complex<f32>>,
    /// Per chunk 5 frames of `bins`: a zero frame, then the 4 magnitude frames (the zero frames
    /// are never written). Conv1's window at output frame t is slots t..t+3 of its chunk: its
    /// last reaches into the next chunk's zero frame, or the final one.
    mags: Vec<f32>,
    /// Per chunk 5 frames of 128: zero, then conv1's 4 outputs.
    h1: Vec<f32>,
    /// Per chunk conv2's 2 frames of 64.
    h2: Vec<f32>,
    /// Per chunk conv3's 64 values; then conv4's 128; then the LSTM's input gates, 512.
    h3: Vec<f32>,
    h4: Vec<f32>,
    gates: Vec<f32>,
    /// Column offsets for the kernel, reused.
    cols: Vec<usize>,
    out_cols: Vec<usize>,
}

/// The streaming detector: feed mono f32 samples with [`push`](SileroState::push), get one
/// probability per completed chunk. Carries the LSTM state, the context samples and a partial
/// chunk across calls.
pub struct SileroState {
    geometry: Geometry,
    weights: &'static Weights,
    fft: Arc<dyn RealToComplex<f32>>,
    hann: Vec<f32>,
    scratch: Scratch,
    // ---- state reset by `reset` ----
    /// The context samples followed by the samples of a not yet complete chunk.
    tail: Vec<f32>,
    h: [f32; HIDDEN],
    c: [f32; HIDDEN],
    chunks_done: u64,
    samples_seen: u64,
}

impl SileroState {
    /// A detector for `rate` (16000 or 8000 Hz); plans the FFT once.
    pub fn new(rate: u32) -> Result<SileroState, NodeError> {
        let geometry = Geometry::of(rate).ok_or_else(|| {
            NodeError::invalid_input(format!(
                "SileroVADNode needs audio at 16000 or 8000 Hz, received {rate} Hz; put an AudioResampleNode before it"
            ))
        })?;
        let all = weights::get().map_err(NodeError::permanent)?;
        let weights = if rate == 16000 { &all.r16k } else { &all.r8k };
        let n = geometry.n_fft;
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
        let bins = weights.bins;
        let frame_slots = BLOCK * (FRAMES + 1) + 1;
        let scratch = Scratch {
            padded: vec![0.0; geometry.window + 2 * geometry.context],
            fft_in: fft.make_input_vec(),
            fft_out: fft.make_output_vec(),
            fft_scratch: fft.make_scratch_vec(),
            mags: vec![0.0; frame_slots * bins],
            h1: vec![0.0; frame_slots * 128],
            h2: vec![0.0; BLOCK * 2 * 64],
            h3: vec![0.0; BLOCK * 64],
            h4: vec![0.0; BLOCK * HIDDEN],
            gates: vec![0.0; BLOCK * 4 * HIDDEN],
            cols: Vec::with_capacity(BLOCK * FRAMES),
            out_cols: Vec::with_capacity(BLOCK * FRAMES),
        };
        let hann = (0..n).map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos()) as f32).collect();
        let mut state = SileroState {
            geometry,
            weights,
            fft,
            hann,
            scratch,
            tail: Vec::new(),
            h: [0.0; HIDDEN],
            c: [0.0; HIDDEN],
            chunks_done: 0,
            samples_seen: 0,
        };
        state.reset();
        Ok(state)
    }

    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Chunks whose probability has been computed since the last reset.
    pub fn chunks_done(&self) -> u64 {
        self.chunks_done
    }

    /// Samples pushed since the last reset.
    pub fn samples_seen(&self) -> u64 {
        self.samples_seen
    }

    /// Forgets the stream: zero LSTM state, zero context, no partial chunk.
    pub fn reset(&mut self) {
        self.tail.clear();
        self.tail.resize(self.geometry.context, 0.0);
        self.h = [0.0; HIDDEN];
        self.c = [0.0; HIDDEN];
        self.chunks_done = 0;
        self.samples_seen = 0;
    }

    /// Appends the probability of every chunk that `samples` (mono, full scale ±1) completes to
    /// `out`. On error (a NaN or infinite sample) nothing is consumed and the state is unchanged.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<f32>) -> Result<(), NodeError> {
        if let Some(i) = samples.iter().position(|x| !x.is_finite()) {
            return Err(NodeError::invalid_input(format!(
                "SileroVADNode input contains a non-finite sample ({}) at index {i}",
                samples[i]
            )));
        }
        self.samples_seen += samples.len() as u64;
        let Geometry { window, context, .. } = self.geometry;
        let mut rest = samples;
        // Complete the partial chunk held from earlier pushes first.
        let held = self.tail.len() - context;
        if held > 0 {
            let take = (window - held).min(rest.len());
            self.tail.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.tail.len() < context + window {
                return Ok(());
            }
            let tail = std::mem::take(&mut self.tail);
            self.run(&tail, 1, out);
            self.tail = tail[window..].to_vec();
        }
        // Whole chunks straight from the input: chunk j reads the `context` samples before it,
        // from the held tail for the first one.
        let whole = rest.len() / window;
        if whole > 0 {
            let mut first = std::mem::take(&mut self.tail);
            first.extend_from_slice(&rest[..window]);
            self.run(&first, 1, out);
            if whole > 1 {
                self.run(&rest[window - context..whole * window], whole - 1, out);
            }
            self.tail = first;
            self.tail.clear();
            self.tail.extend_from_slice(&rest[whole * window - context..]);
        } else {
            self.tail.extend_from_slice(rest);
        }
        Ok(())
    }

    /// Ends the stream: a partial chunk is zero-padded to a whole one and its probability
    /// appended (so `n` samples give `ceil(n / W)` probabilities). The state is then reset.
    pub fn finish(&mut self, out: &mut Vec<f32>) {
        let context = self.geometry.context;
        if self.tail.len() > context {
            let mut last = std::mem::take(&mut self.tail);
            last.resize(context + self.geometry.window, 0.0);
            self.run(&last, 1, out);
        }
        self.reset();
    }

    /// `n` chunks from `stream`, which starts with the first chunk's context:
    /// chunk j is `stream[j*W .. j*W + C + W]`.
    fn run(&mut self, stream: &[f32], n: usize, out: &mut Vec<f32>) {
        let w = self.geometry.window;
        let mut done = 0;
        while done < n {
            let b = (n - done).min(BLOCK);
            self.block(&stream[done * w..], b, out);
            done += b;
        }
        self.chunks_done += n as u64;
    }

    /// One block of `b` chunks: the front end for all of them, then the LSTM in order.
    fn block(&mut self, stream: &[f32], b: usize, out: &mut Vec<f32>) {
        let Geometry { window, context, n_fft, .. } = self.geometry;
        let wt = self.weights;
        let bins = wt.bins;
        let s = &mut self.scratch;
        let hop = n_fft / 2;
        let len = context + window;
        for j in 0..b {
            let x = &stream[j * window..j * window + len];
            s.padded[..len].copy_from_slice(x);
            // Reflect padding (the edge sample is not repeated): x[len-2], x[len-3], ...
            for i in 0..context {
                s.padded[len + i] = x[len - 2 - i];
            }
            for t in 0..FRAMES {
                let frame = &s.padded[t * hop..t * hop + n_fft];
                for ((d, v), h) in s.fft_in.iter_mut().zip(frame).zip(&self.hann) {
                    *d = v * h;
                }
                self.fft
                    .process_with_scratch(&mut s.fft_in, &mut s.fft_out, &mut s.fft_scratch)
                    .expect("buffer sizes come from the plan");
                let slot = (j * (FRAMES + 1) + 1 + t) * bins;
                for (m, z) in s.mags[slot..slot + bins].iter_mut().zip(&s.fft_out) {
                    *m = (z.re * z.re + z.im * z.im).sqrt();
                }
            }
        }
        // conv1: output frame t of chunk j reads frames t-1, t, t+1 (slots t..t+3 of the chunk).
        let cols = |s: &mut Scratch, f: &dyn Fn(usize) -> (usize, usize), count: usize| {
            s.cols.clear();
            s.out_cols.clear();
            for i in 0..count {
                let (c, o) = f(i);
                s.cols.push(c);
                s.out_cols.push(o);
            }
        };
        let slots = FRAMES + 1;
        cols(s, &|i| ((i / FRAMES * slots + i % FRAMES) * bins, (i / FRAMES * slots + 1 + i % FRAMES) * 128), b * FRAMES);
        dense(&wt.conv1, &wt.conv1_b, &s.mags, &s.cols, &mut s.h1, &s.out_cols, true);
        // conv2, stride 2: output t reads conv1 frames 2t-1, 2t, 2t+1 (slots 2t..2t+3).
        cols(s, &|i| ((i / 2 * slots + 2 * (i % 2)) * 128, i * 64), b * 2);
        dense(&wt.conv2, &wt.conv2_b, &s.h1, &s.cols, &mut s.h2, &s.out_cols, true);
        // conv3, stride 2, one output reading frames -1 (padding), 0, 1: the taps on 0 and 1.
        cols(s, &|j| (j * 128, j * 64), b);
        dense(&wt.conv3, &wt.conv3_b, &s.h2, &s.cols, &mut s.h3, &s.out_cols, true);
        // conv4 on a single frame: only its middle tap reads data.
        cols(s, &|j| (j * 64, j * HIDDEN), b);
        dense(&wt.conv4, &wt.conv4_b, &s.h3, &s.cols, &mut s.h4, &s.out_cols, true);
        // The LSTM's input product for every chunk of the block at once.
        cols(s, &|j| (j * HIDDEN, j * 4 * HIDDEN), b);
        dense(&wt.w_ih, &wt.lstm_b, &s.h4, &s.cols, &mut s.gates, &s.out_cols, false);
        for j in 0..b {
            let g = &mut s.gates[j * 4 * HIDDEN..(j + 1) * 4 * HIDDEN];
            matvec_add(&wt.w_hh, &self.h, g);
            lstm_cell(g, &mut self.c, &mut self.h);
            let logit = wt.out_b + dot_relu(&wt.out_w, &self.h);
            out.push(sigmoid(logit));
        }
    }
}

/// The LSTM cell's update from its summed gate inputs `g` (i, f, g, o; 128 each):
/// `c = σ(f)·c + σ(i)·tanh(g)`, `h = σ(o)·tanh(c)`. 640 exponentials per chunk: through
/// [`exp`], in a loop the compiler vectorises (8 lanes with AVX2), rather than libm's scalar
/// `expf`, which took a fifth of a chunk's time. The same code runs on every CPU (no fused
/// multiply-adds), so every path gives the same values.
fn lstm_cell(g: &[f32], c: &mut [f32; HIDDEN], h: &mut [f32; HIDDEN]) {
    #[inline(always)]
    fn body(g: &[f32], c: &mut [f32; HIDDEN], h: &mut [f32; HIDDEN]) {
        let (gi, rest) = g.split_at(HIDDEN);
        let (gf, rest) = rest.split_at(HIDDEN);
        let (gg, go) = rest.split_at(HIDDEN);
        let go = &go[..HIDDEN];
        for u in 0..HIDDEN {
            let cu = sigmoid(gf[u]) * c[u] + sigmoid(gi[u]) * tanh(gg[u]);
            c[u] = cu;
            h[u] = sigmoid(go[u]) * tanh(cu);
        }
    }
    #[cfg(target_arch = "x86_64")]
    if super::kernel::simd() != super::kernel::Simd::None {
        #[target_feature(enable = "avx2")]
        unsafe fn wide(g: &[f32], c: &mut [f32; HIDDEN], h: &mut [f32; HIDDEN]) {
            body(g, c, h)
        }
        // SAFETY: `simd` found AVX2 on this CPU.
        return unsafe { wide(g, c, h) };
    }
    body(g, c, h)
}

/// `Σ w·max(h, 0)`: the 1x1 output convolution after the ReLU.
fn dot_relu(w: &[f32], h: &[f32; HIDDEN]) -> f32 {
    let mut relu = [0f32; HIDDEN];
    for (r, &x) in relu.iter_mut().zip(h) {
        *r = x.max(0.0);
    }
    super::kernel::dot(w, &relu)
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh` through one [`exp`]: `1 - e` loses relative precision only where the result is near 0,
/// and the LSTM adds these values to others of order 1 (absolute error below 3e-7).
#[inline(always)]
fn tanh(x: f32) -> f32 {
    let e = exp(-2.0 * x.abs());
    ((1.0 - e) / (1.0 + e)).copysign(x)
}

/// `e^x` in plain arithmetic that vectorises (Cephes' `expf`: Cody-Waite reduction by ln 2, a
/// degree-5 polynomial, the power of two put in the exponent bits): relative error ~1e-7;
/// arguments beyond ±87 are clamped (results stay normal, and finite).
#[inline(always)]
fn exp(x: f32) -> f32 {
    // 1.5 * 2^23: adding it rounds to an integer, kept in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.max(-87.0).min(87.0);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = x - n * 0.693_359_375 - n * -2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1) * r
        + 5.000_000_1e-1;
    let p = p * r * r + r + 1.0;
    let two_n = f32::from_bits((t.to_bits().wrapping_sub(ROUND.to_bits()) as i32 + 127).wrapping_shl(23) as u32);
    p * two_n
}

/// One speech probability per chunk of a whole mono buffer (the last chunk zero-padded).
pub fn probabilities(samples: &[f32], rate: u32) -> Result<Vec<f32>, NodeError> {
    let mut state = SileroState::new(rate)?;
    let mut out = Vec::with_capacity(state.geometry.chunks(samples.len()));
    state.push(samples, &mut out)?;
    state.finish(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn exp_sigmoid_and_tanh_are_within_3e7_of_f64() {
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4;
            let want = (x as f64).tanh();
            assert!((super::tanh(x) as f64 - want).abs() < 3e-7, "tanh({x}): {} vs {want}", super::tanh(x));
            let want = 1.0 / (1.0 + (-x as f64).exp());
            assert!((super::sigmoid(x) as f64 - want).abs() < 3e-7, "sigmoid({x}): {} vs {want}", super::sigmoid(x));
            let want = (x as f64).exp();
            assert!(((super::exp(x) as f64 - want) / want).abs() < 3e-7, "exp({x}): {} vs {want}", super::exp(x));
        }
        assert_eq!(super::tanh(f32::INFINITY), 1.0);
        assert_eq!(super::tanh(-100.0), -1.0);
        assert!(super::sigmoid(-1e30) < 1e-37 && super::sigmoid(1e30) == 1.0);
        assert!(super::exp(-1e30) > 0.0 && super::exp(1e30).is_finite());
    }
}
