//! RIFF/WAVE by our own rules: the header checks shared rule for rule (and message for message)
//! with the pure-Python reader `python/remotemedia/wav.py`, so both runtimes give the same
//! verdict on every file; PCM and float samples converted block by block; headers written that
//! sox, libsndfile and the other readers accept without a warning.
//!
//! Reading (`docs/files.md` has the table): integer PCM of 1-32 bits (8-bit and narrower → i16,
//! 9-16 → i16, 17-24 → i32 shifted left by 8, 25-32 → i32; full scale stays full scale), 32-bit
//! float → f32, 64-bit float → f32 (rounded), `WAVE_FORMAT_EXTENSIBLE` with a PCM or float
//! sub-format, 1 to 256 channels. A file is refused when the header and the bytes disagree:
//! a data chunk longer than the file (truncated), a zero-size data chunk followed by data that
//! the RIFF size does not cover (a writer stopped before writing the sizes), a data size that is
//! not whole frames, a block align that does not match channels × sample size. Other format
//! tags (A-law, µ-law, ADPCM) are [`Encoding::Codec`]: the caller hands them to symphonia.
//!
//! Writing: 16-bit PCM (plain `fmt `), 24/32-bit PCM and integer PCM of more than two channels
//! as `WAVE_FORMAT_EXTENSIBLE`, 32-bit float (any channel count) with an 18-byte `fmt ` and a
//! `fact` chunk, as the
//! WAVE specification asks for non-PCM data (a 16-byte float `fmt ` is what made soxi warn
//! "missing extended part of fmt chunk").

use std::io::{Read, Seek, SeekFrom};

use crate::data::{SampleFormat, Samples};

/// The most channels a file may have. Above this a "channel count" is almost always a damaged
/// header, and the engine's nodes (the resampler, Python's `Audio`) take at most this many.
pub const MAX_CHANNELS: u16 = 256;

const TAG_PCM: u16 = 0x0001;
const TAG_FLOAT: u16 = 0x0003;
const TAG_EXTENSIBLE: u16 = 0xFFFE;
/// The 14 bytes after the format tag in a `KSDATAFORMAT_SUBTYPE_*` GUID.
const GUID_TAIL: [u8; 14] = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71];
/// Format tags symphonia decodes inside a WAV file (the caller hands such files over).
pub const CODEC_TAGS: [(u16, &str); 4] = [(0x0002, "MS ADPCM"), (0x0006, "A-law"), (0x0007, "µ-law"), (0x0011, "IMA ADPCM")];

/// How the samples in the data chunk are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Integer PCM: `bits` significant bits in `bytes`-byte little-endian containers (unsigned
    /// for one byte, signed otherwise).
    Int { bits: u16, bytes: u8 },
    /// IEEE float, 32 or 64 bits.
    Float { bits: u16 },
    /// A compressed or companded format tag that symphonia decodes.
    Codec { tag: u16 },
}

/// What the header says, once every rule has passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WavHeader {
    pub encoding: Encoding,
    pub channels: u16,
    pub sample_rate: u32,
    /// Byte offset of the first sample.
    pub data_start: u64,
    /// Bytes of samples (whole frames).
    pub data_len: u64,
    /// Bytes per frame (the block align).
    pub block: u64,
    pub extensible: bool,
}

impl WavHeader {
    pub fn frames(&self) -> u64 {
        if self.block == 0 {
            0
        } else {
            self.data_len / self.block
        }
    }

    /// The engine format the samples are read into.
    pub fn sample_format(&self) -> SampleFormat {
        match self.encoding {
            Encoding::Int { bytes: 1 | 2, .. } | Encoding::Codec { .. } => SampleFormat::I16,
            Encoding::Int { .. } => SampleFormat::I32,
            Encoding::Float { .. } => SampleFormat::F32,
        }
    }

    /// Bits per sample as stored (the significant bits for integer PCM).
    pub fn bits(&self) -> Option<u16> {
        match self.encoding {
            Encoding::Int { bits, .. } | Encoding::Float { bits } => Some(bits),
            Encoding::Codec { .. } => None,
        }
    }

    /// "PCM 24-bit integer", "IEEE float 32-bit", "A-law".
    pub fn codec_name(&self) -> String {
        match self.encoding {
            Encoding::Int { bits, .. } => format!("PCM {bits}-bit integer"),
            Encoding::Float { bits } => format!("PCM {bits}-bit float"),
            Encoding::Codec { tag } => codec_tag_name(tag).unwrap_or("unknown").to_string(),
        }
    }
}

pub fn codec_tag_name(tag: u16) -> Option<&'static str> {
    CODEC_TAGS.iter().find(|(t, _)| *t == tag).map(|(_, n)| *n)
}

/// Names of the format tags seen in the wild, for the message refusing them.
fn tag_name(tag: u16) -> &'static str {
    match tag {
        0x0000 => "unknown",
        0x0001 => "PCM",
        0x0003 => "IEEE float",
        0x0050 => "MPEG",
        0x0055 => "MP3",
        0x0031 => "GSM 6.10",
        0x0040 => "G.721 ADPCM",
        0x0092 => "Dolby AC3 SPDIF",
        0x1610 => "AAC",
        0x2000 => "AC3",
        0xFFFE => "extensible",
        _ => codec_tag_name(tag).unwrap_or("unknown"),
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// True when `head` (the first 12 bytes or more) starts a RIFF/WAVE file.
pub fn is_wav(head: &[u8]) -> bool {
    head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WAVE"
}

/// Reads the header of a RIFF/WAVE file of `len` bytes from its start, applying every rule.
/// The error is the message that follows the file's name ("is truncated: ...").
///
/// Only the chunk headers and the `fmt ` body are read; the reader is left anywhere.
pub fn read_header<R: Read + Seek>(r: &mut R, len: u64) -> Result<WavHeader, String> {
    let io = |e: std::io::Error| format!("could not be read: {e}");
    let mut head = [0u8; 12];
    r.seek(SeekFrom::Start(0)).map_err(io)?;
    r.read_exact(&mut head).map_err(io)?;
    if !is_wav(&head) {
        return Err("is not a RIFF/WAVE file".into());
    }
    let riff_size = le32(&head, 4) as u64;
    let mut fmt: Option<(Encoding, u16, u32, u64, bool)> = None;
    let mut pos: u64 = 12;
    loop {
        if pos + 8 > len {
            return Err(if pos < len {
                format!("is truncated: it ends inside a chunk header at byte {pos}")
            } else if fmt.is_none() {
                "has no fmt chunk".into()
            } else {
                "has no data chunk".into()
            });
        }
        let mut ch = [0u8; 8];
        r.seek(SeekFrom::Start(pos)).map_err(io)?;
        r.read_exact(&mut ch).map_err(io)?;
        let size = le32(&ch, 4) as u64;
        let body = pos + 8;
        match &ch[0..4] {
            b"fmt " if fmt.is_none() => {
                if size < 16 {
                    return Err(format!("has a fmt chunk of {size} bytes; at least 16 are needed"));
                }
                if body + size > len {
                    return Err("is truncated: its fmt chunk ends past the end of the file".into());
                }
                let mut b = vec![0u8; size.min(40) as usize];
                r.read_exact(&mut b).map_err(io)?;
                fmt = Some(parse_fmt(&b, size)?);
            }
            b"data" => {
                let Some((encoding, channels, sample_rate, block, extensible)) = fmt else {
                    return Err("has its data chunk before the fmt chunk".into());
                };
                let avail = len - body;
                let data_len = if let Encoding::Codec { .. } = encoding {
                    // Compressed data: whole blocks are symphonia's concern; the size must fit.
                    if size > avail {
                        return Err(format!("is truncated: its data chunk declares {size} bytes but only {avail} follow"));
                    }
                    size
                } else {
                    data_size(size, avail, riff_size, body, block)?
                };
                return Ok(WavHeader { encoding, channels, sample_rate, data_start: body, data_len, block, extensible });
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        pos = body + size + (size & 1);
    }
}

/// The `fmt ` rules: encoding, channels, rate and the frame size they imply.
fn parse_fmt(b: &[u8], size: u64) -> Result<(Encoding, u16, u32, u64, bool), String> {
    let mut tag = le16(b, 0);
    let channels = le16(b, 2);
    let sample_rate = le32(b, 4);
    let block_align = le16(b, 12) as u64;
    let bits = le16(b, 14);
    let extensible = tag == TAG_EXTENSIBLE;
    let mut valid_bits = bits;
    if extensible {
        if size < 40 {
            return Err(format!("has a WAVE_FORMAT_EXTENSIBLE fmt chunk of {size} bytes; 40 are needed"));
        }
        valid_bits = le16(b, 18);
        if b[26..40] != GUID_TAIL {
            return Err("has a WAVE_FORMAT_EXTENSIBLE sub-format that is not a standard format GUID".into());
        }
        tag = le16(b, 24);
        if valid_bits == 0 {
            valid_bits = bits;
        }
        if valid_bits > bits {
            return Err(format!("says {valid_bits} valid bits in {bits}-bit samples"));
        }
    }
    if channels == 0 {
        return Err("has 0 channels in its header".into());
    }
    if channels > MAX_CHANNELS {
        return Err(format!("has {channels} channels; remotemedia reads at most {MAX_CHANNELS}"));
    }
    if sample_rate == 0 {
        return Err("has a sample rate of 0 Hz in its header".into());
    }
    let encoding = match tag {
        TAG_PCM if (1..=32).contains(&bits) => Encoding::Int { bits: valid_bits, bytes: bits.div_ceil(8) as u8 },
        TAG_FLOAT if bits == 32 || bits == 64 => Encoding::Float { bits },
        TAG_PCM | TAG_FLOAT => {
            let kind = if tag == TAG_PCM { "integer" } else { "float" };
            return Err(format!(
                "holds {bits}-bit {kind} samples; supported are 8/16/24/32-bit integer and 32/64-bit float"
            ));
        }
        t if codec_tag_name(t).is_some() => return Ok((Encoding::Codec { tag: t }, channels, sample_rate, block_align, extensible)),
        t => return Err(format!("holds format tag {t:#06x} ({}), which remotemedia cannot decode", tag_name(t))),
    };
    let bytes = match encoding {
        Encoding::Int { bytes, .. } => bytes as u64,
        Encoding::Float { bits } => bits as u64 / 8,
        Encoding::Codec { .. } => unreachable!("returned above"),
    };
    let block = channels as u64 * bytes;
    if block_align != block {
        return Err(format!(
            "has a block align of {block_align} bytes, but {channels} channels of {bytes}-byte samples make {block}-byte frames"
        ));
    }
    Ok((encoding, channels, sample_rate, block, extensible))
}

/// The data rules: the size must fit the file, must not be a never-written 0, must be whole frames.
fn data_size(size: u64, avail: u64, riff_size: u64, body: u64, block: u64) -> Result<u64, String> {
    let size = if size == 0xFFFF_FFFF {
        // A streamed WAV (written to a pipe) whose size was never known: the data runs to the end.
        avail
    } else if size > avail {
        return Err(format!("is truncated: its data chunk declares {size} bytes but only {avail} follow"));
    } else if size == 0 && avail > 0 && riff_size + 8 <= body {
        return Err(format!(
            "was never finished: its data chunk declares 0 bytes but {avail} bytes follow (the writer stopped before writing the sizes)"
        ));
    } else {
        size
    };
    if size % block != 0 {
        return Err(format!("has a data chunk of {size} bytes, which is not a whole number of {block}-byte frames"));
    }
    Ok(size)
}

/// Converts whole frames of stored samples (`bytes`, a multiple of the sample size) and appends
/// them to `out`, whose format is [`WavHeader::sample_format`].
pub fn decode_into(encoding: Encoding, bytes: &[u8], out: &mut Samples) {
    match (encoding, out) {
        (Encoding::Int { bytes: 1, .. }, Samples::I16(v)) => v.make_mut().extend(bytes.iter().map(|&b| ((b as i16) - 128) << 8)),
        (Encoding::Int { bytes: 2, .. }, Samples::I16(v)) => {
            v.make_mut().extend(bytes.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])))
        }
        (Encoding::Int { bytes: 3, .. }, Samples::I32(v)) => {
            v.make_mut().extend(bytes.chunks_exact(3).map(|c| i32::from_le_bytes([0, c[0], c[1], c[2]])))
        }
        (Encoding::Int { bytes: 4, .. }, Samples::I32(v)) => {
            v.make_mut().extend(bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        }
        (Encoding::Float { bits: 32 }, Samples::F32(v)) => {
            v.make_mut().extend(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        }
        (Encoding::Float { bits: 64 }, Samples::F32(v)) => v.make_mut().extend(
            bytes.chunks_exact(8).map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32),
        ),
        (e, out) => unreachable!("decode_into: {e:?} into {:?}", out.format()),
    }
}

/// An empty sample vector of `format` with room for `n` samples.
pub fn samples_with_capacity(format: SampleFormat, n: usize) -> Samples {
    match format {
        SampleFormat::F32 => Samples::F32(Vec::with_capacity(n).into()),
        SampleFormat::I16 => Samples::I16(Vec::with_capacity(n).into()),
        SampleFormat::I32 => Samples::I32(Vec::with_capacity(n).into()),
    }
}

/// How samples are stored in a WAV file we write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WavSample {
    I16,
    I24,
    I32,
    F32,
}

impl WavSample {
    pub fn bytes(self) -> u64 {
        match self {
            WavSample::I16 => 2,
            WavSample::I24 => 3,
            WavSample::I32 | WavSample::F32 => 4,
        }
    }
}

/// The speaker mask of the usual layouts (mono, stereo, quad, 5.1, 7.1); 0 ("no particular
/// speakers", allowed by the specification) for the others.
fn channel_mask(channels: u16) -> u32 {
    match channels {
        1 => 0x4,
        2 => 0x3,
        4 => 0x33,
        6 => 0x3F,
        8 => 0x63F,
        _ => 0,
    }
}

/// The bytes of a WAV header for `frames` frames (the sizes are patched again by a streaming
/// writer once the count is known). Fails when the data would not fit a 4 GiB RIFF file.
pub fn header(sample: WavSample, channels: u16, sample_rate: u32, frames: u64) -> Result<Vec<u8>, String> {
    let bytes = sample.bytes();
    let block = channels as u64 * bytes;
    let data_len = frames * block;
    let float = sample == WavSample::F32;
    // Float is never extensible: sox reads an extensible float header as missing the cbSize of
    // the float sub-format and warns (on libsndfile's WAVEX float files too); it writes
    // multichannel float as a plain float `fmt ` itself.
    let extensible = !float && (channels > 2 || bytes > 2);
    let fmt_len: u64 = if extensible { 40 } else if float { 18 } else { 16 };
    // The fact chunk (frame count) is required for every non-PCM file.
    let fact = float;
    let riff = 4 + 8 + fmt_len + if fact { 12 } else { 0 } + 8 + data_len + (data_len & 1);
    if riff > u32::MAX as u64 {
        return Err(format!(
            "{data_len} bytes of samples do not fit a WAV file (4 GiB at most); write FLAC instead (--out-format flac / format=\"flac\")"
        ));
    }
    let mut h = Vec::with_capacity(80);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(riff as u32).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&(fmt_len as u32).to_le_bytes());
    let tag = if extensible { TAG_EXTENSIBLE } else if float { TAG_FLOAT } else { TAG_PCM };
    h.extend_from_slice(&tag.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&sample_rate.to_le_bytes());
    h.extend_from_slice(&((sample_rate as u64 * block) as u32).to_le_bytes());
    h.extend_from_slice(&(block as u16).to_le_bytes());
    h.extend_from_slice(&((bytes * 8) as u16).to_le_bytes());
    if extensible {
        h.extend_from_slice(&22u16.to_le_bytes());
        h.extend_from_slice(&((bytes * 8) as u16).to_le_bytes());
        h.extend_from_slice(&channel_mask(channels).to_le_bytes());
        h.extend_from_slice(&(if float { TAG_FLOAT } else { TAG_PCM }).to_le_bytes());
        h.extend_from_slice(&GUID_TAIL);
    } else if float {
        h.extend_from_slice(&0u16.to_le_bytes());
    }
    if fact {
        h.extend_from_slice(b"fact");
        h.extend_from_slice(&4u32.to_le_bytes());
        h.extend_from_slice(&(frames.min(u32::MAX as u64) as u32).to_le_bytes());
    }
    h.extend_from_slice(b"data");
    h.extend_from_slice(&(data_len as u32).to_le_bytes());
    Ok(h)
}

/// A borrowed run of samples in one of the engine's formats.
#[derive(Clone, Copy, Debug)]
pub enum SampleSlice<'a> {
    F32(&'a [f32]),
    I16(&'a [i16]),
    I32(&'a [i32]),
}

impl<'a> SampleSlice<'a> {
    pub fn of(samples: &'a Samples) -> SampleSlice<'a> {
        match samples {
            Samples::F32(v) => SampleSlice::F32(v),
            Samples::I16(v) => SampleSlice::I16(v),
            Samples::I32(v) => SampleSlice::I32(v),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            SampleSlice::F32(v) => v.len(),
            SampleSlice::I16(v) => v.len(),
            SampleSlice::I32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Samples `a..b`.
    pub fn range(&self, a: usize, b: usize) -> SampleSlice<'a> {
        match *self {
            SampleSlice::F32(v) => SampleSlice::F32(&v[a..b]),
            SampleSlice::I16(v) => SampleSlice::I16(&v[a..b]),
            SampleSlice::I32(v) => SampleSlice::I32(&v[a..b]),
        }
    }
}

/// Appends `samples` to `out` as stored samples of `sample`, converting with the engine's rules
/// (`src/nodes/format.rs`): f32 → integer scaled by 2^(bits-1), clipped, rounded to nearest
/// (ties to even); i32 → 16/24-bit keeps the top bits, rounded; i16 → 24/32-bit shifted left.
pub fn encode_into(sample: WavSample, samples: SampleSlice<'_>, out: &mut Vec<u8>) {
    use crate::nodes::format as f;
    fn put<T: Copy, const N: usize>(out: &mut Vec<u8>, v: &[T], bytes: impl Fn(T) -> [u8; N]) {
        out.reserve(v.len() * N);
        for &x in v {
            out.extend_from_slice(&bytes(x));
        }
    }
    match (sample, samples) {
        (WavSample::I16, SampleSlice::I16(v)) => put(out, v, i16::to_le_bytes),
        (WavSample::I16, SampleSlice::I32(v)) => put(out, &f::i32_to_i16(v), i16::to_le_bytes),
        (WavSample::I16, SampleSlice::F32(v)) => put(out, &f::f32_to_i16(v), i16::to_le_bytes),
        (WavSample::I32, SampleSlice::I32(v)) => put(out, v, i32::to_le_bytes),
        (WavSample::I32, SampleSlice::I16(v)) => put(out, &f::i16_to_i32(v), i32::to_le_bytes),
        (WavSample::I32, SampleSlice::F32(v)) => put(out, &f::f32_to_i32(v), i32::to_le_bytes),
        (WavSample::F32, SampleSlice::F32(v)) => put(out, v, f32::to_le_bytes),
        (WavSample::F32, SampleSlice::I16(v)) => put(out, &f::i16_to_f32(v), f32::to_le_bytes),
        (WavSample::F32, SampleSlice::I32(v)) => put(out, &f::i32_to_f32(v), f32::to_le_bytes),
        (WavSample::I24, s) => put(out, &to_i24(s), |x: i32| {
            let b = x.to_le_bytes();
            [b[0], b[1], b[2]]
        }),
    }
}

/// Samples as 24-bit integers (in the low 24 bits of an i32).
pub fn to_i24(samples: SampleSlice<'_>) -> Vec<i32> {
    match samples {
        SampleSlice::I16(v) => v.iter().map(|&x| (x as i32) << 8).collect(),
        // x / 256 rounded to nearest, ties to even, clipped to the 24-bit range.
        SampleSlice::I32(v) => v.iter().map(|&x| round_shift(x as i64, 8).clamp(-(1 << 23), (1 << 23) - 1) as i32).collect(),
        SampleSlice::F32(v) => v.iter().map(|&x| f32_to_int(x, 23)).collect(),
    }
}

/// `x / 2^shift` rounded to nearest, ties to even.
fn round_shift(x: i64, shift: u32) -> i64 {
    let q = x >> shift;
    let r = x - (q << shift);
    let half = 1i64 << (shift - 1);
    if r > half || (r == half && q & 1 == 1) {
        q + 1
    } else {
        q
    }
}

/// An f32 sample as an integer of `frac_bits + 1` bits: `x * 2^frac_bits`, clipped, rounded to
/// nearest with ties to even; NaN → 0.
pub fn f32_to_int(x: f32, frac_bits: u32) -> i32 {
    let scale = (1u64 << frac_bits) as f64;
    let y = (x as f64 * scale).clamp(-scale, scale - 1.0);
    if y.is_nan() {
        0
    } else {
        y.round_ties_even() as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn parse(bytes: &[u8]) -> Result<WavHeader, String> {
        read_header(&mut Cursor::new(bytes), bytes.len() as u64)
    }

    fn file(sample: WavSample, channels: u16, frames: u64) -> Vec<u8> {
        let mut f = header(sample, channels, 8000, frames).expect("header");
        f.resize(f.len() + (frames * channels as u64 * sample.bytes()) as usize, 0);
        f
    }

    #[test]
    fn written_headers_read_back() {
        for (sample, channels, enc, ext) in [
            (WavSample::I16, 1, Encoding::Int { bits: 16, bytes: 2 }, false),
            (WavSample::I16, 6, Encoding::Int { bits: 16, bytes: 2 }, true),
            (WavSample::I24, 2, Encoding::Int { bits: 24, bytes: 3 }, true),
            (WavSample::I32, 1, Encoding::Int { bits: 32, bytes: 4 }, true),
            (WavSample::F32, 2, Encoding::Float { bits: 32 }, false),
            (WavSample::F32, 3, Encoding::Float { bits: 32 }, false),
        ] {
            let f = file(sample, channels, 5);
            let h = parse(&f).expect("parse");
            assert_eq!((h.encoding, h.channels, h.sample_rate, h.frames(), h.extensible), (enc, channels, 8000, 5, ext));
            assert_eq!(h.data_start as usize + h.data_len as usize, f.len());
        }
    }

    #[test]
    fn truncated_unfinished_and_inconsistent_files_are_refused() {
        let f = file(WavSample::I16, 2, 10);
        let err = |b: &[u8]| parse(b).expect_err("accepted");
        assert!(err(&f[..f.len() - 4]).starts_with("is truncated: its data chunk declares 40 bytes but only 36 follow"));
        assert_eq!(err(&f[..40]), "is truncated: it ends inside a chunk header at byte 36");
        assert_eq!(err(&f[..36]), "has no data chunk");
        assert_eq!(err(&f[..20]), "is truncated: its fmt chunk ends past the end of the file");
        assert_eq!(err(&f[..12]), "has no fmt chunk");
        // Sizes never written (RIFF and data sizes 0) with samples following.
        let mut g = f.clone();
        g[4..8].copy_from_slice(&0u32.to_le_bytes());
        g[40..44].copy_from_slice(&0u32.to_le_bytes());
        assert!(err(&g).starts_with("was never finished"));
        // A real empty file is fine.
        let h = parse(&file(WavSample::I16, 2, 0)).expect("empty");
        assert_eq!(h.frames(), 0);
        // A partial frame.
        let mut g = f.clone();
        g[40..44].copy_from_slice(&39u32.to_le_bytes());
        assert!(err(&g).contains("not a whole number of 4-byte frames"));
        // The block align disagrees with the channels.
        let mut g = f.clone();
        g[32..34].copy_from_slice(&2u16.to_le_bytes());
        assert!(err(&g).contains("block align of 2 bytes"));
        // 65535 channels: a clear message instead of a sample-size complaint.
        let mut g = f.clone();
        g[22..24].copy_from_slice(&65535u16.to_le_bytes());
        assert_eq!(err(&g), "has 65535 channels; remotemedia reads at most 256");
        // Streamed (unknown) size runs to the end of the file.
        let mut g = f.clone();
        g[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&g).expect("streamed").frames(), 10);
    }

    #[test]
    fn f32_to_integer_rounds_half_to_even_and_clips() {
        assert_eq!(f32_to_int(1.0, 23), (1 << 23) - 1);
        assert_eq!(f32_to_int(-1.0, 23), -(1 << 23));
        assert_eq!(f32_to_int(2.5 / 8_388_608.0, 23), 2);
        assert_eq!(f32_to_int(3.5 / 8_388_608.0, 23), 4);
        assert_eq!(f32_to_int(f32::NAN, 23), 0);
        assert_eq!(f32_to_int(f32::INFINITY, 15), 32767);
        assert_eq!(to_i24(SampleSlice::I32(&[0x7FFF_FFFF, i32::MIN, 384, 128, 640])), vec![(1 << 23) - 1, -(1 << 23), 2, 0, 2]);
    }
}
