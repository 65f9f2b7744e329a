//! The one arithmetic kernel of the Silero network: rows of a weight matrix dotted with input
//! columns read in place (`out[c] = act(bias + W · input[cols[c]..][..k])`), AVX-512 or AVX2+FMA
//! when the CPU has it, portable Rust otherwise.
//!
//! Why a hand-written kernel rather than a GEMM crate: every layer here is a tall, thin product
//! (128 x 387 weights against 4 columns per chunk, down to a 512 x 128 matrix-vector product per
//! LSTM step), and the columns of a convolution are overlapping windows of one buffer, which a
//! strided GEMM cannot address without copying them out first (im2col). Dotting rows with
//! columns in place needs no packing, works for one column as well as for thousands, and runs
//! at the FMA unit's rate from L1/L2. Measured against `matrixmultiply` and `gemm` on these
//! layers (benchmarks/gemm_choice/, docs/performance.md): neither is faster on the whole network.

/// A row-major weight matrix: `rows` rows of `k` values.
#[derive(Clone, Debug)]
pub struct Matrix {
    pub data: Vec<f32>,
    pub rows: usize,
    pub k: usize,
}

impl Matrix {
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.k..(r + 1) * self.k]
    }
}

/// For every column `c`: `out[out_cols[c]..][..w.rows] = act(bias + w · input[cols[c]..][..w.k])`,
/// `act` being ReLU when `relu` is set. Columns may overlap (a convolution's windows).
pub fn dense(w: &Matrix, bias: &[f32], input: &[f32], cols: &[usize], out: &mut [f32], out_cols: &[usize], relu: bool) {
    assert_eq!(cols.len(), out_cols.len());
    assert_eq!(bias.len(), w.rows);
    assert!(cols.iter().all(|&c| c + w.k <= input.len()), "a column reads past the input");
    assert!(out_cols.iter().all(|&c| c + w.rows <= out.len()), "a column writes past the output");
    #[cfg(target_arch = "x86_64")]
    match simd() {
        // SAFETY: the CPU has the instructions (checked by `simd`); every read and write was
        // bounds-checked by the asserts (columns of `w.k` inside `input`, outputs of `w.rows`
        // inside `out`).
        Simd::Avx512 => return unsafe { avx512::dense(w, bias, input, cols, out, out_cols, relu) },
        Simd::Avx2 => return unsafe { avx::dense(w, bias, input, cols, out, out_cols, relu) },
        Simd::None => {}
    }
    for (&c, &o) in cols.iter().zip(out_cols) {
        let x = &input[c..c + w.k];
        for r in 0..w.rows {
            let v = bias[r] + dot(w.row(r), x);
            out[o + r] = if relu { v.max(0.0) } else { v };
        }
    }
}

/// `y[r] += w.row(r) · x` for every row: the LSTM's recurrent product, one step at a time.
pub fn matvec_add(w: &Matrix, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), w.k);
    assert_eq!(y.len(), w.rows);
    #[cfg(target_arch = "x86_64")]
    match simd() {
        // SAFETY: the instructions are present; lengths checked above.
        Simd::Avx512 => return unsafe { avx512::matvec_add(w, x, y) },
        Simd::Avx2 => return unsafe { avx::matvec_add(w, x, y) },
        Simd::None => {}
    }
    for (r, yr) in y.iter_mut().enumerate() {
        *yr += dot(w.row(r), x);
    }
}

/// A dot product with 8 independent sums, so the portable path vectorises too.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The widest instruction set the kernels may use on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// 16-lane FMAs: twice the AVX2 kernel's rate on CPUs with full-width AVX-512 units (measured
    /// in docs/performance.md), the same on those that split them.
    Avx512,
    Avx2,
    None,
}

/// From `nodes::cpu`: `REMOTEMEDIA_NO_SIMD=1` forces the portable path (the unit test runs every
/// path this CPU has).
pub fn simd() -> Simd {
    let cpu = crate::nodes::cpu::simd();
    if cpu.avx512() {
        Simd::Avx512
    } else if cpu.avx2_fma() {
        Simd::Avx2
    } else {
        Simd::None
    }
}

/// The row and column loops around a module's `block4x2` / `block8x1`, compiled for `$feature`:
/// one body for the AVX2 and AVX-512 kernels, which differ only in their blocks (the names
/// resolve in the module that expands it).
#[cfg(target_arch = "x86_64")]
macro_rules! vector_drivers {
    ($feature:literal) => {
        #[target_feature(enable = $feature)]
        pub unsafe fn dense(w: &Matrix, bias: &[f32], input: &[f32], cols: &[usize], out: &mut [f32], out_cols: &[usize], relu: bool) {
            let (k, rows) = (w.k, w.rows);
            let wp = w.data.as_ptr();
            let ip = input.as_ptr();
            let op = out.as_mut_ptr();
            let act = |v: f32| if relu { v.max(0.0) } else { v };
            let pairs = cols.len() / 2;
            let mut r = 0;
            while r + 4 <= rows {
                let a = [wp.add(r * k), wp.add((r + 1) * k), wp.add((r + 2) * k), wp.add((r + 3) * k)];
                for p in 0..pairs {
                    let (c0, c1) = (2 * p, 2 * p + 1);
                    let s = block4x2(a, ip.add(cols[c0]), ip.add(cols[c1]), k);
                    for q in 0..4 {
                        *op.add(out_cols[c0] + r + q) = act(bias[r + q] + s[q][0]);
                        *op.add(out_cols[c1] + r + q) = act(bias[r + q] + s[q][1]);
                    }
                }
                if cols.len() % 2 == 1 {
                    let c = cols.len() - 1;
                    let s = block4x2(a, ip.add(cols[c]), ip.add(cols[c]), k);
                    for q in 0..4 {
                        *op.add(out_cols[c] + r + q) = act(bias[r + q] + s[q][0]);
                    }
                }
                r += 4;
            }
            for r in r..rows {
                for (&c, &o) in cols.iter().zip(out_cols) {
                    let v = bias[r] + super::dot(w.row(r), &input[c..c + k]);
                    *op.add(o + r) = act(v);
                }
            }
        }

        #[target_feature(enable = $feature)]
        pub unsafe fn matvec_add(w: &Matrix, x: &[f32], y: &mut [f32]) {
            let k = w.k;
            let mut r = 0;
            while r + 8 <= w.rows {
                let s = block8x1(w.data.as_ptr().add(r * k), k, x.as_ptr(), k);
                for q in 0..8 {
                    y[r + q] += s[q];
                }
                r += 8;
            }
            for r in r..w.rows {
                y[r] += super::dot(w.row(r), x);
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use super::Matrix;
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// Four rows against two columns: 8 running sums, 6 loads per 8 FMAs.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block4x2(a: [*const f32; 4], b0: *const f32, b1: *const f32, k: usize) -> [[f32; 2]; 4] {
        let mut acc = [[_mm256_setzero_ps(); 2]; 4];
        let k8 = k / 8 * 8;
        let mut i = 0;
        while i < k8 {
            let x0 = _mm256_loadu_ps(b0.add(i));
            let x1 = _mm256_loadu_ps(b1.add(i));
            for r in 0..4 {
                let w = _mm256_loadu_ps(a[r].add(i));
                acc[r][0] = _mm256_fmadd_ps(w, x0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(w, x1, acc[r][1]);
            }
            i += 8;
        }
        let mut out = [[0f32; 2]; 4];
        for r in 0..4 {
            out[r] = [hsum(acc[r][0]), hsum(acc[r][1])];
            for j in k8..k {
                let w = *a[r].add(j);
                out[r][0] += w * *b0.add(j);
                out[r][1] += w * *b1.add(j);
            }
        }
        out
    }

    /// Eight rows against one column: 8 independent sums hide the FMA latency.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block8x1(a: *const f32, stride: usize, b: *const f32, k: usize) -> [f32; 8] {
        let mut acc = [_mm256_setzero_ps(); 8];
        let k8 = k / 8 * 8;
        let mut i = 0;
        while i < k8 {
            let x = _mm256_loadu_ps(b.add(i));
            for (r, a_r) in acc.iter_mut().enumerate() {
                *a_r = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(r * stride + i)), x, *a_r);
            }
            i += 8;
        }
        let mut out = [0f32; 8];
        for r in 0..8 {
            out[r] = hsum(acc[r]);
            for j in k8..k {
                out[r] += *a.add(r * stride + j) * *b.add(j);
            }
        }
        out
    }

    vector_drivers!("avx2,fma");
}

/// The AVX2 kernels' shapes at 16 lanes; the tail of each row (k not a multiple of 16) is read
/// with a masked load, so no scalar remainder loop.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::Matrix;
    use std::arch::x86_64::*;

    /// Mask of the `k % 16` lanes of the last, partial step (all lanes when k is a multiple).
    #[inline]
    fn tail_mask(k: usize) -> __mmask16 {
        let r = k % 16;
        if r == 0 { 0xffff } else { ((1u32 << r) - 1) as __mmask16 }
    }

    /// Four rows against two columns.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn block4x2(a: [*const f32; 4], b0: *const f32, b1: *const f32, k: usize) -> [[f32; 2]; 4] {
        let mut acc = [[_mm512_setzero_ps(); 2]; 4];
        let k16 = k / 16 * 16;
        let mut i = 0;
        while i < k16 {
            let x0 = _mm512_loadu_ps(b0.add(i));
            let x1 = _mm512_loadu_ps(b1.add(i));
            for r in 0..4 {
                let w = _mm512_loadu_ps(a[r].add(i));
                acc[r][0] = _mm512_fmadd_ps(w, x0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(w, x1, acc[r][1]);
            }
            i += 16;
        }
        if k16 < k {
            let m = tail_mask(k);
            let x0 = _mm512_maskz_loadu_ps(m, b0.add(i));
            let x1 = _mm512_maskz_loadu_ps(m, b1.add(i));
            for r in 0..4 {
                let w = _mm512_maskz_loadu_ps(m, a[r].add(i));
                acc[r][0] = _mm512_fmadd_ps(w, x0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(w, x1, acc[r][1]);
            }
        }
        let mut out = [[0f32; 2]; 4];
        for r in 0..4 {
            out[r] = [_mm512_reduce_add_ps(acc[r][0]), _mm512_reduce_add_ps(acc[r][1])];
        }
        out
    }

    /// Eight rows against one column.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn block8x1(a: *const f32, stride: usize, b: *const f32, k: usize) -> [f32; 8] {
        let mut acc = [_mm512_setzero_ps(); 8];
        let k16 = k / 16 * 16;
        let mut i = 0;
        while i < k16 {
            let x = _mm512_loadu_ps(b.add(i));
            for (r, a_r) in acc.iter_mut().enumerate() {
                *a_r = _mm512_fmadd_ps(_mm512_loadu_ps(a.add(r * stride + i)), x, *a_r);
            }
            i += 16;
        }
        if k16 < k {
            let m = tail_mask(k);
            let x = _mm512_maskz_loadu_ps(m, b.add(i));
            for (r, a_r) in acc.iter_mut().enumerate() {
                *a_r = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a.add(r * stride + i)), x, *a_r);
            }
        }
        let mut out = [0f32; 8];
        for r in 0..8 {
            out[r] = _mm512_reduce_add_ps(acc[r]);
        }
        out
    }

    vector_drivers!("avx512f");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u32) -> f32 {
        *seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
        (*seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    }

    /// The SIMD path (when present) equals a plain f64 reference for odd lengths, overlapping
    /// columns, an odd column count and a row count that is not a multiple of 4.
    #[test]
    fn dense_and_matvec_match_a_reference() {
        let mut seed = 7;
        for (rows, k, ncols) in [(128, 387, 4), (6, 13, 3), (64, 384, 2), (512, 128, 1)] {
            let w = Matrix { data: (0..rows * k).map(|_| lcg(&mut seed)).collect(), rows, k };
            let bias: Vec<f32> = (0..rows).map(|_| lcg(&mut seed)).collect();
            let input: Vec<f32> = (0..k + 129 * ncols).map(|_| lcg(&mut seed)).collect();
            let cols: Vec<usize> = (0..ncols).map(|c| c * 129).collect();
            let out_cols: Vec<usize> = (0..ncols).map(|c| c * rows).collect();
            let mut out = vec![0f32; rows * ncols];
            // Every path this CPU has: portable, AVX2, AVX-512.
            type Dense = Box<dyn Fn(&Matrix, &[f32], &[f32], &[usize], &mut [f32], &[usize], bool)>;
            let mut paths: Vec<Dense> = vec![Box::new(|w, b, i, c, o, oc, r| {
                for (&c, &oo) in c.iter().zip(oc) {
                    for row in 0..w.rows {
                        let v = b[row] + dot(w.row(row), &i[c..c + w.k]);
                        o[oo + row] = if r { v.max(0.0) } else { v };
                    }
                }
            })];
            #[cfg(target_arch = "x86_64")]
            {
                let hw = crate::nodes::cpu::hardware();
                if hw.avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA; the shapes are those `dense` checks.
                    paths.push(Box::new(|w, b, i, c, o, oc, r| unsafe { avx::dense(w, b, i, c, o, oc, r) }));
                }
                if hw.avx512() {
                    // SAFETY: as above, with AVX-512.
                    paths.push(Box::new(|w, b, i, c, o, oc, r| unsafe { avx512::dense(w, b, i, c, o, oc, r) }));
                }
            }
            for (relu, path) in [false, true].into_iter().flat_map(|r| paths.iter().map(move |p| (r, p))) {
                out.fill(f32::NAN);
                path(&w, &bias, &input, &cols, &mut out, &out_cols, relu);
                for c in 0..ncols {
                    for r in 0..rows {
                        let mut want = bias[r] as f64;
                        for j in 0..k {
                            want += w.data[r * k + j] as f64 * input[cols[c] + j] as f64;
                        }
                        if relu {
                            want = want.max(0.0);
                        }
                        let got = out[out_cols[c] + r] as f64;
                        assert!((got - want).abs() < 1e-4, "{rows}x{k} col {c} row {r}: {got} vs {want}");
                    }
                }
            }
            let x = &input[..k];
            let mut y = bias.clone();
            matvec_add(&w, x, &mut y);
            for r in 0..rows {
                let want: f64 = bias[r] as f64 + (0..k).map(|j| w.data[r * k + j] as f64 * x[j] as f64).sum::<f64>();
                assert!((y[r] as f64 - want).abs() < 1e-4);
            }
        }
    }
}
