"""Declared outputs and VAD results flowing as audio, on both runtimes: the README's chain
(FormatConverter -> Resample -> VAD -> a custom Python node) works, with the VAD result still
returned when the manifest lists it; a node that asks for whole VAD results gets them; a run,
a batch and a session return exactly the declared outputs, in their order."""

import numpy as np
import pytest

from remotemedia import (AudioResampleNode, FormatConverterNode, ManifestError, Node, Pipeline, VADNode,
                         VadResult, register_node, unregister_node)


class Loudness(Node):
    """The README's "your model" node: plain audio in, a number out."""

    def process(self, audio):
        return {"rms": float(np.sqrt(np.mean(np.square(audio.samples, dtype=np.float64)))), "rate": audio.sample_rate}


class WholeResult(Node):
    accepts_vad_result = True

    def process(self, result):
        assert isinstance(result, VadResult)
        return len(result.segments)


def capture():
    """1.5 s at 48 kHz, int16: silence, a 0.5 s tone, silence."""
    t = np.arange(72000) / 48000
    x = np.where((t > 0.5) & (t < 1.0), 0.4 * np.sin(2 * np.pi * 440 * t), 0.0)
    return (np.round(x * 32767).astype(np.int16), 48000)


def chain(runtime, last, **kw):
    return Pipeline([FormatConverterNode("f32"), AudioResampleNode(16000), VADNode(node_id="vad"), last],
                    runtime_hint=runtime, **kw)


def test_the_readme_chain_with_a_python_node_after_the_vad(runtime):
    out = chain(runtime, Loudness(node_id="model")).run_sync(capture())
    assert list(out) == ["model"]  # the sink, as before
    assert out["model"]["rate"] == 16000 and 0.05 < out["model"]["rms"] < 0.2

    out = chain(runtime, Loudness(node_id="model"), outputs=["vad", "model"]).run_sync(capture())
    assert list(out) == ["vad", "model"]
    assert isinstance(out["vad"], VadResult) and len(out["vad"].segments) == 1
    assert out["model"]["rms"] == pytest.approx(
        float(np.sqrt(np.mean(np.square(out["vad"].audio.samples, dtype=np.float64)))), rel=1e-12)


def test_a_node_can_ask_for_the_whole_vad_result(runtime):
    assert chain(runtime, WholeResult(node_id="n")).run_sync(capture()) == {"n": 1}


def test_declared_outputs_in_runs_batches_sessions_and_the_manifest(runtime):
    vad = VADNode(node_id="vad")
    p = Pipeline([AudioResampleNode(16000, node_id="r"), vad, Loudness(node_id="model")], runtime_hint=runtime,
                 outputs=["model", vad, "r"])
    x = capture()[0].astype(np.float32) / 32768
    assert list(p.run_sync((x, 48000))) == ["model", "vad", "r"]
    assert all(list(r) == ["model", "vad", "r"] for r in p.run_batch([(x, 48000)] * 3))
    with p.stream() as s:
        assert set(s.push((x[:4800], 48000))) == {"model", "vad", "r"}
    assert p.manifest["outputs"] == ["model", "vad", "r"]
    register_node(Loudness)
    try:
        again = Pipeline.from_dict(p.manifest, runtime_hint=runtime)
        assert list(again.run_sync((x, 48000))) == ["model", "vad", "r"]
    finally:
        unregister_node("Loudness")
    p.declare_outputs("r")
    assert list(p.run_sync((x, 48000))) == ["r"]
    p.declare_outputs()
    assert list(p.run_sync((x, 48000))) == ["model"]


def test_bad_outputs_are_manifest_problems(runtime):
    with pytest.raises(ManifestError) as e:
        Pipeline([VADNode(node_id="vad")], runtime_hint=runtime, outputs=["vadd", "vad", "vad"]).run_sync(capture())
    assert [(p.path, p.expected) for p in e.value.problems] == [
        ("outputs[0]", 'the id of a node (did you mean "vad"?)'),
        ("outputs[2]", "each node listed once"),
    ]
