//! Reading and writing WAV files (via hound), for the CLI, examples, tests and the bundled sample.
//!
//! Formats on reading:
//!
//! | WAV data              | becomes |
//! |-----------------------|---------|
//! | 32-bit float          | `Samples::F32`, unchanged |
//! | 16-bit integer        | `Samples::I16`, unchanged |
//! | 32-bit integer        | `Samples::I32`, unchanged |
//! | 24-bit (any 17-31-bit) integer | `Samples::I32` shifted left to fill the i32 range (`x << 8` for 24-bit), so full scale stays full scale: the i32 → f32 rule then gives `x / 2^23` |
//! | 8-bit integer         | `Samples::I16` shifted left by 8 (full scale kept) |
//!
//! Anything else (64-bit float, ADPCM, A-law, ...) is refused with an error that names it.
//! Any channel count is accepted; samples stay interleaved, as WAV stores them.
//!
//! On writing, f32 becomes a 32-bit float WAV, i16 a 16-bit and i32 a 32-bit integer WAV.

use std::io::Cursor;
use std::path::Path;

use crate::data::{AudioBuffer, Samples};
use crate::error::Error;

/// Reads a whole WAV file.
///
/// Errors: a file that cannot be read is `Error::Io` naming the path; a file that is not WAV, is
/// malformed or truncated, or holds an unsupported encoding is `Error::Input` naming the path.
pub fn read_wav(path: impl AsRef<Path>) -> Result<AudioBuffer, Error> {
    let path = path.as_ref();
    let bytes = std::fs::read(path)
        .map_err(|source| Error::Io { context: format!("cannot read WAV file '{}'", path.display()), source })?;
    decode_wav(&bytes).map_err(|msg| Error::Input(format!("'{}' {msg}", path.display())))
}

/// Decodes WAV bytes held in memory; the error message reads after the file's name.
pub fn decode_wav(bytes: &[u8]) -> Result<AudioBuffer, String> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(format!(
            "is not a WAV file: expected a RIFF/WAVE header, found {} ({} bytes in all)",
            describe_start(bytes),
            bytes.len()
        ));
    }
    let reader = WavReaderCursor::new(Cursor::new(bytes)).map_err(|e| match e {
        hound::Error::Unsupported => format!("holds an unsupported WAV encoding ({})", describe_fmt(bytes)),
        hound::Error::FormatError(what) => {
            format!("is not a usable WAV file: {what} ({})", describe_fmt(bytes))
        }
        other => format!("is not a usable WAV file: {other}"),
    })?;
    let spec = reader.spec();
    let bits = spec.bits_per_sample;
    // hound's own sample count comes from the header; never reserve more than the bytes can hold.
    let capacity = (reader.len() as usize).min(bytes.len() / (bits as usize / 8).max(1));
    let truncated = |e: hound::Error| format!("is truncated or malformed: {e}");
    let samples = match (spec.sample_format, bits) {
        (hound::SampleFormat::Float, 32) => Samples::F32(collect(reader, capacity, |x: f32| x).map_err(truncated)?),
        (hound::SampleFormat::Int, 16) => Samples::I16(collect(reader, capacity, |x: i16| x).map_err(truncated)?),
        (hound::SampleFormat::Int, 1..=15) => {
            let shift = 16 - bits;
            Samples::I16(collect(reader, capacity, |x: i16| x << shift).map_err(truncated)?)
        }
        (hound::SampleFormat::Int, 17..=32) => {
            let shift = 32 - bits;
            Samples::I32(collect(reader, capacity, |x: i32| x << shift).map_err(truncated)?)
        }
        (format, bits) => {
            let kind = if format == hound::SampleFormat::Float { "float" } else { "integer" };
            return Err(format!("holds {bits}-bit {kind} samples; supported are 8/16/24/32-bit integer and 32-bit float"));
        }
    };
    AudioBuffer::new(samples, spec.sample_rate, spec.channels).map_err(|e| format!("is not a usable WAV file: {e}"))
}

type WavReaderCursor<'a> = hound::WavReader<Cursor<&'a [u8]>>;

fn collect<S: hound::Sample, T>(
    mut reader: WavReaderCursor<'_>,
    capacity: usize,
    f: impl Fn(S) -> T,
) -> Result<Vec<T>, hound::Error> {
    let mut out = Vec::with_capacity(capacity);
    for s in reader.samples::<S>() {
        out.push(f(s?));
    }
    Ok(out)
}

/// The first bytes of a file, readable: ASCII as text, other bytes as `\xNN` escapes.
fn describe_start(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "an empty file".into();
    }
    let head = &bytes[..bytes.len().min(16)];
    let text: String = head.iter().flat_map(|&b| std::ascii::escape_default(b)).map(char::from).collect();
    format!("\"{text}\"")
}

/// What the `fmt ` chunk says (format tag and bits), for error messages; best effort.
fn describe_fmt(bytes: &[u8]) -> String {
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes([bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]]) as usize;
        let body = pos + 8;
        if id == b"fmt " && body + 16 <= bytes.len() {
            let tag = u16::from_le_bytes([bytes[body], bytes[body + 1]]);
            let channels = u16::from_le_bytes([bytes[body + 2], bytes[body + 3]]);
            let bits = u16::from_le_bytes([bytes[body + 14], bytes[body + 15]]);
            let name = match tag {
                0x0001 => "PCM integer",
                0x0002 => "MS ADPCM",
                0x0003 => "IEEE float",
                0x0006 => "A-law",
                0x0007 => "mu-law",
                0x0011 => "IMA ADPCM",
                0x0055 => "MP3",
                0xFFFE => "extensible",
                _ => "unknown",
            };
            return format!("format tag {tag:#06x} ({name}), {bits} bits per sample, {channels} channels");
        }
        // Chunks are padded to an even length.
        pos = body.saturating_add(len).saturating_add(len & 1);
    }
    "no readable fmt chunk".into()
}

/// Writes a WAV file: f32 as 32-bit float, i16 as 16-bit and i32 as 32-bit integer samples.
///
/// Errors: a buffer with no channels or a partial frame is `Error::Input`; a file that cannot be
/// created or written is `Error::Io` naming the path.
pub fn write_wav(path: impl AsRef<Path>, audio: &AudioBuffer) -> Result<(), Error> {
    let path = path.as_ref();
    if audio.channels == 0 || audio.sample_rate == 0 {
        return Err(Error::Input(format!(
            "cannot write '{}': {} channels at {} Hz is not audio",
            path.display(),
            audio.channels,
            audio.sample_rate
        )));
    }
    if !audio.samples.len().is_multiple_of(audio.channels as usize) {
        return Err(Error::Input(format!(
            "cannot write '{}': {} samples is not a whole number of {}-channel frames",
            path.display(),
            audio.samples.len(),
            audio.channels
        )));
    }
    let (bits_per_sample, sample_format) = match audio.samples {
        Samples::F32(_) => (32, hound::SampleFormat::Float),
        Samples::I16(_) => (16, hound::SampleFormat::Int),
        Samples::I32(_) => (32, hound::SampleFormat::Int),
    };
    let spec = hound::WavSpec { channels: audio.channels, sample_rate: audio.sample_rate, bits_per_sample, sample_format };
    let io_err = |e: hound::Error| match e {
        hound::Error::IoError(source) => Error::Io { context: format!("cannot write WAV file '{}'", path.display()), source },
        other => Error::Input(format!("cannot write '{}': {other}", path.display())),
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(io_err)?;
    match &audio.samples {
        Samples::F32(v) => v.iter().try_for_each(|&x| writer.write_sample(x)),
        Samples::I16(v) => v.iter().try_for_each(|&x| writer.write_sample(x)),
        Samples::I32(v) => v.iter().try_for_each(|&x| writer.write_sample(x)),
    }
    .map_err(io_err)?;
    // finalize() writes the chunk sizes into the header; without it the file reads as empty.
    writer.finalize().map_err(io_err)
}
