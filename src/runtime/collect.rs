//! How runs complete besides their sinks' own deliveries (runs.rs): the collector, which
//! completes a run once timely's frontier shows nothing more can arrive for it, and, for a pool
//! spanning processes, the forwarding of every collected node's output (outputs and sinks) and
//! node error to process 0, where the runs live, except a keyed item's: those meet at the item's
//! home worker, which finishes the item and sends on only its finished text.

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
use crate::runtime::dataflow::{Homed, Record, RecordStream};
use crate::runtime::runs::{ItemResult, RunOutput};
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
///
/// Keyed items (a process group's batch: `ItemInput::Keyed`) stop on the way, at their home: the
/// worker that loaded them finishes them there (writes their files) and sends on only the
/// finished text (see [`home`]).
pub(crate) fn cluster<'scope>(
    scope: Scope<'scope, u64>,
    installed: &Arc<Installed>,
    collected: Vec<RecordStream<'scope>>,
    stats: Rc<RefCell<WorkerStats>>,
    homed: Homed,
) {
    let forwarded = forward_to_first(scope, installed, collected);
    let unfinished = home(scope, installed, forwarded, homed);
    cluster_collector(scope, installed, unfinished, stats);
}

/// What travels to worker 0 when a pool spans processes: a sink's output, or a node error (runs,
/// and so their error tables, exist only in process 0).
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Collected {
    /// `payload` is `None` for a sink that is not an output: it sends that it delivered, not what.
    Output { run: u64, item: u64, slot: u32, payload: Option<Payload> },
    Error { run: u64, item: u64, error: WireError },
    /// A keyed item finished at its home: what its `KeyedIo::finish` made of it.
    /// `failed`: the item's result was an error (for process 0's run metrics).
    Finished { run: u64, item: u64, text: String, failed: bool },
}

impl Collected {
    fn run_item(&self) -> (u64, u64) {
        match self {
            Collected::Output { run, item, .. } | Collected::Error { run, item, .. } | Collected::Finished { run, item, .. } => (*run, *item),
        }
    }
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
        let e = e.into_fields();
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

/// A keyed item gathering at its home: the capability its finished text is sent at, what each
/// collected node delivered, how many have not yet, and its first error. `cap` is `None` once
/// finished (anything later for it, another branch's, is dropped).
struct Gathered {
    cap: Option<Capability<u64>>,
    outputs: Vec<Option<Payload>>,
    awaited: usize,
    error: Option<NodeError>,
}

/// On every worker of a multi-process pool: the home of the keyed items this worker loaded
/// (`homed`, filled by the loader; records are exchanged by item index, as the loader's entries
/// are by lane, which is the item's index in a process group, so they meet on the same worker).
/// Each keyed item's outputs and first error are gathered here, and once every collected node
/// has delivered it, it has failed, or the frontier shows nothing more will come, its process's
/// `KeyedIo::finish` runs here (the CLI writes its files) and only the finished text goes on to
/// process 0. Everything else passes through.
fn home<'scope>(scope: Scope<'scope, u64>, installed: &Arc<Installed>, input: CollectedStream<'scope>, homed: Homed) -> CollectedStream<'scope> {
    let mut builder = OperatorBuilder::new("Home".to_owned(), scope);
    let mut handle = builder.new_input(input, Exchange::new(|c: &Collected| c.run_item().1));
    let (output, stream) = builder.new_output::<Vec<Collected>>();
    let mut output = OutputBuilder::<_, timely::container::CapacityContainerBuilder<Vec<Collected>>>::from(output);
    let installed = Arc::clone(installed);
    let graph = Arc::clone(&installed.nodes.graph);
    let output_ids: Vec<String> = installed.collected[..installed.returned].iter().map(|&s| graph.nodes[s].id.clone()).collect();
    builder.build(move |_caps| {
        let mut gathering: std::collections::HashMap<(u64, u64), Gathered> = std::collections::HashMap::new();
        // The least time of the input's frontier when last looked at (`None`: all passed).
        let mut seen_frontier: Option<u64> = Some(0);
        move |frontiers| {
            let mut out = output.activate();
            let slots = installed.collected.len();
            // The finished text and the capability to send it at (none if already finished).
            let finish = |(run, item): (u64, u64), g: &mut Gathered, key: u64| -> Option<(Capability<u64>, Collected)> {
                let cap = g.cap.take()?;
                let result: ItemResult = match g.error.take() {
                    Some(mut e) => {
                        e.run = Some(run);
                        e.item = Some(item);
                        Err(e)
                    }
                    None => Ok(RunOutput::from_slots(std::mem::take(&mut g.outputs), &output_ids)),
                };
                let failed = result.is_err();
                let text = match &installed.keyed {
                    Some(io) => (io.finish)(key, result),
                    None => String::new(),
                };
                Some((cap, Collected::Finished { run, item, text, failed }))
            };
            handle.for_each(|cap, data| {
                for c in data.drain(..) {
                    let at = c.run_item();
                    let Some(&key) = homed.borrow().get(&at) else {
                        out.session(&cap).give(c);
                        continue;
                    };
                    let g = gathering
                        .entry(at)
                        .or_insert_with(|| Gathered { cap: Some(cap.delayed(&at.0, 0)), outputs: vec![None; slots], awaited: slots, error: None });
                    if g.cap.is_none() {
                        continue;
                    }
                    match c {
                        Collected::Output { slot, payload, .. } => {
                            if let Some(o) = g.outputs.get_mut(slot as usize) {
                                *o = payload;
                            }
                            g.awaited = g.awaited.saturating_sub(1);
                        }
                        Collected::Error { error, .. } => {
                            g.error.get_or_insert_with(|| error.into());
                        }
                        Collected::Finished { .. } => {}
                    }
                    // Still listed in `homed` until its run has passed, so that anything later
                    // for it is dropped here rather than sent on.
                    if g.awaited == 0 || g.error.is_some() {
                        if let Some((at_cap, c)) = finish(at, g, key) {
                            out.session(&at_cap).give(c);
                        }
                    }
                }
            });
            // Runs the frontier has passed: nothing more comes for their items here. Items still
            // gathering are finished with what they have (an output that never came, such as a
            // node's empty result, is left out, as in one process).
            // Looked for only when the frontier has moved (not on every batch of records).
            let least = frontiers[0].frontier().iter().min().copied();
            if least == seen_frontier {
                return;
            }
            seen_frontier = least;
            let passed = |run: u64| frontiers.iter().all(|f| !f.less_equal(&run));
            if !gathering.is_empty() {
                let done: Vec<(u64, u64)> = gathering.keys().copied().filter(|&(run, _)| passed(run)).collect();
                for at in done {
                    if let Some(mut g) = gathering.remove(&at) {
                        let key = homed.borrow_mut().remove(&at).unwrap_or(at.1);
                        if let Some((at_cap, c)) = finish(at, &mut g, key) {
                            out.session(&at_cap).give(c);
                        }
                    }
                }
            }
            if !homed.borrow().is_empty() {
                // Keyed items that sent nothing here (every branch filtered them out): process 0
                // completes them with its run.
                homed.borrow_mut().retain(|&(run, _), _| !passed(run));
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
                        Collected::Finished { run, item, text, failed } => runs.finished(run, item, text, failed),
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
