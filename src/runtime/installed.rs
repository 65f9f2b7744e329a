//! An installed pipeline's shared state: what its operators on every worker and its handle both
//! reach. The handle queues runs and session jobs here; worker 0's input operator takes the runs,
//! each worker's session operator its sessions' jobs; the collected nodes (outputs and sinks)
//! deliver into the run table.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use timely::scheduling::SyncActivator;

use crate::data::Payload;
use crate::error::{Error, NodeError};
use crate::graph::Graph;
use crate::metrics::NodeStats;
use crate::runtime::lanes::{self, Lanes, Placement};
use crate::runtime::runner::NodeTable;
use crate::runtime::runs::{catch_load, fail_runs, ItemHandler, ItemInput, KeyedIo, Loader, PendingRun, Reply, RunInput, RunTable, Settled};
use crate::runtime::sessions::{ChunkJob, SessionQueues};

/// One item on its way from the input operator to the loader: its run, index and lane, and its
/// input (see [`EntryInput`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    pub run: u64,
    pub item: u64,
    /// The worker it is placed on (see lanes.rs), or its index where items are not balanced;
    /// for an [`EntryInput::Queued`] entry, the worker that takes from the queue.
    pub lane: u32,
    pub input: EntryInput,
}

/// What an [`Entry`] carries of its item's input.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum EntryInput {
    /// Its payload per source node.
    Ready(Vec<Payload>),
    /// Made by the loader staged under `(run, item)` in [`Installed::staged`] (this process only).
    Staged,
    /// Made by the [`KeyedIo`] of the process the item lands in, from this key.
    Keyed(u64),
    /// Not an item: the run's items wait in this queue, and the worker that receives the entry
    /// takes a few at a time as it becomes free (see [`ItemQueue`]). Never leaves its process:
    /// only a pool of one process queues items.
    #[serde(skip)]
    Queued(Arc<ItemQueue>),
}

/// A run's items, each taken by whichever of the process's workers is free first: every worker
/// gets an [`EntryInput::Queued`] entry for the run, and its loader takes the next items (see
/// [`take`](Self::take)) only once those it took before have gone on to its node operators.
///
/// Why not place each item on a worker when the run starts (lanes.rs): on a machine with no
/// core to spare, the caller's thread (building each result into Python objects, handing the
/// next part over) takes its CPU from one worker at a time. The items placed on that worker
/// waited while the other finished its own and parked: with 2 workers on 2 cores, the
/// preempted worker was switched out involuntarily 170-300 times a 2,048-item batch, the other
/// parked 68-96 times, and the pool kept 1.55-1.89 cores busy (docs/performance.md). Taken as they become free, the
/// items go to the worker that has the CPU.
#[derive(Debug)]
pub struct ItemQueue {
    /// Per item: its index in its run, its input and its weight (see lanes.rs).
    items: Mutex<VecDeque<(u64, EntryInput, u64)>>,
    /// The workers taking from it.
    takers: usize,
}

/// The work a loader takes from a queue at a time, in samples (its items' weights): one item of
/// 1 s or more, several short ones. Why: each take costs the worker a round of timely's
/// scheduling and progress tracking; taken one by one, 0.01 s items ran 3-5 % slower.
pub(crate) const TAKE_WEIGHT: u64 = 24_000;

impl ItemQueue {
    /// `items`: each one's input and weight, in run order; `takers`: the workers given it.
    pub(crate) fn new(items: impl IntoIterator<Item = (EntryInput, u64)>, takers: usize) -> ItemQueue {
        let items = items.into_iter().enumerate().map(|(i, (e, w))| (i as u64, e, w)).collect();
        ItemQueue { items: Mutex::new(items), takers: takers.max(1) }
    }

    /// The next items not yet taken, with their indices in their run: at least one (none once
    /// the queue is empty), more while they weigh less than `weight` together, but never more
    /// than a fair share of what is left (its length over the takers, rounded up), so that a
    /// few short items still go to as many workers as they can.
    pub(crate) fn take(&self, weight: u64, into: &mut Vec<(u64, EntryInput)>) {
        let mut items = lock(&self.items);
        let share = items.len().div_ceil(self.takers);
        let mut taken = 0u64;
        for _ in 0..share {
            if taken >= weight {
                break;
            }
            let Some((i, input, w)) = items.pop_front() else { break };
            taken += w.max(1);
            into.push((i, input));
        }
    }
}

/// One run waiting for the input operator.
pub(crate) struct Submission {
    pub run: u64,
    /// Per item, its input and its weight for placement.
    pub items: Vec<(EntryInput, u64)>,
    /// Entered into the table of runs in flight by the input operator, on worker 0: the caller
    /// touches only the queue, so the table's memory stays with the workers.
    pub pending: PendingRun,
}

pub(crate) struct InputQueue {
    pub pending: VecDeque<Submission>,
    pub closed: bool,
}

/// What the pipeline's operators (on every worker) and its handle share.
pub(crate) struct Installed {
    pub id: u64,
    pub nodes: Arc<NodeTable>,
    /// Node indices of the source nodes, manifest order.
    pub sources: Vec<usize>,
    /// Node indices of the sink nodes, manifest order: once their frontiers pass a run, nothing
    /// more can come for it (every collected node is a sink or upstream of one).
    pub sinks: Vec<usize>,
    /// The nodes each run collects a result from, by slot: first the run's outputs (the graph's
    /// `output_nodes`, in order), then the sinks that are not outputs. A run waits for every one
    /// of them (so it still reports a failing sink's error) but returns only the first
    /// `returned` (the run table keeps nothing of the others).
    pub collected: Vec<usize>,
    pub returned: usize,
    pub queue: Mutex<InputQueue>,
    /// Worker 0's input operator, woken when a run is queued.
    pub activator: OnceLock<SyncActivator>,
    pub runs: RunTable,
    /// The id the next run or push gets: runs are timely epochs, so their ids are drawn under the
    /// queue's lock, in queue order. Streaming sessions draw theirs in blocks ([`RunIds`]).
    pub next_run: AtomicU64,
    pub next_session: AtomicU64,
    /// Loaders of items made on their workers, by (run, item), until the loader operator there
    /// takes them.
    pub staged: Mutex<HashMap<(u64, u64), Loader>>,
    /// This process's loader and finisher of keyed items ([`ItemInput::Keyed`]), if installed
    /// with one.
    pub keyed: Option<KeyedIo>,
    /// Streaming sessions' jobs, one queue per worker of this process.
    pub sessions: SessionQueues,
    /// Timely's index of this process's first worker.
    pub first_worker: usize,
    /// The pool spans processes: runs live only on process 0, so node errors are queued here and
    /// travel to worker 0 through the dataflow (see `dataflow::forward_to_first`).
    pub cross_process: bool,
    /// Outstanding work per worker, when whole items are balanced over several workers of one
    /// process (see lanes.rs); `None` for one worker or a process group.
    pub lanes: Option<Arc<Lanes>>,
    /// A run of several items queues them for the workers to take instead ([`ItemQueue`]).
    pub take_items: bool,
    pub queued_errors: Mutex<Vec<(u64, u64, NodeError)>>,
    /// Node operators that may hold items waiting for a retry: woken on close so that those
    /// items fail at once instead of keeping the dataflow alive until their delay ends.
    pub retry_wakers: Mutex<Vec<SyncActivator>>,
}

/// Run ids a streaming session numbers its chunks with, taken from the pipeline's counter
/// [`RUN_ID_BLOCK`] at a time: ids stay unique in the pipeline and rise within a session. Why
/// not the next id for every chunk: that made one shared cache line that every thread pushing
/// into any session wrote to on every push (and that the fields beside it, read on every push,
/// shared), the kind of contention that grows with the pushing threads; a block is one write per
/// thousand pushes. Gaps are harmless: dataflow runs take their ids above whatever was drawn.
#[derive(Debug, Default)]
pub struct RunIds {
    next: u64,
    end: u64,
}

/// How many run ids a session draws at a time (see [`RunIds`]).
pub const RUN_ID_BLOCK: u64 = 1024;

impl RunIds {
    /// The next id of this block, drawing a new block from `counter` when it is used up.
    pub fn next(&mut self, counter: &AtomicU64) -> u64 {
        if self.next == self.end {
            self.next = counter.fetch_add(RUN_ID_BLOCK, Ordering::SeqCst);
            self.end = self.next + RUN_ID_BLOCK;
        }
        self.next += 1;
        self.next - 1
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere; the data is still consistent for our use.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Installed {
    /// `workers`: this process's; `process`/`processes`: its place in its group (0 of 1 alone);
    /// `placement`: the pool's (see lanes.rs).
    /// `keyed`: this process's I/O for keyed items.
    pub fn new(id: u64, nodes: NodeTable, workers: usize, process: usize, processes: usize, placement: Placement, keyed: Option<KeyedIo>) -> Installed {
        let graph = &nodes.graph;
        let sources: Vec<usize> = graph.sources().collect();
        let sinks: Vec<usize> = graph.sinks().collect();
        let outputs = graph.output_nodes();
        let returned = outputs.len();
        let output_ids = outputs.iter().map(|&s| graph.nodes[s].id.clone()).collect();
        let collected: Vec<usize> = outputs.iter().chain(sinks.iter().filter(|s| !outputs.contains(s))).copied().collect();
        let cross_process = processes > 1;
        // Several workers in one process: items are spread by the pool's placement.
        let spread = workers > 1 && !cross_process;
        Installed {
            id,
            nodes: Arc::new(nodes),
            sources,
            sinks,
            collected,
            returned,
            queue: Mutex::new(InputQueue { pending: VecDeque::new(), closed: false }),
            activator: OnceLock::new(),
            runs: RunTable::new(output_ids),
            next_run: AtomicU64::new(0),
            next_session: AtomicU64::new(0),
            staged: Mutex::new(HashMap::new()),
            keyed,
            sessions: SessionQueues::new(workers),
            first_worker: process * workers,
            cross_process,
            lanes: (spread && placement != Placement::ByIndex).then(|| Arc::new(Lanes::new(workers))),
            take_items: spread && placement == Placement::Taken,
            queued_errors: Mutex::new(Vec::new()),
            retry_wakers: Mutex::new(Vec::new()),
        }
    }

    pub fn graph(&self) -> &Graph {
        &self.nodes.graph
    }

    /// Whether the pipeline has been closed (its handle dropped).
    pub fn is_closed(&self) -> bool {
        self.lock_queue().closed
    }

    pub fn lock_queue(&self) -> MutexGuard<'_, InputQueue> {
        lock(&self.queue)
    }

    /// Records the first error an item meets, completing the item (and its run) if that settles
    /// it. `runs`: the recording worker's run latencies.
    pub fn record_error(&self, run: u64, item: u64, error: NodeError, runs: Option<&mut NodeStats>) {
        if self.cross_process {
            lock(&self.queued_errors).push((run, item, error));
            return;
        }
        self.runs.fail(run, item, error).complete(&self.runs, runs);
    }

    /// Queues one run of `items` (one epoch); `reply` is called when all are settled, and
    /// `on_item`, if given, with each item as it settles. Returns the run's id.
    pub fn submit(&self, items: Vec<ItemInput>, reply: Reply, on_item: Option<ItemHandler>, timed: bool) -> Result<u64, Error> {
        let mut prepared = Vec::with_capacity(items.len());
        let mut loaders = Vec::new();
        let mut failed = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let input = match item {
                ItemInput::Ready(input) => input,
                ItemInput::Keyed { weight, key } => {
                    let Some(io) = &self.keyed else {
                        return Err(Error::Engine("keyed items need a pipeline installed with a keyed loader (install_keyed)".into()));
                    };
                    if self.cross_process {
                        // Only a key crosses processes: the process the item lands in makes it.
                        prepared.push((EntryInput::Keyed(key), weight.max(1)));
                    } else {
                        // In one process a key is a loader like any other.
                        let io = io.clone();
                        prepared.push((EntryInput::Staged, weight.max(1)));
                        loaders.push((i as u64, Box::new(move || (io.load)(key)) as Loader));
                    }
                    continue;
                }
                // A process group cannot send a loader to another process: it runs here.
                ItemInput::Load { load, .. } if self.cross_process => match catch_load(load) {
                    Ok(input) => input,
                    Err(e) => {
                        prepared.push((EntryInput::Staged, 1));
                        failed.push((i as u64, e));
                        continue;
                    }
                },
                ItemInput::Load { weight, load } => {
                    prepared.push((EntryInput::Staged, weight.max(1)));
                    loaders.push((i as u64, load));
                    continue;
                }
            };
            let payloads = self.route(input)?;
            let weight = lanes::weight(payloads.first());
            prepared.push((EntryInput::Ready(payloads), weight));
        }
        let mut pending = PendingRun::new(prepared.len(), self.collected.len(), reply, on_item, timed.then(Instant::now));
        for (i, e) in failed {
            pending.fail_before_start(i, e);
        }
        let run = {
            let mut q = self.lock_queue();
            if q.closed {
                return Err(Error::Engine("the pipeline has been closed".into()));
            }
            let run = self.next_run.fetch_add(1, Ordering::SeqCst);
            if !loaders.is_empty() {
                let mut staged = lock(&self.staged);
                staged.extend(loaders.into_iter().map(|(i, l)| ((run, i), l)));
            }
            q.pending.push_back(Submission { run, items: prepared, pending });
            run
        };
        match self.activator.get().map(|a| a.activate()) {
            Some(Ok(())) => Ok(run),
            _ => {
                self.fail_all("the worker pool is no longer running");
                Err(Error::Engine("the worker pool is no longer running".into()))
            }
        }
    }

    /// Takes the loader staged for an item (none for an item whose loading already failed).
    pub fn take_loader(&self, run: u64, item: u64) -> Option<Loader> {
        lock(&self.staged).remove(&(run, item))
    }

    /// Queues a streaming session's chunk (`None`: its end) for the session's worker, numbered
    /// from the session's `ids`.
    pub fn submit_chunk(&self, session: u64, input: Option<RunInput>, reply: Reply, ids: &mut RunIds) -> Result<(), Error> {
        self.sessions.push(self.chunk_job(session, input, Some(reply), Some(ids))?)
    }

    /// A chunk (`None`: a session's end) as a job: split over the source nodes, with a run id
    /// (the next of `ids`, or the pipeline's next for `None`). `reply`: `None` for a job its
    /// caller runs on its own executor and takes the result of.
    pub fn chunk_job(&self, session: u64, input: Option<RunInput>, reply: Option<Reply>, ids: Option<&mut RunIds>) -> Result<ChunkJob, Error> {
        let chunk = input.map(|i| self.route(i)).transpose()?;
        let run = match ids {
            Some(ids) => ids.next(&self.next_run),
            None => self.next_run.fetch_add(1, Ordering::SeqCst),
        };
        let started = self.nodes.metrics.then(Instant::now);
        Ok(ChunkJob { session, run, chunk, reply, started })
    }

    /// Fails every run in flight or still queued, and every session job (the pool died).
    pub fn fail_all(&self, message: &str) {
        let queued: Vec<PendingRun> = self.lock_queue().pending.drain(..).map(|s| s.pending).collect();
        lock(&self.staged).clear();
        fail_runs(queued.into_iter().chain(self.runs.take_all()).collect(), message);
        self.sessions.close(message);
    }

    /// Stops accepting runs and session jobs; the input operator releases its capabilities and
    /// the dataflow ends.
    pub fn close(&self) {
        self.lock_queue().closed = true;
        self.sessions.close("the pipeline has been closed");
        if let Some(a) = self.activator.get() {
            let _ = a.activate();
        }
        for w in lock(&self.retry_wakers).iter() {
            let _ = w.activate();
        }
    }

    /// Splits one item's input over the source nodes.
    pub fn route(&self, input: RunInput) -> Result<Vec<Payload>, Error> {
        let graph = self.graph();
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
                    let id = &graph.nodes[s].id;
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
        self.sources.iter().map(|&s| self.graph().nodes[s].id.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// Settles nothing: for call sites that enter a run that may be empty.
    pub fn enter(&self, run: u64, pending: PendingRun) -> Settled {
        self.runs.insert(run, pending)
    }
}

#[cfg(test)]
mod tests {
    //! What a pipeline's operators and its handle share, without a pool or timely.
    use super::*;
    use crate::data::AudioBuffer;
    use crate::nodes::Registry;
    use crate::runtime::retry::RealClock;
    use crate::runtime::runner::Factories;
    use std::collections::BTreeMap;

    /// Ids drawn in blocks rise one at a time within a block, a used-up block draws the next
    /// free one, and two drawers at once get disjoint blocks: one counter update per
    /// `RUN_ID_BLOCK` ids.
    #[test]
    fn run_ids_come_a_block_at_a_time_unique_across_drawers() {
        let counter = AtomicU64::new(5);
        let (mut a, mut b) = (RunIds::default(), RunIds::default());
        assert_eq!((a.next(&counter), b.next(&counter), a.next(&counter)), (5, 5 + RUN_ID_BLOCK, 6));
        assert_eq!(counter.load(Ordering::SeqCst), 5 + 2 * RUN_ID_BLOCK, "two blocks drawn, one write each");
        let ids: Vec<u64> = (0..RUN_ID_BLOCK).map(|_| a.next(&counter)).collect();
        assert_eq!(ids[..RUN_ID_BLOCK as usize - 2], (7..5 + RUN_ID_BLOCK).collect::<Vec<_>>()[..]);
        assert_eq!(ids[RUN_ID_BLOCK as usize - 2..], [5 + 2 * RUN_ID_BLOCK, 6 + 2 * RUN_ID_BLOCK], "a used-up block draws the next free one");
        assert_eq!(counter.load(Ordering::SeqCst), 5 + 3 * RUN_ID_BLOCK);
    }

    /// A worker takes queued items until they weigh `TAKE_WEIGHT` together (at least one, so an
    /// item heavier than that goes alone) or it has its share of what is left, in run order, each
    /// with its index in the run.
    #[test]
    fn a_queue_gives_its_items_in_order_a_fair_share_of_a_take_weight_at_a_time() {
        let takes = |weights: &[u64], takers: usize| {
            let queue = ItemQueue::new(weights.iter().map(|&w| (EntryInput::Keyed(w), w)), takers);
            let mut takes = Vec::new();
            loop {
                let mut taken = Vec::new();
                queue.take(TAKE_WEIGHT, &mut taken);
                if taken.is_empty() {
                    return takes;
                }
                for (i, e) in &taken {
                    assert!(matches!(e, EntryInput::Keyed(w) if *w == weights[*i as usize]), "item {i} carries its own input");
                }
                takes.push(taken.iter().map(|(i, _)| *i).collect::<Vec<_>>());
            }
        };
        // By weight: three of 10,000 reach 24,000; 50,000 goes alone; the last two weigh 1.
        assert_eq!(takes(&[10_000, 10_000, 10_000, 50_000, 1, 0], 1), vec![vec![0, 1, 2], vec![3], vec![4, 5]]);
        // By share: ten light items over 2 workers: 5 (of 10), 3 (of 5), 1, 1.
        assert_eq!(takes(&[100; 10], 2), vec![vec![0, 1, 2, 3, 4], vec![5, 6, 7], vec![8], vec![9]]);
        // Heavy items go one at a time whatever the share.
        assert_eq!(takes(&[48_000; 3], 2), vec![vec![0], vec![1], vec![2]]);
    }

    /// Two sources (`a`, `b`) merged by a mixer.
    fn installed() -> Installed {
        let text = r#"{"version":"1.0","nodes":[
            {"id":"a","type":"GainNode"},{"id":"b","type":"GainNode"},
            {"id":"m","type":"MixNode"}],
            "edges":[{"from":"a","to":"m","input_key":"x"},{"from":"b","to":"m","input_key":"y"}]}"#;
        let registry = Registry::builtin();
        let graph = crate::manifest::load_str(text, &registry).expect("manifest");
        let factories = Factories::resolve(&graph, &registry).expect("factories");
        Installed::new(0, NodeTable::new(graph, factories, Arc::new(RealClock::new()), 0), 1, 0, 1, Placement::Taken, None)
    }

    fn audio(v: f32) -> Payload {
        Payload::Audio(AudioBuffer::mono_f32(vec![v; 4], 8000))
    }

    /// One payload for every source is copied to each; named inputs go to their sources in the
    /// graph's source order; a missing or unknown name is an input error naming the sources.
    #[test]
    fn inputs_are_routed_to_the_source_nodes_by_name() {
        let inst = installed();
        let all = inst.route(RunInput::All(audio(1.0))).expect("all");
        assert_eq!(all.len(), 2);
        let named = inst.route(RunInput::Named(BTreeMap::from([("b".to_string(), audio(2.0)), ("a".to_string(), audio(1.0))]))).expect("named");
        let firsts: Vec<f32> = named.iter().map(|p| p.audio().and_then(|a| a.as_f32()).unwrap()[0]).collect();
        assert_eq!(firsts, vec![1.0, 2.0], "a's input first, as the graph lists its sources");
        let missing = inst.route(RunInput::Named(BTreeMap::from([("a".to_string(), audio(1.0))]))).err().expect("missing");
        assert_eq!(missing.to_string(), Error::Input("no input named 'b': every source node needs one (source nodes: a, b)".into()).to_string());
        let extra = inst
            .route(RunInput::Named(BTreeMap::from([("a".to_string(), audio(1.0)), ("b".to_string(), audio(1.0)), ("c".to_string(), audio(1.0))])))
            .err()
            .expect("extra");
        assert_eq!(extra.to_string(), Error::Input("input named 'c' matches no source node (source nodes: a, b)".into()).to_string());
    }
}
