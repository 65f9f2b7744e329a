//! Prometheus text exposition (format 0.0.4) of the metrics JSON document that
//! [`Pipeline::metrics_json`](crate::Pipeline::metrics_json) returns (and that the pure-Python
//! runtime returns in the same schema).
//!
//! `python/remotemedia/prometheus.py` is a twin of this module: for the same document both produce
//! byte-identical text (checked by `tests/prometheus.rs` and `tests/python/test_prometheus.py`
//! against `tests/data/metrics_example.prom`). The families are written once, here; the twin reads
//! them from `schema.json` (`prometheus_families`, [`describe_families`]).
//!
//! What comes out:
//!
//! - Pipeline series carry the labels `pipeline_id` and `runtime`; node series add `node_id` and
//!   `node_type` (each label only where the document has it, as a string).
//! - Durations stay in microseconds, as in the JSON, so every exported value equals a JSON value
//!   exactly (no unit conversion, no rounding); the metric names say `_microseconds`.
//! - Latency percentiles are `summary` families with `quantile` labels, whose `_sum` and `_count`
//!   are the total duration and the execution count.
//! - A field missing from the document (or not a number/boolean) is left out; a family with no
//!   series is left out entirely, HELP and TYPE lines included.
//!
//! Numbers: JSON integers print as integers; booleans as 1/0; floats in Python's `repr` style
//! (the shortest digits that round-trip, fixed notation for exponents -4..=15, otherwise
//! `1e+16` / `1.5e-07`); non-finite values as `NaN`, `+Inf`, `-Inf`.

use std::fmt::Write as _;

use serde_json::Value;

/// How a family's value is read from a JSON object.
enum Source {
    /// One field.
    Field(&'static str),
    /// A summary: `(quantile label, field)` pairs, then the `_sum` and `_count` fields.
    Summary { quantiles: &'static [(&'static str, &'static str)], sum: &'static str, count: &'static str },
}

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    source: Source,
}

const fn field(name: &'static str, kind: &'static str, help: &'static str, f: &'static str) -> Family {
    Family { name, kind, help, source: Source::Field(f) }
}

const PIPELINE_FAMILIES: &[Family] = &[
    field("remotemedia_metrics_enabled", "gauge", "Whether the pipeline records metrics (1) or not (0).", "metrics_enabled"),
    field("remotemedia_workers", "gauge", "Timely workers the pipeline runs on.", "workers"),
    field("remotemedia_runs_total", "counter", "Runs (batch items) completed.", "total_executions"),
    field("remotemedia_runs_succeeded_total", "counter", "Runs (batch items) completed without an error.", "successful_executions"),
    field("remotemedia_runs_failed_total", "counter", "Runs (batch items) that ended with a node error.", "failed_executions"),
    Family {
        name: "remotemedia_run_duration_microseconds",
        kind: "summary",
        help: "End-to-end run latency in microseconds.",
        source: Source::Summary {
            quantiles: &[("0.5", "latency_p50_us"), ("0.9", "latency_p90_us"), ("0.99", "latency_p99_us"), ("0.999", "latency_p999_us")],
            sum: "total_duration_us",
            count: "total_executions",
        },
    },
    field("remotemedia_run_duration_avg_microseconds", "gauge", "Mean end-to-end run latency in microseconds.", "avg_duration_us"),
    field("remotemedia_run_duration_min_microseconds", "gauge", "Shortest end-to-end run latency in microseconds.", "min_duration_us"),
    field("remotemedia_run_duration_max_microseconds", "gauge", "Longest end-to-end run latency in microseconds.", "max_duration_us"),
    field("remotemedia_peak_memory_bytes", "gauge", "Peak resident set size of the process in bytes.", "peak_memory_bytes"),
    field("remotemedia_metrics_overhead_microseconds", "gauge", "Estimated time spent recording metrics, in microseconds.", "metrics_overhead_us"),
];

const NODE_FAMILIES: &[Family] = &[
    field("remotemedia_node_executions_total", "counter", "Node executions.", "execution_count"),
    field("remotemedia_node_successes_total", "counter", "Node executions that succeeded.", "success_count"),
    field("remotemedia_node_errors_total", "counter", "Node executions that failed.", "error_count"),
    field("remotemedia_node_success_ratio", "gauge", "Fraction of node executions that succeeded.", "success_rate"),
    Family {
        name: "remotemedia_node_duration_microseconds",
        kind: "summary",
        help: "Node execution time in microseconds.",
        source: Source::Summary {
            quantiles: &[("0.5", "p50_us"), ("0.9", "p90_us"), ("0.99", "p99_us"), ("0.999", "p999_us")],
            sum: "total_duration_us",
            count: "execution_count",
        },
    },
    field("remotemedia_node_duration_avg_microseconds", "gauge", "Mean node execution time in microseconds.", "avg_duration_us"),
    field("remotemedia_node_duration_min_microseconds", "gauge", "Shortest node execution in microseconds.", "min_duration_us"),
    field("remotemedia_node_duration_max_microseconds", "gauge", "Longest node execution in microseconds.", "max_duration_us"),
    field("remotemedia_node_items_processed_total", "counter", "Items the node processed.", "items_processed"),
    field("remotemedia_node_samples_processed_total", "counter", "Audio samples the node processed.", "samples_processed"),
    field("remotemedia_node_retries_total", "counter", "Retries of failed node executions.", "retry_count"),
    field("remotemedia_node_circuit_state", "gauge", "Circuit breaker state: 0 closed, 1 open, 2 half-open.", "circuit_state_code"),
    field("remotemedia_node_circuit_consecutive_failures", "gauge", "Consecutive failed node executions.", "circuit_consecutive_failures"),
    field("remotemedia_node_circuit_opens_total", "counter", "Times the circuit breaker opened.", "circuit_opens"),
    field("remotemedia_node_circuit_rejections_total", "counter", "Node executions refused while the circuit was open.", "circuit_rejections"),
];

/// The families as data, for `remotemedia schema` (`prometheus_families`), which the pure-Python
/// twin reads instead of keeping a copy: `{"pipeline": [...], "node": [...]}`, each family
/// `{name, kind, help}` with `field`, or with `quantiles` (`[label, field]` pairs), `sum` and `count`.
pub fn describe_families() -> Value {
    let list = |families: &[Family]| -> Value {
        families
            .iter()
            .map(|f| {
                let mut v = serde_json::json!({"name": f.name, "kind": f.kind, "help": f.help});
                match &f.source {
                    Source::Field(field) => v["field"] = serde_json::json!(field),
                    Source::Summary { quantiles, sum, count } => {
                        v["quantiles"] = serde_json::json!(quantiles);
                        v["sum"] = serde_json::json!(sum);
                        v["count"] = serde_json::json!(count);
                    }
                }
                v
            })
            .collect()
    };
    serde_json::json!({"pipeline": list(PIPELINE_FAMILIES), "node": list(NODE_FAMILIES)})
}

/// The metrics document as Prometheus text. Anything that is not an object yields an empty string.
pub fn to_prometheus(metrics: &Value) -> String {
    let mut out = String::new();
    let Some(doc) = metrics.as_object() else { return out };
    let base = string_labels(metrics, &["pipeline_id", "runtime"], &[]);
    let empty = Vec::new();
    let nodes: Vec<(&Value, Vec<(&str, String)>)> = doc
        .get("node_metrics")
        .and_then(Value::as_array)
        .unwrap_or(&empty)
        .iter()
        .filter(|n| n.is_object())
        .map(|n| (n, string_labels(n, &["node_id", "node_type"], &base)))
        .collect();
    for family in PIPELINE_FAMILIES {
        write_family(&mut out, family, &[(metrics, base.clone())]);
    }
    for family in NODE_FAMILIES {
        write_family(&mut out, family, &nodes);
    }
    out
}

/// `base` followed by the named string fields of `obj` that are present.
fn string_labels<'a>(obj: &Value, names: &[&'a str], base: &[(&'a str, String)]) -> Vec<(&'a str, String)> {
    let mut labels = base.to_vec();
    for &name in names {
        if let Some(s) = obj.get(name).and_then(Value::as_str) {
            labels.push((name, s.to_string()));
        }
    }
    labels
}

fn write_family(out: &mut String, family: &Family, objects: &[(&Value, Vec<(&str, String)>)]) {
    let mut lines = String::new();
    for (obj, labels) in objects {
        match &family.source {
            Source::Field(f) => {
                if let Some(v) = obj.get(*f).and_then(format_value) {
                    sample(&mut lines, family.name, labels, None, &v);
                }
            }
            Source::Summary { quantiles, sum, count } => {
                for (q, f) in *quantiles {
                    if let Some(v) = obj.get(*f).and_then(format_value) {
                        sample(&mut lines, family.name, labels, Some(q), &v);
                    }
                }
                if let Some(v) = obj.get(*sum).and_then(format_value) {
                    sample(&mut lines, &format!("{}_sum", family.name), labels, None, &v);
                }
                if let Some(v) = obj.get(*count).and_then(format_value) {
                    sample(&mut lines, &format!("{}_count", family.name), labels, None, &v);
                }
            }
        }
    }
    if !lines.is_empty() {
        let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(family.help));
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
        out.push_str(&lines);
    }
}

fn sample(out: &mut String, name: &str, labels: &[(&str, String)], quantile: Option<&str>, value: &str) {
    out.push_str(name);
    let mut all: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if let Some(q) = quantile {
        all.push(("quantile", q));
    }
    if !all.is_empty() {
        out.push('{');
        for (i, (k, v)) in all.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// Label values escape backslash, double quote and line feed (the exposition format's rule).
pub fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// HELP text escapes backslash and line feed.
fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A JSON number or boolean as a sample value; `None` for anything else.
pub fn format_value(v: &Value) -> Option<String> {
    match v {
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Some(u.to_string())
            } else if let Some(i) = n.as_i64() {
                Some(i.to_string())
            } else {
                n.as_f64().map(format_f64)
            }
        }
        _ => None,
    }
}

/// A float as Python's `repr` writes it, with Prometheus's names for the non-finite values.
pub fn format_f64(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let a = x.abs();
    // `{:e}` gives the shortest digits that round-trip, as `d.ddde<exp>`, like Python's repr; but
    // where two candidates of that length are equally close to the value Rust rounds the tie up,
    // Python to even. The exact formatting of the same length rounds ties to even: use it when it
    // still round-trips (it does whenever it differs at all).
    let shortest = format!("{a:e}");
    let n = shortest.split('e').next().unwrap_or("").chars().filter(char::is_ascii_digit).count();
    let exact = format!("{:.*e}", n.saturating_sub(1), a);
    let sci = if exact.parse::<f64>() == Ok(a) { exact } else { shortest };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if (-4..16).contains(&exp) {
        // Python switches to exponent notation outside 1e-4 <= |x| < 1e16.
        let (int, frac) = if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                (format!("{digits}{}", "0".repeat(int_len - digits.len())), "0".to_string())
            } else {
                (digits[..int_len].to_string(), digits[int_len..].to_string())
            }
        } else {
            ("0".to_string(), format!("{}{digits}", "0".repeat((-exp - 1) as usize)))
        };
        format!("{sign}{int}.{frac}")
    } else {
        let m = if digits.len() == 1 { digits } else { format!("{}.{}", &digits[..1], &digits[1..]) };
        format!("{sign}{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_repr() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (12.5, "12.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345.6, "123456789012345.6"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (-2.5e-300, "-2.5e-300"),
            (5e-324, "5e-324"),
            // Two shortest candidates (...410.2 and ...410.3) equally close: ties go to even.
            // (written as a sum: the literal with both digits is exact but trips clippy)
            (779539845543410.0 + 0.25, "779539845543410.2"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (x, want) in cases {
            assert_eq!(format_f64(x), want, "{x:e}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn missing_fields_drop_series_and_empty_families() {
        let text = to_prometheus(&serde_json::json!({"workers": 2, "node_metrics": [{"node_id": "n", "error_count": 0}]}));
        assert_eq!(
            text,
            "# HELP remotemedia_workers Timely workers the pipeline runs on.\n# TYPE remotemedia_workers gauge\nremotemedia_workers 2\n\
             # HELP remotemedia_node_errors_total Node executions that failed.\n# TYPE remotemedia_node_errors_total counter\n\
             remotemedia_node_errors_total{node_id=\"n\"} 0\n"
        );
        assert_eq!(to_prometheus(&serde_json::json!([1, 2])), "");
    }
}
