//! Second-order sections: Butterworth designs of any order (as scipy's `butter(..., output="sos")`),
//! the RBJ audio-EQ-cookbook biquads, and [`Cascade`], which runs them over interleaved f32 audio
//! in f64 with its state carried from call to call, or forward and backward over a whole buffer
//! (as scipy's `sosfiltfilt`). Shared by `FilterNode` and the loudness meter's K-weighting.
//!
//! Each section runs in direct form I (state: the last two inputs and outputs), so the only
//! dependency from one sample to the next is one multiply-add on the previous output. Interleaved
//! audio with up to [`MAX_LANES`] channel-sections runs as a pipeline ([`run_lanes`]): every
//! section of every channel is a lane of one array, section `s` working [`DELAY`]` * s` frames
//! behind the input, so all of them advance in one vectorised step per frame (3.6 ns per stereo
//! frame through three sections here, about 5x scipy's `sosfilt`; docs/performance.md). One
//! channel's buffer (`sosfiltfilt`, the loudness meter) goes section by section; on CPUs with
//! AVX2 and FMA, blocks of [`BLOCK`] samples are computed at once from the block's inputs and the
//! four state values through precomputed matrices ([`BlockForm`]). `python/remotemedia/_pure/sos.py` is the numpy twin.

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

    /// The state, per channel, per section `[x1, x2, y1, y2]` (`state[c * sections + s]`):
    /// for a caller that runs a span of the signal another way (`super::sos_split`) and
    /// continues from where it left the filter.
    pub fn state_mut(&mut self) -> &mut [[f64; 4]] {
        &mut self.state
    }

    /// Whether this cascade runs the AVX2 and FMA kernels.
    pub fn vectorised(&self) -> bool {
        self.vectorised
    }

    /// Forgets the state: the next call starts from silence.
    pub fn reset(&mut self) {
        self.state.fill([0.0; 4]);
    }

    /// Filters interleaved samples in place, continuing from the previous call. Up to
    /// [`MAX_LANES`] channel-sections run all at once in the pipelined lane kernel
    /// ([`run_lanes`]); larger cascades go channel by channel.
    pub fn process(&mut self, samples: &mut [f32]) {
        let lanes = self.channels * self.sections.len();
        if lanes == 0 {
            return;
        }
        match lanes {
            0..=4 => return self.process_lanes::<4>(samples),
            5..=8 => return self.process_lanes::<8>(samples),
            9..=16 => return self.process_lanes::<16>(samples),
            17..=MAX_LANES => return self.process_lanes::<MAX_LANES>(samples),
            _ => {}
        }
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

    /// [`process`](Cascade::process) through [`run_lanes`] with `L` lanes (at least
    /// `channels * sections`; the spare lanes have zero coefficients).
    fn process_lanes<const L: usize>(&mut self, samples: &mut [f32]) {
        let (ch, n) = (self.channels, Self::stages::<L>(self.channels));
        let mut k = self.lanes::<L>();
        if self.vectorised {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `vectorised` is only set where the CPU has AVX2 and FMA.
            unsafe {
                run_lanes_avx2(&mut k, ch, n, samples)
            };
        } else {
            run_lanes::<L, false>(&mut k, ch, n, samples);
        }
        self.keep_lanes(&k);
    }

    /// The pipeline's stages with `L` lanes: as many sections as fit, the cascade's own last.
    fn stages<const L: usize>(channels: usize) -> usize {
        L / channels
    }

    /// The lane kernel's coefficients and this cascade's state: the cascade's sections are the
    /// pipeline's last stages (lane `(pad + s) * ch + c` is section `s` of channel `c`), the
    /// `pad` stages before them pass their input through (`b0 = 1`, exactly). The output then
    /// always leaves from the top lanes, a fixed place the AVX2 kernel extracts without going
    /// through memory; the pass-through stages add `DELAY` frames of pipeline fill each, not
    /// work per frame (every lane is computed anyway).
    fn lanes<const L: usize>(&self) -> Lanes<L> {
        let (ch, n) = (self.channels, self.sections.len());
        let pad = Self::stages::<L>(ch) - n;
        let mut k = Lanes::<L>::default();
        for l in 0..pad * ch {
            k.b0[l] = 1.0;
        }
        for (s, sec) in self.sections.iter().enumerate() {
            for c in 0..ch {
                let l = (pad + s) * ch + c;
                let st = self.state[c * n + s];
                (k.b0[l], k.b1[l], k.b2[l], k.a1[l], k.a2[l]) = (sec.b[0], sec.b[1], sec.b[2], -sec.a[0], -sec.a[1]);
                (k.x1[l], k.x2[l], k.y1[l], k.y2[l]) = (st[0], st[1], st[2], st[3]);
            }
        }
        k
    }

    /// Takes the state back from the lane kernel.
    fn keep_lanes<const L: usize>(&mut self, k: &Lanes<L>) {
        let (ch, n) = (self.channels, self.sections.len());
        let pad = Self::stages::<L>(ch) - n;
        for s in 0..n {
            for c in 0..ch {
                let l = (pad + s) * ch + c;
                self.state[c * n + s] = [k.x1[l], k.x2[l], k.y1[l], k.y2[l]];
            }
        }
    }

    /// The energy (sum of squares) of each channel's output for `samples` (interleaved), with the
    /// state carried as [`process`](Cascade::process) carries it, into `energy` (one per channel).
    /// The output itself is not kept: the loudness meter needs only its energy, and mono or
    /// stereo cascades of up to [`MAX_LANES`] lanes then square the outputs in the vectorised
    /// kernel instead of writing them to a copy of the input and reading them back. The sums are
    /// in f64 of the f64 outputs (the copying path squares the outputs rounded to f32: the same
    /// up to 1e-7 relative).
    pub fn energy(&mut self, samples: &[f32], energy: &mut [f64]) {
        let (ch, lanes) = (self.channels, self.channels * self.sections.len());
        energy.iter_mut().for_each(|e| *e = 0.0);
        #[cfg(target_arch = "x86_64")]
        if self.vectorised && ch <= 2 && lanes > 0 && lanes <= MAX_LANES {
            let got = match lanes {
                0..=4 => self.energy_lanes::<4, 1>(samples),
                5..=8 => self.energy_lanes::<8, 2>(samples),
                9..=16 => self.energy_lanes::<16, 4>(samples),
                _ => self.energy_lanes::<MAX_LANES, 8>(samples),
            };
            energy.iter_mut().zip(got).for_each(|(e, g)| *e = g);
            return;
        }
        let mut out = samples.to_vec();
        self.process(&mut out);
        for f in out.chunks_exact(ch) {
            for (e, &y) in energy.iter_mut().zip(f) {
                *e += y as f64 * y as f64;
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn energy_lanes<const L: usize, const V: usize>(&mut self, samples: &[f32]) -> [f64; 2] {
        let (ch, n) = (self.channels, Self::stages::<L>(self.channels));
        let mut k = self.lanes::<L>();
        let frames = samples.len() / ch;
        // SAFETY: only called where `vectorised` (AVX2 and FMA) holds, with one or two channels
        // and `L = 4 * V >= channels * sections`; the kernel reads `frames * ch` samples and
        // writes none.
        let e = unsafe {
            if ch == 1 {
                ymm::run::<L, V, 1, true>(&mut k, n, samples.as_ptr(), std::ptr::null_mut(), frames)
            } else {
                ymm::run::<L, V, 2, true>(&mut k, n, samples.as_ptr(), std::ptr::null_mut(), frames)
            }
        };
        self.keep_lanes(&k);
        e
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
                && crate::nodes::cpu::simd().avx2_fma()
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The most channel-sections (channels times sections) the lane kernel takes at once.
pub const MAX_LANES: usize = 32;

/// How many samples each section lags the one before it in the lane kernel: its input is the
/// previous section's output of `DELAY` steps ago, long since stored, so no lane waits for
/// another within a step.
const DELAY: usize = 4;

/// The lane kernel's coefficients (`a1`, `a2` negated) and direct-form-I state, one lane per
/// channel-section.
#[derive(Clone, Copy)]
struct Lanes<const L: usize> {
    b0: [f64; L],
    b1: [f64; L],
    b2: [f64; L],
    a1: [f64; L],
    a2: [f64; L],
    x1: [f64; L],
    x2: [f64; L],
    y1: [f64; L],
    y2: [f64; L],
}

impl<const L: usize> Default for Lanes<L> {
    fn default() -> Self {
        let z = [0.0; L];
        Lanes { b0: z, b1: z, b2: z, a1: z, a2: z, x1: z, x2: z, y1: z, y2: z }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_lanes_avx2<const L: usize>(k: &mut Lanes<L>, ch: usize, n: usize, samples: &mut [f32]) {
    // Mono and stereo (the usual cases) in 4-wide registers with the lane shift as a fixed
    // shuffle; LLVM vectorises the array code only 2 wide for them.
    let (frames, ptr) = (samples.len() / ch.max(1), samples.as_mut_ptr());
    // In place: each frame's output is written after its input was read.
    match (ch, L) {
        (1, 4) => _ = ymm::run::<L, 1, 1, false>(k, n, ptr, ptr, frames),
        (1, 8) => _ = ymm::run::<L, 2, 1, false>(k, n, ptr, ptr, frames),
        (1, 16) => _ = ymm::run::<L, 4, 1, false>(k, n, ptr, ptr, frames),
        (1, 32) => _ = ymm::run::<L, 8, 1, false>(k, n, ptr, ptr, frames),
        (2, 4) => _ = ymm::run::<L, 1, 2, false>(k, n, ptr, ptr, frames),
        (2, 8) => _ = ymm::run::<L, 2, 2, false>(k, n, ptr, ptr, frames),
        (2, 16) => _ = ymm::run::<L, 4, 2, false>(k, n, ptr, ptr, frames),
        (2, 32) => _ = ymm::run::<L, 8, 2, false>(k, n, ptr, ptr, frames),
        _ => run_lanes::<L, true>(k, ch, n, samples),
    }
}

/// [`run_lanes`] for one or two channels written with AVX2 intrinsics: `V` registers of four
/// lanes; lane `l`'s input is lane `l - ch`'s output of `DELAY` steps ago, a shift across the
/// registers by one or two lanes.
#[cfg(target_arch = "x86_64")]
mod ymm {
    use super::{Lanes, DELAY};
    use std::arch::x86_64::*;

    /// The lane cascade over `frames` interleaved frames of `CH` (1 or 2) channels, in `V`
    /// registers of four f64 lanes (`L = 4 * V`), the state taken from and left in `k`.
    ///
    /// `ENERGY` false: the last section's outputs overwrite the inputs' frames (`output` is
    /// `input`). `ENERGY` true: nothing is written (`output` may be null) and the result is the
    /// sum of each channel's squared outputs.
    ///
    /// Never inlined, the channel count a constant, the output on fixed lanes: main's build at
    /// 07:58 spent half of this loop's samples writing each frame's output through a stack copy
    /// of the registers in a loop over a run-time channel count; how LLVM laid that out with
    /// the rest most likely moved with the code of its callers (156 µs in one build, 219 µs in
    /// the next with no filter change; the faster build's code was not kept to compare). Compiled on its own and with the output
    /// extracted from the register directly, its code no longer depends on its callers.
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    pub(super) unsafe fn run<const L: usize, const V: usize, const CH: usize, const ENERGY: bool>(
        k: &mut Lanes<L>,
        n: usize,
        input: *const f32,
        output: *mut f32,
        frames: usize,
    ) -> [f64; 2] {
        // The output leaves from the top lanes (the cascade's last section; see `Cascade::lanes`).
        let ch = CH;
        assert!(L == 4 * V && (ch == 1 || ch == 2) && n * ch == L);
        let lag = DELAY * (n - 1);
        let load = |a: &[f64; L]| -> [__m256d; V] { std::array::from_fn(|i| unsafe { _mm256_loadu_pd(a[4 * i..].as_ptr()) }) };
        let (b0, b1, b2, a1, a2) = (load(&k.b0), load(&k.b1), load(&k.b2), load(&k.a1), load(&k.a2));
        let (mut x1, mut x2, mut y1, mut y2) = (load(&k.x1), load(&k.x2), load(&k.y1), load(&k.y2));
        let mut ring = [[_mm256_setzero_pd(); V]; DELAY];
        let out_lane = L - ch;
        let ptr = input;
        let mut energy = [_mm256_setzero_pd(); V];
        // A macro, not a closure: closures are not inlined here, and every step must be.
        macro_rules! step { ($t:expr, $mask:expr) => {{
            let (t, mask): (usize, Option<[__m256d; V]>) = ($t, $mask);
            let prev = ring[t % DELAY];
            // The new inputs of the first section, in the low lanes.
            let inp = if t < frames {
                if ch == 1 {
                    _mm256_set1_pd(*ptr.add(t) as f64)
                } else {
                    _mm256_castpd128_pd256(_mm_cvtps_pd(_mm_castpd_ps(_mm_load_sd(ptr.add(2 * t) as *const f64))))
                }
            } else {
                _mm256_setzero_pd()
            };
            let x: [__m256d; V] = std::array::from_fn(|i| {
                if ch == 2 {
                    if i == 0 { _mm256_permute2f128_pd::<0x20>(inp, prev[0]) } else { _mm256_permute2f128_pd::<0x21>(prev[i - 1], prev[i]) }
                } else {
                    // [p3, p0, p1, p2] of each register, lane 0 from the register before.
                    let r = _mm256_permute4x64_pd::<0b10_01_00_11>(prev[i]);
                    let before = if i == 0 { inp } else { _mm256_permute4x64_pd::<0b10_01_00_11>(prev[i - 1]) };
                    _mm256_blend_pd::<0b0001>(r, before)
                }
            });
            let mut y = [_mm256_setzero_pd(); V];
            for i in 0..V {
                let rest = _mm256_fmadd_pd(b0[i], x[i], _mm256_fmadd_pd(b1[i], x1[i], _mm256_mul_pd(b2[i], x2[i])));
                y[i] = _mm256_fmadd_pd(a1[i], y1[i], _mm256_fmadd_pd(a2[i], y2[i], rest));
            }
            match mask {
                None => (x2, x1, y2, y1) = (x1, x, y1, y),
                Some(m) => {
                    for i in 0..V {
                        x2[i] = _mm256_blendv_pd(x2[i], x1[i], m[i]);
                        x1[i] = _mm256_blendv_pd(x1[i], x[i], m[i]);
                        y2[i] = _mm256_blendv_pd(y2[i], y1[i], m[i]);
                        y1[i] = _mm256_blendv_pd(y1[i], y[i], m[i]);
                    }
                }
            }
            ring[t % DELAY] = y;
            if t >= lag {
                if ENERGY {
                    // Every lane's square (the others' are dropped at the end): one add on
                    // its own chain per step, off the recurrence.
                    for i in 0..V {
                        energy[i] = _mm256_add_pd(energy[i], _mm256_mul_pd(y[i], y[i]));
                    }
                } else {
                    // The top lanes of the last register, rounded as `as f32` rounds.
                    let f = t - lag;
                    let o = _mm256_cvtpd_ps(y[V - 1]);
                    if ch == 2 {
                        _mm_store_sd(output.add(f * 2) as *mut f64, _mm_castps_pd(_mm_movehl_ps(o, o)));
                    } else {
                        _mm_store_ss(output.add(f), _mm_shuffle_ps::<0b11>(o, o));
                    }
                }
            }
        }}}
        // Lane l (section l / ch) is on frame t - DELAY * (l / ch): it moves only if that exists.
        let mask = |t: usize| -> [__m256d; V] {
            let m: [f64; L] = std::array::from_fn(|l| {
                let f = t as isize - (DELAY * (l / ch)) as isize;
                if f >= 0 && (f as usize) < frames { f64::from_bits(u64::MAX) } else { 0.0 }
            });
            load(&m)
        };
        if lag <= frames {
            for t in 0..lag {
                step!(t, Some(mask(t)));
            }
            for t in lag..frames {
                step!(t, None);
            }
            for t in frames..frames + lag {
                step!(t, Some(mask(t)));
            }
        } else {
            for t in 0..frames + lag {
                step!(t, Some(mask(t)));
            }
        }
        let store = |v: [__m256d; V], a: &mut [f64; L]| (0..V).for_each(|i| unsafe { _mm256_storeu_pd(a[4 * i..].as_mut_ptr(), v[i]) });
        store(x1, &mut k.x1);
        store(x2, &mut k.x2);
        store(y1, &mut k.y1);
        store(y2, &mut k.y2);
        let mut sums = [0.0f64; L];
        store(energy, &mut sums);
        std::array::from_fn(|c| if c < ch { sums[out_lane + c] } else { 0.0 })
    }
}

/// The cascade as a pipeline over interleaved frames: at step `t`, section `s` of every channel
/// works on frame `t - s * DELAY`, so all `channels * sections` lanes advance together in one
/// fixed-size array the compiler vectorises, and each lane's only serial dependency is one
/// multiply-add on its own previous output. The first and last `DELAY * (sections - 1)` steps
/// run with the lanes that have no frame yet (or any more) held still. Results equal the
/// section-by-section loop up to rounding (same direct form I, the same products).
#[inline(always)]
fn run_lanes<const L: usize, const FMA: bool>(k: &mut Lanes<L>, ch: usize, n: usize, samples: &mut [f32]) {
    let frames = samples.len() / ch;
    let lag = DELAY * (n - 1);
    let madd = |a: f64, b: f64, c: f64| if FMA { a.mul_add(b, c) } else { a * b + c };
    let Lanes { b0, b1, b2, a1, a2, mut x1, mut x2, mut y1, mut y2 } = *k;
    // ring[t % DELAY]: the lanes' outputs of step t - DELAY (lane l's input is lane l - ch's).
    let mut ring = [[0.0f64; L]; DELAY];
    // A macro rather than a closure: each loop below gets its own inlined copy, the hot one
    // with `masked` a constant false.
    macro_rules! step { ($t:expr, $masked:expr) => {{
        let (t, masked): (usize, bool) = ($t, $masked);
        let prev = &mut ring[t % DELAY];
        let mut x = [0.0; L];
        for l in 0..L {
            x[l] = if l < ch { if t < frames { samples[t * ch + l] as f64 } else { 0.0 } } else { prev[l - ch] };
        }
        let mut y = [0.0; L];
        for l in 0..L {
            // The inputs' terms first; then y[-2]'s and y[-1]'s, so the recurrence through the
            // outputs is two multiply-adds per two steps.
            let rest = madd(b0[l], x[l], madd(b1[l], x1[l], b2[l] * x2[l]));
            y[l] = madd(a1[l], y1[l], madd(a2[l], y2[l], rest));
        }
        if !masked {
            (x2, x1, y2, y1) = (x1, x, y1, y);
        } else {
            // Lane l (section l / ch) is on frame t - DELAY * (l / ch): hold it unless that exists.
            for l in 0..L {
                let f = t as isize - (DELAY * (l / ch)) as isize;
                if f >= 0 && (f as usize) < frames {
                    (x2[l], x1[l], y2[l], y1[l]) = (x1[l], x[l], y1[l], y[l]);
                }
            }
        }
        *prev = y;
        if t >= lag {
            let f = t - lag;
            for (d, &v) in samples[f * ch..(f + 1) * ch].iter_mut().zip(&y[(n - 1) * ch..n * ch]) {
                *d = v as f32;
            }
        }
    }}}
    if lag <= frames {
        for t in 0..lag {
            step!(t, true);
        }
        for t in lag..frames {
            step!(t, false);
        }
        for t in frames..frames + lag {
            step!(t, true);
        }
    } else {
        for t in 0..frames + lag {
            step!(t, true);
        }
    }
    (k.x1, k.x2, k.y1, k.y2) = (x1, x2, y1, y2);
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

    /// The lane kernel (interleaved channels, sections pipelined) matches the scalar loop per
    /// channel, for 1 to 9 sections on 1 to 3 channels (4 to 32 lanes, and the channel-by-channel
    /// path beyond), in chunks shorter and longer than its pipeline.
    #[test]
    fn lanes_match_the_scalar_loop_across_chunks() {
        for (order, ch) in [(1, 1), (2, 2), (3, 3), (8, 2), (9, 3), (16, 3)] {
            let sections = butterworth(order, Pass::Bandpass, 300.0, 3000.0, 16000.0);
            let frames = 700;
            let x: Vec<f32> = (0..frames * ch).map(|i| ((i * 7919) % 211) as f32 / 105.0 - 1.0).collect();
            let mut c = Cascade::new(sections.clone(), ch);
            let mut got = Vec::new();
            for chunk in x.chunks(ch * 3) {
                let mut v = chunk.to_vec();
                c.process(&mut v);
                got.extend(v);
            }
            let mut got2 = x.clone();
            let mut c2 = Cascade::new(sections.clone(), ch);
            let (a, b) = got2.split_at_mut(ch * 331);
            c2.process(a);
            c2.process(b);
            for chan in 0..ch {
                let xc: Vec<f64> = x.iter().skip(chan).step_by(ch).map(|&v| v as f64).collect();
                let want = scalar(&sections, &xc);
                for (i, w) in want.iter().enumerate() {
                    for g in [got[i * ch + chan], got2[i * ch + chan]] {
                        assert!((g as f64 - w).abs() < 1e-5 * w.abs().max(1.0), "order {order} ch {ch} frame {i}: {g} vs {w}");
                    }
                }
            }
        }
    }

    /// The energy kernel gives each channel's sum of squared outputs and leaves the state where
    /// filtering would: spans of any length (shorter and longer than the pipeline), then the
    /// filtered continuation equals filtering everything, for 1 to 3 channels and 2 to 9 sections
    /// (the vectorised kernel, and the copying path for three channels).
    #[test]
    fn energy_equals_the_squared_filtered_output() {
        for (order, ch) in [(2, 1), (2, 2), (3, 2), (9, 2), (4, 3)] {
            let sections = butterworth(order, Pass::Bandpass, 300.0, 3000.0, 16000.0);
            let frames = 900;
            let x: Vec<f32> = (0..frames * ch).map(|i| ((i * 7919) % 211) as f32 / 105.0 - 1.0).collect();
            let mut whole = x.clone();
            Cascade::new(sections.clone(), ch).process(&mut whole);
            let mut c = Cascade::new(sections.clone(), ch);
            let mut pos = 0;
            for span in [1, 2, 5, 40, 333] {
                let mut got = vec![0.0; ch];
                c.energy(&x[pos * ch..(pos + span) * ch], &mut got);
                for (chan, g) in got.iter().enumerate() {
                    let want: f64 = whole[pos * ch..(pos + span) * ch].iter().skip(chan).step_by(ch).map(|&y| y as f64 * y as f64).sum();
                    assert!((g - want).abs() <= 1e-6 * want.max(1e-3), "order {order} ch {ch} span {span}: {g} vs {want}");
                }
                pos += span;
            }
            let mut rest = x[pos * ch..].to_vec();
            c.process(&mut rest);
            for (g, w) in rest.iter().zip(&whole[pos * ch..]) {
                assert!((g - w).abs() <= 1e-6, "order {order} ch {ch}: {g} vs {w}");
            }
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
