"""The engine's limits (``remotemedia.limits``; docs/reliability.md has the table), on both runtimes.

* The table: ``schema.json``'s ``limits`` is what the native engine enforces (``remotemedia limits``).
* Manifests: size, nesting, values (YAML aliases included), string length, node and edge counts,
  each refused with the same single problem by both runtimes, whichever way the manifest comes
  (text, file, Python tree). What used to escape as ``RecursionError``,
  ``yaml.reader.ReaderError`` or ``UnicodeDecodeError`` is a ``ManifestError``.
* Hangs, in a fresh interpreter with a stated bound: 100,000-deep YAML (minutes in libyaml
  before), the 558-byte alias bomb (minutes in the pure-Python check before), a million-value
  manifest and a 10,000-node cycle each end within ``HANG_BOUND_S`` seconds on two busy cores.
* Memory, in a fresh interpreter with peak RSS measured: a streaming session's resampler state
  follows the rate its sender picks (191,999 Hz used to cost ~50 MB); such a session is refused
  before anything is allocated, and the largest one accepted stays under a stated bound.
"""

import gc
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from remotemedia import InputError, ManifestError, Pipeline, _runtime
from remotemedia.limits import (
    LIMITS,
    MANIFEST_BYTES,
    MANIFEST_EDGES,
    MANIFEST_NESTING,
    MANIFEST_NODES,
    MANIFEST_STRING_BYTES,
    MANIFEST_VALUES,
    RESAMPLER_BLOCK_FRAMES,
    STREAM_SESSIONS,
)

from conftest import tone

HANG_BOUND_S = 20.0

NESTING_EXPECTED = f"lists and mappings nested at most {MANIFEST_NESTING} deep"
NESTED_65 = f"a list or mapping nested {MANIFEST_NESTING + 1} deep"
VALUES_EXPECTED = f"at most {MANIFEST_VALUES} values (lists, mappings and scalars; a YAML alias counts its value at every use)"


@pytest.mark.requires_native
def test_the_shipped_limits_are_the_native_engines():
    assert json.loads(_runtime.native_module().limits_json()) == LIMITS


def good(runtime):
    p = Pipeline.from_dict({"version": "1.0", "nodes": [{"id": "g", "type": "GainNode", "params": {"gain_db": 6.0}}]},
                           runtime_hint=runtime)
    x = tone()
    np.testing.assert_allclose(p.run_sync((x, 16000))["g"].samples, x * 10 ** (6 / 20), rtol=1e-6)


def problems(runtime, how, manifest):
    with pytest.raises(ManifestError) as err:
        if how == "dict":
            Pipeline.from_dict(manifest, runtime_hint=runtime)
        elif how == "json":
            Pipeline.from_json(manifest, runtime_hint=runtime)
        else:
            Pipeline.from_yaml(manifest, runtime_hint=runtime)
    assert type(err.value) is ManifestError
    return [tuple(p) for p in err.value.problems]


def deep_dict(n):
    top = cur = {}
    for _ in range(n):
        cur["x"] = {}
        cur = cur["x"]
    return top


def self_containing():
    m = {"version": "1.0", "nodes": [{"id": "g", "type": "GainNode"}], "metadata": {}}
    m["metadata"]["me"] = m["metadata"]
    return m


def nodes(n):
    return [{"id": f"n{i}", "type": "PassthroughNode"} for i in range(n)]


BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
)

LONG = "x" * (MANIFEST_STRING_BYTES + 1)

CASES = [
    ("deep flow yaml", "yaml", "version: '1.0'\nnodes: " + "[" * 100_000 + "]" * 100_000 + "\n",
     [("line 2, column 71", NESTING_EXPECTED, NESTED_65)]),
    ("deep block yaml", "yaml", "nodes:\n  " + "- " * 100_000 + "x\n", [("line 2, column 129", NESTING_EXPECTED, NESTED_65)]),
    ("deep json", "json", '{"version": "1.0", "nodes": ' + "[" * 100_000 + "]" * 100_000 + "}",
     [("line 1, column 92", NESTING_EXPECTED, NESTED_65)]),
    ("deep python tree (was RecursionError)", "dict", {"version": "1.0", "nodes": [], "metadata": deep_dict(100_000)},
     [("manifest", NESTING_EXPECTED, NESTED_65)]),
    ("dict containing itself", "dict", self_containing(), [("manifest", NESTING_EXPECTED, NESTED_65)]),
    ("yaml alias containing itself", "yaml", "version: '1.0'\nmetadata: &m [*m]\n", [("manifest", NESTING_EXPECTED, NESTED_65)]),
    ("558-byte alias bomb", "yaml", BOMB,
     [("manifest", VALUES_EXPECTED, "YAML aliases used more than 100 times per event of the document")]),
    ("wide alias bomb", "yaml", "a: &a [" + ",".join(["0"] * 20_000) + "]\nb: [" + ",".join(["*a"] * 100) + "]\n",
     [("manifest", VALUES_EXPECTED, "more values")]),
    ("a million and one values", "json", "[" + ",".join(["0"] * MANIFEST_VALUES) + "]", [("manifest", VALUES_EXPECTED, "more values")]),
    ("long string", "dict", {"version": "1.0", "name": LONG, "nodes": nodes(1)},
     [("manifest", f"strings of at most {MANIFEST_STRING_BYTES} bytes", f'a string of {MANIFEST_STRING_BYTES + 1} bytes: "{"x" * 60}…"')]),
    ("long key", "json", f'{{"{LONG}": 1}}',
     [("manifest", f"strings of at most {MANIFEST_STRING_BYTES} bytes", f'a string of {MANIFEST_STRING_BYTES + 1} bytes: "{"x" * 60}…"')]),
    ("too many nodes", "dict", {"version": "1.0", "nodes": nodes(MANIFEST_NODES + 1), "config": {"workers": 0}},
     [("nodes", f"at most {MANIFEST_NODES} nodes", f"a list of {MANIFEST_NODES + 1} nodes"),
      ("config.workers", "an integer from 1 to 256", "0")]),
    ("too many edges", "dict", {"version": "1.0", "nodes": nodes(2), "edges": [{"from": "n0", "to": "n1"}] * (MANIFEST_EDGES + 1)},
     [("edges", f"at most {MANIFEST_EDGES} edges", f"a list of {MANIFEST_EDGES + 1} edges")]),
    ("a 10,000-node cycle", "dict",
     {"version": "1.0", "nodes": nodes(MANIFEST_NODES),
      "edges": [{"from": f"n{i}", "to": f"n{(i + 1) % MANIFEST_NODES}"} for i in range(MANIFEST_NODES)]},
     [("edges[9999]", "a graph without cycles (data must flow from the inputs to the outputs)",
       f"the cycle n0 -> n1 -> n2 -> n3 -> n4 -> n5 -> n6 -> n7 -> … ({MANIFEST_NODES - 8} more) -> n0")]),
    ("too large", "yaml", "# " + " " * MANIFEST_BYTES + "\nversion: '1.0'\n",
     [("manifest", f"a manifest of at most {MANIFEST_BYTES} bytes", f"{MANIFEST_BYTES + 18} bytes")]),
    ("a resampler pair needing too much state", "dict",
     {"version": "1.0", "nodes": [{"id": "r", "type": "AudioResampleNode", "params": {"input_rate": 191999, "output_rate": 16000}}]},
     [("nodes[0].params.input_rate",
       f"a rate the resampler can take to output_rate (FFT blocks of at most {RESAMPLER_BLOCK_FRAMES} frames; "
       "rates that are multiples of 25 Hz always fit)",
       "191999, which with output_rate 16000 needs blocks of 383998 frames")]),
]


@pytest.mark.parametrize("how,manifest,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_manifest_limits_are_one_problem_on_both_runtimes(runtime, how, manifest, expected):
    assert problems(runtime, how, manifest) == expected
    good(runtime)


@pytest.mark.requires_native
@pytest.mark.parametrize("how,manifest,expected", [c[1:] for c in CASES if c[1] != "dict"], ids=[c[0] for c in CASES if c[1] != "dict"])
def test_the_native_reader_says_the_same(how, manifest, expected):
    with pytest.raises(ManifestError) as err:
        _runtime.native_module().validate_manifest(manifest, None)
    assert [tuple(p) for p in err.value.problems] == expected


@pytest.mark.requires_native
@pytest.mark.parametrize("yaml,text", [
    (False, '{"version": "1.0", "nodes": ['), (False, '{"a": 1'), (False, '{"a":\n'), (False, "{"), (False, '{"a": "x'),
    (False, '[1,'), (False, '{"a": 1}x'), (False, '{"a": [}'), (False, '{"a": 1, "a": 2}'),
    (True, "version: '1.0'\nname: a\x07b\nnodes: []\n"), (True, "a: 1\nb: caf\u00e9\x1b\n"),
    (True, "a: 1\na: 2\n"), (True, "a: .nan\n"),
])
def test_both_readers_place_and_word_a_bad_text_alike(yaml, text):
    from remotemedia._pure.tree import parse_json, parse_yaml
    with pytest.raises(ManifestError) as pure:
        (parse_yaml if yaml else parse_json)(text)
    with pytest.raises(ManifestError) as native:
        _runtime.native_module().parse_manifest(text, yaml)
    assert native.value.problems == pure.value.problems


def test_manifest_read_errors_are_manifest_errors(runtime, tmp_path):
    # A control character: PyYAML's reader raised yaml.reader.ReaderError as it was built.
    p = problems(runtime, "yaml", "version: '1.0'\nname: a\x07b\nnodes: []\n")
    assert p == [("line 2, column 8", "valid YAML", "a syntax error: unacceptable character #x0007: special characters are not allowed")]
    # A file that is not UTF-8: UnicodeDecodeError.
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"version: '1.0'\nname: caf\xe9\n")
    assert problems(runtime, "yaml", latin1) == [("manifest", "UTF-8 text", "bytes that are not UTF-8 (from byte 24)")]
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(MANIFEST_BYTES + 1)  # sparse: refused before it is read
    assert problems(runtime, "json", big) == [("manifest", f"a manifest of at most {MANIFEST_BYTES} bytes", f"{MANIFEST_BYTES + 1} bytes")]
    assert problems(runtime, "yaml", "bad\0path.yaml") == [("manifest", "a file path", "a path with a NUL character: 'bad\\x00path.yaml'")]
    with pytest.raises(FileNotFoundError):
        Pipeline.from_yaml(tmp_path / "missing.yaml", runtime_hint=runtime)
    good(runtime)


HANGS = textwrap.dedent(
    """
    import sys, time
    from remotemedia import ManifestError, Pipeline
    n = 10000
    cycle = {"version": "1.0", "nodes": [{"id": f"n{i}", "type": "PassthroughNode"} for i in range(n)],
             "edges": [{"from": f"n{i}", "to": f"n{(i + 1) % n}"} for i in range(n)]}
    bomb = sys.argv[2]
    cases = [
        ("deep yaml", lambda: Pipeline.from_yaml("a: " + "[" * 100000 + "]" * 100000 + "\\n", runtime_hint=sys.argv[1])),
        ("deep block yaml", lambda: Pipeline.from_yaml("a:\\n  " + "- " * 100000 + "x\\n", runtime_hint=sys.argv[1])),
        ("alias bomb", lambda: Pipeline.from_yaml(bomb, runtime_hint=sys.argv[1])),
        ("million values", lambda: Pipeline.from_json("[" + ",".join(["0"] * 1000001) + "]", runtime_hint=sys.argv[1])),
        ("cycle", lambda: Pipeline.from_dict(cycle, runtime_hint=sys.argv[1])),
    ]
    for name, build in cases:
        t = time.perf_counter()
        try:
            build()
            outcome = "accepted"
        except ManifestError as e:
            outcome = f"ManifestError {len(str(e))} chars"
        print(f"{name}|{outcome}|{time.perf_counter() - t:.3f}", flush=True)
    """
)


def test_hang_cases_end_within_the_bound(runtime):
    done = subprocess.run([sys.executable, "-c", HANGS, runtime, BOMB], capture_output=True, text=True, timeout=5 * HANG_BOUND_S + 30)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("|") for line in done.stdout.splitlines()]
    assert [r[0] for r in rows] == ["deep yaml", "deep block yaml", "alias bomb", "million values", "cycle"]
    for name, outcome, seconds in rows:
        assert outcome.startswith("ManifestError"), (name, outcome)
        assert int(outcome.split()[1]) < 1000, (name, outcome)  # a capped message
        assert float(seconds) < HANG_BOUND_S, (name, seconds)


MEMORY = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from remotemedia import InputError, Pipeline

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    p = Pipeline([{"id": "r", "type": "AudioResampleNode", "params": {"output_rate": 16000}}], runtime_hint=sys.argv[1])
    warm = p.stream()
    warm.push((np.zeros(960, np.float32), 48000))
    warm.close()
    for rate, channels in [(191999, 1), (130888, 1), (130888, 32)]:
        base = peak_mb()
        session = p.stream()
        chunk = np.zeros((rate // 50, channels), np.float32)
        try:
            for _ in range(5):
                session.push((chunk, rate))
            session.close()
            outcome = "accepted"
        except InputError as e:
            outcome = "InputError " + str(e).split(": ", 1)[1]
        print(f"{rate}|{channels}|{outcome}|{peak_mb() - base:.1f}", flush=True)
    """
)


def test_a_sessions_resampler_state_is_bounded_whatever_rate_the_sender_picks(runtime):
    done = subprocess.run([sys.executable, "-c", MEMORY, runtime], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("|") for line in done.stdout.splitlines()]
    (r1, _, refused, grew1), (_, _, ok1, grew2), (_, _, ok32, grew3) = rows
    assert refused.startswith("InputError resampling 191999 Hz to 16000 Hz needs FFT blocks of 383998 frames"), refused
    assert float(grew1) < 5.0, f"refused session grew peak RSS by {grew1} MB"
    # The largest accepted mono block (130888 -> 16000 Hz: 32722 frames), then 32 channels of it
    # (1,047,104 samples, just under the limit): bounds on the growth of the peak, which measured
    # from 0 (state below the interpreter's earlier peak) to 33 MB depending on what ran before.
    assert ok1 == "accepted" and float(grew2) < 40.0, (ok1, grew2)
    assert ok32 == "accepted" and float(grew3) < 80.0, (ok32, grew3)


def test_a_refused_first_chunk_leaves_the_session_as_it_was(runtime):
    p = Pipeline([{"id": "r", "type": "AudioResampleNode", "params": {"output_rate": 16000}}], runtime_hint=runtime)
    session = p.stream()
    with pytest.raises(InputError, match="needs FFT blocks of 383998 frames"):
        session.push((np.zeros(3840, np.float32), 191999))
    x = tone(rate=48000, seconds=0.5)
    got = [session.push((x[i:i + 960], 48000))["r"].samples for i in range(0, x.size, 960)]
    got.append(session.close()["r"].samples)
    assert sum(g.size for g in got) == 8000


def test_a_pipeline_has_at_most_stream_sessions_open_sessions(runtime):
    p = Pipeline([{"id": "r", "type": "AudioResampleNode", "params": {"output_rate": 16000}}], runtime_hint=runtime)
    sessions = [p.stream() for _ in range(STREAM_SESSIONS)]
    with pytest.raises(InputError) as err:
        p.stream()
    assert type(err.value) is InputError
    assert str(err.value) == (
        f"this pipeline has {STREAM_SESSIONS} open streaming sessions, the most it may have; close one first"
    )
    # Closing one, or dropping one unclosed, frees its place; a new session then streams as any.
    sessions.pop().close()
    sessions.append(p.stream())
    sessions.pop()
    gc.collect()
    fresh = p.stream()
    x = tone(rate=48000, seconds=0.2)
    got = np.concatenate([fresh.push((x[i:i + 960], 48000))["r"].samples for i in range(0, x.size, 960)]
                         + [fresh.close()["r"].samples])
    np.testing.assert_allclose(got, p.run_sync((x, 48000))["r"].samples, rtol=0, atol=1e-5)
    # Another pipeline has its own count.
    other = Pipeline([{"id": "g", "type": "GainNode"}], runtime_hint=runtime)
    other.stream().close()
    for s in sessions:
        s.close()


def test_the_docs_table_is_the_engines():
    """Every limit in docs/reliability.md's table, with the value the engine enforces."""
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "reliability.md"), encoding="utf-8").read()
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d+)", doc.split("## Limits", 1)[1].split("\n## ", 1)[0], re.M)
    assert {k: int(v) for k, v in rows} == LIMITS


@pytest.mark.requires_native
def test_mutated_manifests_get_the_same_verdict_from_both_readers():
    # scripts/fuzz_manifests.py with a fixed seed and count, in a fresh interpreter, bounded in time.
    script = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "fuzz_manifests.py")
    done = subprocess.run([sys.executable, script, "--count", "40", "--seed", "7"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"^40 texts, .* 0 mismatches", done.stdout, re.M), done.stdout


NOT_REGULAR = textwrap.dedent(
    """
    import os, sys
    from remotemedia import ManifestError, Pipeline
    d = sys.argv[2]
    fifo = os.path.join(d, "fifo.yaml")
    os.mkfifo(fifo)
    loop = os.path.join(d, "loop.yaml")
    os.symlink(loop, loop)
    for name, path in [("directory", d), ("fifo", fifo), ("loop", loop)]:
        try:
            Pipeline.from_yaml(path, runtime_hint=sys.argv[1])
            print(name, "accepted")
        except ManifestError as e:
            # The message names the file (e.source), not only "manifest".
            assert e.source == path and str(e).startswith(f"invalid manifest '{path}' (1 problem)"), str(e)
            print(name, "|".join(e.problems[0]), flush=True)
    """
)


def test_manifest_paths_that_are_not_regular_files_are_refused_without_opening_them(runtime, tmp_path):
    # A FIFO named *.yaml blocked from_yaml (and the CLIs) forever; a symlink loop was "not found".
    done = subprocess.run([sys.executable, "-c", NOT_REGULAR, runtime, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [
        "directory manifest|a regular file|a directory",
        "fifo manifest|a regular file|a FIFO, socket or device (not opened: reading one can block)",
        "loop manifest|a readable file|Too many levels of symbolic links",
    ]


# "python" is the command pip installs (the Rust CLI through the extension); "native" the binary cargo builds.
@pytest.mark.parametrize("cli", [pytest.param("python", marks=pytest.mark.requires_native), "native"])
def test_the_clis_refuse_a_fifo_manifest_with_exit_2(cli, tmp_path):
    fifo = tmp_path / "m.yaml"
    os.mkfifo(fifo)
    binary = os.path.join(os.path.dirname(__file__), "..", "..", "target", "debug", "remotemedia")
    if cli == "native" and not os.path.exists(binary):
        pytest.fail(f"build the CLI first (cargo build): {binary} is missing")
    cmd = [sys.executable, "-m", "remotemedia"] if cli == "python" else [binary]
    done = subprocess.run(cmd + ["run", str(fifo)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "expected a regular file, found a FIFO, socket or device" in done.stderr, done.stderr
