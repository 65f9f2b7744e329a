//! Compiles a validated graph into timely operators on one worker: an input operator that turns
//! queued runs into epochs, one operator per node, and a collector that completes a run once
//! timely's progress tracking shows its epoch has passed every output.
//!
//! Every worker calls [`build`] with the same graph and builds the same operators in the same
//! order (the graph's deterministic topological order).

use std::cell::RefCell;
use std::collections::BTreeMap;
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
use timely::worker::Worker;

use crate::data::Payload;
use crate::error::{NodeError, NodeErrorKind};
use crate::graph::Graph;
use crate::metrics::WorkerStats;
use crate::nodes::{Inputs, Node, NodeConfig};
use crate::runtime::breaker::{Admission, Breaker};
use crate::runtime::panic::{catch_node_panic, panic_message};
use crate::runtime::retry::{Jitter, RetrySettings};
use crate::runtime::pipeline::Shared;

/// One item's payload on an edge. `epoch` is the run (also the record's timely time: carried in
/// the record so no operator depends on how timely stamps batches); `item` indexes the item
/// within its run's batch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub epoch: u64,
    pub item: u64,
    pub payload: Payload,
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
            // One worker: records stay where they are. Several: route by item and branch slot.
            let exec = Executor::new(Arc::clone(shared), n, node, Rc::clone(&stats), index);
            node_out[n] = Some(if scope.peers() == 1 {
                node_operator(scope, exec, ins, || LocalPact)
            } else {
                node_operator(scope, exec, ins, || Exchange::new(move |r: &Record| r.item.wrapping_add(slot)))
            });
        }
        let sink_streams: Vec<RecordStream> =
            shared.sinks.iter().map(|&s| node_out[s].clone().expect("every node was built")).collect();
        collector(scope, shared, sink_streams, stats);
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

/// Which worker a node's items go to is `(item + slot) % workers`: nodes in a linear chain share a
/// slot (no hand-over between them), parallel branches get different ones.
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
        move |_frontiers| {
            let Some(held) = caps.as_mut() else { return };
            let (submissions, next_epoch, closed) = {
                let mut q = shared.lock_queue();
                (q.pending.drain(..).collect::<Vec<_>>(), q.next_epoch, q.closed)
            };
            for sub in submissions {
                for ((out, cap), records) in outputs.iter_mut().zip(held.iter()).zip(sub.per_source) {
                    let at = cap.delayed(&sub.epoch);
                    let mut handle = out.activate();
                    let mut session = handle.session(&at);
                    for (item, payload) in records {
                        session.give(Record { epoch: sub.epoch, item, payload });
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
        // (epoch, item) -> capability and the payloads gathered so far, by port.
        let mut gathering: BTreeMap<(u64, u64), (Capability<u64>, Vec<Option<Payload>>)> = BTreeMap::new();
        // Items waiting out a retry delay, each holding its epoch open with a capability.
        let mut waiting: Vec<(Capability<u64>, u64, u64, Retry)> = Vec::new();
        move |frontiers| {
            let mut out = output.activate();
            for (p, handle) in handles.iter_mut().enumerate() {
                handle.for_each(|cap, data| {
                    for Record { epoch, item, payload } in data.drain(..) {
                        let payload = match project(payload, &ports[p], &exec) {
                            Ok(v) => v,
                            Err(e) => {
                                exec.shared.record_error(epoch, item, e);
                                continue;
                            }
                        };
                        if n_ports == 1 {
                            let inputs = Inputs::from_ports(vec![(ports[p].name.clone(), payload)]);
                            match exec.run(epoch, item, inputs, 0) {
                                Outcome::Done(result) => out.session(&cap).give(Record { epoch, item, payload: result }),
                                Outcome::Retry(r) => waiting.push((cap.delayed(&epoch, 0), epoch, item, r)),
                                Outcome::Failed => {}
                            }
                            continue;
                        }
                        let entry = gathering
                            .entry((epoch, item))
                            .or_insert_with(|| (cap.delayed(&epoch, 0), vec![None; n_ports]));
                        entry.1[p] = Some(payload);
                        if entry.1.iter().all(Option::is_some) {
                            let Some((held, got)) = gathering.remove(&(epoch, item)) else { continue };
                            let entries = got
                                .into_iter()
                                .zip(&ports)
                                .filter_map(|(v, port)| v.map(|v| (port.name.clone(), v)))
                                .collect();
                            match exec.run(epoch, item, Inputs::from_ports(entries), 0) {
                                Outcome::Done(result) => out.session(&held).give(Record { epoch, item, payload: result }),
                                Outcome::Retry(r) => waiting.push((held, epoch, item, r)),
                                Outcome::Failed => {}
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
                    match exec.run(epoch, item, r.inputs, r.retries) {
                        Outcome::Done(result) => out.session(&held).give(Record { epoch, item, payload: result }),
                        Outcome::Retry(r) => waiting.push((held, epoch, item, r)),
                        Outcome::Failed => {}
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
    inputs: Inputs,
}

/// What became of one node call.
enum Outcome {
    Done(Payload),
    /// The error is recorded; nothing goes downstream.
    Failed,
    /// Try again at `due`: the operator keeps the item (and its epoch's capability) until then.
    Retry(Retry),
}

/// Runs one node's `process` for one item: asks the node's circuit breaker, catches panics,
/// decides on retries, records statistics and errors.
struct Executor {
    shared: Arc<Shared>,
    n: usize,
    node: Result<Box<dyn Node>, NodeError>,
    /// This worker's own records (no lock: only this thread touches them).
    stats: Rc<RefCell<WorkerStats>>,
    retry: RetrySettings,
    breaker: Arc<Breaker>,
    jitter: Jitter,
}

impl Executor {
    fn new(shared: Arc<Shared>, n: usize, node: Result<Box<dyn Node>, NodeError>, stats: Rc<RefCell<WorkerStats>>, worker: usize) -> Executor {
        let retry = shared.retry[n];
        let breaker = Arc::clone(&shared.breakers[n]);
        // Different workers and nodes draw different jitter.
        let seed = (shared.id << 32) ^ ((n as u64) << 16) ^ worker as u64 ^ 0x5EED;
        Executor { shared, n, node, stats, retry, breaker, jitter: Jitter::new(seed) }
    }

    /// One call of the node for one item, after `retries` earlier failed calls of it.
    fn run(&mut self, epoch: u64, item: u64, inputs: Inputs, retries: u32) -> Outcome {
        let gn = &self.shared.graph.nodes[self.n];
        let node = match &mut self.node {
            Ok(node) => node,
            Err(e) => {
                self.shared.record_error(epoch, item, e.clone());
                return Outcome::Failed;
            }
        };
        let clock = &self.shared.clock;
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
            return Outcome::Failed;
        }
        // A retry needs the inputs again: keep a copy only when one may follow.
        let backup = if self.retry.allows(retries) { Some(inputs.clone()) } else { None };
        let started = if self.shared.metrics { Some(Instant::now()) } else { None };
        let result = catch_node_panic(|| node.process(inputs));
        if let Some(t) = started {
            let elapsed = t.elapsed();
            let samples = match &result {
                Ok(p) => p.audio().map(|a| a.samples.len() as u64).unwrap_or(0),
                Err(_) => 0,
            };
            self.stats.borrow_mut().nodes[self.n].record(elapsed, result.is_ok(), samples);
        }
        match result {
            Ok(p) => {
                self.breaker.on_success();
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
                    return Outcome::Retry(Retry { due: now + delay, retries: next, inputs });
                }
                e.retries = retries;
                self.shared.record_error(epoch, item, e.at_node(&gn.id, &gn.node_type.name));
                Outcome::Failed
            }
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

/// Gathers the sinks' outputs on every worker; on worker 0, completes each run whose epoch every
/// sink's frontier has passed (timely's progress tracking says nothing more can arrive for it).
fn collector<'scope>(scope: Scope<'scope, u64>, shared: &Arc<Shared>, sinks: Vec<RecordStream<'scope>>, stats: Rc<RefCell<WorkerStats>>) {
    let mut builder = OperatorBuilder::new("Collect".to_owned(), scope);
    let mut handles = Vec::new();
    for s in sinks {
        handles.push(builder.new_input(s, LocalPact));
    }
    let shared = Arc::clone(shared);
    let completes = scope.index() == 0;
    builder.build(move |_caps| {
        move |frontiers| {
            for (slot, handle) in handles.iter_mut().enumerate() {
                handle.for_each(|_cap, data| {
                    let mut runs = shared.lock_runs();
                    for Record { epoch, item, payload } in data.drain(..) {
                        shared.record_output(&mut runs, epoch, slot, item, payload);
                    }
                });
            }
            if completes {
                let finished: Vec<_> = {
                    let mut runs = shared.lock_runs();
                    let done: Vec<u64> = runs
                        .keys()
                        .copied()
                        .filter(|epoch| frontiers.iter().all(|f| !f.less_equal(epoch)))
                        .collect();
                    done.into_iter().filter_map(|e| runs.remove(&e).map(|r| (e, r))).collect()
                };
                for (epoch, run) in finished {
                    shared.finish(epoch, run, &mut stats.borrow_mut().runs);
                }
            }
        }
    });
}
