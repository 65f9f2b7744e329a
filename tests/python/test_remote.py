"""``remotemedia.connect``: a session on a served pipeline (``remotemedia serve`` on loopback, the
binary ``cargo test`` builds) returns exactly the outputs of the same chunks pushed into a local
session on the native runtime (the server's engine); refusals raise ``RemoteError`` with the documented code."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import remotemedia
from remotemedia.remote import RemoteError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MANIFEST = os.path.join(ROOT, "dataflows", "speech_vad.yaml")
SAMPLE = os.path.join(ROOT, "dataflows", "sample_speech.wav")
TOKEN = "python-client-token"


def _binary():
    for profile in ("debug", "release"):
        p = os.path.join(ROOT, "target", profile, "remotemedia")
        if os.path.exists(p):
            return p
    raise AssertionError("no target/*/remotemedia: build it with `cargo build` (scripts/test.sh does)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tokens = tmp_path_factory.mktemp("serve") / "tokens.txt"
    tokens.write_text(TOKEN + "\n")
    proc = subprocess.Popen([_binary(), "serve", MANIFEST, "--listen", "127.0.0.1:0", "--tokens", str(tokens)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    m = re.search(r"listening on (http://[0-9.:]+)", line)
    assert m, f"the server did not start: {line}{proc.stderr.read() if proc.poll() is not None else ''}"
    yield m.group(1)
    proc.terminate()
    assert proc.wait(timeout=30) == 0


def _equal(a, b):
    assert type(a) is type(b) or (isinstance(a, list) and isinstance(b, list)), (type(a), type(b))
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _equal(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _equal(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    else:
        assert a == b


@pytest.mark.requires_native
def test_a_remote_session_gives_the_outputs_of_a_local_one(server):
    audio = remotemedia.load(SAMPLE)
    samples, rate = np.asarray(audio.samples), audio.sample_rate
    local = remotemedia.Pipeline.from_yaml(MANIFEST, runtime_hint="rust").stream()
    remote = remotemedia.connect(server, token=TOKEN).stream("speech_vad")
    step = rate // 50  # 20 ms
    segments = 0
    for start in range(0, len(samples), step):
        chunk = remotemedia.Audio(samples[start:start + step], rate)
        want, got = local.push(chunk), remote.push(chunk)
        _equal(got, want)
        segments += len(got["vad"].segments)
    _equal(remote.close(), local.close())
    assert remote.summary["chunks"] == -(-len(samples) // step)
    assert segments > 0


def test_refusals_raise_remote_error_with_their_code(server):
    chunk = remotemedia.Audio(np.zeros(320, dtype=np.int16), 16000)
    with pytest.raises(RemoteError) as e:
        remotemedia.connect(server, token="wrong").stream("speech_vad").push(chunk)
    assert e.value.code == 401
    with pytest.raises(RemoteError) as e:
        remotemedia.connect(server, token=TOKEN).stream("nope").push(chunk)
    assert e.value.code == 4004 and "'nope'" in e.value.reason


def test_a_remote_run_equals_the_cli_json(server, tmp_path):
    doc = remotemedia.connect(server, token=TOKEN).run("speech_vad", SAMPLE)
    out = tmp_path / "run.json"
    subprocess.run([_binary(), "run", MANIFEST, "--once", "--input", SAMPLE, "--json", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    import json
    assert doc["outputs"] == json.loads(out.read_text())["outputs"]
