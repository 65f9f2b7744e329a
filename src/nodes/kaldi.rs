//! Kaldi's feature front end, shared by `FbankNode` and `MfccNode` (kaldi-native-fbank's
//! `FrameExtractionOptions` and `ProcessWindow`, torchaudio's `compliance.kaldi`): framing, dither,
//! DC removal, log energy, pre-emphasis, window, padded real FFT, power spectrum and Kaldi's mel
//! banks, in f32 as Kaldi computes them. The two nodes differ only in what they make of the mel
//! energies ([`KaldiFeature`]); the node around both is [`KaldiNode`].

use super::params::node_params;
use super::spectral::{empty_filter, mono_samples, FrameCount, FrameStream, Framing, MelBank, PowerSpectrum, Reflect};
use super::{expect_audio, Inputs, Node, ParamKind, ParamSpec};
use crate::data::{AudioBuffer, Features, Payload};
use crate::error::NodeError;

node_params! {
    /// The front-end params `FbankNode` and `MfccNode` share (Kaldi's names and defaults, except
    /// `dither`: 0, so results are deterministic).
    pub struct KaldiFrameParams {
        frame_length_ms: f64 = 25.0, ParamKind::Float { min: 1.0, max: 1000.0 }, "frame length in ms";
        frame_shift_ms: f64 = 10.0, ParamKind::Float { min: 1.0, max: 1000.0 }, "frame shift in ms";
        dither: f64 = 0.0, ParamKind::Float { min: 0.0, max: 100000.0 },
            "standard deviation of Gaussian noise added to each frame, in input units after input_scale (Kaldi's binaries use 1.0 on the int16 scale); 0: deterministic";
        remove_dc_offset: bool = true, ParamKind::Bool, "subtract each frame's mean";
        preemph_coeff: f64 = 0.97, ParamKind::Float { min: 0.0, max: 1.0 }, "pre-emphasis coefficient: x[i] -= c * x[i-1]";
        window_type: &'static str = "povey", ParamKind::Choice(&["povey", "hamming", "hanning", "hann", "rectangular", "sine", "blackman"]),
            "frame window: povey (Hann^0.85), hamming, hanning (symmetric Hann), hann (periodic Hann), rectangular, sine, blackman";
        blackman_coeff: f64 = 0.42, ParamKind::Float { min: 0.0, max: 1.0 }, "the Blackman window's a0";
        round_to_power_of_two: bool = true, ParamKind::Bool, "zero-pad each frame to the next power of two for the FFT (else the frame length, which must be even)";
        snip_edges: bool = true, ParamKind::Bool,
            "only frames that fit in the signal, the first starting at sample 0; false: one frame per shift, centred, reflected at both ends";
        low_freq: f64 = 20.0, ParamKind::Float { min: 0.0, max: 96000.0 }, "low edge of the mel filters in Hz";
        high_freq: f64 = 0.0, ParamKind::Float { min: -96000.0, max: 96000.0 },
            "high edge of the mel filters in Hz; 0 or negative: that far below the Nyquist frequency";
        energy_floor: f64 = 0.0, ParamKind::Float { min: 0.0, max: 1e30 }, "floor on the energy (not its log) when use_energy; 0: none";
        raw_energy: bool = true, ParamKind::Bool, "log energy of the frame before pre-emphasis and window (false: after)";
        input_scale: f64 = 1.0, ParamKind::Float { min: 1e-6, max: 1e6 },
            "samples are multiplied by this first: 1 for f32 audio in ±1, 32768 for Kaldi's int16 scale";
    }
}

/// What a feature computes from the front end's mel energies.
pub trait KaldiFeature: Send + 'static {
    const TYPE_NAME: &'static str;
    /// Mel filters.
    fn mel_bins(&self) -> usize;
    /// Whether the frames' log energies are needed.
    fn use_energy(&self) -> bool;
    /// Magnitude instead of power spectrum.
    fn use_magnitude(&self) -> bool {
        false
    }
    /// Values per output frame.
    fn dim(&self) -> usize;
    /// Turns one frame's mel energies (modified in place) and log energy into its output row.
    fn frame(&self, mel: &mut [f32], log_energy: f32, out: &mut [f32]);
}

/// `log(max(x, FLT_EPSILON))`, Kaldi's guard against log(0).
pub fn kaldi_log(x: f32) -> f32 {
    x.max(f32::EPSILON).ln()
}

/// A frame window as Kaldi defines it (`GetWindow`), computed in f64 and stored as f32.
pub fn window(kind: &str, len: usize, blackman_coeff: f64) -> Vec<f32> {
    use std::f64::consts::PI;
    let a = if kind == "hann" { 2.0 * PI / len as f64 } else { 2.0 * PI / (len as f64 - 1.0) };
    (0..len)
        .map(|i| {
            let x = a * i as f64;
            let w = match kind {
                "hanning" | "hann" => 0.5 - 0.5 * x.cos(),
                "sine" => (0.5 * x).sin(),
                "hamming" => 0.54 - 0.46 * x.cos(),
                "povey" => (0.5 - 0.5 * x.cos()).powf(0.85),
                "blackman" => blackman_coeff - 0.5 * x.cos() + (0.5 - blackman_coeff) * (2.0 * x).cos(),
                _ => 1.0,
            };
            w as f32
        })
        .collect()
}

/// Gaussian noise for dithering: xorshift64* and Box-Muller, seeded per signal so that a signal
/// gets the same noise whole or streamed (not Kaldi's generator: with dither > 0 no two
/// implementations agree value for value).
struct Gauss(u64);

impl Gauss {
    const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn next(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
}

/// The front end for one sample rate: frames in, mel energies and log energies out.
pub struct FrontEnd {
    opts: KaldiFrameParams,
    sample_rate: u32,
    frames: FrameStream,
    spectrum: PowerSpectrum,
    bank: MelBank,
    window: Vec<f32>,
    noise: Gauss,
    power: Vec<f32>,
    energies: Vec<f32>,
}

impl FrontEnd {
    /// Checks the options against the rate (frame sizes, filter edges) the way Kaldi does, with
    /// messages that name the param.
    pub fn new(opts: &KaldiFrameParams, sample_rate: u32, mel_bins: usize) -> Result<FrontEnd, NodeError> {
        let rate = sample_rate as f32;
        // Kaldi computes sizes in f32 and truncates (`WindowSize()`, `WindowShift()`).
        let len = (rate * 0.001f32 * opts.frame_length_ms as f32) as usize;
        let shift = (rate * 0.001f32 * opts.frame_shift_ms as f32) as usize;
        let bad = |m: String| Err(NodeError::invalid_input(m));
        if len < 2 || shift < 1 {
            return bad(format!(
                "frame_length_ms {} / frame_shift_ms {} give frames of {len} / {shift} samples at {sample_rate} Hz; \
                 need at least 2 / 1",
                opts.frame_length_ms, opts.frame_shift_ms
            ));
        }
        let padded = if opts.round_to_power_of_two { len.next_power_of_two() } else { len };
        if padded % 2 != 0 {
            return bad(format!(
                "a frame of {len} samples (frame_length_ms {} at {sample_rate} Hz) is odd: set round_to_power_of_two \
                 or choose an even frame length",
                opts.frame_length_ms
            ));
        }
        let nyquist = 0.5 * rate;
        let low = opts.low_freq as f32;
        let high = if opts.high_freq > 0.0 { opts.high_freq as f32 } else { nyquist + opts.high_freq as f32 };
        if low >= nyquist || high <= 0.0 || high > nyquist || high <= low {
            return bad(format!(
                "mel filters from low_freq {} Hz to high_freq {} Hz (= {high} Hz) do not fit below the Nyquist \
                 frequency {nyquist} Hz of {sample_rate} Hz audio",
                opts.low_freq, opts.high_freq
            ));
        }
        let bank = MelBank::kaldi(rate, padded, mel_bins, low, high);
        if let Some(m) = empty_filter(&bank) {
            return bad(format!(
                "mel filter {m} of {mel_bins} covers no FFT bin ({padded}-point FFT at {sample_rate} Hz from {low} to \
                 {high} Hz): use fewer mel bins or a longer frame"
            ));
        }
        let framing = Framing {
            len,
            shift,
            offset: if opts.snip_edges { 0 } else { (shift / 2) as i64 - (len / 2) as i64 },
            reflect: Reflect::Kaldi,
            count: if opts.snip_edges { FrameCount::KaldiSnip } else { FrameCount::KaldiCentred },
            exact_len: None,
        };
        Ok(FrontEnd {
            window: window(opts.window_type, len, opts.blackman_coeff),
            frames: FrameStream::new(framing),
            spectrum: PowerSpectrum::new(padded),
            bank,
            noise: Gauss(Gauss::SEED),
            power: Vec::new(),
            energies: Vec::new(),
            opts: opts.clone(),
            sample_rate,
        })
    }

    /// Frames per second.
    pub fn frame_rate(&self) -> f64 {
        self.sample_rate as f64 / self.frames.framing().shift as f64
    }

    /// The next samples (`None`: the end of the signal): mel energies (`frames × mel_bins`) and one
    /// log energy per frame (0 when `with_energy` is false) of the frames now complete.
    pub fn push(&mut self, samples: Option<&[f32]>, with_energy: bool, magnitude: bool) -> (Vec<f32>, Vec<f32>) {
        let bins = self.spectrum.bins();
        self.power.clear();
        self.energies.clear();
        let o = &self.opts;
        let (scale, dither, preemph) = (o.input_scale as f32, o.dither as f32, o.preemph_coeff as f32);
        let (remove_dc, raw_energy) = (o.remove_dc_offset, o.raw_energy);
        let (spectrum, window, power, energies, noise) =
            (&mut self.spectrum, &self.window, &mut self.power, &mut self.energies, &mut self.noise);
        let energy = |x: &[f32]| kaldi_log(x.iter().map(|v| v * v).sum());
        let mut one = |x: &mut [f32]| {
            if scale != 1.0 {
                x.iter_mut().for_each(|v| *v *= scale);
            }
            if dither != 0.0 {
                x.iter_mut().for_each(|v| *v += noise.next() * dither);
            }
            if remove_dc {
                let mean = x.iter().sum::<f32>() / x.len() as f32;
                x.iter_mut().for_each(|v| *v -= mean);
            }
            let mut e = if with_energy && raw_energy { energy(x) } else { 0.0 };
            if preemph != 0.0 {
                for i in (1..x.len()).rev() {
                    x[i] -= preemph * x[i - 1];
                }
                x[0] -= preemph * x[0];
            }
            for (v, w) in x.iter_mut().zip(window) {
                *v *= w;
            }
            if with_energy && !raw_energy {
                e = energy(x);
            }
            energies.push(e);
            let at = power.len();
            power.resize(at + bins, 0.0);
            spectrum.power(x, &mut power[at..], magnitude);
        };
        match samples {
            Some(s) => self.frames.push(s, &mut one),
            None => {
                self.frames.finish(&mut one);
                self.noise = Gauss(Gauss::SEED);
            }
        }
        let count = self.power.len() / bins;
        let mut mel = vec![0.0f32; count * self.bank.filters()];
        self.bank.apply_block(&self.power, bins, &mut mel);
        (mel, std::mem::take(&mut self.energies))
    }

    pub fn reset(&mut self) {
        self.frames.reset();
        self.noise = Gauss(Gauss::SEED);
    }
}

/// The energy floor as a log, or `None` (Kaldi: only when `energy_floor > 0`).
pub fn log_energy_floor(opts: &KaldiFrameParams) -> Option<f32> {
    (opts.energy_floor > 0.0).then(|| (opts.energy_floor as f32).ln())
}

/// A Kaldi feature node: one front end per sample rate seen (rebuilt when the rate changes between
/// whole buffers), one stream per session.
pub struct KaldiNode<F: KaldiFeature> {
    pub feature: F,
    pub opts: KaldiFrameParams,
    front: Option<FrontEnd>,
    /// In a streaming session: the rate it started with.
    streaming: Option<u32>,
}

impl<F: KaldiFeature> KaldiNode<F> {
    pub fn new(feature: F, opts: KaldiFrameParams) -> KaldiNode<F> {
        KaldiNode { feature, opts, front: None, streaming: None }
    }

    fn front_for(&mut self, rate: u32) -> Result<&mut FrontEnd, NodeError> {
        if let Some(started) = self.streaming {
            if started != rate {
                return Err(NodeError::invalid_input(format!(
                    "this stream started with audio at {started} Hz; a chunk at {rate} Hz cannot continue it"
                )));
            }
        }
        let stale = self.front.as_ref().is_none_or(|f| f.sample_rate != rate);
        if stale {
            self.front = Some(FrontEnd::new(&self.opts, rate, self.feature.mel_bins())?);
        }
        // Just filled when it was empty or stale.
        self.front.as_mut().ok_or_else(|| NodeError::permanent("no front end"))
    }

    /// The features of the frames a chunk (or the end: `None`) completes.
    fn run(&mut self, audio: Option<&AudioBuffer>) -> Result<Features, NodeError> {
        let rate = match (audio, self.streaming, &self.front) {
            (Some(a), _, _) => a.sample_rate,
            (None, Some(r), _) => r,
            (None, None, Some(f)) => f.sample_rate,
            (None, None, None) => return Ok(Features::empty(self.feature.dim(), 1.0)),
        };
        let samples = audio.map(|a| mono_samples(a, F::TYPE_NAME)).transpose()?;
        let (with_energy, magnitude) = (self.feature.use_energy(), self.feature.use_magnitude());
        let front = self.front_for(rate)?;
        let frame_rate = front.frame_rate();
        let (mut mel, energies) = front.push(samples.as_deref(), with_energy, magnitude);
        let (bins, dim) = (self.feature.mel_bins(), self.feature.dim());
        let mut values = vec![0.0f32; energies.len() * dim];
        for ((m, e), out) in mel.chunks_exact_mut(bins).zip(&energies).zip(values.chunks_exact_mut(dim)) {
            self.feature.frame(m, *e, out);
        }
        Ok(Features { values, bins: dim, frame_rate })
    }
}

impl<F: KaldiFeature> Node for KaldiNode<F> {
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        let audio = expect_audio(inputs.one()?)?;
        self.streaming = None;
        if let Some(f) = &mut self.front {
            f.reset();
        }
        let mut out = self.run(Some(&audio))?;
        let rest = self.run(None)?;
        out.values.extend_from_slice(&rest.values);
        Ok(Payload::Features(out))
    }

    fn push(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        let audio = expect_audio(inputs.one()?)?;
        let out = self.run(Some(&audio))?;
        self.streaming = Some(audio.sample_rate);
        Ok(Payload::Features(out))
    }

    /// The last chunk's frames plus, without `snip_edges`, the frames reflected at the end.
    fn finish(&mut self, inputs: Option<Inputs>) -> Result<Option<Payload>, NodeError> {
        let mut out = match inputs {
            Some(i) => {
                let audio = expect_audio(i.one()?)?;
                let f = self.run(Some(&audio))?;
                self.streaming = Some(audio.sample_rate);
                Some(f)
            }
            None => None,
        };
        if self.streaming.is_none() {
            return Ok(out.map(Payload::Features));
        }
        let rest = self.run(None)?;
        self.streaming = None;
        match &mut out {
            Some(f) => f.values.extend_from_slice(&rest.values),
            None => out = Some(rest),
        }
        Ok(out.map(Payload::Features))
    }
}

/// The node type's params: the shared front end's, then the feature's own.
pub fn specs(own: Vec<ParamSpec>) -> Vec<ParamSpec> {
    let mut all = KaldiFrameParams::specs();
    all.extend(own);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::fbank::{Fbank, FbankParams};

    fn signal(n: usize) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * 0.05).sin() * 0.3 + ((i * 7919) % 97) as f32 * 1e-4).collect()
    }

    /// Chunked input (dither on, centred frames) gives the whole buffer's features.
    #[test]
    fn streamed_features_equal_whole_buffer_features() {
        let opts = KaldiFrameParams { snip_edges: false, dither: 1e-3, ..KaldiFrameParams::default() };
        let fbank = || Fbank::new(FbankParams { use_energy: true, ..FbankParams::default() }, &opts);
        let x = AudioBuffer::mono_f32(signal(16000 + 123), 16000);
        let mut node = KaldiNode::new(fbank(), opts.clone());
        let Ok(Payload::Features(whole)) = node.process(Inputs::single(Payload::Audio(x.clone()))) else { panic!("features") };
        assert_eq!((whole.frames(), whole.bins), ((16123 + 80) / 160, 81));
        let mut node = KaldiNode::new(fbank(), opts.clone());
        let mut got = Vec::new();
        for start in (0..x.frames()).step_by(592) {
            let Ok(Payload::Features(f)) = node.push(Inputs::single(Payload::Audio(x.frame_range(start, start + 592)))) else {
                panic!("features")
            };
            got.extend(f.values);
        }
        let Ok(Some(Payload::Features(f))) = node.finish(None) else { panic!("features") };
        got.extend(f.values);
        assert_eq!(got, whole.values);
    }

    #[test]
    fn windows_are_kaldis() {
        let w = window("hanning", 5, 0.42);
        assert_eq!(w, [0.0, 0.5, 1.0, 0.5, 0.0]);
        let w = window("hann", 4, 0.42);
        assert_eq!(w, [0.0, 0.5, 1.0, 0.5]);
        assert!(window("povey", 400, 0.42).iter().zip(window("hanning", 400, 0.42)).all(|(p, h)| (p - h.powf(0.85)).abs() < 1e-6));
    }
}
