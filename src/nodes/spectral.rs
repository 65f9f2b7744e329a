//! The frame transform shared by `LogMelNode`, `FbankNode` and `MfccNode`: framing a stream
//! (centre padding by reflection, end-of-stream padding at `finish`), the real FFT's power
//! spectrum, and mel filter banks (Slaney as librosa and Whisper, HTK-style as Kaldi) applied to a
//! whole block of frames as one banded matrix product.

use std::borrow::Cow;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::data::{AudioBuffer, Samples};
use crate::error::NodeError;

// ---- input ----

/// The buffer as mono f32 samples for a feature node: f32 is read in place, i16 / i32 are scaled by
/// the project convention (1/32768, 1/2³¹). Several channels, NaN or infinity are refused: features
/// of a silently mixed-down or corrupted signal would look valid and be wrong.
pub fn mono_samples<'a>(audio: &'a AudioBuffer, node: &str) -> Result<Cow<'a, [f32]>, NodeError> {
    if audio.channels != 1 {
        return Err(NodeError::invalid_input(format!(
            "{node} needs mono audio, received {} channels; pick or mix down one channel before it",
            audio.channels
        )));
    }
    let (samples, known_finite) = match &audio.samples {
        Samples::F32(v) => (Cow::Borrowed(v.as_slice()), v.known_finite()),
        other => (Cow::Owned(crate::nodes::format::to_f32(other)), false),
    };
    // A caller's f32 array was scanned where it entered the engine (a second scan of 30 s was
    // ~3 % of a LogMelNode call).
    if known_finite {
        return Ok(samples);
    }
    if let Some(i) = crate::nodes::first_non_finite(&samples) {
        return Err(NodeError::invalid_input(format!("{node} input has a non-finite sample ({}) at index {i}", samples[i])));
    }
    Ok(samples)
}

// ---- framing ----

/// How samples outside the signal are read when a frame reaches past either end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reflect {
    /// Mirror without repeating the edge sample (numpy's and torch's `reflect`): -1 → 1.
    Numpy,
    /// Mirror repeating the edge sample (Kaldi's `snip_edges = false`): -1 → 0.
    Kaldi,
}

impl Reflect {
    /// The index in `0..n` that position `i` reads (n ≥ 1), reflecting as often as needed.
    pub fn index(self, i: i64, n: usize) -> usize {
        let n = n as i64;
        match self {
            Reflect::Numpy if n == 1 => 0,
            Reflect::Numpy => {
                let period = 2 * (n - 1);
                let m = i.rem_euclid(period);
                (if m >= n { period - m } else { m }) as usize
            }
            Reflect::Kaldi => {
                let m = i.rem_euclid(2 * n);
                (if m >= n { 2 * n - 1 - m } else { m }) as usize
            }
        }
    }
}

/// How many frames a signal of `n` samples has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameCount {
    /// `n / shift`: centred frames with the last one dropped (Whisper).
    Whisper,
    /// Frames that fit whole: `1 + (n - len) / shift`, none when `n < len` (Kaldi `snip_edges`).
    KaldiSnip,
    /// `(n + shift/2) / shift`, the frames centred on each shift (Kaldi without `snip_edges`).
    KaldiCentred,
}

/// Where frames sit in a signal: frame `i` covers samples `i*shift + offset ..+ len`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Framing {
    pub len: usize,
    pub shift: usize,
    /// Start of frame 0 (negative: it reaches before the signal).
    pub offset: i64,
    pub reflect: Reflect,
    pub count: FrameCount,
    /// The signal is exactly this many samples: longer input is cut, shorter is padded with zeros
    /// at `finish` (Whisper's `pad_or_trim`).
    pub exact_len: Option<usize>,
}

impl Framing {
    /// Frames in a signal of `n` samples.
    pub fn frames(&self, n: usize) -> usize {
        let n = self.exact_len.unwrap_or(n);
        match self.count {
            FrameCount::Whisper => n / self.shift,
            FrameCount::KaldiSnip if n < self.len => 0,
            FrameCount::KaldiSnip => 1 + (n - self.len) / self.shift,
            FrameCount::KaldiCentred => (n + self.shift / 2) / self.shift,
        }
    }

    fn start(&self, frame: usize) -> i64 {
        frame as i64 * self.shift as i64 + self.offset
    }
}

/// Cuts a stream into frames: [`push`](FrameStream::push) hands over every frame whose samples
/// have all arrived, [`finish`](FrameStream::finish) the last ones, read with the end-of-signal
/// reflection (or zero padding). The frames of all calls are those of the whole signal.
pub struct FrameStream {
    framing: Framing,
    /// Samples from absolute index `base` on.
    kept: Vec<f32>,
    base: usize,
    /// Samples received so far (after any cut to `exact_len`).
    received: usize,
    /// The next frame to hand over.
    next: usize,
    /// Scratch: a frame that reaches past the samples, assembled.
    frame: Vec<f32>,
    /// Scratch: the copy [`push`](FrameStream::push) hands over.
    copy: Vec<f32>,
}

impl FrameStream {
    pub fn new(framing: Framing) -> FrameStream {
        FrameStream {
            framing,
            kept: Vec::new(),
            base: 0,
            received: 0,
            next: 0,
            frame: vec![0.0; framing.len],
            copy: vec![0.0; framing.len],
        }
    }

    pub fn framing(&self) -> &Framing {
        &self.framing
    }

    /// Frames handed over so far.
    pub fn frames_done(&self) -> usize {
        self.next
    }

    /// The most frames the next [`push_runs`](FrameStream::push_runs) of `more` samples, or
    /// the [`finish_runs`](FrameStream::finish_runs) after it, can hand over: those of the signal
    /// if it ended there (what a caller reserves room for, so that its buffer is not moved while
    /// it grows).
    pub fn frames_to_come(&self, more: usize) -> usize {
        let room = self.framing.exact_len.map_or(usize::MAX, |l| l.saturating_sub(self.received));
        self.framing.frames(self.received + more.min(room)).saturating_sub(self.next)
    }

    /// Adds samples; calls `emit` with each frame now complete, in order. The frame is a scratch
    /// copy the caller may modify.
    pub fn push(&mut self, chunk: &[f32], mut emit: impl FnMut(&mut [f32])) {
        let mut copy = std::mem::take(&mut self.copy);
        self.push_frames(chunk, |f| {
            copy.copy_from_slice(f);
            emit(&mut copy)
        });
        self.copy = copy;
    }

    /// Ends the signal as [`finish_frames`](FrameStream::finish_frames), each frame a scratch copy
    /// the caller may modify.
    pub fn finish(&mut self, mut emit: impl FnMut(&mut [f32])) {
        let mut copy = std::mem::take(&mut self.copy);
        self.finish_frames(|f| {
            copy.copy_from_slice(f);
            emit(&mut copy)
        });
        self.copy = copy;
    }

    /// Adds samples; calls `emit` with each frame now complete, in order: read in place where it
    /// lies inside the samples (no copy), else assembled in a scratch frame.
    pub fn push_frames(&mut self, chunk: &[f32], mut emit: impl FnMut(&[f32])) {
        let (len, shift) = (self.framing.len, self.framing.shift);
        self.push_runs(chunk, |run, count| (0..count).for_each(|i| emit(&run[i * shift..i * shift + len])));
    }

    /// [`push_frames`](FrameStream::push_frames) a run of frames at a time: `emit(run, count)`
    /// gets `count` consecutive frames, frame `i` at `run[i * shift..][..len]`. The frames that
    /// lie inside the samples come as one run read in place, so a caller that transforms several
    /// frames at once reads them where they are; the others come one per run.
    pub fn push_runs(&mut self, chunk: &[f32], mut emit: impl FnMut(&[f32], usize)) {
        let room = self.framing.exact_len.map_or(usize::MAX, |l| l.saturating_sub(self.received));
        let chunk = &chunk[..chunk.len().min(room)];
        // A whole buffer (nothing kept yet) is read in place: no copy of the input.
        let fresh = self.kept.is_empty() && self.base == self.received;
        if !fresh {
            self.kept.extend_from_slice(chunk);
        }
        let base = self.base;
        self.received += chunk.len();
        // Past a cut to `exact_len` there are no frames to hand over.
        let limit = self.framing.exact_len.map_or(usize::MAX, |l| self.framing.frames(l));
        let data: &[f32] = if fresh { chunk } else { &self.kept };
        while self.next < limit {
            let start = self.framing.start(self.next);
            // A frame that ends inside what has arrived is one of the finished signal's frames;
            // one that reaches before the start needs every sample its reflection reads (a
            // reflection around an end not yet known would read the wrong ones).
            let ready = start + self.framing.len as i64 <= self.received as i64
                && (start >= 0 || (-start) as usize + 1 <= self.received);
            if !ready {
                break;
            }
            let (len, shift) = (self.framing.len, self.framing.shift);
            if start >= base as i64 {
                // In place, with every later frame that ends inside what has arrived.
                let a = start as usize - base;
                let count = ((self.received - start as usize - len) / shift + 1).min(limit - self.next);
                emit(&data[a..a + (count - 1) * shift + len], count);
                self.next += count;
                continue;
            }
            emit(read_frame(&self.framing, data, base, start, self.received, &mut self.frame, None), 1);
            self.next += 1;
        }
        // Keep what the frames still to come may read: from the next frame's start, and the last
        // two frame lengths (the end reflection of the final frames reads back that far).
        let next_start = self.framing.start(self.next).max(0) as usize;
        let reach = self.received.saturating_sub(2 * (self.framing.len + self.framing.shift));
        let keep_from = next_start.min(reach).max(base);
        if fresh {
            self.kept.clear();
            self.kept.extend_from_slice(&chunk[keep_from - base..]);
        } else {
            self.kept.drain(..keep_from - base);
        }
        self.base = keep_from;
    }

    /// Ends the signal: hands over its remaining frames, reading past its end by reflection (or
    /// zeros up to `exact_len`), and resets for a new signal.
    pub fn finish_frames(&mut self, mut emit: impl FnMut(&[f32])) {
        self.finish_runs(|frame, _| emit(frame))
    }

    /// [`finish_frames`](FrameStream::finish_frames) as [`push_runs`](FrameStream::push_runs)
    /// hands them over (a frame per run).
    pub fn finish_runs(&mut self, mut emit: impl FnMut(&[f32], usize)) {
        let total = self.framing.frames(self.received);
        let n = self.framing.exact_len.unwrap_or(self.received);
        while self.next < total {
            let start = self.framing.start(self.next);
            emit(read_frame(&self.framing, &self.kept, self.base, start, self.received, &mut self.frame, Some(n)), 1);
            self.next += 1;
        }
        self.reset();
    }

    pub fn reset(&mut self) {
        self.kept.clear();
        self.base = 0;
        self.received = 0;
        self.next = 0;
    }
}

/// The frame starting at absolute sample `start`, from `data` (which starts at absolute index
/// `base`, `received` samples having arrived in all). `end`: the signal's final length, for the
/// last frames (zeros from `received` to `end`, reflection around `end`); `None` before it is
/// known. A frame inside the data is borrowed from it; one that reaches past it is assembled in
/// `scratch`.
fn read_frame<'a>(
    framing: &Framing,
    data: &'a [f32],
    base: usize,
    start: i64,
    received: usize,
    scratch: &'a mut [f32],
    end: Option<usize>,
) -> &'a [f32] {
    let len = scratch.len();
    let n = end.unwrap_or(received);
    if start >= base as i64 && start as usize + len <= received {
        let a = start as usize - base;
        return &data[a..a + len];
    }
    for (j, o) in scratch.iter_mut().enumerate() {
        let i = framing.reflect.index(start + j as i64, n.max(1));
        *o = if n == 0 || i >= received || i < base { 0.0 } else { data[i - base] };
    }
    scratch
}

// ---- power spectrum ----

/// A planned real FFT of `n_fft` points and its buffers: frames in, power spectra `|X_k|²`,
/// k = 0..=n_fft/2, out.
pub struct PowerSpectrum {
    r2c: Arc<dyn RealToComplex<f32>>,
    input: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
}

impl PowerSpectrum {
    pub fn new(n_fft: usize) -> PowerSpectrum {
        let r2c = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        let input = r2c.make_input_vec();
        let spectrum = r2c.make_output_vec();
        let scratch = r2c.make_scratch_vec();
        PowerSpectrum { r2c, input, spectrum, scratch }
    }

    pub fn n_fft(&self) -> usize {
        self.input.len()
    }

    /// Bins per spectrum: `n_fft / 2 + 1`.
    pub fn bins(&self) -> usize {
        self.spectrum.len()
    }

    /// The power spectrum of `frame` (at most `n_fft` samples, zero-padded) into `out`
    /// (`bins()` values). `sqrt` gives magnitudes instead.
    pub fn power(&mut self, frame: &[f32], out: &mut [f32], sqrt: bool) {
        let n = frame.len();
        self.input[..n].copy_from_slice(frame);
        self.input[n..].fill(0.0);
        // Lengths are the planner's own, so the transform cannot fail.
        let _ = self.r2c.process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch);
        for (o, c) in out.iter_mut().zip(&self.spectrum) {
            let p = c.re * c.re + c.im * c.im;
            *o = if sqrt { p.sqrt() } else { p };
        }
    }
}

// ---- mel filter banks ----

/// A mel filter bank as a banded matrix: filter `m` weights spectrum bins `first[m]..` with
/// `weights[m]`. Each filter covers a few bins (80 Slaney filters over 201 bins: ~400 non-zero
/// weights of 16,080), so the banded product does ~2.5 % of a dense one's work.
#[derive(Clone, Debug)]
pub struct MelBank {
    rows: Vec<(usize, Vec<f32>)>,
    bins: usize,
}

impl MelBank {
    /// Number of filters.
    pub fn filters(&self) -> usize {
        self.rows.len()
    }

    /// Each filter's first bin and its weights (its non-zero span).
    pub fn rows(&self) -> impl Iterator<Item = (usize, &[f32])> {
        self.rows.iter().map(|(first, w)| (*first, w.as_slice()))
    }

    /// Bins per spectrum.
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// The filters as a dense `filters × bins` matrix (tests, docs).
    pub fn dense(&self) -> Vec<Vec<f32>> {
        self.rows
            .iter()
            .map(|(first, w)| {
                let mut row = vec![0.0; self.bins];
                row[*first..first + w.len()].copy_from_slice(w);
                row
            })
            .collect()
    }

    /// Keeps a filter's non-zero span (rows are built one at a time: a dense bank of 1024 filters
    /// over a 262,144-point FFT would take a gigabyte).
    fn sparse(row: Vec<f32>) -> (usize, Vec<f32>) {
        match row.iter().position(|&w| w != 0.0) {
            Some(first) => {
                let last = row.iter().rposition(|&w| w != 0.0).unwrap_or(first);
                (first, row[first..=last].to_vec())
            }
            None => (0, Vec::new()),
        }
    }

    /// `out[t][m] = Σ_k spectra[t][k] · W[m][k]` for every frame `t` of the block: `spectra` is
    /// `frames × bins` (at least `bins` wide: `stride`), `out` is `frames × filters`.
    pub fn apply_block(&self, spectra: &[f32], stride: usize, out: &mut [f32]) {
        let f = self.rows.len();
        for (spec, o) in spectra.chunks_exact(stride).zip(out.chunks_exact_mut(f)) {
            for ((first, w), y) in self.rows.iter().zip(o.iter_mut()) {
                let s = &spec[*first..first + w.len()];
                *y = s.iter().zip(w).map(|(a, b)| a * b).sum();
            }
        }
    }

    /// librosa's `filters.mel(sr, n_fft, n_mels, fmin, fmax)` with its defaults (Slaney mel scale,
    /// Slaney area normalisation): the filters openai-whisper ships and HF computes. Designed in
    /// f64, stored as f32 (as Whisper's `mel_filters.npz`).
    pub fn slaney(sample_rate: f64, n_fft: usize, n_mels: usize, fmin: f64, fmax: f64) -> MelBank {
        let bins = n_fft / 2 + 1;
        let fft_freq = |k: usize| k as f64 * (sample_rate / 2.0) / (bins - 1) as f64;
        let (lo, hi) = (hz_to_mel_slaney(fmin), hz_to_mel_slaney(fmax));
        let points: Vec<f64> =
            (0..n_mels + 2).map(|i| mel_to_hz_slaney(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64)).collect();
        let rows = (0..n_mels)
            .map(|m| {
                let (left, centre, right) = (points[m], points[m + 1], points[m + 2]);
                let norm = 2.0 / (right - left);
                MelBank::sparse(
                    (0..bins)
                        .map(|k| {
                            let f = fft_freq(k);
                            let rising = (f - left) / (centre - left);
                            let falling = (right - f) / (right - centre);
                            (rising.min(falling).max(0.0) * norm) as f32
                        })
                        .collect(),
                )
            })
            .collect();
        MelBank { rows, bins }
    }

    /// Kaldi's mel banks (`MelBanks`, no VTLN warp): triangles on the mel scale
    /// `1127 ln(1 + f/700)`, equally spaced from `low_hz` to `high_hz`, unnormalised, over bins
    /// 0..n_fft/2 (the Nyquist bin gets no weight). Computed in f32 as Kaldi does.
    pub fn kaldi(sample_rate: f32, n_fft: usize, n_mels: usize, low_hz: f32, high_hz: f32) -> MelBank {
        let mel = |f: f32| 1127.0f32 * (1.0f32 + f / 700.0f32).ln();
        let fft_bins = n_fft / 2;
        let bin_width = sample_rate / n_fft as f32;
        let (lo, hi) = (mel(low_hz), mel(high_hz));
        let delta = (hi - lo) / (n_mels as f32 + 1.0);
        let rows = (0..n_mels)
            .map(|m| {
                let left = lo + m as f32 * delta;
                let centre = lo + (m as f32 + 1.0) * delta;
                let right = lo + (m as f32 + 2.0) * delta;
                let mut row = vec![0.0f32; fft_bins + 1];
                for (k, w) in row.iter_mut().take(fft_bins).enumerate() {
                    let x = mel(bin_width * k as f32);
                    if x > left && x < right {
                        *w = if x <= centre { (x - left) / (centre - left) } else { (right - x) / (right - centre) };
                    }
                }
                MelBank::sparse(row)
            })
            .collect();
        MelBank { rows, bins: fft_bins + 1 }
    }
}

/// `log10(max(x, floor))` in place, `floor` > 0 normal: the floor gives exactly
/// `log10(floor)` as computed by libm; other values go through [`ln`], in a loop the compiler
/// vectorises (8 lanes with AVX2), several times faster than libm's scalar `log10f`, within
/// 2e-7 of the exact value relatively (LogMelNode divides it by 4; parity needs 1e-4).
pub fn log10_floored(values: &mut [f32], floor: f32) {
    #[inline(always)]
    fn body(values: &mut [f32], floor: f32) {
        let at_floor = floor.log10();
        for x in values.iter_mut() {
            let v = *x;
            *x = if v > floor { ln(v) * std::f32::consts::LOG10_E } else { at_floor };
        }
    }
    #[cfg(target_arch = "x86_64")]
    if crate::nodes::cpu::simd().avx2 {
        #[target_feature(enable = "avx2")]
        unsafe fn wide(values: &mut [f32], floor: f32) {
            body(values, floor)
        }
        // SAFETY: the CPU has AVX2.
        return unsafe { wide(values, floor) };
    }
    body(values, floor)
}

/// The natural log of a positive normal `x` in plain arithmetic that vectorises (Cephes'
/// `logf`: the exponent from the bits, the mantissa folded into [√½, √2), a degree-9
/// polynomial in `m − 1`): absolute error ~1e-7.
#[inline(always)]
fn ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    // The mantissa in [0.5, 1).
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    e -= small as i32;
    let f = if small { m + m - 1.0 } else { m - 1.0 };
    let e = e as f32;
    let z = f * f;
    let y = ((((((((7.037_683_6e-2 * f - 1.151_461_e-1) * f + 1.167_699_9e-1) * f - 1.242_014_1e-1) * f
        + 1.424_932_3e-1)
        * f
        - 1.666_805_8e-1)
        * f
        + 2.000_071_4e-1)
        * f
        - 2.499_999_4e-1)
        * f
        + 3.333_333_1e-1)
        * f
        * z;
    let y = y + -2.121_944_4e-4 * e - 0.5 * z;
    f + y + 0.693_359_375 * e
}

/// Slaney's mel scale (librosa `htk=False`): linear below 1 kHz, logarithmic above.
fn hz_to_mel_slaney(f: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    if f >= 1000.0 {
        15.0 + (f / 1000.0).ln() / (6.4f64.ln() / 27.0)
    } else {
        f / F_SP
    }
}

fn mel_to_hz_slaney(m: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    if m >= 15.0 {
        1000.0 * ((6.4f64.ln() / 27.0) * (m - 15.0)).exp()
    } else {
        F_SP * m
    }
}

/// The lowest number of filters a Kaldi mel bank needs so that each filter covers at least one
/// FFT bin; `None` when every filter does. Kaldi aborts in that case; the nodes report it.
pub fn empty_filter(bank: &MelBank) -> Option<usize> {
    bank.rows.iter().position(|(_, w)| w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflections_match_numpy_and_kaldi() {
        // np.pad([0,1,2,3], 5, mode="reflect") -> [1,2,3,2,1 | 0,1,2,3 | 2,1,0,1,2]
        let numpy: Vec<usize> = (-5..9).map(|i| Reflect::Numpy.index(i, 4)).collect();
        assert_eq!(numpy, [1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2]);
        // Kaldi: -1 -> 0, -2 -> 1; n -> n-1.
        let kaldi: Vec<usize> = (-5..9).map(|i| Reflect::Kaldi.index(i, 4)).collect();
        assert_eq!(kaldi, [3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0]);
    }

    #[test]
    fn streamed_frames_equal_whole_buffer_frames() {
        let signal: Vec<f32> = (0..2345).map(|i| ((i * 7919) % 1000) as f32).collect();
        let framings = [
            Framing { len: 400, shift: 160, offset: -200, reflect: Reflect::Numpy, count: FrameCount::Whisper, exact_len: None },
            Framing { len: 400, shift: 160, offset: -200, reflect: Reflect::Numpy, count: FrameCount::Whisper, exact_len: Some(3000) },
            Framing { len: 400, shift: 160, offset: -200, reflect: Reflect::Numpy, count: FrameCount::Whisper, exact_len: Some(1000) },
            Framing { len: 400, shift: 160, offset: 0, reflect: Reflect::Kaldi, count: FrameCount::KaldiSnip, exact_len: None },
            Framing { len: 400, shift: 160, offset: 80 - 200, reflect: Reflect::Kaldi, count: FrameCount::KaldiCentred, exact_len: None },
        ];
        for framing in framings {
            let mut whole = Vec::new();
            let mut s = FrameStream::new(framing);
            s.push(&signal, |f| whole.push(f.to_vec()));
            s.finish(|f| whole.push(f.to_vec()));
            assert_eq!(whole.len(), framing.frames(signal.len()), "{framing:?}");
            for chunk in [1, 37, 160, 333, 1000] {
                let mut streamed = Vec::new();
                let mut s = FrameStream::new(framing);
                for c in signal.chunks(chunk) {
                    s.push(c, |f| streamed.push(f.to_vec()));
                }
                s.finish(|f| streamed.push(f.to_vec()));
                assert_eq!(streamed, whole, "{framing:?} in chunks of {chunk}");
            }
        }
    }

    #[test]
    fn fast_log10_is_within_2e7_relative_of_f64_and_exact_at_the_floor() {
        let mut xs: Vec<f32> = (0..200_000).map(|i| 10f32.powf(-12.0 + i as f32 * 1e-4)).collect();
        xs.extend([1e-10, 1.0, 2.0, 0.5, f32::MAX, 0.0, 1e-38]);
        let mut ys = xs.clone();
        log10_floored(&mut ys, 1e-10);
        for (&x, &y) in xs.iter().zip(&ys) {
            let want = (x.max(1e-10) as f64).log10();
            // 2e-7 of the value (f32 itself resolves 6e-8 of it), absolute below magnitude 1.
            assert!((y as f64 - want).abs() < 2e-7 * want.abs().max(1.0), "log10({x}): {y} vs {want}");
            if x <= 1e-10 {
                assert_eq!(y, 1e-10f32.log10());
            }
        }
    }

    #[test]
    fn power_spectrum_of_a_bin_centred_tone() {
        let n = 400;
        let mut ps = PowerSpectrum::new(n);
        let frame: Vec<f32> = (0..n).map(|i| (2.0 * std::f32::consts::PI * 10.0 * i as f32 / n as f32).cos()).collect();
        let mut out = vec![0.0; ps.bins()];
        ps.power(&frame, &mut out, false);
        assert_eq!(out.len(), 201);
        // A cosine of amplitude 1 on bin 10: |X_10| = n/2.
        assert!((out[10] - (n as f32 / 2.0).powi(2)).abs() / out[10] < 1e-5, "{}", out[10]);
        assert!(out.iter().enumerate().all(|(k, &p)| k == 10 || p < 1e-3), "leakage");
    }
}
