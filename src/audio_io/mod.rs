//! Audio files in and out: every common format decoded (RIFF/WAVE PCM by our own reader, the
//! rest through symphonia), WAV and FLAC encoded, whole or chunk by chunk in constant memory,
//! inputs checked and outputs written safely ([`crate::file_safety`]).
//!
//! Plain functions any thread can call (the CLI, the Python bindings, batch workers):
//! [`read`] one path → [`AudioBuffer`] or an error naming the file; [`open`] for an
//! [`AudioReader`] that hands out chunks; [`info`] for what a file holds; [`write`] one buffer
//! and [`AudioWriter`] for a stream of chunks, both renamed into place only when complete.
//!
//! What reading gives, by stored format (docs/files.md has the whole table):
//!
//! | stored                                  | becomes |
//! |-----------------------------------------|---------|
//! | 8-bit and 16-bit integer (any codec)    | `Samples::I16`, full scale kept (8-bit shifted left by 8) |
//! | 24-bit and 32-bit integer (any codec)   | `Samples::I32`, filling the i32 range (24-bit shifted left by 8) |
//! | 32/64-bit float; lossy codecs           | `Samples::F32` (64-bit rounded) |
//!
//! Samples stay interleaved, as every format stores them; any channel count up to 256.

mod decode;
mod encode;
mod flac;
mod mp4;
mod reader;
pub mod wav;

use std::path::Path;

use serde_json::{json, Value};

pub use decode::SUPPORTED;
pub use encode::{write, AudioWriter, OutFormat, OutSpec, BITS_CHOICES};
pub use reader::{info, open, read, AudioReader};

use crate::data::{AudioBuffer, SampleFormat};
use crate::error::Error;

/// File extensions `batch` takes as audio (compared ignoring case). The content decides how a file
/// is read; Opus is listed so that such files get their clear error in the report.
pub const AUDIO_EXTENSIONS: [&str; 17] =
    ["wav", "wave", "flac", "mp3", "ogg", "oga", "opus", "m4a", "m4b", "mp4", "aac", "aif", "aiff", "aifc", "caf", "mka", "webm"];

/// True when the path's extension is one of [`AUDIO_EXTENSIONS`], in any case.
pub fn is_audio_name(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| AUDIO_EXTENSIONS.iter().any(|a| a.eq_ignore_ascii_case(e)))
}

/// What an audio file holds, from its header.
#[derive(Clone, Debug, PartialEq)]
pub struct FileInfo {
    /// "WAV", "FLAC", "Ogg", "MPEG audio", "MP4/M4A", "AIFF", ...
    pub container: String,
    /// "PCM 24-bit integer", "FLAC", "Vorbis", "MP3", "AAC", ...
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    /// Frames per channel, when the file declares them (`info` counts them otherwise).
    pub frames: Option<u64>,
    /// Bits per sample of lossless formats; `None` for lossy codecs.
    pub bits: Option<u32>,
    /// The sample format reading gives.
    pub sample_format: SampleFormat,
    pub lossless: bool,
    /// Bytes on disk.
    pub file_size: u64,
}

impl FileInfo {
    /// Duration in seconds, when the length is known.
    pub fn duration_s(&self) -> Option<f64> {
        self.frames.map(|f| f as f64 / self.sample_rate as f64)
    }

    /// The fields as JSON (what `remotemedia info --json` and Python's `info()` give).
    pub fn to_json(&self) -> Value {
        json!({
            "container": self.container,
            "codec": self.codec,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "frames": self.frames,
            "duration": self.duration_s(),
            "bits": self.bits,
            "dtype": match self.sample_format {
                SampleFormat::F32 => "float32",
                SampleFormat::I16 => "int16",
                SampleFormat::I32 => "int32",
            },
            "lossless": self.lossless,
            "file_size": self.file_size,
        })
    }
}

/// Reads a whole audio file of any supported format (the name kept from when only WAV was read).
pub fn read_wav(path: impl AsRef<Path>) -> Result<AudioBuffer, Error> {
    read(path.as_ref())
}

/// Writes a WAV file in the buffer's own format: f32 as 32-bit float, i16 as 16-bit and i32 as
/// 32-bit integer samples.
pub fn write_wav(path: impl AsRef<Path>, audio: &AudioBuffer) -> Result<(), Error> {
    write(path.as_ref(), audio, OutSpec { format: Some(OutFormat::Wav), bits: None })
}

/// Decodes WAV bytes held in memory by the same rules as [`read`] (for the fuzz harness); the
/// error message reads after the file's name.
pub fn decode_wav(bytes: &[u8]) -> Result<AudioBuffer, String> {
    if !wav::is_wav(bytes) {
        return Err(format!("is not a RIFF/WAVE file (it starts with {})", decode::describe_start(bytes)));
    }
    let header = wav::read_header(&mut std::io::Cursor::new(bytes), bytes.len() as u64)?;
    if let wav::Encoding::Codec { tag } = header.encoding {
        return Err(format!("holds {} audio, which is decoded from files only", wav::codec_tag_name(tag).unwrap_or("coded")));
    }
    let mut out = wav::samples_with_capacity(header.sample_format(), 0);
    let start = header.data_start as usize;
    wav::decode_into(header.encoding, &bytes[start..start + header.data_len as usize], &mut out);
    AudioBuffer::new(out, header.sample_rate, header.channels)
}

/// What [`load`] does to a file's audio after decoding, in this order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Average the channels into one (in f64, channel by channel, then rounded to f32).
    pub mono: bool,
    /// Resample to this rate with `AudioResampleNode` at its default settings (the node itself is
    /// built and run, so the result is exactly what a pipeline of that one node gives).
    pub rate: Option<u32>,
    /// Convert to this sample format (the engine's rules); `None` keeps what decoding gave
    /// (after `mono`/`rate`, which give f32).
    pub format: Option<SampleFormat>,
}

/// Reads a whole file and applies `options` (Python's `remotemedia.load`).
pub fn load(path: &Path, options: LoadOptions) -> Result<AudioBuffer, Error> {
    let mut audio = read(path)?;
    if options.mono && audio.channels > 1 {
        audio = downmix_mean(&audio);
    }
    if let Some(rate) = options.rate {
        audio = resample_with_node(audio, rate)?;
    }
    if let Some(format) = options.format {
        audio.samples = crate::nodes::format::convert(audio.samples, format);
    }
    Ok(audio)
}

/// The mean of the channels as mono f32: each sample converted to f32 by the engine's rule, summed
/// in f64 in channel order, divided, rounded once (the pure-Python `load` does the same steps, so
/// both runtimes agree bit for bit). Integer samples are converted frame by frame: an f32 copy of
/// the whole input next to it took `load(mono=True)` of 10 minutes of 44.1 kHz stereo 24-bit to a
/// 555 MiB peak.
pub fn downmix_mean(audio: &AudioBuffer) -> AudioBuffer {
    use crate::nodes::format::{s_i16_to_f32, s_i32_to_f32};
    fn mean<T: Copy>(v: &[T], ch: usize, f: impl Fn(T) -> f32) -> Vec<f32> {
        v.chunks_exact(ch)
            .map(|frame| {
                let mut acc = f(frame[0]) as f64;
                for &x in &frame[1..] {
                    acc += f(x) as f64;
                }
                (acc / ch as f64) as f32
            })
            .collect()
    }
    let ch = audio.channels.max(1) as usize;
    let out = match &audio.samples {
        crate::data::Samples::F32(v) => mean(v, ch, |x| x),
        crate::data::Samples::I16(v) => mean(v, ch, s_i16_to_f32),
        crate::data::Samples::I32(v) => mean(v, ch, s_i32_to_f32),
    };
    AudioBuffer::mono_f32(out, audio.sample_rate)
}

/// `audio` through a freshly built `AudioResampleNode { output_rate: rate }`.
fn resample_with_node(audio: AudioBuffer, rate: u32) -> Result<AudioBuffer, Error> {
    use crate::nodes::{Inputs, NodeConfig, Registry};
    let registry = Registry::builtin();
    let node_type = registry.get(crate::nodes::resample::TYPE_NAME).expect("the resampler is a built-in node");
    let mut params = crate::nodes::Params::new();
    params.insert("output_rate".into(), Value::from(rate));
    let bad_rate = |e: crate::error::NodeError| Error::Input(format!("rate={rate}: {}", e.message));
    let mut node = (node_type.factory)(&NodeConfig { id: "load", params: &params, worker: 0 }).map_err(bad_rate)?;
    match node.process(Inputs::single(crate::data::Payload::Audio(audio))).map_err(bad_rate)? {
        crate::data::Payload::Audio(a) => Ok(a),
        other => Err(Error::Engine(format!("AudioResampleNode returned {}", other.kind()))),
    }
}
