"""Prometheus text exposition (format 0.0.4) of a metrics dict (``Pipeline.get_metrics()``), on either
runtime.

Twin of the Rust module ``src/metrics_prometheus.rs``: for the same document both produce
byte-identical text (checked against ``tests/data/metrics_example.prom`` by ``tests/prometheus.rs``
and ``tests/python/test_prometheus.py``). Keep the two in step.

- Pipeline series carry the labels ``pipeline_id`` and ``runtime``; node series add ``node_id`` and
  ``node_type`` (each only where the document has it, as a string).
- Durations stay in microseconds, as in the dict, so every exported value equals a dict value.
- Latency percentiles are ``summary`` families with ``quantile`` labels; ``_sum``/``_count`` are the
  total duration and the execution count.
- A missing field (or one that is not a number/bool) drops its series; a family with no series is
  left out, HELP and TYPE included.

Numbers: ints print as ints, bools as 1/0, floats as ``repr`` (Rust reproduces it), non-finite
floats as ``NaN``, ``+Inf``, ``-Inf``. Integers outside the 64-bit range print as floats, because
that is what a JSON parser in Rust (serde_json) turns them into.

Only the standard library is used, so this module works without numpy or the native extension.
"""

import math

__all__ = ["to_prometheus", "format_value"]

# (name, type, help, source); source is a field name, or ("summary", [(quantile, field)...], sum, count).
_PIPELINE_FAMILIES = [
    ("remotemedia_metrics_enabled", "gauge", "Whether the pipeline records metrics (1) or not (0).", "metrics_enabled"),
    ("remotemedia_workers", "gauge", "Timely workers the pipeline runs on.", "workers"),
    ("remotemedia_runs_total", "counter", "Runs (batch items) completed.", "total_executions"),
    ("remotemedia_runs_succeeded_total", "counter", "Runs (batch items) completed without an error.", "successful_executions"),
    ("remotemedia_runs_failed_total", "counter", "Runs (batch items) that ended with a node error.", "failed_executions"),
    (
        "remotemedia_run_duration_microseconds",
        "summary",
        "End-to-end run latency in microseconds.",
        (
            "summary",
            [("0.5", "latency_p50_us"), ("0.9", "latency_p90_us"), ("0.99", "latency_p99_us"), ("0.999", "latency_p999_us")],
            "total_duration_us",
            "total_executions",
        ),
    ),
    ("remotemedia_run_duration_avg_microseconds", "gauge", "Mean end-to-end run latency in microseconds.", "avg_duration_us"),
    ("remotemedia_run_duration_min_microseconds", "gauge", "Shortest end-to-end run latency in microseconds.", "min_duration_us"),
    ("remotemedia_run_duration_max_microseconds", "gauge", "Longest end-to-end run latency in microseconds.", "max_duration_us"),
    ("remotemedia_peak_memory_bytes", "gauge", "Peak resident set size of the process in bytes.", "peak_memory_bytes"),
    ("remotemedia_metrics_overhead_microseconds", "gauge", "Estimated time spent recording metrics, in microseconds.", "metrics_overhead_us"),
]

_NODE_FAMILIES = [
    ("remotemedia_node_executions_total", "counter", "Node executions.", "execution_count"),
    ("remotemedia_node_successes_total", "counter", "Node executions that succeeded.", "success_count"),
    ("remotemedia_node_errors_total", "counter", "Node executions that failed.", "error_count"),
    ("remotemedia_node_success_ratio", "gauge", "Fraction of node executions that succeeded.", "success_rate"),
    (
        "remotemedia_node_duration_microseconds",
        "summary",
        "Node execution time in microseconds.",
        (
            "summary",
            [("0.5", "p50_us"), ("0.9", "p90_us"), ("0.99", "p99_us"), ("0.999", "p999_us")],
            "total_duration_us",
            "execution_count",
        ),
    ),
    ("remotemedia_node_duration_avg_microseconds", "gauge", "Mean node execution time in microseconds.", "avg_duration_us"),
    ("remotemedia_node_duration_min_microseconds", "gauge", "Shortest node execution in microseconds.", "min_duration_us"),
    ("remotemedia_node_duration_max_microseconds", "gauge", "Longest node execution in microseconds.", "max_duration_us"),
    ("remotemedia_node_items_processed_total", "counter", "Items the node processed.", "items_processed"),
    ("remotemedia_node_samples_processed_total", "counter", "Audio samples the node processed.", "samples_processed"),
    ("remotemedia_node_retries_total", "counter", "Retries of failed node executions.", "retry_count"),
    ("remotemedia_node_circuit_state", "gauge", "Circuit breaker state: 0 closed, 1 open, 2 half-open.", "circuit_state_code"),
    ("remotemedia_node_circuit_consecutive_failures", "gauge", "Consecutive failed node executions.", "circuit_consecutive_failures"),
    ("remotemedia_node_circuit_opens_total", "counter", "Times the circuit breaker opened.", "circuit_opens"),
    ("remotemedia_node_circuit_rejections_total", "counter", "Node executions refused while the circuit was open.", "circuit_rejections"),
]


def format_value(v):
    """A number or bool as a sample value, or ``None`` for anything else."""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        if -(2**63) <= v < 2**64:
            return str(v)
        v = float(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "+Inf" if v > 0 else "-Inf"
        return repr(v)
    return None


def _escape_label(s):
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(s):
    return s.replace("\\", "\\\\").replace("\n", "\\n")


def _string_labels(obj, names, base):
    labels = list(base)
    for name in names:
        v = obj.get(name)
        if isinstance(v, str):
            labels.append((name, v))
    return labels


def _sample(lines, name, labels, quantile, value):
    pairs = list(labels)
    if quantile is not None:
        pairs.append(("quantile", quantile))
    text = name
    if pairs:
        text += "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in pairs) + "}"
    lines.append(f"{text} {value}\n")


def _write_family(out, family, objects):
    name, kind, help_text, source = family
    lines = []
    for obj, labels in objects:
        if isinstance(source, str):
            v = format_value(obj.get(source))
            if v is not None:
                _sample(lines, name, labels, None, v)
        else:
            _, quantiles, sum_field, count_field = source
            for q, f in quantiles:
                v = format_value(obj.get(f))
                if v is not None:
                    _sample(lines, name, labels, q, v)
            v = format_value(obj.get(sum_field))
            if v is not None:
                _sample(lines, name + "_sum", labels, None, v)
            v = format_value(obj.get(count_field))
            if v is not None:
                _sample(lines, name + "_count", labels, None, v)
    if lines:
        out.append(f"# HELP {name} {_escape_help(help_text)}\n")
        out.append(f"# TYPE {name} {kind}\n")
        out.extend(lines)


def to_prometheus(metrics: dict) -> str:
    """The metrics dict as Prometheus text; anything that is not a dict gives an empty string."""
    if not isinstance(metrics, dict):
        return ""
    base = _string_labels(metrics, ["pipeline_id", "runtime"], [])
    node_list = metrics.get("node_metrics")
    if not isinstance(node_list, list):
        node_list = []
    nodes = [(n, _string_labels(n, ["node_id", "node_type"], base)) for n in node_list if isinstance(n, dict)]
    out = []
    for family in _PIPELINE_FAMILIES:
        _write_family(out, family, [(metrics, base)])
    for family in _NODE_FAMILIES:
        _write_family(out, family, nodes)
    return "".join(out)
