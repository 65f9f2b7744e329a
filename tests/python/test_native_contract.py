"""What the Pipeline wrapper hands to ``remotemedia._native`` and how it reads the answers, checked
against a recording stand-in (the binding API the Rust side implements)."""

import asyncio
import json

import numpy as np
import pytest

from remotemedia import Audio, GainNode, MixNode, Node, PassthroughNode, Pipeline, VadResult, _runtime
from remotemedia._pure.builtin import KernelNode

from conftest import tone


class Recorder:
    """Records constructor and run arguments; answers with canned native-style values."""

    instances = []

    def __init__(self, manifest_json, python_nodes):
        self.manifest_json = manifest_json
        self.python_nodes = python_nodes
        self.runs = []
        Recorder.instances.append(self)

    def run(self, inputs):
        self.runs.append(inputs)
        samples, rate = next(iter(inputs.values()))
        return {
            "audio": (samples * np.float32(2), rate),
            "vad": {"segments": [[0.0, 0.5]], "frames": np.array([True, False]), "audio": (samples, rate)},
            "map": {"label": "speech", "nested": (samples[:2], rate)},
            "json": [1, 2.5, None],
        }

    def run_async(self, inputs, callback):
        import threading

        threading.Thread(target=lambda: callback(self.run(inputs), None)).start()

    def metrics_json(self):
        return json.dumps({"enabled": True, "nodes": {}})


class FakeModule:
    NativePipeline = Recorder


@pytest.fixture
def native(monkeypatch):
    _runtime.is_rust_runtime_available()
    monkeypatch.setattr(_runtime, "_native", FakeModule)
    Recorder.instances.clear()
    return Recorder.instances


class Custom(Node):
    def process(self, x):
        return x


def test_manifest_json_and_python_nodes(native):
    custom = Custom(node_id="c", k=1)
    Pipeline([GainNode(6.0, node_id="g"), GainNode(1.0, node_id="py", runtime_hint="python"), custom], runtime_hint="rust")
    (rec,) = native
    m = json.loads(rec.manifest_json)
    assert [n["id"] for n in m["nodes"]] == ["g", "py", "c"]
    assert m["nodes"][1]["runtime_hint"] == "python" and m["nodes"][2]["params"] == {"k": 1}
    assert set(rec.python_nodes) == {"py", "c"}
    assert rec.python_nodes["c"] is custom
    assert isinstance(rec.python_nodes["py"], KernelNode)
    # A built-in run as a Python callback computes what the engine would.
    x = tone()
    out = rec.python_nodes["py"]._rm_call({"in": (x, 16000)})
    np.testing.assert_array_equal(out.samples, x * np.float32(10 ** (1 / 20)))


def test_single_input_uses_the_empty_key_and_dicts_use_source_ids(native):
    p = Pipeline([PassthroughNode(node_id="a"), PassthroughNode(node_id="b"), MixNode(node_id="m")],
                 edges=[("a", "m"), ("b", "m")], runtime_hint="rust")
    x = tone()
    p.run_sync((x, 16000))
    p.run_sync({"a": (x, 16000), "b": Audio(x, 16000)})
    first, second = native[0].runs
    assert list(first) == [""] and first[""][0] is x and first[""][1] == 16000
    assert sorted(second) == ["a", "b"]


def test_results_are_converted(native):
    p = Pipeline([GainNode(0.0, node_id="g")], runtime_hint="rust")
    x = tone()
    for out in (p.run_sync((x, 16000)), asyncio.run(p.run((x, 16000)))):
        assert out["audio"] == Audio(x * np.float32(2), 16000)
        assert isinstance(out["vad"], VadResult)
        assert out["vad"]["segments"] == [(0.0, 0.5)] and out["vad"]["audio"] == Audio(x, 16000)
        assert out["map"]["label"] == "speech" and out["map"]["nested"] == Audio(x[:2], 16000)
        assert out["json"] == [1, 2.5, None]
    assert p.get_metrics() == {"enabled": True, "nodes": {}}


def test_async_run_error_from_engine_thread(native):
    class Failing(Recorder):
        def run_async(self, inputs, callback):
            import threading

            threading.Thread(target=lambda: callback(None, RuntimeError("engine fault"))).start()

    FakeModule.NativePipeline = Failing
    try:
        p = Pipeline([GainNode(0.0)], runtime_hint="rust")
        with pytest.raises(RuntimeError, match="engine fault"):
            asyncio.run(p.run((tone(), 16000)))
    finally:
        FakeModule.NativePipeline = Recorder
