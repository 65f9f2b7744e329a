//! `LogMelNode`: Whisper's log-mel spectrogram (openai-whisper `log_mel_spectrogram`, HF
//! `WhisperFeatureExtractor`): 16 kHz mono in, `frames × n_mels` features out, 100 frames/s.
//!
//! n_fft 400, hop 160, periodic Hann, centred frames with 200 samples of reflect padding and the
//! last frame dropped, Slaney mel filters, power spectrum, `log10(max(x, 1e-10))`, then Whisper's
//! normalisation `(max(x, m − 8) + 4) / 4` where `m` is the maximum of a 30 s window (HF) or of
//! the whole input (openai-whisper), as `normalize` says. Algorithm and measured parity:
//! `docs/nodes.md#logmelnode`; numpy twin: `python/remotemedia/_pure/features.py`.

use super::params::node_params;
use super::lane_fft::{LaneMelBank, LaneRealFft, LANES, MAX_LANES};
use super::spectral::{log10_floored, mono_samples, FrameCount, FrameStream, Framing, MelBank, PowerSpectrum, Reflect};
use super::{expect_audio, Inputs, Node, NodeType, ParamKind};
use crate::data::{AudioBuffer, Features, Payload};
use crate::error::NodeError;

pub const TYPE_NAME: &str = "LogMelNode";

/// Whisper's fixed transform: 16 kHz, 25 ms frames every 10 ms.
pub const SAMPLE_RATE: u32 = 16000;
pub const N_FFT: usize = 400;
pub const HOP: usize = 160;
/// Frames in Whisper's 30 s window (480,000 samples).
pub const WINDOW_FRAMES: usize = 3000;
/// Frames per second.
pub const FRAME_RATE: f64 = (SAMPLE_RATE as usize / HOP) as f64;
/// Powers are clamped to this before the log (−100 dB).
const POWER_FLOOR: f32 = 1e-10;
/// The normalisation floor sits this many decades below the maximum.
const DYNAMIC_RANGE: f32 = 8.0;
node_params! {
    /// `LogMelNode`'s params.
    pub struct LogMelParams {
        n_mels: i64 = 80, ParamKind::IntChoice(&[80, 128]),
            "mel bands: 80 (Whisper tiny to large-v2) or 128 (large-v3)";
        pad_or_trim_s: Option<f64> = None, ParamKind::Float { min: 0.01, max: 3600.0 },
            "pad the input with zeros or cut it to exactly this many seconds first (30: Whisper's 3000 frames); absent: the input as it is";
        normalize: &'static str = "window", ParamKind::Choice(&["window", "whole", "none"]),
            "floor at max - 8 then (x + 4) / 4, with the max of each 30 s window (HF WhisperFeatureExtractor), of the whole input (openai-whisper log_mel_spectrogram), or no normalisation (log10 mel only)";
    }
}

impl LogMelParams {
    fn framing(&self) -> Framing {
        Framing {
            len: N_FFT,
            shift: HOP,
            offset: -(N_FFT as i64 / 2),
            reflect: Reflect::Numpy,
            count: FrameCount::Whisper,
            exact_len: self.pad_or_trim_s.map(|s| (s * SAMPLE_RATE as f64).round() as usize),
        }
    }
}

/// The largest of `values` (−∞ for none).
fn max_of(values: &[f32]) -> f32 {
    #[inline(always)]
    fn body(values: &[f32]) -> f32 {
        // Eight running maxima: a loop the compiler vectorises (one `fold` is a serial chain).
        let mut m = [f32::NEG_INFINITY; 8];
        let mut chunks = values.chunks_exact(8);
        for c in &mut chunks {
            for (m, &x) in m.iter_mut().zip(c) {
                *m = m.max(x);
            }
        }
        chunks.remainder().iter().chain(&m).copied().fold(f32::NEG_INFINITY, f32::max)
    }
    #[cfg(target_arch = "x86_64")]
    if crate::nodes::cpu::simd().avx2 {
        #[target_feature(enable = "avx2")]
        unsafe fn wide(values: &[f32]) -> f32 {
            body(values)
        }
        // SAFETY: the CPU has AVX2.
        return unsafe { wide(values) };
    }
    body(values)
}

/// Whisper's normalisation, in place, over one window of log10 values whose maximum is `max`.
fn normalize(values: &mut [f32], max: f32) {
    #[inline(always)]
    fn body(values: &mut [f32], floor: f32) {
        for x in values {
            // `/ 4` is `* 0.25` exactly; the multiply vectorises where a divide would not pay.
            *x = (x.max(floor) + 4.0) * 0.25;
        }
    }
    let floor = max - DYNAMIC_RANGE;
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

/// The frame transform: frames in, `log10(max(mel, 1e-10))` rows out (frames × n_mels).
enum Transform {
    /// 16 frames per FFT (AVX-512F) or [`LANES`] (AVX2 and FMA), the mel product and the log
    /// fused after it; with the 16-lane plan, an 8-lane one for groups of up to 8 frames (the
    /// edges and the ends of runs: a 16-lane transform of 2 frames is half wasted, and the two
    /// kernels give the same bits).
    Lanes(LaneRealFft, Option<LaneRealFft>, LaneMelBank),
    /// One realfft per frame, its windowed frame and power spectrum (other CPUs).
    PerFrame(PowerSpectrum, Vec<f32>, Vec<f32>),
}

impl Transform {
    /// Frames per call of [`rows`](Transform::rows) (the per-frame path takes them in groups too).
    fn lanes(&self) -> usize {
        match self {
            Transform::Lanes(fft, ..) => fft.lanes(),
            Transform::PerFrame(..) => LANES,
        }
    }

    /// The smaller group [`rows`](Transform::rows) takes at its own cost: [`LANES`] where a
    /// narrower plan sits beside the wide one, else [`lanes`](Transform::lanes).
    fn narrow_lanes(&self) -> usize {
        match self {
            Transform::Lanes(_, Some(narrow), _) => narrow.lanes(),
            _ => self.lanes(),
        }
    }

    /// The rows of `count` frames (frame `t` at `frames[t * hop..][..400]`; the lane transform
    /// reads [`lanes`](Transform::lanes) frames whatever `count`), appended to `out`. Returns
    /// their maximum.
    fn rows(&mut self, frames: &[f32], hop: usize, count: usize, window: &[f32], bank: &MelBank, out: &mut Vec<f32>) -> f32 {
        match self {
            Transform::Lanes(_, Some(narrow), lane_bank) if count <= narrow.lanes() => {
                narrow.mel_log10(frames, hop, count, window, lane_bank, POWER_FLOOR, out)
            }
            Transform::Lanes(fft, _, lane_bank) => fft.mel_log10(frames, hop, count, window, lane_bank, POWER_FLOOR, out),
            Transform::PerFrame(spectrum, scratch, power) => {
                let start = out.len();
                let n_mels = bank.filters();
                for t in 0..count {
                    let frame = &frames[t * hop..t * hop + N_FFT];
                    for ((s, x), w) in scratch.iter_mut().zip(frame).zip(window) {
                        *s = x * w;
                    }
                    spectrum.power(scratch, power, false);
                    out.resize(out.len() + n_mels, 0.0);
                    let row = out.len() - n_mels;
                    bank.apply_block(power, power.len(), &mut out[row..]);
                }
                log10_floored(&mut out[start..], POWER_FLOOR);
                max_of(&out[start..])
            }
        }
    }
}

/// The transform with its state: one instance per pipeline worker, or per streaming session.
pub struct LogMel {
    params: LogMelParams,
    n_mels: usize,
    frames: FrameStream,
    fft: Transform,
    bank: MelBank,
    /// Periodic Hann of 400 points.
    window: Vec<f32>,
    /// Scratch: up to [`MAX_LANES`] frames that did not lie in place in the samples (the edges,
    /// and the ends of runs), copied frame after frame (`lanes × 400`).
    lanes: Vec<f32>,
    /// log10 frames waiting for their window to complete (normalize "window" / "whole").
    held: Vec<f32>,
    /// The maximum of `held` (normalize "whole").
    held_max: f32,
}

impl LogMel {
    pub fn new(params: LogMelParams) -> LogMel {
        LogMel::with_transform(params, Some(None))
    }

    /// `lanes`: `Some(None)` the widest lane FFT the CPU has, `Some(Some(w))` the kernel of `w`
    /// lanes if it has that one, `None` realfft per frame (the tests compare them).
    fn with_transform(params: LogMelParams, lanes: Option<Option<usize>>) -> LogMel {
        let n_mels = params.n_mels as usize;
        let window = (0..N_FFT)
            .map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos()) as f32)
            .collect();
        let bank = MelBank::slaney(SAMPLE_RATE as f64, N_FFT, n_mels, 0.0, SAMPLE_RATE as f64 / 2.0);
        let lane_bank = LaneMelBank::new(bank.rows(), bank.bins());
        LogMel {
            frames: FrameStream::new(params.framing()),
            fft: match (lanes.and_then(|w| w.map_or_else(|| LaneRealFft::new(N_FFT), |w| LaneRealFft::with_lanes(N_FFT, w))), lane_bank) {
                (Some(fft), Some(lane_bank)) => {
                    let narrow = (fft.lanes() > LANES).then(|| LaneRealFft::with_lanes(N_FFT, LANES)).flatten();
                    Transform::Lanes(fft, narrow, lane_bank)
                }
                _ => Transform::PerFrame(PowerSpectrum::new(N_FFT), vec![0.0; N_FFT], vec![0.0; N_FFT / 2 + 1]),
            },
            bank,
            window,
            lanes: vec![0.0; MAX_LANES * N_FFT],
            held: Vec::new(),
            held_max: f32::NEG_INFINITY,
            n_mels,
            params,
        }
    }

    /// The mel filters (n_mels × 201), as librosa gives them.
    pub fn filters(&self) -> &MelBank {
        &self.bank
    }

    /// The log10 mel rows of the frames that the next samples complete (`None`: the end of the
    /// signal, its last frames), appended to `logs`. Returns their maximum.
    fn transform(&mut self, samples: Option<&[f32]>, logs: &mut Vec<f32>) -> f32 {
        // Room for every frame up to the end of the signal if it ended after these samples: the
        // end's frames then land in the same buffer (a `reserve` by the next call would move the
        // rows written so far: 1 MB at 30 s, 7 % of a call through Python).
        logs.reserve(self.frames.frames_to_come(samples.map_or(0, |s| s.len())) * self.n_mels);
        let (width, narrow) = (self.fft.lanes(), self.fft.narrow_lanes());
        let (fft, window, lanes, bank) = (&mut self.fft, &self.window, &mut self.lanes, &self.bank);
        let mut max = f32::NEG_INFINITY;
        // Frames in place in the samples go through the transform `width` at a time where they
        // lie (a run's last `narrow` to `width` frames through the narrow plan); the others
        // (edges, the ends of runs) are gathered in `lanes` first.
        let mut gathered = 0;
        let mut run = |frames: &[f32], count: usize| {
            let mut i = 0;
            while i < count {
                if gathered == 0 && count - i >= narrow {
                    let group = if count - i >= width { width } else { narrow };
                    max = max.max(fft.rows(&frames[i * HOP..], HOP, group, window, bank, logs));
                    i += group;
                    continue;
                }
                lanes[gathered * N_FFT..(gathered + 1) * N_FFT].copy_from_slice(&frames[i * HOP..i * HOP + N_FFT]);
                gathered += 1;
                i += 1;
                if gathered == width {
                    max = max.max(fft.rows(lanes, N_FFT, width, window, bank, logs));
                    gathered = 0;
                }
            }
        };
        match samples {
            Some(s) => self.frames.push_runs(s, &mut run),
            None => self.frames.finish_runs(&mut run),
        }
        if gathered > 0 {
            max = max.max(fft.rows(lanes, N_FFT, gathered, window, bank, logs));
        }
        max
    }

    /// Transforms the next samples of the signal; `None` ends it. Returns the frames now final:
    /// those complete so far, normalised once their window is complete.
    pub fn push(&mut self, samples: Option<&[f32]>) -> Features {
        let end = samples.is_none();
        let mode = self.params.normalize;
        let mut logs = if mode == "none" { Vec::new() } else { std::mem::take(&mut self.held) };
        let max = self.transform(samples, &mut logs);
        let values = match mode {
            "none" => logs,
            "whole" => {
                self.held_max = self.held_max.max(max);
                if end {
                    if !logs.is_empty() {
                        normalize(&mut logs, self.held_max);
                    }
                    self.held_max = f32::NEG_INFINITY;
                    logs
                } else {
                    self.held = logs;
                    Vec::new()
                }
            }
            _ => {
                // The whole windows go out; the frames of the window still open stay.
                let row = WINDOW_FRAMES * self.n_mels;
                let ready = if end { logs.len() } else { logs.len() / row * row };
                if ready == 0 {
                    // The common streaming case, no window complete: the frames stay where they
                    // are (a `split_off(0)` would copy the open window on every push).
                    self.held = logs;
                    Vec::new()
                } else {
                    self.held = logs.split_off(ready);
                    for w in logs.chunks_mut(row) {
                        normalize(w, max_of(w));
                    }
                    logs
                }
            }
        };
        Features { values, bins: self.n_mels, frame_rate: FRAME_RATE }
    }

    /// Forgets the signal so far.
    pub fn reset(&mut self) {
        self.frames.reset();
        self.held.clear();
        self.held_max = f32::NEG_INFINITY;
    }

    /// The features of one whole signal.
    pub fn whole(&mut self, samples: &[f32]) -> Features {
        self.reset();
        let mut logs = Vec::new();
        let max = self.transform(Some(samples), &mut logs);
        let max = max.max(self.transform(None, &mut logs));
        match self.params.normalize {
            "none" => {}
            "whole" if !logs.is_empty() => normalize(&mut logs, max),
            "whole" => {}
            _ => {
                for w in logs.chunks_mut(WINDOW_FRAMES * self.n_mels) {
                    normalize(w, max_of(w));
                }
            }
        }
        Features { values: logs, bins: self.n_mels, frame_rate: FRAME_RATE }
    }
}

/// The samples of a 16 kHz mono buffer, or the error that says what to put before the node.
fn input(payload: Payload) -> Result<AudioBuffer, NodeError> {
    let audio = expect_audio(payload)?;
    if audio.sample_rate != SAMPLE_RATE {
        return Err(NodeError::invalid_input(format!(
            "{TYPE_NAME} needs 16000 Hz audio (Whisper's rate), received {} Hz; put an AudioResampleNode \
             (output_rate: 16000) before it",
            audio.sample_rate
        )));
    }
    Ok(audio)
}

struct LogMelNode {
    mel: LogMel,
}

impl LogMelNode {
    fn push_chunk(&mut self, inputs: Inputs) -> Result<Features, NodeError> {
        let audio = input(inputs.one()?)?;
        let samples = mono_samples(&audio, TYPE_NAME)?;
        Ok(self.mel.push(Some(&samples)))
    }
}

impl Node for LogMelNode {
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        let audio = input(inputs.one()?)?;
        let samples = mono_samples(&audio, TYPE_NAME)?;
        Ok(Payload::Features(self.mel.whole(&samples)))
    }

    fn push(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        self.push_chunk(inputs).map(Payload::Features)
    }

    /// The frames that reach past the end (reflect padding, or zeros up to `pad_or_trim_s`) and
    /// the frames still waiting for their window's maximum.
    fn finish(&mut self, inputs: Option<Inputs>) -> Result<Option<Payload>, NodeError> {
        let mut out = match inputs {
            Some(i) => self.push_chunk(i)?,
            None => Features::empty(self.mel.n_mels, FRAME_RATE),
        };
        let rest = self.mel.push(None);
        out.values.extend_from_slice(&rest.values);
        Ok(Some(Payload::Features(out)))
    }
}

pub fn node_type() -> NodeType {
    NodeType {
        params: LogMelParams::specs(),
        stateful: true,
        ..NodeType::new(
            TYPE_NAME,
            "Whisper's log-mel spectrogram: 16 kHz mono audio in, features out (frames x n_mels, 100 \
             frames/s; .T is Whisper's n_mels x frames). n_fft 400, hop 160, periodic Hann, reflect-padded \
             centred frames (last one dropped), Slaney mel filters, log10, floor at max - 8, (x + 4) / 4.",
            |cfg| Ok(Box::new(LogMelNode { mel: LogMel::new(LogMelParams::from_params(cfg.params)?) })),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(n: usize) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * 0.031).sin() * 0.4 + ((i * 7919) % 101) as f32 * 1e-3).collect()
    }

    #[test]
    fn frame_counts_are_whispers() {
        for (n, pad, frames) in [(159, None, 0), (160, None, 1), (16000, None, 100), (1000, Some(30.0), 3000), (600_000, Some(30.0), 3000)] {
            let mut m = LogMel::new(LogMelParams { pad_or_trim_s: pad, ..LogMelParams::default() });
            assert_eq!(m.whole(&signal(n)).frames(), frames, "{n} samples, pad {pad:?}");
        }
    }

    /// Streams of odd chunk sizes give the whole buffer's frames, in every normalisation, across a
    /// 30 s window boundary.
    #[test]
    fn streamed_frames_equal_whole_buffer_frames() {
        let x = signal(16000 * 31 + 77);
        for normalize in ["window", "whole", "none"] {
            let params = LogMelParams { normalize, ..LogMelParams::default() };
            let whole = LogMel::new(params.clone()).whole(&x);
            for chunk in [333, 4000] {
                let mut m = LogMel::new(params.clone());
                let mut got = Vec::new();
                for c in x.chunks(chunk) {
                    got.extend(m.push(Some(c)).values);
                }
                got.extend(m.push(None).values);
                assert_eq!(got, whole.values, "{normalize}, chunks of {chunk}");
            }
        }
    }

    /// The lane FFT (where this CPU has AVX2 and FMA) against realfft per frame, in every
    /// normalisation, with a partial last set of lanes: within the 1e-4 parity budget (3.3e-5
    /// measured: two f32 FFTs round differently, and the values 8 decades under the maximum keep
    /// their relative error).
    #[test]
    fn lane_fft_gives_realffts_features() {
        let x = signal(16000 * 3 + 1234);
        for normalize in ["window", "whole", "none"] {
            let params = LogMelParams { normalize, ..LogMelParams::default() };
            let lanes = LogMel::new(params.clone()).whole(&x);
            let per_frame = LogMel::with_transform(params, None).whole(&x);
            assert_eq!(lanes.frames(), per_frame.frames());
            // "none" keeps values far under the maximum, where two f32 FFTs differ relatively
            // (1.3e-4 in log10 here): compare those the normalisation keeps, on its scale (/ 4).
            let (floor, scale) = match normalize {
                "none" => (max_of(&per_frame.values) - DYNAMIC_RANGE, 4.0),
                _ => (f32::NEG_INFINITY, 1.0),
            };
            let worst = lanes
                .values
                .iter()
                .zip(&per_frame.values)
                .map(|(a, b)| (a.max(floor) - b.max(floor)).abs() / scale)
                .fold(0.0, f32::max);
            assert!(worst < 1e-4, "{normalize}: {worst}");
        }
    }

    /// The AVX-512 kernel (16 frames at once) gives the AVX2 kernel's features bit for bit, whole
    /// and streamed in chunks that leave partial groups of lanes, 80 and 128 bins, padded to 30 s
    /// or not. Says which kernels ran (on a CPU without AVX-512F only the AVX2 one exists, and the
    /// test says it compared nothing).
    #[test]
    fn avx512_kernel_gives_the_avx2_kernels_features() {
        if LaneRealFft::with_lanes(N_FFT, MAX_LANES).is_none() || LaneRealFft::with_lanes(N_FFT, LANES).is_none() {
            eprintln!("no AVX-512F (or no AVX2) on this CPU: the 16-lane kernel did not run, nothing compared");
            return;
        }
        eprintln!("comparing the AVX-512 kernel (16 lanes) with the AVX2 kernel (8 lanes)");
        let x = signal(16000 * 31 + 1234);
        for (n_mels, pad) in [(80, None), (128, None), (80, Some(30.0))] {
            for normalize in ["window", "whole", "none"] {
                let params = LogMelParams { normalize, n_mels, pad_or_trim_s: pad, ..LogMelParams::default() };
                let mut wide = LogMel::with_transform(params.clone(), Some(Some(MAX_LANES)));
                let mut narrow = LogMel::with_transform(params.clone(), Some(Some(LANES)));
                assert!(matches!(&wide.fft, Transform::Lanes(f, Some(n), _) if f.lanes() == MAX_LANES && n.lanes() == LANES));
                assert!(matches!(&narrow.fft, Transform::Lanes(f, None, _) if f.lanes() == LANES));
                let want = narrow.whole(&x);
                assert_eq!(wide.whole(&x).values, want.values, "{n_mels} mels, pad {pad:?}, {normalize}, whole");
                let mut got = Vec::new();
                for c in x.chunks(16000 + 333) {
                    got.extend(wide.push(Some(c)).values);
                }
                got.extend(wide.push(None).values);
                assert_eq!(got, want.values, "{n_mels} mels, pad {pad:?}, {normalize}, streamed");
            }
        }
    }

    #[test]
    fn silence_is_the_floor() {
        let f = LogMel::new(LogMelParams::default()).whole(&vec![0.0; 1600]);
        assert_eq!(f.values, vec![-1.5f32; 10 * 80]);
    }
}
