"""Metrics: per-node and pipeline counts and durations (the schema is finalised by the metrics issue)."""

import pytest

from remotemedia import GainNode, Node, NodeError, Pipeline

from conftest import tone


class FailsOnOdd(Node):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.n = 0

    def process(self, audio):
        self.n += 1
        if self.n % 2:
            raise ValueError("odd call")
        return audio


def test_counts_and_durations(runtime):
    p = Pipeline([GainNode(1.0, node_id="g"), FailsOnOdd(node_id="f")], enable_metrics=True, runtime_hint=runtime)
    for _ in range(4):
        try:
            p.run_sync((tone(), 16000))
        except NodeError:
            pass
    m = p.get_metrics()
    g, f, run = m["nodes"]["g"], m["nodes"]["f"], m["pipeline"]
    assert (g["execution_count"], g["success_count"], g["error_count"]) == (4, 4, 0)
    assert (f["execution_count"], f["success_count"], f["error_count"]) == (4, 2, 2)
    assert (run["run_count"], run["success_count"], run["error_count"]) == (4, 2, 2)
    for s in (g, f, run):
        assert 0 < s["min_duration_us"] <= s["avg_duration_us"] <= s["max_duration_us"] <= s["total_duration_us"]
    p.reset_metrics()
    assert p.get_metrics()["nodes"]["g"]["execution_count"] == 0


def test_disabled_metrics_count_nothing(runtime):
    p = Pipeline([GainNode(1.0, node_id="g")], runtime_hint=runtime)
    p.run_sync((tone(), 16000))
    m = p.get_metrics()
    assert m["enabled"] is False
    assert m["nodes"]["g"]["execution_count"] == 0


@pytest.mark.parametrize("enabled", [True, False])
def test_enable_metrics_goes_into_the_manifest(enabled):
    p = Pipeline([GainNode(1.0)], enable_metrics=enabled, runtime_hint="python")
    assert p.manifest["config"]["enable_metrics"] is enabled
