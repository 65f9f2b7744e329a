//! Metrics against known runs: counts after known successes and failures, percentiles of a node
//! that spends known durations, merging over two workers, metrics off, `reset_stats`, and the
//! JSON field set checked against the tables of docs/metrics.md.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use remotemedia::data::{AudioBuffer, Payload};
use remotemedia::nodes::{expect_audio, Inputs, Node, NodeType, Registry};
use remotemedia::{manifest, NodeError, Pipeline, RunInput, WorkerPool};

/// First sample of the input that makes `SpinNode` fail.
const FAIL: f32 = -1.0;

/// Busy-waits for as many microseconds as its input's first sample says (spinning on the clock
/// rather than sleeping, so the time spent is exact up to scheduling), then passes the input on.
/// Fails on [`FAIL`].
struct Spin;

impl Node for Spin {
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        let a = expect_audio(inputs.one()?)?;
        let first = a.as_f32().and_then(|s| s.first()).copied().unwrap_or(0.0);
        if first == FAIL {
            return Err(NodeError::permanent("marker value: failing on purpose"));
        }
        let wait = Duration::from_micros(first.max(0.0) as u64);
        let t = Instant::now();
        while t.elapsed() < wait {
            std::hint::spin_loop();
        }
        Ok(Payload::Audio(a))
    }
}

fn registry() -> Registry {
    let mut r = Registry::builtin();
    r.register(NodeType::new("SpinNode", "busy-waits input[0] µs; fails on -1", |_| Ok(Box::new(Spin))));
    r
}

/// spin -> after (a passthrough): `after` runs only when `spin` succeeded.
fn install(metrics: bool, workers: usize) -> Pipeline {
    let json = format!(
        r#"{{"version":"1.0","nodes":[
          {{"id":"spin","type":"SpinNode"}},
          {{"id":"after","type":"PassthroughNode"}}],
          "edges":[{{"from":"spin","to":"after"}}],
          "config":{{"enable_metrics":{metrics}}}}}"#
    );
    let registry = registry();
    let graph = manifest::load_str(&json, &registry).expect("valid manifest");
    WorkerPool::shared(workers).expect("pool").install_with(graph, &registry, std::sync::Arc::new(remotemedia::runtime::RealClock::new())).expect("install")
}

/// Input whose first sample is `value` (µs to spin, or the failure marker); 4 samples long.
fn input(value: f32) -> RunInput {
    RunInput::All(Payload::Audio(AudioBuffer::mono_f32(vec![value, 0.0, 0.0, 0.0], 16000)))
}

fn node<'a>(m: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    m["node_metrics"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["node_id"] == id))
        .unwrap_or_else(|| panic!("no node_metrics entry for {id}"))
}

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an unsigned integer: {v}"))
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn counts_successes_and_failures_per_node_and_pipeline() {
    let p = install(true, 1);
    let (good, bad) = (7u64, 3u64);
    for i in 0..good + bad {
        let r = p.run(input(if i % 3 == 1 && i < 9 { FAIL } else { 0.0 }));
        assert_eq!(r.is_err(), i % 3 == 1 && i < 9, "run {i}");
    }
    let m = p.metrics_json().expect("metrics");
    let spin = node(&m, "spin");
    assert_eq!(u(&spin["execution_count"]), good + bad);
    assert_eq!(u(&spin["success_count"]), good);
    assert_eq!(u(&spin["error_count"]), bad);
    assert_eq!(f(&spin["success_rate"]), good as f64 / (good + bad) as f64);
    assert_eq!(u(&spin["items_processed"]), good + bad);
    // Only successful executions count their output samples (4 per item).
    assert_eq!(u(&spin["samples_processed"]), 4 * good);
    // Downstream of a failure nothing runs: `after` saw only the good items.
    let after = node(&m, "after");
    assert_eq!(u(&after["execution_count"]), good);
    assert_eq!(u(&after["success_count"]), good);
    assert_eq!(u(&after["error_count"]), 0);
    assert_eq!(f(&after["success_rate"]), 1.0);
    assert_eq!(u(&m["total_executions"]), good + bad);
    assert_eq!(u(&m["successful_executions"]), good);
    assert_eq!(u(&m["failed_executions"]), bad);
    assert_eq!(m["metrics_enabled"], true);
    assert_eq!(m["runtime"], "rust");
    assert!(u(&m["peak_memory_bytes"]) > 0, "VmHWM is readable on Linux");
    assert!(f(&m["metrics_overhead_us"]) > 0.0);

    // A batch counts each item as one execution of the pipeline, good or bad.
    p.reset_stats().expect("reset");
    let results = p.run_batch(vec![input(0.0), input(FAIL), input(0.0)]).expect("batch");
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
    let m = p.metrics_json().expect("metrics");
    assert_eq!((u(&m["total_executions"]), u(&m["successful_executions"]), u(&m["failed_executions"])), (3, 2, 1));
    assert_eq!(u(&node(&m, "after")["execution_count"]), 2);
}

#[test]
fn percentiles_of_known_durations() {
    let p = install(true, 1);
    // 90 items of 200 µs and 10 of 2 ms, interleaved; one worker runs them one after another.
    let items: Vec<RunInput> = (0..100).map(|i| input(if i % 10 == 9 { 2000.0 } else { 200.0 })).collect();
    let results = p.run_batch(items).expect("batch");
    assert!(results.iter().all(|r| r.is_ok()));
    let m = p.metrics_json().expect("metrics");
    let spin = node(&m, "spin");
    assert_eq!(u(&spin["execution_count"]), 100);
    // Lower bounds are exact: the recorded time contains the whole spin, and HDR reports a
    // bucket's highest value. Upper bounds allow 60 µs (30%) of scheduling noise on p50, which
    // more than half of the short runs would all have to exceed to fail.
    let (p50, p90, p99, max, min) = (f(&spin["p50_us"]), f(&spin["p90_us"]), f(&spin["p99_us"]), f(&spin["max_duration_us"]), f(&spin["min_duration_us"]));
    assert!((200.0..=260.0).contains(&p50), "p50 = {p50} µs");
    assert!(p90 >= 200.0, "p90 = {p90} µs");
    assert!(p99 >= 2000.0, "p99 = {p99} µs");
    assert!(f(&spin["p999_us"]) >= p99);
    assert!(max >= 2000.0, "max = {max} µs");
    assert!(min >= 200.0, "min = {min} µs");
    // total >= 90 × 200 µs + 10 × 2 ms; avg = total / count.
    let total = f(&spin["total_duration_us"]);
    assert!(total >= 38_000.0, "total = {total} µs");
    assert!((f(&spin["avg_duration_us"]) - total / 100.0).abs() < 1e-6);
    // The HDR histogram keeps 3 significant digits: p50 is within 0.1% of some recorded value,
    // and recorded values are at least 200 µs, so p50 / 1.001 is still >= 200 µs - nothing clamps.
    assert!(p50 / 1.001 >= 199.8);
    // The pipeline's end-to-end latency covers every node of the batch.
    assert!(f(&m["max_duration_us"]) >= 38_000.0);
}

#[test]
fn two_workers_record_separately_and_merge() {
    let p = install(true, 2);
    assert_eq!(p.workers(), 2);
    let n = 10u64;
    // 5 ms each: the first worker to take items takes its share (5), and the other wakes
    // long before they are done to take from the rest.
    let results = p.run_batch((0..n).map(|_| input(5000.0)).collect()).expect("batch");
    assert!(results.iter().all(|r| r.is_ok()));
    let m = p.metrics_json().expect("metrics");
    assert_eq!(m["workers"], 2);
    for id in ["spin", "after"] {
        assert_eq!(u(&node(&m, id)["execution_count"]), n, "{id}: merged count");
    }
    // Both workers' records were used, and they add up.
    let workers = p.stats_per_worker().expect("stats");
    assert_eq!(workers.len(), 2);
    for (i, id) in ["spin", "after"].into_iter().enumerate() {
        let per_worker: Vec<_> = workers.iter().map(|w| w.nodes[i].clone()).collect();
        assert!(per_worker.iter().all(|s| s.executions > 0), "{id}: {:?}", per_worker.iter().map(|s| s.executions).collect::<Vec<_>>());
        assert_eq!(per_worker.iter().map(|s| s.executions).sum::<u64>(), n, "{id}");
        let merged_hist: u64 = per_worker.iter().map(|s| s.histogram.len()).sum();
        assert_eq!(merged_hist, n, "{id}: every execution is in one worker's histogram");
    }
    let merged = p.node_stats().expect("stats");
    assert!(merged.iter().all(|(_, s)| s.histogram.len() == n));
}

#[test]
fn metrics_off_records_nothing() {
    let p = install(false, 1);
    for v in [0.0, FAIL, 0.0] {
        let _ = p.run(input(v));
    }
    let m = p.metrics_json().expect("metrics");
    assert_eq!(m["metrics_enabled"], false);
    for id in ["spin", "after"] {
        let n = node(&m, id);
        assert_eq!(u(&n["execution_count"]), 0, "{id}");
        assert_eq!(u(&n["error_count"]), 0, "{id}");
        assert_eq!(f(&n["p50_us"]), 0.0, "{id}");
    }
    assert_eq!(u(&m["total_executions"]), 0);
    assert_eq!(f(&m["metrics_overhead_us"]), 0.0);
    assert!(p.run_latency().expect("stats").is_empty());
}

#[test]
fn reset_stats_zeroes_everything() {
    let p = install(true, 1);
    for v in [50.0, FAIL, 50.0] {
        let _ = p.run(input(v));
    }
    assert!(u(&p.metrics_json().expect("metrics")["total_executions"]) == 3);
    p.reset_stats().expect("reset");
    let m = p.metrics_json().expect("metrics");
    // Descriptive fields stay; every measured number is back to 0.
    let kept = ["pipeline_id", "runtime", "metrics_enabled", "workers", "peak_memory_bytes", "peak_memory_mb", "node_metrics"];
    for (k, v) in m.as_object().expect("object") {
        if !kept.contains(&k.as_str()) {
            assert_eq!(f(v), 0.0, "pipeline field {k} after reset");
        }
    }
    for n in m["node_metrics"].as_array().expect("array") {
        for (k, v) in n.as_object().expect("object") {
            // The circuit's state describes the node, not a measurement (docs/reliability.md).
            if k != "node_id" && k != "node_type" && k != "circuit_state" {
                assert_eq!(f(v), 0.0, "{}: {k} after reset", n["node_id"]);
            }
        }
    }
    assert!(p.node_stats().expect("stats").iter().all(|(_, s)| s.histogram.is_empty()));
    // And recording works again afterwards.
    p.run(input(0.0)).expect("run");
    assert_eq!(u(&node(&p.metrics_json().expect("metrics"), "after")["execution_count"]), 1);
}

/// The backticked first cells of table rows (`| \`field\` | ... |`) in the docs/metrics.md section
/// whose heading contains `heading`.
fn documented_fields(doc: &str, heading: &str) -> BTreeSet<String> {
    let mut inside = false;
    let mut fields = BTreeSet::new();
    for line in doc.lines() {
        if line.starts_with('#') {
            inside = line.contains(heading);
            continue;
        }
        if !inside {
            continue;
        }
        if let Some(rest) = line.strip_prefix("| `") {
            if let Some(end) = rest.find("` |") {
                fields.insert(rest[..end].to_string());
            }
        }
    }
    fields
}

#[test]
fn every_json_field_is_documented_and_every_documented_field_exists() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).expect("docs/metrics.md");
    let p = install(true, 1);
    p.run(input(0.0)).expect("run");
    let m = p.metrics_json().expect("metrics");
    let top: BTreeSet<String> = m.as_object().expect("object").keys().cloned().collect();
    let per_node: BTreeSet<String> = node(&m, "spin").as_object().expect("object").keys().cloned().collect();
    assert_eq!(top, documented_fields(&doc, "Pipeline document"), "pipeline fields vs docs/metrics.md");
    assert_eq!(per_node, documented_fields(&doc, "Node entry"), "node_metrics fields vs docs/metrics.md");
    // With metrics off the document has the same fields.
    let off = install(false, 1).metrics_json().expect("metrics");
    assert_eq!(off.as_object().expect("object").keys().cloned().collect::<BTreeSet<_>>(), top);
}
