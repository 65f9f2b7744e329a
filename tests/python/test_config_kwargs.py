"""Config on every constructor: from_yaml / from_json / from_dict and Pipeline() take the manifest's
config fields as keyword arguments, overriding the manifest's `config`, validated with it."""

import asyncio
import copy
import json
from pathlib import Path

import pytest
import yaml

from remotemedia import GainNode, ManifestError, Pipeline
from remotemedia.wav import read_wav

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "dataflows" / "speech_vad.yaml"
SAMPLE = ROOT / "dataflows" / "sample_speech.wav"


def without_metrics():
    tree = yaml.safe_load(MANIFEST.read_text())
    del tree["config"]["enable_metrics"]
    return tree


def sample():
    audio = read_wav(str(SAMPLE))
    return (audio.samples, audio.sample_rate)


def build(kind, runtime, tmp_path, **config):
    tree = without_metrics()
    if kind == "yaml":
        path = tmp_path / "m.yaml"
        path.write_text(yaml.safe_dump(tree))
        return Pipeline.from_yaml(str(path), runtime_hint=runtime, **config)
    if kind == "json":
        return Pipeline.from_json(json.dumps(tree), runtime_hint=runtime, **config)
    return Pipeline.from_dict(tree, runtime_hint=runtime, **config)


@pytest.mark.parametrize("kind", ["yaml", "json", "dict"])
def test_the_seed_example_gives_per_node_metrics(kind, runtime, tmp_path):
    # The design's example: Pipeline.from_yaml(path, enable_metrics=True); await run; get_metrics().
    pipeline = build(kind, runtime, tmp_path, enable_metrics=True)
    assert pipeline.manifest["config"]["enable_metrics"] is True
    result = asyncio.run(pipeline.run(sample()))
    assert len(result["vad"].segments) == 3
    metrics = pipeline.get_metrics()
    assert [m["node_id"] for m in metrics["node_metrics"]] == [n["id"] for n in without_metrics()["nodes"]]
    assert all(m["execution_count"] == 1 for m in metrics["node_metrics"]), metrics["node_metrics"]


def test_keywords_override_the_manifest_config(runtime):
    tree = yaml.safe_load(MANIFEST.read_text())  # says enable_metrics: true, workers: 1
    before = copy.deepcopy(tree)
    p = Pipeline.from_dict(tree, runtime_hint=runtime, enable_metrics=False, workers=2, circuit_breaker_threshold=7)
    assert tree == before, "the caller's manifest is not modified"
    assert p.manifest["config"] == {**before["config"], "enable_metrics": False, "workers": 2, "circuit_breaker_threshold": 7}
    assert len(p.run_sync(sample())["vad"].segments) == 3
    assert all(m["execution_count"] == 0 for m in p.get_metrics()["node_metrics"])


def test_the_constructor_takes_any_config_field(runtime):
    p = Pipeline([GainNode(0.0)], runtime_hint=runtime, retry_base_delay_ms=1234, max_retries=2)
    assert p.manifest["config"]["retry_base_delay_ms"] == 1234 and p.manifest["config"]["max_retries"] == 2


@pytest.mark.parametrize("kwargs, where", [
    ({"enable_metric": True}, "config.enable_metric"),
    ({"workers": 0}, "config.workers"),
    ({"enable_metrics": "yes"}, "config.enable_metrics"),
])
def test_bad_keywords_are_manifest_errors_naming_the_field(kwargs, where, runtime):
    with pytest.raises(ManifestError) as err:
        Pipeline.from_dict(without_metrics(), runtime_hint=runtime, **kwargs)
    assert where in str(err.value)
    with pytest.raises(ManifestError) as err:
        Pipeline([GainNode(0.0)], runtime_hint=runtime, **kwargs)
    assert where in str(err.value)
