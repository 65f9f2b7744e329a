"""The newcomer's walk-through with ``python -m remotemedia batch`` (the Rust CLI): a folder of
mixed recordings made with sox from the bundled sample (44.1 kHz stereo 24-bit, 11.025 kHz 8-bit,
48 kHz float, 48 kHz 6-channel) through ``dataflows/speech_vad.yaml`` gives 16 kHz mono audio, VAD
JSON, and clips whose JSONL manifest rows match the files. sox is a test-only dependency
(tests/requirements/walkthrough.apt): without it the test fails."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from remotemedia.wav import read_wav

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SAMPLE = os.path.join(REPO, "dataflows", "sample_speech.wav")
NAMES = ["a_stereo_44k_24bit", "b_mono_11k_8bit", "c_mono_48k_float", "d_6ch_48k"]


def sox(*args):
    try:
        p = subprocess.run(["sox", *args], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        pytest.fail("sox is needed for this test (tests/requirements/walkthrough.apt)")
    assert p.returncode == 0, p.stderr


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    d = tmp_path_factory.mktemp("in")
    sox(SAMPLE, "-r", "44100", "-c", "2", "-b", "24", str(d / f"{NAMES[0]}.wav"))
    sox(SAMPLE, "-r", "11025", "-c", "1", "-b", "8", "-e", "unsigned-integer", str(d / f"{NAMES[1]}.wav"))
    sox(SAMPLE, "-r", "48000", "-c", "1", "-b", "32", "-e", "floating-point", str(d / f"{NAMES[2]}.wav"))
    sox(SAMPLE, "-b", "16", str(d / f"{NAMES[3]}.wav"), "remix", "1", "1v0.5", "1v0.25", "1v0.75", "1v0.1", "1v0.9")
    return d


def test_the_recordings_are_what_they_say(recordings):
    shapes = {n: (a.sample_rate, a.channels, a.samples.dtype) for n in NAMES for a in [read_wav(recordings / f"{n}.wav")]}
    assert shapes == {NAMES[0]: (44100, 2, np.int32), NAMES[1]: (11025, 1, np.int16),
                      NAMES[2]: (48000, 1, np.float32), NAMES[3]: (48000, 6, np.int16)}


@pytest.mark.requires_native
def test_batch_gives_16k_mono_audio_vad_json_and_clips_with_a_manifest(recordings, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "python"))
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "remotemedia", "batch", "dataflows/speech_vad.yaml", str(recordings),
                        "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "batch: 4 items, 4 ok, 0 failed" in p.stdout and "metadata.jsonl (12 clips)" in p.stdout, p.stdout
    for name in NAMES:
        audio = read_wav(out / f"{name}.resample_16k.wav")
        assert (audio.sample_rate, audio.channels) == (16000, 1) and abs(audio.duration - 5.885) < 0.01
        vad = json.loads((out / f"{name}.vad.json").read_text())
        assert vad["kind"] == "vad" and (vad["sample_rate"], vad["channels"]) == (16000, 1) and len(vad["segments"]) == 3
    rows = [json.loads(line) for line in (out / "clips" / "metadata.jsonl").read_text().splitlines()]
    assert [r["file_name"] for r in rows] == sorted(f for f in os.listdir(out / "clips") if f.endswith(".wav"))
    for i, r in enumerate(rows):
        clip = read_wav(out / "clips" / r["file_name"])
        assert (clip.sample_rate, clip.channels, clip.frames) == (16000, 1, r["frames"])
        assert (r["source"], r["segment"]) == (f"{NAMES[i // 3]}.wav", i % 3 + 1)
        assert r["duration"] == pytest.approx(r["end"] - r["start"], abs=1e-9) == pytest.approx(clip.duration, abs=1e-9)
        # The clip is the 16 kHz audio there, bit for bit.
        whole = read_wav(out / f"{r['source'][:-4]}.resample_16k.wav").samples
        assert np.array_equal(clip.samples, whole[r["start_frame"]:r["start_frame"] + r["frames"]])
