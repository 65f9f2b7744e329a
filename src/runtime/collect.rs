//! How runs complete besides their sinks' own deliveries (runs.rs): the collector, which
//! completes a run once timely's frontier shows nothing more can arrive for it, and, for a pool
//! spanning processes, the forwarding of every collected node's output (outputs and sinks) and node error to process 0, where
//! the runs live.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::{Exchange, Pipeline as LocalPact};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::{Scope, Stream};
use timely::progress::frontier::MutableAntichain;

use crate::data::Payload;
use crate::error::NodeError;
use crate::metrics::WorkerStats;
use crate::runtime::dataflow::{Record, RecordStream};
use crate::runtime::installed::Installed;

/// Watches the sinks' frontiers (in a single-process pool the sinks hand their outputs to the runs
/// themselves, so no records arrive here): on worker 0, completes each run still in flight once
/// every sink's frontier has passed its epoch, timely's progress tracking saying nothing more can
/// arrive for it. Every run settles by its items' outputs and errors before that; this is the
/// backstop that keeps a run whose count went wrong from waiting forever.
pub(crate) fn collector<'scope>(scope: Scope<'scope, u64>, installed: &Arc<Installed>, sinks: Vec<RecordStream<'scope>>, stats: Rc<RefCell<WorkerStats>>) {
    let mut builder = OperatorBuilder::new("Collect".to_owned(), scope);
    for s in sinks {
        let _frontier_only = builder.new_input(s, LocalPact);
    }
    let installed = Arc::clone(installed);
    if scope.index() != 0 {
        builder.build(|_caps| |_frontiers| {});
        return;
    }
    builder.build(move |_caps| move |frontiers| complete_passed(&installed, frontiers, &stats));
}

/// Completes every run still in flight whose epoch all of `frontiers` have passed.
fn complete_passed(installed: &Installed, frontiers: &[MutableAntichain<u64>], stats: &RefCell<WorkerStats>) {
    let passed = installed.runs.take_passed(|run| frontiers.iter().all(|f| !f.less_equal(&run)));
    for (run, pending) in passed {
        installed.runs.finish(run, pending, Some(&mut stats.borrow_mut().runs));
    }
}

/// The completion path of a pool spanning processes: every collected node's output (`collected`:
/// `Installed::collected`'s streams, in slot order) and node error travels
/// to worker 0 of process 0, where the runs live.
pub(crate) fn cluster<'scope>(scope: Scope<'scope, u64>, installed: &Arc<Installed>, collected: Vec<RecordStream<'scope>>, stats: Rc<RefCell<WorkerStats>>) {
    let forwarded = forward_to_first(scope, installed, collected);
    cluster_collector(scope, installed, forwarded, stats);
}

/// What travels to worker 0 when a pool spans processes: a sink's output, or a node error (runs,
/// and so their error tables, exist only in process 0).
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Collected {
    /// `payload` is `None` for a sink that is not an output: it sends that it delivered, not what.
    Output { run: u64, item: u64, slot: u32, payload: Option<Payload> },
    Error { run: u64, item: u64, error: WireError },
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
fn forward_to_first<'scope>(scope: Scope<'scope, u64>, installed: &Arc<Installed>, collected: Vec<RecordStream<'scope>>) -> CollectedStream<'scope> {
    let mut builder = OperatorBuilder::new("Forward".to_owned(), scope);
    let mut handles = Vec::new();
    for s in collected {
        handles.push(builder.new_input(s, LocalPact));
    }
    let (output, stream) = builder.new_output::<Vec<Collected>>();
    let mut output = OutputBuilder::<_, timely::container::CapacityContainerBuilder<Vec<Collected>>>::from(output);
    let installed = Arc::clone(installed);
    builder.build(move |mut caps| {
        let mut held: Option<Capability<u64>> = caps.pop();
        move |frontiers| {
            let mut out = output.activate();
            for (slot, handle) in handles.iter_mut().enumerate() {
                handle.for_each(|cap, data| {
                    let mut session = out.session(&cap);
                    for Record { run, item, payload, .. } in data.drain(..) {
                        let payload = (slot < installed.returned).then_some(payload);
                        session.give(Collected::Output { run, item, slot: slot as u32, payload });
                    }
                });
            }
            let errors = std::mem::take(&mut *installed.queued_errors.lock().unwrap_or_else(|e| e.into_inner()));
            for (run, item, error) in errors {
                match held.as_ref().filter(|c| *c.time() <= run) {
                    Some(cap) => {
                        let at = cap.delayed(&run);
                        out.session(&at).give(Collected::Error { run, item, error: error.into() });
                    }
                    // Cannot happen (see above); said rather than silently dropped.
                    None => eprintln!("remotemedia: an error for run {run} item {item} arrived after the run closed: {error}"),
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
fn cluster_collector<'scope>(scope: Scope<'scope, u64>, installed: &Arc<Installed>, input: CollectedStream<'scope>, stats: Rc<RefCell<WorkerStats>>) {
    let mut builder = OperatorBuilder::new("Collect".to_owned(), scope);
    let mut handle = builder.new_input(input, Exchange::new(|_: &Collected| 0u64));
    let installed = Arc::clone(installed);
    let completes = scope.index() == 0;
    builder.build(move |_caps| {
        move |frontiers| {
            handle.for_each(|_cap, data| {
                let runs = &installed.runs;
                for c in data.drain(..) {
                    let settled = match c {
                        Collected::Output { run, item, slot, payload } => runs.deliver(run, item, slot as usize, payload),
                        Collected::Error { run, item, error } => runs.fail(run, item, error.into()),
                    };
                    settled.complete(runs, Some(&mut stats.borrow_mut().runs));
                }
            });
            if completes {
                complete_passed(&installed, frontiers, &stats);
            }
        }
    });
}
