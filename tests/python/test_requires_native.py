"""Native-only tests cannot pass quietly: without the extension they skip, and under
REMOTEMEDIA_REQUIRE_NATIVE=1 (what scripts/test.sh and CI set) they fail. Run in a fresh pytest
whose interpreter cannot import remotemedia._native (REMOTEMEDIA_BLOCK_NATIVE=1, see conftest.py)."""

import os
import subprocess
import sys

from test_runtime_select import PYTHON_DIR

HERE = os.path.dirname(os.path.abspath(__file__))
# Native-only modules (module-level marker) and single marked tests, one of each kind.
TARGETS = ["test_stubs.py", "test_parity.py", "test_node_types.py::test_node_types_json_is_the_native_registry",
           "test_schema.py::test_schema_json_is_the_native_registry"]


def pytest_without_native(require, targets=TARGETS, *options):
    env = {k: v for k, v in os.environ.items() if k not in ("REMOTEMEDIA_RUNTIME", "REMOTEMEDIA_REQUIRE_NATIVE")}
    env["PYTHONPATH"] = os.pathsep.join([os.path.abspath(PYTHON_DIR), HERE, env.get("PYTHONPATH", "")])
    env["REMOTEMEDIA_BLOCK_NATIVE"] = "1"
    if require:
        env["REMOTEMEDIA_REQUIRE_NATIVE"] = "1"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *options, *[os.path.join(HERE, t) for t in targets]]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=HERE)


def test_native_only_tests_skip_without_the_extension():
    done = pytest_without_native(require=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed" not in done.stdout and "failed" not in done.stdout, done.stdout
    assert "skipped" in done.stdout and "blocked by the test" in done.stdout, done.stdout


def test_native_only_tests_fail_when_native_is_required():
    done = pytest_without_native(require=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "skipped" not in done.stdout and "passed" not in done.stdout, done.stdout
    assert "native module remotemedia._native not importable" in done.stdout, done.stdout


def test_a_skip_other_than_a_missing_extension_is_a_failure(tmp_path):
    # A skipif or importorskip would let a check vanish quietly; conftest.py reports it as failed.
    # The test file lives outside this folder, so this folder's conftest.py is loaded as a plugin.
    path = tmp_path / "test_quiet.py"
    path.write_text("import pytest\n\n\n@pytest.mark.skipif(True, reason='a quiet skip')\ndef test_quiet():\n    pass\n\n\n"
                    "def test_quiet_inside():\n    pytest.skip('another quiet skip')\n")
    done = pytest_without_native(False, [str(path)], "-p", "conftest", "--rootdir", str(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    # The skipif is seen at setup (an error), the skip inside the test at its call (a failure).
    assert "1 failed, 1 error" in done.stdout and "skipped" not in done.stdout.splitlines()[-1], done.stdout
    assert done.stdout.count("skipped other than by require_native") == 2, done.stdout
