//! `LogMelNode`: Whisper's log-mel spectrogram (openai-whisper `log_mel_spectrogram`, HF
//! `WhisperFeatureExtractor`): 16 kHz mono in, `frames × n_mels` features out, 100 frames/s.
//!
//! n_fft 400, hop 160, periodic Hann, centred frames with 200 samples of reflect padding and the
//! last frame dropped, Slaney mel filters, power spectrum, `log10(max(x, 1e-10))`, then Whisper's
//! normalisation `(max(x, m − 8) + 4) / 4` where `m` is the maximum of a 30 s window (HF) or of
//! the whole input (openai-whisper), as `normalize` says. Algorithm and measured parity:
//! `docs/nodes.md#logmelnode`; numpy twin: `python/remotemedia/_pure/features.py`.

use super::params::node_params;
use super::lane_fft::{LaneRealFft, LANES};
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
/// Frames transformed together: their spectra (bin-major, 201 × 32) and mel values stay in L1
/// from the FFT to the log, and a whole buffer allocates nothing per frame but its output.
/// A multiple of [`LANES`]: the FFT fills the block [`LANES`] frames at a time.
const BLOCK: usize = 32;
const _: () = assert!(BLOCK % LANES == 0);

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
    values.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

/// Whisper's normalisation, in place, over one window of log10 values whose maximum is `max`.
fn normalize(values: &mut [f32], max: f32) {
    let floor = max - DYNAMIC_RANGE;
    for x in values {
        *x = (x.max(floor) + 4.0) / 4.0;
    }
}

/// The mel product, log10 and the transpose back to frames × n_mels of a block's first `filled`
/// frames (`block`: their power spectra, bin-major), appended to `logs`. Returns their maximum,
/// taken while the values are in L1 (for 10 minutes of features a separate pass reads 19 MB).
fn flush_block(bank: &MelBank, block: &[f32], mels: &mut [f32], filled: usize, logs: &mut Vec<f32>) -> f32 {
    bank.apply_block_bin_major(block, BLOCK, mels);
    log10_floored(mels, POWER_FLOOR);
    let n_mels = bank.filters();
    let mut max = f32::NEG_INFINITY;
    for t in 0..filled {
        logs.extend((0..n_mels).map(|m| {
            let v = mels[m * BLOCK + t];
            max = max.max(v);
            v
        }));
    }
    max
}

/// The power spectra of up to [`LANES`] frames into the columns of a bin-major block.
enum Transform {
    /// [`LANES`] frames per FFT (AVX2 and FMA).
    Lanes(LaneRealFft),
    /// One realfft per frame, and its windowed frame and power spectrum (other CPUs).
    PerFrame(PowerSpectrum, Vec<f32>),
}

impl Transform {
    /// `frames`: `LANES × 400`, the first `count` of them in use; their windowed power spectra
    /// go to `block[k * BLOCK + t]`, frame `t`, bin `k`.
    fn power(&mut self, frames: &[f32], count: usize, window: &[f32], block: &mut [f32]) {
        match self {
            // The unused lanes hold stale frames: their spectra are computed and ignored.
            Transform::Lanes(fft) => fft.power(frames, window, block, BLOCK),
            Transform::PerFrame(spectrum, scratch) => {
                let mut power = [0.0f32; N_FFT / 2 + 1];
                for (t, frame) in frames.chunks_exact(N_FFT).take(count).enumerate() {
                    for ((s, x), w) in scratch.iter_mut().zip(frame).zip(window) {
                        *s = x * w;
                    }
                    spectrum.power(scratch, &mut power, false);
                    for (k, &p) in power.iter().enumerate() {
                        block[k * BLOCK + t] = p;
                    }
                }
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
    /// Scratch: up to [`LANES`] frames waiting for the FFT, frame after frame (`LANES × 400`).
    lanes: Vec<f32>,
    /// Scratch: the power spectra of up to [`BLOCK`] frames, bin-major (`201 × BLOCK`).
    block: Vec<f32>,
    /// Scratch: their mel values, filter-major (`n_mels × BLOCK`).
    mels: Vec<f32>,
    /// log10 frames waiting for their window to complete (normalize "window" / "whole").
    held: Vec<f32>,
    /// The maximum of `held` (normalize "whole").
    held_max: f32,
}

impl LogMel {
    pub fn new(params: LogMelParams) -> LogMel {
        LogMel::with_transform(params, true)
    }

    /// `lanes`: the lane FFT where the CPU has it; false: realfft per frame (the tests compare).
    fn with_transform(params: LogMelParams, lanes: bool) -> LogMel {
        let n_mels = params.n_mels as usize;
        let window = (0..N_FFT)
            .map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos()) as f32)
            .collect();
        LogMel {
            frames: FrameStream::new(params.framing()),
            fft: match LaneRealFft::new(N_FFT).filter(|_| lanes) {
                Some(lanes) => Transform::Lanes(lanes),
                None => Transform::PerFrame(PowerSpectrum::new(N_FFT), vec![0.0; N_FFT]),
            },
            bank: MelBank::slaney(SAMPLE_RATE as f64, N_FFT, n_mels, 0.0, SAMPLE_RATE as f64 / 2.0),
            window,
            lanes: vec![0.0; LANES * N_FFT],
            block: vec![0.0; (N_FFT / 2 + 1) * BLOCK],
            mels: vec![0.0; n_mels * BLOCK],
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

    /// Transforms the next samples of the signal; `None` ends it. Returns the frames now final:
    /// those complete so far, normalised once their window is complete.
    pub fn push(&mut self, samples: Option<&[f32]>) -> Features {
        let n_mels = self.n_mels;
        let frames = samples.map_or(0, |s| s.len() / HOP + 1);
        let mut logs: Vec<f32> = Vec::with_capacity(frames * n_mels);
        // Frames gather in `lanes`; every LANES of them go through the FFT together into the
        // next columns of `block`; every BLOCK columns go through the mel product and the log.
        let mut filled = 0;
        let mut gathered = 0;
        let mut logs_max = f32::NEG_INFINITY;
        let (fft, window, lanes, block, mels, bank) =
            (&mut self.fft, &self.window, &mut self.lanes, &mut self.block, &mut self.mels, &self.bank);
        let mut one = |frame: &[f32]| {
            lanes[gathered * N_FFT..(gathered + 1) * N_FFT].copy_from_slice(frame);
            gathered += 1;
            if gathered == LANES {
                fft.power(lanes, LANES, window, &mut block[filled..]);
                gathered = 0;
                filled += LANES;
                if filled == BLOCK {
                    logs_max = logs_max.max(flush_block(bank, block, mels, BLOCK, &mut logs));
                    filled = 0;
                }
            }
        };
        match samples {
            Some(s) => self.frames.push_frames(s, &mut one),
            None => self.frames.finish_frames(&mut one),
        }
        // The last frames: a partial set of lanes, then a partial block.
        if gathered > 0 {
            fft.power(lanes, gathered, window, &mut block[filled..]);
            filled += gathered;
        }
        if filled > 0 {
            logs_max = logs_max.max(flush_block(bank, block, mels, filled, &mut logs));
        }
        let end = samples.is_none();
        let values = match self.params.normalize {
            "none" => logs,
            mode => {
                if self.held.is_empty() {
                    self.held = logs;
                } else {
                    self.held.extend_from_slice(&logs);
                }
                self.held_max = self.held_max.max(logs_max);
                let row = self.n_mels;
                let ready = if mode == "window" {
                    let whole = self.held.len() / (WINDOW_FRAMES * row) * WINDOW_FRAMES * row;
                    if end { self.held.len() } else { whole }
                } else if end {
                    self.held.len()
                } else {
                    0
                };
                let mut out: Vec<f32> =
                    if ready == self.held.len() { std::mem::take(&mut self.held) } else { self.held.drain(..ready).collect() };
                if mode == "window" {
                    for w in out.chunks_mut(WINDOW_FRAMES * row) {
                        normalize(w, max_of(w));
                    }
                } else if !out.is_empty() {
                    normalize(&mut out, self.held_max);
                    self.held_max = f32::NEG_INFINITY;
                }
                out
            }
        };
        if end {
            self.held.clear();
            self.held_max = f32::NEG_INFINITY;
        }
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
        let mut f = self.push(Some(samples));
        let rest = self.push(None);
        if f.values.is_empty() {
            return rest;
        }
        f.values.extend_from_slice(&rest.values);
        f
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
            let per_frame = LogMel::with_transform(params, false).whole(&x);
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

    #[test]
    fn silence_is_the_floor() {
        let f = LogMel::new(LogMelParams::default()).whole(&vec![0.0; 1600]);
        assert_eq!(f.values, vec![-1.5f32; 10 * 80]);
    }
}
