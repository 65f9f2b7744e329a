//! `DenoiseNode`'s per-frame loops, written as plain slice loops that vectorise, each compiled
//! three times (AVX-512, AVX2 + FMA, baseline) and picked at run time by [`Level`]: the crate is
//! built for baseline x86-64, where these loops would run 4 lanes wide instead of 8 or 16.
//!
//! The mask's frequency smoothing is the costly one. The raw mask is 0/1 per bin (above the
//! threshold or not), so the triangle's sums are small integers, exact in f32 whatever the order
//! of the additions: they are computed as two box sums, each by doubling (sums of 2, 4, 8, ...
//! neighbours, every pass a vector add over the row), about 2·log2(width) passes instead of a
//! serial running sum (two dependent f64 chains over every bin, a fifth of the node's time).

use realfft::num_complex::Complex;

/// The widest vector instructions the CPU has, of those the loops are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Plain,
    Avx2,
    Avx512,
}

impl Level {
    /// From `nodes::cpu` (detected once per process; nothing off x86-64).
    pub fn detect() -> Level {
        let cpu = crate::nodes::cpu::simd();
        if cpu.avx512() && cpu.avx512vl {
            Level::Avx512
        } else if cpu.avx2_fma() {
            Level::Avx2
        } else {
            Level::Plain
        }
    }

    /// Every level this CPU can run, for the tests that compare them.
    #[cfg(test)]
    pub fn all() -> Vec<Level> {
        [Level::Plain, Level::Avx2, Level::Avx512].into_iter().filter(|&l| l <= Level::detect()).collect()
    }
}

/// `pub(super) fn $name(level: Level, args...)`: the body inlined into one function per level.
macro_rules! dispatched {
    ($(#[$m:meta])* fn $name:ident($($a:ident : $t:ty),* $(,)?) $(-> $r:ty)? $body:block) => {
        $(#[$m])*
        #[allow(unused_variables)]
        pub(super) fn $name(level: Level, $($a: $t),*) $(-> $r)? {
            #[inline(always)]
            fn body($($a: $t),*) $(-> $r)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn wide($($a: $t),*) $(-> $r)? { body($($a),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($a: $t),*) $(-> $r)? { body($($a),*) }
                match level {
                    // SAFETY: `level` is at most `Level::detect()`: the CPU has these features.
                    Level::Avx512 => return unsafe { wide($($a),*) },
                    Level::Avx2 => return unsafe { avx2($($a),*) },
                    Level::Plain => {}
                }
            }
            body($($a),*)
        }
    };
}

pub(super) use dispatched;

/// The mask's smoothing over frequency for rows of `bins` values: the triangular kernel of
/// half-width `h` (`noisereduce`'s, cut and renormalised at the ends) applied to a 0/1 row,
/// mapped to `1 - p` (0) .. 1 (1). The triangle of half-width `h` is a box of `h + 1` ones
/// convolved with itself.
pub struct Smoother {
    h: usize,
    bins: usize,
    /// `1 - p`: the mask where the whole neighbourhood is noise.
    floor: f32,
    /// Per bin: `p` over the kernel's sum there (its weights that fall inside the row).
    scale: Vec<f32>,
    /// The 0/1 row at `[h, h + bins)`, zeros around it.
    row: Vec<f32>,
    /// Scratch of the doubling sums.
    a: Vec<f32>,
    b: Vec<f32>,
    boxed: Vec<f32>,
    sums: Vec<f32>,
}

impl Smoother {
    pub fn new(h: usize, bins: usize, p: f32) -> Smoother {
        let len = bins + 2 * h;
        let mut s = Smoother {
            h,
            bins,
            floor: 1.0 - p,
            scale: Vec::new(),
            row: vec![0.0; len],
            a: Vec::with_capacity(len),
            b: Vec::with_capacity(len),
            boxed: vec![0.0; bins + h],
            sums: vec![0.0; bins],
        };
        s.row[h..h + bins].fill(1.0);
        s.triangle_sums(Level::Plain);
        s.scale = s.sums.iter().map(|&w| p / w).collect();
        s.row[h..h + bins].fill(0.0);
        s
    }

    /// Into `sums`: the triangle's sums of `row` at each bin (exact: small integers).
    fn triangle_sums(&mut self, level: Level) {
        let w = self.h + 1;
        box_sums(level, &self.row, w, &mut self.boxed, &mut self.a, &mut self.b);
        box_sums(level, &self.boxed, w, &mut self.sums, &mut self.a, &mut self.b);
    }

    /// Where the 0/1 row to smooth goes (`bins` values).
    pub fn row_mut(&mut self) -> &mut [f32] {
        &mut self.row[self.h..self.h + self.bins]
    }

    /// The smoothed mask of the 0/1 row in `row` (its middle `bins` values) into `out`.
    pub fn smooth(&mut self, level: Level, out: &mut Vec<f32>) {
        out.resize(self.bins, 0.0);
        self.triangle_sums(level);
        finish(level, &self.sums, &self.scale, self.floor, out);
    }
}

dispatched! {
    /// `out[j] = src[j] + ... + src[j + w - 1]` for every `j` with a whole window (`out` has
    /// `src.len() + 1 - w` values): `out` gathers the sums of 1, 2, 4, ... values the bits of
    /// `w` ask for, each row of sums of `2s` made from the one of `s` in one pass.
    fn box_sums(src: &[f32], w: usize, out: &mut [f32], cur: &mut Vec<f32>, next: &mut Vec<f32>) {
        let n = src.len() + 1 - w;
        let out = &mut out[..n];
        let (mut size, mut offset, mut rest, mut first) = (1, 0, w, true);
        loop {
            // The sums of `size` values: `src` itself at first, then `cur`.
            let row: &[f32] = if size == 1 { src } else { cur.as_slice() };
            if rest & 1 == 1 {
                // row[j] holds src[j] + ... + src[j + size - 1]; offset + size <= w.
                let part = &row[offset..offset + n];
                if first {
                    out.copy_from_slice(part);
                    first = false;
                } else {
                    for (o, &c) in out.iter_mut().zip(part) {
                        *o += c;
                    }
                }
                offset += size;
            }
            rest >>= 1;
            if rest == 0 {
                break;
            }
            let len = row.len() - size;
            next.clear();
            next.extend(row[..len].iter().zip(&row[size..size + len]).map(|(&x, &y)| x + y));
            std::mem::swap(cur, next);
            size *= 2;
        }
    }
}

dispatched! {
    /// `out[i] = floor + sums[i] * scale[i]`.
    fn finish(sums: &[f32], scale: &[f32], floor: f32, out: &mut [f32]) {
        for ((o, &s), &k) in out.iter_mut().zip(sums).zip(scale) {
            *o = floor + s * k;
        }
    }
}

dispatched! {
    /// 1.0 where a bin's power exceeds its threshold, else 0.0.
    fn above(spec: &[Complex<f32>], threshold: &[f32], out: &mut [f32]) {
        for ((o, x), &t) in out.iter_mut().zip(spec).zip(threshold) {
            *o = if x.re * x.re + x.im * x.im > t { 1.0 } else { 0.0 };
        }
    }
}

dispatched! {
    /// Each bin's power into `out`; their total (in f64, eight partial sums).
    fn powers(spec: &[Complex<f32>], out: &mut [f32]) -> f64 {
        for (o, x) in out.iter_mut().zip(spec) {
            *o = x.re * x.re + x.im * x.im;
        }
        let mut part = [0f64; 8];
        let chunks = out.chunks_exact(8);
        let tail: f64 = chunks.remainder().iter().map(|&p| p as f64).sum();
        for c in chunks {
            for (s, &p) in part.iter_mut().zip(c) {
                *s += p as f64;
            }
        }
        part.iter().sum::<f64>() + tail
    }
}

dispatched! {
    /// `out = a * x + b * y`, or `out += ...` when `add`.
    fn two_scaled(out: &mut [f32], a: f32, x: &[f32], b: f32, y: &[f32], add: bool) {
        let pairs = out.iter_mut().zip(x.iter().zip(y));
        if add {
            for (o, (&u, &v)) in pairs {
                *o += a * u + b * v;
            }
        } else {
            for (o, (&u, &v)) in pairs {
                *o = a * u + b * v;
            }
        }
    }
}

dispatched! {
    /// `out = w * x`.
    fn scaled(out: &mut [f32], w: f32, x: &[f32]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = w * v;
        }
    }
}

dispatched! {
    /// 1.0 where a power exceeds its threshold, else 0.0.
    fn above_power(power: &[f32], threshold: &[f32], out: &mut [f32]) {
        for ((o, &p), &t) in out.iter_mut().zip(power).zip(threshold) {
            *o = if p > t { 1.0 } else { 0.0 };
        }
    }
}

dispatched! {
    /// `frame = x * w`.
    fn windowed(frame: &mut [f32], x: &[f32], w: &[f32]) {
        for ((f, &v), &k) in frame.iter_mut().zip(x).zip(w) {
            *f = v * k;
        }
    }
}

dispatched! {
    /// `acc += w * x`.
    fn add_scaled(acc: &mut [f32], w: f32, x: &[f32]) {
        for (a, &v) in acc.iter_mut().zip(x) {
            *a += w * v;
        }
    }
}

dispatched! {
    /// `out = spec * mask * scale`, DC and Nyquist made real (the inverse transform needs them so).
    fn apply(spec: &[Complex<f32>], mask: &[f32], scale: f32, out: &mut [Complex<f32>]) {
        for ((o, s), &m) in out.iter_mut().zip(spec).zip(mask) {
            let g = m * scale;
            *o = Complex::new(s.re * g, s.im * g);
        }
        if let Some(first) = out.first_mut() {
            first.im = 0.0;
        }
        if let Some(last) = out.last_mut() {
            last.im = 0.0;
        }
    }
}

dispatched! {
    /// [`apply`] with the gain never below `raw` (the frame's 0/1 mask): a bin the threshold kept
    /// passes whole. The smoothed gain is at least `1 - prop_decrease`, so this is the max with
    /// the raw mask as `1 - prop_decrease` (gated) .. 1 (kept), as the numpy twin writes it.
    fn apply_keeping(spec: &[Complex<f32>], mask: &[f32], raw: &[f32], scale: f32, out: &mut [Complex<f32>]) {
        for (((o, s), &m), &r) in out.iter_mut().zip(spec).zip(mask).zip(raw) {
            let g = (m * scale).max(r);
            *o = Complex::new(s.re * g, s.im * g);
        }
        if let Some(first) = out.first_mut() {
            first.im = 0.0;
        }
        if let Some(last) = out.last_mut() {
            last.im = 0.0;
        }
    }
}

dispatched! {
    /// `acc += y * w` (the overlap-add of one windowed frame).
    fn overlap_add(acc: &mut [f32], y: &[f32], w: &[f32]) {
        for ((a, &v), &k) in acc.iter_mut().zip(y).zip(w) {
            *a += v * k;
        }
    }
}

dispatched! {
    /// `y / w` in place, 0 where the window sum is (nearly) 0.
    fn normalise(y: &mut [f32], w: &[f32]) {
        for (v, &s) in y.iter_mut().zip(w) {
            let r = *v / s;
            *v = if s > 1e-8 { r } else { 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The doubling box sums equal the kernel applied directly, cut and renormalised at the ends,
    /// at every vector level, for widths from none to wider than the row.
    #[test]
    fn smooth_equals_the_direct_kernel_at_every_level() {
        let x: Vec<f32> = (0..37).map(|i| if (i * 7) % 5 < 2 { 1.0 } else { 0.0 }).collect();
        let p = 0.75f32;
        for level in Level::all() {
            for h in [0, 1, 3, 16, 40] {
                let mut s = Smoother::new(h, x.len(), p);
                s.row_mut().copy_from_slice(&x);
                let mut got = Vec::new();
                s.smooth(level, &mut got);
                for i in 0..x.len() {
                    let (mut sum, mut w) = (0f64, 0f64);
                    for k in -(h as isize)..=h as isize {
                        let t = i as isize + k;
                        let kw = (h as isize + 1 - k.abs()) as f64;
                        if t >= 0 && (t as usize) < x.len() {
                            sum += kw * (1.0 - p as f64 + p as f64 * x[t as usize] as f64);
                            w += kw;
                        }
                    }
                    assert!((got[i] as f64 - sum / w).abs() < 1e-6, "{level:?} h {h} i {i}: {} vs {}", got[i], sum / w);
                }
            }
        }
    }

    /// Box sums of every width over a row of small integers, exact at every level.
    #[test]
    fn box_sums_are_exact() {
        let src: Vec<f32> = (0..50).map(|i| ((i * 13) % 7) as f32).collect();
        for level in Level::all() {
            for w in 1..=50 {
                let mut out = vec![0.0; src.len() + 1 - w];
                box_sums(level, &src, w, &mut out, &mut Vec::new(), &mut Vec::new());
                for (j, &o) in out.iter().enumerate() {
                    assert_eq!(o, src[j..j + w].iter().sum::<f32>(), "{level:?} w {w} j {j}");
                }
            }
        }
    }

    /// Keeping the raw mask: the gain is at least the average's everywhere, exactly the
    /// average's where the raw mask is gated and 1 where it is kept; the same at every level.
    #[test]
    fn keeping_never_lowers_the_average_and_changes_only_kept_bins() {
        let n = 67;
        let spec: Vec<Complex<f32>> = (0..n).map(|i| Complex::new((i as f32 * 0.37).sin(), (i as f32 * 0.11).cos())).collect();
        let raw: Vec<f32> = (0..n).map(|i| if (i * 7) % 5 < 2 { 1.0 } else { 0.0 }).collect();
        // A time-smoothed sum of masks in [1 - p, 1] with weights summing to `total`.
        let (p, total) = (0.8f32, 2.5f32);
        let mask: Vec<f32> = (0..n).map(|i| total * (1.0 - p + p * ((i as f32 * 0.53).sin() * 0.5 + 0.5))).collect();
        let unit: Vec<Complex<f32>> = vec![Complex::new(1.0, 0.0); n];
        let mut want = None;
        for level in Level::all() {
            let (mut avg, mut keep) = (vec![Complex::new(0.0, 0.0); n], vec![Complex::new(0.0, 0.0); n]);
            apply(level, &unit, &mask, 1.0 / total, &mut avg);
            apply_keeping(level, &unit, &mask, &raw, 1.0 / total, &mut keep);
            for i in 0..n {
                assert!(keep[i].re >= avg[i].re, "{level:?} {i}");
                if raw[i] == 0.0 {
                    assert_eq!(keep[i], avg[i], "{level:?} {i}");
                } else {
                    assert_eq!(keep[i].re, 1.0f32.max(avg[i].re), "{level:?} {i}");
                }
            }
            let mut out = vec![Complex::new(0.0, 0.0); n];
            apply_keeping(level, &spec, &mask, &raw, 1.0 / total, &mut out);
            match &want {
                None => want = Some(out),
                Some(w) => assert_eq!(w, &out, "{level:?}"),
            }
        }
    }

    /// The other loops agree across levels (to the rounding FMA may change).
    #[test]
    fn levels_agree() {
        let spec: Vec<Complex<f32>> = (0..67).map(|i| Complex::new((i as f32 * 0.37).sin(), (i as f32 * 0.11).cos())).collect();
        let mut want = None;
        for level in Level::all() {
            let mut pw = vec![0.0; spec.len()];
            let total = powers(level, &spec, &mut pw);
            let mut ab = vec![0.0; spec.len()];
            above(level, &spec, &vec![0.5; spec.len()], &mut ab);
            let mut out = vec![Complex::new(0.0, 0.0); spec.len()];
            apply(level, &spec, &pw, 0.5, &mut out);
            let mut y: Vec<f32> = pw.clone();
            normalise(level, &mut y, &ab);
            let got = (total, pw, ab, out, y);
            match &want {
                None => want = Some(got),
                Some(w) => {
                    assert!((w.0 - got.0).abs() < 1e-9 * w.0, "{level:?}");
                    assert_eq!(w.1, got.1, "{level:?}");
                    assert_eq!(w.2, got.2, "{level:?}");
                    assert_eq!(w.3, got.3, "{level:?}");
                    assert_eq!(w.4, got.4, "{level:?}");
                }
            }
        }
    }
}
