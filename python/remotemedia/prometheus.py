"""Prometheus text exposition (format 0.0.4) of a metrics dict (``Pipeline.get_metrics()``), on either
runtime.

Twin of the Rust module ``src/metrics_prometheus.rs``: for the same document both produce
byte-identical text (checked against ``tests/data/metrics_example.prom`` by ``tests/prometheus.rs``
and ``tests/python/test_prometheus.py``). The families are written once, in Rust, and read from
``schema.json`` (``prometheus_families``).

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

from ._schema import SCHEMA

__all__ = ["to_prometheus", "format_value"]

# The metric families, written once in the Rust twin (src/metrics_prometheus.rs) and read from
# the schema: each {name, kind, help} with a ``field``, or a summary's ``quantiles``, ``sum``, ``count``.
_FAMILIES = SCHEMA["prometheus_families"]


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
    name = family["name"]
    # A field's one sample, or a summary's quantiles then its _sum and _count.
    if "field" in family:
        samples = [(name, None, family["field"])]
    else:
        samples = [(name, q, f) for q, f in family["quantiles"]]
        samples += [(name + "_sum", None, family["sum"]), (name + "_count", None, family["count"])]
    lines = []
    for obj, labels in objects:
        for sample_name, quantile, field in samples:
            v = format_value(obj.get(field))
            if v is not None:
                _sample(lines, sample_name, labels, quantile, v)
    if lines:
        out.append(f"# HELP {name} {_escape_help(family['help'])}\n")
        out.append(f"# TYPE {name} {family['kind']}\n")
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
    for family in _FAMILIES["pipeline"]:
        _write_family(out, family, [(metrics, base)])
    for family in _FAMILIES["node"]:
        _write_family(out, family, nodes)
    return "".join(out)
