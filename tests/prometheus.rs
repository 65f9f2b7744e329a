//! The Prometheus exposition of the metrics document: parsed back, every exported value equals its
//! JSON field (for a real pipeline's metrics and for a fixed document full of awkward numbers and
//! labels), and the fixed document still gives the committed `tests/data/metrics_example.prom`,
//! which `tests/python/test_prometheus.py` holds the Python twin to.
//!
//! Regenerate the .prom after a deliberate format change with
//! `REMOTEMEDIA_BLESS=1 cargo test --test prometheus`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use remotemedia::data::AudioBuffer;
use remotemedia::metrics_prometheus::to_prometheus;
use remotemedia::{manifest, Registry, RunInput, WorkerPool};
use serde_json::Value;

fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// One parsed sample: metric name, labels, value text.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: String,
}

/// A small parser for the text format (what this exporter writes: no timestamps). Checks that
/// every family has HELP then TYPE before its samples, and that families are not split.
fn parse(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut seen = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().expect("HELP names a metric").to_string();
            assert!(seen.insert(name.clone()), "family {name} appears twice");
            current = Some(name);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().expect("TYPE names a metric");
            assert_eq!(Some(name), current.as_deref(), "TYPE follows its HELP");
            let kind = parts.next().expect("TYPE has a kind");
            assert!(["counter", "gauge", "summary"].contains(&kind), "{kind}");
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "unexpected line {line:?}");
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => panic!("no value in {line:?}"),
        };
        let family = current.as_deref().expect("sample after a HELP line");
        assert!(
            name == family || name == format!("{family}_sum") || name == format!("{family}_count"),
            "sample {name} outside its family {family}"
        );
        let mut labels = BTreeMap::new();
        let mut chars = rest.chars().peekable();
        if chars.peek() == Some(&'{') {
            chars.next();
            loop {
                let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
                assert_eq!(chars.next(), Some('"'));
                let mut value = String::new();
                loop {
                    match chars.next().expect("unterminated label value") {
                        '\\' => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            other => panic!("bad escape {other:?}"),
                        },
                        '"' => break,
                        '\n' => panic!("raw newline in a label value"),
                        c => value.push(c),
                    }
                }
                labels.insert(key, value);
                match chars.next() {
                    Some(',') => continue,
                    Some('}') => break,
                    other => panic!("expected , or }} after a label, found {other:?}"),
                }
            }
        }
        assert_eq!(chars.next(), Some(' '), "one space before the value in {line:?}");
        let value: String = chars.collect();
        samples.push(Sample { name: name.to_string(), labels, value });
    }
    (samples, types)
}

/// The value text as a number, the way Prometheus reads it.
fn number(text: &str) -> f64 {
    match text {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        t => t.parse().unwrap_or_else(|_| panic!("not a number: {t}")),
    }
}

fn json_number(v: &Value) -> f64 {
    match v {
        Value::Bool(b) => *b as u8 as f64,
        v => v.as_f64().expect("a number"),
    }
}

/// (series name, quantile, JSON field) for pipeline-level and node-level values.
const PIPELINE: &[(&str, Option<&str>, &str)] = &[
    ("remotemedia_metrics_enabled", None, "metrics_enabled"),
    ("remotemedia_workers", None, "workers"),
    ("remotemedia_runs_total", None, "total_executions"),
    ("remotemedia_runs_succeeded_total", None, "successful_executions"),
    ("remotemedia_runs_failed_total", None, "failed_executions"),
    ("remotemedia_run_duration_microseconds", Some("0.5"), "latency_p50_us"),
    ("remotemedia_run_duration_microseconds", Some("0.9"), "latency_p90_us"),
    ("remotemedia_run_duration_microseconds", Some("0.99"), "latency_p99_us"),
    ("remotemedia_run_duration_microseconds", Some("0.999"), "latency_p999_us"),
    ("remotemedia_run_duration_microseconds_sum", None, "total_duration_us"),
    ("remotemedia_run_duration_microseconds_count", None, "total_executions"),
    ("remotemedia_run_duration_avg_microseconds", None, "avg_duration_us"),
    ("remotemedia_run_duration_min_microseconds", None, "min_duration_us"),
    ("remotemedia_run_duration_max_microseconds", None, "max_duration_us"),
    ("remotemedia_peak_memory_bytes", None, "peak_memory_bytes"),
    ("remotemedia_metrics_overhead_microseconds", None, "metrics_overhead_us"),
];

const NODE: &[(&str, Option<&str>, &str)] = &[
    ("remotemedia_node_executions_total", None, "execution_count"),
    ("remotemedia_node_successes_total", None, "success_count"),
    ("remotemedia_node_errors_total", None, "error_count"),
    ("remotemedia_node_success_ratio", None, "success_rate"),
    ("remotemedia_node_duration_microseconds", Some("0.5"), "p50_us"),
    ("remotemedia_node_duration_microseconds", Some("0.9"), "p90_us"),
    ("remotemedia_node_duration_microseconds", Some("0.99"), "p99_us"),
    ("remotemedia_node_duration_microseconds", Some("0.999"), "p999_us"),
    ("remotemedia_node_duration_microseconds_sum", None, "total_duration_us"),
    ("remotemedia_node_duration_microseconds_count", None, "execution_count"),
    ("remotemedia_node_duration_avg_microseconds", None, "avg_duration_us"),
    ("remotemedia_node_duration_min_microseconds", None, "min_duration_us"),
    ("remotemedia_node_duration_max_microseconds", None, "max_duration_us"),
    ("remotemedia_node_items_processed_total", None, "items_processed"),
    ("remotemedia_node_samples_processed_total", None, "samples_processed"),
    // Retry and circuit-breaker fields (docs/reliability.md): absent from older documents.
    ("remotemedia_node_retries_total", None, "retry_count"),
    ("remotemedia_node_circuit_state", None, "circuit_state_code"),
    ("remotemedia_node_circuit_consecutive_failures", None, "circuit_consecutive_failures"),
    ("remotemedia_node_circuit_opens_total", None, "circuit_opens"),
    ("remotemedia_node_circuit_rejections_total", None, "circuit_rejections"),
];

/// Every JSON field appears exactly once per object with the right labels and the same value,
/// and nothing else is exported.
fn check_round_trip(doc: &Value) {
    let text = to_prometheus(doc);
    let (samples, types) = parse(&text);
    let base: BTreeMap<String, String> = ["pipeline_id", "runtime"]
        .iter()
        .filter_map(|k| doc[*k].as_str().map(|v| (k.to_string(), v.to_string())))
        .collect();
    let mut expected = Vec::new();
    for (name, q, field) in PIPELINE {
        expected.push((name.to_string(), base.clone(), *q, &doc[*field]));
    }
    for node in doc["node_metrics"].as_array().expect("node_metrics") {
        let mut labels = base.clone();
        labels.insert("node_id".into(), node["node_id"].as_str().expect("node_id").into());
        labels.insert("node_type".into(), node["node_type"].as_str().expect("node_type").into());
        for (name, q, field) in NODE.iter().filter(|(_, _, f)| node.get(*f).is_some()) {
            expected.push((name.to_string(), labels.clone(), *q, &node[*field]));
        }
    }
    assert_eq!(samples.len(), expected.len(), "one sample per JSON value:\n{text}");
    for (name, labels, q, json) in expected {
        let mut want = labels.clone();
        if let Some(q) = q {
            want.insert("quantile".into(), q.into());
        }
        let found: Vec<&Sample> = samples.iter().filter(|s| s.name == name && s.labels == want).collect();
        assert_eq!(found.len(), 1, "{name} {want:?} in\n{text}");
        let got = number(&found[0].value);
        let expect = json_number(json);
        assert!(got == expect || (got.is_nan() && expect.is_nan()), "{name} {want:?}: {got} != {expect}");
        if json.is_u64() || json.is_i64() {
            assert_eq!(found[0].value, json.to_string(), "integers stay integers");
        }
    }
    assert_eq!(types["remotemedia_node_duration_microseconds"], "summary");
    assert_eq!(types["remotemedia_runs_total"], "counter");
    assert_eq!(types["remotemedia_workers"], "gauge");
}

#[test]
fn a_real_pipelines_metrics_round_trip() {
    let graph = manifest::load_str(
        r#"{"version": "1.0",
            "nodes": [{"id": "gain \"a\"", "type": "GainNode", "params": {"gain_db": -6.0}},
                      {"id": "pass", "type": "PassthroughNode"}],
            "edges": [{"from": "gain \"a\"", "to": "pass"}],
            "config": {"enable_metrics": true}}"#,
        &Registry::builtin(),
    )
    .expect("valid manifest");
    let pipeline = WorkerPool::shared(1).expect("pool").install(graph).expect("install");
    let tone: Vec<f32> = (0..1600).map(|i| (i as f32 * 0.1).sin() * 0.5).collect();
    for _ in 0..5 {
        pipeline.run(RunInput::from(AudioBuffer::mono_f32(tone.clone(), 16000))).expect("run");
    }
    let doc = pipeline.metrics_json().expect("metrics");
    assert_eq!(doc["node_metrics"][0]["execution_count"], 5);
    check_round_trip(&doc);
    let text = to_prometheus(&doc);
    assert!(text.contains(r#"node_id="gain \"a\"""#), "quotes escaped in labels:\n{text}");
    assert!(text.contains("remotemedia_node_samples_processed_total{pipeline_id="), "{text}");
}

#[test]
fn the_fixed_example_round_trips_and_matches_the_committed_text() {
    let json_text = std::fs::read_to_string(data_path("metrics_example.json")).expect("example JSON");
    let doc: Value = serde_json::from_str(&json_text).expect("valid JSON");
    check_round_trip(&doc);
    let text = to_prometheus(&doc);
    let prom = data_path("metrics_example.prom");
    if std::env::var_os("REMOTEMEDIA_BLESS").is_some() {
        std::fs::write(&prom, &text).expect("write the .prom");
    }
    let committed = std::fs::read_to_string(&prom).expect("tests/data/metrics_example.prom (REMOTEMEDIA_BLESS=1 writes it)");
    assert_eq!(text, committed, "Rust output differs from tests/data/metrics_example.prom");
    // The awkward numbers took the forms Python's repr gives them.
    for form in ["1e+16", "1.5e-07", "0.0001", "1e-05", "5e-324", "1.7976931348623157e+308", "1000000000000000.0", "2.5e+22", " 779539845543410.2\n", " -42\n", " 18446744073709551615\n"] {
        assert!(text.contains(form), "{form} missing");
    }
}
