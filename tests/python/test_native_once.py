"""With the native engine present a manifest is read and validated once, by the engine: the
``CheckedManifest`` it returns is what ``NativePipeline`` installs, and the package neither reads
the file nor validates in Python on that path (issue #17, "a thin Python front")."""

import os

import numpy as np
import pytest

import remotemedia as rm
from remotemedia import _runtime

pytestmark = pytest.mark.requires_native

DATAFLOWS = os.path.join(os.path.dirname(__file__), "..", "..", "dataflows")
MANIFEST = {"version": "1.0", "nodes": [{"id": "g", "type": "GainNode", "params": {"gain_db": 6.0}}]}


class Counting:
    """The native module, with every manifest entry point counted and what NativePipeline was
    handed recorded."""

    def __init__(self, native):
        self.native, self.calls, self.installed = native, [], []

    def __getattr__(self, name):
        real = getattr(self.native, name)
        if name == "NativePipeline":
            def install(manifest, *args):
                self.installed.append(type(manifest).__name__)
                return real(manifest, *args)
            return install
        if name in ("read_manifest", "check_manifest", "parse_manifest", "validate_manifest"):
            def counted(*args):
                self.calls.append(name)
                return real(*args)
            return counted
        return real


@pytest.fixture
def counting(monkeypatch):
    native = _runtime.native_module()
    c = Counting(native)
    monkeypatch.setattr(_runtime, "_native", c)
    # The pure reader and validator must not run on this path either.
    import remotemedia.pipeline as pipeline

    def refuse(*_a, **_k):
        raise AssertionError("the pure-Python reader or validator ran with the engine present")

    for name in ("validate", "parse_json", "parse_yaml", "read_file"):
        monkeypatch.setattr(pipeline, name, refuse)
    return c


@pytest.mark.parametrize("build", [
    lambda: rm.Pipeline.from_yaml(os.path.join(DATAFLOWS, "convert_gain.yaml"), enable_metrics=True),
    lambda: rm.Pipeline.from_json(os.path.join(DATAFLOWS, "speech_vad.json"), workers=2),
    lambda: rm.Pipeline.from_yaml("version: '1.0'\nnodes:\n  - {id: g, type: GainNode, params: {gain_db: 6.0}}\n"),
    lambda: rm.Pipeline.from_dict(MANIFEST, enable_metrics=True),
    lambda: rm.Pipeline([rm.GainNode(6.0, node_id="g")]),
], ids=["yaml file", "json file", "yaml text", "dict", "nodes"])
def test_a_manifest_is_read_and_validated_once_by_the_engine(counting, build):
    p = build()
    assert p.runtime == "rust"
    assert len(counting.calls) == 1 and counting.calls[0] in ("read_manifest", "check_manifest"), counting.calls
    assert counting.installed == ["CheckedManifest"]


def test_config_given_to_from_yaml_reaches_the_engine_in_that_one_call(counting):
    p = rm.Pipeline.from_yaml(os.path.join(DATAFLOWS, "convert_gain.yaml"), enable_metrics=True, workers=2)
    assert counting.calls == ["read_manifest"]
    assert p.manifest["config"]["enable_metrics"] is True and p.manifest["config"]["workers"] == 2
    x = (np.sin(np.arange(16000) / 7.0) * 0.25).astype(np.float32)
    p.run_sync((x, 16000))
    assert p.get_metrics()["metrics_enabled"] is True


def test_a_batch_on_other_workers_installs_the_same_checked_manifest(counting):
    p = rm.Pipeline.from_dict(MANIFEST)
    x = (np.sin(np.arange(1600) / 5.0) * 0.5).astype(np.float32)
    out = p.run_batch([(x, 16000)] * 3, workers=2)
    assert counting.calls == ["check_manifest"] and counting.installed == ["CheckedManifest"] * 2
    np.testing.assert_array_equal(out[0]["g"].samples, p.run_sync((x, 16000))["g"].samples)
