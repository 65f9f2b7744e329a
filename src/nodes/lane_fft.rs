//! A real FFT of one fixed size computed for [`LANES`] frames at once, one frame per SIMD lane,
//! giving power spectra: `LogMelNode`'s transform (400 points, 100 frames per second).
//!
//! Why not realfft per frame: a 400-point transform is short, so a per-frame FFT spends much of
//! its time in shuffles, twiddle loads and per-call set-up, and rustfft has no vector kernels for
//! its 200-point complex transform. Here every butterfly is the same arithmetic on [`LANES`]
//! frames, so each value is a vector of [`LANES`] floats (one per frame) and the vector units run
//! whole, with no shuffles inside the transform: a self-sorting (Stockham) mixed-radix complex
//! FFT of n/2 points over even/odd-packed samples, then the split into the n-point real spectrum,
//! fused with `|X_k|²`. AVX2 and FMA on x86-64 only: [`LaneRealFft::new`] says `None` elsewhere
//! (and for sizes it does not handle), and the caller keeps its per-frame realfft path. Where the
//! CPU has AVX-512F the plan runs [`MAX_LANES`] frames at once instead (`lane_fft_avx512.rs`, the
//! same arithmetic at twice the width); [`LaneRealFft::lanes`] says which.

/// Frames per transform in the AVX2 kernel.
pub const LANES: usize = 8;
/// Frames per transform in the AVX-512 kernel: the most a plan reads at once.
pub const MAX_LANES: usize = 16;

/// One pass of the mixed-radix FFT: radix `p` turns transforms of length `l` into transforms of
/// length `l·p`.
#[derive(Debug)]
struct Stage {
    radix: usize,
    l: usize,
    /// Transforms of length `l·p` after the pass (`half / (l·p)`): the contiguous inner loop.
    m_out: usize,
    /// `w^{s·k}` for `k` in `0..l`, `s` in `1..p` (row `k`, `p − 1` entries), `w = e^{−2πi/(l·p)}`.
    twiddles: Vec<(f32, f32)>,
}

/// The plan of an `n`-point real FFT over [`LANES`] or [`MAX_LANES`] frames, and its buffers.
pub struct LaneRealFft {
    n: usize,
    half: usize,
    /// Frames per transform: [`LANES`] (AVX2) or [`MAX_LANES`] (AVX-512).
    lanes: usize,
    stages: Vec<Stage>,
    /// `e^{−2πik/n}` for `k` in `0..=n/2`: the even/odd split of the real spectrum.
    split: Vec<(f32, f32)>,
    /// Two buffers of `half` complex lane vectors (re then im, `2 · lanes` floats each).
    a: Vec<f32>,
    b: Vec<f32>,
}

impl LaneRealFft {
    /// The plan for `n` points, [`MAX_LANES`] frames at once where the CPU has AVX-512F,
    /// [`LANES`] otherwise; `None` unless the CPU has AVX2 and FMA, `n` is a multiple of 16
    /// (whole 8 × 8 tiles when the frames are turned into lanes) and `n / 2` has no prime factor
    /// above 5.
    /// `REMOTEMEDIA_NO_SIMD=1` makes it `None` too (see `nodes::cpu`).
    pub fn new(n: usize) -> Option<LaneRealFft> {
        let cpu = crate::nodes::cpu::simd();
        if !cpu.avx2_fma() {
            return None;
        }
        LaneRealFft::with_lanes(n, if cpu.avx512() { MAX_LANES } else { LANES })
    }

    /// The plan for `n` points in the kernel of `lanes` frames ([`LANES`] or [`MAX_LANES`]);
    /// `None` where the CPU lacks that kernel's instructions (the tests run both, whatever
    /// `REMOTEMEDIA_NO_SIMD` says).
    pub fn with_lanes(n: usize, lanes: usize) -> Option<LaneRealFft> {
        let hw = crate::nodes::cpu::hardware();
        let kernel = match lanes {
            LANES => hw.avx2_fma(),
            MAX_LANES => hw.avx512(),
            _ => false,
        };
        if !kernel || n == 0 || n % 16 != 0 {
            return None;
        }
        let half = n / 2;
        // Radix 8 first (a pass fewer: 200 = 8·5·5, three passes where 4·2·5·5 took four, and
        // the first pass has no twiddles), then 4, 2, 5 and 3.
        let mut radices = Vec::new();
        let mut rest = half;
        for p in [8, 4, 2, 5, 3] {
            while rest % p == 0 {
                radices.push(p);
                rest /= p;
            }
        }
        if rest != 1 {
            return None;
        }
        let mut stages = Vec::new();
        let mut l = 1;
        for &p in &radices {
            let len = l * p;
            let mut twiddles = Vec::with_capacity(l * (p - 1));
            for k in 0..l {
                for s in 1..p {
                    twiddles.push(unit(-((s * k) as f64) / len as f64));
                }
            }
            stages.push(Stage { radix: p, l, m_out: half / len, twiddles });
            l = len;
        }
        let split = (0..=half).map(|k| unit(-(k as f64) / n as f64)).collect();
        let buffer = vec![0.0; half * 2 * lanes];
        Some(LaneRealFft { n, half, lanes, stages, split, a: buffer.clone(), b: buffer })
    }

    /// Frames per transform: [`LANES`] or [`MAX_LANES`].
    pub fn lanes(&self) -> usize {
        self.lanes
    }

    /// Points per transform.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Bins per spectrum: `n / 2 + 1`.
    pub fn bins(&self) -> usize {
        self.half + 1
    }

    /// The power spectra `|X_k|²` of [`lanes`](LaneRealFft::lanes) frames (`frames`: frame `l`
    /// at `frames[l * hop..][..n]`), each multiplied by `window` first, into
    /// `out[k * stride + lane]` (bin-major). `hop` may be shorter than `n`: overlapping frames are
    /// read where they lie in the signal, with no copy.
    pub fn power(&mut self, frames: &[f32], hop: usize, window: &[f32], out: &mut [f32], stride: usize) {
        let lanes = self.lanes;
        assert!(frames.len() >= (lanes - 1) * hop + self.n && window.len() == self.n && stride >= lanes);
        assert!(out.len() >= self.half * stride + lanes);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `with_lanes` checked the kernel's instructions (AVX2 and FMA, and AVX-512F for
        // 16 lanes); the asserts above bound every access.
        unsafe {
            if lanes == MAX_LANES {
                avx512::power(self, frames, hop, window, out, stride)
            } else {
                avx::power(self, frames, hop, window, out, stride)
            }
        }
    }

    /// `log10(max(mel, floor))` of [`lanes`](LaneRealFft::lanes) frames (read as [`power`](LaneRealFft::power) reads
    /// them), the mel product taken from the power spectra while they are in L1 and the log on
    /// the filter sums while they are in registers; the first `count` frames' values are appended
    /// to `out`, frame after frame (`frames × filters`, the node's output layout, written once).
    /// Returns their maximum. `bank`'s filters must be a multiple of [`LANES`] (80 and 128 are).
    pub fn mel_log10(
        &mut self,
        frames: &[f32],
        hop: usize,
        count: usize,
        window: &[f32],
        bank: &LaneMelBank,
        floor: f32,
        out: &mut Vec<f32>,
    ) -> f32 {
        let lanes = self.lanes;
        assert!(frames.len() >= (lanes - 1) * hop + self.n && window.len() == self.n);
        assert!((1..=lanes).contains(&count) && bank.bins == self.half + 1 && floor > 0.0);
        let values = count * bank.filters();
        out.reserve(values);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `with_lanes` checked the kernel's instructions; the asserts above bound the
        // reads, and `reserve` the `values` floats written after `out`'s end, all of them before
        // `set_len`.
        unsafe {
            let end = out.as_mut_ptr().add(out.len());
            let max = if lanes == MAX_LANES {
                avx512::mel_log10(self, frames, hop, count, window, bank, floor, end)
            } else {
                avx::mel_log10(self, frames, hop, count, window, bank, floor, end)
            };
            out.set_len(out.len() + values);
            max
        }
    }
}

/// A mel filter bank laid out for [`LaneRealFft::mel_log10`]: each filter's first bin and its
/// weights, back to back.
pub struct LaneMelBank {
    /// `(first bin, offset into weights, number of weights)` per filter.
    rows: Vec<(usize, usize, usize)>,
    weights: Vec<f32>,
    bins: usize,
}

impl LaneMelBank {
    /// The bank of `rows` (each filter's first bin and weights) over spectra of `bins` bins;
    /// `None` unless the filters come in whole [`LANES`] (the log's transpose is 8 × 8 tiles) and
    /// every weight lies inside the spectrum.
    pub fn new<'a>(rows: impl IntoIterator<Item = (usize, &'a [f32])>, bins: usize) -> Option<LaneMelBank> {
        let mut bank = LaneMelBank { rows: Vec::new(), weights: Vec::new(), bins };
        for (first, w) in rows {
            if first + w.len() > bins {
                return None;
            }
            bank.rows.push((first, bank.weights.len(), w.len()));
            bank.weights.extend_from_slice(w);
        }
        (!bank.rows.is_empty() && bank.rows.len() % LANES == 0).then_some(bank)
    }

    pub fn filters(&self) -> usize {
        self.rows.len()
    }
}

/// `e^{2πi·turns}` in f64, rounded to f32.
fn unit(turns: f64) -> (f32, f32) {
    let a = 2.0 * std::f64::consts::PI * turns;
    (a.cos() as f32, a.sin() as f32)
}

/// The complex lane vector `C` (one complex value per frame, `lanes` frames) and its
/// arithmetic, from one width's intrinsics: `add`, `sub`, `rotate` (by a twiddle), `scale`,
/// `add_scaled`, `neg_i` (−i·a), `eighths` (the √2 turns of `dft8`), `load` and `store` (of
/// complex vector `i` of a buffer of them, re then im). One body for the AVX2 and AVX-512
/// kernels, so the same operations run at both widths.
macro_rules! lane_complex {
    (
        feature: $feature:literal, vector: $v:ty, lanes: $lanes:expr,
        add: $add:ident, sub: $sub:ident, mul: $mul:ident, fmadd: $fmadd:ident,
        fmsub: $fmsub:ident, set1: $set1:ident, zero: $zero:ident,
        loadu: $loadu:ident, storeu: $storeu:ident $(,)?
    ) => {
        /// A complex value per frame.
        #[derive(Clone, Copy)]
        struct C {
            re: $v,
            im: $v,
        }

        #[inline]
        #[target_feature(enable = $feature)]
        fn add(a: C, b: C) -> C {
            C { re: $add(a.re, b.re), im: $add(a.im, b.im) }
        }

        #[inline]
        #[target_feature(enable = $feature)]
        fn sub(a: C, b: C) -> C {
            C { re: $sub(a.re, b.re), im: $sub(a.im, b.im) }
        }

        /// `a · (wr + i·wi)`, the same twiddle on every lane.
        #[inline]
        #[target_feature(enable = $feature)]
        fn rotate(a: C, (wr, wi): (f32, f32)) -> C {
            let (wr, wi) = ($set1(wr), $set1(wi));
            C { re: $fmsub(a.re, wr, $mul(a.im, wi)), im: $fmadd(a.re, wi, $mul(a.im, wr)) }
        }

        /// `a · s`, real `s`.
        #[inline]
        #[target_feature(enable = $feature)]
        fn scale(a: C, s: f32) -> C {
            let s = $set1(s);
            C { re: $mul(a.re, s), im: $mul(a.im, s) }
        }

        /// `a + b · s`, real `s`.
        #[inline]
        #[target_feature(enable = $feature)]
        fn add_scaled(a: C, b: C, s: f32) -> C {
            let s = $set1(s);
            C { re: $fmadd(b.re, s, a.re), im: $fmadd(b.im, s, a.im) }
        }

        /// `−i · a`.
        #[inline]
        #[target_feature(enable = $feature)]
        fn neg_i(a: C) -> C {
            C { re: a.im, im: $sub($zero(), a.re) }
        }

        /// `w·a` and `w³·b`, w = e^{−2πi/8}: ((re + im) + i(im − re))/√2 and
        /// ((im − re) − i(re + im))/√2, the odd half of `dft8`.
        #[inline]
        #[target_feature(enable = $feature)]
        fn eighths(a: C, b: C) -> (C, C) {
            let h = $set1(std::f32::consts::FRAC_1_SQRT_2);
            let (s1, d1) = ($add(a.re, a.im), $sub(a.im, a.re));
            let (s3, d3) = ($add(b.re, b.im), $sub(b.im, b.re));
            (C { re: $mul(s1, h), im: $mul(d1, h) }, C { re: $mul(d3, h), im: $sub($zero(), $mul(s3, h)) })
        }

        #[inline]
        #[target_feature(enable = $feature)]
        unsafe fn load(p: *const f32, i: usize) -> C {
            let p = p.add(i * 2 * $lanes);
            C { re: $loadu(p), im: $loadu(p.add($lanes)) }
        }

        #[inline]
        #[target_feature(enable = $feature)]
        unsafe fn store(p: *mut f32, i: usize, v: C) {
            let p = p.add(i * 2 * $lanes);
            $storeu(p, v.re);
            $storeu(p.add($lanes), v.im);
        }
    };
}

/// The small forward DFTs (2, 3, 4, 5 and 8 points) and the Stockham passes built on them,
/// compiled for `$feature`: one body for the AVX2 and AVX-512 kernels, which run the same
/// operations at two widths, on the `C` and helpers of the module's [`lane_complex!`], so both
/// kernels give the same bits (`tests::avx512_equals_avx2`).
macro_rules! lane_passes {
    ($feature:literal) => {
        #[inline]
        #[target_feature(enable = $feature)]
        fn dft2(x: [C; 2]) -> [C; 2] {
            [add(x[0], x[1]), sub(x[0], x[1])]
        }

        #[inline]
        #[target_feature(enable = $feature)]
        fn dft3(x: [C; 3]) -> [C; 3] {
            const S: f32 = 0.866_025_4; // sin(2π/3)
            let t1 = add(x[1], x[2]);
            let t2 = neg_i(scale(sub(x[1], x[2]), S));
            let a = add_scaled(x[0], t1, -0.5);
            [add(x[0], t1), add(a, t2), sub(a, t2)]
        }

        #[inline]
        #[target_feature(enable = $feature)]
        fn dft4(x: [C; 4]) -> [C; 4] {
            let a = add(x[0], x[2]);
            let b = sub(x[0], x[2]);
            let c = add(x[1], x[3]);
            let d = neg_i(sub(x[1], x[3]));
            [add(a, c), add(b, d), sub(a, c), sub(b, d)]
        }

        #[inline]
        #[target_feature(enable = $feature)]
        fn dft8(x: [C; 8]) -> [C; 8] {
            // Two DFTs of 4 (even and odd samples), the odd one turned by w^k, w = e^{−2πi/8}.
            let e = dft4([x[0], x[2], x[4], x[6]]);
            let o = dft4([x[1], x[3], x[5], x[7]]);
            let (o1, o3) = eighths(o[1], o[3]);
            let o2 = neg_i(o[2]);
            [
                add(e[0], o[0]),
                add(e[1], o1),
                add(e[2], o2),
                add(e[3], o3),
                sub(e[0], o[0]),
                sub(e[1], o1),
                sub(e[2], o2),
                sub(e[3], o3),
            ]
        }

        #[inline]
        #[target_feature(enable = $feature)]
        fn dft5(x: [C; 5]) -> [C; 5] {
            // cos and sin of 2π/5 and 4π/5.
            const C1: f32 = 0.309_017;
            const C2: f32 = -0.809_017;
            const S1: f32 = 0.951_056_5;
            const S2: f32 = 0.587_785_24;
            let t1 = add(x[1], x[4]);
            let t2 = add(x[2], x[3]);
            let t3 = sub(x[1], x[4]);
            let t4 = sub(x[2], x[3]);
            let a1 = add_scaled(add_scaled(x[0], t1, C1), t2, C2);
            let a2 = add_scaled(add_scaled(x[0], t1, C2), t2, C1);
            let b1 = neg_i(add_scaled(scale(t3, S1), t4, S2));
            let b2 = neg_i(add_scaled(scale(t3, S2), t4, -S1));
            [add(x[0], add(t1, t2)), add(a1, b1), add(a2, b2), sub(a2, b2), sub(a1, b1)]
        }

        lane_pass!($feature, pass2, 2, dft2);
        lane_pass!($feature, pass3, 3, dft3);
        lane_pass!($feature, pass4, 4, dft4);
        lane_pass!($feature, pass5, 5, dft5);
        lane_pass!($feature, pass8, 8, dft8);
    };
}

/// One Stockham pass (decimation in time, self-sorting): `src[k·m + s·m' + j]` holds bin `k`
/// of the length-`l` transform of subsequence `j + s·m'`; the pass writes bin `k + l·q` of the
/// length-`l·p` transform of subsequence `j` to `dst[(k + l·q)·m' + j]` (`m' = m_out`,
/// `m = p·m'`). A function per radix: the DFT is called directly, so it is inlined.
macro_rules! lane_pass {
    ($feature:literal, $name:ident, $p:literal, $dft:ident) => {
        #[inline]
        #[target_feature(enable = $feature)]
        unsafe fn $name(stage: &Stage, src: *const f32, dst: *mut f32) {
            let (l, m_out) = (stage.l, stage.m_out);
            let m = $p * m_out;
            for k in 0..l {
                let tw = &stage.twiddles[k * ($p - 1)..(k + 1) * ($p - 1)];
                for j in 0..m_out {
                    let mut x = [load(src, k * m + j); $p];
                    for s in 1..$p {
                        let v = load(src, k * m + s * m_out + j);
                        x[s] = if k == 0 { v } else { rotate(v, tw[s - 1]) };
                    }
                    let y = $dft(x);
                    for q in 0..$p {
                        store(dst, (k + l * q) * m_out + j, y[q]);
                    }
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
#[path = "lane_fft_avx512.rs"]
mod avx512;

#[cfg(target_arch = "x86_64")]
mod avx {
    use super::{LaneMelBank, LaneRealFft, Stage, LANES};
    use std::arch::x86_64::*;

    lane_complex! {
        feature: "avx2,fma", vector: __m256, lanes: LANES,
        add: _mm256_add_ps, sub: _mm256_sub_ps, mul: _mm256_mul_ps, fmadd: _mm256_fmadd_ps,
        fmsub: _mm256_fmsub_ps, set1: _mm256_set1_ps, zero: _mm256_setzero_ps,
        loadu: _mm256_loadu_ps, storeu: _mm256_storeu_ps,
    }
    lane_passes!("avx2,fma");

    /// Eight rows of eight floats to eight columns.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ]
    }

    /// Frames to lanes, windowed, even samples to the real parts and odd ones to the imaginary
    /// (an n/2-point complex transform), then the Stockham passes. Returns the buffer that holds
    /// the transform Z (the other one is free). Eight samples of eight frames per tile.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn transform(f: &mut LaneRealFft, frames: &[f32], hop: usize, window: &[f32]) -> (*mut f32, *mut f32) {
        let n = f.n;
        let a = f.a.as_mut_ptr();
        for t in 0..n / 8 {
            let mut rows = [_mm256_setzero_ps(); 8];
            for (l, r) in rows.iter_mut().enumerate() {
                *r = _mm256_loadu_ps(frames.as_ptr().add(l * hop + 8 * t));
            }
            let cols = transpose8(rows);
            for q in 0..4 {
                let i = 8 * t + 2 * q;
                let v = C {
                    re: _mm256_mul_ps(cols[2 * q], _mm256_set1_ps(window[i])),
                    im: _mm256_mul_ps(cols[2 * q + 1], _mm256_set1_ps(window[i + 1])),
                };
                store(a, 4 * t + q, v);
            }
        }
        let (mut src, mut dst) = (f.a.as_mut_ptr(), f.b.as_mut_ptr());
        for stage in &f.stages {
            match stage.radix {
                8 => pass8(stage, src, dst),
                4 => pass4(stage, src, dst),
                2 => pass2(stage, src, dst),
                5 => pass5(stage, src, dst),
                _ => pass3(stage, src, dst),
            }
            std::mem::swap(&mut src, &mut dst);
        }
        (src, dst)
    }

    /// The n-point real spectrum from the n/2-point transform Z at `src`, squared, into
    /// `o[k * stride]` (a vector of [`LANES`] frames per bin):
    /// X_k = (E_k + w^k·(−i)·D_k) / 2, E_k = Z_k + conj Z_{h−k}, D_k = Z_k − conj Z_{h−k}.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn split_power(f: &LaneRealFft, src: *const f32, o: *mut f32, stride: usize) {
        let h = f.half;
        let quarter = _mm256_set1_ps(0.25);
        for (k, &w) in f.split.iter().enumerate() {
            // Z_h is Z_0: bins 0 and h read Z_0 twice (no division in the loop).
            let (i, j) = if k == 0 || k == h { (0, 0) } else { (k, h - k) };
            let zk = load(src, i);
            let zc = load(src, j);
            let e = C { re: _mm256_add_ps(zk.re, zc.re), im: _mm256_sub_ps(zk.im, zc.im) };
            let d = C { re: _mm256_sub_ps(zk.re, zc.re), im: _mm256_add_ps(zk.im, zc.im) };
            let x = add(e, rotate(neg_i(d), w));
            let p = _mm256_fmadd_ps(x.re, x.re, _mm256_mul_ps(x.im, x.im));
            _mm256_storeu_ps(o.add(k * stride), _mm256_mul_ps(p, quarter));
        }
    }

    /// SAFETY: AVX2 and FMA present; `frames`, `window` and `out` as `LaneRealFft::power` checks.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn power(f: &mut LaneRealFft, frames: &[f32], hop: usize, window: &[f32], out: &mut [f32], stride: usize) {
        let (src, _) = transform(f, frames, hop, window);
        split_power(f, src, out.as_mut_ptr(), stride);
    }

    /// `ln(x)` of eight positive normal floats: the same Cephes `logf` as
    /// `spectral::log10_floored` (the exponent from the bits, the mantissa folded into
    /// [√½, √2), a degree-9 polynomial in `m − 1`), with FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn ln8(x: __m256) -> __m256 {
        let bits = _mm256_castps_si256(x);
        let exp = _mm256_sub_epi32(_mm256_srli_epi32::<23>(bits), _mm256_set1_epi32(126));
        // The mantissa in [0.5, 1).
        let m = _mm256_castsi256_ps(_mm256_or_si256(
            _mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)),
            _mm256_set1_epi32(0x3f00_0000),
        ));
        let small = _mm256_cmp_ps::<_CMP_LT_OQ>(m, _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
        // e − 1 where the mantissa was doubled (the mask is −1 there).
        let e = _mm256_cvtepi32_ps(_mm256_add_epi32(exp, _mm256_castps_si256(small)));
        let one = _mm256_set1_ps(1.0);
        let f = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(small, m)), one);
        let z = _mm256_mul_ps(f, f);
        let c = |v: f32| _mm256_set1_ps(v);
        // The degree-8 polynomial by Estrin's scheme (pairs, then powers of f²): a chain of four
        // multiply-adds where Horner's takes eight, so the filters' logs overlap better.
        let p01 = _mm256_fmadd_ps(c(7.037_683_6e-2), f, c(-1.151_461_e-1));
        let p23 = _mm256_fmadd_ps(c(1.167_699_9e-1), f, c(-1.242_014_1e-1));
        let p45 = _mm256_fmadd_ps(c(1.424_932_3e-1), f, c(-1.666_805_8e-1));
        let p67 = _mm256_fmadd_ps(c(2.000_071_4e-1), f, c(-2.499_999_4e-1));
        let z2 = _mm256_mul_ps(z, z);
        let q0 = _mm256_fmadd_ps(p01, z, p23);
        let q1 = _mm256_fmadd_ps(p45, z, p67);
        let q = _mm256_fmadd_ps(q0, z2, q1);
        let mut y = _mm256_fmadd_ps(q, f, c(3.333_333_1e-1));
        y = _mm256_mul_ps(_mm256_mul_ps(y, f), z);
        y = _mm256_fmadd_ps(e, c(-2.121_944_4e-4), y);
        y = _mm256_fnmadd_ps(z, c(0.5), y);
        _mm256_fmadd_ps(e, c(0.693_359_375), _mm256_add_ps(f, y))
    }

    /// SAFETY: AVX2 and FMA present; `frames` and `window` as `LaneRealFft::mel_log10` checks;
    /// `out` has room for `count × bank.filters()` floats.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn mel_log10(
        f: &mut LaneRealFft,
        frames: &[f32],
        hop: usize,
        count: usize,
        window: &[f32],
        bank: &LaneMelBank,
        floor: f32,
        out: *mut f32,
    ) -> f32 {
        // The power spectra go to the free buffer, a vector per bin (L1: 201 × 32 bytes).
        let (src, power) = transform(f, frames, hop, window);
        split_power(f, src, power, LANES);
        let filters = bank.filters();
        let (floor_v, at_floor) = (_mm256_set1_ps(floor), _mm256_set1_ps(floor.log10()));
        let log10_e = _mm256_set1_ps(std::f32::consts::LOG10_E);
        let mut max = _mm256_set1_ps(f32::NEG_INFINITY);
        // Lanes past `count` hold stale frames: left out of the maximum.
        let valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(count as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        let w = bank.weights.as_ptr();
        for m0 in (0..filters).step_by(LANES) {
            let mut rows = [_mm256_setzero_ps(); LANES];
            for (r, &(first, offset, len)) in rows.iter_mut().zip(&bank.rows[m0..m0 + LANES]) {
                // Each filter's bins in ascending order from zero, as `MelBank::apply_block`.
                let mut acc = _mm256_setzero_ps();
                for j in 0..len {
                    acc = _mm256_fmadd_ps(_mm256_loadu_ps(power.add((first + j) * LANES)), _mm256_set1_ps(*w.add(offset + j)), acc);
                }
                *r = acc;
            }
            // The eight logs after the eight sums: independent chains, side by side.
            for r in rows.iter_mut() {
                let above = _mm256_cmp_ps::<_CMP_GT_OQ>(*r, floor_v);
                // ln of the floor where the sum is under it (ln8 needs positive normal input).
                let log = _mm256_mul_ps(ln8(_mm256_max_ps(*r, floor_v)), log10_e);
                *r = _mm256_blendv_ps(at_floor, log, above);
                max = _mm256_max_ps(max, _mm256_blendv_ps(_mm256_set1_ps(f32::NEG_INFINITY), *r, _mm256_castsi256_ps(valid)));
            }
            let cols = transpose8(rows);
            for (t, c) in cols.iter().enumerate().take(count) {
                _mm256_storeu_ps(out.add(t * filters + m0), *c);
            }
        }
        let mut lanes = [0.0f32; LANES];
        _mm256_storeu_ps(lanes.as_mut_ptr(), max);
        lanes.into_iter().fold(f32::NEG_INFINITY, f32::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every supported size against a direct f64 DFT, on different frames in every lane, in
    /// each kernel this CPU has.
    #[test]
    fn power_spectra_equal_a_direct_dft() {
        for (n, lanes) in [16, 32, 48, 80, 96, 160, 400, 512].into_iter().flat_map(|n| [(n, LANES), (n, MAX_LANES)]) {
            let Some(mut fft) = LaneRealFft::with_lanes(n, lanes) else {
                eprintln!("no kernel of {lanes} lanes on this CPU: not tested");
                continue;
            };
            let frames: Vec<f32> = (0..lanes * n).map(|i| ((i * 7919 + 13) % 1009) as f32 / 1009.0 - 0.5).collect();
            let window: Vec<f32> = (0..n).map(|i| 0.5 + 0.5 * (i as f32 / n as f32)).collect();
            let bins = n / 2 + 1;
            let stride = lanes + 3;
            let mut out = vec![f32::NAN; bins * stride];
            fft.power(&frames, n, &window, &mut out, stride);
            for l in 0..lanes {
                let x: Vec<f64> = (0..n).map(|i| frames[l * n + i] as f64 * window[i] as f64).collect();
                let energy: f64 = x.iter().map(|v| v * v).sum::<f64>() * n as f64;
                for k in 0..bins {
                    let (mut re, mut im) = (0.0f64, 0.0f64);
                    for (i, v) in x.iter().enumerate() {
                        let a = -2.0 * std::f64::consts::PI * (i * k % n) as f64 / n as f64;
                        re += v * a.cos();
                        im += v * a.sin();
                    }
                    let want = re * re + im * im;
                    let got = out[k * stride + l] as f64;
                    assert!((got - want).abs() <= 1e-6 * energy, "n {n}, {lanes} lanes, lane {l} bin {k}: {got} vs {want}");
                }
            }
        }
    }

    /// The AVX-512 kernel gives the AVX2 kernel's bits: power spectra, and the fused mel sums and
    /// logs of 1 to 16 frames (with Whisper's 80- and 128-filter banks; overlapping frames read in
    /// place, and quiet frames under the floor), each 16-lane call against two 8-lane calls. Says
    /// which kernels ran; on a CPU without AVX-512F there is nothing to compare, and it says so.
    #[test]
    fn avx512_equals_avx2() {
        let detected = crate::nodes::cpu::hardware().avx512();
        let (Some(mut wide), Some(mut narrow)) = (LaneRealFft::with_lanes(400, MAX_LANES), LaneRealFft::with_lanes(400, LANES)) else {
            assert!(!detected, "AVX-512F detected but no 16-lane plan");
            eprintln!("avx512_equals_avx2: no AVX-512F (or no AVX2) on this CPU, the 16-lane kernel did not run");
            return;
        };
        if crate::nodes::cpu::simd().avx512() {
            assert_eq!(LaneRealFft::new(400).map(|f| f.lanes()), Some(MAX_LANES), "the default plan takes the AVX-512 kernel");
        }
        eprintln!("avx512_equals_avx2: ran the AVX-512 kernel ({MAX_LANES} lanes) against the AVX2 kernel ({LANES} lanes)");
        let hop = 160;
        // Speech-like tones, then silence for the last frames (under the 1e-10 floor).
        let x: Vec<f32> = (0..MAX_LANES * hop + 400)
            .map(|i| if i < 2000 { (i as f32 * 0.05).sin() * 0.3 + ((i * 7919) % 101) as f32 * 1e-4 } else { 0.0 })
            .collect();
        let window: Vec<f32> = (0..400).map(|i| 0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / 400.0).cos()).collect();
        let mut out_wide = vec![f32::NAN; 201 * MAX_LANES + MAX_LANES];
        wide.power(&x, hop, &window, &mut out_wide, MAX_LANES);
        let mut out_narrow = vec![f32::NAN; 201 * LANES + LANES];
        for half in 0..2 {
            narrow.power(&x[half * LANES * hop..], hop, &window, &mut out_narrow, LANES);
            for k in 0..201 {
                for l in 0..LANES {
                    assert_eq!(out_wide[k * MAX_LANES + half * LANES + l].to_bits(), out_narrow[k * LANES + l].to_bits(), "bin {k} frame {}", half * LANES + l);
                }
            }
        }
        for n_mels in [80, 128] {
            let mel = crate::nodes::spectral::MelBank::slaney(16000.0, 400, n_mels, 0.0, 8000.0);
            let bank = LaneMelBank::new(mel.rows(), mel.bins()).expect("whole groups of 8 filters");
            for count in 1..=MAX_LANES {
                let mut got = Vec::new();
                let max = wide.mel_log10(&x, hop, count, &window, &bank, 1e-10, &mut got);
                let mut want = Vec::new();
                let mut want_max = narrow.mel_log10(&x, hop, count.min(LANES), &window, &bank, 1e-10, &mut want);
                if count > LANES {
                    want_max = want_max.max(narrow.mel_log10(&x[LANES * hop..], hop, count - LANES, &window, &bank, 1e-10, &mut want));
                }
                assert_eq!(got.len(), count * n_mels);
                assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{n_mels} mels, {count} frames");
                assert_eq!(max.to_bits(), want_max.to_bits(), "{n_mels} mels, {count} frames: maximum");
                if count >= 14 {
                    assert!(got.contains(&1e-10f32.log10()), "the silent frames reach the floor");
                }
            }
        }
    }

    #[test]
    fn unsupported_sizes_have_no_plan() {
        for n in [0, 8, 24, 56, 402, 176] {
            assert!(LaneRealFft::new(n).is_none(), "{n}");
        }
    }
}
