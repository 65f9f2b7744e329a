"""The file readers under mutation, on both runtimes: ``scripts/fuzz_files.py`` with a fixed seed
and count, in a fresh interpreter (its reads run in a worker process of their own, so a crash or a
hang is reported as a finding, not lost). Every mutated file of every format (WAV variants, FLAC,
ALAC, AIFF, MP3, Ogg Vorbis, AAC, Opus) must be decoded or refused with ``InputError`` natively,
and get the same verdict from the pure-Python reader where it reads the content (WAV) and a refusal
in the package's classes where it does not. docs/reliability.md records longer runs.
"""

import os
import re
import subprocess
import sys

import pytest

import remotemedia as rm

pytestmark = pytest.mark.requires_native

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "fuzz_files.py")


def test_every_reader_gives_a_verdict_and_both_runtimes_agree():
    r = subprocess.run([sys.executable, SCRIPT, "--count", "320", "--seed", "3", "--timeout", "60"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"seed 3: 320 files in [\d.]+ s \([\d.]+/s\), 0 findings", r.stdout), r.stdout
    counts = {m.group(1): (int(m.group(2)), int(m.group(3)), int(m.group(4)))
              for m in re.finditer(r"^(\w+)\s+execs\s+(\d+)\s+decoded\s+(\d+)\s+refused\s+(\d+)", r.stdout, re.M)}
    # Every format was fuzzed, and the set holds both outcomes (not only refusals).
    assert set(counts) == {"wav", "flac", "alac", "aiff", "mp3", "vorbis", "aac", "opus"}, r.stdout
    assert all(execs >= 10 for execs, _, _ in counts.values()), r.stdout
    assert counts["wav"][1] >= 40 and counts["wav"][2] >= 40, r.stdout
    assert sum(d for _, d, _ in counts.values()) >= 100, r.stdout
