//! `SileroVADNode`: neural voice activity detection with the Silero VAD v6 network computed in
//! Rust (`silero/`), giving per-chunk speech probabilities and silero-vad's speech timestamps.
//!
//! One node instance runs one detector per buffer (whole-buffer runs) or per session (streams);
//! both cut the audio into the same 32 ms chunks, so a stream's pushes add up to the whole
//! buffer's result: the same probabilities, frames and segments. `python/remotemedia/_pure/
//! silero.py` is the numpy twin. Algorithm, params, license and accuracy: docs/nodes.md.

use std::collections::VecDeque;

use serde_json::Value;

use super::silero::network::{Geometry, SileroState};
use super::silero::timestamps::{Span, TimestampConfig, Timestamper};
use super::silero::weights;
use super::vad::mono_view;
use super::{checked_param, expect_audio, Inputs, Node, NodeType, ParamKind, ParamSpec, Params};
use crate::data::{AudioBuffer, Payload, Samples, VadResult};
use crate::error::NodeError;

pub const TYPE_NAME: &str = "SileroVADNode";

/// Chunk length in ms at both rates (512 samples at 16 kHz, 256 at 8 kHz): one frame decision
/// and one probability per chunk.
pub const FRAME_MS: u32 = 32;

/// What the node decides with the probabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// silero-vad's `get_speech_timestamps` post-processing (hysteresis, minimum speech and
    /// silence, padding, maximum length).
    Timestamps,
    /// A chunk is speech when its probability is at least `threshold`; segments are the runs.
    Raw,
}

impl Mode {
    pub const NAMES: &'static [&'static str] = &["timestamps", "raw"];

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "timestamps" => Some(Mode::Timestamps),
            "raw" => Some(Mode::Raw),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Timestamps => "timestamps",
            Mode::Raw => "raw",
        }
    }
}

/// The node's params: fields and defaults here, names, ranges and meanings in
/// [`SileroParams::specs`]; the schema, the factory ([`SileroParams::from_params`]) and the
/// detector ([`SileroVad::new`]) all come from these two.
#[derive(Clone, Debug, PartialEq)]
pub struct SileroParams {
    pub threshold: f64,
    /// `None`: `max(threshold - 0.15, 0.01)`, as silero-vad.
    pub neg_threshold: Option<f64>,
    pub min_speech_duration_ms: u32,
    pub min_silence_duration_ms: u32,
    pub speech_pad_ms: u32,
    /// `None`: no limit.
    pub max_speech_duration_s: Option<f64>,
    pub mode: Mode,
}

impl Default for SileroParams {
    /// silero-vad's `get_speech_timestamps` defaults.
    fn default() -> SileroParams {
        SileroParams {
            threshold: 0.5,
            neg_threshold: None,
            min_speech_duration_ms: 250,
            min_silence_duration_ms: 100,
            speech_pad_ms: 30,
            max_speech_duration_s: None,
            mode: Mode::Timestamps,
        }
    }
}

impl SileroParams {
    /// The param schema: names, kinds with their ranges, defaults (from `Default`), meanings.
    pub fn specs() -> Vec<ParamSpec> {
        let d = SileroParams::default();
        vec![
            ParamSpec::with_default(
                "threshold",
                ParamKind::Float { min: 0.0, max: 1.0 },
                Value::from(d.threshold),
                "speech probability at or above which a chunk is speech (starts a segment)",
            ),
            ParamSpec::optional(
                "neg_threshold",
                ParamKind::Float { min: 0.0, max: 1.0 },
                "probability below which a chunk inside speech counts as silence; at most threshold; \
                 absent: max(threshold - 0.15, 0.01) (timestamps mode)",
            ),
            ParamSpec::with_default(
                "min_speech_duration_ms",
                ParamKind::Int { min: 0, max: 60_000 },
                Value::from(d.min_speech_duration_ms),
                "speeches this short or shorter are dropped (timestamps mode)",
            ),
            ParamSpec::with_default(
                "min_silence_duration_ms",
                ParamKind::Int { min: 0, max: 60_000 },
                Value::from(d.min_silence_duration_ms),
                "silence that must last this long to end a speech (timestamps mode)",
            ),
            ParamSpec::with_default(
                "speech_pad_ms",
                ParamKind::Int { min: 0, max: 10_000 },
                Value::from(d.speech_pad_ms),
                "ms added to each side of every speech, or half the gap when two are closer than twice this \
                 (timestamps mode)",
            ),
            ParamSpec::optional(
                "max_speech_duration_s",
                ParamKind::Float { min: 0.1, max: 86_400.0 },
                "speeches longer than this are cut at their longest inner silence (> 98 ms) or where they \
                 stand; absent: no limit (timestamps mode)",
            ),
            ParamSpec::with_default(
                "mode",
                ParamKind::Choice(Mode::NAMES),
                Value::from(d.mode.name()),
                "\"timestamps\": silero-vad's get_speech_timestamps post-processing; \"raw\": a chunk is speech \
                 when its probability is at least threshold, segments are the runs of speech chunks",
            ),
        ]
    }

    /// Reads and checks validated (or raw) params; absent ones take the defaults.
    pub fn from_params(params: &Params) -> Result<SileroParams, NodeError> {
        let d = SileroParams::default();
        let specs = SileroParams::specs();
        let get = |name: &str| checked_param(params, &specs, name);
        let num = |name: &str| -> Result<Option<f64>, NodeError> { Ok(get(name)?.and_then(Value::as_f64)) };
        let int = |name: &str, default: u32| -> Result<u32, NodeError> {
            Ok(get(name)?.and_then(Value::as_f64).map_or(default, |v| v as u32))
        };
        let p = SileroParams {
            threshold: num("threshold")?.unwrap_or(d.threshold),
            neg_threshold: num("neg_threshold")?,
            min_speech_duration_ms: int("min_speech_duration_ms", d.min_speech_duration_ms)?,
            min_silence_duration_ms: int("min_silence_duration_ms", d.min_silence_duration_ms)?,
            speech_pad_ms: int("speech_pad_ms", d.speech_pad_ms)?,
            max_speech_duration_s: num("max_speech_duration_s")?,
            mode: get("mode")?.and_then(Value::as_str).and_then(Mode::parse).unwrap_or(d.mode),
        };
        if let Some(problem) = p.cross_check() {
            return Err(NodeError::permanent(format!("param 'neg_threshold' must be {}, found {}", problem.0, problem.1)));
        }
        Ok(p)
    }

    /// The params as JSON, every one present (absent optionals as null).
    pub fn to_params(&self) -> Params {
        let mut m = Params::new();
        m.insert("threshold".into(), Value::from(self.threshold));
        m.insert("neg_threshold".into(), self.neg_threshold.map_or(Value::Null, Value::from));
        m.insert("min_speech_duration_ms".into(), Value::from(self.min_speech_duration_ms));
        m.insert("min_silence_duration_ms".into(), Value::from(self.min_silence_duration_ms));
        m.insert("speech_pad_ms".into(), Value::from(self.speech_pad_ms));
        m.insert("max_speech_duration_s".into(), self.max_speech_duration_s.map_or(Value::Null, Value::from));
        m.insert("mode".into(), Value::from(self.mode.name()));
        m
    }

    /// `neg_threshold` above `threshold`: `(expected, found)`.
    fn cross_check(&self) -> Option<(String, String)> {
        let n = self.neg_threshold?;
        (n > self.threshold).then(|| (format!("at most threshold ({})", self.threshold), n.to_string()))
    }

    /// The threshold below which a chunk inside speech is silence.
    pub fn neg_threshold(&self) -> f64 {
        self.neg_threshold.unwrap_or((self.threshold - 0.15).max(0.01))
    }

    fn timestamp_config(&self, g: Geometry) -> TimestampConfig {
        TimestampConfig {
            sample_rate: g.rate,
            window: g.window,
            threshold: self.threshold,
            neg_threshold: self.neg_threshold(),
            min_speech_duration_ms: self.min_speech_duration_ms,
            min_silence_duration_ms: self.min_silence_duration_ms,
            speech_pad_ms: self.speech_pad_ms,
            max_speech_duration_s: self.max_speech_duration_s,
        }
    }
}

/// The cross-param check manifest validation runs.
fn check(params: &Params) -> Vec<(String, String, String)> {
    match SileroParams::from_params(params) {
        Ok(p) => p.cross_check().map(|(e, f)| ("neg_threshold".to_string(), e, f)).into_iter().collect(),
        Err(_) => Vec::new(), // each param's own problem is reported by its spec
    }
}

/// A detector for one stream (or one whole buffer): the network and the decisions.
pub struct SileroVad {
    params: SileroParams,
    net: SileroState,
    stamps: Timestamper,
    /// Final segments (timestamps mode) that may still cover frames not yet decided.
    spans: VecDeque<Span>,
    probs: u64,
    frames: u64,
    /// Raw mode: the first chunk of the run of speech chunks still open.
    open_since: Option<u64>,
}

/// What one push (or the end) of a stream yields.
#[derive(Default)]
struct Step {
    probabilities: Vec<f32>,
    frames: Vec<bool>,
    segments: Vec<(f64, f64)>,
}

impl SileroVad {
    /// A detector for audio at `rate` Hz (16000 or 8000).
    pub fn new(params: SileroParams, rate: u32) -> Result<SileroVad, NodeError> {
        let net = SileroState::new(rate)?;
        let stamps = Timestamper::new(&params.timestamp_config(net.geometry()));
        Ok(SileroVad { params, net, stamps, spans: VecDeque::new(), probs: 0, frames: 0, open_since: None })
    }

    pub fn rate(&self) -> u32 {
        self.net.geometry().rate
    }

    /// Starts a new stream.
    pub fn reset(&mut self) {
        self.net.reset();
        self.stamps = Timestamper::new(&self.params.timestamp_config(self.net.geometry()));
        self.spans.clear();
        (self.probs, self.frames, self.open_since) = (0, 0, None);
    }

    fn seconds(&self, sample: u64) -> f64 {
        sample as f64 / self.rate() as f64
    }

    fn push(&mut self, samples: &[f32], step: &mut Step) -> Result<(), NodeError> {
        let first = step.probabilities.len();
        self.net.push(samples, &mut step.probabilities)?;
        self.decide(first, step);
        Ok(())
    }

    /// Ends the stream: the zero-padded last chunk, then everything still open.
    fn finish(&mut self, step: &mut Step) {
        let length = self.net.samples_seen();
        self.stamps.set_length(length);
        let first = step.probabilities.len();
        self.net.finish(&mut step.probabilities);
        self.decide(first, step);
        let window = self.net.geometry().window as u64;
        match self.params.mode {
            Mode::Timestamps => {
                let mut spans = Vec::new();
                self.stamps.finish(length, &mut spans);
                self.take_spans(spans, step);
                self.decide_frames(self.probs, step);
            }
            Mode::Raw => {
                if let Some(start) = self.open_since.take() {
                    step.segments.push((self.seconds(start * window), self.seconds((self.probs * window).min(length))));
                }
            }
        }
        self.reset();
    }

    /// Decisions for the probabilities `step.probabilities[first..]`, just computed.
    fn decide(&mut self, first: usize, step: &mut Step) {
        let window = self.net.geometry().window as u64;
        let new = step.probabilities.len() - first;
        match self.params.mode {
            Mode::Raw => {
                for k in 0..new {
                    let speech = step.probabilities[first + k] as f64 >= self.params.threshold;
                    let i = self.probs + k as u64;
                    match (speech, self.open_since) {
                        (true, None) => self.open_since = Some(i),
                        (false, Some(s)) => {
                            step.segments.push((self.seconds(s * window), self.seconds(i * window)));
                            self.open_since = None;
                        }
                        _ => {}
                    }
                    step.frames.push(speech);
                }
                self.probs += new as u64;
                self.frames = self.probs;
            }
            Mode::Timestamps => {
                let mut spans = Vec::new();
                for k in 0..new {
                    self.stamps.push(step.probabilities[first + k], &mut spans);
                }
                self.probs += new as u64;
                self.take_spans(spans, step);
                // A frame is decided once no segment still to come can cover its centre.
                // Chunk i's centre is i·W + W/2: the chunks with a centre below the horizon.
                let horizon = self.stamps.horizon();
                let decided = if horizon > window / 2 { (horizon - window / 2).div_ceil(window) } else { 0 }.min(self.probs);
                self.decide_frames(decided.max(self.frames), step);
            }
        }
    }

    fn take_spans(&mut self, spans: Vec<Span>, step: &mut Step) {
        for (s, e) in spans {
            step.segments.push((self.seconds(s), self.seconds(e)));
            self.spans.push_back((s, e));
        }
    }

    /// Frame decisions up to chunk `until` (exclusive): a chunk is speech when its centre sample
    /// lies in a segment.
    fn decide_frames(&mut self, until: u64, step: &mut Step) {
        let window = self.net.geometry().window as u64;
        while self.frames < until {
            let centre = self.frames * window + window / 2;
            while self.spans.front().is_some_and(|&(_, e)| e <= centre) {
                self.spans.pop_front();
            }
            step.frames.push(self.spans.front().is_some_and(|&(s, _)| s <= centre));
            self.frames += 1;
        }
    }
}

struct SileroVadNode {
    params: SileroParams,
    /// Kept between runs (the FFT plan and buffers), reset before each.
    vad: Option<SileroVad>,
    /// In a streaming session: the channel count, to shape an empty final output.
    stream_channels: Option<u16>,
}

impl SileroVadNode {
    fn detector(&mut self, rate: u32) -> Result<&mut SileroVad, NodeError> {
        if self.vad.as_ref().is_none_or(|v| v.rate() != rate) {
            self.vad = Some(SileroVad::new(self.params.clone(), rate)?);
        }
        Ok(self.vad.as_mut().expect("set above"))
    }

    fn result(step: Step, audio: AudioBuffer) -> Payload {
        Payload::Vad(Box::new(VadResult {
            segments: step.segments,
            frames: step.frames,
            frame_duration_ms: FRAME_MS,
            audio,
            probabilities: step.probabilities,
        }))
    }

    fn push_chunk(&mut self, audio: AudioBuffer) -> Result<Step, NodeError> {
        let streaming = self.stream_channels.is_some();
        if let (Some(v), true) = (&self.vad, streaming) {
            if v.rate() != audio.sample_rate {
                return Err(NodeError::invalid_input(format!(
                    "this stream started with audio at {} Hz; a chunk at {} Hz cannot continue it",
                    v.rate(),
                    audio.sample_rate
                )));
            }
        }
        let mono = mono_view(&audio)?;
        let vad = self.detector(audio.sample_rate)?;
        let mut step = Step::default();
        vad.push(&mono, &mut step)?;
        self.stream_channels.get_or_insert(audio.channels);
        Ok(step)
    }
}

impl Node for SileroVadNode {
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        let audio = expect_audio(inputs.one()?)?;
        let mono = mono_view(&audio)?;
        let vad = self.detector(audio.sample_rate)?;
        vad.reset();
        let mut step = Step::default();
        if let Err(e) = vad.push(&mono, &mut step) {
            vad.reset();
            return Err(e);
        }
        vad.finish(&mut step);
        drop(mono);
        Ok(SileroVadNode::result(step, audio))
    }

    fn push(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        let audio = expect_audio(inputs.one()?)?;
        let step = self.push_chunk(audio.clone())?;
        Ok(SileroVadNode::result(step, audio))
    }

    /// The last chunk's results, then the zero-padded partial chunk and the segments still open.
    fn finish(&mut self, inputs: Option<Inputs>) -> Result<Option<Payload>, NodeError> {
        let (mut step, audio) = match inputs {
            Some(inputs) => {
                let audio = expect_audio(inputs.one()?)?;
                (self.push_chunk(audio.clone())?, Some(audio))
            }
            None => (Step::default(), None),
        };
        let Some(channels) = self.stream_channels.take() else {
            return Ok(audio.map(|a| SileroVadNode::result(step, a)));
        };
        let Some(vad) = &mut self.vad else { return Ok(audio.map(|a| SileroVadNode::result(step, a))) };
        let rate = vad.rate();
        vad.finish(&mut step);
        let audio =
            audio.unwrap_or(AudioBuffer { samples: Samples::F32(Vec::new().into()), sample_rate: rate, channels });
        Ok(Some(SileroVadNode::result(step, audio)))
    }
}

/// Probabilities, frames and segments (seconds) for one whole mono buffer.
pub fn detect(samples: &[f32], rate: u32, params: SileroParams) -> Result<(Vec<f32>, Vec<bool>, Vec<(f64, f64)>), NodeError> {
    let mut vad = SileroVad::new(params, rate)?;
    let mut step = Step::default();
    vad.push(samples, &mut step)?;
    vad.finish(&mut step);
    Ok((step.probabilities, step.frames, step.segments))
}

pub fn node_type() -> NodeType {
    NodeType {
        params: SileroParams::specs(),
        outputs: vec!["audio".into(), "segments".into(), "frames".into(), "probabilities".into()],
        stateful: true,
        check: Some(check),
        ..NodeType::new(
            TYPE_NAME,
            "Neural voice activity detection: the Silero VAD v6 network (MIT, weights shipped) computed in Rust, \
             one speech probability per 32 ms chunk, and silero-vad's speech timestamps. Input: mono audio at \
             16000 or 8000 Hz (f32, i16 or i32; channels are averaged); output: a VAD result (segments in s, one \
             decision and one probability per chunk, the input audio unchanged).",
            |cfg| {
                let params = SileroParams::from_params(cfg.params)?;
                // The weights are parsed (once per process) when the first node is built, so a
                // damaged build fails the install, not a run.
                weights::get().map_err(NodeError::permanent)?;
                Ok(Box::new(SileroVadNode { params, vad: None, stream_channels: None }))
            },
        )
    }
}
