//! Time-split energy of a two-section cascade (the loudness meter's K-weighting): a long span of
//! audio is cut into equal chunks that run side by side in the lanes of vector registers, so the
//! filter's serial recurrence (one multiply-add of latency per sample) no longer bounds it.
//!
//! Each chunk starts from zero state; the cascade is linear, so its true output is the zero-state
//! output plus the zero-input response of its true initial state, `y[n] = y_zs[n] + Σ_i s_i g_i[n]`
//! (`g_i`: the response to the unit state `e_i`, computed once per filter). The true initial state
//! of chunk `k + 1` is chunk `k`'s zero-state final state plus `A^len` times chunk `k`'s initial
//! state (`A`: one step with zero input, raised by squaring). The `g_i` of a stable filter decay
//! geometrically, so only each chunk's first [`Split::head`] samples need the correction: the
//! kernel keeps those outputs, and sums the squares of the rest per sub-block directly.
//! Used by `super::loudness::Meter` for long pushes; `super::sos::Cascade::energy` is the serial path
//! it must agree with (to rounding: tests in `loudness.rs`).

use super::sos::Section;

/// The minimal state of two cascaded direct-form-I sections: `[x1, x2, u1, u2, y1, y2]` (the
/// first section's past inputs and outputs `u`, which are the second's past inputs, then the
/// second's past outputs).
const D: usize = 6;
/// f64 lanes per AVX-512 register.
const LANES: usize = 8;
/// The correction stops where every `|g_i|` has stayed below this share of their peak: far
/// under f64 rounding of the output it is added to.
const TAIL: f64 = 1e-18;
/// Longest correction considered; a filter whose response has not decayed by then (poles on
/// the unit circle) is not split.
const MAX_HEAD: usize = 1 << 18;

type Matrix = [[f64; D]; D];

/// What the split path needs of one filter, computed once per process and filter: a meter is
/// built per call, and the responses take ~9,000 steps at 48 kHz (computed per meter, a tenth of
/// a call's profile).
#[derive(Debug)]
struct Responses {
    /// The kernel's coefficients: the first section's numerator times the second's `b0`,
    /// `-a1, -a2`, then the second's `b1 / b0, b2 / b0, -a1, -a2` (one product fewer per step;
    /// for the K-weighting's `[1, -2, 1]` high-pass the divided numerator is exact).
    kcoef: [f64; 9],
    /// The second section's `b0`: the kernel's `u` is the first section's output times this.
    u_scale: f64,
    /// `g[n][i]`: output `n` of the zero-input response to the unit state `e_i`, `n < head`.
    g: Vec<[f64; D]>,
    /// One zero-input step of the state.
    a: Matrix,
}

/// Filters whose responses were computed, by coefficient bits (a process meets a few rates).
static CACHE: std::sync::Mutex<Vec<([[u64; 5]; 2], Option<std::sync::Arc<Responses>>)>> = std::sync::Mutex::new(Vec::new());
/// At most this many cached: a stream of ever new rates cannot grow the cache without bound.
const CACHED: usize = 32;

/// The split path of one two-section cascade.
#[derive(Clone, Debug)]
pub struct Split {
    r: std::sync::Arc<Responses>,
    /// `A^len` for the last chunk length asked for.
    power: Option<(usize, Matrix)>,
    /// The zero-state outputs of the current group's chunk heads, `[n][lane]`.
    heads: Vec<f64>,
}

/// One step of the cascade on the minimal state (plain products: `mul_add` outside a
/// `target_feature` function is a libm call, and rounding differences here are ~1e-16 of a
/// correction).
fn step(c: &[[f64; 5]; 2], s: &mut [f64; D], x: f64) -> f64 {
    let [x1, x2, u1, u2, y1, y2] = *s;
    let r0 = c[0][0] * x + c[0][1] * x1 + c[0][2] * x2;
    let u = c[0][3] * u1 + (c[0][4] * u2 + r0);
    let r1 = c[1][0] * u + c[1][1] * u1 + c[1][2] * u2;
    let y = c[1][3] * y1 + (c[1][4] * y2 + r1);
    *s = [x, x1, u, u1, y, y1];
    y
}

fn mat_mul(p: &Matrix, q: &Matrix) -> Matrix {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..D).map(|k| p[i][k] * q[k][j]).sum()))
}

fn mat_vec(p: &Matrix, v: &[f64; D]) -> [f64; D] {
    std::array::from_fn(|i| (0..D).map(|k| p[i][k] * v[k]).sum())
}

impl Split {
    /// The split path for `sections` (two of them), or `None` when it cannot help: another
    /// section count, or a response that does not decay within [`MAX_HEAD`] samples.
    pub fn new(sections: &[Section]) -> Option<Split> {
        let [s0, s1] = sections else { return None };
        #[cfg(target_arch = "x86_64")]
        if !crate::nodes::cpu::simd().avx512() || s1.b[0] == 0.0 || !s1.b[0].is_finite() {
            return None;
        }
        #[cfg(not(target_arch = "x86_64"))]
        return None;
        let coef = [s0, s1].map(|s| [s.b[0], s.b[1], s.b[2], -s.a[0], -s.a[1]]);
        let key = coef.map(|s| s.map(f64::to_bits));
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        let r = match cache.iter().find(|(k, _)| *k == key) {
            Some((_, r)) => r.clone(),
            None => {
                let r = Responses::of(coef).map(std::sync::Arc::new);
                if cache.len() >= CACHED {
                    cache.remove(0);
                }
                cache.push((key, r.clone()));
                r
            }
        };
        Some(Split { r: r?, power: None, heads: Vec::new() })
    }
}

impl Responses {
    fn of(coef: [[f64; 5]; 2]) -> Option<Responses> {
        let mut states: [[f64; D]; D] = std::array::from_fn(|i| std::array::from_fn(|j| if i == j { 1.0 } else { 0.0 }));
        let mut a = [[0.0; D]; D];
        let mut g = Vec::new();
        let (mut peak, mut quiet) = (0f64, 0usize);
        for n in 0..MAX_HEAD {
            let mut out = [0.0; D];
            for (i, s) in states.iter_mut().enumerate() {
                out[i] = step(&coef, s, 0.0);
                if n == 0 {
                    for (row, v) in a.iter_mut().zip(s.iter()) {
                        row[i] = *v;
                    }
                }
            }
            let top = out.iter().fold(0f64, |m, v| m.max(v.abs()));
            peak = peak.max(top);
            g.push(out);
            quiet = if top < TAIL * peak { quiet + 1 } else { 0 };
            // Consecutive quiet samples: an oscillating response passes through zero, it does
            // not stay there.
            if quiet >= 64 {
                g.truncate(n + 1 - quiet);
                let [f, h] = coef;
                let k = h[0];
                let kcoef = [f[0] * k, f[1] * k, f[2] * k, f[3], f[4], h[1] / k, h[2] / k, h[3], h[4]];
                return Some(Responses { kcoef, u_scale: k, g, a });
            }
        }
        None
    }
}

impl Split {
    /// Samples at the start of each chunk that get the correction.
    pub fn head(&self) -> usize {
        self.r.g.len()
    }

    /// Chunks a span is cut into for `channels` channels: eight for mono (the eight lanes of
    /// one register), four otherwise (channels in pairs, a chunk's two samples side by side).
    pub fn chunks(channels: usize) -> usize {
        if channels == 1 {
            LANES
        } else {
            LANES / 2
        }
    }

    fn power(&mut self, len: usize) -> Matrix {
        if let Some((l, p)) = &self.power {
            if *l == len {
                return *p;
            }
        }
        let mut result: Matrix = std::array::from_fn(|i| std::array::from_fn(|j| if i == j { 1.0 } else { 0.0 }));
        let (mut base, mut e) = (self.r.a, len);
        while e > 0 {
            if e & 1 == 1 {
                result = mat_mul(&result, &base);
            }
            base = mat_mul(&base, &base);
            e >>= 1;
        }
        self.power = Some((len, result));
        result
    }

    /// The energy (sum of squared outputs) of each channel of each sub-block of
    /// `chunks(channels)` consecutive equal chunks of `samples` (interleaved, `channels`), a
    /// chunk cut into sub-blocks ending at `bounds` (increasing, the last the chunk's length),
    /// continuing from `state` (the cascade's: per channel, per section `[x1, x2, y1, y2]`) and
    /// leaving there the state after the last chunk. Into `energy[(k * bounds.len() + j) *
    /// channels + c]` for chunk `k`, sub-block `j`, channel `c`. `samples` holds exactly the chunks.
    pub fn energies(&mut self, state: &mut [[f64; 4]], samples: &[f32], channels: usize, bounds: &[usize], energy: &mut Vec<f64>) {
        let (ch, chunks, subs) = (channels, Self::chunks(channels), bounds.len());
        let span = *bounds.last().expect("at least one sub-block");
        assert!(samples.len() == chunks * span * ch && state.len() == 2 * ch);
        energy.clear();
        energy.resize(chunks * subs * ch, 0.0);
        let power = self.power(span);
        // Lane groups of one register: the (chunk, channel) of each lane, `None` for a lane
        // computed and dropped (the last channel of an odd count), and whether the lanes are
        // pairs of adjacent channels (read 64 bits at a time).
        let mut groups: Vec<([Option<(usize, usize)>; LANES], bool)> = Vec::new();
        if ch == 1 {
            groups.push((std::array::from_fn(|l| Some((l, 0))), false));
        } else {
            for c in (0..ch).step_by(2) {
                let pair = c + 1 < ch;
                groups.push((std::array::from_fn(|l| (pair || l % 2 == 0).then_some((l / 2, c + l % 2))), pair));
            }
        }
        let head = self.head().min(span);
        for (lanes, pair) in &groups {
            // Each lane's first sample (a dropped lane reads its neighbour's).
            let base = samples.as_ptr();
            let src: [*const f32; LANES] = std::array::from_fn(|l| {
                let (k, c) = lanes[l].or_else(|| lanes[l - 1]).expect("a dropped lane follows a used one");
                // SAFETY: inside `samples` (asserted above: chunk k's frames are in it).
                unsafe { base.add(k * span * ch + c) }
            });
            let mut st = [[0.0f64; LANES]; D];
            self.heads.resize(head * LANES, 0.0);
            // SAFETY: `Split::new` gives a split path only where the CPU has AVX-512F (and the
            // caller's AVX2 and FMA); every lane reads `span` frames of its chunk, inside
            // `samples`; `heads` holds `head` steps.
            let run = |st: &mut [[f64; LANES]; D], from: usize, steps: usize, out: *mut f64, keep: bool| unsafe {
                match (*pair, keep) {
                    (true, true) => kernel::run::<true, true>(&self.r.kcoef, st, &src, ch, from, steps, out),
                    (true, false) => kernel::run::<true, false>(&self.r.kcoef, st, &src, ch, from, steps, out),
                    (false, true) => kernel::run::<false, true>(&self.r.kcoef, st, &src, ch, from, steps, out),
                    (false, false) => kernel::run::<false, false>(&self.r.kcoef, st, &src, ch, from, steps, out),
                }
            };
            let heads = self.heads.as_mut_ptr();
            run(&mut st, 0, head, heads, true);
            let mut start = 0;
            for (j, &end) in bounds.iter().enumerate() {
                let from = start.max(head);
                if from < end {
                    let e = run(&mut st, from, end - from, std::ptr::null_mut(), false);
                    for (l, lane) in lanes.iter().enumerate() {
                        if let Some((k, c)) = lane {
                            energy[(k * subs + j) * ch + c] += e[l];
                        }
                    }
                }
                start = end;
            }
            // Each lane's zero-state final state, the kernel's scaled `u` back in the cascade's units.
            let unscale = 1.0 / self.r.u_scale;
            let finals: Vec<[f64; D]> = (0..LANES)
                .map(|l| std::array::from_fn(|i| st[i][l] * if i == 2 || i == 3 { unscale } else { 1.0 }))
                .collect();
            // The true initial state of each chunk, chained from the cascade's; then each
            // chunk head's corrected outputs.
            let mut init = [[0.0; D]; LANES];
            for c in lanes.iter().flatten().map(|l| l.1).collect::<std::collections::BTreeSet<_>>() {
                let (s0, s1) = (state[2 * c], state[2 * c + 1]);
                let mut s = [s0[0], s0[1], s0[2], s0[3], s1[2], s1[3]];
                for k in 0..chunks {
                    let l = lanes.iter().position(|&x| x == Some((k, c))).expect("every chunk of the channel");
                    init[l] = s;
                    let carried = mat_vec(&power, &s);
                    s = std::array::from_fn(|i| finals[l][i] + carried[i]);
                }
                state[2 * c] = [s[0], s[1], s[2], s[3]];
                state[2 * c + 1] = [s[2], s[3], s[4], s[5]];
            }
            // SAFETY: as above (the CPU has AVX2 and FMA).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                self.correct_heads(lanes, &init, head, bounds, ch, energy)
            };
        }
    }

    /// Adds each chunk head's corrected squared outputs (`y_zs + Σ_i s_i g_i`) to `energy`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn correct_heads(
        &self,
        lanes: &[Option<(usize, usize)>; LANES],
        init: &[[f64; D]; LANES],
        head: usize,
        bounds: &[usize],
        ch: usize,
        energy: &mut [f64],
    ) {
        // Plain arrays of the eight lanes: LLVM keeps them in two registers.
        let s: [[f64; LANES]; D] = std::array::from_fn(|i| std::array::from_fn(|l| init[l][i]));
        let subs = bounds.len();
        let mut start = 0;
        for (j, &end) in bounds.iter().enumerate() {
            if start >= head {
                break;
            }
            let mut acc = [0.0f64; LANES];
            for n in start..end.min(head) {
                let g = &self.r.g[n];
                let mut y: [f64; LANES] = self.heads[n * LANES..(n + 1) * LANES].try_into().expect("LANES long");
                for i in 0..D {
                    for l in 0..LANES {
                        y[l] = s[i][l].mul_add(g[i], y[l]);
                    }
                }
                for l in 0..LANES {
                    acc[l] = y[l].mul_add(y[l], acc[l]);
                }
            }
            for (l, lane) in lanes.iter().enumerate() {
                if let Some((k, c)) = lane {
                    energy[(k * subs + j) * ch + c] += acc[l];
                }
            }
            start = end;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod kernel {
    use super::{D, LANES};
    use std::arch::x86_64::*;

    /// `steps` steps from step `t0` of one AVX-512 register of eight chunk lanes, lane `l`
    /// reading the f32 at `src[l] + t * stride` (`PAIR`: lanes `2k` and `2k + 1` are adjacent
    /// channels, read as one 64-bit load), with the state `st[i][l]` taken and left. `HEAD`:
    /// each step's outputs stored at `out[t * 8 + l]` (`t0` is 0); otherwise the result is each
    /// lane's sum of squared outputs. AVX-512 for its 32 registers: coefficients, state and sum
    /// stay in registers (the AVX2 version with two registers of four spilled its state to the
    /// stack at every step).
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[inline(never)]
    pub(super) unsafe fn run<const PAIR: bool, const HEAD: bool>(
        c: &[f64; 9],
        st: &mut [[f64; LANES]; D],
        src: &[*const f32; LANES],
        stride: usize,
        t0: usize,
        steps: usize,
        out: *mut f64,
    ) -> [f64; LANES] {
        let [b0, b1, b2, a1, a2, d1, d2, e1, e2] = c.map(|v| _mm512_set1_pd(v));
        let [mut x1, mut x2, mut u1, mut u2, mut y1, mut y2] = st.map(|v| _mm512_loadu_pd(v.as_ptr()));
        let mut e = _mm512_setzero_pd();
        let p = *src;
        for t in t0..t0 + steps {
            let o = t * stride;
            let x = if PAIR {
                let pair = |l: usize| f64::from_bits((p[l].add(o) as *const u64).read_unaligned());
                _mm512_cvtps_pd(_mm256_castpd_ps(_mm256_set_pd(pair(6), pair(4), pair(2), pair(0))))
            } else {
                let v = |l: usize| *p[l].add(o);
                _mm512_cvtps_pd(_mm256_set_ps(v(7), v(6), v(5), v(4), v(3), v(2), v(1), v(0)))
            };
            // First section; then the second, whose numerator was divided by its b0 (folded
            // into the first's): `u` is the first section's output times that b0.
            let r0 = _mm512_fmadd_pd(b0, x, _mm512_fmadd_pd(b1, x1, _mm512_mul_pd(b2, x2)));
            let u = _mm512_fmadd_pd(a1, u1, _mm512_fmadd_pd(a2, u2, r0));
            let r1 = _mm512_fmadd_pd(d1, u1, _mm512_fmadd_pd(d2, u2, u));
            let y = _mm512_fmadd_pd(e1, y1, _mm512_fmadd_pd(e2, y2, r1));
            (x2, x1, u2, u1, y2, y1) = (x1, x, u1, u, y1, y);
            if HEAD {
                _mm512_storeu_pd(out.add(t * LANES), y);
            } else {
                e = _mm512_fmadd_pd(y, y, e);
            }
        }
        for (dst, v) in st.iter_mut().zip([x1, x2, u1, u2, y1, y2]) {
            _mm512_storeu_pd(dst.as_mut_ptr(), v);
        }
        let mut sums = [0.0; LANES];
        _mm512_storeu_pd(sums.as_mut_ptr(), e);
        sums
    }
}

/// Off x86_64 [`Split::new`] gives no split path, so the kernel is never called.
#[cfg(not(target_arch = "x86_64"))]
mod kernel {
    use super::{D, LANES};

    pub(super) unsafe fn run<const PAIR: bool, const HEAD: bool>(
        _: &[f64; 9],
        _: &mut [[f64; LANES]; D],
        _: &[*const f32; LANES],
        _: usize,
        _: usize,
        _: usize,
        _: *mut f64,
    ) -> [f64; LANES] {
        unreachable!("no split path off x86_64")
    }
}
