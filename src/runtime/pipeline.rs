//! An installed pipeline: the handle callers submit runs through, and the state its operators
//! share with it (the input queue, the table of runs in flight, per-node statistics).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use hdrhistogram::Histogram;
use timely::scheduling::SyncActivator;

use crate::data::Payload;
use crate::error::{Error, NodeError};
use crate::graph::Graph;
use crate::metrics::{NodeStats, WorkerStats};
use crate::runtime::dataflow::Flow;
use crate::runtime::breaker::Breaker;
use crate::runtime::lanes::Lanes;
use crate::runtime::pool::WorkerPool;
use crate::runtime::reply::ReplySlot;
use crate::runtime::retry::{Clock, RetrySettings};

/// What one run (or one item of a batch) is given.
#[derive(Clone, Debug)]
pub enum RunInput {
    /// The same payload for every source node.
    All(Payload),
    /// One payload per source node, keyed by node id.
    Named(BTreeMap<String, Payload>),
}

impl From<Payload> for RunInput {
    fn from(p: Payload) -> Self {
        RunInput::All(p)
    }
}

impl From<crate::data::AudioBuffer> for RunInput {
    fn from(a: crate::data::AudioBuffer) -> Self {
        RunInput::All(Payload::Audio(a))
    }
}

/// What one run produced: the output of every output node (the manifest's `outputs`, else the
/// sinks in manifest order), in that order.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOutput {
    pub outputs: Vec<(String, Payload)>,
}

impl RunOutput {
    /// The output of the node with this id.
    pub fn get(&self, node_id: &str) -> Option<&Payload> {
        self.outputs.iter().find(|(id, _)| id == node_id).map(|(_, p)| p)
    }
}

/// The result of one item: its outputs, or the first node error it met.
pub type ItemResult = Result<RunOutput, NodeError>;

/// Called once with every item's result when a run completes (on a worker thread: keep it short).
pub type Reply = Box<dyn FnOnce(Result<Vec<ItemResult>, Error>) + Send>;

/// One submitted run, waiting for the input operator: per source slot, the `(item, payload)` pairs.
pub(crate) struct Submission {
    pub epoch: u64,
    pub flow: Flow,
    pub per_source: Vec<Vec<(u64, Option<Payload>)>>,
    /// Entered into the table of runs in flight by the input operator, on worker 0: the caller
    /// touches only the queue, so the table's memory stays with the worker.
    pub run: PendingRun,
}

pub(crate) struct InputQueue {
    pub pending: VecDeque<Submission>,
    /// The epoch the next submission gets; the input operator's capability never passes it.
    pub next_epoch: u64,
    pub closed: bool,
}

/// A run in flight: its outputs so far, per item and sink.
pub(crate) struct PendingRun {
    pub outputs: Vec<Vec<Option<Payload>>>,
    pub errors: Vec<Option<NodeError>>,
    pub reply: Option<Reply>,
    pub started: Option<Instant>,
    /// Per item, the collected nodes (see `Shared::collected`) that have not delivered it yet.
    pub awaited: Vec<u32>,
    /// Items neither delivered by every sink nor failed. At zero the run is complete before
    /// its epoch's frontier has moved on (see `Executor::deliver` in dataflow.rs).
    pub unsettled: usize,
    /// The work its items hold on their workers' lanes, per item (lane, weight), given back as
    /// each item settles (see lanes.rs).
    held: Option<(Arc<Lanes>, Vec<(u32, u64)>)>,
}

impl PendingRun {
    pub fn new(items: usize, sinks: usize, reply: Reply, started: Option<Instant>) -> PendingRun {
        PendingRun {
            outputs: (0..items).map(|_| vec![None; sinks]).collect(),
            errors: vec![None; items],
            reply: Some(reply),
            started,
            awaited: vec![sinks as u32; items],
            unsettled: items,
            held: None,
        }
    }

    /// Notes the lane and weight each item was given, to be released as it settles.
    pub fn hold(&mut self, lanes: Arc<Lanes>, per_item: Vec<(u32, u64)>) {
        self.held = Some((lanes, per_item));
    }

    /// Releases what the items still unsettled hold: the run is ending without them (a failed
    /// upstream item left them without outputs, or the pool is failing).
    fn release_unsettled(&mut self) {
        if let Some((lanes, per_item)) = self.held.take() {
            for (item, &(lane, weight)) in per_item.iter().enumerate() {
                if !self.settled(item) {
                    lanes.release(lane, weight);
                }
            }
        }
    }

    fn settled(&self, item: usize) -> bool {
        self.awaited[item] == 0 || self.errors[item].is_some()
    }

    /// Applies `change` to one item and counts it settled if that settled it.
    fn update(&mut self, item: usize, change: impl FnOnce(&mut PendingRun)) {
        let before = self.settled(item);
        change(self);
        if !before && self.settled(item) {
            self.unsettled -= 1;
            if let Some((lanes, per_item)) = &self.held {
                let (lane, weight) = per_item[item];
                lanes.release(lane, weight);
            }
        }
    }

    /// Whether every item has every sink's output or an error.
    pub fn is_settled(&self) -> bool {
        self.unsettled == 0
    }

    /// Stores what a sink delivered for one item (a session's closing record may carry nothing).
    /// Items the run does not have are ignored.
    pub fn deliver(&mut self, item: u64, sink_slot: usize, payload: Option<Payload>) {
        let item = item as usize;
        if item < self.outputs.len() && sink_slot < self.outputs[item].len() {
            self.update(item, |run| {
                run.outputs[item][sink_slot] = payload;
                run.awaited[item] = run.awaited[item].saturating_sub(1);
            });
        }
    }

    /// Records the first error an item meets; later ones (other branches) are dropped.
    pub fn fail(&mut self, item: u64, error: NodeError) {
        let item = item as usize;
        if item < self.errors.len() && self.errors[item].is_none() {
            self.update(item, |run| run.errors[item] = Some(error));
        }
    }
}

/// What the pipeline's operators (on every worker) and its handle share.
pub(crate) struct Shared {
    pub id: u64,
    pub graph: Arc<Graph>,
    /// Node indices of the source nodes, manifest order.
    pub sources: Vec<usize>,
    /// Node indices of the sink nodes, manifest order.
    pub sinks: Vec<usize>,
    /// The nodes each run collects a result from, by slot: first the run's outputs (the graph's
    /// `output_nodes`, in order), then the sinks that are not outputs. A run waits for every
    /// one of them (so it still reports a failing sink's error) but returns only the first
    /// `returned`.
    pub collected: Vec<usize>,
    /// How many of `collected` a run returns.
    pub returned: usize,
    pub queue: Mutex<InputQueue>,
    /// Worker 0's input operator, woken when a run is queued.
    pub activator: OnceLock<SyncActivator>,
    pub runs: Mutex<HashMap<u64, PendingRun>>,
    pub metrics: bool,
    /// The id the next streaming session gets.
    pub next_session: AtomicU64,
    /// The pool spans processes: runs live only on process 0, so node errors are queued here and
    /// travel to worker 0 through the dataflow (see `dataflow::forward_to_first`).
    pub cross_process: bool,
    /// Outstanding work per worker, when whole items are balanced over several workers of one
    /// process (see lanes.rs); `None` for one worker or a process group.
    pub lanes: Option<Arc<Lanes>>,
    pub queued_errors: Mutex<Vec<(u64, u64, NodeError)>>,
    /// Time for retry delays and breaker cooldowns (a fake one in tests).
    pub clock: Arc<dyn Clock>,
    /// Each node's effective retry settings, by node index.
    pub retry: Vec<RetrySettings>,
    /// Each node's circuit breaker, shared by its instances on every worker, by node index.
    pub breakers: Vec<Arc<Breaker>>,
    /// Node operators that may hold items waiting for a retry: woken on close so that those
    /// items fail at once instead of keeping the dataflow alive until their delay ends.
    pub retry_wakers: Mutex<Vec<SyncActivator>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere; the data is still consistent for our use.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn new(id: u64, graph: Graph, clock: Arc<dyn Clock>) -> Shared {
        let retry = graph.nodes.iter().map(|n| RetrySettings::for_node(&graph.config, n)).collect();
        let breakers = graph.nodes.iter().map(|n| Arc::new(Breaker::for_node(&graph.config, n))).collect();
        let sources: Vec<usize> = graph.sources().collect();
        let sinks: Vec<usize> = graph.sinks().collect();
        let outputs = graph.output_nodes();
        let returned = outputs.len();
        let collected: Vec<usize> = outputs.iter().chain(sinks.iter().filter(|s| !outputs.contains(s))).copied().collect();
        let metrics = graph.config.enable_metrics;
        Shared {
            id,
            graph: Arc::new(graph),
            sources,
            sinks,
            collected,
            returned,
            queue: Mutex::new(InputQueue { pending: VecDeque::new(), next_epoch: 0, closed: false }),
            activator: OnceLock::new(),
            runs: Mutex::new(HashMap::new()),
            metrics,
            next_session: AtomicU64::new(0),
            cross_process: false,
            lanes: None,
            queued_errors: Mutex::new(Vec::new()),
            clock,
            retry,
            breakers,
            retry_wakers: Mutex::new(Vec::new()),
        }
    }

    /// Whether the pipeline has been closed (its handle dropped).
    pub fn is_closed(&self) -> bool {
        self.lock_queue().closed
    }

    pub fn lock_queue(&self) -> MutexGuard<'_, InputQueue> {
        lock(&self.queue)
    }

    pub fn lock_runs(&self) -> MutexGuard<'_, HashMap<u64, PendingRun>> {
        lock(&self.runs)
    }

    /// Records the first error an item meets; later ones (other branches) are dropped.
    pub fn record_error(&self, epoch: u64, item: u64, error: NodeError) {
        if self.cross_process {
            lock(&self.queued_errors).push((epoch, item, error));
            return;
        }
        if let Some(run) = self.lock_runs().get_mut(&epoch) {
            run.fail(item, error);
        }
    }

    /// Turns a finished run into its reply and calls it; records its latency into `runs`
    /// (worker 0's own record) when metrics are on.
    pub fn finish(&self, epoch: u64, mut run: PendingRun, runs: &mut NodeStats) {
        run.release_unsettled();
        let PendingRun { outputs, errors, reply, started, .. } = run;
        let items = outputs.len();
        let results: Vec<ItemResult> = outputs
            .into_iter()
            .zip(errors)
            .enumerate()
            .map(|(item, (outs, err))| match err {
                Some(mut e) => {
                    e.run = Some(epoch);
                    e.item = if items > 1 { Some(item as u64) } else { None };
                    Err(e)
                }
                None => {
                    let outputs = self
                        .collected
                        .iter()
                        .take(self.returned)
                        .zip(outs)
                        .filter_map(|(&n, p)| p.map(|p| (self.graph.nodes[n].id.clone(), p)))
                        .collect();
                    Ok(RunOutput { outputs })
                }
            })
            .collect();
        if let Some(t) = started {
            // Every item of a batch is delivered when the batch completes: each counts as one
            // execution with the batch's latency, so total = successful + failed.
            let failed = results.iter().filter(|r| r.is_err()).count() as u64;
            runs.record_items(t.elapsed(), results.len() as u64, failed);
        }
        if let Some(reply) = reply {
            reply(Ok(results));
        }
    }

    /// Fails every run in flight or still queued (the pool died).
    pub fn fail_all(&self, message: &str) {
        let queued: Vec<PendingRun> = self.lock_queue().pending.drain(..).map(|s| s.run).collect();
        let runs: Vec<PendingRun> = queued.into_iter().chain(self.lock_runs().drain().map(|(_, r)| r)).collect();
        for run in runs {
            if let Some(reply) = run.reply {
                reply(Err(Error::Engine(message.to_string())));
            }
        }
    }

    /// Stops accepting runs; the input operator releases its capabilities and the dataflow ends.
    pub fn close(&self) {
        self.lock_queue().closed = true;
        if let Some(a) = self.activator.get() {
            let _ = a.activate();
        }
        for w in lock(&self.retry_wakers).iter() {
            let _ = w.activate();
        }
    }

    /// Splits one item's input over the source nodes.
    fn route(&self, input: RunInput) -> Result<Vec<Payload>, Error> {
        match input {
            RunInput::All(p) => {
                let n = self.sources.len();
                let mut v = Vec::with_capacity(n);
                for _ in 1..n {
                    v.push(p.clone());
                }
                v.push(p);
                Ok(v)
            }
            RunInput::Named(mut map) => {
                let mut v = Vec::with_capacity(self.sources.len());
                for &s in &self.sources {
                    let id = &self.graph.nodes[s].id;
                    match map.remove(id) {
                        Some(p) => v.push(p),
                        None => {
                            return Err(Error::Input(format!(
                                "no input named '{id}': every source node needs one (source nodes: {})",
                                self.source_names()
                            )))
                        }
                    }
                }
                if let Some(extra) = map.keys().next() {
                    return Err(Error::Input(format!(
                        "input named '{extra}' matches no source node (source nodes: {})",
                        self.source_names()
                    )));
                }
                Ok(v)
            }
        }
    }

    fn source_names(&self) -> String {
        self.sources.iter().map(|&s| self.graph.nodes[s].id.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// A pipeline installed on a worker pool. Runs may be submitted from any number of threads.
/// Dropping the handle uninstalls the dataflow.
pub struct Pipeline {
    pub(crate) shared: Arc<Shared>,
    pub(crate) pool: Arc<WorkerPool>,
}

impl Pipeline {
    pub fn graph(&self) -> &Graph {
        &self.shared.graph
    }

    pub fn workers(&self) -> usize {
        self.pool.workers()
    }

    /// Submits a batch of items as one epoch; `reply` is called when timely's progress tracking
    /// shows every operator is done with that epoch.
    pub fn submit(&self, items: Vec<RunInput>, reply: Reply) -> Result<(), Error> {
        // The input operator gives each item its lane.
        submit_flow(&self.shared, &self.pool, Flow::Whole { lane: 0 }, items.into_iter().map(Some).collect(), reply)
    }

    /// Runs a batch and waits for it; each item gets its own result, in input order.
    pub fn run_batch(&self, items: Vec<RunInput>) -> Result<Vec<ItemResult>, Error> {
        self.wait(self.start_batch(items)?)
    }

    /// Hands a batch to the workers as one epoch and returns at once; [`wait`](Self::wait), on
    /// the same thread, collects its results. Several batches may be started before waiting.
    pub fn start_batch(&self, items: Vec<RunInput>) -> Result<Started, Error> {
        let (slot, reply) = blocking_reply();
        self.submit(items, reply)?;
        Ok(Started { slot })
    }

    /// Waits for a started batch; each item gets its own result, in input order.
    pub fn wait(&self, batch: Started) -> Result<Vec<ItemResult>, Error> {
        self.pool.wait_slot(&batch.slot)?
    }

    /// Runs one input and waits for its outputs.
    pub fn run(&self, input: impl Into<RunInput>) -> Result<RunOutput, Error> {
        single(self.run_batch(vec![input.into()])?)
    }

    /// Opens a streaming session: chunks pushed into it flow through the same installed
    /// dataflow, and its stateful nodes keep one instance per session on the worker the
    /// session's id routes to.
    pub fn session(&self) -> Session {
        let id = self.shared.next_session.fetch_add(1, Ordering::Relaxed);
        Session { shared: Arc::clone(&self.shared), pool: Arc::clone(&self.pool), id, ended: false }
    }

    /// Every worker's own records for this pipeline, by worker index (copied on the workers).
    pub fn stats_per_worker(&self) -> Result<Vec<WorkerStats>, Error> {
        self.pool.snapshot(self.shared.id, self.shared.graph.nodes.len())
    }

    /// Per-node statistics merged over workers, in manifest order.
    pub fn node_stats(&self) -> Result<Vec<(String, NodeStats)>, Error> {
        let merged = WorkerStats::merge_all(&self.stats_per_worker()?, self.shared.graph.nodes.len());
        Ok(self.shared.graph.nodes.iter().map(|n| n.id.clone()).zip(merged.nodes).collect())
    }

    /// End-to-end run latencies (nanoseconds), when metrics are enabled.
    pub fn run_latency(&self) -> Result<Histogram<u64>, Error> {
        let merged = WorkerStats::merge_all(&self.stats_per_worker()?, self.shared.graph.nodes.len());
        Ok(merged.runs.histogram)
    }

    /// Zeroes every worker's records for this pipeline.
    pub fn reset_stats(&self) -> Result<(), Error> {
        self.shared.breakers.iter().for_each(|b| b.reset_counters());
        self.pool.reset_stats(self.shared.id)
    }

    /// The circuit breaker of the node with this id (its state and counters).
    pub fn breaker(&self, node_id: &str) -> Option<&Breaker> {
        self.shared.graph.node_index(node_id).map(|i| &*self.shared.breakers[i])
    }
}

/// Queues one epoch: per item, the input for every source node (`None`: a session's end).
fn submit_flow(shared: &Shared, pool: &WorkerPool, flow: Flow, items: Vec<Option<RunInput>>, reply: Reply) -> Result<(), Error> {
    pool.check_alive()?;
    let n_sources = shared.sources.len();
    let mut per_source: Vec<Vec<(u64, Option<Payload>)>> = (0..n_sources).map(|_| Vec::with_capacity(items.len())).collect();
    let n_items = items.len();
    for (item, input) in items.into_iter().enumerate() {
        match input {
            Some(input) => {
                for (slot, p) in shared.route(input)?.into_iter().enumerate() {
                    per_source[slot].push((item as u64, Some(p)));
                }
            }
            None => per_source.iter_mut().for_each(|v| v.push((item as u64, None))),
        }
    }
    let run = PendingRun::new(n_items, shared.collected.len(), reply, if shared.metrics { Some(Instant::now()) } else { None });
    {
        let mut q = shared.lock_queue();
        if q.closed {
            return Err(Error::Engine("the pipeline has been closed".into()));
        }
        let epoch = q.next_epoch;
        q.next_epoch += 1;
        q.pending.push_back(Submission { epoch, flow, per_source, run });
    }
    match shared.activator.get().map(|a| a.activate()) {
        Some(Ok(())) => Ok(()),
        _ => {
            shared.fail_all("the worker pool is no longer running");
            Err(Error::Engine("the worker pool is no longer running".into()))
        }
    }
}

/// A reply that fills a slot the calling thread then waits on (`WorkerPool::wait_slot`).
fn blocking_reply() -> (Arc<ReplySlot<Result<Vec<ItemResult>, Error>>>, Reply) {
    let slot = ReplySlot::for_current_thread();
    let filler = Arc::clone(&slot);
    (slot, Box::new(move |r| filler.fill(r)))
}

/// A batch handed to the workers by [`Pipeline::start_batch`], not yet waited for.
pub struct Started {
    slot: Arc<ReplySlot<Result<Vec<ItemResult>, Error>>>,
}

/// The one item of a single-item run.
fn single(mut results: Vec<ItemResult>) -> Result<RunOutput, Error> {
    match results.pop() {
        Some(r) => r.map_err(Error::Node),
        None => Err(Error::Engine("a run completed without a result".into())),
    }
}

/// A streaming session on an installed pipeline: each `push` is one epoch carrying one chunk,
/// and the outputs that chunk completed come back; `close` flushes what stateful nodes still hold
/// (a resampler's tail, a VAD's open segment) and drops the session's node instances.
///
/// Chunks of one session are processed in the order they were pushed: they enter the dataflow
/// in epoch order on worker 0 and travel channels that keep order to the one worker the session
/// is routed to. Dropping an open session ends it without waiting.
pub struct Session {
    shared: Arc<Shared>,
    pool: Arc<WorkerPool>,
    id: u64,
    ended: bool,
}

impl Session {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether `close` has been called.
    pub fn is_closed(&self) -> bool {
        self.ended
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.ended {
            return Err(Error::Input(format!("streaming session {} is closed", self.id)));
        }
        Ok(())
    }

    /// Queues one chunk; `reply` gets its outputs (one item) when the chunk's epoch completes.
    pub fn submit_push(&self, input: impl Into<RunInput>, reply: Reply) -> Result<(), Error> {
        self.check_open()?;
        submit_flow(&self.shared, &self.pool, Flow::Chunk { session: self.id }, vec![Some(input.into())], reply)
    }

    /// Queues the session's end; `reply` gets the flushed outputs. Later pushes are errors.
    pub fn submit_close(&mut self, reply: Reply) -> Result<(), Error> {
        self.check_open()?;
        self.ended = true;
        submit_flow(&self.shared, &self.pool, Flow::End { session: self.id }, vec![None], reply)
    }

    /// Pushes one chunk and waits for the outputs it completed.
    pub fn push(&self, input: impl Into<RunInput>) -> Result<RunOutput, Error> {
        let (slot, reply) = blocking_reply();
        self.submit_push(input, reply)?;
        single(self.pool.wait_slot(&slot)??)
    }

    /// Ends the session and waits for the flushed outputs.
    pub fn close(&mut self) -> Result<RunOutput, Error> {
        let (slot, reply) = blocking_reply();
        self.submit_close(reply)?;
        single(self.pool.wait_slot(&slot)??)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.ended {
            // Frees the session's node instances; nobody waits for the flushed outputs.
            let _ = self.submit_close(Box::new(|_| {}));
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shared.close();
        self.pool.forget(self.shared.id);
    }
}

impl Pipeline {
    /// Everything measured so far as the metrics JSON document (see docs/metrics.md).
    pub fn metrics_json(&self) -> Result<serde_json::Value, Error> {
        let shared = &self.shared;
        let merged = WorkerStats::merge_all(&self.stats_per_worker()?, shared.graph.nodes.len());
        let nodes: Vec<serde_json::Value> = shared
            .graph
            .nodes
            .iter()
            .zip(&merged.nodes)
            .zip(&shared.breakers)
            .map(|((n, s), b)| {
                let mut doc = crate::metrics::node_json(&n.id, &n.node_type.name, s);
                add_reliability(&mut doc, b);
                doc
            })
            .collect();
        let executions: u64 = merged.nodes.iter().map(|s| s.executions).sum();
        let runs = merged.runs;
        let n = runs.executions;
        let total_ns = runs.total_ns as f64;
        let per_run = |x: f64| if n == 0 { 0.0 } else { x };
        let peak = crate::metrics::peak_memory_bytes();
        // Each node execution and each completed item was recorded once.
        let overhead_us = if shared.metrics { crate::metrics::record_cost_ns() * (executions + n) as f64 / 1000.0 } else { 0.0 };
        Ok(serde_json::json!({
            "pipeline_id": format!("pipeline-{}", shared.id),
            "runtime": "rust",
            "metrics_enabled": shared.metrics,
            "workers": self.pool.workers(),
            "total_executions": n,
            "successful_executions": runs.successes,
            "failed_executions": runs.errors,
            "total_duration_us": total_ns / 1000.0,
            "total_duration_ms": total_ns / 1e6,
            "avg_duration_us": per_run(total_ns / 1000.0 / n.max(1) as f64),
            "min_duration_us": per_run(runs.min_ns as f64 / 1000.0),
            "max_duration_us": per_run(runs.max_ns as f64 / 1000.0),
            "latency_p50_us": runs.quantile_us(0.5),
            "latency_p90_us": runs.quantile_us(0.9),
            "latency_p99_us": runs.quantile_us(0.99),
            "latency_p999_us": runs.quantile_us(0.999),
            "peak_memory_bytes": peak,
            "peak_memory_mb": peak as f64 / (1024.0 * 1024.0),
            "metrics_overhead_us": overhead_us,
            "node_metrics": nodes,
        }))
    }
}

/// Adds a node's retry count and circuit-breaker state to its metrics entry (docs/reliability.md).
fn add_reliability(doc: &mut serde_json::Value, breaker: &Breaker) {
    let b = breaker.snapshot();
    if let serde_json::Value::Object(m) = doc {
        m.insert("retry_count".into(), b.retries.into());
        m.insert("circuit_state".into(), b.state.name().into());
        m.insert("circuit_state_code".into(), b.state.code().into());
        m.insert("circuit_consecutive_failures".into(), b.consecutive_failures.into());
        m.insert("circuit_opens".into(), b.opens.into());
        m.insert("circuit_rejections".into(), b.rejections.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::AudioBuffer;

    fn audio() -> Option<Payload> {
        Some(Payload::Audio(AudioBuffer::mono_f32(vec![0.5; 4], 16_000)))
    }

    #[test]
    fn a_run_settles_when_every_item_has_every_sinks_output_or_an_error() {
        // 3 items, 2 sinks: item 0 gets both outputs, item 1 one output and then an error, item 2
        // a closing record that carries nothing plus one output.
        let mut run = PendingRun::new(3, 2, Box::new(|_| {}), None);
        run.deliver(0, 0, audio());
        assert!(!run.is_settled());
        run.deliver(0, 1, audio());
        assert_eq!(run.unsettled, 2, "item 0 is complete");
        run.deliver(1, 0, audio());
        run.fail(1, NodeError::permanent("branch failed"));
        run.fail(1, NodeError::permanent("a second error is dropped"));
        assert_eq!(run.unsettled, 1, "item 1 failed: nothing more is awaited for it");
        assert_eq!(run.errors[1].as_ref().unwrap().message, "branch failed");
        run.deliver(2, 0, None);
        assert!(!run.is_settled(), "item 2 still awaits its second sink");
        run.deliver(2, 1, audio());
        assert!(run.is_settled());
        assert_eq!(run.outputs[2][0], None, "a closing record without payload stores nothing");
        // Items the run does not have are ignored, not counted.
        run.deliver(9, 0, audio());
        run.fail(9, NodeError::permanent("no such item"));
        assert_eq!(run.unsettled, 0);
    }
}
