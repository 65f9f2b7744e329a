//! The AVX-512 kernel of [`super::LaneRealFft`]: sixteen frames side by side, one per lane of a
//! 512-bit register, where the AVX2 kernel in `lane_fft.rs` runs eight.
//!
//! Why a second kernel: the transform, the split, the mel sums and the log do the same work per
//! lane whatever the width, so twice the lanes per instruction is close to half the instructions
//! for the same frames (Zen 5 runs 512-bit operations at full width). It is the AVX2 kernel
//! operation for operation (same passes, twiddles, order of the mel sums, `logf` polynomial, the
//! same fused multiply-adds), so the two give the same bits: `tests::avx512_equals_avx2` checks
//! that. Only what has no 512-bit twin differs in form, not in value: masks instead of blends,
//! and the 8 × 8 transposes of the AVX2 kernel applied to each half of the registers.

use super::{avx::transpose8, LaneMelBank, LaneRealFft, Stage};
use std::arch::x86_64::*;

/// Frames per vector.
pub(super) const W: usize = 16;

lane_complex! {
    feature: "avx512f,avx2,fma", vector: __m512, lanes: W,
    add: _mm512_add_ps, sub: _mm512_sub_ps, mul: _mm512_mul_ps, fmadd: _mm512_fmadd_ps,
    fmsub: _mm512_fmsub_ps, set1: _mm512_set1_ps, zero: _mm512_setzero_ps,
    loadu: _mm512_loadu_ps, storeu: _mm512_storeu_ps,
}
lane_passes!("avx512f,avx2,fma");

/// Frames 0-7 and 8-15 of a vector.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn halves(v: __m512) -> (__m256, __m256) {
    (_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))))
}

/// Sixteen rows of sixteen floats to sixteen columns: pairs of rows interleaved, then pairs of
/// pairs, then the 128-bit quarters gathered (64 shuffles; two 8 × 8 AVX2 transposes and their
/// joins took 112 per 128 floats fewer than these 256).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
    let t: [__m512; 16] = std::array::from_fn(|i| {
        let (a, b) = (r[i & !1], r[i | 1]);
        if i % 2 == 0 { _mm512_unpacklo_ps(a, b) } else { _mm512_unpackhi_ps(a, b) }
    });
    // `u[4k + j]`, quarter `q`: rows 4k..4k+4 of column 4q + j.
    let u: [__m512; 16] = std::array::from_fn(|i| {
        let (k, j) = (i / 4, i % 4);
        let (a, b) = (_mm512_castps_pd(t[4 * k + j / 2]), _mm512_castps_pd(t[4 * k + j / 2 + 2]));
        _mm512_castpd_ps(if j % 2 == 0 { _mm512_unpacklo_pd(a, b) } else { _mm512_unpackhi_pd(a, b) })
    });
    let mut cols = [_mm512_setzero_ps(); 16];
    for j in 0..4 {
        let x0 = _mm512_shuffle_f32x4::<0x44>(u[j], u[4 + j]);
        let x1 = _mm512_shuffle_f32x4::<0xEE>(u[j], u[4 + j]);
        let y0 = _mm512_shuffle_f32x4::<0x44>(u[8 + j], u[12 + j]);
        let y1 = _mm512_shuffle_f32x4::<0xEE>(u[8 + j], u[12 + j]);
        cols[j] = _mm512_shuffle_f32x4::<0x88>(x0, y0);
        cols[4 + j] = _mm512_shuffle_f32x4::<0xDD>(x0, y0);
        cols[8 + j] = _mm512_shuffle_f32x4::<0x88>(x1, y1);
        cols[12 + j] = _mm512_shuffle_f32x4::<0xDD>(x1, y1);
    }
    cols
}

/// Frames to lanes, windowed, even samples to the real parts and odd ones to the imaginary,
/// then the Stockham passes (as the AVX2 kernel's `transform`, 16 frames: a 16 × 16 tile per
/// sixteen samples). Returns the buffer that holds the transform Z and the free one.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn transform(f: &mut LaneRealFft, frames: &[f32], hop: usize, window: &[f32]) -> (*mut f32, *mut f32) {
    let n = f.n;
    let a = f.a.as_mut_ptr();
    let p = frames.as_ptr();
    let tiles = n / 16;
    for t in 0..tiles {
        let cols = transpose16(std::array::from_fn(|l| _mm512_loadu_ps(p.add(l * hop + 16 * t))));
        for q in 0..8 {
            let i = 16 * t + 2 * q;
            let v = C {
                re: _mm512_mul_ps(cols[2 * q], _mm512_set1_ps(window[i])),
                im: _mm512_mul_ps(cols[2 * q + 1], _mm512_set1_ps(window[i + 1])),
            };
            store(a, 8 * t + q, v);
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

/// The n-point power spectrum from the n/2-point transform at `src` into `o[k * stride]`, as
/// the AVX2 kernel's `split_power`.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn split_power(f: &LaneRealFft, src: *const f32, o: *mut f32, stride: usize) {
    let h = f.half;
    let quarter = _mm512_set1_ps(0.25);
    for (k, &w) in f.split.iter().enumerate() {
        let (i, j) = if k == 0 || k == h { (0, 0) } else { (k, h - k) };
        let zk = load(src, i);
        let zc = load(src, j);
        let e = C { re: _mm512_add_ps(zk.re, zc.re), im: _mm512_sub_ps(zk.im, zc.im) };
        let d = C { re: _mm512_sub_ps(zk.re, zc.re), im: _mm512_add_ps(zk.im, zc.im) };
        let x = add(e, rotate(neg_i(d), w));
        let p = _mm512_fmadd_ps(x.re, x.re, _mm512_mul_ps(x.im, x.im));
        _mm512_storeu_ps(o.add(k * stride), _mm512_mul_ps(p, quarter));
    }
}

/// SAFETY: AVX-512F, AVX2 and FMA present; `frames`, `window` and `out` as
/// `LaneRealFft::power` checks for 16 lanes.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn power(f: &mut LaneRealFft, frames: &[f32], hop: usize, window: &[f32], out: &mut [f32], stride: usize) {
    let (src, _) = transform(f, frames, hop, window);
    split_power(f, src, out.as_mut_ptr(), stride);
}

/// `ln(x)` of sixteen positive normal floats: the AVX2 kernel's `ln8` (Cephes `logf`), the
/// blends by mask.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn ln16(x: __m512) -> __m512 {
    let bits = _mm512_castps_si512(x);
    let exp = _mm512_sub_epi32(_mm512_srli_epi32::<23>(bits), _mm512_set1_epi32(126));
    // The mantissa in [0.5, 1).
    let m = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_and_si512(bits, _mm512_set1_epi32(0x007f_ffff)),
        _mm512_set1_epi32(0x3f00_0000),
    ));
    let small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(m, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
    // e − 1 and the mantissa doubled where it is small (AVX2: `m + (m & mask)`, the same value).
    let e = _mm512_cvtepi32_ps(_mm512_mask_sub_epi32(exp, small, exp, _mm512_set1_epi32(1)));
    let one = _mm512_set1_ps(1.0);
    let f = _mm512_sub_ps(_mm512_mask_add_ps(m, small, m, m), one);
    let z = _mm512_mul_ps(f, f);
    let c = |v: f32| _mm512_set1_ps(v);
    let p01 = _mm512_fmadd_ps(c(7.037_683_6e-2), f, c(-1.151_461_e-1));
    let p23 = _mm512_fmadd_ps(c(1.167_699_9e-1), f, c(-1.242_014_1e-1));
    let p45 = _mm512_fmadd_ps(c(1.424_932_3e-1), f, c(-1.666_805_8e-1));
    let p67 = _mm512_fmadd_ps(c(2.000_071_4e-1), f, c(-2.499_999_4e-1));
    let z2 = _mm512_mul_ps(z, z);
    let q0 = _mm512_fmadd_ps(p01, z, p23);
    let q1 = _mm512_fmadd_ps(p45, z, p67);
    let q = _mm512_fmadd_ps(q0, z2, q1);
    let mut y = _mm512_fmadd_ps(q, f, c(3.333_333_1e-1));
    y = _mm512_mul_ps(_mm512_mul_ps(y, f), z);
    y = _mm512_fmadd_ps(e, c(-2.121_944_4e-4), y);
    y = _mm512_fnmadd_ps(z, c(0.5), y);
    _mm512_fmadd_ps(e, c(0.693_359_375), _mm512_add_ps(f, y))
}

/// The AVX2 kernel's `mel_log10` for 16 frames: eight filters' sums at a time (16 frames each),
/// their logs, and the two 8 × 8 tiles of each group written to `out` (frames × filters).
///
/// SAFETY: AVX-512F, AVX2 and FMA present; `frames` and `window` as `LaneRealFft::mel_log10`
/// checks for 16 lanes; `out` has room for `count × bank.filters()` floats.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn mel_log10(
    f: &mut LaneRealFft,
    frames: &[f32],
    hop: usize,
    count: usize,
    window: &[f32],
    bank: &LaneMelBank,
    floor: f32,
    out: *mut f32,
) -> f32 {
    let (src, power) = transform(f, frames, hop, window);
    split_power(f, src, power, W);
    let filters = bank.filters();
    let (floor_v, at_floor) = (_mm512_set1_ps(floor), _mm512_set1_ps(floor.log10()));
    let log10_e = _mm512_set1_ps(std::f32::consts::LOG10_E);
    let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
    // Lanes past `count` hold stale frames: left out of the maximum.
    let valid: __mmask16 = if count >= W { !0 } else { (1 << count) - 1 };
    let w = bank.weights.as_ptr();
    for m0 in (0..filters).step_by(8) {
        let mut rows = [_mm512_setzero_ps(); 8];
        for (r, &(first, offset, len)) in rows.iter_mut().zip(&bank.rows[m0..m0 + 8]) {
            let mut acc = _mm512_setzero_ps();
            for j in 0..len {
                acc = _mm512_fmadd_ps(_mm512_loadu_ps(power.add((first + j) * W)), _mm512_set1_ps(*w.add(offset + j)), acc);
            }
            *r = acc;
        }
        for r in rows.iter_mut() {
            let above = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(*r, floor_v);
            let log = _mm512_mul_ps(ln16(_mm512_max_ps(*r, floor_v)), log10_e);
            *r = _mm512_mask_blend_ps(above, at_floor, log);
            max = _mm512_mask_max_ps(max, valid, max, *r);
        }
        let lo = transpose8(rows.map(|r| halves(r).0));
        let hi = transpose8(rows.map(|r| halves(r).1));
        for t in 0..count {
            let c = if t < 8 { lo[t] } else { hi[t - 8] };
            _mm256_storeu_ps(out.add(t * filters + m0), c);
        }
    }
    _mm512_reduce_max_ps(max)
}
