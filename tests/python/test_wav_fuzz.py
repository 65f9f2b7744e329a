"""The native WAV reader (``src/audio_io/wav.rs``) and the pure-Python one (``remotemedia/wav.py``)
give the same verdict on every file: the same samples, or an ``InputError`` with the same message.

The files: valid WAVs of each layout the writers make, then each one cut at every interesting
length (inside the RIFF header, the fmt chunk, the data chunk, mid-frame), left unfinished as a
writer stopped before its sizes (data size 0, RIFF size 0), with header fields set to the values
that broke the readers before (65535 channels, 0 Hz, 0 channels, odd block align, 12/48/64-bit
integers, unknown format tags), and a seeded set of random byte and length mutations.

The one allowed difference: A-law/µ-law/ADPCM WAVs, which the native reader decodes (symphonia)
and the pure one refuses as needing the extension.
"""

import os
import struct

import numpy as np
import pytest

import remotemedia as rm
from remotemedia import InputError


def valid_files(folder):
    """Valid WAVs as the writers make them (plain 16-bit, extensible 24-bit, float with fact, 6 channels)."""
    rng = np.random.default_rng(5)
    out = {}
    for name, data, bits in [
        ("i16_mono", (rng.standard_normal(40) * 3000).astype(np.int16), None),
        ("i24_stereo", (rng.standard_normal((20, 2)) * 2e8).astype(np.int32), 24),
        ("f32_stereo", (0.3 * rng.standard_normal((20, 2))).astype(np.float32), None),
        ("i16_6ch", (rng.standard_normal((8, 6)) * 3000).astype(np.int16), None),
    ]:
        p = os.path.join(folder, name + ".wav")
        rm.save(p, (data, 16000), bits=bits, runtime_hint="python")
        out[name] = open(p, "rb").read()
    return out


def chunk_offsets(b):
    """(fmt body offset, data size field offset, data body offset) of a file we wrote."""
    pos, fmt, data = 12, None, None
    while pos + 8 <= len(b):
        cid, size = b[pos:pos + 4], struct.unpack_from("<I", b, pos + 4)[0]
        if cid == b"fmt ":
            fmt = pos + 8
        if cid == b"data":
            data = pos + 4
            break
        pos += 8 + size + (size & 1)
    return fmt, data, data + 4


def with_u16(b, at, v):
    b = bytearray(b)
    struct.pack_into("<H", b, at, v)
    return bytes(b)


def with_u32(b, at, v):
    b = bytearray(b)
    struct.pack_into("<I", b, at, v)
    return bytes(b)


def cases(folder):
    out = {}
    for name, b in valid_files(folder).items():
        fmt, dsize, dbody = chunk_offsets(b)
        out[name] = b
        for cut in sorted({0, 3, 11, 12, 19, fmt + 7, dsize - 1, dsize + 3, dbody, dbody + 1, dbody + 5, len(b) - 1, len(b) // 2}):
            out[f"{name}_cut{cut}"] = b[:cut]
        out[f"{name}_unfinished"] = with_u32(with_u32(b, dsize, 0), 4, 0)
        out[f"{name}_data0_riff_ok"] = with_u32(b, dsize, 0)
        out[f"{name}_streamed"] = with_u32(b, dsize, 0xFFFFFFFF)
        out[f"{name}_data_long"] = with_u32(b, dsize, struct.unpack_from("<I", b, dsize)[0] + 64)
        out[f"{name}_data_odd"] = with_u32(b, dsize, struct.unpack_from("<I", b, dsize)[0] - 1)
        for field, at, values in [
            ("channels", fmt + 2, [0, 3, 255, 256, 257, 65535]),
            ("block", fmt + 12, [0, 1, 7, 65535]),
            ("bits", fmt + 14, [0, 1, 8, 12, 20, 33, 48, 64, 65535]),
            ("tag", fmt, [0, 2, 3, 6, 7, 0x55, 0x1234, 0xFFFE]),
        ]:
            for v in values:
                out[f"{name}_{field}{v}"] = with_u16(b, at, v)
        out[f"{name}_rate0"] = with_u32(b, fmt + 4, 0)
        out[f"{name}_nofmt"] = b[:12] + b"junk" + b[16:]
    rng = np.random.default_rng(20)
    bases = list(valid_files(folder).values())
    for i in range(300):
        b = bytearray(bases[i % len(bases)])
        for _ in range(int(rng.integers(1, 4))):
            at = int(rng.integers(0, min(len(b), 80)))
            b[at] = int(rng.integers(0, 256))
        if rng.random() < 0.3:
            b = b[: int(rng.integers(0, len(b) + 1))]
        out[f"random{i}"] = bytes(b)
    return out


def verdict(path, runtime):
    try:
        a = rm.load(path, dtype=None, runtime_hint=runtime)
        return ("ok", a.sample_rate, a.samples.dtype.str, a.samples.tobytes())
    except InputError as e:
        # The list of formats a runtime reads, after the verdict, differs by runtime on purpose.
        return ("InputError", str(e).split("; remotemedia reads ")[0])


@pytest.mark.requires_native
def test_both_readers_give_the_same_verdict_on_every_file(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    files = cases(str(folder))
    counts = {"ok": 0, "InputError": 0, "codec": 0}
    mismatches = []
    for name, data in files.items():
        path = str(tmp_path / f"{name}.wav")
        with open(path, "wb") as f:
            f.write(data)
        native = verdict(path, "rust")
        try:
            pure = verdict(path, "python")
        except rm.RuntimeUnavailableError as e:  # a file whose start is not RIFF/WAVE but another container's
            pure = ("RuntimeUnavailableError", str(e))
        if pure[0] == "InputError" and "which only the native extension decodes" in pure[1]:
            counts["codec"] += 1
            continue
        if native != pure:
            mismatches.append((name, native[:2] if native[0] == "ok" else native, pure[:2] if pure[0] == "ok" else pure))
        counts[native[0]] = counts.get(native[0], 0) + 1
    assert not mismatches, "\n".join(map(str, mismatches[:8])) + f"\n{len(mismatches)} in all"
    # The set exercises both outcomes and the refusals the issue names.
    assert counts["ok"] >= 20 and counts["InputError"] >= 150, counts


@pytest.mark.parametrize("runtime", ["rust", "python"])
def test_the_refusals_read_clearly(tmp_path, runtime):
    b = valid_files(str(tmp_path))["i16_mono"]
    fmt, dsize, dbody = chunk_offsets(b)
    for data, says in [
        (with_u16(b, fmt + 2, 65535), "has 65535 channels; remotemedia reads at most 256"),
        (b[: len(b) // 2], "is truncated: its data chunk declares 80 bytes but only"),
        (with_u32(with_u32(b, dsize, 0), 4, 0), "was never finished: its data chunk declares 0 bytes but 80 bytes follow"),
        (b[:dbody - 2], "is truncated: it ends inside a chunk header"),
        (b"", "is not a supported audio file"),
    ]:
        path = str(tmp_path / "bad.wav")
        with open(path, "wb") as f:
            f.write(data)
        with pytest.raises(InputError) as e:
            rm.load(path, runtime_hint=runtime)
        assert path in str(e.value) and says in str(e.value), str(e.value)
