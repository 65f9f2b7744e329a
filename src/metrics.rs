//! Per-node execution statistics recorded by the operators: counts, durations and an HDR histogram
//! of latencies. Each (node, worker) pair has its own record, merged only when read.

use std::sync::Mutex;
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

/// One record per worker for one node; each worker locks only its own (uncontended) slot.
#[derive(Debug)]
pub struct PerWorker {
    slots: Vec<Mutex<NodeStats>>,
}

impl PerWorker {
    pub fn new(workers: usize) -> PerWorker {
        PerWorker { slots: (0..workers).map(|_| Mutex::new(NodeStats::default())).collect() }
    }

    pub fn slot(&self, worker: usize) -> &Mutex<NodeStats> {
        &self.slots[worker % self.slots.len()]
    }

    /// All workers' records merged.
    pub fn merged(&self) -> NodeStats {
        let mut total = NodeStats::default();
        for s in &self.slots {
            total.merge(&s.lock().unwrap_or_else(|e| e.into_inner()));
        }
        total
    }

    pub fn reset(&self) {
        for s in &self.slots {
            *s.lock().unwrap_or_else(|e| e.into_inner()) = NodeStats::default();
        }
    }
}
