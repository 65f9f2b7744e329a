//! Writing audio files: WAV (16/24-bit integer, 32-bit float, or the buffer's own format) and
//! FLAC (16/24-bit), whole or as a stream of chunks, always through a temporary file renamed into
//! place when complete ([`crate::file_safety::AtomicFile`]).
//!
//! Which format: `format` when given, else the path's extension (`.flac` → FLAC; `.wav`, `.wave`
//! or anything that is not an audio extension → WAV); an extension of a format we do not write
//! (`.mp3`, `.ogg`, ...) is refused rather than written as WAV under a misleading name.
//!
//! Which sample width (`bits`): 16 and 24 are integer PCM, 32 is 32-bit float (WAV only). Not
//! given, WAV keeps the buffer's format (f32 → 32-bit float, i16 → 16-bit, i32 → 32-bit integer,
//! as before) and FLAC uses 16 bits for i16 and 24 for i32 and f32.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use super::flac::FlacEncoder;
use super::wav::{self, SampleSlice, WavSample};
use crate::data::{AudioBuffer, SampleFormat};
use crate::error::Error;
use crate::file_safety::AtomicFile;

/// The file formats remotemedia writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutFormat {
    Wav,
    Flac,
}

/// Extensions of formats we read but do not write.
const READ_ONLY_EXTENSIONS: [&str; 12] = ["mp3", "ogg", "oga", "opus", "m4a", "mp4", "aac", "aif", "aiff", "caf", "mka", "webm"];

impl OutFormat {
    pub fn parse(s: &str) -> Option<OutFormat> {
        match s.to_ascii_lowercase().as_str() {
            "wav" | "wave" => Some(OutFormat::Wav),
            "flac" => Some(OutFormat::Flac),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OutFormat::Wav => "wav",
            OutFormat::Flac => "flac",
        }
    }

    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        self.name()
    }

    /// `explicit` when given, else what the path's extension says (see the module docs).
    pub fn for_path(path: &Path, explicit: Option<OutFormat>) -> Result<OutFormat, Error> {
        if let Some(f) = explicit {
            return Ok(f);
        }
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("flac") => Ok(OutFormat::Flac),
            Some(e) if READ_ONLY_EXTENSIONS.contains(&e) => Err(Error::Input(format!(
                "cannot write '{}': remotemedia writes WAV and FLAC, not .{e}; name the file .wav or .flac",
                path.display()
            ))),
            _ => Ok(OutFormat::Wav),
        }
    }
}

/// What to write: the format and, optionally, the sample width (16, 24 or 32 = float).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutSpec {
    /// `None`: from the path's extension.
    pub format: Option<OutFormat>,
    /// `None`: from the audio's sample format.
    pub bits: Option<u16>,
}

/// The sample widths `bits` may take, for messages.
pub const BITS_CHOICES: &str = "16 or 24 (integer) or 32 (float, WAV only)";

impl OutSpec {
    /// Checks `bits` (16, 24, 32) against the format.
    pub fn new(format: Option<OutFormat>, bits: Option<u16>) -> Result<OutSpec, Error> {
        if let Some(b) = bits {
            if !matches!(b, 16 | 24 | 32) {
                return Err(Error::Input(format!("bits must be {BITS_CHOICES}, not {b}")));
            }
            if b == 32 && format == Some(OutFormat::Flac) {
                return Err(Error::Input("FLAC holds integer samples: bits must be 16 or 24, not 32".into()));
            }
        }
        Ok(OutSpec { format, bits })
    }
}

enum Kind {
    Wav(WavSample),
    Flac(FlacEncoder),
}

/// An audio file being written, chunk by chunk; it appears under its name on [`finish`](Self::finish).
pub struct AudioWriter {
    kind: Kind,
    file: AtomicFile,
    channels: u16,
    sample_rate: u32,
    format: SampleFormat,
    frames: u64,
    /// Reused for each chunk's encoded bytes.
    bytes: Vec<u8>,
}

/// Samples converted per step when writing a large buffer (bounds the scratch memory).
const STEP: usize = 1 << 16;

impl AudioWriter {
    /// Starts `path` for audio like `first` (rate, channels, sample format); nothing of `first`
    /// is written yet.
    pub fn create(path: &Path, spec: OutSpec, sample_rate: u32, channels: u16, format: SampleFormat) -> Result<AudioWriter, Error> {
        let out_format = OutFormat::for_path(path, spec.format)?;
        let bad = |m: String| Error::Input(format!("cannot write '{}': {m}", path.display()));
        if channels == 0 || sample_rate == 0 {
            return Err(bad(format!("{channels} channels at {sample_rate} Hz is not audio")));
        }
        let kind = match out_format {
            OutFormat::Wav => Kind::Wav(match (spec.bits, format) {
                (Some(16), _) => WavSample::I16,
                (Some(24), _) => WavSample::I24,
                (Some(32), _) => WavSample::F32,
                (Some(b), _) => return Err(bad(format!("bits must be {BITS_CHOICES}, not {b}"))),
                (None, SampleFormat::F32) => WavSample::F32,
                (None, SampleFormat::I16) => WavSample::I16,
                (None, SampleFormat::I32) => WavSample::I32,
            }),
            OutFormat::Flac => {
                let bits = match (spec.bits, format) {
                    (Some(b @ (16 | 24)), _) => b,
                    (Some(b), _) => return Err(bad(format!("FLAC holds 16- or 24-bit integer samples, not {b}"))),
                    (None, SampleFormat::I16) => 16,
                    (None, _) => 24,
                };
                Kind::Flac(FlacEncoder::new(sample_rate, channels, bits).map_err(bad)?)
            }
        };
        let header = match &kind {
            Kind::Wav(s) => wav::header(*s, channels, sample_rate, 0).map_err(bad)?,
            Kind::Flac(enc) => enc.header(),
        };
        let mut file = AtomicFile::create(path)?;
        file.write_all(&header).map_err(|e| file.io_error(e))?;
        Ok(AudioWriter { kind, file, channels, sample_rate, format, frames: 0, bytes: Vec::new() })
    }

    /// Appends a chunk; its rate, channels and sample format must be the first chunk's.
    pub fn write(&mut self, audio: &AudioBuffer) -> Result<(), Error> {
        if (audio.sample_rate, audio.channels, audio.samples.format()) != (self.sample_rate, self.channels, self.format) {
            return Err(Error::Input(format!(
                "cannot write '{}': a chunk of {} Hz x {} {} follows audio of {} Hz x {} {}",
                self.file.target().display(),
                audio.sample_rate,
                audio.channels,
                audio.samples.format().name(),
                self.sample_rate,
                self.channels,
                self.format.name()
            )));
        }
        if !audio.samples.len().is_multiple_of(self.channels as usize) {
            return Err(Error::Input(format!(
                "cannot write '{}': {} samples is not a whole number of {}-channel frames",
                self.file.target().display(),
                audio.samples.len(),
                self.channels
            )));
        }
        let all = SampleSlice::of(&audio.samples);
        let step = STEP / self.channels as usize * self.channels as usize;
        let mut at = 0;
        while at < all.len() {
            let end = (at + step.max(self.channels as usize)).min(all.len());
            let part = all.range(at, end);
            self.bytes.clear();
            match &mut self.kind {
                Kind::Wav(s) => wav::encode_into(*s, part, &mut self.bytes),
                Kind::Flac(enc) => {
                    let ints = flac_ints(part, enc.bits());
                    let target = self.file.target().display().to_string();
                    enc.push(&ints, &mut self.bytes).map_err(|m| Error::Input(format!("cannot write '{target}': {m}")))?;
                }
            }
            self.file.write_all(&self.bytes).map_err(|e| self.file.io_error(e))?;
            at = end;
        }
        self.frames += (all.len() / self.channels as usize) as u64;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Completes the header (sizes, FLAC's STREAMINFO) and renames the file into place.
    pub fn finish(mut self) -> Result<(), Error> {
        let target = self.file.target().display().to_string();
        let head = match &mut self.kind {
            Kind::Wav(s) => {
                let head = wav::header(*s, self.channels, self.sample_rate, self.frames)
                    .map_err(|m| Error::Input(format!("cannot write '{target}': {m}")))?;
                // The data chunk is padded to an even length.
                let block = self.channels as u64 * s.bytes();
                if (self.frames * block) % 2 == 1 {
                    self.file.write_all(&[0]).map_err(|e| self.file.io_error(e))?;
                }
                head
            }
            Kind::Flac(enc) => {
                self.bytes.clear();
                let head = enc.finish(&mut self.bytes).map_err(|m| Error::Input(format!("cannot write '{target}': {m}")))?;
                self.file.write_all(&self.bytes).map_err(|e| self.file.io_error(e))?;
                head
            }
        };
        let w = self.file.writer();
        let result = w.flush().and_then(|_| w.get_mut().seek(SeekFrom::Start(0))).and_then(|_| w.get_mut().write_all(&head));
        result.map_err(|e| self.file.io_error(e))?;
        self.file.commit()
    }
}

/// Samples as FLAC integers of `bits` bits (the engine's conversion rules, as for WAV).
fn flac_ints(samples: SampleSlice<'_>, bits: u16) -> Vec<i32> {
    use crate::nodes::format as f;
    match (bits, samples) {
        (16, SampleSlice::I16(v)) => v.iter().map(|&x| x as i32).collect(),
        (16, SampleSlice::I32(v)) => f::i32_to_i16(v).into_iter().map(i32::from).collect(),
        (16, SampleSlice::F32(v)) => f::f32_to_i16(v).into_iter().map(i32::from).collect(),
        (_, s) => wav::to_i24(s),
    }
}

/// Writes a whole buffer to `path` (see the module docs for the format and width).
pub fn write(path: &Path, audio: &AudioBuffer, spec: OutSpec) -> Result<(), Error> {
    let mut w = AudioWriter::create(path, spec, audio.sample_rate, audio.channels, audio.samples.format())?;
    w.write(audio)?;
    w.finish()
}
