"""A manifest's problems are the same on both runtimes.

Each bad manifest below goes through the native validator (``remotemedia._native.validate_manifest``,
the Rust code in ``src/manifest/``) and through the pure-Python one (``remotemedia._pure``); the two
lists of ``(path, expected, found)`` must be identical, order included. Every case must also be
refused by ``Pipeline.from_dict`` (or ``from_json``/``from_yaml`` for texts) on both runtimes, and a
good pipeline built right after on the same runtime must still run.

The cases cover every problem class of ``docs/manifest.md``. A few also pin the exact wording the
docs show, so that the two validators cannot drift apart together.
"""

import copy
import json
from typing import Any, Dict, List, NamedTuple, Optional

import numpy as np
import pytest

from remotemedia import ManifestError, Node, Pipeline, _runtime, register_node, unregister_node
from remotemedia._pure.schema import NodeTypeSpec, builtin_types
from remotemedia._pure.tree import parse_str
from remotemedia._pure.validate import MAX_PROBLEMS, validate
from remotemedia.pipeline import _types

from conftest import tone

CAPTION = "ParityCaptionNode"


class Caption(Node):
    """A custom node with two named input ports."""

    type_name = CAPTION
    inputs = ["audio", "text"]

    def process(self, audio, text):
        return {"audio": audio, "text": text}


@pytest.fixture(autouse=True, scope="module")
def caption_registered():
    register_node(Caption)
    yield
    unregister_node(CAPTION)


class Case(NamedTuple):
    name: str
    manifest: Any = None
    text: Optional[str] = None

    def tree(self) -> Any:
        return parse_str(self.text) if self.text is not None else self.manifest

    def json_text(self) -> str:
        return self.text if self.text is not None else json.dumps(self.manifest, ensure_ascii=False)


def m(nodes: Any = None, edges: Any = None, config: Any = None, **top: Any) -> Dict[str, Any]:
    """A manifest with version 1.0 and the given sections (absent when None)."""
    out: Dict[str, Any] = {"version": "1.0"}
    out.update(top)
    if nodes is not None:
        out["nodes"] = nodes
    if edges is not None:
        out["edges"] = edges
    if config is not None:
        out["config"] = config
    return out


def n(id: Any, type: str = "PassthroughNode", **fields: Any) -> Dict[str, Any]:
    return {"id": id, "type": type, **fields}


def e(src: Any, dst: Any, **fields: Any) -> Dict[str, Any]:
    return {"from": src, "to": dst, **fields}


def p(*ids: str) -> List[Dict[str, Any]]:
    return [n(i) for i in ids]


GAIN = n("g", "GainNode")
OK_NODES = [GAIN]

CASES = [
    # ---- top level, version, nodes list ----
    Case("top_is_a_list", [{"id": "a"}]),
    Case("top_is_null_yaml", text="null\n"),
    Case("version_missing", {"nodes": OK_NODES}),
    Case("version_2", m(OK_NODES, version="2.0")),
    Case("version_number_2", m(OK_NODES, version=2)),
    Case("version_null_and_name_number", m(OK_NODES, version=None, name=3)),
    Case("metadata_not_object", m(OK_NODES, metadata=[1, 2])),
    Case("yaml_version_1_0_unquoted_accepted", text="version: 1.0\nnodes:\n  - {id: g, type: GainNode, params: {gain_db: 61}}\n"),
    Case("nodes_missing", m()),
    Case("nodes_empty", m([])),
    Case("nodes_object_many_fields", m({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6})),
    Case("nodes_null", {"version": "1.0", "nodes": None}),
    Case("node_not_object", m([3, "x", None, [1]])),
    # ---- unknown fields at each level ----
    Case("unknown_top_fields", m(OK_NODES, edgse=[], zzz=1, **{"odd key": 2})),
    Case("unknown_node_fields", m([n("a", parmas={}, colour="red")])),
    Case("unknown_edge_fields", m(p("a", "b"), [e("a", "b", weight=2, too="b")])),
    Case("unknown_config_fields", m(OK_NODES, config={"worker": 2, "retries": 1, "x" * 70: 1})),
    # ---- ids ----
    Case("id_missing", m([{"type": "GainNode"}])),
    Case("id_empty_and_blank", m([n(""), n("  \t")])),
    Case("id_not_string", m([n(5), n(None), n(["a"])])),
    Case("id_duplicate", m([n("r"), n("r"), n("s"), n("r")])),
    # ---- types ----
    Case("type_close", m([n("a", "AudioResampleNod"), n("b", "AudioResampler"), n("c", "Resample"), n("d", "gainnode")])),
    Case("suggestion_thresholds", m(
        [n("abcdef"), n("t1", "Res"), n("t2", "Resampl"), n("t3", "AudioResampleNodeXYZ"), n("t4", "VAD"), n("t5", "vda"),
         n("g", "GainNode", params={"gainxx": 1, "gai_db": 2})],
        [e("abcxyz", "abcdef"), e("abcdef", "abcdeff")],
    )),
    Case("type_unknown_no_guess", m([n("a", "Transcriber"), n("b", "X")])),
    Case("type_missing_or_not_string", m([{"id": "a"}, n("b", 5), n("c", None)])),
    # ---- params ----
    Case("params_not_object", m([n("a", params=[1]), n("b", params="x")])),
    Case("params_unknown_with_guess", m([n("r", "AudioResampleNode", params={"output_rate": 16000, "rate": 1, "qualty": "high"})])),
    Case("params_unknown_no_guess", m([n("g", "GainNode", params={"zzzzzzzz": 1})])),
    Case("params_on_a_type_without_params", m([n("a", params={"x": 1, "sample rate": 2})])),
    Case("params_missing_required", m([n("r", "AudioResampleNode"), n("f", "FormatConverterNode", params={"target_format": None})])),
    Case("params_ill_typed", m([
        n("r", "AudioResampleNode", params={"output_rate": "16000", "input_rate": " 4.8e4 ", "quality": 3}),
        n("g", "GainNode", params={"gain_db": "true"}),
        n("v", "VADNode", params={"frame_duration_ms": "30", "hangover_ms": True, "threshold": [1]}),
    ])),
    Case("params_out_of_range", m([
        n("r", "AudioResampleNode", params={"output_rate": 5, "input_rate": 18446744073709551615}),
        n("g", "GainNode", params={"gain_db": 100}),
        n("h", "GainNode", params={"gain_db": -1e21}),
        n("v", "VADNode", params={"hangover_ms": 2001, "threshold": -0.00001}),
        n("w", "VADNode", params={"hangover_ms": -9223372036854775809}),
    ])),
    Case("params_not_in_choices", m([
        n("r", "AudioResampleNode", params={"output_rate": 16000, "quality": "High"}),
        n("s", "AudioResampleNode", params={"output_rate": 16000, "quality": "best"}),
        n("f", "FormatConverterNode", params={"target_format": "f64"}),
        n("v", "VADNode", params={"frame_duration_ms": 25}),
        n("w", "VADNode", params={"frame_duration_ms": 30.5}),
    ])),
    Case("params_non_integer", m([
        n("r", "AudioResampleNode", params={"output_rate": 16000.5}),
        n("v", "VADNode", params={"hangover_ms": 2.5}),
    ])),
    Case("params_numbers_as_serde_prints_them", m([
        n("a", "FormatConverterNode", params={"target_format": 1e21}),
        n("b", "FormatConverterNode", params={"target_format": 1e-7}),
        n("c", "FormatConverterNode", params={"target_format": 0.00001234}),
        n("d", "FormatConverterNode", params={"target_format": 16000.0}),
        n("e", "FormatConverterNode", params={"target_format": 2**64}),
        n("f", "FormatConverterNode", params={"target_format": {"k": None}}),
    ])),
    Case("params_non_finite_yaml", text=(
        'version: "1.0"\nnodes:\n  - id: g\n    type: GainNode\n    params: {gain_db: .nan}\n')),
    Case("params_non_finite_yaml_inf", text=(
        'version: "1.0"\nnodes:\n  - id: g\n    type: GainNode\n    params:\n      gain_db: -.inf\n')),
    Case("params_non_finite_json_nan", text='{"version": "1.0", "nodes": [{"id": "g", "type": "GainNode", "params": {"gain_db": NaN}}]}'),
    Case("params_non_finite_json_overflow", text='{"version": "1.0", "nodes": [{"id": "g", "type": "GainNode",\n "params": {"gain_db": 1e400}}]}'),
    Case("odd_strings_quoted", m([n("a" * 70, "GainNode", params={"gain_db": "é\n\"\u0001" + "x" * 80})])),
    # ---- runtime_hint ----
    Case("runtime_hint_bad", m([n("a", runtime_hint="gpu"), n("b", runtime_hint=3), n("c", runtime_hint=None)])),
    # ---- edges: endpoints and keys ----
    Case("edges_not_a_list", m(p("a"), {"from": "a"})),
    Case("edge_not_object", m(p("a"), ["a->b", 3])),
    Case("edge_endpoints_missing", m(p("a"), [{}, {"from": "a"}, {"to": "a", "from": None}])),
    Case("edge_endpoints_unknown", m(p("resample_16k", "vad"), [e("resample16k", "vad"), e("vad", "zzzzzzzzz"), e(1, [2])])),
    Case("edge_output_key_bad", m(
        [n("v", "VADNode"), n("a"), n("b"), n("c")],
        [e("v", "a", output_key="segment"), e("a", "b", output_key="x"), e("b", "c", output_key=""), e("v", "c", output_key=3)],
    )),
    Case("edge_input_key_bad", m(
        p("a", "b", "c") + [n("cap", CAPTION)],
        [e("a", "b", input_key="audio"), e("a", "c", input_key=""), e("a", "cap", input_key="txt"), e("b", "cap")],
    )),
    Case("edge_repeated", m(p("a", "b"), [e("a", "b"), e("a", "b")])),
    Case("two_edges_into_a_one_input_node", m(p("a", "b", "c"), [e("a", "c"), e("b", "c")])),
    Case("two_edges_into_one_mix_port", m(
        p("a", "b") + [n("mix", "MixNode")],
        [e("a", "mix"), e("a", "mix", output_key=None, input_key="a"), e("b", "mix", input_key="x"), e("a", "mix", input_key="x"),
         e("a", "mix", input_key="b"), e("b", "mix")],
    )),
    Case("two_edges_into_one_named_port", m(
        p("a", "b") + [n("cap", CAPTION)],
        [e("a", "cap", input_key="audio"), e("b", "cap", input_key="audio"), e("b", "cap", input_key="text")],
    )),
    Case("named_port_unfed", m(p("a") + [n("cap", CAPTION)], [e("a", "cap", input_key="audio")])),
    Case("named_ports_none_fed", m(p("a") + [n("cap", CAPTION)])),
    # ---- cycles ----
    Case("cycle_two_nodes", m(p("a", "b"), [e("a", "b"), e("b", "a")])),
    Case("cycle_self_loop", m(p("a") + [n("m", "MixNode")], [e("a", "m"), e("m", "m")])),
    Case("cycles_two_groups_through_mix", m(
        p("src", "a", "b", "c", "d") + [n("m", "MixNode")],
        [e("src", "m"), e("m", "a"), e("a", "b"), e("b", "m"), e("c", "d"), e("d", "c")],
    )),
    Case("cycle_shortest_is_named", m(
        [n("m", "MixNode")] + p("x", "y", "z"),
        [e("m", "x"), e("x", "y"), e("y", "z"), e("z", "m", input_key="z"), e("x", "m", input_key="x")],
    )),
    # ---- config ----
    Case("config_not_object", m(OK_NODES, config=[1])),
    Case("config_each_field_wrong", m(OK_NODES, config={
        "enable_metrics": "yes", "retry_policy": "expo", "max_retries": 101, "workers": 4.5,
        "retry_base_delay_ms": -1, "retry_max_delay_ms": "100", "retry_jitter": 1,
        "circuit_breaker_threshold": 1000001, "circuit_breaker_cooldown_ms": 3600001,
    })),
    Case("config_more_wrong", m(OK_NODES, config={"enable_metrics": "true", "retry_policy": 3, "workers": 0, "max_retries": None})),
    Case("config_max_delay_below_base", m(OK_NODES, config={"retry_base_delay_ms": 500, "retry_max_delay_ms": 100})),
    Case("config_base_above_default_max", m(OK_NODES, config={"retry_base_delay_ms": 20000, "workers": 2.0})),
    # ---- a node's own reliability settings ----
    Case("node_reliability_not_object", m([n("a", reliability=[1]), n("b", reliability="fixed"), n("c", reliability=None)])),
    Case("node_reliability_each_field_wrong", m([n("a", reliability={
        "retry_polcy": "fixed", "retry_policy": "expo", "max_retries": 101, "retry_base_delay_ms": -1,
        "retry_max_delay_ms": "100", "retry_jitter": 1, "circuit_breaker_threshold": 1.5,
        "circuit_breaker_cooldown_ms": 3600001, "workers": 2,
    })])),
    Case("node_reliability_max_below_base", m(
        [n("a", reliability={"retry_max_delay_ms": 100}), n("b", reliability={"retry_base_delay_ms": 600000}),
         n("c", reliability={"retry_base_delay_ms": 50, "retry_max_delay_ms": 40})],
        config={"retry_base_delay_ms": 200, "retry_max_delay_ms": 1000},
    )),
    # ---- syntax: repeated keys ----
    Case("json_duplicate_key", text='{"version": "1.0",\n "nodes": [{"id": "a", "type": "GainNode", "id": "b"}]}'),
    Case("yaml_duplicate_key", text='version: "1.0"\nnodes:\n  - id: a\n    type: GainNode\nnodes: []\n'),
    # ---- several at once, and the cap ----
    Case("several_problems_at_once", {
        "version": "2.0",
        "nodez": [],
        "nodes": [
            n("r", "AudioResampleNode", params={"output_rate": 5, "qualty": "high"}),
            n("v", "VADNode", params={"frame_duration_ms": 25, "hangover_ms": 2.5}),
            n("g", "GainNod"),
            n("r", "GainNode", params={"gain_db": "-3"}, runtime_hint="gpu"),
            {"type": "FormatConverterNode", "params": {"target_format": "f64"}},
        ],
        "edges": [e("r", "v"), e("v", "gg"), e("v", "r", output_key="segmentz")],
        "config": {"workers": 0, "retry_policy": "sometimes", "max_retries": 101, "colour": 1},
    }),
    Case("cap_at_100_problems", m([n(f"g{i}", "GainNode", params={"gain_db": 1000}) for i in range(120)])),
    Case("cap_with_one_more", m([n(f"g{i}", "GainNode", params={"gain_db": 1000}) for i in range(101)])),
    Case("yaml_empty_edges_and_config_are_absent", text="version: '1.0'\nnodes:\n  - {id: a, type: MixNode, params: {x: 1}}\nedges:\nconfig:\n"),
    Case("yaml_scalars_as_yaml_1_2_reads_them", text=(
        "version: '1.0'\nnodes:\n"
        + "".join(f"  - {{id: f{i}, type: FormatConverterNode, params: {{target_format: {v}}}}}\n"
                  for i, v in enumerate(["yes", "off", "010", "0o10", "0x1F", "1_000", "1e5", "2001-01-01", "=", "~", "-0",
                                         ".5", "+.5", "1e400", "18446744073709551616", "inf", "'3'", "!!str 4"]))
    )),
    Case("yaml_keys_as_text", text="version: '1.0'\nnodes:\n  - {id: a, type: PassthroughNode, params: {1: a, true: b, 1.50: c, 0x10: d, yes: e}}\n"),
    Case("yaml_key_not_scalar", text="version: '1.0'\nnodes:\n  - {id: a, type: PassthroughNode, params: {[1]: a}}\n"),
    # ---- the outputs section, and the cross-param checks of ChannelMixNode and SegmentNode ----
    Case("outputs_not_a_list", m(OK_NODES, outputs="g")),
    Case("outputs_empty", m(OK_NODES, outputs=[])),
    Case("outputs_unknown_number_and_repeated", m(p("a", "b"), [e("a", "b")], outputs=["b", "bb", 3, "b", "a"])),
    Case("outputs_null_is_absent", m([n("g", "GainNode", params={"gain_db": 61})], outputs=None)),
    Case("channel_mix_channel_and_a_ragged_matrix", m([n("c", "ChannelMixNode", params={"channel": 1, "matrix": [[1, 0], [0]]})])),
    Case("channel_mix_rows_and_channels_disagree", m([n("c", "ChannelMixNode", params={"channels": 2, "matrix": [[1, 1]]})])),
    Case("channel_mix_matrix_of_other_things", m([n(f"c{i}", "ChannelMixNode", params={"matrix": x})
                                                  for i, x in enumerate(["x", [], [[1, "a"]], [[True]], [[]], [1, 2]])])),
    Case("segment_max_below_min", m([n("s", "SegmentNode", params={"min_duration_s": 2, "max_duration_s": 1}),
                                     n("t", "SegmentNode", params={"min_duration_s": 0.5, "max_duration_s": 0.25})])),
    Case("segment_bad_param_skips_the_cross_check", m([n("s", "SegmentNode", params={"min_duration_s": -1, "max_duration_s": 0.1})])),
    Case("yaml_several_problems", text=(
        "version: '1.0'\nname: [1]\nnodes:\n  - id: r\n    type: AudioResampleNode\n    params: {output_rate: 16000.0, quality: High}\n"
        "  - id: v\n    type: VADNode\nedges:\n  - {from: r, to: v}\n  - {from: v, to: r, output_key: segments}\nconfig:\n  workers: '4'\n"
    )),
]

IDS = [c.name for c in CASES]


def test_enough_cases():
    assert len(CASES) >= 40 and len(set(IDS)) == len(IDS)


def _uses_caption(tree: Any) -> List[str]:
    """Ids of the nodes of the custom type (the native side is told about those)."""
    nodes = tree.get("nodes") if isinstance(tree, dict) else None
    if not isinstance(nodes, list):
        return []
    return [x["id"] for x in nodes if isinstance(x, dict) and x.get("type") == CAPTION and isinstance(x.get("id"), str)]


def native_problems(case: Case) -> List[tuple]:
    native = _runtime.native_module()
    ids = _uses_caption(case.manifest) if case.text is None else []
    python_nodes = {i: Caption(node_id=i) for i in ids}
    with pytest.raises(ManifestError) as err:
        native.validate_manifest(case.json_text(), python_nodes)
    return [tuple(x) for x in err.value.problems]


def python_problems(case: Case, types: Optional[Dict[str, NodeTypeSpec]] = None) -> List[tuple]:
    with pytest.raises(ManifestError) as err:
        tree = case.tree()
        if types is None:
            # What the native side knows: the built-ins, plus the custom type where a node uses it.
            types = dict(builtin_types())
            if _uses_caption(tree):
                types[CAPTION] = NodeTypeSpec.from_dict(Caption._rm_type_schema())
        validate(tree, types)
    return [tuple(x) for x in err.value.problems]


@pytest.mark.requires_native
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_same_problems_on_both_validators(case):
    expected = native_problems(case)
    assert expected, "a bad manifest must have problems"
    assert python_problems(case) == expected


def good_pipeline_runs(rt: str) -> None:
    """A pipeline built after a refused one works: 6 dB of gain on a tone."""
    good = Pipeline.from_dict(m([n("g", "GainNode", params={"gain_db": 6.0})]), runtime_hint=rt)
    x = tone()
    out = good.run_sync((x, 16000))["g"]
    assert out.sample_rate == 16000
    np.testing.assert_allclose(out.samples, x * 10 ** (6 / 20), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_pipeline_refuses_then_runs_a_good_one(case, runtime):
    with pytest.raises(ManifestError) as err:
        if case.text is None:
            Pipeline.from_dict(copy.deepcopy(case.manifest), runtime_hint=runtime)
        elif case.text.lstrip().startswith("{"):
            Pipeline.from_json(case.text, runtime_hint=runtime)
        else:
            Pipeline.from_yaml(case.text, runtime_hint=runtime)
    # The pipeline reports what the validator does with the node types a pipeline knows (every
    # registered type: the list of known types may differ from the native call's above).
    assert [tuple(x) for x in err.value.problems] == python_problems(case, _types([]))
    good_pipeline_runs(runtime)


# ---- the wording itself, as docs/manifest.md shows it ----


def problems_of(name: str) -> List[tuple]:
    case = CASES[IDS.index(name)]
    return python_problems(case)


def test_pinned_wording():
    assert problems_of("version_2") == [("version", 'a supported manifest version: "1.0"', 'the string "2.0"')]
    assert problems_of("type_close")[0] == ("nodes[0].type", 'a known node type (did you mean "AudioResampleNode"?)', '"AudioResampleNod"')
    assert problems_of("type_unknown_no_guess")[0] == (
        "nodes[0].type",
        # Every built-in type, sorted (the list grows with each new node; the wording does not).
        "a known node type: " + ", ".join(sorted(builtin_types())),
        '"Transcriber"',
    )
    assert problems_of("params_ill_typed")[0] == (
        "nodes[0].params.input_rate", "an integer from 8000 to 192000", 'the string " 4.8e4 " (write numbers without quotes)')
    assert problems_of("params_ill_typed")[1] == (
        "nodes[0].params.output_rate", "an integer from 8000 to 192000", 'the string "16000" (write numbers without quotes)')
    assert problems_of("cycle_two_nodes") == [
        ("edges[1]", "a graph without cycles (data must flow from the inputs to the outputs)", "the cycle a -> b -> a")]
    assert problems_of("cycle_self_loop") == [
        ("edges[1]", "a graph without cycles (data must flow from the inputs to the outputs)", "the cycle m -> m")]
    assert problems_of("named_port_unfed") == [
        ("nodes[1]", f"an edge into every input port of {CAPTION}: audio, text", 'no edge into "text"')]
    assert problems_of("params_non_finite_yaml") == [(
        "line 5, column 23", "valid YAML",
        "a syntax error: nodes[0].params.gain_db: NaN is not a finite number; manifests only hold finite numbers")]
    got = {x[0]: x[1] for x in problems_of("suggestion_thresholds")}
    assert "did you mean" not in got["nodes[1].type"]  # "Res": too short to count as a part of a name
    assert got["nodes[2].type"] == 'a known node type (did you mean "AudioResampleNode"?)'
    assert got["nodes[3].type"] == 'a known node type (did you mean "AudioResampleNode"?)'
    assert got["nodes[4].type"] == 'a known node type (did you mean "VADNode"?)'
    assert "did you mean" not in got["nodes[5].type"]  # "vda": 2 edits from "vad", 1 allowed at 3 letters
    assert got["nodes[6].params.gai_db"] == 'a param of GainNode: gain_db (did you mean "gain_db"?)'
    assert got["nodes[6].params.gainxx"] == "a param of GainNode: gain_db"  # 3 edits, 2 allowed at 6 letters
    assert got["edges[0].from"] == "the id of a node: abcdef, t1, t2, t3, t4, t5, g"
    assert got["edges[1].to"] == 'the id of a node (did you mean "abcdef"?)'
    assert problems_of("two_edges_into_one_mix_port")[-1] == (
        "edges[5]", "one edge per input port (edges[4] already feeds it; give each edge its own input_key)",
        'a second edge into port "b" of "mix"')
    assert problems_of("config_max_delay_below_base") == [
        ("config.retry_max_delay_ms", "at least retry_base_delay_ms (500)", "100")]
    numbers = [x[2] for x in problems_of("params_numbers_as_serde_prints_them")]
    assert numbers == ["1e+21", "1e-7", "0.00001234", "16000.0", "1.8446744073709552e+19", 'an object with fields "k"']


def test_cap_lists_100_then_counts_the_rest():
    got = problems_of("cap_at_100_problems")
    assert len(got) == MAX_PROBLEMS + 1
    assert got[:MAX_PROBLEMS] == [(f"nodes[{i}].params.gain_db", "a number from -120 to 60", "1000") for i in range(MAX_PROBLEMS)]
    assert got[-1] == ("manifest", "at most 100 problems listed", "20 more problems not listed")
    assert problems_of("cap_with_one_more")[-1] == ("manifest", "at most 100 problems listed", "1 more problem not listed")


# ---- random manifests: the table above cannot think of everything ----

_SCALARS = [None, True, False, 0, 1, -1, 30, 16000, 16000.0, 16000.5, 2.5, 1e21, 1e-7, 0.00001, 7e-6, -0.0, 2**63, 2**64,
            -(2**63) - 1, 192001, 60, 60.0001, -120, "", " ", "16000", "true", "high", "High", "f32", "x" * 70, "auto",
            "gpu", "a", "b", "audio", "text", "segments", "in", "é\n"]
_TYPES = ["AudioResampleNode", "FormatConverterNode", "GainNode", "MixNode", "PassthroughNode", "VADNode", CAPTION,
          "GainNod", "mixnode", "Resample", "X"]
_PARAMS = ["output_rate", "input_rate", "quality", "target_format", "gain_db", "frame_duration_ms", "threshold",
           "hangover_ms", "rate", "qualty", "x", "sample rate", ""]
_IDS = ["a", "b", "c", "m", "cap", "", "aa"]
_CONFIG = ["enable_metrics", "retry_policy", "max_retries", "workers", "retry_base_delay_ms", "retry_max_delay_ms",
           "retry_jitter", "circuit_breaker_threshold", "circuit_breaker_cooldown_ms", "worker"]


def _random_manifest(r) -> Dict[str, Any]:
    def value(depth=0):
        x = r.random()
        if depth < 2 and x < 0.1:
            return [value(depth + 1) for _ in range(r.randint(0, 3))]
        if depth < 2 and x < 0.2:
            return {r.choice(_PARAMS): value(depth + 1) for _ in range(r.randint(0, 6))}
        return r.choice(_SCALARS)

    def maybe(p, make, other=value):
        return make() if r.random() < p else other()

    def node():
        d: Dict[str, Any] = {}
        if r.random() < 0.95:
            d["id"] = maybe(0.9, lambda: r.choice(_IDS))
        if r.random() < 0.95:
            d["type"] = maybe(0.9, lambda: r.choice(_TYPES))
        if r.random() < 0.6:
            d["params"] = maybe(0.9, lambda: {r.choice(_PARAMS): r.choice(_SCALARS) for _ in range(r.randint(0, 4))})
        if r.random() < 0.1:
            d["runtime_hint"] = r.choice(["auto", "rust", "python", "gpu", None, 1])
        if r.random() < 0.05:
            d["parmas"] = 1
        return d

    def edge():
        d: Dict[str, Any] = {}
        if r.random() < 0.95:
            d["from"] = maybe(0.9, lambda: r.choice(_IDS + ["zz"]))
        if r.random() < 0.95:
            d["to"] = maybe(0.9, lambda: r.choice(_IDS + ["zz"]))
        if r.random() < 0.3:
            d["output_key"] = r.choice(["audio", "segments", "segment", "x", "", None, 3])
        if r.random() < 0.4:
            d["input_key"] = r.choice(["audio", "text", "txt", "in", "a", "b", "x", "", None, 3])
        return d

    out: Dict[str, Any] = {}
    if r.random() < 0.95:
        out["version"] = maybe(0.85, lambda: "1.0", lambda: r.choice([1.0, "2.0", 2, None]))
    if r.random() < 0.95:
        out["nodes"] = maybe(0.95, lambda: [maybe(0.95, node) for _ in range(r.randint(0, 6))])
    if r.random() < 0.8:
        out["edges"] = maybe(0.95, lambda: [maybe(0.95, edge) for _ in range(r.randint(0, 8))])
    if r.random() < 0.3:
        out["config"] = {r.choice(_CONFIG): r.choice([0, 1, 4.0, 4.5, 500, 100, 20000, "expo", "fixed", True, 10**7, None])
                         for _ in range(r.randint(0, 4))}
    if r.random() < 0.05:
        out["name"] = value()
    return out


@pytest.mark.requires_native
def test_same_problems_on_random_manifests():
    import random

    r = random.Random(20261126)
    compared = 0
    for _ in range(600):
        manifest = _random_manifest(r)
        nodes = manifest.get("nodes") if isinstance(manifest.get("nodes"), list) else []
        # The native side gives a Python node's type to the FIRST node carrying that node's id:
        # send instances only for ids that a custom node carries first, as a Pipeline does.
        first: Dict[str, Any] = {}
        for x in nodes:
            if isinstance(x, dict) and isinstance(x.get("id"), str) and isinstance(x.get("type"), str):
                first.setdefault(x["id"], x["type"])
        caption_ids = [i for i, t in first.items() if t == CAPTION]
        text = json.dumps(manifest, ensure_ascii=False)
        try:
            _runtime.native_module().validate_manifest(text, {i: Caption(node_id=i) for i in caption_ids})
            native: List[tuple] = []
        except ManifestError as err:
            native = [tuple(x) for x in err.problems]
        types = dict(builtin_types())
        if caption_ids:
            types[CAPTION] = NodeTypeSpec.from_dict(Caption._rm_type_schema())
        try:
            validate(json.loads(text), types)
            python: List[tuple] = []
        except ManifestError as err:
            python = [tuple(x) for x in err.problems]
        assert python == native, text
        compared += bool(native)
    assert compared > 500  # nearly all random manifests are bad ones
