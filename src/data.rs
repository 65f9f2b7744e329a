//! The payloads that travel along a pipeline's edges: audio buffers, VAD results, clips cut from a
//! recording, model features, small JSON values.
//!
//! Audio is stored interleaved (`frame0.ch0, frame0.ch1, frame1.ch0, ...`), which is what a
//! C-contiguous numpy array of shape `(frames, channels)` already is, so data from Python needs
//! no reshuffling on its way in or out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::sample_vec::SampleVec;

/// Sample storage in one of the three formats the engine understands, each owned or lent
/// ([`SampleVec`]: a caller's array read in place).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Samples {
    F32(SampleVec<f32>),
    I16(SampleVec<i16>),
    I32(SampleVec<i32>),
}

/// The name of a sample format, as written in manifests (`"f32"`, `"i16"`, `"i32"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleFormat {
    F32,
    I16,
    I32,
}

impl SampleFormat {
    pub fn name(self) -> &'static str {
        match self {
            SampleFormat::F32 => "f32",
            SampleFormat::I16 => "i16",
            SampleFormat::I32 => "i32",
        }
    }

    pub fn parse(s: &str) -> Option<SampleFormat> {
        match s {
            "f32" => Some(SampleFormat::F32),
            "i16" => Some(SampleFormat::I16),
            "i32" => Some(SampleFormat::I32),
            _ => None,
        }
    }
}

impl Samples {
    pub fn len(&self) -> usize {
        match self {
            Samples::F32(v) => v.len(),
            Samples::I16(v) => v.len(),
            Samples::I32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn format(&self) -> SampleFormat {
        match self {
            Samples::F32(_) => SampleFormat::F32,
            Samples::I16(_) => SampleFormat::I16,
            Samples::I32(_) => SampleFormat::I32,
        }
    }
}

/// A buffer of audio: interleaved samples, a sample rate in Hz and a channel count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AudioBuffer {
    pub samples: Samples,
    pub sample_rate: u32,
    pub channels: u16,
}

impl AudioBuffer {
    /// Builds a buffer, checking that the sample count is a whole number of frames.
    pub fn new(samples: Samples, sample_rate: u32, channels: u16) -> Result<AudioBuffer, String> {
        if channels == 0 {
            return Err("channel count must be at least 1".into());
        }
        if sample_rate == 0 {
            return Err("sample rate must be positive".into());
        }
        if samples.len() % channels as usize != 0 {
            return Err(format!(
                "{} samples is not a whole number of frames of {} channels",
                samples.len(),
                channels
            ));
        }
        Ok(AudioBuffer { samples, sample_rate, channels })
    }

    /// A mono f32 buffer; the most common case in tests and examples.
    pub fn mono_f32(samples: Vec<f32>, sample_rate: u32) -> AudioBuffer {
        AudioBuffer { samples: Samples::F32(samples.into()), sample_rate, channels: 1 }
    }

    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / self.channels.max(1) as usize
    }

    /// Duration in seconds.
    pub fn duration_s(&self) -> f64 {
        self.frames() as f64 / self.sample_rate as f64
    }

    /// The samples as f32, if they are f32.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.samples {
            Samples::F32(v) => Some(v),
            _ => None,
        }
    }

    /// Frames `start..end` (clamped to the buffer) as a new buffer: a chunk of a stream.
    pub fn frame_range(&self, start: usize, end: usize) -> AudioBuffer {
        let ch = self.channels.max(1) as usize;
        let (a, b) = (start.min(self.frames()) * ch, end.min(self.frames()).max(start.min(self.frames())) * ch);
        let samples = match &self.samples {
            Samples::F32(v) => Samples::F32(v[a..b].to_vec().into()),
            Samples::I16(v) => Samples::I16(v[a..b].to_vec().into()),
            Samples::I32(v) => Samples::I32(v[a..b].to_vec().into()),
        };
        AudioBuffer { samples, sample_rate: self.sample_rate, channels: self.channels }
    }

    /// Appends another buffer's samples (a stream's next chunk of output). Fails, changing
    /// nothing, when the rate, channel count or sample format differ.
    pub fn append(&mut self, other: &AudioBuffer) -> Result<(), String> {
        if other.samples.is_empty() {
            return Ok(());
        }
        if self.samples.is_empty() {
            *self = other.clone();
            return Ok(());
        }
        if (self.sample_rate, self.channels) != (other.sample_rate, other.channels) {
            return Err(format!(
                "cannot append audio at {} Hz x {} to audio at {} Hz x {}",
                other.sample_rate, other.channels, self.sample_rate, self.channels
            ));
        }
        match (&mut self.samples, &other.samples) {
            (Samples::F32(a), Samples::F32(b)) => a.make_mut().extend_from_slice(b),
            (Samples::I16(a), Samples::I16(b)) => a.make_mut().extend_from_slice(b),
            (Samples::I32(a), Samples::I32(b)) => a.make_mut().extend_from_slice(b),
            (a, b) => return Err(format!("cannot append {} samples to {} samples", b.format().name(), a.format().name())),
        }
        Ok(())
    }
}

/// What a `VADNode` produces for one buffer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VadResult {
    /// Speech segments as `(start_s, end_s)`, in seconds from the start of the buffer
    /// (or of the stream, for streaming sessions).
    pub segments: Vec<(f64, f64)>,
    /// One decision per frame, `true` for speech.
    pub frames: Vec<bool>,
    /// Frame length in milliseconds (10, 20 or 30).
    pub frame_duration_ms: u32,
    /// The node's input, passed on unchanged.
    pub audio: AudioBuffer,
    /// One speech probability per frame, for detectors that have them (`SileroVADNode`); empty
    /// for `VADNode`.
    #[serde(default)]
    pub probabilities: Vec<f32>,
}

/// One clip cut from a longer recording (what `SegmentNode` produces, one per speech segment):
/// its audio and where it lies in the recording, in frames, so clip boundaries stay exact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Clip {
    /// The frame of the source recording the clip starts at.
    pub start_frame: u64,
    /// Frames `start_frame..start_frame + audio.frames()` of the source, at the source's rate.
    pub audio: AudioBuffer,
}

impl Clip {
    /// The frame after the clip's last one, in the source recording.
    pub fn end_frame(&self) -> u64 {
        self.start_frame + self.audio.frames() as u64
    }

    /// Start in seconds from the start of the source recording.
    pub fn start_s(&self) -> f64 {
        self.start_frame as f64 / self.audio.sample_rate as f64
    }

    /// End in seconds from the start of the source recording.
    pub fn end_s(&self) -> f64 {
        self.end_frame() as f64 / self.audio.sample_rate as f64
    }
}

/// Model features (log-mel spectrogram, filterbank energies, cepstra): a 2-D f32 matrix stored
/// time-major, `frames × bins`, row `t` being frame `t`, with the frames' rate. The serde form is
/// just these three fields, so it crosses processes and files as it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Features {
    /// `frames() * bins` values, row-major.
    pub values: Vec<f32>,
    /// Values per frame (mel bands, cepstral coefficients, +1 with a log-energy column); at least 1.
    pub bins: usize,
    /// Frames per second (100 for a 10 ms hop).
    pub frame_rate: f64,
}

impl Features {
    /// An empty matrix (no frames yet) of `bins` columns.
    pub fn empty(bins: usize, frame_rate: f64) -> Features {
        Features { values: Vec::new(), bins, frame_rate }
    }

    /// Checks that `values` is a whole number of rows of `bins` and that the rate is usable.
    pub fn new(values: Vec<f32>, bins: usize, frame_rate: f64) -> Result<Features, String> {
        if bins == 0 {
            return Err("features need at least 1 bin per frame".into());
        }
        if !(frame_rate.is_finite() && frame_rate > 0.0) {
            return Err(format!("features need a positive frame rate, found {frame_rate}"));
        }
        if values.len() % bins != 0 {
            return Err(format!("{} values is not a whole number of frames of {bins} bins", values.len()));
        }
        Ok(Features { values, bins, frame_rate })
    }

    /// Number of frames (rows).
    pub fn frames(&self) -> usize {
        self.values.len() / self.bins.max(1)
    }

    /// Frame `t`.
    pub fn row(&self, t: usize) -> &[f32] {
        &self.values[t * self.bins..(t + 1) * self.bins]
    }

    /// Appends a stream's next frames. Fails, changing nothing, when the bins or rate differ.
    pub fn append(&mut self, other: &Features) -> Result<(), String> {
        if (self.bins, self.frame_rate) != (other.bins, other.frame_rate) {
            return Err(format!(
                "cannot append features of {} bins at {} frames/s to features of {} bins at {} frames/s",
                other.bins, other.frame_rate, self.bins, self.frame_rate
            ));
        }
        self.values.extend_from_slice(&other.values);
        Ok(())
    }
}

/// One value travelling along an edge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Payload {
    Audio(AudioBuffer),
    /// Boxed, so that a payload is the size of an `AudioBuffer`: the engine moves payloads
    /// several times a node call, and at 136 bytes each move was a `memcpy` call.
    Vad(Box<VadResult>),
    /// Clips cut from one recording, in time order.
    Clips(Vec<Clip>),
    /// Model features: frames × bins f32 with a frame rate.
    Features(Features),
    /// A small JSON value: segment lists, scores, labels.
    Json(serde_json::Value),
    /// Named values, for nodes (often Python ones) with several outputs.
    Map(BTreeMap<String, Payload>),
}

impl Payload {
    /// A short name of the payload's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Audio(_) => "audio",
            Payload::Vad(_) => "vad result",
            Payload::Clips(_) => "clips",
            Payload::Features(_) => "features",
            Payload::Json(_) => "json",
            Payload::Map(_) => "map",
        }
    }

    /// The part of this payload named by an edge's `output_key`, or `None` if it has no such part.
    ///
    /// A VAD result has the keys `audio`, `segments`, `frames` and `probabilities`; clips have
    /// `segments` (each clip's `[start_s, end_s]`); a map has its own keys.
    pub fn output(&self, key: &str) -> Option<Payload> {
        match self {
            Payload::Clips(c) if key == "segments" => {
                let spans: Vec<(f64, f64)> = c.iter().map(|c| (c.start_s(), c.end_s())).collect();
                Some(Payload::Json(segments_json(&spans)))
            }
            Payload::Vad(v) => match key {
                "audio" => Some(Payload::Audio(v.audio.clone())),
                "segments" => Some(Payload::Json(segments_json(&v.segments))),
                "frames" => Some(Payload::Json(serde_json::Value::from(v.frames.clone()))),
                "probabilities" => Some(Payload::Json(serde_json::Value::from(v.probabilities.clone()))),
                _ => None,
            },
            Payload::Map(m) => m.get(key).cloned(),
            _ => None,
        }
    }

    /// The audio this payload carries, if any (a VAD result carries its input audio).
    pub fn audio(&self) -> Option<&AudioBuffer> {
        match self {
            Payload::Audio(a) => Some(a),
            Payload::Vad(v) => Some(&v.audio),
            _ => None,
        }
    }
}

/// Segments as a JSON list of `[start_s, end_s]` pairs.
pub fn segments_json(segments: &[(f64, f64)]) -> serde_json::Value {
    serde_json::Value::Array(
        segments
            .iter()
            .map(|(s, e)| serde_json::Value::from(vec![*s, *e]))
            .collect(),
    )
}
