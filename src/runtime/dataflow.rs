//! Compiles a validated graph into timely operators on one worker: an input operator that turns
//! queued runs into epochs, one operator per node, and a collector that completes a run once
//! timely's progress tracking shows its epoch has passed every output.
//!
//! Every worker calls [`build`] with the same graph and builds the same operators in the same
//! order (the graph's deterministic topological order).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::{Exchange, ParallelizationContract, Pipeline as LocalPact};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::{Scope, Stream};
use timely::progress::frontier::MutableAntichain;
use timely::worker::Worker;

use crate::data::Payload;
use crate::error::{NodeError, NodeErrorKind};
use crate::graph::Graph;
use crate::metrics::WorkerStats;
use crate::nodes::{Inputs, Node, NodeConfig};
use crate::runtime::breaker::{Admission, Breaker};
use crate::runtime::panic::{catch_node_panic, panic_message};
use crate::runtime::retry::{Jitter, RetrySettings};
use crate::runtime::lanes;
use crate::runtime::pipeline::Shared;

/// One item's payload on an edge. `epoch` is the run (also the record's timely time: carried in
/// the record so no operator depends on how timely stamps batches); `item` indexes the item
/// within its run's batch; `flow` says whether it is a whole item or a streaming session's chunk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub epoch: u64,
    pub item: u64,
    pub flow: Flow,
    /// Empty only in a session's closing record from a node that had nothing left to flush.
    pub payload: Option<Payload>,
}

/// How a node treats a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Flow {
    /// A whole item: `Node::process`, no state carried. `lane` is the worker it was given to
    /// (see lanes.rs), or its index where items are not balanced (one worker, several processes).
    Whole { lane: u32 },
    /// A chunk of streaming session `session`: `Node::push` on that session's node instances.
    Chunk { session: u64 },
    /// The session ends: `Node::finish`, then its node instances are dropped.
    End { session: u64 },
}

impl Flow {
    /// What records are routed by: a whole item's lane (spreading a batch over workers), a
    /// session for chunks (a session's state lives on one worker).
    fn key(self) -> u64 {
        match self {
            Flow::Whole { lane } => lane as u64,
            Flow::Chunk { session } | Flow::End { session } => session,
        }
    }
}

type RecordStream<'scope> = Stream<'scope, u64, Vec<Record>>;

/// Builds `shared`'s dataflow on this worker. Returns the first node-construction error, if any;
/// the operators are built regardless, so that every worker's dataflow has the same shape.
pub(crate) fn build(worker: &mut Worker, shared: &Arc<Shared>, stats: Rc<RefCell<WorkerStats>>) -> Result<(), NodeError> {
    let graph = Arc::clone(&shared.graph);
    let index = worker.index();
    let mut first_error = None;
    let name = format!("pipeline-{}", shared.id);
    worker.dataflow_named::<u64, _, _>(&name, |scope| {
        let inputs = input_operator(scope, shared);
        let slots = placement_slots(&graph);
        let mut node_out: Vec<Option<RecordStream>> = vec![None; graph.nodes.len()];
        let mut source_streams = inputs.into_iter();
        let mut source_of = vec![None; graph.nodes.len()];
        for &s in &shared.sources {
            source_of[s] = source_streams.next();
        }
        for &n in &graph.order {
            let gn = &graph.nodes[n];
            let node = catch_unwind(AssertUnwindSafe(|| {
                (gn.node_type.factory)(&NodeConfig { id: &gn.id, params: &gn.params, worker: index })
            }))
            .unwrap_or_else(|p| Err(NodeError::panic(panic_message(&*p))))
            .map_err(|mut e| {
                e.operation = "initialize".into();
                e.at_node(&gn.id, &gn.node_type.name)
            });
            if let Err(e) = &node {
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
            let slot = slots[n];
            // One worker: records stay where they are. Several: route by lane (or session) and branch slot.
            let mut exec = Executor::new(Arc::clone(shared), n, node, Rc::clone(&stats), index);
            // An output or a sink hands its results straight to their runs, unless they must travel
            // to process 0 (an output with downstream nodes sends them on as well).
            if !shared.cross_process {
                exec.sink_slot = shared.collected.iter().position(|&s| s == n);
            }
            node_out[n] = Some(if scope.peers() == 1 {
                node_operator(scope, exec, ins, || LocalPact)
            } else {
                node_operator(scope, exec, ins, || Exchange::new(move |r: &Record| r.flow.key().wrapping_add(slot)))
            });
        }
        let streams = |nodes: &[usize]| -> Vec<RecordStream> {
            nodes.iter().map(|&s| node_out[s].clone().expect("every node was built")).collect()
        };
        if shared.cross_process {
            let forwarded = forward_to_first(scope, shared, streams(&shared.collected));
            cluster_collector(scope, shared, forwarded, stats);
        } else {
            // Every collected node is a sink or upstream of one: once the sinks' frontiers pass an
            // epoch, nothing more can come for it from any of them.
            collector(scope, shared, streams(&shared.sinks), stats);
        }
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

/// Which worker a node's records go to is `(key + slot) % workers`, the key being an item's lane or
/// a chunk's session: nodes in a linear chain share a slot (no hand-over between them), parallel
/// branches get different ones.
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

/// The input operator: one output per source node. Only worker 0 holds capabilities; it drains
/// the pipeline's queue when activated, sends each run at its own epoch and then advances.
fn input_operator<'scope>(scope: Scope<'scope, u64>, shared: &Arc<Shared>) -> Vec<RecordStream<'scope>> {
    let mut builder = OperatorBuilder::new("Input".to_owned(), scope);
    let info = builder.operator_info();
    let mut outputs = Vec::new();
    let mut streams = Vec::new();
    for _ in &shared.sources {
        let (output, stream) = builder.new_output::<Vec<Record>>();
        outputs.push(OutputBuilder::<_, timely::container::CapacityContainerBuilder<Vec<Record>>>::from(output));
        streams.push(stream);
    }
    let shared = Arc::clone(shared);
    let worker_index = scope.index();
    if worker_index == 0 {
        let _ = shared.activator.set(scope.worker().sync_activator_for(info.address.to_vec()));
    }
    builder.build(move |caps| {
        let mut caps: Option<Vec<Capability<u64>>> = if worker_index == 0 { Some(caps) } else { None };
        // Swapped with the shared queue under its lock, so neither side allocates per run.
        let mut submissions = std::collections::VecDeque::new();
        move |_frontiers| {
            let Some(held) = caps.as_mut() else { return };
            let (next_epoch, closed) = {
                let mut q = shared.lock_queue();
                std::mem::swap(&mut q.pending, &mut submissions);
                (q.next_epoch, q.closed)
            };
            for mut sub in submissions.drain(..) {
                // Whole items go to the workers with the least work outstanding; the run gives
                // that work back as its items settle.
                let lanes: Option<Vec<u32>> = match (sub.flow, &shared.lanes) {
                    (Flow::Whole { .. }, Some(balance)) => {
                        let weights: Vec<u64> = sub.per_source[0].iter().map(|(_, p)| lanes::weight(p.as_ref())).collect();
                        let lanes: Vec<u32> = weights.iter().map(|&w| balance.assign(w)).collect();
                        sub.run.hold(Arc::clone(balance), lanes.iter().copied().zip(weights).collect());
                        Some(lanes)
                    }
                    _ => None,
                };
                // The run is known before its data can reach the collector.
                shared.lock_runs().insert(sub.epoch, sub.run);
                for ((out, cap), records) in outputs.iter_mut().zip(held.iter()).zip(sub.per_source) {
                    let at = cap.delayed(&sub.epoch);
                    let mut handle = out.activate();
                    let mut session = handle.session(&at);
                    for (item, payload) in records {
                        let flow = match sub.flow {
                            Flow::Whole { .. } => Flow::Whole { lane: lanes.as_ref().map_or(item as u32, |l| l[item as usize]) },
                            other => other,
                        };
                        session.give(Record { epoch: sub.epoch, item, flow, payload });
                    }
                }
            }
            if closed {
                caps = None;
            } else {
                for cap in held.iter_mut() {
                    cap.downgrade(&next_epoch);
                }
            }
        }
    });
    streams
}

/// One node as a timely operator. Single-input nodes process each record as it arrives;
/// multi-input nodes gather an item's inputs from every port, process when all are there, and
/// drop partial gatherings once the frontier shows the rest will never come (an upstream failure).
fn node_operator<'scope, P: ParallelizationContract<u64, Vec<Record>>>(
    scope: Scope<'scope, u64>,
    mut exec: Executor,
    inputs: Vec<(RecordStream<'scope>, Port)>,
    pact: impl Fn() -> P,
) -> RecordStream<'scope> {
    let gn = &exec.shared.graph.nodes[exec.n];
    let mut builder = OperatorBuilder::new(gn.id.clone(), scope);
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
    if exec.retry.enabled() {
        lock_wakers(&exec.shared).push(scope.worker().sync_activator_for(address.to_vec()));
    }
    builder.build(move |_caps| {
        let n_ports = ports.len();
        // (epoch, item) -> capability and what each port has delivered so far (a session's
        // closing record may deliver nothing: `Some(None)`).
        let mut gathering: BTreeMap<(u64, u64), Gathering> = BTreeMap::new();
        // Items waiting out a retry delay, each holding its epoch open with a capability.
        let mut waiting: Vec<(Capability<u64>, u64, u64, Retry)> = Vec::new();
        move |frontiers| {
            let mut out = output.activate();
            for (p, handle) in handles.iter_mut().enumerate() {
                handle.for_each(|cap, data| {
                    for Record { epoch, item, flow, payload } in data.drain(..) {
                        let payload = match payload.map(|v| project(v, &ports[p], &exec)).transpose() {
                            Ok(v) => v,
                            Err(e) => {
                                exec.shared.record_error(epoch, item, e);
                                // A session's end still travels on, so later nodes drop its state.
                                if !matches!(flow, Flow::End { .. }) {
                                    continue;
                                }
                                None
                            }
                        };
                        if n_ports == 1 {
                            let inputs = payload.map(|v| Inputs::from_ports(vec![(ports[p].name.clone(), v)]));
                            match exec.run(epoch, item, flow, inputs, 0) {
                                Outcome::Retry(r) => waiting.push((cap.delayed(&epoch, 0), epoch, item, r)),
                                done => {
                                    if let Some(record) = done.record(epoch, item, flow) {
                                        exec.hand_on(record, |r| out.session(&cap).give(r));
                                    }
                                }
                            }
                            continue;
                        }
                        let entry = gathering
                            .entry((epoch, item))
                            .or_insert_with(|| (cap.delayed(&epoch, 0), vec![None; n_ports]));
                        entry.1[p] = Some(payload);
                        if entry.1.iter().all(Option::is_some) {
                            let Some((held, got)) = gathering.remove(&(epoch, item)) else { continue };
                            let entries: Vec<(String, Payload)> = got
                                .into_iter()
                                .zip(&ports)
                                .filter_map(|(v, port)| v.flatten().map(|v| (port.name.clone(), v)))
                                .collect();
                            let inputs = if entries.is_empty() { None } else { Some(Inputs::from_ports(entries)) };
                            match exec.run(epoch, item, flow, inputs, 0) {
                                Outcome::Retry(r) => waiting.push((held, epoch, item, r)),
                                done => {
                                    if let Some(record) = done.record(epoch, item, flow) {
                                        exec.hand_on(record, |r| out.session(&held).give(r));
                                    }
                                }
                            }
                        }
                    }
                });
            }
            if !gathering.is_empty() {
                // An item still gathering at a time every input has passed lost an upstream input.
                gathering.retain(|(epoch, _), _| frontiers.iter().any(|f| f.less_equal(epoch)));
            }
            if !waiting.is_empty() {
                let clock = Arc::clone(&exec.shared.clock);
                let now = clock.now();
                let closed = exec.shared.is_closed();
                let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut waiting).into_iter().partition(|w| closed || w.3.due <= now);
                waiting = later;
                for (held, epoch, item, r) in due {
                    if closed {
                        exec.give_up(epoch, item, &r);
                        continue;
                    }
                    let flow = r.flow;
                    match exec.run(epoch, item, flow, r.inputs, r.retries) {
                        Outcome::Retry(r) => waiting.push((held, epoch, item, r)),
                        done => {
                            if let Some(record) = done.record(epoch, item, flow) {
                                exec.hand_on(record, |r| out.session(&held).give(r));
                            }
                        }
                    }
                }
                if let Some(next) = waiting.iter().map(|w| w.3.due).min() {
                    activator.activate_after(clock.wait_until(next));
                }
            }
        }
    });
    stream
}

type Gathering = (Capability<u64>, Vec<Option<Option<Payload>>>);

fn lock_wakers(shared: &Shared) -> std::sync::MutexGuard<'_, Vec<timely::scheduling::SyncActivator>> {
    // A poisoned lock only means a panic elsewhere; the list is still usable.
    shared.retry_wakers.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes the part of a payload an edge's `output_key` names. A missing part is the producing
/// node's failure (its output lacks what the manifest promised), so the error names that node.
fn project(payload: Payload, port: &Port, exec: &Executor) -> Result<Payload, NodeError> {
    let Some(key) = port.output_key.as_deref() else { return Ok(payload) };
    payload.output(key).ok_or_else(|| {
        let graph = &exec.shared.graph;
        let consumer = &graph.nodes[exec.n];
        let producer = port.from.map(|f| &graph.nodes[f]).unwrap_or(consumer);
        let keys = match &payload {
            Payload::Map(m) => format!("its output has the keys {:?}", m.keys().collect::<Vec<_>>()),
            other => format!("its output is {}", other.kind()),
        };
        NodeError::permanent(format!(
            "no output named '{key}' for the edge to '{}'; {keys}",
            consumer.id
        ))
        .at_node(&producer.id, &producer.node_type.name)
    })
}

/// An item whose node call failed transiently, waiting to be tried again.
struct Retry {
    /// When it may run, on the pipeline's clock.
    due: std::time::Duration,
    /// Retries made so far, this one included.
    retries: u32,
    flow: Flow,
    inputs: Option<Inputs>,
}

/// What became of one node call.
enum Outcome {
    /// The node's output (none: a session's end with nothing left to flush).
    Done(Option<Payload>),
    /// The error is recorded; nothing goes downstream.
    Failed,
    /// Try again at `due`: the operator keeps the item (and its epoch's capability) until then.
    Retry(Retry),
}

impl Outcome {
    /// The record to send on, if any. A session's closing record always travels on (possibly
    /// empty, even after an error), so every later node sees the end and frees the session.
    fn record(self, epoch: u64, item: u64, flow: Flow) -> Option<Record> {
        match (self, flow) {
            (Outcome::Done(Some(p)), _) => Some(Record { epoch, item, flow, payload: Some(p) }),
            (Outcome::Done(None) | Outcome::Failed, Flow::End { .. }) => Some(Record { epoch, item, flow, payload: None }),
            _ => None,
        }
    }
}

/// Runs one node for one record: `process`, `push` or `finish` by the record's flow, on the
/// worker's instance or, for a stateful node in a streaming session, on that session's own
/// instance. Asks the node's circuit breaker, catches panics, decides on retries, records
/// statistics and errors.
struct Executor {
    shared: Arc<Shared>,
    n: usize,
    worker: usize,
    node: Result<Box<dyn Node>, NodeError>,
    /// Per-session instances of a stateful node, built on a session's first chunk.
    sessions: HashMap<u64, Box<dyn Node>>,
    /// This worker's own records (no lock: only this thread touches them).
    stats: Rc<RefCell<WorkerStats>>,
    retry: RetrySettings,
    breaker: Arc<Breaker>,
    jitter: Jitter,
    /// For an output or sink node (in a single-process pool), its slot in `Shared::collected`:
    /// its results go straight into their runs (`deliver`) instead of through the collector.
    sink_slot: Option<usize>,
}

impl Executor {
    fn new(shared: Arc<Shared>, n: usize, node: Result<Box<dyn Node>, NodeError>, stats: Rc<RefCell<WorkerStats>>, worker: usize) -> Executor {
        let retry = shared.retry[n];
        let breaker = Arc::clone(&shared.breakers[n]);
        // Different workers and nodes draw different jitter.
        let seed = (shared.id << 32) ^ ((n as u64) << 16) ^ worker as u64 ^ 0x5EED;
        Executor { shared, n, worker, node, sessions: HashMap::new(), stats, retry, breaker, jitter: Jitter::new(seed), sink_slot: None }
    }

    /// The instance a record of `flow` runs on.
    fn instance(&mut self, flow: Flow) -> Result<&mut Box<dyn Node>, NodeError> {
        let gn = &self.shared.graph.nodes[self.n];
        let session = match flow {
            Flow::Chunk { session } | Flow::End { session } if gn.node_type.stateful => session,
            _ => return self.node.as_mut().map_err(|e| e.clone()),
        };
        if let Err(e) = &self.node {
            return Err(e.clone());
        }
        if !self.sessions.contains_key(&session) {
            let built = catch_node_panic(|| {
                (gn.node_type.factory)(&NodeConfig { id: &gn.id, params: &gn.params, worker: self.worker })
            })
            .map_err(|mut e| {
                e.operation = "initialize".into();
                e
            })?;
            self.sessions.insert(session, built);
        }
        self.sessions.get_mut(&session).ok_or_else(|| NodeError::permanent("session instance vanished"))
    }

    /// A session ends here (its close went through, or failed for good): free its instance.
    fn end_session(&mut self, flow: Flow) {
        if let Flow::End { session } = flow {
            self.sessions.remove(&session);
        }
    }

    /// One call of the node for one record, after `retries` earlier failed calls of it.
    fn run(&mut self, epoch: u64, item: u64, flow: Flow, inputs: Option<Inputs>, retries: u32) -> Outcome {
        let gn = &self.shared.graph.nodes[self.n];
        if let Err(e) = &self.node {
            self.shared.record_error(epoch, item, e.clone());
            self.end_session(flow);
            return Outcome::Failed;
        }
        let clock = Arc::clone(&self.shared.clock);
        if self.breaker.admit_at(|| clock.now()) == Admission::Rejected {
            let snapshot = self.breaker.snapshot();
            let wait = self.breaker.remaining_cooldown(clock.now());
            let mut e = NodeError::circuit_open(format!(
                "the circuit breaker is open after {} consecutive failures; the node is not called for another {} ms",
                snapshot.consecutive_failures,
                wait.as_millis()
            ));
            e.retries = retries;
            e.causes = self.breaker.last_failure().into_iter().collect();
            self.shared.record_error(epoch, item, e.at_node(&gn.id, &gn.node_type.name));
            self.end_session(flow);
            return Outcome::Failed;
        }
        // A retry needs the inputs again: keep a copy only when one may follow.
        let backup = if self.retry.allows(retries) { Some(inputs.clone()) } else { None };
        let started = if self.shared.metrics { Some(Instant::now()) } else { None };
        let result = match self.instance(flow) {
            Err(e) => Err(e),
            Ok(node) => match (flow, inputs) {
                (Flow::Whole { .. }, Some(inputs)) => catch_node_panic(|| node.process(inputs)).map(Some),
                (Flow::Chunk { .. }, Some(inputs)) => catch_node_panic(|| node.push(inputs)).map(Some),
                (Flow::End { .. }, inputs) => catch_node_panic(|| node.finish(inputs)),
                (_, None) => Ok(None),
            },
        };
        if let Some(t) = started {
            let elapsed = t.elapsed();
            let samples = match &result {
                Ok(Some(p)) => p.audio().map(|a| a.samples.len() as u64).unwrap_or(0),
                _ => 0,
            };
            self.stats.borrow_mut().nodes[self.n].record(elapsed, result.is_ok(), samples);
        }
        let gn = &self.shared.graph.nodes[self.n];
        match result {
            Ok(p) => {
                self.breaker.on_success();
                self.end_session(flow);
                Outcome::Done(p)
            }
            Err(mut e) => {
                let now = clock.now();
                // Unusable input is the caller's fault, not a sign of an unhealthy node.
                let opened = if e.kind == NodeErrorKind::InvalidInput {
                    self.breaker.on_neutral();
                    false
                } else {
                    self.breaker.on_failure(now, &e.message)
                };
                if let (true, false, Some(inputs)) = (e.is_transient(), opened, backup) {
                    let next = retries + 1;
                    self.breaker.count_retry();
                    let delay = self.retry.delay(next, self.jitter.unit());
                    return Outcome::Retry(Retry { due: now + delay, retries: next, flow, inputs });
                }
                e.retries = retries;
                self.shared.record_error(epoch, item, e.at_node(&gn.id, &gn.node_type.name));
                self.end_session(flow);
                Outcome::Failed
            }
        }
    }

    /// Sends a result on: a sink's into its run (`deliver`), any other node's `downstream`, and
    /// an output's with downstream nodes both ways.
    fn hand_on(&self, record: Record, downstream: impl FnOnce(Record)) {
        match self.sink_slot {
            Some(slot) if self.shared.graph.nodes[self.n].outputs.is_empty() => self.deliver(slot, record),
            Some(slot) => {
                self.deliver(slot, record.clone());
                downstream(record);
            }
            None => downstream(record),
        }
    }

    /// A sink's result, stored in its run. Once every item of the run has every sink's output (or
    /// failed), nothing more can come for it, and the run completes here: a timely hop to a
    /// collector operator and a round of progress tracking sooner than the frontier would say so.
    /// Runs that end otherwise (an item whose failure left it without outputs) still complete
    /// when the collector sees the frontier pass their epoch.
    fn deliver(&self, sink_slot: usize, record: Record) {
        let Record { epoch, item, mut payload, .. } = record;
        if sink_slot >= self.shared.returned {
            // A sink that is not an output: the run waits for it, but keeps nothing of it.
            payload = None;
        }
        let settled = {
            let mut runs = self.shared.lock_runs();
            match runs.get_mut(&epoch) {
                Some(run) => {
                    run.deliver(item, sink_slot, payload);
                    if run.is_settled() {
                        runs.remove(&epoch)
                    } else {
                        None
                    }
                }
                None => None,
            }
        };
        if let Some(run) = settled {
            self.shared.finish(epoch, run, &mut self.stats.borrow_mut().runs);
        }
    }

    /// Fails an item whose retry can no longer run (the pipeline was closed meanwhile).
    fn give_up(&self, epoch: u64, item: u64, r: &Retry) {
        let gn = &self.shared.graph.nodes[self.n];
        let mut e = NodeError::permanent("the pipeline was closed while a retry was waiting");
        e.retries = r.retries;
        self.shared.record_error(epoch, item, e.at_node(&gn.id, &gn.node_type.name));
    }
}

/// Watches the sinks' frontiers (in a single-process pool the sinks hand their outputs to the runs
/// themselves, see `Executor::deliver`, so no records arrive here): on worker 0, completes each run
/// still in flight once every sink's frontier has passed its epoch, timely's progress tracking
/// saying nothing more can arrive for it. These are the runs whose failed items left them without
/// some outputs; every other run completed when its last output was delivered.
fn collector<'scope>(scope: Scope<'scope, u64>, shared: &Arc<Shared>, sinks: Vec<RecordStream<'scope>>, stats: Rc<RefCell<WorkerStats>>) {
    let mut builder = OperatorBuilder::new("Collect".to_owned(), scope);
    for s in sinks {
        let _frontier_only = builder.new_input(s, LocalPact);
    }
    let shared = Arc::clone(shared);
    if scope.index() != 0 {
        builder.build(|_caps| |_frontiers| {});
        return;
    }
    builder.build(move |_caps| move |frontiers| complete_passed(&shared, frontiers, &stats));
}

/// Completes every run still in flight whose epoch all of `frontiers` have passed: timely's
/// progress tracking says nothing more can arrive for it, on any worker.
fn complete_passed(shared: &Shared, frontiers: &[MutableAntichain<u64>], stats: &RefCell<WorkerStats>) {
    let finished: Vec<_> = {
        let mut runs = shared.lock_runs();
        let done: Vec<u64> = runs.keys().copied().filter(|epoch| frontiers.iter().all(|f| !f.less_equal(epoch))).collect();
        done.into_iter().filter_map(|e| runs.remove(&e).map(|r| (e, r))).collect()
    };
    for (epoch, run) in finished {
        shared.finish(epoch, run, &mut stats.borrow_mut().runs);
    }
}

/// What travels to worker 0 when a pool spans processes: a sink's output, or a node error (runs,
/// and so their error tables, exist only in process 0).
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Collected {
    Output { epoch: u64, item: u64, slot: u32, payload: Option<Payload> },
    Error { epoch: u64, item: u64, error: WireError },
}

/// A [`NodeError`] as it crosses processes (the original Python exception, if any, stays behind).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct WireError {
    kind: u8,
    message: String,
    node_id: String,
    node_type: String,
    operation: String,
    retries: u32,
    causes: Vec<String>,
    traceback: Option<String>,
}

impl From<NodeError> for WireError {
    fn from(e: NodeError) -> Self {
        use crate::error::NodeErrorKind as K;
        let kind = match e.kind {
            K::Permanent => 0,
            K::Transient => 1,
            K::InvalidInput => 2,
            K::Panic => 3,
            K::CircuitOpen => 4,
        };
        WireError {
            kind,
            message: e.message,
            node_id: e.node_id,
            node_type: e.node_type,
            operation: e.operation,
            retries: e.retries,
            causes: e.causes,
            traceback: e.traceback,
        }
    }
}

impl From<WireError> for NodeError {
    fn from(w: WireError) -> Self {
        use crate::error::NodeErrorKind as K;
        let mut e = NodeError::permanent(w.message);
        e.kind = match w.kind {
            1 => K::Transient,
            2 => K::InvalidInput,
            3 => K::Panic,
            4 => K::CircuitOpen,
            _ => K::Permanent,
        };
        e.node_id = w.node_id;
        e.node_type = w.node_type;
        e.operation = w.operation;
        e.retries = w.retries;
        e.causes = w.causes;
        e.traceback = w.traceback;
        e
    }
}

type CollectedStream<'scope> = Stream<'scope, u64, Vec<Collected>>;

/// On every worker of a multi-process pool: passes the collected nodes' outputs on, and the node errors
/// queued in this process (`Shared::record_error`), towards worker 0.
///
/// Errors carry no timely capability of their own, so this operator holds one, never ahead of
/// its inputs' frontier: a node's error is queued before the node releases its epoch, so it is
/// always drained here before the frontier (and the held capability) passes that epoch.
fn forward_to_first<'scope>(scope: Scope<'scope, u64>, shared: &Arc<Shared>, collected: Vec<RecordStream<'scope>>) -> CollectedStream<'scope> {
    let mut builder = OperatorBuilder::new("Forward".to_owned(), scope);
    let mut handles = Vec::new();
    for s in collected {
        handles.push(builder.new_input(s, LocalPact));
    }
    let (output, stream) = builder.new_output::<Vec<Collected>>();
    let mut output = OutputBuilder::<_, timely::container::CapacityContainerBuilder<Vec<Collected>>>::from(output);
    let shared = Arc::clone(shared);
    builder.build(move |mut caps| {
        let mut held: Option<Capability<u64>> = caps.pop();
        move |frontiers| {
            let mut out = output.activate();
            for (slot, handle) in handles.iter_mut().enumerate() {
                handle.for_each(|cap, data| {
                    let mut session = out.session(&cap);
                    // A session's end with nothing left to flush has no output to send on; a sink
                    // that is not an output sends that it delivered, not what.
                    for Record { epoch, item, payload, .. } in data.drain(..) {
                        if let Some(payload) = payload {
                            let payload = (slot < shared.returned).then_some(payload);
                            session.give(Collected::Output { epoch, item, slot: slot as u32, payload });
                        }
                    }
                });
            }
            let errors = std::mem::take(&mut *shared.queued_errors.lock().unwrap_or_else(|e| e.into_inner()));
            for (epoch, item, error) in errors {
                match held.as_ref().filter(|c| *c.time() <= epoch) {
                    Some(cap) => {
                        let at = cap.delayed(&epoch);
                        out.session(&at).give(Collected::Error { epoch, item, error: error.into() });
                    }
                    // Cannot happen (see above); said rather than silently dropped.
                    None => eprintln!("remotemedia: an error for run {epoch} item {item} arrived after the run closed: {error}"),
                }
            }
            let least = frontiers.iter().filter_map(|f| f.frontier().iter().min().copied()).min();
            match least {
                Some(t) => {
                    if let Some(cap) = held.as_mut() {
                        if *cap.time() < t {
                            cap.downgrade(&t);
                        }
                    }
                }
                None => held = None,
            }
        }
    });
    stream
}

/// [`collector`] for a multi-process pool: everything is exchanged to worker 0, which records
/// outputs and errors and completes each run once the frontier has passed its epoch.
fn cluster_collector<'scope>(scope: Scope<'scope, u64>, shared: &Arc<Shared>, input: CollectedStream<'scope>, stats: Rc<RefCell<WorkerStats>>) {
    let mut builder = OperatorBuilder::new("Collect".to_owned(), scope);
    let mut handle = builder.new_input(input, Exchange::new(|_: &Collected| 0u64));
    let shared = Arc::clone(shared);
    let completes = scope.index() == 0;
    builder.build(move |_caps| {
        move |frontiers| {
            handle.for_each(|_cap, data| {
                let mut runs = shared.lock_runs();
                for c in data.drain(..) {
                    match c {
                        Collected::Output { epoch, item, slot, payload } => {
                            if let Some(run) = runs.get_mut(&epoch) {
                                run.deliver(item, slot as usize, payload);
                            }
                        }
                        Collected::Error { epoch, item, error } => {
                            if let Some(run) = runs.get_mut(&epoch) {
                                run.fail(item, error.into());
                            }
                        }
                    }
                }
            });
            if completes {
                complete_passed(&shared, frontiers, &stats);
            }
        }
    });
}
