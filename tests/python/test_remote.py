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


TLS = os.path.join(ROOT, "tests", "fixtures", "tls")


def _serve(tmp_path_factory, *extra):
    tokens = tmp_path_factory.mktemp("serve") / "tokens.txt"
    tokens.write_text(TOKEN + "\n")
    proc = subprocess.Popen([_binary(), "serve", MANIFEST, "--listen", "127.0.0.1:0", "--tokens", str(tokens), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    m = re.search(r"listening on (https?://[0-9.:]+)", line)
    assert m, f"the server did not start: {line}{proc.stderr.read() if proc.poll() is not None else ''}"
    return proc, m.group(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc, url = _serve(tmp_path_factory)
    yield url
    proc.terminate()
    assert proc.wait(timeout=30) == 0


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """The same server with --tls-cert/--tls-key (the test certificate of tests/fixtures/tls)."""
    proc, url = _serve(tmp_path_factory, "--tls-cert", os.path.join(TLS, "cert.pem"), "--tls-key", os.path.join(TLS, "key.pem"))
    assert url.startswith("https://")
    yield url
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


@pytest.mark.requires_native
def test_a_remote_run_gives_the_outputs_of_a_local_run_sync(server):
    audio = remotemedia.load(SAMPLE)
    samples = np.asarray(audio.samples)
    local = remotemedia.Pipeline.from_yaml(MANIFEST, runtime_hint="rust")
    remote = remotemedia.connect(server, token=TOKEN)
    # int16 as loaded, a float32 copy of it, and the file itself (decoded by the server).
    for data in (audio, (samples.astype(np.float32) / 32768.0, audio.sample_rate)):
        want = local.run_sync(data)
        got = remote.run("speech_vad", data)
        _equal(got, want)
    _equal(remote.run("speech_vad", SAMPLE), local.run_sync(audio))
    got = remote.run("speech_vad", audio)
    assert isinstance(got["resample_16k"], remotemedia.Audio)
    assert got["vad"].segments and len(got["clips"]) == len(got["vad"].segments)


@pytest.mark.requires_native
def test_a_session_over_tls_gives_the_outputs_of_a_local_one_and_plain_http_is_refused(tls_server):
    audio = remotemedia.load(SAMPLE)
    samples, rate = np.asarray(audio.samples), audio.sample_rate
    local = remotemedia.Pipeline.from_yaml(MANIFEST, runtime_hint="rust")
    remote = remotemedia.connect(tls_server, token=TOKEN, cafile=os.path.join(TLS, "cert.pem"))
    session, local_session = remote.stream("speech_vad"), local.stream()
    step = rate // 50
    for start in range(0, len(samples), step):
        chunk = remotemedia.Audio(samples[start:start + step], rate)
        _equal(session.push(chunk), local_session.push(chunk))
    _equal(session.close(), local_session.close())
    _equal(remote.run("speech_vad", audio), local.run_sync(audio))
    import ssl
    # Without the test certificate the server is not trusted.
    with pytest.raises(ssl.SSLError):
        remotemedia.connect(tls_server, token=TOKEN).pipelines()
    # A plain client gets no HTTP answer from the TLS port.
    plain = tls_server.replace("https://", "http://")
    with pytest.raises(RemoteError) as e:
        remotemedia.connect(plain, token=TOKEN).pipelines()
    assert e.value.code == 0 and "https://" in e.value.reason


def test_a_remote_run_json_equals_the_cli_json(server, tmp_path):
    doc = remotemedia.connect(server, token=TOKEN).run_json("speech_vad", SAMPLE)
    out = tmp_path / "run.json"
    subprocess.run([_binary(), "run", MANIFEST, "--once", "--input", SAMPLE, "--json", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    import json
    assert doc["outputs"] == json.loads(out.read_text())["outputs"]
