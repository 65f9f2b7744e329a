"""WAV files to and from :class:`Audio`, with the standard library only (so the pure-Python runtime can
read the same files as the engine): 16- and 32-bit integer PCM, 24-bit PCM (as int32, like the engine),
8-bit PCM (as int16 shifted left by 8, like the engine) and 32-bit float."""

from __future__ import annotations

import os
import struct
from typing import Union

import numpy as np

from .audio import Audio
from .errors import InputError

PathLike = Union[str, "os.PathLike[str]"]

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


def read_wav(path: PathLike) -> Audio:
    """Reads a WAV file; raises ``FileNotFoundError`` or ``InputError`` naming the path and the problem."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise InputError(f"{os.fspath(path)} is not a WAV file (it starts with {data[:4]!r})")
    fmt = None
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == _EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack("<H", body[24:26])[0]
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            if fmt is None:
                raise InputError(f"{os.fspath(path)}: the data chunk comes before the fmt chunk")
            return _decode(path, fmt, body)
        pos += 8 + size + (size & 1)
    raise InputError(f"{os.fspath(path)}: no {'data' if fmt else 'fmt'} chunk in the WAV file")


def _decode(path: PathLike, fmt: tuple, body: bytes) -> Audio:
    tag, channels, rate, bits = fmt
    if channels < 1:
        raise InputError(f"{os.fspath(path)}: the WAV header says {channels} channels")
    if tag == _FLOAT and bits == 32:
        x = np.frombuffer(body, dtype="<f4").astype(np.float32)
    elif tag == _PCM and bits == 8:
        # Unsigned bytes around 128, as the engine reads them: shifted to the i16 range (full scale kept).
        x = (np.frombuffer(body, dtype=np.uint8).astype(np.int16) - 128) << 8
    elif tag == _PCM and bits == 16:
        x = np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2").astype(np.int16)
    elif tag == _PCM and bits == 32:
        x = np.frombuffer(body[: len(body) // 4 * 4], dtype="<i4").astype(np.int32)
    elif tag == _PCM and bits == 24:
        b = np.frombuffer(body[: len(body) // 3 * 3], dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        x = ((b[:, 0] << 8) | (b[:, 1] << 16) | (b[:, 2] << 24)).astype(np.int32)
    else:
        raise InputError(f"{os.fspath(path)}: unsupported WAV encoding (format tag {tag}, {bits} bits)")
    frames = x.size // channels
    x = x[: frames * channels]
    return Audio(x if channels == 1 else x.reshape(frames, channels), rate)


def write_wav(path: PathLike, audio: Audio) -> None:
    """Writes ``audio``: float32 as 32-bit float, int16 as 16-bit PCM, int32 as 32-bit PCM."""
    x = np.ascontiguousarray(audio.samples)
    tag, bits = {np.dtype(np.float32): (_FLOAT, 32), np.dtype(np.int16): (_PCM, 16), np.dtype(np.int32): (_PCM, 32)}[x.dtype]
    payload = x.astype(x.dtype.newbyteorder("<"), copy=False).tobytes()
    ch, rate = audio.channels, audio.sample_rate
    block = ch * bits // 8
    fmt = struct.pack("<HHIIHH", tag, ch, rate, rate * block, block, bits)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(payload)) + b"WAVE")
        f.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt)
        f.write(b"data" + struct.pack("<I", len(payload)) + payload)
