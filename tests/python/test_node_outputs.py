"""What a custom node may return, and what it receives: the same rules, limits and words on both
runtimes (``payload_from_py`` in src/python/convert.rs, ``remotemedia.payloads.node_output``).

Outputs that cannot be passed on (NaN, sets, int keys, big ints, generators, values nested too
deep or containing themselves, too many values) raise ``InputError`` naming the node and where in
the output the problem is; the pipeline then runs the next good input. Values that can are passed
on as the same Python values (tuples and numpy arrays as lists, dict keys in order, audio as a
copy). A node's inputs are its own: modifying them in place changes neither the caller's array
nor what another node receives.

The crash cases (a list nested 4,000 deep or containing itself used to overflow the native
engine's stack: SIGSEGV) run in a fresh interpreter, so a crash fails the test instead of the run.
"""

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from remotemedia import Audio, InputError, Node, Pipeline
from remotemedia.limits import VALUE_ITEMS, VALUE_NESTING
from remotemedia.payloads import Clip, Features, VadResult

from conftest import tone


class Returns(Node):
    """Returns whatever ``make()`` gives (a fresh value per call)."""

    make = staticmethod(lambda: None)

    def process(self, audio):
        return self.make()


def returning(make, runtime):
    node = Returns(node_id="n")
    node.make = make
    return Pipeline([node], runtime_hint=runtime)


def nested(depth):
    top = []
    cur = top
    for _ in range(depth - 1):
        cur.append([])
        cur = cur[0]
    return top


def cycle():
    x = [1]
    x.append(x)
    return x


def forever():
    while True:
        yield 1


AUDIO_IN = (tone(), 16000)

# (case, value maker, words of the InputError after "returned an unusable output: ")
REFUSED = [
    ("nan", lambda: {"score": float("nan")},
     'output["score"]: nan cannot be passed between nodes (JSON numbers are finite); use None'),
    ("inf in a list", lambda: [1.0, float("-inf")], "output[1]: -inf cannot be passed between nodes"),
    ("numpy nan", lambda: np.array([0.5, np.nan], dtype=np.float32), "output[1]: nan cannot be passed"),
    ("set", lambda: {"tags": {"a", "b"}},
     'output["tags"]: cannot pass a set between nodes; return audio, a dict or JSON values (None, bool, int, float, '
     "str, list); a set has no order: return sorted(...) or a list"),
    ("int key", lambda: {1: "a"}, "output: dict keys must be strings, got int"),
    ("int key in a list", lambda: [{"ok": 1}, {2: "b"}], "output[1]: dict keys must be strings, got int"),
    ("big int", lambda: 2**64, "output: an integer of 65 bits is out of range (from -2**63 to 2**64-1)"),
    ("huge int", lambda: [10**5000], "output[0]: an integer of 16610 bits is out of range"),
    ("generator", lambda: (x for x in range(3)),
     "output: cannot pass a generator between nodes; return audio, a dict or JSON values (None, bool, int, float, "
     "str, list); an iterator or generator is never consumed (it could be endless): return a list"),
    ("endless generator", lambda: {"xs": forever()}, 'output["xs"]: cannot pass a generator between nodes'),
    ("iterator", lambda: iter([1, 2]), "output: cannot pass a list_iterator between nodes"),
    ("object", lambda: object(), "output: cannot pass a object between nodes"),
    ("bytes", lambda: b"ab", "output: cannot pass a bytes between nodes"),
    ("audio in a list", lambda: [Audio(tone(), 16000)],
     "output[0]: audio inside a list cannot be passed between nodes; return a dict of named audio"),
    ("audio with NaN", lambda: {"a": Audio._trusted(np.array([0.0, np.nan], np.float32), 16000)},
     "samples contain NaN or infinity (1 values, the first at frame 1)"),
    ("audio float64", lambda: (np.zeros(4), 16000),
     "output: samples must be a numpy array of float32, int16 or int32, got float64"),
    ("audio rate", lambda: {"x": (np.zeros(4, np.float32), 0)}, 'output["x"]: sample_rate must be a positive number of Hz, got 0'),
    # Found by scripts/fuzz_outputs.py: natively True was taken as 1 Hz, and an Audio in the
    # samples' place was described by its dtype ("got float32").
    ("audio rate bool", lambda: (Audio(tone(), 16000), True), "output: sample_rate must be an integer, got bool"),
    ("audio in the samples' place", lambda: (Audio(tone(), 16000), 16000),
     "output: samples must be a numpy array of float32, int16 or int32, got Audio"),
    ("lone surrogate", lambda: {"k": "\ud800"}, 'output["k"]: a string that is not valid Unicode (a lone surrogate)'),
    ("too deep", lambda: nested(VALUE_NESTING + 1),
     f"output[0][0][0][0][0][…][0][0][0][0]: nested more than {VALUE_NESTING} levels deep"),
    ("4000 deep", lambda: {"x": nested(4000)}, f"nested more than {VALUE_NESTING} levels deep"),
    ("contains itself", cycle, "output[1]: contains itself (a reference cycle)"),
    ("too many", lambda: np.zeros(VALUE_ITEMS + 1, dtype=np.int16), f"output: more than {VALUE_ITEMS} values in one output"),
    ("too many in lists", lambda: [[0] * 1000 for _ in range(1000)],
     f"output[999]: more than {VALUE_ITEMS} values in one output"),
    ("clip with NaN", lambda: {"c": [Clip(tone(), 16000, 5), Clip._trusted_clip(np.full(4, np.nan, np.float32), 16000, 9)]},
     "samples contain NaN or infinity (4 values, the first at frame 0)"),
    ("clip start", lambda: [Clip(tone(), 16000), type("C", (), {"start_frame": -1, "samples": 0})()],
     "output[1]: start_frame must be a non-negative integer"),
    ("features rate", lambda: {"values": np.zeros((2, 3), np.float32), "frame_rate": "100"},
     "output: features: frame_rate must be a number, got str"),
    ("features no bins", lambda: {"f": {"values": np.zeros((2, 0), np.float32), "frame_rate": 100}},
     'output["f"]: features: features need at least 1 bin per frame'),
    ("features rate -1", lambda: {"values": np.zeros((2, 3), np.float32), "frame_rate": -1},
     "output: features: features need a positive frame rate, found -1"),
    ("vad segments", lambda: {"segments": [(0.0, 1.0, 2.0)], "frames": [True], "audio": (tone(), 16000)},
     'output["segments"]: a VAD result\'s segments must be (start_s, end_s) pairs of numbers'),
    ("vad frames", lambda: {"segments": [], "frames": np.array([0, 1]), "audio": (tone(), 16000)},
     'output["frames"]: a VAD result\'s frames must be booleans'),
    ("vad probabilities", lambda: {"segments": [], "frames": [], "probabilities": "x", "audio": (tone(), 16000)},
     'output["probabilities"]: a VAD result\'s probabilities must be a list or array of numbers'),
    ("vad audio", lambda: {"segments": [], "frames": [], "audio": (tone().astype(np.float64), 16000)},
     'output["audio"]: samples must be a numpy array of float32, int16 or int32, got float64'),
]


@pytest.mark.parametrize("make,words", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_outputs_that_cannot_be_passed_on_are_input_errors_naming_the_node(runtime, make, words):
    p = returning(make, runtime)
    with pytest.raises(InputError) as err:
        p.run_sync(AUDIO_IN)
    e = err.value
    assert type(e) is InputError
    assert (e.node_id, e.node_type) == ("n", "Returns")
    # The native message also says which run; the rest is word for word the same.
    message = re.sub(r" \(run \d+\)", "", str(e))
    assert message.startswith("node 'n' (Returns) returned an unusable output: "), message
    assert words in message, message
    # The pipeline goes on: a good output after the refused one.
    p._python_nodes["n"].make = lambda: {"ok": [1, 2.5, None]}
    assert p.run_sync(AUDIO_IN)["n"] == {"ok": [1, 2.5, None]}


# (case, value maker, what the next node or the caller receives)
PASSED = [
    ("tuple", lambda: (1, (2, "x")), [1, [2, "x"]]),
    ("numpy array", lambda: np.arange(3, dtype=np.int16), [0, 1, 2]),
    ("numpy 2-D", lambda: np.eye(2, dtype=np.float32), [[1.0, 0.0], [0.0, 1.0]]),
    ("numpy scalars", lambda: [np.float32(1.5), np.int64(-3), np.bool_(True)], [1.5, -3, True]),
    ("ints at the range ends", lambda: [-(2**63), 2**64 - 1], [-(2**63), 2**64 - 1]),
    ("dict keys in order", lambda: {"b": 1, "a": {"d": 2, "c": 3}}, {"a": {"c": 3, "d": 2}, "b": 1}),
    ("exactly as deep as allowed", lambda: nested(VALUE_NESTING), nested(VALUE_NESTING)),
    ("a list shared twice", lambda: (lambda s: [s, s])([1, 2]), [[1, 2], [1, 2]]),
]


@pytest.mark.parametrize("make,expected", [c[1:] for c in PASSED], ids=[c[0] for c in PASSED])
def test_outputs_are_passed_on_as_the_same_values(runtime, make, expected):
    out = returning(make, runtime).run_sync(AUDIO_IN)["n"]
    assert out == expected
    assert type(out) is type(expected)
    if isinstance(out, dict):
        assert list(out) == list(expected)


def test_audio_and_vad_results_from_a_python_node(runtime):
    x = tone()
    out = returning(lambda: {"a": Audio(x.reshape(-1, 1), 16000)}, runtime).run_sync(AUDIO_IN)["n"]
    # Mono comes back 1-D, as the engine's own copy.
    assert out["a"].samples.shape == x.shape and np.array_equal(out["a"].samples, x)
    # A VAD-shaped dict (a VadResult, or a plain dict with its keys) is passed on as a VAD result.
    vad = VadResult(segments=[(0.0, 0.5)], frames=np.array([True, False]), audio=Audio(x, 16000))
    for given in (vad, {"segments": [[0, 0.5]], "frames": [True, False], "audio": (x, 16000)}):
        out = returning(lambda: given, runtime).run_sync(AUDIO_IN)["n"]
        assert type(out) is VadResult and out == vad, out
        assert out["segments"] == [(0.0, 0.5)] and out["probabilities"].dtype == np.float32
        assert out["audio"].samples is not x
    probs = VadResult(segments=[], frames=np.array([False]), probabilities=np.array([0.25], np.float32), audio=Audio(x, 16000))
    out = returning(lambda: probs, runtime).run_sync(AUDIO_IN)["n"]
    assert type(out) is VadResult and np.array_equal(out["probabilities"], [0.25])


def test_clips_and_features_from_a_python_node(runtime):
    x = tone()
    clips = [Clip(x, 16000, 7), Clip(x[:100].reshape(-1, 1), 16000, 3000)]
    out = returning(lambda: {"clips": clips}, runtime).run_sync(AUDIO_IN)["n"]["clips"]
    assert [type(c) for c in out] == [Clip, Clip] and [c.start_frame for c in out] == [7, 3000]
    assert np.array_equal(out[0].samples, x) and np.array_equal(out[1].samples, x[:100])
    feats = Features(np.arange(6, dtype=np.float32).reshape(3, 2), 100.0)
    for given in (feats, {"values": np.asarray(feats), "frame_rate": 100}):
        out = returning(lambda: given, runtime).run_sync(AUDIO_IN)["n"]
        assert type(out) is Features and out.frame_rate == 100.0 and np.array_equal(out, feats)
    # An empty list, or a dict with other keys, stays JSON / a map.
    assert returning(lambda: [], runtime).run_sync(AUDIO_IN)["n"] == []
    out = returning(lambda: {"values": [1], "frame_rate": 100}, runtime).run_sync(AUDIO_IN)["n"]
    assert out == {"frame_rate": 100, "values": [1]}


def test_unaligned_audio_is_read_as_any_other(runtime):
    # A float32 view at an odd byte offset: once refused as "not C-contiguous", with a suggested
    # fix (np.ascontiguousarray) that returned the very same array.
    raw = b"\0" + tone().tobytes()
    unaligned = np.frombuffer(raw, dtype=np.float32, offset=1)
    assert not unaligned.flags.aligned and unaligned.flags.c_contiguous
    p = Pipeline([{"id": "g", "type": "GainNode", "params": {"gain_db": 6.0}}], runtime_hint=runtime)
    np.testing.assert_array_equal(p.run_sync((unaligned, 16000))["g"].samples, p.run_sync((tone(), 16000))["g"].samples)
    out = returning(lambda: (unaligned, 16000), runtime).run_sync(AUDIO_IN)["n"]
    np.testing.assert_array_equal(out.samples, tone())


class Doubles(Node):
    """Doubles its input in place and returns it."""

    def process(self, audio):
        audio.samples[...] *= 2
        return audio


class Reads(Node):
    def process(self, audio):
        return float(np.max(np.abs(audio.samples)))


def test_a_node_modifying_its_input_changes_nothing_outside_it(runtime):
    x = tone(amplitude=0.5)
    before = x.copy()
    p = Pipeline([Doubles(node_id="d")], runtime_hint=runtime)
    out = p.run_sync((x, 16000))["d"]
    np.testing.assert_array_equal(x, before)  # the caller's array
    np.testing.assert_array_equal(out.samples, before * 2)
    # Fan-out: what the other branch receives is not the doubled array.
    fan = Pipeline(
        [{"id": "src", "type": "PassthroughNode"}, Doubles(node_id="d"), Reads(node_id="r")],
        [("src", "d"), ("src", "r")],
        runtime_hint=runtime,
    )
    out = fan.run_sync((x, 16000))
    assert out["r"] == float(np.max(np.abs(before)))
    np.testing.assert_array_equal(x, before)


CRASH = textwrap.dedent(
    """
    import sys
    import numpy as np
    from remotemedia import InputError, Node, Pipeline

    def deep(n):
        top = cur = []
        for _ in range(n):
            cur.append([])
            cur = cur[0]
        return top

    def cycle():
        x = [1]
        x.append(x)
        return {"x": x}

    def forever():
        while True:
            yield 1.0

    class Bad(Node):
        make = None

        def process(self, audio):
            return self.make()

    for name, make in [("deep", lambda: deep(4000)), ("cycle", cycle), ("forever", forever)]:
        node = Bad(node_id="bad")
        node.make = make
        p = Pipeline([node], runtime_hint=sys.argv[1])
        try:
            p.run_sync((np.zeros(160, np.float32), 16000))
            print(name, "accepted")
        except InputError as e:
            print(name, type(e).__name__, e.node_id, str(e).split(": ", 1)[1])
    """
)


def test_crash_cases_end_with_input_error_in_a_fresh_interpreter(runtime):
    done = subprocess.run([sys.executable, "-c", CRASH, runtime], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"deep InputError bad output[0][0][0][0][0][…][0][0][0][0]: nested more than {VALUE_NESTING} levels deep"), lines
    assert lines[1] == 'cycle InputError bad output["x"][1]: contains itself (a reference cycle)', lines
    assert lines[2].startswith("forever InputError bad output: cannot pass a generator between nodes"), lines


@pytest.mark.requires_native
def test_random_outputs_get_the_same_verdict_on_both_runtimes():
    # scripts/fuzz_outputs.py, a fixed seed and count: every value passed on as equal values or
    # refused with the same InputError by both runtimes. In a fresh interpreter (a crash fails
    # the test, not the run), bounded in time.
    script = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "fuzz_outputs.py")
    done = subprocess.run([sys.executable, script, "--count", "120", "--seed", "7"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"^120 values, \d+ passed on, \d+ refused alike, 0 mismatches", done.stdout, re.M), done.stdout
