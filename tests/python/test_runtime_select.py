"""Runtime selection, in fresh interpreters: the fallback warns exactly once, gives the same results,
and runtime_hint="rust" / REMOTEMEDIA_RUNTIME=rust refuse to fall back."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from remotemedia import _runtime

PYTHON_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "python")


SCENARIO = """
import json, warnings
import numpy as np
warnings.simplefilter("always")
report = {}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import remotemedia as rm
    try:
        x = (np.sin(np.arange(1600) / 5.0) * 0.5).astype(np.float32)
        p1 = rm.Pipeline([rm.GainNode(6.0, node_id="g")], runtime_hint=HINT)
        p2 = rm.Pipeline.from_dict({"version": "1.0", "nodes": [{"id": "g", "type": "GainNode", "params": {"gain_db": 6.0}}]}, runtime_hint=HINT)
        out = [p.run_sync((x, 16000))["g"].samples for p in (p1, p2)]
        expected = x * np.float32(10 ** (6 / 20))
        report["runtimes"] = [p1.runtime, p2.runtime]
        report["correct"] = all(bool(np.array_equal(o, expected)) for o in out)
    except rm.RemoteMediaError as e:
        report["error"] = type(e).__name__
        report["message"] = str(e)
    report["available"] = rm.is_rust_runtime_available()
report["warnings"] = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
print(json.dumps(report))
"""


def scenario(block=None, hint="auto", env=None):
    """Runs SCENARIO in a fresh interpreter; block=True makes the native module unimportable there
    (REMOTEMEDIA_BLOCK_NATIVE, see conftest.py), None leaves it as in this process."""
    code = SCENARIO.replace("HINT", repr(hint))
    environ = {k: v for k, v in os.environ.items() if k != "REMOTEMEDIA_RUNTIME"}
    if block:
        environ["REMOTEMEDIA_BLOCK_NATIVE"] = "1"
    environ["PYTHONPATH"] = os.pathsep.join([os.path.abspath(PYTHON_DIR), environ.get("PYTHONPATH", "")])
    environ.update(env or {})
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=environ, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_missing_native_module_falls_back_with_exactly_one_warning():
    r = scenario(block=True)
    assert r["available"] is False
    assert r["runtimes"] == ["python", "python"] and r["correct"]
    assert len(r["warnings"]) == 1
    assert "pure-Python runtime" in r["warnings"][0] and "blocked by the test" in r["warnings"][0]


def test_runtime_hint_rust_without_native_module_raises():
    r = scenario(block=True, hint="rust")
    assert r["error"] == "RuntimeUnavailableError"
    assert 'runtime_hint="rust"' in r["message"] and "blocked by the test" in r["message"]
    assert r["warnings"] == []


def test_env_rust_without_native_module_raises():
    r = scenario(block=True, env={"REMOTEMEDIA_RUNTIME": "rust"})
    assert r["error"] == "RuntimeUnavailableError" and "REMOTEMEDIA_RUNTIME=rust" in r["message"]


def test_env_python_forces_the_pure_runtime_with_one_warning():
    r = scenario(env={"REMOTEMEDIA_RUNTIME": "python"})
    assert r["runtimes"] == ["python", "python"] and r["correct"]
    assert len(r["warnings"]) == 1 and "REMOTEMEDIA_RUNTIME=python" in r["warnings"][0]


def test_explicit_python_hint_does_not_warn():
    r = scenario(block=True, hint="python")
    assert r["runtimes"] == ["python", "python"] and r["correct"] and r["warnings"] == []


def test_bad_env_value_is_an_error():
    r = scenario(env={"REMOTEMEDIA_RUNTIME": "gpu"})
    assert r["error"] == "RemoteMediaError" and "REMOTEMEDIA_RUNTIME" in r["message"]


def test_a_subprocess_sees_the_native_module_as_this_process_does():
    # With REMOTEMEDIA_BLOCK_NATIVE=1 the Python subprocesses of the tests are blocked too.
    assert scenario()["available"] is _runtime.is_rust_runtime_available()


@pytest.mark.requires_native
def test_native_module_is_used_without_warning_when_available():
    r = scenario()
    assert r["runtimes"] == ["rust", "rust"] and r["correct"] and r["warnings"] == []
