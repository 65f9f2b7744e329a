//! The real FFT of one even length, forward and inverse: rustfft's complex transform of half the
//! length and the split into (or out of) the real spectrum, as realfft computes it, with the
//! split's loop vectorised. realfft's own split loop pairs bin `k` with bin `n/2 − k` through a
//! reversed iterator in generic code built for baseline x86-64: it ran scalar and cost more than
//! the complex transform it wraps (23 % of `DenoiseNode` against 17 %). Here the upper half is
//! reversed into a scratch row first, so the split is a straight loop over three rows that the
//! [`kernels`](super::kernels) levels run 8 or 16 lanes wide. Same twiddles and the same
//! operations in the same order as realfft 3.5: the results are the same to the bit.

use std::sync::Arc;

use realfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use super::kernels::Level;

pub struct RealFft {
    n: usize,
    forward: Arc<dyn Fft<f32>>,
    inverse: Arc<dyn Fft<f32>>,
    /// `e^{−2πik/n} / 2` (forward) and `e^{2πik/n}` (inverse) for `k` in `1..n/4`, as realfft's.
    twiddles_forward: Vec<Complex<f32>>,
    twiddles_inverse: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// The upper half of the spectrum, reversed.
    mirror: Vec<Complex<f32>>,
}

fn twiddle(k: usize, n: usize) -> Complex<f32> {
    let angle = -2f64 * std::f64::consts::PI / n as f64 * k as f64;
    Complex::new(angle.cos() as f32, angle.sin() as f32)
}

impl RealFft {
    /// The transforms of length `n`, a multiple of 4.
    pub fn new(n: usize) -> RealFft {
        assert!(n.is_multiple_of(4) && n >= 4, "RealFft needs a multiple of 4, got {n}");
        let mut planner = FftPlanner::<f32>::new();
        let (forward, inverse) = (planner.plan_fft_forward(n / 2), planner.plan_fft_inverse(n / 2));
        let scratch_len = forward.get_outofplace_scratch_len().max(inverse.get_outofplace_scratch_len());
        RealFft {
            n,
            forward,
            inverse,
            twiddles_forward: (1..n / 4).map(|k| twiddle(k, n) * 0.5).collect(),
            twiddles_inverse: (1..n / 4).map(|k| twiddle(k, n).conj()).collect(),
            scratch: vec![Complex::new(0.0, 0.0); scratch_len],
            mirror: vec![Complex::new(0.0, 0.0); n / 4],
        }
    }

    /// The real length `n`.
    pub fn size(&self) -> usize {
        self.n
    }

    /// The spectrum (`n/2 + 1` bins) of `input` (`n` samples, used as scratch).
    pub fn forward(&mut self, level: Level, input: &mut [f32], output: &mut [Complex<f32>]) {
        let half = self.n / 2;
        assert!(input.len() == self.n && output.len() == half + 1);
        // SAFETY: `Complex<f32>` is `repr(C)` of two `f32`s, alignment 4: `n` floats are `n / 2`
        // complex values, borrowed mutably here only.
        let packed = unsafe { std::slice::from_raw_parts_mut(input.as_mut_ptr() as *mut Complex<f32>, half) };
        self.forward.process_outofplace_with_scratch(packed, &mut output[..half], &mut self.scratch);
        let first = output[0];
        output[0] = Complex::new(first.re + first.im, 0.0);
        output[half] = Complex::new(first.re - first.im, 0.0);
        let q = self.n / 4;
        // Bins 1..q pair with half-1 .. half-q+1.
        reverse(&output[q + 1..half], &mut self.mirror[..q - 1]);
        split_forward(level, &self.twiddles_forward, &mut output[1..q], &mut self.mirror[..q - 1]);
        reverse(&self.mirror[..q - 1], &mut output[q + 1..half]);
        output[q].im = -output[q].im;
    }

    /// The real signal (`n` samples, `n` times the inverse DFT's) of `input`'s spectrum
    /// (`n/2 + 1` bins, used as scratch; DC and Nyquist must be real).
    pub fn inverse(&mut self, level: Level, input: &mut [Complex<f32>], output: &mut [f32]) {
        let half = self.n / 2;
        assert!(input.len() == half + 1 && output.len() == self.n);
        input[0].im = 0.0;
        input[half].im = 0.0;
        let (first, last) = (input[0], input[half]);
        let (sum, diff) = (first + last, first - last);
        input[0] = Complex::new(sum.re - sum.im, diff.re - diff.im);
        let q = self.n / 4;
        reverse(&input[q + 1..half], &mut self.mirror[..q - 1]);
        split_inverse(level, &self.twiddles_inverse, &mut input[1..q], &mut self.mirror[..q - 1]);
        reverse(&self.mirror[..q - 1], &mut input[q + 1..half]);
        let centre = input[q];
        input[q] = (centre + centre).conj();
        // SAFETY: as in `forward`.
        let packed = unsafe { std::slice::from_raw_parts_mut(output.as_mut_ptr() as *mut Complex<f32>, half) };
        self.inverse.process_outofplace_with_scratch(&mut input[..half], packed, &mut self.scratch);
    }
}

/// `to[i] = from[len - 1 - i]`.
fn reverse(from: &[Complex<f32>], to: &mut [Complex<f32>]) {
    for (t, f) in to.iter_mut().zip(from.iter().rev()) {
        *t = *f;
    }
}

/// The part both splits share, for bin `k` (`o`) and bin `n/2 − k` (`r`): their sum and
/// difference and the twiddled cross terms, realfft's operations in realfft's order. Inlined
/// into each vector level's copy of the split loop.
#[inline(always)]
fn twiddled(o: Complex<f32>, r: Complex<f32>, tw: Complex<f32>) -> (Complex<f32>, Complex<f32>, f32, f32) {
    let (sum, diff) = (o + r, o - r);
    let real = (sum * tw.re).im + (diff * tw.im).re;
    let imag = (sum * tw.im).im - (diff * tw.re).re;
    (sum, diff, real, imag)
}

super::kernels::dispatched! {
    /// realfft's forward split on bins `k` (`out`) and `n/2 − k` (`rev`, reversed).
    fn split_forward(twiddles: &[Complex<f32>], out: &mut [Complex<f32>], rev: &mut [Complex<f32>]) {
        for ((tw, o), r) in twiddles.iter().zip(out.iter_mut()).zip(rev.iter_mut()) {
            let (sum, diff, real, imag) = twiddled(*o, *r, *tw);
            let half_sum_re = 0.5 * sum.re;
            let half_diff_im = 0.5 * diff.im;
            *o = Complex::new(half_sum_re + real, half_diff_im + imag);
            *r = Complex::new(half_sum_re - real, imag - half_diff_im);
        }
    }
}

super::kernels::dispatched! {
    /// realfft's inverse pre-processing on bins `k` (`inp`) and `n/2 − k` (`rev`, reversed).
    fn split_inverse(twiddles: &[Complex<f32>], inp: &mut [Complex<f32>], rev: &mut [Complex<f32>]) {
        for ((tw, o), r) in twiddles.iter().zip(inp.iter_mut()).zip(rev.iter_mut()) {
            let (sum, diff, real, imag) = twiddled(*o, *r, *tw);
            *o = Complex::new(sum.re - real, diff.im - imag);
            *r = Complex::new(sum.re + real, -imag - diff.im);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use realfft::RealFftPlanner;

    /// Bit for bit realfft's results, both ways, at every level and every size the node takes.
    #[test]
    fn equals_realfft() {
        for n in [256, 512, 1024, 2048, 4096] {
            let x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1013) as f32 / 1013.0 - 0.5).collect();
            let mut planner = RealFftPlanner::<f32>::new();
            let (fwd, inv) = (planner.plan_fft_forward(n), planner.plan_fft_inverse(n));
            let mut want = fwd.make_output_vec();
            fwd.process(&mut x.clone(), &mut want).unwrap();
            let mut want_back = vec![0.0; n];
            inv.process(&mut want.clone(), &mut want_back).unwrap();
            for level in Level::all() {
                let mut ours = RealFft::new(n);
                let mut got = vec![Complex::new(0.0, 0.0); n / 2 + 1];
                ours.forward(level, &mut x.clone(), &mut got);
                assert_eq!(got, want, "n {n} {level:?}");
                let mut back = vec![0.0; n];
                ours.inverse(level, &mut got, &mut back);
                assert_eq!(back, want_back, "n {n} {level:?}");
            }
        }
    }
}
