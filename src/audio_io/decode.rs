//! Every format other than plain RIFF/WAVE PCM, through symphonia (MPL-2.0, pure Rust): the
//! container found from the file's content (the extension is only a hint), the first audio
//! track decoded packet by packet, each packet's samples appended in the engine's format.
//!
//! Sample formats: 8/16-bit integer codecs give i16; 24-bit and 32-bit give i32 filling the i32
//! range (FLAC and ALAC of 16 bits or fewer give i16, bit for bit); float and lossy codecs give
//! f32 (64-bit float is rounded to f32).
//!
//! Delay and padding: symphonia trims the encoder delay and padding the container declares
//! (gapless mode, its default): the Ogg granule positions, the LAME/Xing header of an MP3, the
//! edit list of an MP4 (its start, the AAC priming, and its length, which drops the padding, are
//! applied here: see `mp4.rs`). Where a file declares none, the decoder's own
//! delay stays at the start, as in any decoder that does not trim.
//!
//! Strictness: a packet that fails to decode, a file that ends inside a packet, or fewer frames
//! than the header declares is an error naming the file and the time where it happened; nothing
//! is skipped silently.

use std::fs::File;

use symphonia::core::audio::GenericAudioBufferRef;
use symphonia::core::codecs::audio::well_known as ids;
use symphonia::core::codecs::audio::{AudioCodecId, AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

use super::wav::MAX_CHANNELS;
use super::FileInfo;
use crate::data::{SampleFormat, Samples};

/// What `remotemedia` decodes, for the message refusing anything else.
pub const SUPPORTED: &str = "WAV (integer/float PCM, A-law, µ-law, ADPCM), FLAC, MP3, Ogg Vorbis, \
                             AAC and ALAC in MP4/M4A, AIFF, CAF and Matroska/WebM (Vorbis, FLAC, PCM)";

/// A decoding file: its demuxer, the decoder of its first audio track, and what it has decoded.
pub struct Decoding {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    target: SampleFormat,
    channels: usize,
    sample_rate: u32,
    /// Frames handed out so far.
    decoded: u64,
    /// Frames the container declares (after trimming), when it does.
    declared: Option<u64>,
    /// The first packet's samples, decoded at open time to learn the sample format.
    first: Option<Samples>,
    /// Encoder priming still to drop from the start (an MP4 edit list's offset).
    skip: u64,
    /// Frames to hand out at most (an MP4 edit list's length: the encoder's padding after it is
    /// dropped).
    limit: Option<u64>,
    done: bool,
}

fn container_name(short: &str) -> String {
    match short {
        "wav" | "riff" => "WAV",
        "flac" => "FLAC",
        "ogg" => "Ogg",
        "mp3" | "mpa" | "mp1" | "mp2" => "MPEG audio",
        "isomp4" | "mp4" => "MP4/M4A",
        "aiff" => "AIFF",
        "caf" => "CAF",
        "mkv" | "matroska" => "Matroska/WebM",
        "adts" | "aac" => "ADTS",
        other => other,
    }
    .to_string()
}

/// A readable name for a codec id, whether or not a decoder for it is built in.
pub fn codec_name(id: AudioCodecId) -> String {
    // PCM by its layout in our words ("PCM 24-bit integer", as WAV files are described), whatever
    // the byte order; other registered decoders by their own long names.
    let is_pcm = (ids::CODEC_ID_PCM_S32LE..=ids::CODEC_ID_PCM_F64BE_PLANAR).contains(&id);
    if !is_pcm {
        if let Some(reg) = symphonia::default::get_codecs().get_audio_decoder(id) {
            return reg.codec.info.long_name.to_string();
        }
    }
    let name = match id {
        ids::CODEC_ID_OPUS => "Opus",
        ids::CODEC_ID_VORBIS => "Vorbis",
        ids::CODEC_ID_MP1 => "MPEG-1 Layer I",
        ids::CODEC_ID_MP2 => "MPEG-1 Layer II",
        ids::CODEC_ID_MP3 => "MP3",
        ids::CODEC_ID_AAC => "AAC",
        ids::CODEC_ID_AC3 => "AC-3",
        ids::CODEC_ID_EAC3 => "E-AC-3",
        ids::CODEC_ID_DCA => "DTS",
        ids::CODEC_ID_WMA => "WMA",
        ids::CODEC_ID_SPEEX => "Speex",
        ids::CODEC_ID_FLAC => "FLAC",
        ids::CODEC_ID_ALAC => "ALAC",
        ids::CODEC_ID_WAVPACK => "WavPack",
        ids::CODEC_ID_MONKEYS_AUDIO => "Monkey's Audio",
        ids::CODEC_ID_TTA => "TTA",
        ids::CODEC_ID_PCM_ALAW => "A-law",
        ids::CODEC_ID_PCM_MULAW => "µ-law",
        ids::CODEC_ID_PCM_S8 | ids::CODEC_ID_PCM_U8 => "PCM 8-bit integer",
        ids::CODEC_ID_PCM_S16LE | ids::CODEC_ID_PCM_S16BE | ids::CODEC_ID_PCM_U16LE | ids::CODEC_ID_PCM_U16BE => {
            "PCM 16-bit integer"
        }
        ids::CODEC_ID_PCM_S24LE | ids::CODEC_ID_PCM_S24BE | ids::CODEC_ID_PCM_U24LE | ids::CODEC_ID_PCM_U24BE => {
            "PCM 24-bit integer"
        }
        ids::CODEC_ID_PCM_S32LE | ids::CODEC_ID_PCM_S32BE | ids::CODEC_ID_PCM_U32LE | ids::CODEC_ID_PCM_U32BE => {
            "PCM 32-bit integer"
        }
        ids::CODEC_ID_PCM_F32LE | ids::CODEC_ID_PCM_F32BE => "PCM 32-bit float",
        ids::CODEC_ID_PCM_F64LE | ids::CODEC_ID_PCM_F64BE => "PCM 64-bit float",
        _ => return format!("codec {id}"),
    };
    name.to_string()
}

/// Codecs whose decoded samples are exactly the encoded ones.
fn is_lossless(id: AudioCodecId) -> bool {
    matches!(id, ids::CODEC_ID_FLAC | ids::CODEC_ID_ALAC) || (ids::CODEC_ID_PCM_S32LE..=ids::CODEC_ID_PCM_F64BE_PLANAR).contains(&id)
}

/// The first bytes of a file, readable: ASCII as text, other bytes as `\xNN` escapes.
pub fn describe_start(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "an empty file".into();
    }
    let head = &bytes[..bytes.len().min(16)];
    let text: String = head.iter().flat_map(|&b| std::ascii::escape_default(b)).map(char::from).collect();
    format!("\"{text}\"")
}

fn time(frames: u64, rate: u32) -> String {
    format!("{:.3} s", frames as f64 / rate.max(1) as f64)
}

/// Runs third-party decoding code, turning a panic into an error message (printed nowhere: the
/// caller reports it as the file's problem).
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_quiet_hook();
    QUIET.with(|q| q.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    result.map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string())
    })
}

thread_local! {
    /// Set while [`guarded`] runs: a panic then is reported as an error, not printed.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn install_quiet_hook() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
}

impl Decoding {
    /// Probes and opens `file` (`len` bytes, starting with `head`). The error is the message
    /// that follows the file's name.
    pub fn open(file: File, len: u64, head: &[u8], extension: Option<&str>) -> Result<(Decoding, FileInfo), String> {
        // A second handle for reading the MP4 edit list once the track is known. It shares the
        // file position with the demuxer's handle, so that position is put back after use.
        let mut boxes = file.try_clone().map_err(|e| format!("could not be read: {e}"))?;
        let mss = MediaSourceStream::new(Box::new(file), MediaSourceStreamOptions::default());
        let mut hint = Hint::new();
        if let Some(ext) = extension {
            hint.with_extension(ext);
        }
        let unknown = || {
            format!(
                "is not a supported audio file: no known container found (it starts with {}, {len} bytes in all); \
                 remotemedia reads {SUPPORTED}",
                describe_start(head)
            )
        };
        // symphonia can panic on a crafted header (an AIFF with 32770 channels of 16 bits
        // overflowed a u16 in its frame size): a file's content must never crash the caller.
        let probed = guarded(|| symphonia::default::get_probe().probe(&hint, mss, FormatOptions::default(), MetadataOptions::default()))
            .map_err(|m| format!("is not a readable audio file: its header is malformed (the decoder failed on it: {m})"))?;
        let format = probed
            .map_err(|e| match e {
                SymError::Unsupported(_) => unknown(),
                SymError::IoError(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                    format!("is truncated or not audio: it ended while its header was read ({len} bytes)")
                }
                other => format!("is not a readable audio file: {other}"),
            })?;
        let container = container_name(format.format_info().short_name);
        let track = format
            .default_track(TrackType::Audio)
            .or_else(|| format.first_track(TrackType::Audio))
            .ok_or_else(|| format!("is a {container} file without an audio track"))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| format!("is a {container} file whose audio track has no codec parameters"))?
            .clone();
        let codec = codec_name(params.codec);
        let track_id = track.id;
        let time_base = track.time_base;
        let mut declared = track.num_frames;
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default())
            .map_err(|e| match e {
                SymError::Unsupported(_) => format!(
                    "is {container} with {codec} audio, which remotemedia cannot decode; it reads {SUPPORTED}"
                ),
                other => format!("is {container} with {codec} audio that cannot be decoded: {other}"),
            })?;
        let sample_rate = params.sample_rate.filter(|&r| r > 0).ok_or_else(|| format!("is {container} with {codec} audio that does not give its sample rate"))?;
        let channels = params.channels.as_ref().map(|c| c.count()).unwrap_or(0);
        if channels > MAX_CHANNELS as usize {
            return Err(format!("has {channels} channels; remotemedia reads at most {MAX_CHANNELS}"));
        }
        // The MP4 edit list's start (AAC priming), when the track counts time in frames.
        let skip = match (container.as_str(), time_base) {
            ("MP4/M4A", Some(tb)) if tb.numer.get() == 1 && tb.denom.get() == sample_rate => {
                use std::io::{Seek, SeekFrom};
                let at = boxes.stream_position().map_err(|e| format!("could not be read: {e}"))?;
                let skip = super::mp4::edit_start(&mut boxes, len, track_id).unwrap_or(0);
                boxes.seek(SeekFrom::Start(at)).map_err(|e| format!("could not be read: {e}"))?;
                skip
            }
            _ => 0,
        };
        declared = declared.map(|d| d.saturating_sub(skip));
        // With an edit list, its length is the audio's (the rest of the last packet is padding).
        let limit = if skip > 0 { declared } else { None };
        let bits = params.bits_per_sample.or_else(|| match params.codec {
            ids::CODEC_ID_ALAC => params.extra_data.as_deref().and_then(alac_bit_depth),
            _ => None,
        });
        let mut d = Decoding {
            format,
            decoder,
            track_id,
            // Settled by the first packet below.
            target: SampleFormat::F32,
            channels,
            sample_rate,
            decoded: 0,
            declared,
            first: None,
            skip,
            limit,
            done: false,
        };
        let bits = d.decode_first(bits)?;
        if d.channels == 0 {
            return Err(format!("is {container} with {codec} audio that does not give its channel count"));
        }
        let lossless = is_lossless(params.codec);
        let info = FileInfo {
            container,
            codec,
            sample_rate,
            channels: d.channels as u16,
            frames: declared,
            bits: if lossless { bits } else { None },
            sample_format: d.target,
            lossless,
            file_size: len,
        };
        Ok((d, info))
    }

    /// Decodes the first packet to learn the sample format (and, for codecs that only say so
    /// in their first frame, the channel count); its samples are kept for the first read.
    /// Returns the bits per sample as the decoder knows them.
    fn decode_first(&mut self, bits: Option<u32>) -> Result<Option<u32>, String> {
        if self.next_buffer()?.is_none() {
            self.done = true;
            self.target = match bits {
                Some(b) if b <= 16 => SampleFormat::I16,
                Some(_) => SampleFormat::I32,
                None => SampleFormat::F32,
            };
            self.first = Some(super::wav::samples_with_capacity(self.target, 0));
            return Ok(bits);
        }
        // The decoder's parameters after its first packet know more than the container's (ALAC's
        // bit depth lives in its own cookie).
        let bits = self.decoder.codec_params().bits_per_sample.or(bits);
        let (target, channels) = {
            let buf = self.decoder.last_decoded();
            let target = match buf {
                GenericAudioBufferRef::U8(_) | GenericAudioBufferRef::S8(_) => SampleFormat::I16,
                GenericAudioBufferRef::U16(_) | GenericAudioBufferRef::S16(_) => SampleFormat::I16,
                GenericAudioBufferRef::U24(_) | GenericAudioBufferRef::S24(_) => SampleFormat::I32,
                // FLAC and ALAC shift every bit depth up to fill 32 bits.
                GenericAudioBufferRef::U32(_) | GenericAudioBufferRef::S32(_) => match bits {
                    Some(b) if b <= 16 => SampleFormat::I16,
                    _ => SampleFormat::I32,
                },
                GenericAudioBufferRef::F32(_) | GenericAudioBufferRef::F64(_) => SampleFormat::F32,
            };
            (target, buf.spec().channels().count())
        };
        if self.channels == 0 {
            self.channels = channels;
        }
        self.target = target;
        let mut first = super::wav::samples_with_capacity(target, 0);
        self.append_last(&mut first)?;
        self.first = Some(first);
        Ok(bits)
    }

    /// Reads packets until one of the track decodes; `Ok(None)` at the end of the stream. A panic
    /// in the demuxer or decoder is this file's error, after the frames decoded so far.
    fn next_buffer(&mut self) -> Result<Option<()>, String> {
        let decoded = self.decoded;
        let rate = self.sample_rate;
        guarded(|| self.read_buffer()).unwrap_or_else(|m| {
            Err(format!("could not be decoded after {}: the decoder failed on it ({m})", time(decoded, rate)))
        })
    }

    fn read_buffer(&mut self) -> Result<Option<()>, String> {
        loop {
            let packet = match self.format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(None),
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(format!("is truncated: it ends inside a packet after {}", time(self.decoded, self.sample_rate)))
                }
                Err(SymError::ResetRequired) => {
                    return Err(format!(
                        "changes its stream layout after {} (a chained stream), which remotemedia does not read",
                        time(self.decoded, self.sample_rate)
                    ))
                }
                Err(SymError::DecodeError(m)) => {
                    return Err(format!("is corrupt after {}: {m}", time(self.decoded, self.sample_rate)))
                }
                Err(e) => return Err(format!("could not be read after {}: {e}", time(self.decoded, self.sample_rate))),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            return match self.decoder.decode(&packet) {
                Ok(_) => Ok(Some(())),
                Err(SymError::DecodeError(m)) => {
                    Err(format!("is corrupt after {}: {m}", time(self.decoded, self.sample_rate)))
                }
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    Err(format!("is truncated: its packet after {} is incomplete", time(self.decoded, self.sample_rate)))
                }
                Err(e) => Err(format!("could not be decoded after {}: {e}", time(self.decoded, self.sample_rate))),
            };
        }
    }

    /// Appends the decoder's last buffer to `out` in the target format.
    fn append_last(&mut self, out: &mut Samples) -> Result<(), String> {
        let buf = self.decoder.last_decoded();
        let channels = buf.spec().channels().count();
        if channels != self.channels {
            return Err(format!(
                "changes from {} to {channels} channels after {}, which remotemedia does not read",
                self.channels,
                time(self.decoded, self.sample_rate)
            ));
        }
        let frames = buf.frames();
        let n = buf.samples_interleaved();
        fn tail<T: Default + Clone>(v: &mut Vec<T>, n: usize) -> &mut [T] {
            let at = v.len();
            v.resize(at + n, T::default());
            &mut v[at..]
        }
        let before = out.len();
        match out {
            Samples::F32(v) => buf.copy_to_slice_interleaved::<f32, _>(tail(v.make_mut(), n)),
            Samples::I16(v) => buf.copy_to_slice_interleaved::<i16, _>(tail(v.make_mut(), n)),
            Samples::I32(v) => buf.copy_to_slice_interleaved::<i32, _>(tail(v.make_mut(), n)),
        }
        // Priming frames still to drop come out of this packet first.
        let drop = self.skip.min(frames as u64) as usize;
        if drop > 0 {
            let (a, b) = (before, before + drop * channels);
            match out {
                Samples::F32(v) => drop_range(v.make_mut(), a, b),
                Samples::I16(v) => drop_range(v.make_mut(), a, b),
                Samples::I32(v) => drop_range(v.make_mut(), a, b),
            }
            self.skip -= drop as u64;
        }
        let mut kept = (frames - drop) as u64;
        if let Some(limit) = self.limit {
            kept = kept.min(limit.saturating_sub(self.decoded));
            let end = before + kept as usize * channels;
            match out {
                Samples::F32(v) => v.make_mut().truncate(end),
                Samples::I16(v) => v.make_mut().truncate(end),
                Samples::I32(v) => v.make_mut().truncate(end),
            }
        }
        self.decoded += kept;
        Ok(())
    }

    /// The format samples come out in.
    pub fn sample_format(&self) -> SampleFormat {
        self.target
    }

    /// Decodes the next packet and appends its samples to `out` (in [`Self::sample_format`]);
    /// `Ok(false)` once the stream has ended (and every declared frame came out).
    pub fn decode_next(&mut self, out: &mut Samples) -> Result<bool, String> {
        if let Some(first) = self.first.take() {
            append_samples(out, first);
            return Ok(true);
        }
        if self.done {
            return Ok(false);
        }
        match self.next_buffer()? {
            Some(()) => {
                self.append_last(out)?;
                Ok(true)
            }
            None => {
                self.done = true;
                if let Some(declared) = self.declared {
                    if self.decoded < declared {
                        return Err(format!(
                            "is truncated: its header declares {declared} frames ({}) but only {} could be decoded",
                            time(declared, self.sample_rate),
                            self.decoded
                        ));
                    }
                }
                Ok(false)
            }
        }
    }

    /// Counts the frames by reading every packet without decoding (for `info` on files that do
    /// not declare their length).
    pub fn count_frames(mut self) -> Result<u64, String> {
        let mut frames: u64 = self.first.take().map(|s| (s.len() / self.channels.max(1)) as u64).unwrap_or(0);
        guarded(move || loop {
            match self.format.next_packet() {
                Ok(Some(p)) if p.track_id == self.track_id => frames = frames.saturating_add(p.dur.get()),
                Ok(Some(_)) => {}
                Ok(None) => return Ok(frames),
                Err(e) => return Err(format!("could not be read to count its frames: {e}")),
            }
        })
        .unwrap_or_else(|m| Err(format!("could not be read to count its frames: the demuxer failed on it ({m})")))
    }
}

/// The bit depth in an ALAC magic cookie (`ALACSpecificConfig`: frame length (4 bytes), version
/// (1), bit depth (1), ...), which may come wrapped in `frma` and `alac` atom headers. symphonia's
/// ALAC decoder fills 32 bits whatever the depth, so the depth is what tells 16-bit files apart.
fn alac_bit_depth(mut cookie: &[u8]) -> Option<u32> {
    for atom in [b"frma", b"alac"] {
        if cookie.len() >= 12 && &cookie[4..8] == atom {
            cookie = &cookie[12..];
        }
    }
    cookie.get(5).map(|&b| u32::from(b)).filter(|b| (1..=32).contains(b))
}

fn drop_range<T>(v: &mut Vec<T>, a: usize, b: usize) {
    v.drain(a..b);
}

/// Appends `more` to `out` (same format).
pub fn append_samples(out: &mut Samples, more: Samples) {
    match (out, more) {
        (Samples::F32(a), Samples::F32(b)) => a.make_mut().extend_from_slice(&b),
        (Samples::I16(a), Samples::I16(b)) => a.make_mut().extend_from_slice(&b),
        (Samples::I32(a), Samples::I32(b)) => a.make_mut().extend_from_slice(&b),
        (a, b) => unreachable!("append_samples: {:?} onto {:?}", b.format(), a.format()),
    }
}
