"""Graph semantics: fan-out, diamonds, named ports, output_key projection, topological order."""

import numpy as np
import pytest

from remotemedia import Audio, GainNode, MixNode, Node, NodeError, PassthroughNode, Pipeline

from conftest import tone


class Split(Node):
    """Returns named outputs: the audio, its negation, and its peak as a JSON number."""

    def process(self, audio):
        return {"same": audio, "negated": Audio(-audio.samples, audio.sample_rate), "peak": float(np.max(np.abs(audio.samples)))}


class Subtract(Node):
    inputs = ["left", "right"]

    def process(self, left, right):
        return Audio(left.samples - right.samples, left.sample_rate)


def db(x):
    return np.float32(10 ** (x / 20))


def test_fan_out_gives_every_branch_the_same_input(runtime):
    p = Pipeline(
        [PassthroughNode(node_id="src"), GainNode(6.0, node_id="loud"), GainNode(-6.0, node_id="quiet")],
        edges=[("src", "loud"), ("src", "quiet")],
        runtime_hint=runtime,
    )
    x = tone()
    out = p.run_sync((x, 16000))
    assert set(out) == {"loud", "quiet"}  # the sinks
    np.testing.assert_array_equal(out["loud"].samples, x * db(6.0))
    np.testing.assert_array_equal(out["quiet"].samples, x * db(-6.0))


def test_diamond_mixes_both_branches(runtime):
    p = Pipeline(
        [PassthroughNode(node_id="src"), GainNode(6.0, node_id="g1"), GainNode(-6.0, node_id="g2"), MixNode(node_id="mix")],
        edges=[("src", "g1"), ("src", "g2"), ("g1", "mix"), ("g2", "mix")],
        runtime_hint=runtime,
    )
    x = tone()
    out = p.run_sync((x, 16000))
    assert list(out) == ["mix"]
    np.testing.assert_array_equal(out["mix"].samples, x * db(6.0) + x * db(-6.0))


def test_named_ports_receive_the_right_edges(runtime):
    p = Pipeline(runtime_hint=runtime)
    src, loud, sub = PassthroughNode(node_id="src"), GainNode(6.0, node_id="loud"), Subtract(node_id="sub")
    p.connect(src, loud).connect(loud, sub, input_key="left").connect(src, sub, input_key="right")
    x = tone()
    out = p.run_sync((x, 16000))["sub"]
    np.testing.assert_array_equal(out.samples, x * db(6.0) - x)


def test_output_key_projects_one_output_of_a_map(runtime):
    p = Pipeline(
        [Split(node_id="split"), PassthroughNode(node_id="neg"), PassthroughNode(node_id="peak"), MixNode(node_id="mix")],
        edges=[
            {"from": "split", "to": "neg", "output_key": "negated"},
            {"from": "split", "to": "peak", "output_key": "peak"},
            {"from": "split", "to": "mix", "output_key": "same", "input_key": "x"},
            {"from": "split", "to": "mix", "output_key": "negated", "input_key": "y"},
        ],
        runtime_hint=runtime,
    )
    x = tone(amplitude=0.25)
    out = p.run_sync((x, 16000))
    np.testing.assert_array_equal(out["neg"].samples, -x)
    assert out["peak"] == pytest.approx(float(np.max(np.abs(x))))
    assert np.max(np.abs(out["mix"].samples)) == 0.0


def test_missing_output_key_at_run_time_names_the_producer(runtime):
    p = Pipeline([Split(node_id="split"), PassthroughNode(node_id="out")],
                 edges=[{"from": "split", "to": "out", "output_key": "nope"}], runtime_hint=runtime)
    with pytest.raises(NodeError) as e:
        p.run_sync((tone(), 16000))
    assert e.value.node_id == "split" and "nope" in str(e.value)


def test_order_follows_edges_not_manifest_order(runtime):
    # Nodes listed sink-first: execution must still follow the edges.
    p = Pipeline.from_dict(
        {
            "version": "1.0",
            "nodes": [
                {"id": "last", "type": "GainNode", "params": {"gain_db": 6.0}},
                {"id": "middle", "type": "GainNode", "params": {"gain_db": -12.0}},
                {"id": "first", "type": "PassthroughNode"},
            ],
            "edges": [{"from": "middle", "to": "last"}, {"from": "first", "to": "middle"}],
        },
        runtime_hint=runtime,
    )
    assert p.source_ids == ["first"]
    x = tone()
    np.testing.assert_array_equal(p.run_sync((x, 16000))["last"].samples, x * db(-12.0) * db(6.0))


def test_disconnected_nodes_are_each_source_and_sink(runtime):
    p = Pipeline([GainNode(6.0, node_id="a"), GainNode(-6.0, node_id="b")], edges=[], runtime_hint=runtime)
    x, y = tone(), tone(freq_hz=100)
    out = p.run_sync({"a": (x, 16000), "b": Audio(y, 16000)})
    np.testing.assert_array_equal(out["a"].samples, x * db(6.0))
    np.testing.assert_array_equal(out["b"].samples, y * db(-6.0))
