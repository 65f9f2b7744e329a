"""The bad-input table: bad manifests, bad data and bad files, each raising one exact exception
class with the words that say what is wrong, on both runtimes -- and each followed by a good run,
so that a bad input never leaves a pipeline (or the process) unusable.

Manifest cases build a pipeline from the bad manifest (which must fail), then build and run a good
one. Data cases run the bad data through a pipeline, then good data through the SAME pipeline
object and check the result against the analytic answer.
"""

import json

import numpy as np
import pytest

from remotemedia import (
    InputError,
    ManifestError,
    NodeError,
    Pipeline,
)
from remotemedia.wav import read_wav, write_wav
from remotemedia import Audio

from conftest import tone

GAIN_6DB = np.float32(10 ** (6 / 20))


def gain(gain_db=6.0, node_id="g"):
    return {"id": node_id, "type": "GainNode", "params": {"gain_db": gain_db}}


def manifest(nodes, edges=None, **top):
    m = {"version": "1.0", "nodes": nodes}
    if edges is not None:
        m["edges"] = edges
    m.update(top)
    return m


def good_manifest():
    return manifest([gain()])


def check_good_run(p):
    x = tone()
    out = p.run_sync((x, 16000))
    np.testing.assert_array_equal(out["g"].samples, x * GAIN_6DB)


# ---- manifests: (case id, how the manifest is given, exception class, words in the message) ----
# The "how" is ("dict", tree), ("json", text) or ("yaml", text).

MANIFEST_CASES = [
    ("unknown node type", ("dict", manifest([{"id": "x", "type": "NoSuchNode"}])), ManifestError,
     ["nodes[0].type", "a known node type", '"NoSuchNode"']),
    ("cycle", ("dict", manifest([gain(node_id="a"), gain(node_id="b")],
                                [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}])), ManifestError,
     ["without cycles", "a -> b -> a"]),
    ("self loop", ("dict", manifest([gain()], [{"from": "g", "to": "g"}])), ManifestError,
     ["without cycles", "g -> g"]),
    ("duplicate ids", ("dict", manifest([gain(), gain()])), ManifestError,
     ["nodes[1].id", "unique node id", "already the id of nodes[0]"]),
    ("edge to unknown node", ("dict", manifest([gain()], [{"from": "g", "to": "nowhere"}])), ManifestError,
     ["edges[0].to", '"nowhere"', "which is no node's id"]),
    ("edge from unknown node", ("dict", manifest([gain()], [{"from": "ghost", "to": "g"}])), ManifestError,
     ["edges[0].from", '"ghost"']),
    ("output_key on a one-output node", ("dict", manifest([gain(), {"id": "p", "type": "PassthroughNode"}],
                                                          [{"from": "g", "to": "p", "output_key": "segments"}])),
     ManifestError, ["edges[0].output_key", "one whole output", '"segments"']),
    ("unsupported version", ("dict", manifest([gain()], version="2.0")), ManifestError,
     ["version", '"1.0"', '"2.0"']),
    ("no nodes field", ("dict", {"version": "1.0"}), ManifestError, ["nodes", "a list of nodes", "nothing"]),
    ("empty node list", ("dict", manifest([])), ManifestError, ["at least one node", "an empty list"]),
    ("nodes is an object", ("dict", {"version": "1.0", "nodes": {"g": gain()}}), ManifestError,
     ["a list of nodes", "an object"]),
    ("node id is a number", ("dict", manifest([{"id": 5, "type": "GainNode"}])), ManifestError,
     ["nodes[0].id", "a node id (a string)", "found 5"]),
    ("param of the wrong type", ("dict", manifest([gain("loud")])), ManifestError,
     ["nodes[0].params.gain_db", "a number from -120 to 60", '"loud"']),
    ("param out of range", ("dict", manifest([gain(61)])), ManifestError,
     ["nodes[0].params.gain_db", "from -120 to 60", "found 61"]),
    ("param huge", ("dict", manifest([gain(1e308)])), ManifestError, ["nodes[0].params.gain_db", "from -120 to 60"]),
    ("required param missing", ("dict", manifest([{"id": "r", "type": "AudioResampleNode"}])), ManifestError,
     ["nodes[0].params.output_rate", "required by AudioResampleNode", "nothing"]),
    ("rate not a whole number", ("dict", manifest([{"id": "r", "type": "AudioResampleNode",
                                                    "params": {"output_rate": 16000.5}}])), ManifestError,
     ["output_rate", "a whole number", "16000.5"]),
    ("rate given as bool", ("dict", manifest([{"id": "r", "type": "AudioResampleNode",
                                               "params": {"output_rate": True}}])), ManifestError,
     ["output_rate", "an integer from 8000 to 192000", "found true"]),
    ("extreme rate", ("dict", manifest([{"id": "r", "type": "AudioResampleNode",
                                         "params": {"output_rate": 2**63 - 1}}])), ManifestError,
     ["output_rate", "from 8000 to 192000"]),
    ("unknown quality", ("dict", manifest([{"id": "r", "type": "AudioResampleNode",
                                            "params": {"output_rate": 16000, "quality": "best"}}])), ManifestError,
     ["params.quality", '"very_high"', '"best"']),
    ("VAD frame length", ("dict", manifest([{"id": "v", "type": "VADNode", "params": {"frame_duration_ms": 25}}])),
     ManifestError, ["frame_duration_ms", "one of 10, 20, 30", "found 25"]),
    ("unknown sample format", ("dict", manifest([{"id": "f", "type": "FormatConverterNode",
                                                  "params": {"target_format": "f64"}}])), ManifestError,
     ["target_format", '"i16"', '"f64"']),
    ("misspelt param", ("dict", manifest([{"id": "g", "type": "GainNode", "params": {"gain": 6}}])), ManifestError,
     ["nodes[0].params.gain", 'did you mean "gain_db"']),
    ("workers 0", ("dict", manifest([gain()], config={"workers": 0})), ManifestError,
     ["config.workers", "from 1 to 256", "found 0"]),
    ("unknown retry policy", ("dict", manifest([gain()], config={"retry_policy": "sometimes"})), ManifestError,
     ["config.retry_policy", '"exponential"', '"sometimes"']),
    ("unknown runtime hint", ("dict", manifest([{"id": "g", "type": "GainNode", "runtime_hint": "gpu"}])),
     ManifestError, ["nodes[0].runtime_hint", '"python"', '"gpu"']),
    ("several problems at once", ("dict", manifest([gain(61), {"id": "r", "type": "AudioResampleNode"}],
                                                   [{"from": "g", "to": "zz"}])), ManifestError,
     ["3 problems", "gain_db", "output_rate", '"zz"']),
    ("YAML syntax error", ("yaml", "version: '1.0'\nnodes:\n  - id: a\n    type: GainNode\n   params: {gain_db: 3}\n"),
     ManifestError, ["line 5", "valid YAML", "syntax error"]),
    ("YAML tab indentation", ("yaml", "version: '1.0'\nnodes:\n\t- id: a\n"), ManifestError,
     ["valid YAML", "syntax error"]),
    ("YAML .nan param", ("yaml", "version: '1.0'\nnodes:\n  - id: g\n    type: GainNode\n    params: {gain_db: .nan}\n"),
     ManifestError, ["gain_db"]),
    ("JSON cut short", ("json", '{"version": "1.0", "nodes": ['), ManifestError,
     ["line 1, column 30", "valid JSON", "syntax error"]),
    ("JSON repeated key", ("json", '{"version": "1.0", "version": "1.0", "nodes": []}'), ManifestError,
     ["valid JSON", 'duplicate key "version"']),
    ("JSON NaN literal", ("json", '{"version": "1.0", "nodes": [{"id": "g", "type": "GainNode", '
                                  '"params": {"gain_db": NaN}}]}'), ManifestError, ["valid JSON", "syntax error"]),
    ("manifest file missing", ("yaml", "/nonexistent/dir/pipeline.yaml"), FileNotFoundError,
     ["No such file", "/nonexistent/dir/pipeline.yaml"]),
]


def build(how, runtime):
    kind, value = how
    if kind == "dict":
        return Pipeline.from_dict(value, runtime_hint=runtime)
    if kind == "json":
        return Pipeline.from_json(value, runtime_hint=runtime)
    return Pipeline.from_yaml(value, runtime_hint=runtime)


@pytest.mark.parametrize("case, how, exc, words", MANIFEST_CASES, ids=[c[0] for c in MANIFEST_CASES])
def test_bad_manifest(runtime, case, how, exc, words):
    with pytest.raises(exc) as e:
        build(how, runtime)
    assert type(e.value) is exc, f"{case}: {type(e.value).__name__}: {e.value}"
    for w in words:
        assert w in str(e.value), f"{case}: {w!r} not in {str(e.value)!r}"
    # A good manifest afterwards builds and runs.
    check_good_run(build(("dict", good_manifest()), runtime))


def test_a_bad_manifest_file_fails_and_the_good_file_runs(runtime, tmp_path):
    bad, good = tmp_path / "bad.json", tmp_path / "good.json"
    bad.write_text(json.dumps(manifest([gain()], [{"from": "g", "to": "g"}])))
    good.write_text(json.dumps(good_manifest()))
    with pytest.raises(ManifestError, match="without cycles"):
        Pipeline.from_json(bad, runtime_hint=runtime)
    check_good_run(Pipeline.from_json(good, runtime_hint=runtime))


# ---- data: (case id, pipeline manifest, bad data, class, words, good data, check of the good output) ----

def resample_vad():
    return manifest(
        [{"id": "r", "type": "AudioResampleNode", "params": {"output_rate": 16000, "input_rate": 48000}},
         {"id": "v", "type": "VADNode", "params": {"frame_duration_ms": 30}}],
        [{"from": "r", "to": "v"}],
    )


def two_sources_mix():
    return manifest([gain(0.0, "a"), gain(0.0, "b"), {"id": "m", "type": "MixNode"}],
                    [{"from": "a", "to": "m"}, {"from": "b", "to": "m"}])


def gain_then(node):
    return manifest([gain(60.0, "g"), node], [{"from": "g", "to": node["id"]}])


def good_gain(out):
    x = tone()
    np.testing.assert_array_equal(out["g"].samples, x * GAIN_6DB)


def good_vad(out):
    # 0.3 s at 48 kHz -> 4800 samples at 16 kHz -> 10 frames of 30 ms.
    assert len(out["v"]["frames"]) == 10
    assert out["v"]["audio"].sample_rate == 16000


def good_mix(out):
    x = tone()
    np.testing.assert_array_equal(out["m"].samples, x + x)


LOUD = np.full(1600, 1e37, np.float32)  # finite, but 60 dB of gain takes it past f32's range
T = tone()
T48 = tone(rate=48000, seconds=0.3)

DATA_CASES = [
    ("float64 samples", manifest([gain()]), (T.astype(np.float64), 16000), InputError,
     ["float32, int16 or int32", "float64"], (T, 16000), good_gain),
    ("uint8 samples", manifest([gain()]), (T.astype(np.uint8), 16000), InputError, ["uint8"], (T, 16000), good_gain),
    ("3-D array", manifest([gain()]), (np.zeros((4, 2, 2), np.float32), 16000), InputError,
     ["3-D", "(4, 2, 2)"], (T, 16000), good_gain),
    ("empty array", manifest([gain()]), (np.zeros(0, np.float32), 16000), InputError, ["empty"], (T, 16000), good_gain),
    ("NaN sample", manifest([gain()]), (np.array([0, np.nan, 0], np.float32), 16000), InputError,
     ["NaN", "frame 1"], (T, 16000), good_gain),
    ("infinite sample", manifest([gain()]), (np.array([[0, 0], [0, -np.inf]], np.float32), 16000), InputError,
     ["infinity", "frame 1"], (T, 16000), good_gain),
    ("(channels, frames) array", manifest([gain()]), (np.zeros((2, 4800), np.float32), 16000), InputError,
     ["samples.T"], (T, 16000), good_gain),
    ("rate 0", manifest([gain()]), (T, 0), InputError, ["positive integer"], (T, 16000), good_gain),
    ("rate not whole", manifest([gain()]), (T, 16000.5), InputError, ["whole number"], (T, 16000), good_gain),
    ("rate as string", manifest([gain()]), (T, "16000"), InputError, ["positive integer"], (T, 16000), good_gain),
    ("no rate", manifest([gain()]), T, InputError, ["sample rate"], (T, 16000), good_gain),
    ("a list, not an array", manifest([gain()]), ([0.0, 0.1], 16000), InputError, ["numpy array", "list"],
     (T, 16000), good_gain),
    ("int16 into GainNode", manifest([gain()]), (tone(dtype=np.int16), 16000), InputError,
     ["GainNode needs f32 samples", "received i16", "FormatConverterNode"], (T, 16000), good_gain),
    ("contradicting sample rate", resample_vad(), (tone(rate=44100, seconds=0.3), 44100), InputError,
     ["node 'r'", "AudioResampleNode expects input at 48000 Hz", "44100 Hz"], (T48, 48000), good_vad),
    ("rate below the resampler's range", manifest([{"id": "r", "type": "AudioResampleNode",
                                                    "params": {"output_rate": 16000}}, gain(0.0)],
                                                  [{"from": "r", "to": "g"}]),
     (T, 4000), InputError, ["node 'r'", "input sample rate 4000 Hz is outside 8000..=192000 Hz"],
     (tone(rate=48000), 48000), lambda out: np.testing.assert_equal(out["g"].samples.shape, (1600,))),
    ("VAD at a rate it cannot frame", manifest([{"id": "v", "type": "VADNode"}]), (tone(rate=22050), 22050),
     InputError, ["node 'v'", "multiple of 100 Hz", "received 22050 Hz", "AudioResampleNode"],
     (tone(rate=16000, seconds=0.3), 16000), lambda out: np.testing.assert_equal(len(out["v"]["frames"]), 10)),
    ("overflow to inf before the VAD", gain_then({"id": "v", "type": "VADNode"}), (LOUD, 16000), InputError,
     ["node 'v'", "non-finite sample"], (tone(rate=16000, seconds=0.3, amplitude=1e-4), 16000),
     lambda out: np.testing.assert_equal(len(out["v"]["frames"]), 10)),
    ("overflow to inf before the resampler", gain_then({"id": "r", "type": "AudioResampleNode",
                                                         "params": {"output_rate": 8000}}), (LOUD, 16000), InputError,
     ["node 'r'", "the resampler needs finite samples"], (tone(amplitude=1e-4), 16000),
     lambda out: np.testing.assert_equal(out["r"].samples.shape, (800,))),
    ("missing named input", two_sources_mix(), {"a": (T, 16000)}, InputError,
     ["no input for source node 'b'", "a, b"], {"a": (T, 16000), "b": (T, 16000)}, good_mix),
    ("input for a node that is no source", two_sources_mix(), {"a": (T, 16000), "b": (T, 16000), "m": (T, 16000)},
     InputError, ["'m'", "not a source node"], {"a": (T, 16000), "b": (T, 16000)}, good_mix),
    ("mixing different rates", two_sources_mix(), {"a": (T, 16000), "b": (tone(rate=8000), 8000)}, InputError,
     ["node 'm'", "8000 Hz x1", "16000 Hz x1"], {"a": (T, 16000), "b": (T, 16000)}, good_mix),
    ("mixing int16 with f32", two_sources_mix(), {"a": (T, 16000), "b": (tone(dtype=np.int16), 16000)},
     InputError, ["node 'b'", "GainNode needs f32 samples"], {"a": (T, 16000), "b": (T, 16000)}, good_mix),
]


@pytest.mark.parametrize("case, tree, bad, exc, words, good, check", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_bad_data_then_a_good_run_on_the_same_pipeline(runtime, case, tree, bad, exc, words, good, check):
    p = Pipeline.from_dict(tree, runtime_hint=runtime)
    with pytest.raises(exc) as e:
        p.run_sync(bad)
    assert type(e.value) is exc, f"{case}: {type(e.value).__name__}: {e.value}"
    for w in words:
        assert w in str(e.value), f"{case}: {w!r} not in {str(e.value)!r}"
    check(p.run_sync(good))
    # And once more: the good run did not just happen to come first.
    check(p.run_sync(good))


def test_non_contiguous_input_gives_the_contiguous_result(runtime):
    # Not an error: a strided view is copied once and gives exactly the contiguous answer.
    p = Pipeline.from_dict(manifest([gain()]), runtime_hint=runtime)
    wide = np.stack([T, -T, T], axis=1)
    view = wide[:, ::2]
    assert not view.flags.c_contiguous
    out = p.run_sync((view, 16000))["g"].samples
    np.testing.assert_array_equal(out, np.ascontiguousarray(view) * GAIN_6DB)
    check_good_run(p)


# ---- files ----

def test_non_wav_bytes_are_an_input_error_then_a_real_wav_reads(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"hello, this is not audio")
    with pytest.raises(InputError) as e:
        read_wav(bad)
    assert type(e.value) is InputError
    assert "is not a supported audio file" in str(e.value) and str(bad) in str(e.value)
    good = tmp_path / "tone.wav"
    write_wav(good, Audio(T, 16000))
    back = read_wav(good)
    np.testing.assert_array_equal(back.samples, T)
    assert back.sample_rate == 16000


def test_truncated_wav_header_is_an_input_error(tmp_path):
    bad = tmp_path / "cut.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVE")
    with pytest.raises(InputError, match="no fmt chunk"):
        read_wav(bad)


def test_missing_wav_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_wav(tmp_path / "absent.wav")


@pytest.mark.requires_native
def test_cli_refuses_non_wav_input_then_runs_a_good_one(tmp_path, capfd):
    from remotemedia.cli import main

    m = tmp_path / "p.json"
    m.write_text(json.dumps(good_manifest()))
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"\x00" * 64)
    code = main(["run", str(m), "--input", str(bad)])
    err = capfd.readouterr().err
    assert code == 2, err
    assert "invalid input" in err and "is not a supported audio file" in err
    assert "Traceback" not in err
    good = tmp_path / "good.wav"
    write_wav(good, Audio(T, 16000))
    out_wav = tmp_path / "out.wav"
    code = main(["run", str(m), "--input", str(good), "--output", str(out_wav)])
    assert code == 0, capfd.readouterr().err
    np.testing.assert_array_equal(read_wav(out_wav).samples, T * GAIN_6DB)


def test_a_python_node_that_raises_is_a_node_error_and_the_next_run_works(runtime):
    from remotemedia import Node

    class Picky(Node):
        def process(self, audio):
            if audio.frames == 3:
                raise RuntimeError("three frames is bad luck")
            return audio

    p = Pipeline([Picky(node_id="picky")], runtime_hint=runtime)
    with pytest.raises(NodeError) as e:
        p.run_sync((np.zeros(3, np.float32), 16000))
    assert type(e.value) is NodeError
    assert "node 'picky' (Picky)" in str(e.value) and "RuntimeError: three frames is bad luck" in str(e.value)
    out = p.run_sync((T, 16000))["picky"]
    np.testing.assert_array_equal(out.samples, T)
