//! Streaming sessions, run where their state lives: on the threads that push into them
//! ([`InlineSession`], for sessions whose callers wait for each chunk's outputs), or on one worker,
//! chosen when the session opens, where a push goes into that worker's own queue and wakes that
//! worker alone.
//!
//! Why not through the dataflow like whole runs: every run there is an epoch, and timely tells
//! every worker about every epoch (progress messages), so with many threads pushing into many
//! sessions all workers were woken for every push, worker 0 handed every chunk on, and the one
//! input queue's lock was shared by every caller; streaming got slower as threads were added. A
//! session's chunks need none of that: its stateful nodes have one instance, on one worker, and
//! its chunks must stay in order. So the session's worker runs each chunk through the graph
//! itself, node by node in the graph's topological order, through the same node runners (breaker,
//! retries, panics, metrics) as the dataflow's operators.
//!
//! Per worker: stateless nodes share one instance (built on the worker's first chunk); a stateful
//! node gets one instance per session, built on its first chunk and dropped at its end. A chunk
//! waiting out a retry delay holds back its session's later chunks (order is kept), not other
//! sessions.

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use timely::scheduling::SyncActivator;

use crate::data::Payload;
use crate::error::{Error, NodeError};
use crate::graph::Graph;
use crate::metrics::WorkerStats;
use crate::nodes::{Inputs, Node};
use crate::runtime::runner::{select_output, Call, NodeRunner, NodeTable, Outcome, Retry};
use crate::runtime::runs::{ItemResult, Reply, RunOutput};

/// One push (a chunk for every source node) or a session's end, queued for its worker.
pub(crate) struct ChunkJob {
    pub session: u64,
    /// The run id its errors are named by.
    pub run: u64,
    /// One payload per source node, manifest order; `None` ends the session.
    pub chunk: Option<Vec<Payload>>,
    /// Who gets the result; `None`: the thread running the job on its own executor, to which
    /// [`InlineSession::run`] returns it (no reply closure, no shared cell to hand it over).
    pub reply: Option<Reply>,
    /// When it was queued, if metrics are on.
    pub started: Option<Instant>,
}

/// What closing a pipeline tells a job still waiting.
const CLOSED: &str = "the pipeline has been closed";

/// One queue of jobs per worker of this process, each with its own lock, and the activator that
/// wakes that worker's session operator.
pub(crate) struct SessionQueues {
    queues: Vec<Mutex<Queue>>,
    activators: Vec<OnceLock<SyncActivator>>,
    /// Set once by `close`: read on every push of a session on its callers' threads, where a
    /// queue's lock would be one more lock those threads share.
    closed: AtomicBool,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<ChunkJob>,
    closed: bool,
}

impl SessionQueues {
    pub fn new(workers: usize) -> SessionQueues {
        SessionQueues {
            queues: (0..workers).map(|_| Mutex::new(Queue::default())).collect(),
            activators: (0..workers).map(|_| OnceLock::new()).collect(),
            closed: AtomicBool::new(false),
        }
    }

    /// The worker (of this process) a session belongs to: sessions are dealt out in turn.
    pub fn worker_of(&self, session: u64) -> usize {
        (session % self.queues.len() as u64) as usize
    }

    fn lock(&self, worker: usize) -> MutexGuard<'_, Queue> {
        self.queues[worker].lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_activator(&self, worker: usize, activator: SyncActivator) {
        let _ = self.activators[worker].set(activator);
    }

    /// Queues a job for its session's worker and wakes that worker (only that one).
    pub fn push(&self, job: ChunkJob) -> Result<(), Error> {
        let worker = self.worker_of(job.session);
        {
            let mut q = self.lock(worker);
            if q.closed {
                return Err(Error::Engine(CLOSED.into()));
            }
            q.jobs.push(job);
        }
        match self.activators[worker].get().map(SyncActivator::activate) {
            Some(Ok(())) => Ok(()),
            _ => {
                let jobs = std::mem::take(&mut self.lock(worker).jobs);
                fail_jobs(jobs, "the worker pool is no longer running");
                Err(Error::Engine("the worker pool is no longer running".into()))
            }
        }
    }

    /// Whether the pipeline has been closed (or its pool failed): no more jobs are taken.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Moves the worker's queued jobs into `into` (swapped, so neither side allocates per push);
    /// says whether the pipeline is closed.
    pub fn take(&self, worker: usize, into: &mut Vec<ChunkJob>) -> bool {
        let mut q = self.lock(worker);
        std::mem::swap(&mut q.jobs, into);
        q.closed
    }

    /// Refuses further jobs, fails those still queued and wakes every worker's operator so it
    /// fails what it holds.
    pub fn close(&self, message: &str) {
        self.closed.store(true, Ordering::Release);
        for worker in 0..self.queues.len() {
            let jobs = {
                let mut q = self.lock(worker);
                q.closed = true;
                std::mem::take(&mut q.jobs)
            };
            fail_jobs(jobs, message);
            if let Some(a) = self.activators[worker].get() {
                let _ = a.activate();
            }
        }
    }
}

fn fail_jobs(jobs: impl IntoIterator<Item = ChunkJob>, message: &str) {
    for job in jobs {
        if let Some(reply) = job.reply {
            reply(Err(Error::Engine(message.to_string())));
        }
    }
}

/// A session run on the threads that push into it instead of on its worker: a blocking push
/// then costs the chunk's node calls and nothing else.
///
/// Why: a push handed to the session's worker pays two thread hand-offs, the worker's wake-up
/// (it has parked between a live source's chunks: ~50-200 µs on these VMs, more than a Silero
/// chunk's network) and the caller's; with several threads pushing, workers and callers also
/// compete for the same cores. The caller blocks for the outputs anyway, so its thread may as
/// well compute them: the session's own executor (a [`SessionWorker`] holding this one session)
/// runs each chunk through the same node runners, in the same order, with the same results.
/// Used only where nothing needs a worker's own records: pipelines without metrics (see
/// `Session` in pipeline.rs).
pub(crate) struct InlineSession {
    worker: SessionWorker,
    jobs: Vec<ChunkJob>,
}

// SAFETY: the only !Send parts are the `Rc<RefCell<WorkerStats>>` the executor and its node
// runners share. Every clone of that `Rc` is created in `InlineSession::new` and lives inside
// this value (none is handed out: runners only borrow it for the length of a call), so moving
// the whole value to another thread moves every owner of the `Rc` with it, and the `Session`
// that holds it serialises calls behind a mutex.
unsafe impl Send for InlineSession {}

impl InlineSession {
    /// A session on the caller's threads; `worker` is the index its nodes are built with.
    pub fn new(table: Arc<NodeTable>, worker: usize) -> InlineSession {
        let stats = Rc::new(RefCell::new(WorkerStats::new(0)));
        InlineSession { worker: SessionWorker::new(table, worker, stats), jobs: Vec::with_capacity(1) }
    }

    /// An executor of whole runs on the calling thread (see `Pipeline::run_here`): each job is
    /// one item, every node is called with `Node::process` on this executor's own instance, as
    /// a worker's node operator calls its worker's instance for every run (a stateful node's
    /// `process` starts from a clean state each time), so a run here gives what it gives there.
    /// Kept in a pipeline's free list and reused: its nodes are built once, on first use.
    pub fn for_runs(table: Arc<NodeTable>, worker: usize) -> InlineSession {
        let mut session = InlineSession::new(table, worker);
        session.worker.whole_runs = true;
        session
    }

    /// Runs one job through the graph on the calling thread; its reply has been called when
    /// this returns, or, for a job without one, its result is returned. A node waiting out a retry delay is waited for here (on the pipeline's
    /// clock), unless `closed` says the pipeline has closed meanwhile: then it gives up, as the
    /// worker would. `sleep` waits out each pause (from Python: with the GIL released).
    pub fn run(&mut self, job: ChunkJob, closed: impl Fn() -> bool, sleep: &mut dyn FnMut(Duration)) -> Option<ItemResult> {
        if self.worker.whole_runs {
            // The executor is idle here (each call finishes its job before returning): the job
            // goes straight through the graph, and into the session bookkeeping below only if a
            // node must be retried later. Why: the backlog, work list and session map cost
            // ~0.1-0.2 µs a run and order nothing when there is one job.
            self.worker.start_whole(job);
            if self.worker.paused.is_empty() {
                return self.worker.kept.take();
            }
        } else {
            self.jobs.push(job);
            self.worker.accept(&mut self.jobs);
        }
        let mut shut = closed();
        while let Some(due) = self.worker.run(shut) {
            // Looks at `closed` at least every 50 ms, so a closing pipeline is not kept waiting.
            let wait = self.worker.table.clock.wait_until(due).min(Duration::from_millis(50));
            sleep(wait);
            shut = closed();
        }
        self.worker.kept.take()
    }
}

/// A job part-way through the graph: the node it is at, what earlier nodes gave, its first error.
struct Progress {
    job: ChunkJob,
    /// The chunk, per source node, until its node takes it (`None`: the session's end).
    chunk: Option<Vec<Option<Payload>>>,
    pos: usize,
    outputs: Vec<Option<Payload>>,
    /// Per node, the uses of its output still to come: the last one takes it, earlier ones copy.
    uses: Vec<usize>,
    error: Option<NodeError>,
    /// Set while the node at `pos` waits out a retry delay.
    retry: Option<Retry>,
}

/// How a session's next job goes through the graph (see `SessionWorker::drive`).
enum Next {
    /// A chunk of a straight chain, node to node.
    Chain(ChunkJob),
    /// A job resumed after a retry, a session's end, or a chunk of any other graph.
    Advance(Progress),
}

#[derive(Default)]
struct SessionState {
    /// Per node, this session's own instance of a stateful node.
    instances: FxHashMap<usize, Box<dyn Node>>,
    backlog: VecDeque<ChunkJob>,
    /// The job waiting out a retry.
    paused: Option<Progress>,
    /// Whether the session is in the work list.
    listed: bool,
}

/// The sessions of one pipeline on one worker, and the runners that call their nodes.
pub(crate) struct SessionWorker {
    table: Arc<NodeTable>,
    runners: Vec<NodeRunner>,
    sources: Vec<usize>,
    /// The nodes whose outputs a chunk's reply holds (the manifest's `outputs`, else the sinks);
    /// a sink that is not one still runs (its errors count) but its output is dropped.
    outputs: Vec<usize>,
    /// Per node, how many times its output is used (edges out, plus one for an output node): the
    /// last use takes it, earlier ones copy.
    uses: Vec<usize>,
    sessions: FxHashMap<u64, SessionState>,
    /// Sessions with a job to run now.
    work: VecDeque<u64>,
    /// Sessions waiting out a retry, by due time.
    paused: BTreeMap<(Duration, u64), ()>,
    stats: Rc<RefCell<WorkerStats>>,
    /// Jobs are whole runs (`Node::process` on the runners' own instances), not session chunks.
    whole_runs: bool,
    /// The result of the last job that had no reply, for [`InlineSession::run`] to return.
    kept: Option<ItemResult>,
    /// A finished job's per-node vectors (outputs, uses), emptied, for the next job to fill.
    /// Why: allocating and freeing both for every run was ~30-40 ns of a ~8 µs run on 0.01 s
    /// of audio, which runs one job at a time here.
    spare: Option<(Vec<Option<Payload>>, Vec<usize>)>,
    /// The graph is a straight chain (see [`straight_chain`]): a whole run or a session's chunk
    /// passes one payload from node to node ([`run_chain`](Self::run_chain)) instead of through
    /// `advance`.
    chain: bool,
}

/// Whether `graph` is a straight chain: each node after the first (in topological order) fed
/// by exactly one edge, from the node before it, whole (no `output_key`) on the default port,
/// every node feeding at most that one edge, and the last node the run's only output. (The
/// first node of a topological order has no inputs and the last no outgoing edge, so that is
/// one source and one sink.) Such a run needs none of `advance`'s bookkeeping (outputs kept per
/// node, uses counted, inputs gathered and selected): each node's output is the next one's input.
fn straight_chain(graph: &Graph, outputs: &[usize]) -> bool {
    let order = &graph.order;
    let Some(&last) = order.last() else { return false };
    outputs == [last]
        && order.windows(2).all(|w| {
            let (from, to) = (&graph.nodes[w[0]], &graph.nodes[w[1]]);
            let [e] = to.inputs[..] else { return false };
            let edge = &graph.edges[e];
            from.outputs.len() == 1 && edge.from == w[0] && edge.output_key.is_none() && edge.port == crate::nodes::DEFAULT_PORT
        })
}

/// The instance node `n` runs on for `call`: a session's own instance of a stateful node,
/// built on the session's first chunk, for a push or the session's end (`instances`: that
/// session's); `None`, the runner's own instance, for a whole run (as a worker's operator
/// calls it) and for a stateless node.
fn session_instance<'a>(
    runner: &NodeRunner,
    n: usize,
    call: Call,
    instances: Option<&'a mut FxHashMap<usize, Box<dyn Node>>>,
) -> Result<Option<&'a mut Box<dyn Node>>, NodeError> {
    match instances {
        Some(instances) if runner.stateful() && call != Call::Process => match instances.entry(n) {
            Entry::Occupied(e) => Ok(Some(e.into_mut())),
            Entry::Vacant(v) => Ok(Some(v.insert(runner.session_instance()?))),
        },
        _ => Ok(None),
    }
}

impl SessionWorker {
    pub fn new(table: Arc<NodeTable>, worker: usize, stats: Rc<RefCell<WorkerStats>>) -> SessionWorker {
        let graph: &Graph = &table.graph;
        let runners = (0..graph.nodes.len()).map(|n| NodeRunner::new(Arc::clone(&table), n, worker, Rc::clone(&stats))).collect();
        let sources = graph.sources().collect();
        let outputs = graph.output_nodes();
        let uses = (0..graph.nodes.len()).map(|n| graph.nodes[n].outputs.len() + outputs.contains(&n) as usize).collect();
        let chain = straight_chain(graph, &outputs);
        SessionWorker {
            table,
            runners,
            sources,
            outputs,
            uses,
            sessions: FxHashMap::default(),
            work: VecDeque::new(),
            paused: BTreeMap::new(),
            stats,
            whole_runs: false,
            kept: None,
            spare: None,
            chain,
        }
    }

    /// Takes new jobs into their sessions' backlogs.
    pub fn accept(&mut self, jobs: &mut Vec<ChunkJob>) {
        for job in jobs.drain(..) {
            let session = job.session;
            let state = self.sessions.entry(session).or_default();
            state.backlog.push_back(job);
            if !state.listed && state.paused.is_none() {
                state.listed = true;
                self.work.push_back(session);
            }
        }
    }

    /// Runs every session's jobs that can run now; returns when the earliest paused one is due.
    /// Once the pipeline is `closed`, retries are given up and whatever is left fails.
    pub fn run(&mut self, closed: bool) -> Option<Duration> {
        // The clock is read only when something waits for it (~25 ns a push otherwise).
        let due: Vec<(Duration, u64)> = if self.paused.is_empty() {
            Vec::new()
        } else {
            let now = self.table.clock.now();
            self.paused.keys().copied().take_while(|&(at, _)| closed || at <= now).collect()
        };
        for key in due {
            self.paused.remove(&key);
            if let Some(state) = self.sessions.get_mut(&key.1) {
                if !state.listed {
                    state.listed = true;
                    self.work.push_back(key.1);
                }
            }
        }
        while let Some(session) = self.work.pop_front() {
            self.drive(session, closed);
        }
        self.paused.keys().next().map(|&(at, _)| at)
    }

    /// A fresh job at its first node, as `drive` starts each one.
    fn progress(&mut self, mut job: ChunkJob) -> Progress {
        let (mut outputs, mut uses) = self.spare.take().unwrap_or_default();
        outputs.resize_with(self.runners.len(), || None);
        uses.extend_from_slice(&self.uses);
        Progress { chunk: job.chunk.take().map(|c| c.into_iter().map(Some).collect()), job, pos: 0, outputs, uses, error: None, retry: None }
    }

    /// Runs a whole run's job (see [`InlineSession::run`]) on an idle executor: through the
    /// graph at once; a job a node must retry later is parked as `drive` parks it, to be
    /// resumed by [`run`](Self::run) when due.
    fn start_whole(&mut self, job: ChunkJob) {
        let session = job.session;
        let ran = if self.chain && job.chunk.is_some() {
            self.run_chain(job, None)
        } else {
            let progress = self.progress(job);
            // A whole run calls every node's runner instance, never a session's own.
            self.advance(progress, None, false)
        };
        if let Err(p) = ran {
            self.paused.insert((p.retry.as_ref().map_or(Duration::ZERO, |r| r.due), session), ());
            self.sessions.entry(session).or_default().paused = Some(p);
        }
    }

    /// A whole run, or a session's chunk (`instances`: the session's own instances of stateful
    /// nodes), through a straight chain: each node's output handed to the next, through the same
    /// runner calls as `advance` makes, with the same result and errors (the first failure ends
    /// the job: nothing after it has an input). A node that must be retried hands the job over
    /// to `advance`'s bookkeeping, paused at that node with the retry's inputs. A session's end
    /// (no chunk) always takes `advance`, which flushes and drops the session's instances.
    ///
    /// Why: on 0.01 s of the main job, `advance`'s per-node bookkeeping was ~0.1-0.2 µs of a
    /// ~8 µs run, and of a 20 ms streaming push about as much of ~2.8 µs, for graphs that are
    /// nearly all chains.
    fn run_chain(&mut self, mut job: ChunkJob, mut instances: Option<&mut FxHashMap<usize, Box<dyn Node>>>) -> Result<(), Progress> {
        let call = if self.whole_runs { Call::Process } else { Call::Push };
        let mut payload = job.chunk.take().and_then(|mut c| c.pop());
        let (graph, runners) = (&*self.table.graph, &mut self.runners);
        for (pos, &n) in graph.order.iter().enumerate() {
            let runner = &mut runners[n];
            let instance = match session_instance(runner, n, call, instances.as_deref_mut()) {
                Ok(instance) => instance,
                Err(e) => {
                    self.deliver(job, Err(e));
                    return Ok(());
                }
            };
            match runner.call(call, payload.take().map(Inputs::single), 0, instance) {
                Outcome::Done(out) => payload = out,
                Outcome::Failed(e) => {
                    self.deliver(job, Err(e));
                    return Ok(());
                }
                Outcome::Retry(r) => {
                    let mut p = self.progress(job);
                    // The chunk was consumed; an empty one still tells `advance` this is a
                    // chunk (`process`/`push`), not the session's end.
                    p.chunk = Some(Vec::new());
                    p.pos = pos;
                    p.retry = Some(r);
                    return Err(p);
                }
            }
        }
        let outputs = match (payload, graph.order.last()) {
            (Some(o), Some(&last)) => vec![(graph.nodes[last].id.clone(), o)],
            _ => Vec::new(),
        };
        self.deliver(job, Ok(RunOutput { outputs, finished: None }));
        Ok(())
    }

    /// Runs one session's jobs in order until it has none left or one waits for a retry.
    fn drive(&mut self, session: u64, closed: bool) {
        let Some(mut state) = self.sessions.remove(&session) else { return };
        state.listed = false;
        loop {
            let next = match state.paused.take() {
                Some(p) => Next::Advance(p),
                None => match state.backlog.pop_front() {
                    // A chunk of a straight chain goes node to node (see `run_chain`).
                    Some(job) if self.chain && job.chunk.is_some() => Next::Chain(job),
                    Some(job) => Next::Advance(self.progress(job)),
                    None => break,
                },
            };
            let (ran, ended) = match next {
                Next::Chain(job) => (self.run_chain(job, Some(&mut state.instances)), false),
                Next::Advance(progress) => {
                    let ended = progress.chunk.is_none();
                    (self.advance(progress, Some(&mut state.instances), closed), ended)
                }
            };
            match ran {
                Ok(()) if ended => {
                    // Pushes after the end are refused by the handle; anything else queued is
                    // an engine fault, reported rather than dropped.
                    fail_jobs(state.backlog.drain(..), "the streaming session had ended");
                    return;
                }
                Ok(()) => {}
                Err(p) => {
                    self.paused.insert((p.retry.as_ref().map_or(Duration::ZERO, |r| r.due), session), ());
                    state.paused = Some(p);
                    break;
                }
            }
        }
        self.sessions.insert(session, state);
    }

    /// Takes a job through the graph from where it stands; hands it back if a node must be
    /// retried later, else replies.
    /// `instances`: the session's own instances of stateful nodes (`None` for a whole run, which
    /// uses none).
    fn advance(&mut self, mut p: Progress, mut instances: Option<&mut FxHashMap<usize, Box<dyn Node>>>, closed: bool) -> Result<(), Progress> {
        let graph = Arc::clone(&self.table.graph);
        let call = match (p.chunk.is_some(), self.whole_runs) {
            (true, true) => Call::Process,
            (true, false) => Call::Push,
            (false, _) => Call::Finish,
        };
        while p.pos < graph.order.len() {
            let n = graph.order[p.pos];
            let (inputs, retries) = match p.retry.take() {
                Some(r) if closed => {
                    p.error.get_or_insert(self.runners[n].given_up(r.retries));
                    p.pos += 1;
                    continue;
                }
                Some(r) => (r.inputs, r.retries),
                None => match self.gather(n, call, &mut p) {
                    Some(inputs) => (inputs, 0),
                    // An input is missing (an upstream node failed): a chunk skips the node.
                    None => {
                        p.pos += 1;
                        continue;
                    }
                },
            };
            let runner = &mut self.runners[n];
            let instance = match session_instance(runner, n, call, instances.as_deref_mut()) {
                Ok(instance) => instance,
                Err(e) => {
                    p.error.get_or_insert(e);
                    p.pos += 1;
                    continue;
                }
            };
            match runner.call(call, inputs, retries, instance) {
                Outcome::Done(out) => p.outputs[n] = out,
                Outcome::Failed(e) => {
                    p.error.get_or_insert(e);
                }
                Outcome::Retry(r) => {
                    p.retry = Some(r);
                    return Err(p);
                }
            }
            if let (Call::Finish, Some(instances)) = (call, instances.as_deref_mut()) {
                instances.remove(&n);
            }
            p.pos += 1;
        }
        self.reply(p);
        Ok(())
    }

    /// Node `n`'s inputs for a job: the chunk for a source node, else what its upstream nodes
    /// gave. `None` when a chunk (or a whole run) lacks one; a session's end goes ahead with
    /// what there is.
    fn gather(&self, n: usize, call: Call, p: &mut Progress) -> Option<Option<Inputs>> {
        let graph = &self.table.graph;
        if let Some(slot) = self.sources.iter().position(|&s| s == n) {
            return Some(p.chunk.as_mut().and_then(|c| c[slot].take()).map(Inputs::single));
        }
        let mut entries = Vec::with_capacity(graph.nodes[n].inputs.len());
        let mut missing = false;
        for &e in &graph.nodes[n].inputs {
            let edge = &graph.edges[e];
            p.uses[edge.from] -= 1;
            let value = if p.uses[edge.from] == 0 { p.outputs[edge.from].take() } else { p.outputs[edge.from].clone() };
            let selected = value.map(|v| select_output(graph, v, edge.output_key.as_deref(), Some(edge.from), n)).transpose();
            match selected {
                Ok(Some(v)) => entries.push((edge.port.clone(), v)),
                Ok(None) => missing = true,
                Err(e) => {
                    p.error.get_or_insert(e);
                    missing = true;
                }
            }
        }
        if missing && call != Call::Finish {
            return None;
        }
        Some(if entries.is_empty() { None } else { Some(Inputs::from_ports(entries)) })
    }

    fn reply(&mut self, mut p: Progress) {
        let graph = &self.table.graph;
        let result = match p.error.take() {
            Some(e) => Err(e),
            None => Ok(RunOutput {
                outputs: self.outputs.iter().filter_map(|&s| p.outputs[s].take().map(|o| (graph.nodes[s].id.clone(), o))).collect(),
                finished: None,
            }),
        };
        p.outputs.clear();
        p.uses.clear();
        self.spare = Some((std::mem::take(&mut p.outputs), std::mem::take(&mut p.uses)));
        self.deliver(p.job, result);
    }

    /// A job's result to its reply (or kept for `InlineSession::run`), its error named by the
    /// job's run, its time recorded when metrics are on.
    fn deliver(&mut self, job: ChunkJob, mut result: Result<RunOutput, NodeError>) {
        if let Err(e) = &mut result {
            e.run = Some(job.run);
        }
        if let Some(t) = job.started {
            self.stats.borrow_mut().runs.record_items(t.elapsed(), 1, result.is_err() as u64);
        }
        match job.reply {
            Some(reply) => reply(Ok(vec![result])),
            None => self.kept = Some(result),
        }
    }
}

impl Drop for SessionWorker {
    /// The dataflow is going away (the pipeline closed, the pool is failing): every job still
    /// held gets its answer.
    fn drop(&mut self) {
        for (_, mut state) in self.sessions.drain() {
            fail_jobs(state.paused.take().map(|p| p.job).into_iter().chain(state.backlog.drain(..)), CLOSED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{AudioBuffer, Payload};
    use crate::nodes::Registry;
    use crate::runtime::retry::RealClock;
    use crate::runtime::runner::Factories;

    /// Which graphs a whole run may pass straight down ([`straight_chain`]): a chain whose last
    /// node is the only output, and nothing with a fork, a join, a selected part, a named port
    /// or a middle node's output returned.
    #[test]
    fn straight_chains_are_told_from_other_graphs() {
        let registry = Registry::builtin();
        let graph = |nodes: &str, edges: &str, extra: &str| {
            let text = format!(r#"{{"version":"1.0","nodes":[{nodes}],"edges":[{edges}]{extra}}}"#);
            crate::manifest::load_str(&text, &registry).expect("manifest")
        };
        let chain = |g: &Graph| straight_chain(g, &g.output_nodes());
        let gain = |id: &str| format!(r#"{{"id":"{id}","type":"GainNode","params":{{"gain_db":1.0}}}}"#);
        let three = [gain("a"), gain("b"), gain("c")].join(",");
        let ab_bc = r#"{"from":"a","to":"b"},{"from":"b","to":"c"}"#;
        assert!(chain(&graph(&gain("a"), "", "")), "one node");
        assert!(chain(&graph(&three, ab_bc, "")), "a -> b -> c");
        assert!(chain(&graph(&three, r#"{"from":"b","to":"a"},{"from":"a","to":"c"}"#, "")), "b -> a -> c, out of manifest order");
        assert!(!chain(&graph(&three, r#"{"from":"a","to":"b"},{"from":"a","to":"c"}"#, "")), "a fork");
        assert!(!chain(&graph(&three, ab_bc, r#","outputs":["b","c"]"#)), "a middle node's output returned");
        assert!(!chain(&graph(&three, "", "")), "three sources");
        let vad = r#"{"id":"v","type":"VADNode","params":{"frame_duration_ms":30}},{"id":"g","type":"GainNode","params":{"gain_db":1.0}}"#;
        assert!(!chain(&graph(vad, r#"{"from":"v","to":"g","output_key":"audio"}"#, "")), "a selected part");
        let mix = r#"{"id":"a","type":"GainNode","params":{"gain_db":1.0}},{"id":"m","type":"MixNode","params":{}}"#;
        assert!(!chain(&graph(mix, r#"{"from":"a","to":"m","input_key":"x"}"#, "")), "a named port");
    }

    /// A session's chunk whose first node must be retried waits out the delay, then goes on
    /// through the rest of the chain on the session's own resampler; the chunks after it and
    /// the end follow in order: every reply is that of a session whose node never failed.
    #[test]
    fn a_retried_chunk_of_a_chain_keeps_its_session_in_order() {
        use std::sync::atomic::AtomicU32;
        struct Flaky(Arc<AtomicU32>);
        impl Node for Flaky {
            fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
                if self.0.load(Ordering::SeqCst) > 0 {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                    return Err(NodeError::transient("not yet"));
                }
                // Halves the samples, so a chunk that skipped this node would show.
                let a = crate::nodes::expect_audio(inputs.one()?)?;
                let half = a.as_f32().unwrap_or(&[]).iter().map(|x| x * 0.5).collect();
                Ok(Payload::Audio(AudioBuffer::mono_f32(half, a.sample_rate)))
            }
        }
        let fails = Arc::new(AtomicU32::new(0));
        let mut registry = Registry::builtin();
        let f = Arc::clone(&fails);
        registry.register(crate::nodes::NodeType::new("FlakyNode", "test", move |_| Ok(Box::new(Flaky(Arc::clone(&f))))));
        let text = r#"{"version":"1.0","nodes":[
            {"id":"flaky","type":"FlakyNode","reliability":{"retry_policy":"fixed","max_retries":3,"retry_base_delay_ms":1}},
            {"id":"rs","type":"AudioResampleNode","params":{"output_rate":16000}}],
            "edges":[{"from":"flaky","to":"rs"}]}"#;
        let graph = crate::manifest::load_str(text, &registry).expect("manifest");
        let factories = Factories::resolve(&graph, &registry).expect("factories");
        let table = Arc::new(NodeTable::new(graph, factories, Arc::new(RealClock::new()), 0));
        let x: Vec<f32> = (0..4800).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
        let session = |fail_at: usize, sleeps: &mut usize| {
            let mut session = InlineSession::new(Arc::clone(&table), 0);
            assert!(session.worker.chain, "flaky -> rs is a straight chain");
            let got = Arc::new(Mutex::new(Vec::new()));
            for (k, c) in x.chunks(960).map(Some).chain([None]).enumerate() {
                if k == fail_at {
                    fails.store(2, Ordering::SeqCst);
                }
                let sink = Arc::clone(&got);
                let chunk = c.map(|c| vec![Payload::Audio(AudioBuffer::mono_f32(c.to_vec(), 48000))]);
                let reply: Reply = Box::new(move |r| sink.lock().unwrap().push(r));
                session.run(ChunkJob { session: 0, run: k as u64, chunk, reply: Some(reply), started: None }, || false, &mut |d| {
                    *sleeps += 1;
                    std::thread::sleep(d)
                });
                assert_eq!(got.lock().unwrap().len(), k + 1, "chunk {k} replied before run returned");
            }
            let replies = std::mem::take(&mut *got.lock().unwrap());
            replies
                .into_iter()
                .map(|r| {
                    let mut items = r.expect("the push");
                    let out = items.pop().expect("one item").expect("no node error");
                    out.get("rs").and_then(Payload::audio).and_then(|a| a.as_f32()).map(<[f32]>::to_vec).unwrap_or_default()
                })
                .collect::<Vec<_>>()
        };
        let (mut none, mut two) = (0, 0);
        let clean = session(usize::MAX, &mut none);
        let retried = session(2, &mut two);
        assert_eq!((none, two, fails.load(Ordering::SeqCst)), (0, 2, 0), "two retry delays waited out, on chunk 2 only");
        assert_eq!(retried, clean);
        assert!(clean.iter().map(Vec::len).sum::<usize>() == 1600, "4800 frames at 48 kHz are 1600 at 16 kHz");
    }

    /// The executor alone, on the calling thread (no pool, no timely): each chunk is replied to
    /// before `run` returns, in order, and the end flushes the resampler's tail, so the pieces add
    /// up to the whole signal's length at the new rate.
    #[test]
    fn an_inline_session_replies_to_each_chunk_at_once_and_flushes_at_its_end() {
        let text = r#"{"version":"1.0","nodes":[{"id":"rs","type":"AudioResampleNode","params":{"output_rate":16000}}]}"#;
        let registry = Registry::builtin();
        let graph = crate::manifest::load_str(text, &registry).expect("manifest");
        let factories = Factories::resolve(&graph, &registry).expect("factories");
        let table = Arc::new(NodeTable::new(graph, factories, Arc::new(RealClock::new()), 0));
        let mut session = InlineSession::new(table, 0);
        let x: Vec<f32> = (0..4800).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
        let got = Arc::new(Mutex::new(Vec::new()));
        for (k, c) in x.chunks(960).map(Some).chain([None]).enumerate() {
            let sink = Arc::clone(&got);
            let chunk = c.map(|c| vec![Payload::Audio(AudioBuffer::mono_f32(c.to_vec(), 48000))]);
            let reply: Reply = Box::new(move |r| sink.lock().unwrap().push(r));
            session.run(ChunkJob { session: 0, run: k as u64, chunk, reply: Some(reply), started: None }, || false, &mut std::thread::sleep);
            assert_eq!(got.lock().unwrap().len(), k + 1, "chunk {k} replied before run returned");
        }
        let total: usize = got
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                let items = r.as_ref().expect("the chunk ran");
                let out = items[0].as_ref().expect("its outputs");
                out.get("rs").and_then(|p| p.audio()).map_or(0, |a| a.samples.len())
            })
            .sum();
        assert_eq!(total, 1600, "4800 samples at 48 kHz are 1600 at 16 kHz");
    }
}
