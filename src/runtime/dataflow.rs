//! Compiles an installed graph into timely operators on one worker: an input operator that turns
//! queued runs into epochs, a loader that makes each item's input on the worker it is placed on,
//! one operator per node, the collectors that complete runs (collect.rs), and the operator that
//! runs this worker's streaming sessions (sessions.rs).
//!
//! Every worker calls [`build`] with the same graph and builds the same operators in the same
//! order (the graph's deterministic topological order).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::{Exchange, ParallelizationContract, Pipeline as LocalPact};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::{Scope, Stream};
use timely::worker::Worker;

use crate::data::Payload;
use crate::error::NodeError;
use crate::graph::Graph;
use crate::metrics::WorkerStats;
use crate::nodes::Inputs;
use crate::runtime::collect;
use crate::runtime::installed::{Entry, EntryInput, Installed, ItemQueue, TAKE_WEIGHT};
use crate::runtime::runner::{select_output, Call, NodeRunner, Outcome, Retry};
use crate::runtime::runs::{cancelled_error, catch_load, Loader};
use crate::runtime::sessions::SessionWorker;

/// One item's payload on an edge. `run` is also the record's timely time (carried in the record
/// so no operator depends on how timely stamps batches); `item` indexes the item within its run;
/// `lane` is the worker the item was placed on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub run: u64,
    pub item: u64,
    pub lane: u32,
    pub payload: Payload,
}

pub(crate) type RecordStream<'scope> = Stream<'scope, u64, Vec<Record>>;
type EntryStream<'scope> = Stream<'scope, u64, Vec<Entry>>;
type Stats = Rc<RefCell<WorkerStats>>;

/// The keyed items this worker loaded and will finish (their home, in a process group), with
/// their keys, by (run, item): shared by its loader and its home collector (collect.rs).
pub(crate) type Homed = Rc<RefCell<std::collections::HashMap<(u64, u64), u64>>>;

/// Builds `installed`'s dataflow on this worker. Returns the first node-construction error, if
/// any; the operators are built regardless, so that every worker's dataflow has the same shape.
pub(crate) fn build(worker: &mut Worker, installed: &Arc<Installed>, stats: Stats) -> Result<(), NodeError> {
    let graph = Arc::clone(&installed.nodes.graph);
    let index = worker.index();
    let mut first_error = None;
    let name = format!("pipeline-{}", installed.id);
    worker.dataflow_named::<u64, _, _>(&name, |scope| {
        let entries = input_operator(scope, installed, Rc::clone(&stats));
        let homed = Homed::default();
        let loaded = if scope.peers() == 1 {
            load_operator(scope, installed, entries, LocalPact, Rc::clone(&stats), Rc::clone(&homed))
        } else {
            load_operator(scope, installed, entries, Exchange::new(|e: &Entry| e.lane as u64), Rc::clone(&stats), Rc::clone(&homed))
        };
        let mut source_streams = loaded.into_iter();
        let slots = placement_slots(&graph);
        let mut node_out: Vec<Option<RecordStream>> = vec![None; graph.nodes.len()];
        let mut source_of = vec![None; graph.nodes.len()];
        for &s in &installed.sources {
            source_of[s] = source_streams.next();
        }
        for &n in &graph.order {
            let gn = &graph.nodes[n];
            let mut runner = NodeRunner::new(Arc::clone(&installed.nodes), n, index, Rc::clone(&stats));
            if let Some(e) = runner.build_now() {
                first_error.get_or_insert_with(|| e.clone());
            }
            let mut ins: Vec<(RecordStream, Port)> = Vec::new();
            if let Some(stream) = source_of[n].take() {
                ins.push((stream, Port { from: None, output_key: None, name: crate::nodes::DEFAULT_PORT.to_string() }));
            }
            for &e in &gn.inputs {
                let edge = &graph.edges[e];
                let upstream = node_out[edge.from].clone().expect("topological order builds sources first");
                ins.push((upstream, Port { from: Some(edge.from), output_key: edge.output_key.clone(), name: edge.port.clone() }));
            }
            // An output or a sink hands its results straight to their runs, unless they must
            // travel to process 0 (an output with downstream nodes sends them on as well).
            let sink_slot = if installed.cross_process { None } else { installed.collected.iter().position(|&s| s == n) };
            let op = NodeOperator { installed: Arc::clone(installed), n, runner, sink_slot, stats: Rc::clone(&stats) };
            // One worker: records stay where they are. Several: route by lane and branch slot.
            let slot = slots[n];
            node_out[n] = Some(if scope.peers() == 1 {
                node_operator(scope, op, ins, || LocalPact)
            } else {
                node_operator(scope, op, ins, || Exchange::new(move |r: &Record| (r.lane as u64).wrapping_add(slot)))
            });
        }
        let streams = |nodes: &[usize]| -> Vec<RecordStream> {
            nodes.iter().map(|&s| node_out[s].clone().expect("every node was built")).collect()
        };
        if installed.cross_process {
            collect::cluster(scope, installed, streams(&installed.collected), Rc::clone(&stats), homed);
        } else {
            // Every collected node is a sink or upstream of one: once the sinks' frontiers pass a
            // run, nothing more can come for it from any of them.
            collect::collector(scope, installed, streams(&installed.sinks), Rc::clone(&stats));
        }
        session_operator(scope, installed, stats);
    });
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Where one of a node's inputs comes from: the producing node (none for the run's input), the
/// part of its output the edge takes, and the port it feeds.
struct Port {
    from: Option<usize>,
    output_key: Option<String>,
    name: String,
}

/// Which worker a node's records go to is `(lane + slot) % workers`: nodes in a linear chain
/// share a slot (no hand-over between them), parallel branches get different ones.
fn placement_slots(graph: &Graph) -> Vec<u64> {
    let mut slots = vec![0u64; graph.nodes.len()];
    let mut next = 0u64;
    for &n in &graph.order {
        let node = &graph.nodes[n];
        slots[n] = match node.inputs.as_slice() {
            [e] if graph.nodes[graph.edges[*e].from].outputs.len() == 1 => slots[graph.edges[*e].from],
            _ => {
                let s = next;
                next += 1;
                s
            }
        };
    }
    slots
}

/// The input operator. Only worker 0 holds its capability; it drains the pipeline's queue when
/// activated, places each item on a lane, enters the run into the table of runs in flight, sends
/// its items at the run's epoch and then advances.
fn input_operator<'scope>(scope: Scope<'scope, u64>, installed: &Arc<Installed>, stats: Stats) -> EntryStream<'scope> {
    let mut builder = OperatorBuilder::new("Input".to_owned(), scope);
    let info = builder.operator_info();
    let (output, stream) = builder.new_output::<Vec<Entry>>();
    let mut output = OutputBuilder::<_, timely::container::CapacityContainerBuilder<Vec<Entry>>>::from(output);
    let installed = Arc::clone(installed);
    let worker_index = scope.index();
    let peers = scope.peers();
    if worker_index == 0 {
        let _ = installed.activator.set(scope.worker().sync_activator_for(info.address.to_vec()));
    }
    builder.build(move |mut caps| {
        let mut cap: Option<Capability<u64>> = if worker_index == 0 { caps.pop() } else { None };
        // Swapped with the shared queue under its lock, so neither side allocates per run.
        let mut submissions = std::collections::VecDeque::new();
        move |_frontiers| {
            let Some(held) = cap.as_mut() else { return };
            let (next_run, closed) = {
                let mut q = installed.lock_queue();
                std::mem::swap(&mut q.pending, &mut submissions);
                (installed.next_run.load(std::sync::atomic::Ordering::SeqCst), q.closed)
            };
            let mut out = output.activate();
            for mut sub in submissions.drain(..) {
                if installed.take_items && sub.items.len() > 1 {
                    // Several items on several workers of one process: each worker takes the
                    // next item when it is free (see ItemQueue), so none is given to a worker
                    // that has lost its CPU. At most one entry per item: a run of 2 items wakes
                    // 2 workers, starting from a different one each run.
                    installed.enter(sub.run, sub.pending).complete(&installed.runs, Some(&mut stats.borrow_mut().runs));
                    let takers = sub.items.len().min(peers);
                    let queue = Arc::new(ItemQueue::new(sub.items, takers));
                    let at = held.delayed(&sub.run);
                    let mut session = out.session(&at);
                    for k in 0..takers {
                        let lane = ((sub.run as usize + k) % peers) as u32;
                        session.give(Entry { run: sub.run, item: 0, lane, input: EntryInput::Queued(Arc::clone(&queue)) });
                    }
                    continue;
                }
                // Whole items go to the workers with the least work outstanding; the run gives
                // that work back as its items settle.
                let lanes: Vec<u32> = match &installed.lanes {
                    Some(balance) => {
                        let lanes: Vec<u32> = sub.items.iter().map(|&(_, w)| balance.assign(w)).collect();
                        sub.pending.hold(Arc::clone(balance), lanes.iter().copied().zip(sub.items.iter().map(|&(_, w)| w)).collect());
                        lanes
                    }
                    None => (0..sub.items.len() as u32).collect(),
                };
                // The run is known before its data can reach a sink.
                installed.enter(sub.run, sub.pending).complete(&installed.runs, Some(&mut stats.borrow_mut().runs));
                let at = held.delayed(&sub.run);
                let mut session = out.session(&at);
                for (item, ((input, _), lane)) in sub.items.into_iter().zip(lanes).enumerate() {
                    session.give(Entry { run: sub.run, item: item as u64, lane, input });
                }
            }
            if closed {
                cap = None;
            } else {
                held.downgrade(&next_run);
            }
        }
    });
    stream
}

/// The loader: on the worker each item was placed on, makes the item's input (an item handed
/// over ready passes through) and sends it to every source node. A run's queued items
/// ([`ItemQueue`]) it takes a few at a time (one of 1 s on 2 workers, see [`TAKE_WEIGHT`]), the
/// next only once those have gone on to the node operators, so that a worker holds little more
/// than it is running.
fn load_operator<'scope, P: ParallelizationContract<u64, Vec<Entry>>>(
    scope: Scope<'scope, u64>,
    installed: &Arc<Installed>,
    entries: EntryStream<'scope>,
    pact: P,
    stats: Stats,
    homed: Homed,
) -> Vec<RecordStream<'scope>> {
    let mut builder = OperatorBuilder::new("Load".to_owned(), scope);
    let mut input = builder.new_input(entries, pact);
    let mut outputs = Vec::new();
    let mut streams = Vec::new();
    for _ in &installed.sources {
        let (output, stream) = builder.new_output::<Vec<Record>>();
        outputs.push(OutputBuilder::<_, timely::container::CapacityContainerBuilder<Vec<Record>>>::from(output));
        streams.push(stream);
    }
    let activator = scope.activator_for(Rc::clone(&builder.operator_info().address));
    let own_lane = scope.index() as u32;
    // W/2 times as much on W > 2 workers, like a batch's parts (batch.rs): every take ends in
    // progress messages to every worker.
    let take_weight = TAKE_WEIGHT * (scope.peers() as u64 / 2).max(1);
    let installed = Arc::clone(installed);
    builder.build(move |_caps| {
        // Runs whose queued items this worker takes, oldest first, each with a capability per
        // output that holds the run open here until its queue is empty.
        let mut queued: VecDeque<(u64, Arc<ItemQueue>, Vec<Capability<u64>>)> = VecDeque::new();
        let mut taken = Vec::new();
        move |_frontiers| {
            let mut handles: Vec<_> = outputs.iter_mut().map(|o| o.activate()).collect();
            input.for_each(|cap, data| {
                for Entry { run, item, lane, input } in data.drain(..) {
                    if let EntryInput::Queued(queue) = input {
                        queued.push_back((run, queue, (0..handles.len()).map(|port| cap.delayed(&run, port)).collect()));
                        continue;
                    }
                    for (handle, payload) in handles.iter_mut().zip(make_input(&installed, &stats, &homed, run, item, input).into_iter().flatten()) {
                        handle.session(&cap).give(Record { run, item, lane, payload });
                    }
                }
            });
            while let Some((run, queue, caps)) = queued.front() {
                queue.take(take_weight, &mut taken);
                if taken.is_empty() {
                    queued.pop_front();
                    continue;
                }
                let run = *run;
                for (item, input) in taken.drain(..) {
                    for ((handle, cap), payload) in handles.iter_mut().zip(caps).zip(make_input(&installed, &stats, &homed, run, item, input).into_iter().flatten()) {
                        handle.session(cap).give(Record { run, item, lane: own_lane, payload });
                    }
                }
                // The next items once these have gone on: timely runs the operators they fed
                // before it runs this one again.
                activator.activate();
                break;
            }
        }
    });
    streams
}

/// An item's input per source node, made on this worker; `None` (nothing to send) for an item
/// that failed or was cancelled before it started, recorded against it.
fn make_input(installed: &Installed, stats: &Stats, homed: &Homed, run: u64, item: u64, input: EntryInput) -> Option<Vec<Payload>> {
    let load: Loader = match input {
        EntryInput::Ready(p) => return Some(p),
        // No loader: the item failed before it started (recorded then).
        EntryInput::Staged => installed.take_loader(run, item)?,
        // This worker is the item's home: it finishes it too (collect.rs).
        EntryInput::Keyed(key) => {
            homed.borrow_mut().insert((run, item), key);
            match installed.keyed.clone() {
                Some(io) => Box::new(move || (io.load)(key)),
                None => Box::new(|| Err("this process has no loader for keyed items".to_string())),
            }
        }
        // Queues are taken apart by the loader, never nested.
        EntryInput::Queued(_) => return None,
    };
    if installed.runs.is_cancelled(run) {
        installed.record_error(run, item, cancelled_error(), Some(&mut stats.borrow_mut().runs));
        return None;
    }
    let made = catch_load(load).and_then(|input| installed.route(input).map_err(|e| NodeError::invalid_input(e.to_string())));
    match made {
        Ok(p) => Some(p),
        Err(e) => {
            installed.record_error(run, item, e, Some(&mut stats.borrow_mut().runs));
            None
        }
    }
}

/// One node, run by its [`NodeRunner`], and where its results go.
struct NodeOperator {
    installed: Arc<Installed>,
    n: usize,
    runner: NodeRunner,
    /// For an output or sink node (in a single-process pool), its slot in
    /// `Installed::collected`: its results go straight into their runs instead of through a
    /// collector.
    sink_slot: Option<usize>,
    stats: Stats,
}

impl NodeOperator {
    /// Calls the node for one item; a failure is recorded against the item.
    fn run(&mut self, run: u64, item: u64, inputs: Inputs, retries: u32) -> Option<Result<Payload, Retry>> {
        if self.installed.runs.is_cancelled(run) {
            self.fail(run, item, cancelled_error());
            return None;
        }
        match self.runner.call(Call::Process, Some(inputs), retries, None) {
            Outcome::Done(Some(p)) => Some(Ok(p)),
            Outcome::Done(None) => None,
            Outcome::Retry(r) => Some(Err(r)),
            Outcome::Failed(e) => {
                self.fail(run, item, e);
                None
            }
        }
    }

    fn fail(&self, run: u64, item: u64, e: NodeError) {
        self.installed.record_error(run, item, e, Some(&mut self.stats.borrow_mut().runs));
    }

    /// Sends a result on: a sink's into its run, any other node's `downstream`, and an output's
    /// with downstream nodes both ways.
    fn hand_on(&self, record: Record, downstream: impl FnOnce(Record)) {
        let Some(slot) = self.sink_slot else { return downstream(record) };
        let runs = &self.installed.runs;
        if self.installed.graph().nodes[self.n].outputs.is_empty() {
            let Record { run, item, payload, .. } = record;
            runs.deliver(run, item, slot, Some(payload)).complete(runs, Some(&mut self.stats.borrow_mut().runs));
        } else {
            let (run, item, payload) = (record.run, record.item, record.payload.clone());
            runs.deliver(run, item, slot, Some(payload)).complete(runs, Some(&mut self.stats.borrow_mut().runs));
            downstream(record);
        }
    }
}

/// One node as a timely operator. Single-input nodes process each record as it arrives;
/// multi-input nodes gather an item's inputs from every port, process when all are there, and
/// drop partial gatherings once the frontier shows the rest will never come (an upstream failure).
fn node_operator<'scope, P: ParallelizationContract<u64, Vec<Record>>>(
    scope: Scope<'scope, u64>,
    mut op: NodeOperator,
    inputs: Vec<(RecordStream<'scope>, Port)>,
    pact: impl Fn() -> P,
) -> RecordStream<'scope> {
    let graph = Arc::clone(&op.installed.nodes.graph);
    let mut builder = OperatorBuilder::new(graph.nodes[op.n].id.clone(), scope);
    let mut handles = Vec::new();
    let mut ports = Vec::new();
    for (stream, port) in inputs {
        handles.push(builder.new_input(stream, pact()));
        ports.push(port);
    }
    let (output, stream) = builder.new_output::<Vec<Record>>();
    let mut output = OutputBuilder::<_, timely::container::CapacityContainerBuilder<Vec<Record>>>::from(output);
    // Wakes this operator when a retry falls due (timely's timer: the worker parks meanwhile and
    // keeps running other operators and pipelines).
    let address = builder.operator_info().address;
    let activator = scope.activator_for(Rc::clone(&address));
    if op.runner.retries() {
        op.installed.retry_wakers.lock().unwrap_or_else(|e| e.into_inner()).push(scope.worker().sync_activator_for(address.to_vec()));
    }
    builder.build(move |_caps| {
        let n_ports = ports.len();
        // (run, item) -> capability, lane and what each port has delivered so far.
        let mut gathering: BTreeMap<(u64, u64), Gathering> = BTreeMap::new();
        // Items waiting out a retry delay, each holding its epoch open with a capability.
        let mut waiting: Vec<(Capability<u64>, u64, u64, u32, Retry)> = Vec::new();
        move |frontiers| {
            let mut out = output.activate();
            for (p, handle) in handles.iter_mut().enumerate() {
                handle.for_each(|cap, data| {
                    for Record { run, item, lane, payload } in data.drain(..) {
                        let port = &ports[p];
                        let payload = match select_output(&graph, payload, port.output_key.as_deref(), port.from, op.n) {
                            Ok(v) => v,
                            Err(e) => {
                                op.fail(run, item, e);
                                continue;
                            }
                        };
                        if n_ports == 1 {
                            match op.run(run, item, Inputs::from_ports(vec![(port.name.clone(), payload)]), 0) {
                                Some(Ok(p)) => op.hand_on(Record { run, item, lane, payload: p }, |r| out.session(&cap).give(r)),
                                Some(Err(r)) => waiting.push((cap.delayed(&run, 0), run, item, lane, r)),
                                None => {}
                            }
                            continue;
                        }
                        let entry = gathering.entry((run, item)).or_insert_with(|| (cap.delayed(&run, 0), lane, vec![None; n_ports]));
                        entry.2[p] = Some(payload);
                        if entry.2.iter().all(Option::is_some) {
                            let Some((held, lane, got)) = gathering.remove(&(run, item)) else { continue };
                            let entries: Vec<(String, Payload)> =
                                got.into_iter().zip(&ports).filter_map(|(v, port)| v.map(|v| (port.name.clone(), v))).collect();
                            match op.run(run, item, Inputs::from_ports(entries), 0) {
                                Some(Ok(p)) => op.hand_on(Record { run, item, lane, payload: p }, |r| out.session(&held).give(r)),
                                Some(Err(r)) => waiting.push((held, run, item, lane, r)),
                                None => {}
                            }
                        }
                    }
                });
            }
            if !gathering.is_empty() {
                // An item still gathering at a time every input has passed lost an upstream input.
                gathering.retain(|(run, _), _| frontiers.iter().any(|f| f.less_equal(run)));
            }
            if !waiting.is_empty() {
                let clock = Arc::clone(&op.installed.nodes.clock);
                let now = clock.now();
                let closed = op.installed.is_closed();
                let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut waiting).into_iter().partition(|w| closed || w.4.due <= now);
                waiting = later;
                for (held, run, item, lane, r) in due {
                    if closed {
                        let e = op.runner.given_up(r.retries);
                        op.fail(run, item, e);
                        continue;
                    }
                    let Some(inputs) = r.inputs else { continue };
                    match op.run(run, item, inputs, r.retries) {
                        Some(Ok(p)) => op.hand_on(Record { run, item, lane, payload: p }, |rec| out.session(&held).give(rec)),
                        Some(Err(r)) => waiting.push((held, run, item, lane, r)),
                        None => {}
                    }
                }
                if let Some(next) = waiting.iter().map(|w| w.4.due).min() {
                    activator.activate_after(clock.wait_until(next));
                }
            }
        }
    });
    stream
}

type Gathering = (Capability<u64>, u32, Vec<Option<Payload>>);

/// This worker's streaming sessions (see sessions.rs): woken by a push into its own queue, it
/// runs the jobs there and sleeps until the next retry falls due. It holds no capability, so it
/// adds nothing to progress tracking, and stays installed until the pipeline closes.
fn session_operator(scope: Scope<'_, u64>, installed: &Arc<Installed>, stats: Stats) {
    let builder = OperatorBuilder::new("Sessions".to_owned(), scope);
    let address = builder.operator_info().address;
    let local = scope.index() - installed.first_worker;
    installed.sessions.set_activator(local, scope.worker().sync_activator_for(address.to_vec()));
    let activator = scope.activator_for(Rc::clone(&address));
    let installed = Arc::clone(installed);
    let mut sessions = SessionWorker::new(Arc::clone(&installed.nodes), scope.index(), stats);
    builder.build_reschedule(move |_caps| {
        let mut jobs = Vec::new();
        move |_frontiers| {
            let closed = installed.sessions.take(local, &mut jobs);
            sessions.accept(&mut jobs);
            if let Some(due) = sessions.run(closed) {
                activator.activate_after(installed.nodes.clock.wait_until(due));
            }
            // Kept alive (incomplete) until the pipeline closes.
            !closed
        }
    });
}
