//! Second-order sections: Butterworth designs of any order (as scipy's `butter(..., output="sos")`),
//! the RBJ audio-EQ-cookbook biquads, and [`Cascade`], which runs them over interleaved f32 audio
//! in f64 with its state carried from call to call, or forward and backward over a whole buffer
//! (as scipy's `sosfiltfilt`). Shared by `FilterNode` and the loudness meter's K-weighting.
//!
//! Each section runs in direct form I (state: the last two inputs and outputs), so the only
//! dependency from one sample to the next is one multiply-add on the previous output. On CPUs with
//! AVX2 and FMA, blocks of [`BLOCK`] samples are computed at once from the block's inputs and the
//! four state values through precomputed matrices ([`BlockForm`]): the multiply-adds then run
//! eight wide instead of one after the other (about 2x the scalar loop here; see
//! docs/nodes.md#filternode). `python/remotemedia/_pure/sos.py` is the numpy twin.

use std::f64::consts::PI;

use rustfft::num_complex::Complex64;

/// One biquad `(b0 + b1 z⁻¹ + b2 z⁻²) / (1 + a1 z⁻¹ + a2 z⁻²)`: scipy's SOS row
/// `[b0, b1, b2, 1, a1, a2]`. A first-order section has `b2 = a2 = 0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Section {
    pub b: [f64; 3],
    pub a: [f64; 2],
}

impl Section {
    /// From unnormalised cookbook coefficients `b0..b2`, `a0..a2`.
    fn normalised(b: [f64; 3], a: [f64; 3]) -> Section {
        Section { b: [b[0] / a[0], b[1] / a[0], b[2] / a[0]], a: [a[1] / a[0], a[2] / a[0]] }
    }

    /// The gain at 0 Hz (the steady-state output for a constant input of 1).
    pub fn dc_gain(&self) -> f64 {
        (self.b[0] + self.b[1] + self.b[2]) / (1.0 + self.a[0] + self.a[1])
    }

    /// The complex response at `w` radians per sample.
    pub fn response(&self, w: f64) -> Complex64 {
        let z1 = Complex64::from_polar(1.0, -w);
        let z2 = z1 * z1;
        (self.b[0] + z1 * self.b[1] + z2 * self.b[2]) / (1.0 + z1 * self.a[0] + z2 * self.a[1])
    }
}

/// The response of a cascade at `freq_hz`, in dB.
pub fn response_db(sections: &[Section], freq_hz: f64, rate: f64) -> f64 {
    let w = 2.0 * PI * freq_hz / rate;
    20.0 * sections.iter().map(|s| s.response(w).norm()).product::<f64>().log10()
}

/// Which band a Butterworth filter passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    Lowpass,
    Highpass,
    Bandpass,
    Bandstop,
}

/// A digital Butterworth filter of `order` (1 or more) as sections, exactly scipy's
/// `butter(order, edges, pass, fs=rate, output="sos")` up to rounding and the grouping of poles
/// into sections: `edges` is the -3 dB frequency for low- and high-pass, `(low, high)` for band
/// filters (band filters have `2 * order` poles, as in scipy). Frequencies are pre-warped for the
/// bilinear transform; the caller checks that they lie strictly between 0 and `rate / 2`.
pub fn butterworth(order: usize, pass: Pass, low_hz: f64, high_hz: f64, rate: f64) -> Vec<Section> {
    let n = order.max(1);
    let warp = |f: f64| 2.0 * rate * (PI * f / rate).tan();
    // Analog prototype (scipy `buttap`): poles on the left half of the unit circle, no zeros.
    let proto: Vec<Complex64> = (0..n)
        .map(|k| {
            let m = 2.0 * k as f64 - n as f64 + 1.0;
            -Complex64::from_polar(1.0, PI * m / (2.0 * n as f64))
        })
        .collect();
    let prod_neg: Complex64 = proto.iter().map(|p| -p).product();
    let (zeros, poles, gain): (Vec<Complex64>, Vec<Complex64>, f64) = match pass {
        Pass::Lowpass => {
            let wo = warp(low_hz);
            (Vec::new(), proto.iter().map(|p| p * wo).collect(), wo.powi(n as i32))
        }
        Pass::Highpass => {
            let wo = warp(low_hz);
            (vec![Complex64::new(0.0, 0.0); n], proto.iter().map(|p| wo / p).collect(), (1.0 / prod_neg).re)
        }
        Pass::Bandpass | Pass::Bandstop => {
            let (wl, wh) = (warp(low_hz), warp(high_hz));
            let (wo, bw) = ((wl * wh).sqrt(), wh - wl);
            // lp2bp / lp2bs: each prototype pole becomes two, p ± sqrt(p² - wo²).
            let scaled: Vec<Complex64> =
                if pass == Pass::Bandpass { proto.iter().map(|p| p * (bw / 2.0)).collect() } else { proto.iter().map(|p| (bw / 2.0) / p).collect() };
            let poles = scaled.iter().map(|p| p + (p * p - wo * wo).sqrt()).chain(scaled.iter().map(|p| p - (p * p - wo * wo).sqrt())).collect();
            if pass == Pass::Bandpass {
                (vec![Complex64::new(0.0, 0.0); n], poles, bw.powi(n as i32))
            } else {
                let notch = Complex64::new(0.0, wo);
                let zeros = std::iter::repeat_n(notch, n).chain(std::iter::repeat_n(-notch, n)).collect();
                (zeros, poles, (1.0 / prod_neg).re)
            }
        }
    };
    // Bilinear transform (scipy `bilinear_zpk`); zeros at infinity map to z = -1.
    let fs2 = 2.0 * rate;
    let map = |s: &Complex64| (fs2 + s) / (fs2 - s);
    let mut zd: Vec<Complex64> = zeros.iter().map(map).collect();
    let pd: Vec<Complex64> = poles.iter().map(map).collect();
    zd.resize(pd.len(), Complex64::new(-1.0, 0.0));
    let k = gain * (zeros.iter().map(|z| fs2 - z).product::<Complex64>() / poles.iter().map(|p| fs2 - p).product::<Complex64>()).re;
    sections_from_zpk(&zd, &pd, k)
}

/// Groups digital zeros and poles (closed under conjugation, as many zeros as poles) into
/// sections: conjugate pairs first, then real roots two by two (smallest with largest, so a
/// band-pass section gets one zero at +1 and one at -1), an odd one left as a first-order
/// section. Sections are ordered by pole radius, the poles nearest the unit circle last (as
/// scipy's `zpk2sos`), and the gain goes into the first.
fn sections_from_zpk(zeros: &[Complex64], poles: &[Complex64], gain: f64) -> Vec<Section> {
    let zq = quadratics(zeros);
    let pq = quadratics(poles);
    let mut sections: Vec<(f64, Section)> = pq
        .iter()
        .zip(&zq)
        .map(|((pr, a), (_, b))| (*pr, Section { b: *b, a: [a[1], a[2]] }))
        .collect();
    sections.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut out: Vec<Section> = sections.into_iter().map(|(_, s)| s).collect();
    if let Some(first) = out.first_mut() {
        first.b.iter_mut().for_each(|b| *b *= gain);
    }
    out
}

/// Monic quadratics `[1, c1, c2]` (or linear `[1, c1, 0]`) whose roots are `roots`, each with
/// the largest root magnitude it covers.
fn quadratics(roots: &[Complex64]) -> Vec<(f64, [f64; 3])> {
    // Roots within this of the real axis count as real (the transforms leave ~1e-16 residue).
    const REAL_EPS: f64 = 1e-12;
    let mut out = Vec::new();
    let mut reals: Vec<f64> = Vec::new();
    for r in roots {
        if r.im.abs() <= REAL_EPS * r.norm().max(1.0) {
            reals.push(r.re);
        } else if r.im > 0.0 {
            out.push((r.norm(), [1.0, -2.0 * r.re, r.norm_sqr()]));
        }
    }
    reals.sort_by(f64::total_cmp);
    let (mut i, mut j) = (0, reals.len());
    while j >= i + 2 {
        let (r1, r2) = (reals[i], reals[j - 1]);
        out.push((r1.abs().max(r2.abs()), [1.0, -(r1 + r2), r1 * r2]));
        i += 1;
        j -= 1;
    }
    if j > i {
        out.push((reals[i].abs(), [1.0, -reals[i], 0.0]));
    }
    out
}

/// The RBJ audio-EQ-cookbook biquads (Robert Bristow-Johnson), `q` in its Q form (for shelves:
/// `alpha = sin(w0) / (2 Q)`, `Q = 1/sqrt(2)` being the cookbook's steepest monotonic shelf).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cookbook {
    Peaking { freq_hz: f64, q: f64, gain_db: f64 },
    LowShelf { freq_hz: f64, q: f64, gain_db: f64 },
    HighShelf { freq_hz: f64, q: f64, gain_db: f64 },
    Notch { freq_hz: f64, q: f64 },
}

impl Cookbook {
    /// The section at `rate` Hz.
    pub fn section(self, rate: f64) -> Section {
        let (freq_hz, q, gain_db) = match self {
            Cookbook::Peaking { freq_hz, q, gain_db } | Cookbook::LowShelf { freq_hz, q, gain_db } | Cookbook::HighShelf { freq_hz, q, gain_db } => {
                (freq_hz, q, gain_db)
            }
            Cookbook::Notch { freq_hz, q } => (freq_hz, q, 0.0),
        };
        let a = 10f64.powf(gain_db / 40.0);
        let w0 = 2.0 * PI * freq_hz / rate;
        let (sin, cos) = w0.sin_cos();
        let alpha = sin / (2.0 * q);
        let sa = 2.0 * a.sqrt() * alpha;
        match self {
            Cookbook::Peaking { .. } => Section::normalised([1.0 + alpha * a, -2.0 * cos, 1.0 - alpha * a], [1.0 + alpha / a, -2.0 * cos, 1.0 - alpha / a]),
            Cookbook::LowShelf { .. } => Section::normalised(
                [a * ((a + 1.0) - (a - 1.0) * cos + sa), 2.0 * a * ((a - 1.0) - (a + 1.0) * cos), a * ((a + 1.0) - (a - 1.0) * cos - sa)],
                [(a + 1.0) + (a - 1.0) * cos + sa, -2.0 * ((a - 1.0) + (a + 1.0) * cos), (a + 1.0) + (a - 1.0) * cos - sa],
            ),
            Cookbook::HighShelf { .. } => Section::normalised(
                [a * ((a + 1.0) + (a - 1.0) * cos + sa), -2.0 * a * ((a - 1.0) + (a + 1.0) * cos), a * ((a + 1.0) + (a - 1.0) * cos - sa)],
                [(a + 1.0) - (a - 1.0) * cos + sa, 2.0 * ((a - 1.0) - (a + 1.0) * cos), (a + 1.0) - (a - 1.0) * cos - sa],
            ),
            Cookbook::Notch { .. } => Section::normalised([1.0, -2.0 * cos, 1.0], [1.0 + alpha, -2.0 * cos, 1.0 - alpha]),
        }
    }
}

/// Samples per block of the vectorised kernel.
pub const BLOCK: usize = 8;

/// Samples per piece of a long signal (a multiple of [`BLOCK`]; 16 KiB of f64).
const PIECE: usize = 2048;

/// A section's block form: for a block of [`BLOCK`] inputs `x` and the state
/// `[x[-1], x[-2], y[-1], y[-2]]` before it, the outputs are `y = T x + P state`, with `T` the
/// lower-triangular Toeplitz matrix of the impulse response. Stored by column so that each
/// input or state value multiplies a whole column at once.
#[derive(Clone, Debug)]
struct BlockForm {
    t: [[f64; BLOCK]; BLOCK],
    p: [[f64; BLOCK]; 4],
}

impl BlockForm {
    fn new(s: &Section) -> BlockForm {
        // Column j of T / P is the block's response to a unit input at j / a unit state value.
        let column = |x: [f64; BLOCK], state: [f64; 4]| {
            let mut st = state;
            let mut y = [0.0; BLOCK];
            for (yn, &xn) in y.iter_mut().zip(&x) {
                *yn = df1(s, &mut st, xn);
            }
            y
        };
        let mut t = [[0.0; BLOCK]; BLOCK];
        for (j, col) in t.iter_mut().enumerate() {
            let mut x = [0.0; BLOCK];
            x[j] = 1.0;
            *col = column(x, [0.0; 4]);
        }
        let mut p = [[0.0; BLOCK]; 4];
        for (j, col) in p.iter_mut().enumerate() {
            let mut state = [0.0; 4];
            state[j] = 1.0;
            *col = column([0.0; BLOCK], state);
        }
        BlockForm { t, p }
    }
}

/// One direct-form-I step: `state` is `[x[-1], x[-2], y[-1], y[-2]]`.
#[inline(always)]
fn df1(s: &Section, state: &mut [f64; 4], x: f64) -> f64 {
    // The terms not involving y[-1] first, so the only serial dependency is the last product.
    let t = s.b[0] * x + s.b[1] * state[0] + s.b[2] * state[1] - s.a[1] * state[3];
    let y = t - s.a[0] * state[2];
    *state = [x, state[0], y, state[2]];
    y
}

/// A cascade of sections over interleaved audio of a fixed channel count, each channel with
/// its own state, carried from one [`process`](Cascade::process) call to the next.
#[derive(Clone, Debug)]
pub struct Cascade {
    sections: Vec<Section>,
    blocks: Vec<BlockForm>,
    channels: usize,
    /// Per channel, per section: `[x[-1], x[-2], y[-1], y[-2]]`.
    state: Vec<[f64; 4]>,
    /// One channel of the current call, in f64.
    scratch: Vec<f64>,
    vectorised: bool,
}

impl Cascade {
    pub fn new(sections: Vec<Section>, channels: usize) -> Cascade {
        let channels = channels.max(1);
        Cascade {
            blocks: sections.iter().map(BlockForm::new).collect(),
            state: vec![[0.0; 4]; channels * sections.len()],
            sections,
            channels,
            scratch: Vec::new(),
            vectorised: simd_available(),
        }
    }

    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Forgets the state: the next call starts from silence.
    pub fn reset(&mut self) {
        self.state.fill([0.0; 4]);
    }

    /// Filters interleaved samples in place, continuing from the previous call.
    pub fn process(&mut self, samples: &mut [f32]) {
        let ch = self.channels;
        let mut scratch = std::mem::take(&mut self.scratch);
        for c in 0..ch {
            scratch.clear();
            scratch.extend(samples.iter().skip(c).step_by(ch).map(|&x| x as f64));
            self.run_channel(c, &mut scratch);
            for (dst, &y) in samples.iter_mut().skip(c).step_by(ch).zip(&scratch) {
                *dst = y as f32;
            }
        }
        self.scratch = scratch;
    }

    /// Filters one channel's f64 samples in place, continuing from its state. Long signals go
    /// through every section a piece at a time, so each section reads a piece still in L1 cache
    /// instead of streaming the whole channel from memory once per section.
    pub fn run_channel(&mut self, channel: usize, x: &mut [f64]) {
        for piece in x.chunks_mut(PIECE) {
            self.run_piece(channel, piece);
        }
    }

    fn run_piece(&mut self, channel: usize, x: &mut [f64]) {
        let n = self.sections.len();
        let states = &mut self.state[channel * n..(channel + 1) * n];
        for ((s, b), st) in self.sections.iter().zip(&self.blocks).zip(states.iter_mut()) {
            let mut done = 0;
            if self.vectorised {
                #[cfg(target_arch = "x86_64")]
                {
                    done = x.len() / BLOCK * BLOCK;
                    // SAFETY: `vectorised` is only set where the CPU has AVX2 and FMA.
                    unsafe { run_blocks_avx2(b, st, &mut x[..done]) };
                }
            }
            for v in &mut x[done..] {
                *v = df1(s, st, *v);
            }
        }
    }

    /// The state that a constant input `level` on `channel` would have settled to (scipy's
    /// `sosfilt_zi(sos) * level`): filtering then starts without a transient.
    fn settle(&mut self, channel: usize, level: f64) {
        let n = self.sections.len();
        let mut u = level;
        for (s, st) in self.sections.iter().zip(&mut self.state[channel * n..(channel + 1) * n]) {
            let y = u * s.dc_gain();
            *st = [u, u, y, y];
            u = y;
        }
    }

    /// Zero-phase filtering of a whole buffer, as scipy's `sosfiltfilt` with its defaults: each
    /// channel is extended at both ends by an odd reflection of [`filtfilt_padlen`] samples (fewer
    /// when the buffer is shorter: at most `frames - 1`), filtered forward from the steady state
    /// of its first sample, then backward from the steady state of the last output. The
    /// magnitude response is squared (gains in dB doubled), the phase is zero. The state is left
    /// reset.
    pub fn filtfilt(&mut self, samples: &mut [f32]) {
        let ch = self.channels;
        let frames = samples.len() / ch;
        if frames == 0 {
            return;
        }
        let pad = filtfilt_padlen(&self.sections).min(frames - 1);
        let mut ext = Vec::with_capacity(frames + 2 * pad);
        for c in 0..ch {
            let x: Vec<f64> = samples.iter().skip(c).step_by(ch).map(|&v| v as f64).collect();
            ext.clear();
            ext.extend((1..=pad).rev().map(|i| 2.0 * x[0] - x[i]));
            ext.extend_from_slice(&x);
            ext.extend((1..=pad).map(|i| 2.0 * x[frames - 1] - x[frames - 1 - i]));
            self.settle(c, ext[0]);
            self.run_channel(c, &mut ext);
            ext.reverse();
            self.settle(c, ext[0]);
            self.run_channel(c, &mut ext);
            ext.reverse();
            for (dst, &y) in samples.iter_mut().skip(c).step_by(ch).zip(&ext[pad..pad + frames]) {
                *dst = y as f32;
            }
        }
        self.reset();
    }
}

/// scipy's default `padlen` for `sosfiltfilt`: three times the filter's order, counted as
/// `2 * sections + 1` less the trailing zero coefficients of first-order sections.
pub fn filtfilt_padlen(sections: &[Section]) -> usize {
    let zb = sections.iter().filter(|s| s.b[2] == 0.0).count();
    let za = sections.iter().filter(|s| s.a[1] == 0.0).count();
    3 * (2 * sections.len() + 1 - zb.min(za))
}

/// Whether this CPU runs the vectorised block kernel (AVX2 and FMA). `REMOTEMEDIA_SCALAR_IIR=1`
/// forces the scalar loop (for comparisons).
fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static AVAILABLE: OnceLock<bool> = OnceLock::new();
        *AVAILABLE.get_or_init(|| {
            !crate::tuning::flag_on(crate::tuning::SCALAR_IIR)
                && is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Runs whole blocks of `x` (a multiple of [`BLOCK`] long) through one section in its block
/// form. Plain array code: compiled with AVX2 and FMA enabled, LLVM keeps each column product
/// in two 4-wide registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_blocks_avx2(b: &BlockForm, state: &mut [f64; 4], x: &mut [f64]) {
    let mut st = *state;
    for blk in x.chunks_exact_mut(BLOCK) {
        let mut y = [0.0f64; BLOCK];
        // The inputs' part, then the state's: the previous block's outputs enter last, so
        // only those four products wait for it.
        for (j, col) in b.t.iter().enumerate() {
            let xj = blk[j];
            for (yi, ti) in y.iter_mut().zip(col) {
                *yi = ti.mul_add(xj, *yi);
            }
        }
        for (col, sj) in b.p.iter().zip(st) {
            for (yi, pi) in y.iter_mut().zip(col) {
                *yi = pi.mul_add(sj, *yi);
            }
        }
        st = [blk[BLOCK - 1], blk[BLOCK - 2], y[BLOCK - 1], y[BLOCK - 2]];
        blk.copy_from_slice(&y);
    }
    *state = st;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(sections: &[Section], x: &[f64]) -> Vec<f64> {
        let mut out = x.to_vec();
        for s in sections {
            let mut st = [0.0; 4];
            for v in &mut out {
                *v = df1(s, &mut st, *v);
            }
        }
        out
    }

    /// The block kernel and the scalar loop agree, whatever the chunking.
    #[test]
    fn blocks_match_the_scalar_loop_across_chunks() {
        let sections = butterworth(5, Pass::Bandpass, 300.0, 3000.0, 16000.0);
        let x: Vec<f64> = (0..1000).map(|i| ((i * 7919) % 211) as f64 / 105.0 - 1.0).collect();
        let want = scalar(&sections, &x);
        let mut c = Cascade::new(sections, 1);
        let mut got = Vec::new();
        for chunk in x.chunks(37) {
            let mut v = chunk.to_vec();
            c.run_channel(0, &mut v);
            got.extend(v);
        }
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    /// Butterworth magnitudes: -3 dB at the edges, unity in the pass band, the right slope.
    #[test]
    fn butterworth_responses() {
        let rate = 48000.0;
        for order in 1..=8 {
            let lp = butterworth(order, Pass::Lowpass, 1000.0, 0.0, rate);
            assert!((response_db(&lp, 1000.0, rate) + 3.0103).abs() < 1e-6, "lp order {order}");
            assert!(response_db(&lp, 10.0, rate).abs() < 1e-3);
            let hp = butterworth(order, Pass::Highpass, 1000.0, 0.0, rate);
            assert!((response_db(&hp, 1000.0, rate) + 3.0103).abs() < 1e-6, "hp order {order}");
            assert!(response_db(&hp, 20000.0, rate).abs() < 0.02);
            let bp = butterworth(order, Pass::Bandpass, 500.0, 2000.0, rate);
            assert!((response_db(&bp, 500.0, rate) + 3.0103).abs() < 1e-6);
            assert!((response_db(&bp, 2000.0, rate) + 3.0103).abs() < 1e-6);
            assert!(response_db(&bp, 1000.0, rate).abs() < 0.01);
            let bs = butterworth(order, Pass::Bandstop, 500.0, 2000.0, rate);
            assert!((response_db(&bs, 500.0, rate) + 3.0103).abs() < 1e-6);
            // The notch sits at the geometric centre of the pre-warped edges.
            let centre = ((PI * 500.0 / rate).tan() * (PI * 2000.0 / rate).tan()).sqrt().atan() * rate / PI;
            assert!(response_db(&bs, centre, rate) < -150.0, "bs order {order}");
        }
    }

    /// The cookbook shapes: a peak of gain_db at f0, shelves reaching gain_db far from f0 and half
    /// of it at f0, a notch of zero at f0.
    #[test]
    fn cookbook_responses() {
        let rate = 44100.0;
        let peak = Cookbook::Peaking { freq_hz: 1000.0, q: 2.0, gain_db: 6.0 }.section(rate);
        assert!((response_db(&[peak], 1000.0, rate) - 6.0).abs() < 1e-9);
        let low = Cookbook::LowShelf { freq_hz: 200.0, q: 0.7071, gain_db: -9.0 }.section(rate);
        assert!((response_db(&[low], 1.0, rate) + 9.0).abs() < 1e-3);
        assert!((response_db(&[low], 200.0, rate) + 4.5).abs() < 1e-9);
        let high = Cookbook::HighShelf { freq_hz: 5000.0, q: 0.7071, gain_db: 4.0 }.section(rate);
        assert!((response_db(&[high], 22000.0, rate) - 4.0).abs() < 0.05);
        assert!((response_db(&[high], 5000.0, rate) - 2.0).abs() < 1e-9);
        let notch = Cookbook::Notch { freq_hz: 50.0, q: 10.0 }.section(rate);
        assert!(response_db(&[notch], 50.0, rate) < -200.0);
    }

    /// Forward-backward keeps a low sine where it was (zero phase) at the squared gain.
    #[test]
    fn filtfilt_has_zero_phase() {
        let rate = 16000.0;
        let mut c = Cascade::new(butterworth(4, Pass::Lowpass, 2000.0, 0.0, rate), 1);
        let x: Vec<f32> = (0..4000).map(|i| (2.0 * PI * 500.0 * i as f64 / rate).sin() as f32).collect();
        let mut y = x.clone();
        c.filtfilt(&mut y);
        let g = 10f64.powf(2.0 * response_db(c.sections(), 500.0, rate) / 20.0);
        for i in 500..3500 {
            assert!((y[i] as f64 - g * x[i] as f64).abs() < 1e-4, "{i}");
        }
    }
}
