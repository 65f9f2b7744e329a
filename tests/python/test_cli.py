"""``python -m remotemedia`` (the command pip installs: the Rust CLI through the native module) in
subprocesses: the bundled speech sample through ``dataflows/speech_vad.yaml`` (segments where the
sample's phrases are, ``--json``, ``--output``, ``--metrics``, ``--prometheus``), ``graph``,
``node-types``, ``limits``, the error cases with their exit codes (2 for what the user pointed at, 1
for a failing pipeline) and messages, never a traceback; and what it says without the extension."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from remotemedia._schema import SCHEMA
from remotemedia.wav import read_wav

pytestmark = pytest.mark.requires_native

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PYTHON_DIR = os.path.join(REPO, "python")
SPEECH_VAD = os.path.join("dataflows", "speech_vad.yaml")
MIX = os.path.join("dataflows", "mix.yaml")  # GainNodes straight after the input: fail on i16 audio

# Where the sample's three phrases are (dataflows/README.md), in seconds.
PHRASES = [(0.30, 1.60), (2.30, 3.70), (4.40, 5.59)]


def cli(*args, cwd=REPO, env=None):
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = PYTHON_DIR + os.pathsep + env.get("PYTHONPATH", "")
    p = subprocess.run([sys.executable, "-m", "remotemedia", *args], cwd=cwd, env=env,
                       capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def overlaps(a, b):
    return a[0] < b[1] and b[0] < a[1]


def test_run_speech_vad_on_the_bundled_sample(tmp_path):
    out_wav, out_json, prom = tmp_path / "speech.wav", tmp_path / "run.json", tmp_path / "run.prom"
    p = cli("run", SPEECH_VAD, "--output", str(out_wav), "--json", str(out_json), "--metrics",
            f"--prometheus={prom}")
    assert p.returncode == 0, p.stderr
    text = p.stdout
    assert "(bundled sample)" in text
    # Every listed segment overlaps one phrase, and every phrase is found.
    vad_block = text[text.index("vad: VAD result"):text.index("clips: ")]
    segments = [(float(s), float(e)) for s, e in re.findall(r"^\s+\d+\.\s+([\d.]+) – \s*([\d.]+) s", vad_block, re.M)]
    assert segments, text
    for seg in segments:
        assert any(overlaps(seg, ph) for ph in PHRASES), (seg, text)
    for ph in PHRASES:
        assert any(overlaps(seg, ph) for seg in segments), (ph, text)
    # The timing table names every node; --metrics adds the percentile table.
    for node in ("to_f32", "mono", "resample_16k", "vad", "clips"):
        # Two columns: the first run's time and the warm run's.
        assert re.search(rf"^  {node}\s+\w+Node\s+[\d.]+ (µs|ms|s)\s+[\d.]+ (µs|ms|s)$", text, re.M), text
    assert "first run" in text and "warm run" in text
    assert "p50 µs" in text and "(end to end)" in text

    doc = json.loads(out_json.read_text(encoding="utf-8"))
    assert doc["input"]["bundled_sample"] is True and doc["input"]["sample_rate"] == 48000
    vad = doc["outputs"]["vad"]
    assert vad["kind"] == "vad" and vad["sample_rate"] == 16000
    flat = [t for seg in segments for t in seg]
    assert [t for seg in vad["segments"] for t in seg] == pytest.approx(flat, abs=0.006)
    assert 0.0 < vad["speech_fraction"] < 1.0
    assert vad["frames"] * vad["frame_duration_ms"] / 1000 == pytest.approx(vad["duration_s"], abs=0.03)
    assert doc["metrics"]["runtime"] == "rust"
    assert [n["node_id"] for n in doc["metrics"]["node_metrics"]] == ["to_f32", "mono", "resample_16k", "vad", "clips"]
    assert list(doc["outputs"]) == ["clips", "resample_16k", "vad"]  # sorted keys; declared: 16 kHz audio, VAD, clips
    assert doc["outputs"]["clips"]["count"] == 3 and doc["first_run_metrics"]["total_executions"] == 1

    audio = read_wav(out_wav)  # the audio the VAD result carries
    assert audio.sample_rate == 16000
    assert audio.frames == vad["shape"][0]
    assert 'runtime="rust"' in prom.read_text(encoding="utf-8")


def test_prometheus_to_stdout():
    p = cli("run", os.path.join("dataflows", "convert_gain.yaml"), "--prometheus")
    assert p.returncode == 0, p.stderr
    assert "\n# prometheus\n" in p.stdout
    assert re.search(r'^remotemedia_runs_total{.*runtime="rust"} 1$', p.stdout, re.M), p.stdout
    # A -6 dB gain on the sample's -3.0 dBFS peak.
    assert "gain: audio, shape (282499, 1), 48000 Hz, f32" in p.stdout and "(-9.0 dBFS)" in p.stdout


def test_failing_node_exits_1_after_the_timing_of_what_ran():
    p = cli("run", MIX)
    assert p.returncode == 1
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("error: node '") and "GainNode" in last and "f32" in last, p.stderr
    assert "timing (failed run)" in p.stdout


def test_graph_prints_dot_with_every_node():
    p = cli("graph", os.path.join("dataflows", "mix.yaml"))
    assert p.returncode == 0, p.stderr
    dot = p.stdout
    assert dot.startswith("digraph pipeline {") and dot.rstrip().endswith("}")
    for i, node in enumerate(["split", "quiet", "loud", "mix"]):
        assert re.search(rf'^  n{i} \[label="{node}\\n', dot, re.M), dot
    assert "  input -> n0;" in dot and "  n3 -> output;" in dot
    assert '  n1 -> n3 [label="→background"]; // quiet -> mix' in dot


def test_node_types_is_the_json_of_every_builtin():
    p = cli("node-types")
    assert p.returncode == 0, p.stderr
    names = {t["name"] for t in json.loads(p.stdout)}
    assert {"AudioResampleNode", "VADNode", "FormatConverterNode", "GainNode", "MixNode"} <= names


@pytest.fixture
def bad_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text('version: "1.0"\nnodes:\n  - {id: a, type: NoSuchNode}\n'
                   "  - {id: b, type: GainNode, params: {gain_db: loud}}\nedges:\n  - {from: a, to: b}\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("hi\n")
    return tmp_path


def test_bad_manifest_exits_2_listing_every_problem(bad_files):
    p = cli("graph", str(bad_files / "bad.yaml"))
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stdout == ""
    assert "invalid manifest (2 problems)" in p.stderr
    assert "nodes[0].type" in p.stderr and "NoSuchNode" in p.stderr
    assert "nodes[1].params.gain_db" in p.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "no/such/manifest.yaml"], "error: manifest 'no/such/manifest.yaml' not found"),
        (["run", SPEECH_VAD, "--input", "{tmp}/missing.wav"], "error: input file '{tmp}/missing.wav' not found"),
        (["run", SPEECH_VAD, "--input", "{tmp}/notes.txt"], "is not a supported audio file"),
        (["run", SPEECH_VAD, "--input", "{tmp}"], "is a directory, not a regular file"),
        (["run", SPEECH_VAD, "--workers", "0"], "expected a worker count from 1 to 256"),
        (["run", SPEECH_VAD, "--prometheus="], "a value is required for '--prometheus[=<FILE>]'"),
        (["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        # The newcomer's traps (issue 19): a WAV where the manifest goes, a space before --prometheus's file.
        (["run", os.path.join("dataflows", "sample_speech.wav")],
         "this looks like an audio file: pass it with --input (remotemedia run MANIFEST --input dataflows"),
        (["run", SPEECH_VAD, "--prometheus", "out.prom"],
         "tip: --prometheus takes its value after '=': --prometheus=out.prom"),
    ],
    ids=["missing-manifest", "missing-input", "non-wav-input", "directory-input", "bad-workers", "empty-prometheus", "bad-command",
         "wav-as-manifest", "prometheus-space"],
)
def test_usage_errors_exit_2(bad_files, args, message, capfd, monkeypatch):
    # In-process (main() returns the exit code) to keep the file fast: the subprocess tests above
    # cover the process boundary. The Rust CLI writes to the file descriptors, hence capfd.
    from remotemedia.cli import main

    monkeypatch.chdir(REPO)
    tmp = str(bad_files)
    code = main([a.replace("{tmp}", tmp) for a in args])
    err = capfd.readouterr().err
    assert code == 2, err
    assert message.replace("{tmp}", tmp) in err
    assert "Traceback" not in err


def test_dot_escapes_ids_and_shows_params_as_the_manifest_wrote_them(tmp_path):
    odd = 'a "q"\nline'
    tree = {"version": "1.0", "nodes": [{"id": odd, "type": "GainNode", "params": {"gain_db": 12}},
                                        {"id": "input", "type": "GainNode", "params": {"gain_db": -1e-7}}],
            "edges": [{"from": odd, "to": "input"}]}
    manifest = tmp_path / "odd.json"
    manifest.write_text(json.dumps(tree), encoding="utf-8")
    p = cli("graph", str(manifest))
    assert p.returncode == 0, p.stderr
    dot = p.stdout
    assert '  n0 [label="a \\"q\\"\\nline\\nGainNode\\ngain_db=12"];' in dot
    assert '  n1 [label="input\\nGainNode\\ngain_db=-1e-7"];' in dot
    assert '  n0 -> n1; // a "q"\\nline -> input' in dot
    assert "  input -> n0;" in dot and "  n1 -> output;" in dot


def test_stream_adds_up_to_the_whole_run(tmp_path):
    whole_json, stream_json = tmp_path / "run.json", tmp_path / "stream.json"
    whole_wav, stream_wav = tmp_path / "run.wav", tmp_path / "stream.wav"
    p = cli("run", SPEECH_VAD, "--json", str(whole_json), "-o", str(whole_wav))
    assert p.returncode == 0, p.stderr
    s = cli("stream", SPEECH_VAD, "--chunk-ms", "37", "--json", str(stream_json), "-o", str(stream_wav))
    assert s.returncode == 0, s.stderr
    whole, streamed = json.loads(whole_json.read_text()), json.loads(stream_json.read_text())
    for key in ("segments", "frames", "frames_speech"):
        assert streamed["outputs"]["vad"][key] == whole["outputs"]["vad"][key], key
    reported = [tuple(map(float, m)) for m in re.findall(r"vad: speech ([\d.]+)-([\d.]+) s", s.stdout)]
    assert len(reported) == len(PHRASES) and all(overlaps(r, ph) for r, ph in zip(reported, PHRASES))
    a, b = read_wav(str(stream_wav)), read_wav(str(whole_wav))
    assert a.sample_rate == b.sample_rate and a.samples.shape == b.samples.shape
    assert abs(a.samples.astype("float64") - b.samples).max() <= 1e-5
    bad = cli("stream", SPEECH_VAD, "--chunk-ms", "0")
    assert bad.returncode == 2 and "1..=10000" in bad.stderr


def test_limits_prints_the_engines_limits():
    p = cli("limits")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == SCHEMA["limits"]


def test_an_error_exit_keeps_its_code_when_stderr_is_a_closed_pipe():
    # The reader of stderr is gone before the error is written: the exit code is still 2 (a
    # missing manifest), not 1 from an exception while printing it.
    read, write = os.pipe()
    os.close(read)
    try:
        p = subprocess.run([sys.executable, "-m", "remotemedia", "run", "/nonexistent/manifest.yaml"], cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=write, timeout=120)
    finally:
        os.close(write)
    assert p.returncode == 2


def test_run_lists_twenty_segments_unless_all(tmp_path):
    # Eight copies of the sample, each followed by a second of silence (longer than VADNode's bridge,
    # so no phrase runs into the next copy's): 24 phrases, so 24 segments and 24 clips, 4 of each
    # past the limit.
    from remotemedia.audio import Audio
    from remotemedia.wav import write_wav

    sample = read_wav(os.path.join(REPO, "dataflows", "sample_speech.wav"))
    copy = np.concatenate([sample.samples, np.zeros((sample.sample_rate,) + sample.samples.shape[1:], sample.samples.dtype)])
    long = tmp_path / "long.wav"
    write_wav(long, Audio(np.tile(copy, (8,) + (1,) * (copy.ndim - 1)), sample.sample_rate))
    p = cli("run", SPEECH_VAD, "--input", str(long))
    assert p.returncode == 0, p.stderr
    found = re.search(r"vad: VAD result, (\d+) speech segments", p.stdout)
    assert found, p.stdout
    n = int(found.group(1))
    assert n == 24, p.stdout
    assert f"clips: {n} clips" in p.stdout, p.stdout
    more = n - 20
    assert f"  … {more} more segments (--all lists every one)" in p.stdout, p.stdout
    assert f"  … {more} more clips (--all lists every one)" in p.stdout, p.stdout
    listed = lambda text: sum(1 for line in text.splitlines() if line.lstrip().startswith(f"{n}."))
    assert listed(p.stdout) == 0
    every = cli("run", SPEECH_VAD, "--input", str(long), "--all", "--once")
    assert every.returncode == 0, every.stderr
    assert listed(every.stdout) == 2 and "more segments" not in every.stdout, every.stdout
    assert "warm run" not in every.stdout


@pytest.mark.parametrize("args", [["node-types"], ["run", SPEECH_VAD]])
def test_without_the_extension_the_command_says_what_is_missing(args, tmp_path):
    # A package tree with no built extension: the command names the missing module and how to get it.
    shutil.copytree(os.path.join(PYTHON_DIR, "remotemedia"), tmp_path / "remotemedia",
                    ignore=shutil.ignore_patterns("_native*.so", "_native*.pyd", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.run([sys.executable, "-m", "remotemedia", *args], cwd=REPO, capture_output=True, text=True,
                       env={**env, "PYTHONPATH": str(tmp_path)}, timeout=120)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stdout == "" and "Traceback" not in p.stderr
    assert p.stderr.startswith("error: the remotemedia command runs the native engine, and remotemedia._native cannot be imported")
    assert "maturin develop" in p.stderr and "pure-Python runtime" in p.stderr


def test_ctrl_c_ends_a_long_command_as_it_ends_the_binary():
    # bench -n 10000000 runs for hours; once its timely worker thread exists the command is in
    # Rust, and Ctrl-C takes the default action there (as for the binary), not Python's deferred
    # handler that would wait for the call to return.
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen([sys.executable, "-m", "remotemedia", "bench", SPEECH_VAD, "-n", "10000000"], cwd=REPO, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def in_rust():
            tasks = f"/proc/{p.pid}/task"
            names = []
            for t in os.listdir(tasks):
                try:
                    names.append(open(f"{tasks}/{t}/comm").read())
                except OSError:  # a thread that ended meanwhile
                    pass
            return any(n.startswith("timely:work") for n in names)

        while p.poll() is None and not in_rust():
            pass
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == -signal.SIGINT, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="transparent huge pages are Linux's")
def test_the_command_turns_huge_pages_off_for_its_process_and_a_call_from_python_does_not():
    # As the binary (tests/cli.rs): the command's own process runs without transparent huge
    # pages. Read from the kernel while a long `bench` runs, then Ctrl-C.
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen([sys.executable, "-m", "remotemedia", "bench", SPEECH_VAD, "-n", "10000000"], cwd=REPO, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, line = time.monotonic() + 60, ""
        while time.monotonic() < deadline and p.poll() is None:
            with open(f"/proc/{p.pid}/status") as f:
                line = next((l.strip() for l in f if l.startswith("THP_enabled:")), "")
            if line.split()[1:] == ["0"]:
                break
            time.sleep(0.02)
    finally:
        p.kill()
        p.wait()
    assert line.split()[1:] == ["0"], f"status line {line!r} (none: this kernel does not report it)"
    # main() called from a program (argv given) leaves that program's process as it was.
    from remotemedia import cli as cli_module

    def thp():
        with open("/proc/self/status") as f:
            return next(l.split()[1] for l in f if l.startswith("THP_enabled:"))

    before = thp()
    assert cli_module.main(["limits"]) == 0
    assert thp() == before


def test_spawn_through_python_starts_python_copies_and_matches_one_process(tmp_path):
    # Inside Python the executable is the interpreter: spawn must start `python -m remotemedia`,
    # not `python batch ...` (which failed with "can't open file 'batch'").
    from remotemedia.wav import write_wav
    from remotemedia.audio import to_audio

    inputs = tmp_path / "in"
    inputs.mkdir()
    t = np.arange(1600) / 16000
    for k in range(6):
        write_wav(str(inputs / f"item_{k}.wav"), to_audio((((0.1 + 0.05 * k) * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)))
    manifest = tmp_path / "m.yaml"
    manifest.write_text('version: "1.0"\nnodes:\n  - {id: gain, type: GainNode, params: {gain_db: -6.0}}\n')
    one = cli("batch", str(manifest), str(inputs), "--out", str(tmp_path / "one"), "--no-progress")
    assert one.returncode == 0, one.stderr
    two = cli("spawn", "-n", "2", "--", "batch", str(manifest), str(inputs), "--out", str(tmp_path / "two"),
              "--no-progress", "--connect-timeout", "60")
    assert two.returncode == 0, two.stderr
    assert "spawn: 2 processes finished" in two.stdout, two.stdout
    for k in range(6):
        a = read_wav(str(tmp_path / "one" / f"item_{k}.gain.wav"))
        b = read_wav(str(tmp_path / "two" / f"item_{k}.gain.wav"))
        assert np.array_equal(a.samples, b.samples)


def test_batch_writes_features_as_npy_next_to_the_audio(tmp_path):
    # Issue 16's CLI shape: a features output becomes NAME.NODE.npy, a (frames, bins) float32
    # array numpy loads, equal to what the same pipeline gives from Python; audio stays .wav.
    from remotemedia import AudioResampleNode, LogMelNode, Pipeline
    from remotemedia.audio import Audio
    from remotemedia.wav import write_wav

    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    t = np.arange(48000 * 2) / 48000
    for k in range(2):
        x = (0.2 * np.sin(2 * np.pi * (300 + 200 * k) * t) * (t % 0.5 < 0.3)).astype(np.float32)
        write_wav(str(inputs / f"clip_{k}.wav"), Audio(np.round(x * 32767).astype(np.int16), 48000))
    nodes = [AudioResampleNode(16000, node_id="resample"), LogMelNode(n_mels=80, node_id="log_mel")]
    manifest = tmp_path / "features.json"
    p = Pipeline(nodes, outputs=["resample", "log_mel"])
    manifest.write_text(json.dumps(p.manifest))
    done = cli("batch", str(manifest), str(inputs), "--out", str(out), "--no-progress")
    assert done.returncode == 0, done.stderr
    for k in range(2):
        features = np.load(out / f"clip_{k}.log_mel.npy")
        assert features.dtype == np.float32 and features.shape == (200, 80)
        want = p.run_sync(read_wav(str(inputs / f"clip_{k}.wav")))["log_mel"]
        np.testing.assert_allclose(features, np.asarray(want), atol=1e-6, rtol=0)
        assert read_wav(str(out / f"clip_{k}.resample.wav")).sample_rate == 16000


def test_a_batch_killed_outright_leaves_only_whole_outputs(tmp_path):
    # SIGKILL gives the CLI no chance to clean up: what is in the output folder then is what the
    # writes themselves leave. Each output is written unnamed and linked to its name whole (on
    # Linux), so there is no temporary file to leave behind, and every named output reads back.
    from remotemedia.audio import Audio
    from remotemedia.wav import write_wav

    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    t = np.arange(48000 * 4) / 48000
    x = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for k in range(300):
        write_wav(str(inputs / f"item_{k:03d}.wav"), Audio(x, 48000))
    manifest = tmp_path / "m.yaml"
    manifest.write_text('version: "1.0"\nnodes:\n  - {id: gain, type: GainNode, params: {gain_db: -6.0}}\n'
                        '  - {id: rs, type: AudioResampleNode, params: {output_rate: 16000}}\n'
                        'edges:\n  - {from: gain, to: rs}\n')
    env = dict(os.environ)
    env["PYTHONPATH"] = PYTHON_DIR + os.pathsep + env.get("PYTHONPATH", "")
    # Two workers whatever the machine, so the batch lasts long enough to be caught mid-way.
    p = subprocess.Popen([sys.executable, "-m", "remotemedia", "batch", str(manifest), str(inputs), "--out", str(out),
                          "--no-progress", "--workers", "2"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and p.poll() is None:
            if out.is_dir() and sum(1 for n in os.listdir(out) if n.endswith(".wav")) >= 20:
                break
            time.sleep(0.005)
        assert p.poll() is None, "the batch finished before it could be killed: give it more items"
        p.kill()
    finally:
        p.wait(timeout=30)
    names = os.listdir(out)
    written = [n for n in names if n.endswith(".rs.wav")]
    assert 20 <= len(written) < 300, len(written)
    assert [n for n in names if not n.endswith(".rs.wav")] == [], names
    for n in written:
        assert read_wav(str(out / n)).samples.shape == (16000 * 4,)
