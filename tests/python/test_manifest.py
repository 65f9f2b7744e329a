"""Manifests: loading from YAML/JSON/dicts, builder round trips, and ManifestError problem lists."""

import json

import numpy as np
import pytest

from remotemedia import (
    AudioResampleNode,
    FormatConverterNode,
    GainNode,
    ManifestError,
    MixNode,
    Node,
    PassthroughNode,
    Pipeline,
    VADNode,
    register_node,
    unregister_node,
)

from conftest import tone

YAML = """\
version: "1.0"
name: loud
nodes:
  - id: a
    type: GainNode
    params: {gain_db: 6.0}
  - id: b
    type: GainNode
    params:
      gain_db: -12
edges:
  - {from: a, to: b}
config:
  enable_metrics: true
"""


def gain_chain_ok(p):
    x = tone()
    out = p.run_sync((x, 16000))["b"]
    np.testing.assert_array_equal(out.samples, x * np.float32(10 ** (6 / 20)) * np.float32(10 ** (-12 / 20)))


def test_from_yaml_file(tmp_path, runtime):
    path = tmp_path / "p.yaml"
    path.write_text(YAML)
    p = Pipeline.from_yaml(path, runtime_hint=runtime)
    gain_chain_ok(p)
    assert p.get_metrics()["node_metrics"][0]["execution_count"] == 1


def test_from_json_path_and_text(tmp_path, runtime):
    import yaml

    text = json.dumps(yaml.safe_load(YAML))
    path = tmp_path / "p.json"
    path.write_text(text)
    gain_chain_ok(Pipeline.from_json(str(path), runtime_hint=runtime))
    gain_chain_ok(Pipeline.from_json(text, runtime_hint=runtime))


def test_builder_manifest_round_trips_through_from_dict(runtime):
    p = Pipeline(
        [
            FormatConverterNode("f32"),
            AudioResampleNode(16000, input_rate=48000, quality="medium"),
            VADNode(frame_duration_ms=20, hangover_ms=100, runtime_hint="python"),
            GainNode(3.0),
        ],
        name="speech",
        enable_metrics=True,
        runtime_hint=runtime,
    )
    m = p.manifest
    assert [n["id"] for n in m["nodes"]] == ["format_converter", "audio_resample", "vad", "gain"]
    assert m["nodes"][2] == {"id": "vad", "type": "VADNode", "runtime_hint": "python",
                             "params": {"frame_duration_ms": 20, "hangover_ms": 100, "bridge_ms": 390}}
    assert m["edges"] == [{"from": "format_converter", "to": "audio_resample"},
                          {"from": "audio_resample", "to": "vad"}, {"from": "vad", "to": "gain"}]
    assert m["config"] == {"enable_metrics": True, "workers": 1}
    again = Pipeline.from_dict(json.loads(json.dumps(m)), runtime_hint=runtime)
    assert again.manifest == m


def test_from_dict_manifest_is_returned_unchanged(runtime):
    m = {"version": "1.0", "nodes": [{"id": "p", "type": "PassthroughNode"}]}
    p = Pipeline.from_dict(m, runtime_hint=runtime)
    assert p.manifest == m
    p.manifest["nodes"].append({"id": "x"})  # a copy: the pipeline is unaffected
    assert p.manifest == m


def test_generated_ids_are_unique():
    p = Pipeline([GainNode(1.0), GainNode(2.0), MixNode()], edges=[], runtime_hint="python")
    assert p.node_ids == ["gain", "gain_2", "mix"]


def test_custom_registered_type_in_a_manifest(runtime):
    @register_node
    class Scale(Node):
        def process(self, audio):
            return type(audio)(audio.samples * np.float32(self.params["factor"]), audio.sample_rate)

    try:
        p = Pipeline.from_dict(
            {"version": "1.0", "nodes": [{"id": "s", "type": "Scale", "params": {"factor": 0.5, "anything": [1, 2]}}]},
            runtime_hint=runtime,
        )
        x = tone()
        np.testing.assert_array_equal(p.run_sync((x, 16000))["s"].samples, x * np.float32(0.5))
    finally:
        unregister_node("Scale")


def problems(manifest):
    with pytest.raises(ManifestError) as e:
        Pipeline.from_dict(manifest, runtime_hint="python")
    return {p.path: p for p in e.value.problems}, e.value


def test_every_problem_is_reported_at_once():
    got, err = problems(
        {
            "version": "2.0",
            "nodez": [],
            "nodes": [
                {"id": "r", "type": "AudioResampleNode", "params": {"output_rate": 5, "qualty": "high"}},
                {"id": "v", "type": "VADNode", "params": {"frame_duration_ms": 25, "hangover_ms": 2.5}},
                {"id": "g", "type": "GainNod"},
                {"id": "r", "type": "GainNode", "params": {"gain_db": float("nan")}, "runtime_hint": "gpu"},
                {"type": "FormatConverterNode", "params": {"target_format": "f64"}},
            ],
            "config": {"workers": 0, "retry_policy": "sometimes", "max_retries": 101, "colour": 1},
        }
    )
    assert set(got) == {
        "version",
        "nodez",
        "nodes[0].params.output_rate",
        "nodes[0].params.qualty",
        "nodes[1].params.frame_duration_ms",
        "nodes[1].params.hangover_ms",
        "nodes[2].type",
        "nodes[3].id",
        "nodes[3].params.gain_db",
        "nodes[3].runtime_hint",
        "nodes[4].id",
        "nodes[4].params.target_format",
        "config.workers",
        "config.retry_policy",
        "config.max_retries",
        "config.colour",
    }
    assert got["nodes[0].params.output_rate"].expected == "an integer from 8000 to 192000"
    assert got["nodes[0].params.output_rate"].found == "5"
    assert 'did you mean "quality"' in got["nodes[0].params.qualty"].expected
    assert 'did you mean "GainNode"' in got["nodes[2].type"].expected
    assert got["nodes[1].params.frame_duration_ms"].expected == "one of 10, 20, 30"
    assert got["nodes[3].params.gain_db"] == ("nodes[3].params.gain_db", "a number from -120 to 60 (a finite number)", "NaN")
    assert got["nodes[4].id"].found == "nothing"
    assert 'did you mean "nodes"' in got["nodez"].expected
    assert str(err).startswith("invalid manifest (16 problems)\n  - ")
    assert '\n  - version: expected a supported manifest version: "1.0", found the string "2.0"' in str(err)


def test_integer_valued_floats_count_as_integers():
    p = Pipeline.from_dict({"version": "1.0", "nodes": [{"id": "r", "type": "AudioResampleNode", "params": {"output_rate": 16000.0}}]},
                           runtime_hint="python")
    assert p.manifest["nodes"][0]["params"]["output_rate"] == 16000.0


@pytest.mark.parametrize(
    "manifest, path, found",
    [
        ([], "manifest", "an empty list"),
        ({"nodes": [{"id": "a", "type": "GainNode"}]}, "version", "nothing"),
        ({"version": "1.0"}, "nodes", "nothing"),
        ({"version": "1.0", "nodes": []}, "nodes", "an empty list"),
        ({"version": "1.0", "nodes": {"id": "a"}}, "nodes", 'an object with fields "id"'),
        ({"version": "1.0", "nodes": [{"id": "", "type": "GainNode"}]}, "nodes[0].id", 'the string ""'),
        ({"version": "1.0", "nodes": [{"id": "a", "type": "GainNode", "params": {"gain_db": 61}}]}, "nodes[0].params.gain_db", "61"),
        ({"version": "1.0", "nodes": [{"id": "a", "type": "GainNode", "params": {"gain_db": "6"}}]}, "nodes[0].params.gain_db", 'the string "6" (write numbers without quotes)'),
        ({"version": "1.0", "nodes": [{"id": "a", "type": "FormatConverterNode"}]}, "nodes[0].params.target_format", "nothing"),
        ({"version": "1.0", "nodes": [{"id": "a", "type": "PassthroughNode", "params": {"x": 1}}]}, "nodes[0].params.x", 'the unknown param "x"'),
        ({"version": "1.0", "nodes": [{"id": "a", "type": "MixNode", "colour": 1}]}, "nodes[0].colour", 'the unknown field "colour"'),
        ({"version": "1.0", "nodes": [{"id": "a", "type": "MixNode"}], "config": {"enable_metrics": "yes"}}, "config.enable_metrics", 'the string "yes"'),
    ],
)
def test_single_problems(manifest, path, found):
    got, _ = problems(manifest)
    assert path in got, got
    assert got[path].found == found


def nodes(*ids, t="PassthroughNode"):
    return [{"id": i, "type": t} for i in ids]


def test_edge_problems():
    got, _ = problems(
        {
            "version": "1.0",
            "nodes": nodes("a", "b") + [{"id": "v", "type": "VADNode"}, {"id": "g", "type": "GainNode"}],
            "edges": [
                {"from": "a", "to": "bb"},
                {"from": "v", "to": "g", "output_key": "segmentz"},
                {"from": "a", "to": "g", "input_key": "left"},
                {"from": "g", "to": "b", "output_key": "audio", "weight": 2},
            ],
        }
    )
    assert got["edges[0].to"] == ("edges[0].to", 'the id of a node (did you mean "b"?)', '"bb", which is no node\'s id')
    assert got["edges[1].output_key"].expected == 'an output of VADNode "v": audio, segments, frames (did you mean "segments"?)'
    assert got["edges[2].input_key"] == ("edges[2].input_key", 'no input_key, or "in" (GainNode "g" has a single input)', '"left"')
    assert got["edges[3].output_key"].expected == 'no output_key (GainNode "g" has one whole output)'
    assert got["edges[3].weight"].found == 'the unknown field "weight"'


def test_two_edges_into_a_one_input_node():
    got, _ = problems({"version": "1.0", "nodes": nodes("a", "b", "c"), "edges": [{"from": "a", "to": "c"}, {"from": "b", "to": "c"}]})
    assert list(got) == ["edges[1].to"]
    assert got["edges[1].to"].expected == (
        'a node with a free input (PassthroughNode "c" takes one input, already fed by edges[0]; combine inputs with a MixNode)'
    )
    assert got["edges[1].to"].found == 'a second edge into "c"'


def test_two_edges_into_one_port():
    got, _ = problems(
        {
            "version": "1.0",
            "nodes": nodes("a", "b") + [{"id": "m", "type": "MixNode"}],
            "edges": [{"from": "a", "to": "m", "input_key": "x"}, {"from": "b", "to": "m", "input_key": "x"}],
        }
    )
    assert list(got) == ["edges[1].input_key"]
    assert got["edges[1].input_key"] == ("edges[1].input_key", "one edge per input port (edges[0] already feeds it)",
                                         'a second edge into port "x" of "m"')


def test_named_ports_of_custom_nodes_are_checked():
    class Two(Node):
        inputs = ["left", "right"]

    p = Pipeline(runtime_hint="python")
    p.add(PassthroughNode(node_id="a"))
    p.add(Two(node_id="t"))
    p.connect("a", "t", input_key="middle")
    with pytest.raises(ManifestError) as e:
        p.run_sync((tone(), 16000))
    (problem,) = e.value.problems
    assert problem == ("edges[0].input_key", 'an input port of Two "t": left, right', '"middle"')


def test_cycles_are_named():
    got, err = problems(
        {
            "version": "1.0",
            "nodes": nodes("src", "a", "b", "c", "d") + [{"id": "m", "type": "MixNode"}],
            "edges": [
                {"from": "src", "to": "m"},
                {"from": "m", "to": "a"},
                {"from": "a", "to": "b"},
                {"from": "b", "to": "m"},
                {"from": "c", "to": "d"},
                {"from": "d", "to": "c"},
            ],
        }
    )
    cycles = [(p.path, p.found) for p in err.problems]
    assert cycles == [("edges[1]", "the cycle a -> b -> m -> a"), ("edges[5]", "the cycle c -> d -> c")]
    assert err.problems[0].expected == "a graph without cycles (data must flow from the inputs to the outputs)"


def test_self_loop_is_a_cycle():
    _, err = problems({"version": "1.0", "nodes": [{"id": "m", "type": "MixNode"}], "edges": [{"from": "m", "to": "m"}]})
    assert [(p.path, p.found) for p in err.problems] == [("edges[0]", "the cycle m -> m")]


def test_yaml_and_json_syntax_errors_are_manifest_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: '1.0'\nnodes: [\n")
    with pytest.raises(ManifestError) as e:
        Pipeline.from_yaml(bad)
    assert e.value.problems[0].expected == "valid YAML" and e.value.problems[0].path.startswith("line ")
    with pytest.raises(ManifestError) as e:
        Pipeline.from_json('{"version": "1.0", "nodes": [}')
    assert e.value.problems[0] == ("line 1, column 30", "valid JSON", "a syntax error: expected value")


def test_manifest_error_is_a_value_error_and_pickles():
    import pickle

    _, err = problems({"version": "1.0", "nodes": []})
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert again.problems == err.problems and str(again) == str(err)


def test_non_json_params_are_rejected():
    class Model(Node):
        def process(self, x):
            return x

    with pytest.raises(ManifestError) as e:
        Pipeline([Model(node_id="m", model=object())], runtime_hint="python")
    assert e.value.problems[0].path == "nodes[0].params.model"
    assert e.value.problems[0].expected == "a JSON value"


@pytest.mark.requires_native
def test_with_the_native_engine_only_the_engine_validates(monkeypatch):
    # One validation, in Rust: the pure validator is not called for a pipeline the engine runs,
    # be it from a manifest, from nodes or with a custom node, valid or not.
    from remotemedia import pipeline as pipeline_module

    def pure_validator(*args, **kwargs):
        raise AssertionError("the pure-Python validator ran for a native pipeline")

    monkeypatch.setattr(pipeline_module, "validate", pure_validator)

    class Doubler(Node):
        def process(self, audio):
            return audio.samples * 2

    x = tone()
    out = Pipeline([GainNode(6.0, node_id="g"), Doubler(node_id="d")], runtime_hint="rust").run_sync((x, 16000))["d"]
    np.testing.assert_allclose(out, x * 10 ** (6 / 20) * 2, rtol=1e-6)
    assert Pipeline.from_yaml(YAML, runtime_hint="rust").run_sync((x, 16000))
    with pytest.raises(ManifestError) as e:
        Pipeline.from_dict({"version": "1.0", "nodes": [{"id": "r", "type": "AudioResampleNode", "params": {"output_rate": 5}}]},
                           runtime_hint="rust")
    assert [tuple(p) for p in e.value.problems] == [("nodes[0].params.output_rate", "an integer from 8000 to 192000", "5")]


def test_a_python_value_json_cannot_hold_is_named_on_both_runtimes(runtime):
    manifest = {"version": "1.0", "nodes": [{"id": "g", "type": "GainNode", "params": {"gain_db": np.array([1.0])}}]}
    with pytest.raises(ManifestError) as e:
        Pipeline.from_dict(manifest, runtime_hint=runtime)
    assert [p.path for p in e.value.problems] == ["nodes[0].params.gain_db"]
