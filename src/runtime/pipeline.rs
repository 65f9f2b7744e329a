//! Run handles, the top of the runtime stack: an installed pipeline ([`Pipeline`]) that runs are
//! submitted through from any thread, the caller's wait for a run's reply, and streaming sessions
//! ([`Session`]). Installing a graph on a pool lives here too (`WorkerPool::install*`): the pool
//! builds dataflows, the handle is what a caller holds. The batch scheduler (batch.rs) builds on
//! these handles.

use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::error::Error;
use crate::graph::Graph;
use crate::metrics::{NodeStats, WorkerStats};
use crate::nodes::Registry;
use crate::runtime::breaker::Breaker;
use crate::runtime::installed::{Installed, RunIds};
use crate::runtime::pool::WorkerPool;
use crate::runtime::reply::ReplySlot;
use crate::runtime::retry::{Clock, RealClock};
use crate::runtime::runner::{Factories, NodeTable};
use crate::runtime::sessions::InlineSession;
pub use crate::runtime::runs::{CANCEL_OPERATION, ItemHandler, ItemInput, ItemResult, KeyedIo, Loader, Reply, RunInput, RunOutput, LOAD_OPERATION};

impl WorkerPool {
    /// Compiles `graph` (its node types from [`Registry::builtin`]) into a dataflow on every
    /// worker and returns its handle. Fails, uninstalling it again, if any node cannot be
    /// constructed.
    pub fn install(self: &Arc<Self>, graph: Graph) -> Result<Pipeline, Error> {
        self.install_with_clock(graph, Arc::new(RealClock::new()))
    }

    /// As [`install`](Self::install), with the clock retry delays and breaker cooldowns are
    /// measured on (a [`FakeClock`](crate::runtime::FakeClock) in tests).
    pub fn install_with_clock(self: &Arc<Self>, graph: Graph, clock: Arc<dyn Clock>) -> Result<Pipeline, Error> {
        self.install_with(graph, &Registry::builtin(), clock)
    }

    /// As [`install_with_clock`](Self::install_with_clock), building each node with its type's
    /// factory from `registry`.
    pub fn install_with(self: &Arc<Self>, graph: Graph, registry: &Registry, clock: Arc<dyn Clock>) -> Result<Pipeline, Error> {
        let factories = Factories::resolve(&graph, registry)?;
        self.install_factories(graph, factories, clock)
    }

    /// Installs `graph` with these factories (one per node).
    pub fn install_factories(self: &Arc<Self>, graph: Graph, factories: Factories, clock: Arc<dyn Clock>) -> Result<Pipeline, Error> {
        self.install_parts(graph, factories, clock, None)
    }

    /// As [`install`](Self::install), with this process's loader and finisher of keyed items
    /// ([`ItemInput::Keyed`]). In a process group every process installs the pipeline with its
    /// own: given at install, before any item can reach this process's workers.
    pub fn install_keyed(self: &Arc<Self>, graph: Graph, io: KeyedIo) -> Result<Pipeline, Error> {
        let factories = Factories::resolve(&graph, &Registry::builtin())?;
        self.install_parts(graph, factories, Arc::new(RealClock::new()), Some(io))
    }

    fn install_parts(self: &Arc<Self>, graph: Graph, factories: Factories, clock: Arc<dyn Clock>, keyed: Option<KeyedIo>) -> Result<Pipeline, Error> {
        self.check_alive()?;
        let id = self.next_pipeline_id();
        // The pool's placement (lanes.rs): items taken by free workers, or placed by outstanding
        // work where the workers outnumber the CPUs, or by index where `REMOTEMEDIA_BALANCE=0`
        // asked for it (for comparisons).
        let nodes = NodeTable::new(graph, factories, clock, id);
        let installed = Arc::new(Installed::new(id, nodes, self.workers(), self.process(), self.processes(), self.placement, keyed));
        // Dropping the handle closes the dataflow on every worker, also when building it failed.
        let pipeline = Pipeline { installed, pool: Arc::clone(self), inline: Executors::default() };
        self.install_dataflow(&pipeline.installed)?;
        Ok(pipeline)
    }
}

/// A pipeline installed on a worker pool. Runs may be submitted from any number of threads.
/// Dropping the handle uninstalls the dataflow.
///
/// A blocking run (`run`, and `run_here` for callers that wait in their own way) runs on the
/// calling thread where it can (see [`runs_inline`](Self::runs_inline)), through an executor
/// taken from this pipeline's free list: the caller waits for the outputs anyway, so it computes
/// them, with no queueing, no worker to wake and no reply to hand back. On 2 cores that hop cost
/// ~6-10 µs per call, as much as the main job's kernels on 0.01 s of audio.
pub struct Pipeline {
    pub(crate) installed: Arc<Installed>,
    pub(crate) pool: Arc<WorkerPool>,
    /// Executors of whole runs on callers' threads, idle, each with its nodes built on its
    /// first run and kept: one per thread that ran at once, at most.
    inline: Executors,
}

/// The free list of a pipeline's idle executors: one in a lock-free slot (the common case, one
/// thread running at a time), any more behind a lock. Why: taking and putting back through the
/// lock alone was two lock round trips per run, ~30 ns of a ~8 µs run on 0.01 s of audio.
#[derive(Default)]
struct Executors {
    /// An idle executor (from `Box::into_raw`), or null.
    idle: AtomicPtr<InlineSession>,
    more: Mutex<Vec<Box<InlineSession>>>,
}

impl Executors {
    fn take(&self) -> Option<Box<InlineSession>> {
        let p = self.idle.swap(std::ptr::null_mut(), Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: a non-null pointer in the slot came from `Box::into_raw` in `put`, and the
            // swap took it out, so this is its only owner.
            return Some(unsafe { Box::from_raw(p) });
        }
        self.lock().pop()
    }

    fn put(&self, e: Box<InlineSession>) {
        let p = Box::into_raw(e);
        if self.idle.compare_exchange(std::ptr::null_mut(), p, Ordering::Release, Ordering::Relaxed).is_err() {
            // SAFETY: the slot refused `p`, which is still ours alone, from `Box::into_raw` above.
            self.lock().push(unsafe { Box::from_raw(p) });
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Box<InlineSession>>> {
        self.more.lock().unwrap_or_else(|e| e.into_inner())
    }
}

// The slot hands executors from thread to thread, as the lock's `Vec` did: they must be `Send`.
const _: () = {
    const fn send<T: Send>() {}
    send::<InlineSession>()
};

impl Drop for Executors {
    fn drop(&mut self) {
        let p = *self.idle.get_mut();
        if !p.is_null() {
            // SAFETY: as in `take`; nothing else can reach the slot while it is dropped.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

impl Pipeline {
    pub fn graph(&self) -> &Graph {
        self.installed.graph()
    }

    pub fn workers(&self) -> usize {
        self.pool.workers()
    }

    /// The pool this pipeline is installed on.
    pub fn pool(&self) -> &Arc<WorkerPool> {
        &self.pool
    }

    /// Submits items as one epoch; `reply` gets every item's result, in input order, once all
    /// are settled.
    pub fn submit(&self, items: Vec<RunInput>, reply: Reply) -> Result<(), Error> {
        self.submit_items(items.into_iter().map(ItemInput::Ready).collect(), None, reply).map(|_| ())
    }

    /// Submits items as one epoch; `on_item`, if given, gets each item's index and result as it
    /// settles, on the worker that settled it, and `reply` is called once all are (with the
    /// results not handed to `on_item`). Returns the run's id.
    pub fn submit_items(&self, items: Vec<ItemInput>, on_item: Option<ItemHandler>, reply: Reply) -> Result<u64, Error> {
        self.pool.check_alive()?;
        self.installed.submit(items, reply, on_item, self.installed.nodes.metrics)
    }

    /// Runs one input and waits for its outputs: on the calling thread where it can (see
    /// [`runs_inline`](Self::runs_inline)), else on the workers.
    pub fn run(&self, input: impl Into<RunInput>) -> Result<RunOutput, Error> {
        let input = match self.run_here(input.into(), &mut |d| {
            std::thread::sleep(d);
            true
        }) {
            Ok(result) => return result,
            Err(input) => input,
        };
        self.pool.check_not_own_worker()?;
        let (slot, reply) = blocking_reply();
        self.submit(vec![input], reply)?;
        single(wait_reply(&self.pool, &slot)??)
    }

    /// Whether a blocking run of this pipeline runs on the calling thread: nothing needs a
    /// worker's own records (metrics are off), every node is built by its type's factory (a
    /// Python node, whose factory the binding gives, takes the GIL and stays on the workers),
    /// and the pool is one process (a group's runs live on process 0 and travel its dataflow).
    pub fn runs_inline(&self) -> bool {
        let nodes = &self.installed.nodes;
        !nodes.metrics && !nodes.replaced && self.pool.processes() == 1
    }

    /// Runs one input on the calling thread, through the same node runners (breaker, retries,
    /// caught panics) in the graph's topological order, each node called with `Node::process`
    /// on an instance kept for such runs, as a worker's operator calls its own: the outputs and
    /// errors are those of a run on the workers. Gives the input back, untouched, where
    /// [`runs_inline`](Self::runs_inline) says no. `wait` waits out a retry delay (from Python:
    /// with the GIL released, looking at signals); returning `false` gives the run up, which
    /// then fails as on a pipeline closed meanwhile.
    pub fn run_here(&self, input: RunInput, wait: &mut dyn FnMut(Duration) -> bool) -> Result<Result<RunOutput, Error>, RunInput> {
        if !self.runs_inline() {
            return Err(input);
        }
        // The same refusal as on the workers, though nothing would wait here: the answer must
        // not depend on where the run happens to go.
        if let Err(e) = self.pool.check_not_own_worker().and_then(|()| self.pool.check_alive()) {
            return Ok(Err(e));
        }
        let sessions = &self.installed.sessions;
        if sessions.is_closed() {
            return Ok(Err(Error::Engine("the pipeline has been closed".into())));
        }
        // No reply: the executor returns the result to this thread (no boxed closure, no shared
        // cell to fill and read back).
        let job = match self.installed.chunk_job(0, Some(input), None, None) {
            Ok(job) => job,
            Err(e) => return Ok(Err(e)),
        };
        let taken = self.inline.take();
        let mut runner = taken.unwrap_or_else(|| Box::new(InlineSession::for_runs(Arc::clone(&self.installed.nodes), self.installed.first_worker)));
        let gave_up = std::cell::Cell::new(false);
        let got = runner.run(job, || gave_up.get() || sessions.is_closed(), &mut |d| {
            if !wait(d) {
                gave_up.set(true);
            }
        });
        self.inline.put(runner);
        Ok(got.ok_or_else(|| Error::Engine("a run completed without a result".into())).and_then(|r| r.map_err(Error::Node)))
    }

    /// Starts one run whose outputs the calling thread then waits for in steps
    /// ([`StartedRun::wait_for`]), so that it can look at signals in between (Python's Ctrl-C).
    pub fn start(&self, input: impl Into<RunInput>) -> Result<StartedRun, Error> {
        self.pool.check_not_own_worker()?;
        let (slot, reply) = blocking_reply();
        let run = self.submit_items(vec![ItemInput::Ready(input.into())], None, reply)?;
        Ok(StartedRun { slot, pool: Arc::clone(&self.pool), installed: Arc::clone(&self.installed), run, taken: false })
    }

    /// Cancels a run submitted here (by the id `submit_items` returned): its items that have not
    /// reached a node yet fail with an error whose operation is
    /// [`CANCEL_OPERATION`](crate::runtime::runs::CANCEL_OPERATION); nodes already running finish.
    pub fn cancel(&self, run: u64) {
        self.installed.runs.cancel(run);
    }

    /// Opens a streaming session: its stateful nodes keep one instance for it; its chunks run on
    /// the threads that push them, or on one worker (see [`Session`]).
    pub fn session(&self) -> Session {
        let id = self.installed.next_session.fetch_add(1, Ordering::Relaxed);
        Session { installed: Arc::clone(&self.installed), pool: Arc::clone(&self.pool), id, ended: false, mode: Mutex::new(Mode::Unsettled) }
    }

    /// Every worker's own records for this pipeline, by worker index (copied on the workers).
    pub fn stats_per_worker(&self) -> Result<Vec<WorkerStats>, Error> {
        self.pool.snapshot(self.installed.id, self.graph().nodes.len())
    }

    /// Per-node statistics merged over workers, in manifest order.
    pub fn node_stats(&self) -> Result<Vec<(String, NodeStats)>, Error> {
        let merged = WorkerStats::merge_all(&self.stats_per_worker()?, self.graph().nodes.len());
        Ok(self.graph().nodes.iter().map(|n| n.id.clone()).zip(merged.nodes).collect())
    }

    /// End-to-end run latencies (nanoseconds), when metrics are enabled.
    pub fn run_latency(&self) -> Result<Histogram<u64>, Error> {
        let merged = WorkerStats::merge_all(&self.stats_per_worker()?, self.graph().nodes.len());
        Ok(merged.runs.histogram)
    }

    /// Zeroes every worker's records for this pipeline.
    pub fn reset_stats(&self) -> Result<(), Error> {
        self.installed.nodes.breakers.iter().for_each(|b| b.reset_counters());
        self.pool.reset_stats(self.installed.id)
    }

    /// The circuit breaker of the node with this id (its state and counters).
    pub fn breaker(&self, node_id: &str) -> Option<&Breaker> {
        self.graph().node_index(node_id).map(|i| &*self.installed.nodes.breakers[i])
    }

    /// Everything measured so far as the metrics JSON document (see docs/metrics.md).
    pub fn metrics_json(&self) -> Result<serde_json::Value, Error> {
        let installed = &self.installed;
        let graph = installed.graph();
        let merged = WorkerStats::merge_all(&self.stats_per_worker()?, graph.nodes.len());
        let nodes: Vec<serde_json::Value> = graph
            .nodes
            .iter()
            .zip(&merged.nodes)
            .zip(&installed.nodes.breakers)
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
        let overhead_us = if installed.nodes.metrics { crate::metrics::record_cost_ns() * (executions + n) as f64 / 1000.0 } else { 0.0 };
        Ok(serde_json::json!({
            "pipeline_id": format!("pipeline-{}", installed.id),
            "runtime": "rust",
            "metrics_enabled": installed.nodes.metrics,
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


/// A reply that fills a slot the calling thread then waits on ([`wait_reply`]).
pub(crate) fn blocking_reply() -> (Arc<ReplySlot<Result<Vec<ItemResult>, Error>>>, Reply) {
    let slot = ReplySlot::for_current_thread();
    let filler = Arc::clone(&slot);
    (slot, Box::new(move |r| filler.fill(r)))
}

/// Waits for a reply slot to be filled (the calling thread must be the slot's waiter), failing
/// instead of hanging if the pool dies.
pub(crate) fn wait_reply<T>(pool: &WorkerPool, slot: &ReplySlot<T>) -> Result<T, Error> {
    if let Some(v) = pool.poll_reply(|| slot.try_take()) {
        return Ok(v);
    }
    loop {
        // Look before parking: a thread waiting on several slots in turn may have had its
        // one wake-up token taken by another slot's `fill`, and this one filled meanwhile.
        if let Some(v) = slot.try_take() {
            return Ok(v);
        }
        // `fill` unparks this thread; a spurious or timed-out wake just looks again.
        std::thread::park_timeout(Duration::from_millis(200));
        pool.check_alive()?;
    }
}

/// A run started by [`Pipeline::start`]. Dropping it before its outputs came cancels the run
/// (a node already running finishes; nodes are never stopped midway) and abandons its outputs.
pub struct StartedRun {
    slot: Arc<ReplySlot<Result<Vec<ItemResult>, Error>>>,
    pool: Arc<WorkerPool>,
    installed: Arc<Installed>,
    run: u64,
    /// The outputs (or the run's error) were taken: nothing to cancel on drop.
    taken: bool,
}

impl Drop for StartedRun {
    fn drop(&mut self) {
        if !self.taken {
            self.installed.runs.cancel(self.run);
        }
    }
}

impl StartedRun {
    /// Waits up to `timeout` for the outputs: `None` if they have not come yet. Call it from the
    /// thread that started the run (that thread is the one woken).
    pub fn wait_for(&mut self, timeout: Duration) -> Result<Option<RunOutput>, Error> {
        if let Some(v) = self.pool.poll_reply(|| self.slot.try_take()) {
            self.taken = true;
            return single(v?).map(Some);
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(v) = self.slot.try_take() {
                self.taken = true;
                return single(v?).map(Some);
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::park_timeout((deadline - now).min(Duration::from_millis(200)));
            self.pool.check_alive()?;
        }
    }
}

/// The one item of a single-item run.
fn single(mut results: Vec<ItemResult>) -> Result<RunOutput, Error> {
    match results.pop() {
        Some(r) => r.map_err(Error::Node),
        None => Err(Error::Engine("a run completed without a result".into())),
    }
}

/// A streaming session on an installed pipeline: each `push` carries one chunk, and the outputs
/// that chunk completed come back; `close` flushes what stateful nodes still hold (a resampler's
/// tail, a VAD's open segment) and drops the session's node instances.
///
/// Where a session runs is settled by its first call. A session used through the blocking calls
/// (`push`, `close`) on a pipeline without metrics runs on the threads that call it
/// (sessions.rs, `InlineSession`): the caller waits for the outputs anyway, so it computes them,
/// with no hand-off to a worker and no worker to wake; threads pushing into sessions of their
/// own then run in parallel without touching the pool at all. Later `submit_*` calls on such a
/// session run at once on the calling thread too (their reply is called before they return), so
/// its chunks stay in order. A session whose first call is a `submit_*` (the caller does not
/// wait), or on a pipeline that records metrics (each worker keeps its own records), lives on
/// one worker (sessions are dealt out over the workers in turn): its chunks are processed there
/// in the order they were pushed, and a push wakes that worker alone. Either way the outputs are
/// the same: the same node runners call the same nodes in the same order. Dropping an open
/// session ends it without waiting (or, inline, at once).
pub struct Session {
    installed: Arc<Installed>,
    pool: Arc<WorkerPool>,
    id: u64,
    ended: bool,
    mode: Mutex<Mode>,
}

/// Where a session's chunks run, settled by its first call.
enum Mode {
    Unsettled,
    /// On the calling threads; its chunks numbered from the ids it holds.
    Inline(Box<InlineSession>, RunIds),
    /// On its worker; likewise.
    Worker(RunIds),
}

impl Session {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The worker (of this process) the session runs on, or whose index its nodes are built
    /// with when it runs on its callers' threads.
    pub fn worker(&self) -> usize {
        self.installed.sessions.worker_of(self.id)
    }

    /// Whether `close` has been called.
    pub fn is_closed(&self) -> bool {
        self.ended
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.ended {
            return Err(Error::Input(format!("streaming session {} is closed", self.id)));
        }
        self.pool.check_alive()
    }

    fn lock_mode(&self) -> MutexGuard<'_, Mode> {
        self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Settles the mode on the first call: inline if that call waits (`blocking`) and the
    /// pipeline records no metrics.
    fn settle(&self, mode: &mut Mode, blocking: bool) {
        if matches!(mode, Mode::Unsettled) {
            *mode = if blocking && !self.installed.nodes.metrics {
                let worker = self.installed.first_worker + self.worker();
                Mode::Inline(Box::new(InlineSession::new(Arc::clone(&self.installed.nodes), worker)), RunIds::default())
            } else {
                Mode::Worker(RunIds::default())
            };
        }
    }

    /// Sends one chunk (`None`: the end) where the session runs.
    fn send(&self, input: Option<RunInput>, reply: Reply, blocking: bool) -> Result<(), Error> {
        self.send_with(input, reply, blocking, &mut std::thread::sleep)
    }

    /// As `send`; a session running inline calls `sleep` for any retry delay.
    fn send_with(&self, input: Option<RunInput>, reply: Reply, blocking: bool, sleep: &mut dyn FnMut(Duration)) -> Result<(), Error> {
        let mut mode = self.lock_mode();
        self.settle(&mut mode, blocking);
        match &mut *mode {
            Mode::Inline(session, ids) => {
                if self.installed.sessions.is_closed() {
                    return Err(Error::Engine("the pipeline has been closed".into()));
                }
                let job = self.installed.chunk_job(self.id, input, Some(reply), Some(ids))?;
                let sessions = &self.installed.sessions;
                session.run(job, || sessions.is_closed(), sleep);
                Ok(())
            }
            Mode::Worker(ids) => self.installed.submit_chunk(self.id, input, reply, ids),
            // `settle` above leaves no session unsettled; an error rather than a panic regardless.
            Mode::Unsettled => Err(Error::Engine("a streaming session was used before it was set up".into())),
        }
    }

    /// As [`push`](Self::push) for a session that runs on its callers' threads (or whose first
    /// call this is, which settles it so): the chunk runs here and now, and `sleep` waits out
    /// any retry delay. Gives the input back, untouched, for a session that runs on a worker.
    /// Why: Python pushes a short chunk holding the GIL and releases it only to sleep (see
    /// `NativeSession::push`), so it needs to know where the chunk will run before it runs.
    pub fn push_here(&self, input: RunInput, sleep: &mut dyn FnMut(Duration)) -> Result<Result<RunOutput, Error>, RunInput> {
        if let Err(e) = self.check_open() {
            return Ok(Err(e));
        }
        let mut mode = self.lock_mode();
        self.settle(&mut mode, true);
        let Mode::Inline(session, ids) = &mut *mode else { return Err(input) };
        if self.installed.sessions.is_closed() {
            return Ok(Err(Error::Engine("the pipeline has been closed".into())));
        }
        // No reply: the executor returns the result here (see `Pipeline::run_here`).
        let job = match self.installed.chunk_job(self.id, Some(input), None, Some(ids)) {
            Ok(job) => job,
            Err(e) => return Ok(Err(e)),
        };
        let sessions = &self.installed.sessions;
        let got = session.run(job, || sessions.is_closed(), sleep);
        Ok(got.ok_or_else(|| Error::Engine("a streaming chunk completed without a result".into())).and_then(|r| r.map_err(Error::Node)))
    }

    /// Whether the session runs on its callers' threads (settled by its first call).
    pub fn runs_inline(&self) -> bool {
        matches!(*self.lock_mode(), Mode::Inline(..))
    }

    /// Queues one chunk; `reply` gets its outputs (one item) when its worker has run it (on a
    /// session running inline: before this returns).
    pub fn submit_push(&self, input: impl Into<RunInput>, reply: Reply) -> Result<(), Error> {
        self.check_open()?;
        self.send(Some(input.into()), reply, false)
    }

    /// Queues the session's end; `reply` gets the flushed outputs. Later pushes are errors.
    pub fn submit_close(&mut self, reply: Reply) -> Result<(), Error> {
        self.check_open()?;
        self.ended = true;
        self.send(None, reply, false)
    }

    /// Pushes one chunk and waits for the outputs it completed.
    pub fn push(&self, input: impl Into<RunInput>) -> Result<RunOutput, Error> {
        self.check_open()?;
        self.blocking(Some(input.into()))
    }

    /// Ends the session and waits for the flushed outputs.
    pub fn close(&mut self) -> Result<RunOutput, Error> {
        self.check_open()?;
        self.ended = true;
        self.blocking(None)
    }

    fn blocking(&self, input: Option<RunInput>) -> Result<RunOutput, Error> {
        let mut mode = self.lock_mode();
        self.settle(&mut mode, true);
        if let Mode::Inline(..) = &*mode {
            drop(mode);
            // The reply is called before `send` returns: a plain cell, no waiting.
            let cell: Arc<Mutex<Option<Result<Vec<ItemResult>, Error>>>> = Arc::new(Mutex::new(None));
            let filler = Arc::clone(&cell);
            self.send(input, Box::new(move |r| *filler.lock().unwrap_or_else(|e| e.into_inner()) = Some(r)), true)?;
            let got = cell.lock().unwrap_or_else(|e| e.into_inner()).take();
            return single(got.ok_or_else(|| Error::Engine("a streaming chunk completed without a result".into()))??);
        }
        drop(mode);
        self.pool.check_not_own_worker()?;
        let (slot, reply) = blocking_reply();
        self.send(input, reply, true)?;
        single(wait_reply(&self.pool, &slot)??)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.ended {
            // Frees the session's node instances; nobody waits for the flushed outputs. Inline,
            // the end is run here and now (a dropped session's nodes flush as on a worker).
            let _ = self.submit_close(Box::new(|_| {}));
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.installed.close();
        self.pool.forget(self.installed.id);
    }
}

#[cfg(test)]
mod tests {
    //! Run handles over a real pool, without the batch scheduler above them.
    use super::*;
    use crate::data::{AudioBuffer, Payload};
    use crate::manifest;
    use crate::runtime::installed::RUN_ID_BLOCK;

    fn pipeline(metrics: bool) -> Pipeline {
        let text = format!(
            r#"{{"version":"1.0","config":{{"enable_metrics":{metrics}}},"nodes":[{{"id":"rs","type":"AudioResampleNode","params":{{"output_rate":16000}}}}]}}"#
        );
        let graph = manifest::load_str(&text, &Registry::builtin()).expect("manifest");
        WorkerPool::shared(1).expect("pool").install(graph).expect("install")
    }

    fn chunk(k: usize) -> RunInput {
        let x: Vec<f32> = (0..960).map(|i| ((k * 960 + i) as f32 * 0.01).sin() * 0.5).collect();
        RunInput::All(Payload::Audio(AudioBuffer::mono_f32(x, 48000)))
    }

    fn samples(out: &RunOutput) -> Vec<f32> {
        out.get("rs").and_then(Payload::audio).and_then(|a| a.as_f32()).expect("f32 audio").to_vec()
    }

    /// `push_here` runs a session's chunks on the calling thread, with the same outputs as
    /// `push`, and never sleeps without a retry to wait for; on a pipeline with metrics the
    /// session lives on a worker, and the input comes back untouched for `push`.
    /// Sessions number their chunks from blocks of run ids of their own (see `RunIds`): ten
    /// pushes into two sessions, on their callers' threads and on a worker, write the pipeline's
    /// counter once per session, and a run after them still gets an id above every id drawn
    /// (runs are timely epochs: their ids must rise).
    #[test]
    fn sessions_draw_run_ids_a_block_at_a_time_and_runs_still_rise() {
        for metrics in [false, true] {
            let p = pipeline(metrics);
            let (a, b) = (p.session(), p.session());
            for k in 0..5 {
                a.push(chunk(k)).expect("push a");
                b.push(chunk(k)).expect("push b");
            }
            assert_eq!(a.runs_inline(), !metrics);
            assert_eq!(p.installed.next_run.load(std::sync::atomic::Ordering::SeqCst), 2 * RUN_ID_BLOCK, "metrics {metrics}");
            let mut started = p.start(chunk(0)).expect("start");
            assert_eq!(started.run, 2 * RUN_ID_BLOCK);
            assert!(started.wait_for(Duration::from_secs(10)).expect("run").is_some(), "the run completes");
        }
    }

    #[test]
    fn push_here_runs_inline_sessions_and_hands_back_worker_ones() {
        let p = pipeline(false);
        let (a, b) = (p.session(), p.session());
        let mut slept = 0;
        for k in 0..5 {
            let here = a.push_here(chunk(k), &mut |_| slept += 1).ok().expect("runs inline").expect("chunk ok");
            let there = b.push(chunk(k)).expect("chunk ok");
            assert_eq!(samples(&here), samples(&there), "chunk {k}");
        }
        assert_eq!(slept, 0);
        assert!(a.runs_inline());

        let m = pipeline(true);
        let s = m.session();
        let back = s.push_here(chunk(0), &mut |_| {}).err().expect("handed back");
        assert!(!s.runs_inline());
        let out = s.push(back).expect("runs on its worker");
        let inline = p.session().push(chunk(0)).expect("runs inline");
        assert_eq!(samples(&out), samples(&inline), "the same chunk on a worker and inline");
    }

    /// The main job (int16 -> f32 -> 16 kHz -> VAD), or the VAD straight on the input.
    fn main_job(text_nodes: &str, registry: &Registry) -> Pipeline {
        let text = manifest_of(text_nodes);
        let graph = manifest::load_str(&text, registry).expect("manifest");
        WorkerPool::shared(1).expect("pool").install_with(graph, registry, Arc::new(RealClock::new())).expect("install")
    }

    /// A chain of these nodes (JSON objects, comma-separated), each fed by the one before.
    fn manifest_of(nodes: &str) -> String {
        let tree: serde_json::Value = serde_json::from_str(&format!("[{nodes}]")).expect("nodes");
        let ids: Vec<&str> = tree.as_array().expect("list").iter().map(|n| n["id"].as_str().expect("id")).collect();
        let edges: Vec<String> = ids.windows(2).map(|w| format!(r#"{{"from":"{}","to":"{}"}}"#, w[0], w[1])).collect();
        format!(r#"{{"version":"1.0","nodes":[{nodes}],"edges":[{}]}}"#, edges.join(","))
    }

    const MAIN_JOB: &str = r#"{"id":"to_f32","type":"FormatConverterNode","params":{"target_format":"f32"}},
        {"id":"resample_16k","type":"AudioResampleNode","params":{"output_rate":16000}},
        {"id":"vad","type":"VADNode","params":{"frame_duration_ms":30}}"#;

    /// `seconds` of 48 kHz int16: silence, a 440 Hz tone at half scale in the middle fifth, silence.
    fn tone_burst(seconds: f64, rate: u32) -> RunInput {
        let n = (seconds * rate as f64).round() as usize;
        let x: Vec<i16> = (0..n)
            .map(|i| if (2 * n / 5..3 * n / 5).contains(&i) { ((i as f64 * 440.0 * std::f64::consts::TAU / rate as f64).sin() * 16384.0) as i16 } else { 0 })
            .collect();
        RunInput::All(Payload::Audio(AudioBuffer::new(crate::data::Samples::I16(x.into()), rate, 1).expect("audio")))
    }

    /// A run on the workers (`start` never runs inline).
    fn on_workers(p: &Pipeline, input: RunInput) -> Result<RunOutput, Error> {
        let mut run = p.start(input)?;
        loop {
            if let Some(out) = run.wait_for(Duration::from_millis(50))? {
                return Ok(out);
            }
        }
    }

    fn here(p: &Pipeline, input: RunInput) -> Result<RunOutput, Error> {
        p.run_here(input, &mut |_| panic!("no retry to wait for")).ok().expect("runs on the calling thread")
    }

    /// A whole run on the calling thread gives exactly what the workers give, for every node of
    /// the main job, at every length, and again on the next call (the resampler and the VAD, both
    /// stateful, start from a clean state for each run, as on a worker).
    #[test]
    fn a_run_on_the_calling_thread_gives_what_the_workers_give() {
        let p = main_job(MAIN_JOB, &Registry::builtin());
        assert!(p.runs_inline());
        for seconds in [0.01, 0.1, 1.0, 3.0] {
            let there = on_workers(&p, tone_burst(seconds, 48000)).expect("runs on the workers");
            let first = here(&p, tone_burst(seconds, 48000)).expect("runs here");
            let again = here(&p, tone_burst(seconds, 48000)).expect("runs here again");
            let by_run = p.run(tone_burst(seconds, 48000)).expect("run");
            assert_eq!(first, there, "{seconds} s");
            assert_eq!(again, there, "{seconds} s, second call");
            assert_eq!(by_run, there, "{seconds} s, through run");
            let vad = there.get("vad").expect("the VAD's output");
            let Payload::Vad(v) = vad else { panic!("a VAD result, got {}", vad.kind()) };
            assert_eq!(v.audio.sample_rate, 16000);
            assert_eq!(v.audio.samples.len(), (seconds * 16000.0).round() as usize, "{seconds} s at 16 kHz");
            if seconds >= 1.0 {
                // The tone from 0.4 to 0.6 of the input is the one speech segment.
                assert_eq!(v.segments.len(), 1, "{:?}", v.segments);
                let (a, b) = v.segments[0];
                assert!((a - 0.4 * seconds).abs() < 0.1 && (b - 0.6 * seconds).abs() < 0.35, "{:?}", v.segments);
            }
        }
    }

    /// A node's error on the calling thread is the one the workers report: same class, node,
    /// operation and words (only the run's number differs).
    #[test]
    fn an_error_on_the_calling_thread_names_the_node_as_on_the_workers() {
        let text = r#"{"id":"to_f32","type":"FormatConverterNode","params":{"target_format":"f32"}},
            {"id":"vad","type":"VADNode","params":{"frame_duration_ms":30}}"#;
        let p = main_job(text, &Registry::builtin());
        let error = |r: Result<RunOutput, Error>| match r {
            Err(Error::Node(e)) => e,
            other => panic!("expected a node error, got {other:?}"),
        };
        let there = error(on_workers(&p, tone_burst(0.1, 16050)));
        let got = error(here(&p, tone_burst(0.1, 16050)));
        assert_eq!((got.kind, got.node_id.as_str(), got.node_type.as_str()), (crate::error::NodeErrorKind::InvalidInput, "vad", "VADNode"));
        assert!(got.message.contains("multiple of 100 Hz"), "{}", got.message);
        assert_eq!((got.kind, &got.node_id, &got.operation, &got.message, got.item), (there.kind, &there.node_id, &there.operation, &there.message, there.item));
        assert!(got.run.is_some());
        // The executor is reused for the next run, which works.
        assert!(here(&p, tone_burst(0.1, 16000)).is_ok());
    }

    /// A node that fails transiently is retried on the calling thread (the delay waited out by
    /// the caller's `wait`), a panic becomes the node's error, and a `wait` that gives up fails
    /// the run as a closing pipeline would.
    #[test]
    fn retries_and_panics_on_the_calling_thread() {
        use std::sync::atomic::AtomicU32;
        struct Flaky(Arc<AtomicU32>);
        impl crate::nodes::Node for Flaky {
            fn process(&mut self, inputs: crate::nodes::Inputs) -> Result<Payload, crate::error::NodeError> {
                let a = crate::nodes::expect_audio(inputs.one()?)?;
                assert!(a.samples.len() != 3, "three samples are not allowed");
                if self.0.load(Ordering::SeqCst) > 0 {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                    return Err(crate::error::NodeError::transient("not yet"));
                }
                Ok(Payload::Audio(a))
            }
        }
        let fails = Arc::new(AtomicU32::new(0));
        let mut registry = Registry::builtin();
        let f = Arc::clone(&fails);
        registry.register(crate::nodes::NodeType::new("FlakyNode", "test", move |_| Ok(Box::new(Flaky(Arc::clone(&f))))));
        let text = r#"{"id":"to_f32","type":"FormatConverterNode","params":{"target_format":"f32"}},
            {"id":"flaky","type":"FlakyNode","reliability":{"retry_policy":"fixed","max_retries":2,"retry_base_delay_ms":1}}"#;
        let p = main_job(text, &registry);
        assert!(p.runs_inline(), "a type's own factory, even a test's, runs inline");
        let samples = |n: usize| RunInput::All(Payload::Audio(AudioBuffer::new(crate::data::Samples::I16(vec![7; n].into()), 16000, 1).expect("audio")));

        fails.store(1, Ordering::SeqCst);
        let mut waits = Vec::new();
        let out = p.run_here(samples(5), &mut |d| {
            waits.push(d);
            std::thread::sleep(d);
            true
        });
        let out = out.ok().expect("inline").expect("the retry succeeds");
        assert_eq!(out.get("flaky").and_then(Payload::audio).map(|a| a.samples.len()), Some(5));
        assert_eq!(waits.len(), 1, "one retry delay waited out: {waits:?}");

        match here(&p, samples(3)) {
            Err(Error::Node(e)) => {
                assert_eq!((e.kind, e.node_id.as_str()), (crate::error::NodeErrorKind::Panic, "flaky"));
                assert!(e.message.contains("three samples are not allowed"), "{}", e.message);
            }
            other => panic!("expected the panic as the node's error, got {other:?}"),
        }

        fails.store(5, Ordering::SeqCst);
        match p.run_here(samples(5), &mut |_| false).ok().expect("inline") {
            Err(Error::Node(e)) => assert_eq!((e.node_id.as_str(), e.retries), ("flaky", 1), "{e}"),
            other => panic!("expected the given-up run's error, got {other:?}"),
        }
        fails.store(0, Ordering::SeqCst);
        assert!(here(&p, samples(5)).is_ok(), "the executor works after a given-up run");
    }

    /// A straight chain's whole run passes each output to the next node itself; a node in the
    /// middle that must be retried hands the run to the general bookkeeping, which calls it
    /// again and feeds the nodes after it: the result is the workers' (and a graph that is no
    /// chain, its middle node an output too, gives the same values through the general path).
    #[test]
    fn a_retry_in_the_middle_of_a_chain_feeds_the_nodes_after_it() {
        use std::sync::atomic::AtomicU32;
        struct Flaky(Arc<AtomicU32>);
        impl crate::nodes::Node for Flaky {
            fn process(&mut self, inputs: crate::nodes::Inputs) -> Result<Payload, crate::error::NodeError> {
                if self.0.load(Ordering::SeqCst) > 0 {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                    return Err(crate::error::NodeError::transient("not yet"));
                }
                inputs.one()
            }
        }
        let fails = Arc::new(AtomicU32::new(0));
        let mut registry = Registry::builtin();
        let f = Arc::clone(&fails);
        registry.register(crate::nodes::NodeType::new("FlakyNode", "test", move |_| Ok(Box::new(Flaky(Arc::clone(&f))))));
        let nodes = r#"{"id":"to_f32","type":"FormatConverterNode","params":{"target_format":"f32"}},
            {"id":"flaky","type":"FlakyNode","reliability":{"retry_policy":"fixed","max_retries":3,"retry_base_delay_ms":1}},
            {"id":"resample_16k","type":"AudioResampleNode","params":{"output_rate":16000}},
            {"id":"vad","type":"VADNode","params":{"frame_duration_ms":30}}"#;
        let p = main_job(nodes, &registry);
        let there = on_workers(&p, tone_burst(1.0, 48000)).expect("runs on the workers");
        fails.store(2, Ordering::SeqCst);
        let mut waits = 0;
        let got = p.run_here(tone_burst(1.0, 48000), &mut |d| {
            waits += 1;
            std::thread::sleep(d);
            true
        });
        assert_eq!(got.ok().expect("inline").expect("the retries succeed"), there);
        assert_eq!((waits, fails.load(Ordering::SeqCst)), (2, 0), "two retry delays waited out");
        assert_eq!(here(&p, tone_burst(1.0, 48000)).expect("the next run"), there, "the executor is reused");

        // The same nodes with the flaky node's output returned as well: no longer a straight
        // chain, the same VAD result.
        let mut tree: serde_json::Value = serde_json::from_str(&manifest_of(nodes)).expect("manifest");
        tree["outputs"] = serde_json::json!(["flaky", "vad"]);
        let graph = manifest::load_str(&tree.to_string(), &registry).expect("manifest");
        let q = WorkerPool::shared(1).expect("pool").install_with(graph, &registry, Arc::new(RealClock::new())).expect("install");
        let both = here(&q, tone_burst(1.0, 48000)).expect("runs here");
        assert_eq!(both.get("vad"), there.get("vad"));
        assert_eq!(both.get("flaky").and_then(Payload::audio).map(|a| a.sample_rate), Some(48000));
    }

    /// Runs stay on the workers where a worker's records are needed (metrics) or a node's
    /// factory was given in place of its type's (a Python node): `run_here` hands the input back
    /// and `run` still works.
    #[test]
    fn metrics_and_replaced_factories_keep_runs_on_the_workers() {
        let m = pipeline(true);
        assert!(!m.runs_inline());
        let back = m.run_here(chunk(0), &mut |_| true).err().expect("handed back");
        assert_eq!(samples(&m.run(back).expect("runs on the workers")).len(), 320);

        let registry = Registry::builtin();
        let graph = manifest::load_str(&manifest_of(MAIN_JOB), &registry).expect("manifest");
        let mut factories = Factories::resolve(&graph, &registry).expect("factories");
        let pass = crate::nodes::Registry::builtin().get("PassthroughNode").expect("passthrough").factory.clone();
        factories.set(0, pass);
        let p = WorkerPool::shared(1).expect("pool").install_factories(graph, factories, Arc::new(RealClock::new())).expect("install");
        assert!(!p.runs_inline());
        assert!(p.run_here(tone_burst(0.1, 48000), &mut |_| true).is_err(), "handed back");
        // The pass-through in to_f32's place leaves int16 for the resampler: it still runs.
        let _ = p.run(tone_burst(0.1, 48000));
    }

    /// A started run can be waited for in slices, and a closed session refuses pushes.
    #[test]
    fn a_started_run_is_waited_for_and_a_closed_session_refuses_pushes() {
        let p = pipeline(false);
        let mut run = p.start(chunk(0)).expect("start");
        let out = loop {
            if let Some(out) = run.wait_for(Duration::from_millis(50)).expect("run ok") {
                break out;
            }
        };
        assert_eq!(samples(&out).len(), 320);
        let mut s = p.session();
        s.push(chunk(0)).expect("push");
        s.close().expect("close");
        let e = s.push(chunk(1)).err().expect("refused");
        assert_eq!(e.to_string(), Error::Input(format!("streaming session {} is closed", s.id())).to_string());
        assert!(matches!(s.push_here(chunk(1), &mut |_| {}), Ok(Err(Error::Input(_)))));
    }
}
