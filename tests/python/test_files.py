"""``remotemedia.load`` / ``save`` / ``info`` and ``Pipeline.run_file`` / ``stream_file`` on files the
tests make (``audio_files.py``: soundfile and ffmpeg from a seeded signal): every format decodes;
lossless ones bit-exact; lossy ones within 60 dB of libsndfile's or ffmpeg's decode of the same file
(after aligning the codec delay, which must be 0 where both trim it); truncated and corrupt files of
each format refused by name; our FLAC read bit-exact by soundfile; our WAV accepted by soxi without a
warning; ``load(rate=)`` equal to an ``AudioResampleNode`` run; the pure-Python runtime the same for
WAV and clear about the rest."""

import os
import subprocess
import threading

import numpy as np
import pytest
import soundfile as sf

import remotemedia as rm
from remotemedia import AudioResampleNode, InputError, Pipeline, RuntimeUnavailableError, VADNode

from audio_files import ffmpeg_decode, make_all, require, snr_db

WAV_NAMES = ["wav_pcm16", "wav_pcm24", "wav_pcm32", "wav_u8", "wav_float", "wav_double",
             "wavex_pcm16", "wavex_pcm24", "wavex_float", "wav_6ch"]
LOSSLESS = WAV_NAMES + ["flac16", "flac24", "alac16", "alac24", "aiff16", "aiff24"]
LOSSY = ["mp3", "vorbis", "aac"]


def native_unless_wav(names):
    """Parameters for `names`: the pure runtime reads WAV only, so the others need the extension."""
    return [n if n in WAV_NAMES else pytest.param(n, marks=pytest.mark.requires_native) for n in names]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make_all(str(tmp_path_factory.mktemp("formats")))


def frames2d(x):
    return x if x.ndim == 2 else x[:, None]


# Every lossless format natively; WAV on the pure runtime too (it reads WAV only).
@pytest.mark.parametrize("runtime,name", [("rust", n) for n in LOSSLESS] + [("python", n) for n in WAV_NAMES])
def test_lossless_formats_decode_bit_exact(made, runtime, name):
    m = made[name]
    a = rm.load(m.path, dtype=None, runtime_hint=runtime)
    assert a.sample_rate == m.rate
    assert a.samples.dtype == m.exact.dtype
    np.testing.assert_array_equal(frames2d(a.samples), frames2d(m.exact))


@pytest.mark.requires_native
@pytest.mark.parametrize("name", WAV_NAMES)
def test_pure_runtime_reads_every_wav_variant_like_the_engine(made, name):
    native = rm.load(made[name].path, dtype=None, runtime_hint="rust")
    pure = rm.load(made[name].path, dtype=None, runtime_hint="python")
    assert pure.samples.dtype == native.samples.dtype and pure.sample_rate == native.sample_rate
    np.testing.assert_array_equal(pure.samples, native.samples)
    for kw in ({}, {"mono": True}, {"dtype": "int16"}, {"mono": True, "rate": 16000}):
        a, b = rm.load(made[name].path, runtime_hint="rust", **kw), rm.load(made[name].path, runtime_hint="python", **kw)
        assert a.samples.dtype == b.samples.dtype and a.sample_rate == b.sample_rate, kw
        if "rate" in kw:
            # The two resamplers agree to rounding (test_parity.py documents 1e-4; here ~1.3e-7).
            np.testing.assert_allclose(a.samples, b.samples, rtol=0, atol=1e-6, err_msg=str(kw))
        else:
            np.testing.assert_array_equal(a.samples, b.samples, err_msg=str(kw))


@pytest.mark.requires_native
@pytest.mark.parametrize("name", LOSSY)
def test_lossy_formats_match_reference_decoders(made, name):
    m = made[name]
    ours = frames2d(rm.load(m.path).samples)
    assert ours.dtype == np.float32
    # libsndfile decodes MP3 and Vorbis; ffmpeg decodes all three.
    refs = {"ffmpeg": ffmpeg_decode(m.path, ours.shape[1])}
    if name != "aac":
        refs["soundfile"] = frames2d(sf.read(m.path, dtype="float32")[0])
    for ref_name, ref in refs.items():
        snr, lag, overlap = snr_db(ref, ours)
        assert snr >= 60.0, (ref_name, snr, lag)
        # Every decoder here trims the same encoder delay, so no shift is left to align.
        assert lag == 0, (ref_name, lag)
        assert overlap >= m.signal.shape[0] - 1, (ref_name, overlap)
    # And the decode is the signal that was encoded (a lossy codec at a high bit rate).
    snr, lag, _ = snr_db(m.signal.astype(np.float64), ours)
    assert snr > 15.0 and lag == 0, (snr, lag)


@pytest.mark.requires_native
def test_opus_is_refused_naming_the_file_the_codec_and_what_is_supported(made):
    path = made["opus"].path
    with pytest.raises(InputError) as e:
        rm.load(path)
    msg = str(e.value)
    assert path in msg and "Ogg with Opus audio, which remotemedia cannot decode" in msg and "FLAC, MP3, Ogg Vorbis" in msg


def cut(src, dst, keep):
    with open(src, "rb") as f:
        data = f.read()
    with open(dst, "wb") as f:
        f.write(data[: int(len(data) * keep)])
    return dst


def corrupt(src, dst):
    data = bytearray(open(src, "rb").read())
    rng = np.random.default_rng(1)
    a, b = len(data) * 2 // 5, len(data) * 3 // 5
    data[a:b] = rng.integers(0, 256, b - a, dtype=np.uint8).tobytes()
    open(dst, "wb").write(bytes(data))
    return dst


@pytest.mark.parametrize("name", native_unless_wav(["wav_pcm16", "wav_float", "flac16", "flac24", "alac16", "aiff16", "mp3", "vorbis", "aac"]))
def test_truncated_files_are_refused_by_name(made, name, tmp_path):
    src = made[name].path
    path = cut(src, str(tmp_path / ("cut_" + os.path.basename(src))), 0.6)
    with pytest.raises(InputError) as e:
        rm.load(path)
    assert path in str(e.value) and "truncated" in str(e.value), str(e.value)


@pytest.mark.requires_native
@pytest.mark.parametrize("name", ["flac16", "flac24", "alac16", "mp3", "vorbis", "aac"])
def test_corrupt_files_are_refused_by_name(made, name, tmp_path):
    src = made[name].path
    path = corrupt(src, str(tmp_path / ("bad_" + os.path.basename(src))))
    with pytest.raises(InputError) as e:
        rm.load(path)
    assert path in str(e.value) and ("corrupt" in str(e.value) or "truncated" in str(e.value)), str(e.value)


@pytest.mark.requires_native
def test_flac_written_here_reads_back_bit_exact_in_soundfile(made, tmp_path):
    i16 = made["wav_pcm16"].exact
    p16 = str(tmp_path / "a.flac")
    rm.save(p16, (i16, 44100))
    back, rate = sf.read(p16, dtype="int16")
    assert rate == 44100
    np.testing.assert_array_equal(back, i16)
    i24 = made["wav_pcm24"].exact  # 24-bit values filling int32
    p24 = str(tmp_path / "b.flac")
    rm.save(p24, (i24, 44100), bits=24)
    assert sf.info(p24).subtype == "PCM_24"
    np.testing.assert_array_equal(sf.read(p24, dtype="int32")[0], i24)
    # float32 audio: the 24-bit integers the engine's rule gives.
    x = made["wav_float"].exact
    p = str(tmp_path / "c.flac")
    rm.save(p, (x, 44100))
    expect = np.clip(np.rint(x.astype(np.float64) * 8388608), -8388608, 8388607).astype(np.int32) << 8
    np.testing.assert_array_equal(sf.read(p, dtype="int32")[0], expect)


@pytest.mark.requires_native
def test_flac_frames_are_never_larger_than_the_samples_stored_plainly(tmp_path):
    # flacenc 0.5.1 predicts some blocks of noisy 24-bit audio badly: frames 2-5x the plain size
    # for a loud tone in noise, one of 33 MB for 4096 frames of a resampled tone in pink noise.
    # Such a frame is written verbatim instead; the file stays bit-exact.
    n = np.arange(16000 * 2)
    x = 0.9 * np.sin(2 * np.pi * 1000 * n / 16000) + 0.05 * np.random.default_rng(5).uniform(-1, 1, n.size)
    i24 = np.round(x * 8388607).astype(np.int32) << 8
    path = str(tmp_path / "noisy24.flac")
    rm.save(path, (i24, 16000), bits=24)
    frames = -(-n.size // 4096)
    assert os.path.getsize(path) <= n.size * 3 + frames * 64 + 8192, os.path.getsize(path)
    np.testing.assert_array_equal(sf.read(path, dtype="int32")[0], i24)
    np.testing.assert_array_equal(rm.load(path, dtype="int32").samples, i24)


WAV_WRITES = pytest.mark.parametrize("dtype,bits,channels", [
    ("int16", None, 1), ("int16", None, 2), ("int16", 24, 2), ("float32", None, 2), ("float32", 16, 1),
    ("int32", None, 2), ("float32", None, 6), ("int16", None, 6), ("float32", 24, 3),
])


def wav_write_audio(dtype, channels):
    """Seeded noise in `dtype` for the WAV writer cases, 1-D when mono."""
    from remotemedia._pure.format import convert

    rng = np.random.default_rng(channels)
    x = (0.5 * rng.standard_normal((4000, channels))).clip(-1, 0.99).astype(np.float32)
    data = convert(x, {"int16": "i16", "int32": "i32", "float32": "f32"}[dtype])
    return (data if channels > 1 else data[:, 0], 22050)


@WAV_WRITES
def test_wav_written_here_passes_soxi_without_warnings(runtime, tmp_path, dtype, bits, channels):
    path = str(tmp_path / f"out_{runtime}.wav")
    rm.save(path, wav_write_audio(dtype, channels), bits=bits, runtime_hint=runtime)
    p = subprocess.run([require("soxi"), path], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert f"Channels       : {channels}" in p.stdout and "Sample Rate    : 22050" in p.stdout, p.stdout
    # soundfile reads the same values back.
    info = sf.info(path)
    assert (info.channels, info.samplerate, info.frames) == (channels, 22050, 4000)
    back = rm.load(path, dtype=None, runtime_hint=runtime).samples
    back = frames2d(back)
    sf_dtype = {np.dtype(np.int16): "int16", np.dtype(np.int32): "int32", np.dtype(np.float32): "float32"}[back.dtype]
    np.testing.assert_array_equal(frames2d(sf.read(path, dtype=sf_dtype)[0]), back)


@pytest.mark.requires_native
@WAV_WRITES
def test_both_runtimes_write_the_same_wav_bytes(tmp_path, dtype, bits, channels):
    paths = {rt: str(tmp_path / f"out_{rt}.wav") for rt in ("rust", "python")}
    for rt, path in paths.items():
        rm.save(path, wav_write_audio(dtype, channels), bits=bits, runtime_hint=rt)
    assert open(paths["rust"], "rb").read() == open(paths["python"], "rb").read()


# The pure-Python runtime reads WAV only (test_pure_runtime_is_clear_about_other_formats).
@pytest.mark.parametrize("runtime,name", [("rust", "wav_pcm16"), ("python", "wav_pcm16"), ("rust", "wav_pcm24"),
                                          ("python", "wav_pcm24"), ("rust", "flac24"), ("rust", "mp3")])
def test_load_rate_equals_an_audio_resample_node_run(runtime, made, name):
    path = made[name].path
    loaded = rm.load(path, rate=16000, runtime_hint=runtime)
    decoded = rm.load(path, runtime_hint=runtime)
    with Pipeline([AudioResampleNode(output_rate=16000, node_id="r")], runtime_hint=runtime) as p:
        expected = p.run_sync(decoded)["r"]
    assert loaded.sample_rate == 16000 and loaded.samples.dtype == np.float32
    np.testing.assert_array_equal(loaded.samples, expected.samples)


@pytest.mark.parametrize("rate", [7999, 192001])
def test_load_refuses_a_rate_in_the_engine_words_on_both_runtimes(runtime, made, rate):
    # One wording for the rule: the resampler's own param check, prefixed with the argument.
    expected = f"rate={rate}: param 'output_rate' must be an integer from 8000 to 192000, found {rate}"
    with pytest.raises(InputError) as e:
        rm.load(made["wav_pcm16"].path, rate=rate, runtime_hint=runtime)
    assert str(e.value) == expected


def test_mono_is_the_mean_of_the_channels(runtime, made):
    m = made["wav_6ch"]
    a = rm.load(m.path, mono=True, runtime_hint=runtime)
    x = m.exact.astype(np.float64) / 32768.0
    assert a.samples.ndim == 1 and a.samples.dtype == np.float32
    np.testing.assert_allclose(a.samples, x.mean(axis=1), atol=1e-7)


def test_info_describes_every_format(runtime, made):
    # Every format natively; the WAV ones on the pure runtime too (it reads WAV only).
    for name, (container, codec, bits, dtype) in {
        "wav_pcm24": ("WAV", "PCM 24-bit integer", 24, "int32"),
        "wav_double": ("WAV", "PCM 64-bit float", 64, "float32"),
        "flac16": ("FLAC", "Free Lossless Audio Codec", 16, "int16"),
        "alac16": ("MP4/M4A", "Apple Lossless Audio Codec", 16, "int16"),
        "aiff24": ("AIFF", "PCM 24-bit integer", 24, "int32"),
        "mp3": ("MPEG audio", "MPEG Audio Layer 3", None, "float32"),
        "vorbis": ("Ogg", "Vorbis", None, "float32"),
        "aac": ("MP4/M4A", "Advanced Audio Coding", None, "float32"),
    }.items():
        if runtime == "python" and name not in WAV_NAMES:
            continue
        i = rm.info(made[name].path, runtime_hint=runtime)
        assert (i.container, i.codec, i.bits, i.dtype) == (container, codec, bits, dtype), (name, i)
        assert (i.sample_rate, i.channels) == (44100, 2), (name, i)
        decoded = rm.load(made[name].path, dtype=None, runtime_hint=runtime)
        assert i.frames == decoded.frames, (name, i.frames, decoded.frames)
        assert i.duration == pytest.approx(decoded.frames / 44100)
    if runtime == "rust":
        assert rm.info(made["wav_pcm24"].path, runtime_hint="python") == rm.info(made["wav_pcm24"].path, runtime_hint="rust")


def test_pure_runtime_is_clear_about_other_formats(made, tmp_path):
    for name, says in (("flac16", "FLAC"), ("vorbis", "Ogg"), ("aac", "MP4/M4A"), ("mp3", "MP3"), ("aiff16", "AIFF")):
        with pytest.raises(RuntimeUnavailableError) as e:
            rm.load(made[name].path, runtime_hint="python")
        assert f"looks like {says}" in str(e.value) and "reads only WAV" in str(e.value), str(e.value)
    with pytest.raises(RuntimeUnavailableError, match="writes only WAV"):
        rm.save(str(tmp_path / "x.flac"), (np.zeros(10, np.float32), 8000), runtime_hint="python")
    assert not os.listdir(tmp_path)


def test_bad_save_arguments_are_refused_before_writing(runtime, tmp_path):
    audio = (np.zeros((100, 9), np.int16), 8000)
    target = tmp_path / "keep.wav"
    target.write_bytes(b"old content")
    # Argument mistakes are the package's InputError (a ValueError too), on both runtimes.
    with pytest.raises(InputError, match="bits must be 16 or 24"):
        rm.save(str(target), audio, bits=12, runtime_hint=runtime)
    with pytest.raises(InputError, match="FLAC holds integer samples"):
        rm.save(str(tmp_path / "x.flac"), audio, bits=32, runtime_hint=runtime)
    with pytest.raises(InputError, match='format must be "wav" or "flac"'):
        rm.save(str(target), audio, format="mp3", runtime_hint=runtime)
    with pytest.raises(InputError, match=r"writes WAV and FLAC, not \.mp3"):
        rm.save(str(tmp_path / "x.mp3"), audio, runtime_hint=runtime)
    if runtime == "rust":
        with pytest.raises(InputError, match="FLAC holds 1 to 8 channels"):
            rm.save(str(tmp_path / "nine.flac"), audio)
    assert target.read_bytes() == b"old content"
    assert sorted(os.listdir(tmp_path)) == ["keep.wav"]


def test_bad_load_and_stream_arguments_are_input_errors(runtime, tmp_path):
    path = str(tmp_path / "a.wav")
    rm.save(path, (np.zeros(800, np.int16), 8000), runtime_hint=runtime)
    with pytest.raises(InputError, match="dtype must be .* or None .as stored., not 'float64'"):
        rm.load(path, dtype="float64", runtime_hint=runtime)
    p = Pipeline([{"id": "g", "type": "GainNode", "params": {"gain_db": 0.0}}], runtime_hint=runtime)
    for bad in (0, -1, 600_001, 2.5, True):
        with pytest.raises(InputError, match="chunk_ms must be an integer from 1 to 600000"):
            list(p.stream_file(path, chunk_ms=bad))
    with pytest.raises(InputError, match='get_metrics: format must be "dict", "json" or "prometheus"'):
        p.get_metrics(format="xml")


def test_missing_special_and_looping_paths(runtime, tmp_path):
    with pytest.raises(FileNotFoundError):
        rm.load(str(tmp_path / "missing.wav"), runtime_hint=runtime)
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    os.symlink(b, a)
    os.symlink(a, b)
    with pytest.raises(InputError, match="symbolic link loop"):
        rm.load(str(a), runtime_hint=runtime)
    with pytest.raises(InputError, match="is a directory"):
        rm.load(str(tmp_path), runtime_hint=runtime)
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    result = {}

    def attempt():
        try:
            rm.load(str(fifo), runtime_hint=runtime)
        except Exception as e:  # noqa: BLE001 -- the class is checked below
            result["error"] = e

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(20)
    if t.is_alive():
        # Unblock the reader so the test process can end, then fail.
        with open(fifo, "wb"):
            pass
        pytest.fail("load() blocked on a FIFO")
    assert isinstance(result.get("error"), InputError) and "FIFO (named pipe)" in str(result["error"])


def speech_pipeline(runtime):
    return Pipeline([AudioResampleNode(output_rate=16000, node_id="r"), VADNode(node_id="vad")], runtime_hint=runtime)


def test_run_file_and_stream_file_stream_a_file_through_a_session(runtime, tmp_path):
    sample = os.path.join(os.path.dirname(__file__), "..", "..", "dataflows", "sample_speech.wav")
    with speech_pipeline(runtime) as p:
        pushed = list(p.stream_file(sample, chunk_ms=500))
        # The same chunks pushed by hand give the same outputs.
        audio = rm.load(sample, dtype=None, runtime_hint=runtime)
        s = p.stream()
        by_hand = [s.push(rm.Audio(audio.samples[i:i + 24000], 48000)) for i in range(0, audio.frames, 24000)] + [s.close()]
        assert len(pushed) == len(by_hand) == 13
        for x, y in zip(pushed, by_hand):
            assert x == y
        combined = p.run_file(sample, chunk_ms=500)
        vad = combined["vad"]
        assert vad["segments"] == [seg for out in pushed for seg in out["vad"]["segments"]]
        assert len(vad["segments"]) == 3
        np.testing.assert_array_equal(vad["audio"].samples, np.concatenate([o["vad"]["audio"].samples for o in pushed]))
        # Written as it comes: a 32-bit float WAV holds the very samples; FLAC (native) 24 bits of them.
        out = str(tmp_path / "speech16k.wav")
        written = p.run_file(sample, out, chunk_ms=500)
        assert written["vad"]["audio"] == out and written["vad"]["segments"] == vad["segments"]
        np.testing.assert_array_equal(rm.load(out, runtime_hint=runtime).samples, vad["audio"].samples)
        if runtime == "rust":
            flac = str(tmp_path / "speech16k.flac")
            p.run_file(sample, flac, chunk_ms=500)
            back = rm.load(flac)
            assert back.frames == vad["audio"].frames and back.sample_rate == 16000
            assert np.max(np.abs(back.samples - vad["audio"].samples)) <= 2.0 ** -24
        with pytest.raises(InputError, match="is the input file"):
            p.run_file(sample, sample)


@pytest.mark.requires_native
def test_python_cli_info_describes_files(made, capfd):
    from remotemedia.cli import main

    path = made["wav_pcm24"].path
    assert main(["info", path, "--json"]) == 0
    doc = __import__("json").loads(capfd.readouterr().out)
    assert doc[0]["path"] == path and (doc[0]["frames"], doc[0]["bits"], doc[0]["codec"]) == (66150, 24, "PCM 24-bit integer")
    assert main(["info", path, path + ".missing"]) == 2
    captured = capfd.readouterr()
    assert "WAV / PCM 24-bit integer" in captured.out and "00:00:01.50" in captured.out and "not found" in captured.out
    assert "1 of 2 files could not be read" in captured.err


@pytest.mark.requires_native
def test_python_cli_batch_plans_its_outputs_before_writing(tmp_path, capfd):
    from remotemedia.cli import main

    inputs = tmp_path / "in"
    inputs.mkdir()
    x = (np.sin(np.arange(1600) / 5) * 8000).astype(np.int16)
    rm.save(str(inputs / "x.wav"), (x, 16000), runtime_hint="python")
    rm.save(str(inputs / "X.WAV"), (x, 16000), runtime_hint="python")
    manifest = tmp_path / "m.yaml"
    manifest.write_text('version: "1.0"\nnodes:\n  - {id: "../../escaped", type: PassthroughNode}\n')
    out = tmp_path / "out"
    assert main(["batch", str(manifest), str(inputs), "--out", str(out)]) == 2
    assert "X.WAV and x.wav would both write X._._.._escaped.*" in capfd.readouterr().err
    assert not out.exists()
    os.remove(inputs / "X.WAV")
    before = (inputs / "x.wav").read_bytes()
    assert main(["batch", str(manifest), str(inputs), "--out", str(inputs / ".")]) == 2
    assert "is the input folder" in capfd.readouterr().err
    assert (inputs / "x.wav").read_bytes() == before and os.listdir(inputs) == ["x.wav"]
    assert main(["batch", str(manifest), str(inputs), "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["report.json", "x._._.._escaped.wav"]
    assert not (tmp_path / "escaped.wav").exists()
