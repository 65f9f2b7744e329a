//! Opening an audio file: checked as a regular file, recognised from its content (RIFF/WAVE PCM
//! by [`super::wav`], everything else by symphonia through [`super::decode`]), then read whole
//! or chunk by chunk in constant memory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::decode::Decoding;
use super::wav::{self, Encoding, WavHeader};
use super::FileInfo;
use crate::data::{AudioBuffer, Samples};
use crate::error::Error;
use crate::file_safety;

/// Bytes read per step from a WAV file's data (whole frames are taken from it).
const WAV_STEP: u64 = 1 << 20;

/// Bytes of a file read at once when it is opened, to recognise it and parse a WAV header from
/// memory (see [`PrefixReader`]): a usual WAV header (RIFF, `fmt `, maybe `LIST`, `data`) is
/// well inside.
const HEAD_BYTES: u64 = 4096;

/// A file's first bytes, read once, standing for the file while its header is parsed: reads
/// inside `prefix` come from memory, reads past it from the file at that position, and a seek
/// only moves the position. Why: the WAV header is parsed chunk by chunk, a seek and a read
/// each (a dozen system calls for a usual file, ~10 µs on this project's VMs), and
/// `remotemedia batch` opens every one of its files on a worker.
struct PrefixReader<'a> {
    prefix: &'a [u8],
    file: &'a File,
    pos: u64,
}

impl Read for PrefixReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = match usize::try_from(self.pos).ok().and_then(|p| self.prefix.get(p..)).filter(|rest| !rest.is_empty()) {
            Some(rest) => {
                let n = rest.len().min(out.len());
                out[..n].copy_from_slice(&rest[..n]);
                n
            }
            None => read_at(self.file, out, self.pos)?,
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for PrefixReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start of the file");
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).ok_or_else(invalid)?,
            SeekFrom::End(d) => self.file.metadata()?.len().checked_add_signed(d).ok_or_else(invalid)?,
        };
        Ok(self.pos)
    }
}

/// Up to `n` bytes from the start of `file` (fewer only where it ends), without moving its
/// position.
fn read_prefix(file: &File, n: usize) -> std::io::Result<Vec<u8>> {
    let mut head = vec![0u8; n];
    let mut done = 0;
    while done < n {
        match read_at(file, &mut head[done..], done as u64) {
            Ok(0) => break,
            Ok(k) => done += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(done);
    Ok(head)
}

/// One read at byte `offset` of `file`.
#[cfg(unix)]
fn read_at(file: &File, out: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, out, offset)
}

#[cfg(not(unix))]
fn read_at(file: &File, out: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut f = file;
    f.seek(SeekFrom::Start(offset))?;
    f.read(out)
}

enum Source {
    Wav { file: File, header: WavHeader, left: u64, buf: Vec<u8> },
    Decoded(Box<Decoding>),
}

/// An open audio file. [`read_frames`](Self::read_frames) hands out chunks in constant memory;
/// [`read_all`](Self::read_all) the whole file.
pub struct AudioReader {
    path: PathBuf,
    info: FileInfo,
    source: Source,
    /// Decoded samples not yet handed out (codec packets do not match the chunk size).
    pending: Samples,
    done: bool,
}

fn input_error(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |msg| Error::Input(format!("'{}' {msg}", path.display()))
}

/// Opens `path` for reading. Errors: a missing file is `Error::Io` (`NotFound`); a file that is
/// not a regular file, not audio, truncated, corrupt or in a format we cannot decode is
/// `Error::Input` naming the path and what is wrong.
pub fn open(path: &Path) -> Result<AudioReader, Error> {
    let (mut file, metadata) = file_safety::open_input(path)?;
    let len = metadata.len();
    let io = |e: std::io::Error| Error::Io { context: format!("cannot read '{}'", path.display()), source: e };
    let head = read_prefix(&file, HEAD_BYTES.min(len) as usize).map_err(io)?;
    if wav::is_wav(&head) {
        let header = wav::read_header(&mut PrefixReader { prefix: &head, file: &file, pos: 0 }, len).map_err(input_error(path))?;
        if !matches!(header.encoding, Encoding::Codec { .. }) {
            file.seek(SeekFrom::Start(header.data_start)).map_err(io)?;
            let info = FileInfo {
                container: "WAV".into(),
                codec: header.codec_name(),
                sample_rate: header.sample_rate,
                channels: header.channels,
                frames: Some(header.frames()),
                bits: header.bits().map(u32::from),
                sample_format: header.sample_format(),
                lossless: true,
                file_size: len,
            };
            let pending = wav::samples_with_capacity(header.sample_format(), 0);
            let left = header.data_len;
            return Ok(AudioReader {
                path: path.to_path_buf(),
                info,
                source: Source::Wav { file, header, left, buf: Vec::new() },
                pending,
                done: false,
            });
        }
    }
    // Everything else, WAV with A-law/µ-law/ADPCM included, is symphonia's.
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let extension = path.extension().and_then(|e| e.to_str());
    let (decoding, info) = Decoding::open(file, len, &head[..head.len().min(16)], extension).map_err(input_error(path))?;
    let pending = wav::samples_with_capacity(decoding.sample_format(), 0);
    Ok(AudioReader { path: path.to_path_buf(), info, source: Source::Decoded(Box::new(decoding)), pending, done: false })
}

/// Reads a whole file (see [`open`] for the errors).
pub fn read(path: &Path) -> Result<AudioBuffer, Error> {
    open(path)?.read_all()
}

/// What a file holds, without decoding it (a file that does not declare its length has its
/// packets counted).
pub fn info(path: &Path) -> Result<FileInfo, Error> {
    let reader = open(path)?;
    let mut info = reader.info.clone();
    if info.frames.is_none() {
        if let Source::Decoded(d) = reader.source {
            info.frames = Some(d.count_frames().map_err(input_error(path))?);
        }
    }
    Ok(info)
}

impl AudioReader {
    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn wrap(&self, samples: Samples) -> AudioBuffer {
        AudioBuffer { samples, sample_rate: self.info.sample_rate, channels: self.info.channels }
    }

    /// The next `max_frames` frames (fewer only at the end of the file); `None` after the end.
    pub fn read_frames(&mut self, max_frames: usize) -> Result<Option<AudioBuffer>, Error> {
        let channels = self.info.channels as usize;
        let want = max_frames.max(1) * channels;
        let path = self.path.clone();
        match &mut self.source {
            Source::Wav { file, header, left, buf } => {
                let n = (want as u64 * (header.block / channels as u64)).min(*left);
                if n == 0 {
                    return Ok(None);
                }
                let mut out = wav::samples_with_capacity(header.sample_format(), (n / (header.block / channels as u64)) as usize);
                read_wav_bytes(file, n, buf, &path, header, left)?;
                wav::decode_into(header.encoding, buf, &mut out);
                Ok(Some(self.wrap(out)))
            }
            Source::Decoded(d) => {
                while self.pending.len() < want && !self.done {
                    if !d.decode_next(&mut self.pending).map_err(input_error(&path))? {
                        self.done = true;
                    }
                }
                if self.pending.is_empty() {
                    return Ok(None);
                }
                let at = want.min(self.pending.len());
                let rest = split_off(&mut self.pending, at);
                let chunk = std::mem::replace(&mut self.pending, rest);
                Ok(Some(self.wrap(chunk)))
            }
        }
    }

    /// Everything left in the file as one buffer.
    pub fn read_all(mut self) -> Result<AudioBuffer, Error> {
        let channels = self.info.channels as usize;
        let path = self.path.clone();
        let samples = match &mut self.source {
            Source::Wav { file, header, left, buf } => {
                if let Some(out) = read_stored_as_is(file, header, left, &path)? {
                    return Ok(self.wrap(out));
                }
                let sample_bytes = header.block / channels as u64;
                let mut out = wav::samples_with_capacity(header.sample_format(), (*left / sample_bytes) as usize);
                let step = (WAV_STEP / header.block).max(1) * header.block;
                while *left > 0 {
                    let n = step.min(*left);
                    read_wav_bytes(file, n, buf, &path, header, left)?;
                    wav::decode_into(header.encoding, buf, &mut out);
                }
                out
            }
            Source::Decoded(d) => {
                // Room for the declared length, but never more than a sane multiple of the file's
                // size (a damaged header must not reserve gigabytes).
                let declared = self.info.frames.unwrap_or(0).saturating_mul(channels as u64);
                let cap = declared.min(self.info.file_size.saturating_mul(16)) as usize;
                let mut out = std::mem::replace(&mut self.pending, wav::samples_with_capacity(d.sample_format(), 0));
                let have = out.len();
                reserve(&mut out, cap.saturating_sub(have));
                while d.decode_next(&mut out).map_err(input_error(&path))? {}
                out
            }
        };
        Ok(self.wrap(samples))
    }
}

/// Reads the next `n` data bytes into `buf`; a file that got shorter since its header was read
/// is an error, not a short read.
fn read_wav_bytes(file: &mut File, n: u64, buf: &mut Vec<u8>, path: &Path, header: &WavHeader, left: &mut u64) -> Result<(), Error> {
    buf.clear();
    buf.resize(n as usize, 0);
    file.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            let done = header.data_len - *left;
            Error::Input(format!("'{}' got shorter while it was read (after {done} bytes of samples)", path.display()))
        } else {
            Error::Io { context: format!("cannot read '{}'", path.display()), source: e }
        }
    })?;
    *left -= n;
    Ok(())
}

/// The rest of the data read straight into the sample vector when the file stores samples as the
/// engine holds them (16-bit and 32-bit integer, 32-bit float, little-endian): one read, no
/// conversion loop, no second buffer. `None` for every other layout.
fn read_stored_as_is(file: &mut File, header: &WavHeader, left: &mut u64, path: &Path) -> Result<Option<Samples>, Error> {
    if !cfg!(target_endian = "little") {
        return Ok(None);
    }
    let n = *left as usize;
    let done = header.data_len - *left;
    // Where the file's position stands (the data's start, moved on by what was read), without
    // asking the system for it.
    let at = header.data_start + done;
    let read = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Input(format!("'{}' got shorter while it was read (after {done} bytes of samples)", path.display()))
        } else {
            Error::Io { context: format!("cannot read '{}'", path.display()), source: e }
        }
    };
    let out = match header.encoding {
        Encoding::Int { bytes: 2, .. } => Samples::I16(fill_from_file(file, at, n / 2).map_err(read)?.into()),
        Encoding::Int { bytes: 4, .. } => Samples::I32(fill_from_file(file, at, n / 4).map_err(read)?.into()),
        Encoding::Float { bits: 32 } => Samples::F32(fill_from_file(file, at, n / 4).map_err(read)?.into()),
        _ => return Ok(None),
    };
    *left = 0;
    Ok(Some(out))
}

/// `count` values of `T` read from `file` at byte `offset` into a new vector. The vector is not
/// zeroed first: the kernel writes straight into its fresh memory. Zeroing it (`vec![0; n]`) cost
/// a third more than the read itself on 60 s of 16-bit stereo (315 µs against 230 µs), which made
/// us slower than libsndfile, whose numpy array is not zeroed either.
#[cfg(unix)]
fn fill_from_file<T: bytemuck::Pod>(file: &File, offset: u64, count: usize) -> std::io::Result<Vec<T>> {
    let mut v: Vec<T> = Vec::with_capacity(count);
    let len = count * std::mem::size_of::<T>();
    pread_all(file, v.as_mut_ptr().cast::<u8>(), len, offset)?;
    // SAFETY: pread_all wrote all `len` bytes (it fails otherwise), and any bit pattern is a valid
    // `T` (Pod).
    unsafe { v.set_len(count) };
    Ok(v)
}

#[cfg(not(unix))]
fn fill_from_file<T: bytemuck::Pod>(file: &File, offset: u64, count: usize) -> std::io::Result<Vec<T>> {
    use std::io::{Read, Seek};
    let mut v: Vec<T> = vec![T::zeroed(); count];
    let mut f = file;
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(bytemuck::cast_slice_mut(&mut v))?;
    Ok(v)
}

/// Reads exactly `len` bytes at `offset` into the memory at `ptr` (which has room for them);
/// `UnexpectedEof` when the file ends first.
#[cfg(unix)]
fn pread_all(file: &File, ptr: *mut u8, len: usize, offset: u64) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let fd = file.as_raw_fd();
    let mut done = 0usize;
    while done < len {
        // SAFETY: [ptr + done, ptr + len) lies inside the caller's allocation, which nothing else
        // touches meanwhile.
        let r = unsafe { libc::pread(fd, ptr.add(done).cast::<libc::c_void>(), len - done, (offset + done as u64) as libc::off_t) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        done += r as usize;
    }
    Ok(())
}

fn reserve(s: &mut Samples, n: usize) {
    match s {
        Samples::F32(v) => v.make_mut().reserve_exact(n),
        Samples::I16(v) => v.make_mut().reserve_exact(n),
        Samples::I32(v) => v.make_mut().reserve_exact(n),
    }
}

/// Splits `s` at sample `at`, returning the tail (like `Vec::split_off`).
fn split_off(s: &mut Samples, at: usize) -> Samples {
    match s {
        Samples::F32(v) => Samples::F32(v.make_mut().split_off(at).into()),
        Samples::I16(v) => Samples::I16(v.make_mut().split_off(at).into()),
        Samples::I32(v) => Samples::I32(v.make_mut().split_off(at).into()),
    }
}
