//! Per-node execution statistics recorded by the operators: counts, durations and an HDR histogram
//! of latencies. Each (node, worker) pair has its own record, merged only when read.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Largest latency the histograms track without clamping: one hour, in nanoseconds.
pub const MAX_TRACKED_NS: u64 = 3_600_000_000_000;

fn new_histogram() -> Histogram<u64> {
    // `Histogram::new(3)` starts at range [1, 2] and `saturating_record` never grows it: give bounds.
    Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).expect("static histogram bounds are valid")
}

/// What one node recorded on one worker.
#[derive(Clone, Debug)]
pub struct NodeStats {
    pub executions: u64,
    pub successes: u64,
    pub errors: u64,
    pub items: u64,
    pub samples: u64,
    pub total_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    pub histogram: Histogram<u64>,
}

impl Default for NodeStats {
    fn default() -> Self {
        NodeStats {
            executions: 0,
            successes: 0,
            errors: 0,
            items: 0,
            samples: 0,
            total_ns: 0,
            min_ns: u64::MAX,
            max_ns: 0,
            histogram: new_histogram(),
        }
    }
}

impl NodeStats {
    /// Records one execution that took `elapsed`.
    pub fn record(&mut self, elapsed: Duration, ok: bool, samples: u64) {
        let ns = (elapsed.as_nanos() as u64).clamp(1, MAX_TRACKED_NS);
        self.executions += 1;
        if ok {
            self.successes += 1;
        } else {
            self.errors += 1;
        }
        self.items += 1;
        self.samples += samples;
        self.total_ns += ns;
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
        self.histogram.saturating_record(ns);
    }

    /// Records `items` executions that each took `elapsed` (the items of one batch), `failed`
    /// of them with an error.
    pub fn record_items(&mut self, elapsed: Duration, items: u64, failed: u64) {
        if items == 0 {
            return;
        }
        let ns = (elapsed.as_nanos() as u64).clamp(1, MAX_TRACKED_NS);
        self.executions += items;
        self.items += items;
        self.errors += failed.min(items);
        self.successes += items - failed.min(items);
        self.total_ns += ns * items;
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
        let _ = self.histogram.record_n(ns, items);
    }

    /// A latency percentile in microseconds. The histogram reports the top of a value's bucket
    /// (3 significant digits), which can pass the exact extremes: clamp to them.
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.executions == 0 {
            return 0.0;
        }
        us(self.histogram.value_at_quantile(q).clamp(self.min_ns, self.max_ns))
    }

    /// Adds another record into this one (merging workers).
    pub fn merge(&mut self, other: &NodeStats) {
        self.executions += other.executions;
        self.successes += other.successes;
        self.errors += other.errors;
        self.items += other.items;
        self.samples += other.samples;
        self.total_ns += other.total_ns;
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.histogram.add(&other.histogram);
    }
}

/// What one worker recorded for one pipeline: one record per node (graph index) and, on
/// worker 0 where runs complete, the runs' end-to-end latencies. The worker owns it outright: its
/// operators record without locks or atomics, and readers get a copy through the pool's control
/// channel ([`crate::runtime::WorkerPool`]), merged when read.
#[derive(Clone, Debug, Default)]
pub struct WorkerStats {
    pub nodes: Vec<NodeStats>,
    pub runs: NodeStats,
}

impl WorkerStats {
    pub fn new(nodes: usize) -> WorkerStats {
        WorkerStats { nodes: vec![NodeStats::default(); nodes], runs: NodeStats::default() }
    }

    /// Every worker's records added up, node by node.
    pub fn merge_all(workers: &[WorkerStats], nodes: usize) -> WorkerStats {
        let mut total = WorkerStats::new(nodes);
        for w in workers {
            for (t, n) in total.nodes.iter_mut().zip(&w.nodes) {
                t.merge(n);
            }
            total.runs.merge(&w.runs);
        }
        total
    }
}

/// Nanoseconds to microseconds, as a float with nanosecond precision.
fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// A node's merged record as the metrics JSON object (field names of the original SDK, plus
/// percentiles from the histogram).
pub fn node_json(node_id: &str, node_type: &str, s: &NodeStats) -> serde_json::Value {
    let q = |p: f64| s.quantile_us(p);
    serde_json::json!({
        "node_id": node_id,
        "node_type": node_type,
        "execution_count": s.executions,
        "success_count": s.successes,
        "error_count": s.errors,
        "success_rate": if s.executions == 0 { 0.0 } else { s.successes as f64 / s.executions as f64 },
        "total_duration_us": us(s.total_ns),
        "avg_duration_us": if s.executions == 0 { 0.0 } else { us(s.total_ns) / s.executions as f64 },
        "min_duration_us": if s.executions == 0 { 0.0 } else { us(s.min_ns) },
        "max_duration_us": us(s.max_ns),
        "p50_us": q(0.5),
        "p90_us": q(0.9),
        "p99_us": q(0.99),
        "p999_us": q(0.999),
        "items_processed": s.items,
        "samples_processed": s.samples,
    })
}

/// The process's peak resident set size in bytes (Linux `VmHWM`), or 0 where unknown.
pub fn peak_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// What recording one execution costs (two clock reads and a histogram update), measured once.
pub fn record_cost_ns() -> f64 {
    static COST: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *COST.get_or_init(|| {
        let mut stats = NodeStats::default();
        let n = 20_000u32;
        let t = std::time::Instant::now();
        for _ in 0..n {
            let start = std::time::Instant::now();
            stats.record(start.elapsed(), true, 0);
        }
        t.elapsed().as_nanos() as f64 / n as f64
    })
}
