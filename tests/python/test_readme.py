"""The README's Python example runs as written, on both runtimes: a newcomer copies it first, so a
change to the API that breaks it fails here (the example's own Python node after the VAD, the
declared outputs, the manifest and the streaming session)."""

import os
import re
import subprocess
import sys

import remotemedia

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def readme_python_example():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("\n## From Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```python\n(.*?)^```", section, re.M | re.S)
    assert len(blocks) == 1, "the README's 'From Python' section has one python example"
    return blocks[0]


def test_the_readme_python_example_runs_as_written(runtime):
    code = readme_python_example()
    # What the example's comments promise, checked after it ran in a fresh interpreter.
    code += (
        # The custom node's line is checked in stdout below; `result` is now the manifest's run.
        "\nassert sorted(result) == ['clips', 'resample_16k', 'vad'], sorted(result)"
        "\nassert len(pipeline.get_metrics()['node_metrics']) == 5, pipeline.get_metrics()['node_metrics']"
        "\nassert isinstance(out, dict) and isinstance(rest, dict)"
        "\nprint('README example ok')"
    )
    # The package this test imported (a checkout's python/ or an installed wheel), native module
    # included; the rest of PYTHONPATH kept (REMOTEMEDIA_BLOCK_NATIVE reaches the child through it).
    package_dir = os.path.dirname(os.path.dirname(remotemedia.__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_dir, os.environ.get("PYTHONPATH", "")]), REMOTEMEDIA_RUNTIME=runtime)
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines() == ["[] 0.0", "README example ok"], p.stdout
