"""Metrics: per-node and pipeline counts, durations and percentiles, the same schema on both runtimes."""

import pytest

from remotemedia import GainNode, Node, NodeError, Pipeline

from conftest import require_native, tone


class FailsOnOdd(Node):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.n = 0

    def process(self, audio):
        self.n += 1
        if self.n % 2:
            raise ValueError("odd call")
        return audio


def node(metrics, node_id):
    return next(n for n in metrics["node_metrics"] if n["node_id"] == node_id)


def test_counts_and_durations(runtime):
    p = Pipeline([GainNode(1.0, node_id="g"), FailsOnOdd(node_id="f")], enable_metrics=True, runtime_hint=runtime)
    for _ in range(4):
        try:
            p.run_sync((tone(), 16000))
        except NodeError:
            pass
    m = p.get_metrics()
    g, f = node(m, "g"), node(m, "f")
    assert [n["node_id"] for n in m["node_metrics"]] == ["g", "f"], "manifest order"
    assert (g["execution_count"], g["success_count"], g["error_count"]) == (4, 4, 0)
    assert (f["execution_count"], f["success_count"], f["error_count"]) == (4, 2, 2)
    assert f["success_rate"] == 0.5
    assert (m["total_executions"], m["successful_executions"], m["failed_executions"]) == (4, 2, 2)
    assert g["samples_processed"] == 4 * tone().size
    for s in (g, f, m):
        assert 0 < s["min_duration_us"] <= s["avg_duration_us"] <= s["max_duration_us"] <= s["total_duration_us"]
    for s in (g, f):
        assert s["min_duration_us"] <= s["p50_us"] <= s["p90_us"] <= s["p99_us"] <= s["p999_us"] <= s["max_duration_us"] * 1.001
    assert m["peak_memory_bytes"] > 0 and m["metrics_overhead_us"] > 0
    p.reset_metrics()
    assert node(p.get_metrics(), "g")["execution_count"] == 0


def test_disabled_metrics_count_nothing(runtime):
    p = Pipeline([GainNode(1.0, node_id="g")], runtime_hint=runtime)
    p.run_sync((tone(), 16000))
    m = p.get_metrics()
    assert m["metrics_enabled"] is False
    assert node(m, "g")["execution_count"] == 0
    assert m["metrics_overhead_us"] == 0


@pytest.mark.parametrize("enabled", [True, False])
def test_enable_metrics_goes_into_the_manifest(enabled):
    p = Pipeline([GainNode(1.0)], enable_metrics=enabled, runtime_hint="python")
    assert p.manifest["config"]["enable_metrics"] is enabled


def _key_sets(m):
    return set(m), [set(n) for n in m["node_metrics"]]


def _run_both(make):
    """Runs the same two-node pipeline on both runtimes; returns {runtime: pipeline}."""
    require_native()
    out = {}
    for rt in ("rust", "python"):
        p = make(rt)
        p.run_sync((tone(), 16000))
        out[rt] = p
    return out


def test_both_runtimes_have_exactly_the_same_fields():
    ps = _run_both(lambda rt: Pipeline([GainNode(1.0, node_id="g"), GainNode(2.0, node_id="h")], enable_metrics=True, runtime_hint=rt))
    rust, py = ps["rust"].get_metrics(), ps["python"].get_metrics()
    assert (rust["runtime"], py["runtime"]) == ("rust", "python")
    assert _key_sets(rust) == _key_sets(py)
    top, per_node = _key_sets(rust)
    assert "node_metrics" in top and len(per_node) == 2
    # With metrics off the fields are the same too.
    off = Pipeline([GainNode(1.0, node_id="g")], runtime_hint="python").get_metrics()
    assert set(off) == top and set(off["node_metrics"][0]) == per_node[0]


def test_json_and_prometheus_formats_on_both_runtimes():
    import json

    ps = _run_both(lambda rt: Pipeline([GainNode(1.0, node_id="g")], enable_metrics=True, runtime_hint=rt))
    for rt, p in ps.items():
        doc = p.get_metrics()
        text = p.get_metrics_json()
        assert isinstance(text, str) and text == p.get_metrics(format="json")
        parsed = json.loads(text)
        assert set(parsed) == set(doc) and parsed["node_metrics"][0]["execution_count"] == 1
        prom = p.get_metrics(format="prometheus")
        assert prom.endswith("\n")
        labels = f'pipeline_id="{doc["pipeline_id"]}",runtime="{rt}"'
        assert f"remotemedia_runs_total{{{labels}}} 1\n" in prom, rt
        assert f'remotemedia_node_executions_total{{{labels},node_id="g",node_type="GainNode"}} 1\n' in prom, rt
        # Every sample line is `name{labels} value` with a number for the value.
        for line in prom.splitlines():
            if not line.startswith("#"):
                float(line.rsplit(" ", 1)[1].replace("Inf", "inf"))
        with pytest.raises(ValueError, match="format"):
            p.get_metrics(format="xml")


def test_reset_metrics_on_both_runtimes(runtime):
    p = Pipeline([GainNode(1.0, node_id="g")], enable_metrics=True, runtime_hint=runtime)
    p.run_sync((tone(), 16000))
    p.reset_metrics()
    m = p.get_metrics()
    assert m["total_executions"] == 0 and m["latency_p50_us"] == 0
    assert node(m, "g")["execution_count"] == 0 and node(m, "g")["p99_us"] == 0
