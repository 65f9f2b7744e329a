"""WAV files with the standard library and numpy only, for the pure-Python runtime: the twin of the
native reader and writer (``src/audio_io/wav.rs``), rule for rule and message for message, so both
runtimes give the same verdict on every file (``tests/python/test_wav_fuzz.py`` checks it).

Why not the ``wave`` module: it refuses float WAVs, which the native reader accepts, and accepts
truncated files, which both readers refuse. The rules (docs/files.md):

* RIFF/WAVE; integer PCM of 1-32 bits (8-bit and narrower -> int16, 9-16 -> int16, 17-24 -> int32
  shifted left by 8, 25-32 -> int32), 32/64-bit float -> float32, ``WAVE_FORMAT_EXTENSIBLE`` with a
  PCM or float sub-format; 1 to 256 channels.
* Refused: a data chunk longer than the file (truncated); a zero-size data chunk followed by data
  the RIFF size does not cover (the writer never wrote the sizes); a data size that is not whole
  frames; a block align that disagrees with channels x sample size; a chunk header cut short.
* A-law, µ-law and ADPCM WAVs need the native extension.

Writing: 16-bit PCM with a plain ``fmt`` chunk; 24/32-bit PCM and integer PCM of more than two
channels as ``WAVE_FORMAT_EXTENSIBLE``; 32-bit float (any channel count) with an 18-byte ``fmt`` and a ``fact`` chunk -- the same
bytes as the native writer; written to a temporary name and renamed into place.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from typing import BinaryIO, NamedTuple, Optional, Tuple, Union

import numpy as np

from .audio import Audio
from .errors import InputError
from ._pure.format import convert

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["read_wav", "write_wav", "WavHeader", "read_header", "open_input", "WavReader", "MAX_CHANNELS"]

#: The most channels a file may have (the native ``wav::MAX_CHANNELS``).
MAX_CHANNELS = 256

_PCM, _FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
_GUID_TAIL = bytes([0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71])
#: Format tags only the native extension decodes (through symphonia).
_CODEC_TAGS = {0x0002: "MS ADPCM", 0x0006: "A-law", 0x0007: "µ-law", 0x0011: "IMA ADPCM"}
_TAG_NAMES = {
    0x0000: "unknown", 0x0001: "PCM", 0x0003: "IEEE float", 0x0050: "MPEG", 0x0055: "MP3",
    0x0031: "GSM 6.10", 0x0040: "G.721 ADPCM", 0x0092: "Dolby AC3 SPDIF", 0x1610: "AAC",
    0x2000: "AC3", 0xFFFE: "extensible", **_CODEC_TAGS,
}


class WavHeader(NamedTuple):
    """What the header says, once every rule has passed (``kind`` is "int", "float" or "codec")."""

    kind: str
    bits: int
    sample_bytes: int
    tag: int
    channels: int
    sample_rate: int
    data_start: int
    data_len: int
    block: int
    extensible: bool

    @property
    def frames(self) -> int:
        return self.data_len // self.block if self.block else 0

    @property
    def dtype(self) -> np.dtype:
        if self.kind == "float":
            return np.dtype(np.float32)
        return np.dtype(np.int16 if self.sample_bytes <= 2 else np.int32)

    def codec_name(self) -> str:
        if self.kind == "int":
            return f"PCM {self.bits}-bit integer"
        if self.kind == "float":
            return f"PCM {self.bits}-bit float"
        return _CODEC_TAGS.get(self.tag, "unknown")


class _Refused(Exception):
    """A rule failed; the message follows the file's name."""


def is_wav(head: bytes) -> bool:
    return len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def _describe_start(data: bytes) -> str:
    if not data:
        return "an empty file"
    text = "".join(chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x27, 0x5C) else _escape(b) for b in data[:16])
    return f'"{text}"'


def _escape(b: int) -> str:
    # Rust's ascii::escape_default: \t \r \n \' \" \\ by name, other non-printables as \xNN.
    return {0x09: "\\t", 0x0D: "\\r", 0x0A: "\\n", 0x27: "\\'", 0x22: '\\"', 0x5C: "\\\\"}.get(b, f"\\x{b:02x}")


def read_header(f: BinaryIO, length: int) -> WavHeader:
    """Reads and checks the header of a RIFF/WAVE file of ``length`` bytes (``_Refused`` on failure)."""
    f.seek(0)
    head = f.read(12)
    if not is_wav(head):
        raise _Refused("is not a RIFF/WAVE file")
    riff_size = struct.unpack("<I", head[4:8])[0]
    fmt: Optional[tuple] = None
    pos = 12
    while True:
        if pos + 8 > length:
            if pos < length:
                raise _Refused(f"is truncated: it ends inside a chunk header at byte {pos}")
            raise _Refused("has no fmt chunk" if fmt is None else "has no data chunk")
        f.seek(pos)
        ch = f.read(8)
        cid, size = ch[:4], struct.unpack("<I", ch[4:8])[0]
        body = pos + 8
        if cid == b"fmt " and fmt is None:
            if size < 16:
                raise _Refused(f"has a fmt chunk of {size} bytes; at least 16 are needed")
            if body + size > length:
                raise _Refused("is truncated: its fmt chunk ends past the end of the file")
            fmt = _parse_fmt(f.read(min(size, 40)), size)
        elif cid == b"data":
            if fmt is None:
                raise _Refused("has its data chunk before the fmt chunk")
            kind, bits, sample_bytes, tag, channels, rate, block, extensible = fmt
            avail = length - body
            if kind == "codec":
                if size > avail:
                    raise _Refused(f"is truncated: its data chunk declares {size} bytes but only {avail} follow")
                data_len = size
            else:
                data_len = _data_size(size, avail, riff_size, body, block)
            return WavHeader(kind, bits, sample_bytes, tag, channels, rate, body, data_len, block, extensible)
        pos = body + size + (size & 1)


def _parse_fmt(b: bytes, size: int) -> tuple:
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", b[:16])
    extensible = tag == _EXTENSIBLE
    valid_bits = bits
    if extensible:
        if size < 40:
            raise _Refused(f"has a WAVE_FORMAT_EXTENSIBLE fmt chunk of {size} bytes; 40 are needed")
        valid_bits = struct.unpack("<H", b[18:20])[0]
        if b[26:40] != _GUID_TAIL:
            raise _Refused("has a WAVE_FORMAT_EXTENSIBLE sub-format that is not a standard format GUID")
        tag = struct.unpack("<H", b[24:26])[0]
        if valid_bits == 0:
            valid_bits = bits
        if valid_bits > bits:
            raise _Refused(f"says {valid_bits} valid bits in {bits}-bit samples")
    if channels == 0:
        raise _Refused("has 0 channels in its header")
    if channels > MAX_CHANNELS:
        raise _Refused(f"has {channels} channels; remotemedia reads at most {MAX_CHANNELS}")
    if rate == 0:
        raise _Refused("has a sample rate of 0 Hz in its header")
    if tag == _PCM and 1 <= bits <= 32:
        kind, sample_bytes, bits_out = "int", (bits + 7) // 8, valid_bits
    elif tag == _FLOAT and bits in (32, 64):
        kind, sample_bytes, bits_out = "float", bits // 8, bits
    elif tag in (_PCM, _FLOAT):
        kind_name = "integer" if tag == _PCM else "float"
        raise _Refused(f"holds {bits}-bit {kind_name} samples; supported are 8/16/24/32-bit integer and 32/64-bit float")
    elif tag in _CODEC_TAGS:
        return ("codec", 0, 0, tag, channels, rate, block_align, extensible)
    else:
        raise _Refused(f"holds format tag {tag:#06x} ({_TAG_NAMES.get(tag, 'unknown')}), which remotemedia cannot decode")
    block = channels * sample_bytes
    if block_align != block:
        raise _Refused(
            f"has a block align of {block_align} bytes, but {channels} channels of {sample_bytes}-byte samples "
            f"make {block}-byte frames"
        )
    return (kind, bits_out, sample_bytes, tag, channels, rate, block, extensible)


def _data_size(size: int, avail: int, riff_size: int, body: int, block: int) -> int:
    if size == 0xFFFFFFFF:
        size = avail  # streamed to a pipe: the data runs to the end of the file
    elif size > avail:
        raise _Refused(f"is truncated: its data chunk declares {size} bytes but only {avail} follow")
    elif size == 0 and avail > 0 and riff_size + 8 <= body:
        raise _Refused(
            f"was never finished: its data chunk declares 0 bytes but {avail} bytes follow "
            "(the writer stopped before writing the sizes)"
        )
    if size % block != 0:
        raise _Refused(f"has a data chunk of {size} bytes, which is not a whole number of {block}-byte frames")
    return size


def decode(header: WavHeader, data: bytes) -> np.ndarray:
    """Whole frames of stored samples as a flat array of ``header.dtype``."""
    n = header.sample_bytes
    if header.kind == "float":
        return np.frombuffer(data, dtype="<f4" if n == 4 else "<f8").astype(np.float32)
    if n == 1:
        return (np.frombuffer(data, dtype=np.uint8).astype(np.int16) - 128) << 8
    if n == 2:
        return np.frombuffer(data, dtype="<i2").astype(np.int16)
    if n == 3:
        b = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        return (b[:, 0] << 8) | (b[:, 1] << 16) | (b[:, 2] << 24)
    return np.frombuffer(data, dtype="<i4").astype(np.int32)


# ---- inputs: regular files only (file_safety.rs) ----


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def _not_regular(path: str, mode: int) -> InputError:
    return InputError(f"'{path}' is {_kind_of(mode)}, not a regular file: remotemedia reads audio only from regular files")


def _stat_error(path: str, e: OSError) -> Exception:
    if e.errno == errno.ELOOP:
        return InputError(f"'{path}' is a symbolic link loop (too many levels of symbolic links)")
    if e.errno == errno.ENOENT:
        if os.path.islink(path):
            return FileNotFoundError(e.errno, f"'{path}' is a symbolic link to '{os.readlink(path)}', which does not exist", path)
        return FileNotFoundError(e.errno, f"'{path}' not found", path)
    return type(e)(e.errno, f"cannot read '{path}': {e.strerror}", path)


def open_input(path: PathLike) -> Tuple[BinaryIO, int]:
    """Opens a regular file for reading, refusing FIFOs, devices and directories without opening
    them (and opening non-blocking, so a path swapped for a FIFO cannot block); returns the file
    and its length."""
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except OSError as e:
        raise _stat_error(p, e) from None
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(p, st.st_mode)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise _stat_error(p, e) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _not_regular(p, st.st_mode)
    return os.fdopen(fd, "rb"), st.st_size


# ---- reading ----


class WavReader:
    """An open WAV file read whole or chunk by chunk (constant memory)."""

    def __init__(self, path: PathLike):
        self.path = os.fspath(path)
        self._f, length = open_input(path)
        try:
            head = self._f.read(16)
            if not is_wav(head):
                raise _not_wav(self.path, head, length)
            self.header = read_header(self._f, length)
            if self.header.kind == "codec":
                raise InputError(
                    f"'{self.path}' holds {self.header.codec_name()} audio, which only the native extension "
                    "decodes; build it (see docs/python.md) or convert the file to PCM"
                )
            self._f.seek(self.header.data_start)
        except _Refused as e:
            self._f.close()
            raise InputError(f"'{self.path}' {e}") from None
        except BaseException:
            self._f.close()
            raise
        self._left = self.header.data_len

    def _wrap(self, flat: np.ndarray) -> Audio:
        ch = self.header.channels
        samples = flat if ch == 1 else flat.reshape(-1, ch)
        return Audio._trusted(samples, self.header.sample_rate)

    def _read(self, n: int) -> bytes:
        data = self._f.read(n)
        if len(data) < n:
            done = self.header.data_len - self._left
            raise InputError(f"'{self.path}' got shorter while it was read (after {done} bytes of samples)")
        self._left -= n
        return data

    def read_frames(self, frames: int) -> Optional[Audio]:
        """The next ``frames`` frames (fewer only at the end), or None after the end."""
        n = min(max(frames, 1) * self.header.block, self._left)
        if n == 0:
            return None
        return self._wrap(decode(self.header, self._read(n)))

    def read_all(self) -> Audio:
        return self._wrap(decode(self.header, self._read(self._left)))

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "WavReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: Leading bytes of the containers only the native extension reads, for the pure runtime's message.
_NATIVE_ONLY = (
    (b"fLaC", "FLAC"), (b"OggS", "Ogg"), (b"ID3", "MP3"), (b"FORM", "AIFF"), (b"caff", "CAF"),
    (b"\x1a\x45\xdf\xa3", "Matroska/WebM"), (b"RIFF", "RIFF (not WAVE)"),
)


def _not_wav(path: str, head: bytes, length: int) -> Exception:
    from .errors import RuntimeUnavailableError

    for magic, name in _NATIVE_ONLY:
        if head.startswith(magic):
            break
    else:
        name = "MP4/M4A" if head[4:8] == b"ftyp" else ("MP3" if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 else None)
    if name is None or name.startswith("RIFF"):
        return InputError(
            f"'{path}' is not a supported audio file: no known container found (it starts with "
            f"{_describe_start(head)}, {length} bytes in all)"
        )
    return RuntimeUnavailableError(
        f"'{path}' looks like {name}; the pure-Python runtime reads only WAV: build the native extension "
        "(see docs/python.md) to read FLAC, MP3, Ogg Vorbis, AAC/ALAC, AIFF and CAF"
    )


def read_wav(path: PathLike) -> Audio:
    """Reads a WAV file; raises ``FileNotFoundError`` or ``InputError`` naming the path and the problem."""
    with WavReader(path) as r:
        return r.read_all()


# ---- writing ----

_SAMPLE_BYTES = {"i16": 2, "i24": 3, "i32": 4, "f32": 4}
_MASKS = {1: 0x4, 2: 0x3, 4: 0x33, 6: 0x3F, 8: 0x63F}


def header(sample: str, channels: int, rate: int, frames: int) -> bytes:
    """The header bytes the native writer makes (``wav::header``)."""
    nbytes = _SAMPLE_BYTES[sample]
    block = channels * nbytes
    data_len = frames * block
    is_float = sample == "f32"
    # Float is never extensible: sox warns on an extensible float header (as libsndfile writes it).
    extensible = not is_float and (channels > 2 or nbytes > 2)
    fmt_len = 40 if extensible else (18 if is_float else 16)
    riff = 4 + 8 + fmt_len + (12 if is_float else 0) + 8 + data_len + (data_len & 1)
    if riff > 0xFFFFFFFF:
        raise InputError(
            f"{data_len} bytes of samples do not fit a WAV file (4 GiB at most); write FLAC instead "
            '(--out-format flac / format="flac")'
        )
    tag = _EXTENSIBLE if extensible else (_FLOAT if is_float else _PCM)
    h = b"RIFF" + struct.pack("<I", riff) + b"WAVEfmt " + struct.pack("<I", fmt_len)
    h += struct.pack("<HHIIHH", tag, channels, rate, (rate * block) & 0xFFFFFFFF, block, nbytes * 8)
    if extensible:
        h += struct.pack("<HHIH", 22, nbytes * 8, _MASKS.get(channels, 0), _FLOAT if is_float else _PCM) + _GUID_TAIL
    elif is_float:
        h += struct.pack("<H", 0)
    if is_float:
        h += b"fact" + struct.pack("<II", 4, min(frames, 0xFFFFFFFF))
    return h + b"data" + struct.pack("<I", data_len)


def _to_i24(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.int16:
        return x.astype(np.int32) << 8
    if x.dtype == np.int32:
        # x / 256 rounded to nearest, ties to even, clipped (exact in float64).
        return np.clip(np.rint(x.astype(np.float64) / 256.0), -(1 << 23), (1 << 23) - 1).astype(np.int32)
    with np.errstate(invalid="ignore"):
        y = np.clip(x.astype(np.float64) * 8388608.0, -8388608.0, 8388607.0)
        y = np.rint(y)
        y[np.isnan(y)] = 0
    return y.astype(np.int32)


def encode(sample: str, x: np.ndarray) -> bytes:
    """Samples (any accepted dtype) as stored bytes of ``sample`` ("i16", "i24", "i32", "f32")."""
    x = np.ascontiguousarray(x).reshape(-1)
    if sample == "i24":
        v = _to_i24(x).astype("<i4")
        return v.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    target = {"i16": "i16", "i32": "i32", "f32": "f32"}[sample]
    return convert(x, target).astype({"i16": "<i2", "i32": "<i4", "f32": "<f4"}[sample], copy=False).tobytes()


def wav_sample(dtype: np.dtype, bits: Optional[int]) -> str:
    """The stored sample type for ``bits`` (16, 24, 32 = float), or from the dtype when None."""
    if bits is None:
        return {np.dtype(np.float32): "f32", np.dtype(np.int16): "i16", np.dtype(np.int32): "i32"}[np.dtype(dtype)]
    return {16: "i16", 24: "i24", 32: "f32"}[bits]


class WavWriter:
    """A WAV file written chunk by chunk under a temporary name, renamed into place by ``finish``."""

    def __init__(self, path: PathLike, sample: str, channels: int, rate: int, dtype: np.dtype):
        from ._safety import AtomicFile

        self.sample, self.channels, self.rate, self.dtype = sample, channels, rate, np.dtype(dtype)
        self.frames = 0
        header(sample, channels, rate, 0)  # refuses what cannot be written, before the file exists
        self._file = AtomicFile(path)
        self._file.write(header(sample, channels, rate, 0))

    def write(self, audio: Audio) -> None:
        if (audio.sample_rate, audio.channels, audio.samples.dtype) != (self.rate, self.channels, self.dtype):
            raise InputError(
                f"cannot write '{self._file.target}': a chunk of {audio.sample_rate} Hz x {audio.channels} "
                f"{audio.samples.dtype} follows audio of {self.rate} Hz x {self.channels} {self.dtype}"
            )
        self._file.write(encode(self.sample, audio.samples))
        self.frames += audio.frames

    def finish(self) -> None:
        head = header(self.sample, self.channels, self.rate, self.frames)
        if (self.frames * self.channels * _SAMPLE_BYTES[self.sample]) % 2 == 1:
            self._file.write(b"\0")
        self._file.rewrite_start(head)
        self._file.commit()

    def abort(self) -> None:
        self._file.abort()


def write_wav(path: PathLike, audio: Audio, bits: Optional[int] = None) -> None:
    """Writes ``audio``: by default float32 as 32-bit float, int16 as 16-bit PCM, int32 as 32-bit PCM;
    ``bits`` 16/24 (integer) or 32 (float) converts with the engine's rules."""
    w = WavWriter(path, wav_sample(audio.samples.dtype, bits), audio.channels, audio.sample_rate, audio.samples.dtype)
    try:
        w.write(audio)
        w.finish()
    except BaseException:
        w.abort()
        raise
