"""Native-only tests cannot pass quietly: without the extension they skip, and under
REMOTEMEDIA_REQUIRE_NATIVE=1 (what scripts/test.sh and CI set) they fail. Run in a fresh pytest
whose interpreter cannot import remotemedia._native."""

import os
import subprocess
import sys
import textwrap

import pytest

from test_runtime_select import BLOCK_NATIVE, PYTHON_DIR

HERE = os.path.dirname(os.path.abspath(__file__))
# Native-only modules (module-level marker) and single marked tests, one of each kind.
TARGETS = ["test_stubs.py", "test_parity.py", "test_node_types.py::test_node_types_json_is_the_native_registry",
           "test_schema.py::test_schema_json_is_the_native_registry"]


def pytest_without_native(require):
    code = BLOCK_NATIVE + textwrap.dedent(f"""
        import pytest
        sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-rs", *{[os.path.join(HERE, t) for t in TARGETS]!r}]))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("REMOTEMEDIA_RUNTIME", "REMOTEMEDIA_REQUIRE_NATIVE")}
    env["PYTHONPATH"] = os.pathsep.join([os.path.abspath(PYTHON_DIR), env.get("PYTHONPATH", "")])
    if require:
        env["REMOTEMEDIA_REQUIRE_NATIVE"] = "1"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, cwd=HERE)


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
