//! Issue #14's "measure before choosing": Silero's layer shapes through the hand-written kernel
//! (`remotemedia::nodes::silero::kernel`) against `matrixmultiply::sgemm` and the `gemm` crate,
//! single-threaded, on the shipped 16 kHz weights, for a 10 s and a 60 s buffer.
//!
//! Each layer is laid out as the network lays it out (src/nodes/silero/network.rs): columns are
//! windows of one buffer at the network's offsets. Our kernel reads them in place; the crates
//! need them as a matrix, so they get the im2col copy (timed) unless the columns are evenly
//! spaced (then a row stride does), and a pass adding the bias and the ReLU (timed). "block" calls
//! the crate once per 32-chunk block, as the network calls its kernel; "whole" once per buffer,
//! the crates' best case. The LSTM's recurrent product is one matrix-vector product per chunk
//! (each needs the previous chunk's state), so it has no whole-buffer form.
//! Every crate's output is asserted equal to ours within 1e-4 (relative to max(1, |value|)).
//!
//! Run: `cargo run --release [-- REPS]` in this folder (own workspace: not in the main build or
//! CI). `CARGO_TARGET_DIR=../../target` reuses the main build's dependencies.

use std::hint::black_box;
use std::time::{Duration, Instant};

use remotemedia::nodes::silero::kernel::{self, dense, matvec_add, Matrix};
use remotemedia::nodes::silero::network::{probabilities, BLOCK};
use remotemedia::nodes::silero::weights;

const RATE: usize = 16000;
const WINDOW: usize = 512;
const FRAMES: usize = 4;
const SLOTS: usize = FRAMES + 1;

fn lcg(seed: &mut u32) -> f32 {
    *seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
    (*seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
}

/// One dense layer over a whole buffer: `per` columns per chunk at the network's offsets.
struct Layer {
    name: &'static str,
    w: Matrix,
    bias: Vec<f32>,
    relu: bool,
    input: Vec<f32>,
    per: usize,
    cols: Vec<usize>,
    out_cols: Vec<usize>,
    out_len: usize,
}

impl Layer {
    fn new(name: &'static str, w: &Matrix, bias: &[f32], relu: bool, chunks: usize, per: usize, col: impl Fn(usize) -> usize, input_len: usize) -> Layer {
        let mut seed = 11;
        let n = chunks * per;
        Layer {
            name,
            w: w.clone(),
            bias: bias.to_vec(),
            relu,
            input: (0..input_len).map(|_| lcg(&mut seed)).collect(),
            per,
            cols: (0..n).map(&col).collect(),
            out_cols: (0..n).map(|i| i * w.rows).collect(),
            out_len: n * w.rows,
        }
    }

    /// Evenly spaced columns: the crates read them through a row stride, no copy.
    fn stride(&self) -> Option<usize> {
        let s = self.cols.get(1).map_or(self.w.k, |c| c - self.cols[0]);
        self.cols.windows(2).all(|p| p[1] - p[0] == s).then_some(s)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Crate {
    Mm,
    Gemm,
}

/// `out = act(bias + A · Wᵀ)` for columns `lo..hi` through a crate; `a` is the im2col scratch.
fn crate_dense(which: Crate, l: &Layer, lo: usize, hi: usize, a: &mut Vec<f32>, out: &mut [f32]) {
    let (k, m, n) = (l.w.k, l.w.rows, hi - lo);
    let (ap, rsa) = match l.stride() {
        Some(s) => (l.input[l.cols[lo]..].as_ptr(), s),
        None => {
            a.clear();
            for &c in &l.cols[lo..hi] {
                a.extend_from_slice(&l.input[c..c + k]);
            }
            (a.as_ptr(), k)
        }
    };
    let c = &mut out[lo * m..hi * m];
    // SAFETY: A is n rows of k at stride rsa inside `input` or `a` (the columns were built
    // inside the input); Wᵀ is k x m read from m rows of k; C is n x m, contiguous.
    unsafe {
        match which {
            Crate::Mm => matrixmultiply::sgemm(n, k, m, 1.0, ap, rsa as isize, 1, l.w.data.as_ptr(), 1, k as isize, 0.0, c.as_mut_ptr(), m as isize, 1),
            Crate::Gemm => gemm::gemm(
                n,
                m,
                k,
                c.as_mut_ptr(),
                1,
                m as isize,
                false,
                ap,
                1,
                rsa as isize,
                l.w.data.as_ptr(),
                k as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            ),
        }
    }
    for row in c.chunks_exact_mut(m) {
        for (v, b) in row.iter_mut().zip(&l.bias) {
            *v += b;
            if l.relu {
                *v = v.max(0.0);
            }
        }
    }
}

fn ours(l: &Layer, out: &mut [f32]) {
    let step = BLOCK * l.per;
    for lo in (0..l.cols.len()).step_by(step) {
        let hi = (lo + step).min(l.cols.len());
        dense(&l.w, &l.bias, &l.input, &l.cols[lo..hi], out, &l.out_cols[lo..hi], l.relu);
    }
}

fn by_crate(which: Crate, whole: bool, l: &Layer, a: &mut Vec<f32>, out: &mut [f32]) {
    let step = if whole { l.cols.len() } else { BLOCK * l.per };
    for lo in (0..l.cols.len()).step_by(step) {
        crate_dense(which, l, lo, (lo + step).min(l.cols.len()), a, out);
    }
}

/// The LSTM's recurrent product, one chunk at a time: `gates[j] += W_hh · h`.
fn lstm_ours(w: &Matrix, h: &[f32], gates: &mut [f32]) {
    for g in gates.chunks_exact_mut(w.rows) {
        matvec_add(w, h, g);
    }
}

fn lstm_crate(which: Crate, w: &Matrix, h: &[f32], gates: &mut [f32]) {
    let (m, k) = (w.rows, w.k);
    for g in gates.chunks_exact_mut(m) {
        // SAFETY: W is m x k row-major, h k x 1, g m x 1.
        unsafe {
            match which {
                Crate::Mm => matrixmultiply::sgemm(m, k, 1, 1.0, w.data.as_ptr(), k as isize, 1, h.as_ptr(), 1, 1, 1.0, g.as_mut_ptr(), 1, 1),
                Crate::Gemm => gemm::gemm(m, 1, k, g.as_mut_ptr(), 1, 1, true, w.data.as_ptr(), 1, k as isize, h.as_ptr(), 1, 1, 1.0, 1.0, false, false, false, gemm::Parallelism::None),
            }
        }
    }
}

fn assert_close(name: &str, what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{name}, {what}: element {i} is {g}, ours {w}");
    }
}

/// Median and p99 of the samples, in ms.
fn stats(t: &mut [Duration]) -> (f64, f64) {
    t.sort();
    let at = |q: f64| t[((q * t.len() as f64).ceil() as usize).clamp(1, t.len()) - 1].as_secs_f64() * 1e3;
    (at(0.5), at(0.99))
}

fn time(f: &mut dyn FnMut()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

const METHODS: [&str; 5] = ["ours", "matrixmultiply block", "matrixmultiply whole", "gemm block", "gemm whole"];

fn main() {
    let reps: usize = std::env::args().nth(1).map_or(100, |s| s.parse().expect("REPS: a number"));
    let w = &weights::get().expect("the shipped weights").r16k;
    let bins = w.bins;
    println!("kernel path: {:?}; {} reps; single thread; times in ms, median / p99\n", kernel::simd(), reps);
    for seconds in [10usize, 60] {
        let chunks = (seconds * RATE).div_ceil(WINDOW);
        // The STFT in ONNX's form (a convolution with the windowed DFT basis, real and imaginary
        // rows per bin, over the padded chunk of C + W + C samples at hop 128); the network
        // computes it with realfft instead (timed on the last line).
        let n_fft = 256;
        let hann: Vec<f64> = (0..n_fft).map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n_fft as f64).cos()).collect();
        let basis = Matrix {
            data: (0..2 * bins)
                .flat_map(|r| {
                    let hann = &hann;
                    (0..n_fft).map(move |i| {
                        let ph = 2.0 * std::f64::consts::PI * (r / 2 * i) as f64 / n_fft as f64;
                        (hann[i] * if r % 2 == 0 { ph.cos() } else { -ph.sin() }) as f32
                    })
                })
                .collect(),
            rows: 2 * bins,
            k: n_fft,
        };
        let padded = WINDOW + 2 * 64;
        let layers = [
            Layer::new("STFT as conv (258 x 256), 4/chunk", &basis, &vec![0.0; 2 * bins], false, chunks, FRAMES, |i| i / FRAMES * padded + i % FRAMES * 128, chunks * padded),
            Layer::new("conv1 (128 x 387), 4/chunk", &w.conv1, &w.conv1_b, true, chunks, FRAMES, |i| (i / FRAMES * SLOTS + i % FRAMES) * bins, (chunks * SLOTS + 1) * bins),
            Layer::new("conv2 (64 x 384), 2/chunk", &w.conv2, &w.conv2_b, true, chunks, 2, |i| (i / 2 * SLOTS + 2 * (i % 2)) * 128, (chunks * SLOTS + 1) * 128),
            Layer::new("conv3 (64 x 128), 1/chunk", &w.conv3, &w.conv3_b, true, chunks, 1, |j| j * 128, chunks * 128),
            Layer::new("conv4 (128 x 64), 1/chunk", &w.conv4, &w.conv4_b, true, chunks, 1, |j| j * 64, chunks * 64),
            Layer::new("LSTM input (512 x 128), 1/chunk", &w.w_ih, &w.lstm_b, false, chunks, 1, |j| j * 128, chunks * 128),
        ];
        println!("### {seconds} s at 16 kHz ({chunks} chunks)\n");
        println!("| layer | {} |", METHODS.join(" | "));
        println!("|---|{}", "---|".repeat(METHODS.len()));
        let mut totals = [[0f64; 2]; METHODS.len()];
        // `counted`: the layer is in the shipped network (the STFT-as-convolution row is not).
        let row = |name: &str, t: &mut [Vec<Duration>], totals: &mut [[f64; 2]; METHODS.len()], counted: bool| {
            let cells: Vec<String> = t
                .iter_mut()
                .enumerate()
                .map(|(i, s)| {
                    if s.is_empty() {
                        return "-".to_string();
                    }
                    let (med, p99) = stats(s);
                    if counted {
                        totals[i][0] += med;
                        totals[i][1] += p99;
                    }
                    format!("{med:.3} / {p99:.3}")
                })
                .collect();
            println!("| {name} | {} |", cells.join(" | "));
        };
        for l in &layers {
            let mut want = vec![0f32; l.out_len];
            ours(l, &mut want);
            let mut outs = vec![vec![0f32; l.out_len]; METHODS.len()];
            let mut a = Vec::with_capacity(l.cols.len() * l.w.k);
            let run = |m: usize, out: &mut [f32], a: &mut Vec<f32>| match m {
                0 => ours(l, out),
                1 => by_crate(Crate::Mm, false, l, a, out),
                2 => by_crate(Crate::Mm, true, l, a, out),
                3 => by_crate(Crate::Gemm, false, l, a, out),
                _ => by_crate(Crate::Gemm, true, l, a, out),
            };
            for (m, out) in outs.iter_mut().enumerate() {
                run(m, out, &mut a);
                assert_close(l.name, METHODS[m], out, &want);
            }
            let mut t = vec![Vec::with_capacity(reps); METHODS.len()];
            for _ in 0..reps {
                for (m, out) in outs.iter_mut().enumerate() {
                    t[m].push(time(&mut || run(m, black_box(&mut out[..]), &mut a)));
                }
            }
            row(l.name, &mut t, &mut totals, !l.name.starts_with("STFT"));
        }
        // The recurrent product: one 512 x 128 matrix-vector product per chunk.
        let mut seed = 5;
        let h: Vec<f32> = (0..128).map(|_| lcg(&mut seed)).collect();
        let init: Vec<f32> = (0..chunks * 512).map(|_| lcg(&mut seed)).collect();
        let mut want = init.clone();
        lstm_ours(&w.w_hh, &h, &mut want);
        let mut t = vec![Vec::new(); METHODS.len()];
        let lstm = |m: usize, g: &mut [f32]| match m {
            0 => lstm_ours(&w.w_hh, &h, g),
            1 | 2 => lstm_crate(Crate::Mm, &w.w_hh, &h, g),
            _ => lstm_crate(Crate::Gemm, &w.w_hh, &h, g),
        };
        for m in [1, 3] {
            let mut g = init.clone();
            lstm(m, &mut g);
            assert_close("LSTM recurrent", METHODS[m], &g, &want);
        }
        let mut g = init.clone();
        for _ in 0..reps {
            for (m, t) in t.iter_mut().enumerate() {
                t.push(time(&mut || lstm(m, black_box(&mut g[..]))));
            }
        }
        row("LSTM recurrent (512 x 128 matvec), 1/chunk in order (block = whole)", &mut t, &mut totals, true);
        let cells: Vec<String> = totals.iter().map(|[med, p99]| format!("{med:.3} / {p99:.3}")).collect();
        println!("| sum of the network's layers (conv1 to LSTM recurrent; medians / p99s added) | {} |", cells.join(" | "));
        // For scale: the whole network as the node runs it (realfft STFT, our kernel, LSTM cell).
        let mut seed = 3;
        let samples: Vec<f32> = (0..seconds * RATE).map(|_| 0.3 * lcg(&mut seed)).collect();
        let mut t: Vec<Duration> = (0..reps).map(|_| time(&mut || drop(black_box(probabilities(&samples, RATE as u32).unwrap())))).collect();
        let (med, p99) = stats(&mut t);
        println!("\nwhole network as shipped (`network::probabilities`, realfft STFT): {med:.3} / {p99:.3} ms\n");
    }
}
