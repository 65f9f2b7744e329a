//! Runs in flight: what a caller hands over for each item ([`RunInput`], a loader that makes it
//! on the worker, or a key the worker's own process makes and finishes it from), what comes back
//! ([`RunOutput`], one [`ItemResult`] per item), and the table where the sinks deliver each item's
//! outputs until the item, and then its run, is settled.
//!
//! An item is settled once every sink has delivered it or it has failed; a run once all its items
//! are. Whoever settles the last item completes the run there and then (on whichever worker), so
//! a run never waits for timely's frontier to say what the count already shows. A run either
//! keeps its results until it completes and hands them over together ([`Reply`]), or hands each
//! item to an [`ItemHandler`] as it settles, on the worker that settled it: that is how a batch
//! writes its output files in parallel and keeps only a window of items in memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::data::Payload;
use crate::error::{Error, NodeError};
use crate::metrics::NodeStats;
use crate::runtime::lanes::Lanes;

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

/// Makes an item's input where the item runs (decodes a file, copies a caller's buffer), so that
/// this work is spread over the workers instead of done one item after another by the caller.
pub type Loader = Box<dyn FnOnce() -> Result<RunInput, String> + Send>;

/// One item as handed to the engine.
pub enum ItemInput {
    Ready(RunInput),
    /// Made on the worker the item is placed on; `weight` (in samples, or any measure of work
    /// proportional to them, such as a file's size) places it before it exists (see lanes.rs).
    /// A loader's error fails the item with an `InvalidInput` error whose operation is
    /// [`LOAD_OPERATION`].
    Load { weight: u64, load: Loader },
    /// Made and finished in whichever process the item is placed on, by that process's
    /// [`KeyedIo`] (registered when the pipeline was installed there): only `key` travels out, and
    /// only the finished text comes back (a process group's batch reads and writes its files on
    /// the workers that run them). `weight` as for `Load`.
    Keyed { weight: u64, key: u64 },
}

/// What every process of a group registers for keyed items ([`ItemInput::Keyed`]): `load`
/// makes an item's input from its key, and `finish` turns the item's result into the short text
/// (JSON, say) its process sends back in place of the outputs, on the worker that completed it.
/// A load error fails the item as a [`Loader`]'s does (then `finish` gets that error).
#[derive(Clone)]
pub struct KeyedIo {
    pub load: Arc<dyn Fn(u64) -> Result<RunInput, String> + Send + Sync>,
    pub finish: Arc<dyn Fn(u64, ItemResult) -> String + Send + Sync>,
}

/// The operation named in the error of an item whose loader failed.
pub const LOAD_OPERATION: &str = "load";

/// Runs a loader, turning its error or panic into the item's error.
pub(crate) fn catch_load(load: Loader) -> Result<RunInput, NodeError> {
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(load))
        .unwrap_or_else(|p| Err(format!("the loader panicked: {}", crate::runtime::panic::panic_message(&*p))));
    caught.map_err(|message| {
        let mut e = NodeError::invalid_input(message);
        e.operation = LOAD_OPERATION.into();
        e
    })
}

impl From<RunInput> for ItemInput {
    fn from(input: RunInput) -> Self {
        ItemInput::Ready(input)
    }
}

/// What one run produced: the output of every output node (the manifest's `outputs`, else the
/// sinks in manifest order), in that order.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOutput {
    pub outputs: Vec<(String, Payload)>,
    /// A keyed item's result as its own process finished it ([`KeyedIo::finish`]), in place of
    /// `outputs` (then empty); `None` for every other item.
    pub finished: Option<String>,
}

impl RunOutput {
    /// The output of the node with this id.
    pub fn get(&self, node_id: &str) -> Option<&Payload> {
        self.outputs.iter().find(|(id, _)| id == node_id).map(|(_, p)| p)
    }

    /// An item's outputs from what each returned node delivered (`slots`, in the order of
    /// `output_ids`); a node that delivered nothing is left out.
    pub(crate) fn from_slots(slots: Vec<Option<Payload>>, output_ids: &[String]) -> RunOutput {
        let outputs = slots.into_iter().zip(output_ids).filter_map(|(p, id)| p.map(|p| (id.clone(), p))).collect();
        RunOutput { outputs, finished: None }
    }
}

/// The result of one item: its outputs, or the first node error it met.
pub type ItemResult = Result<RunOutput, NodeError>;

/// Called once with every item's result when a run completes (on a worker thread: keep it short).
/// Items already handed to an [`ItemHandler`] are not repeated: the list is then empty.
pub type Reply = Box<dyn FnOnce(Result<Vec<ItemResult>, Error>) + Send>;

/// Called with each item's index and result as the item settles, on the worker that settled it.
pub type ItemHandler = Arc<dyn Fn(u64, ItemResult) + Send + Sync>;

/// A run in flight: its outputs so far, per item and collected node (`Installed::collected`).
pub(crate) struct PendingRun {
    outputs: Vec<Vec<Option<Payload>>>,
    errors: Vec<Option<NodeError>>,
    reply: Option<Reply>,
    on_item: Option<ItemHandler>,
    started: Option<Instant>,
    /// Per item, the collected nodes that have not delivered it yet.
    awaited: Vec<u32>,
    /// Per item, whether it has every sink's output or an error (then nothing more is stored).
    settled: Vec<bool>,
    /// Items neither delivered by every sink nor failed.
    unsettled: usize,
    /// Items that failed (for the run's metrics).
    failed: u64,
    /// Keyed items finished in their own process: the text that came back (see [`KeyedIo`]).
    finished: Vec<Option<String>>,
    /// The work its items hold on their workers' lanes, per item (lane, weight), given back as
    /// each item settles (see lanes.rs).
    held: Option<(Arc<Lanes>, Vec<(u32, u64)>)>,
}

impl PendingRun {
    pub fn new(items: usize, sinks: usize, reply: Reply, on_item: Option<ItemHandler>, started: Option<Instant>) -> PendingRun {
        PendingRun {
            outputs: (0..items).map(|_| vec![None; sinks]).collect(),
            errors: vec![None; items],
            reply: Some(reply),
            on_item,
            started,
            awaited: vec![sinks as u32; items],
            settled: vec![false; items],
            unsettled: items,
            failed: 0,
            finished: Vec::new(),
            held: None,
        }
    }

    pub fn items(&self) -> usize {
        self.errors.len()
    }

    /// Notes the lane and weight each item was given, to be released as it settles.
    pub fn hold(&mut self, lanes: Arc<Lanes>, per_item: Vec<(u32, u64)>) {
        self.held = Some((lanes, per_item));
    }

    /// Whether every item has every sink's output or an error.
    pub fn is_settled(&self) -> bool {
        self.unsettled == 0
    }

    /// Applies `change` to an item not yet settled; returns the item's index if that settled it.
    /// Later deliveries and errors for a settled item (another branch's) are dropped.
    fn update(&mut self, item: usize, change: impl FnOnce(&mut PendingRun)) -> Option<usize> {
        if self.settled.get(item).copied().unwrap_or(true) {
            return None;
        }
        change(self);
        if self.awaited[item] > 0 && self.errors[item].is_none() {
            return None;
        }
        self.settled[item] = true;
        self.unsettled -= 1;
        self.failed += self.errors[item].is_some() as u64;
        if let Some((lanes, per_item)) = &self.held {
            let (lane, weight) = per_item[item];
            lanes.release(lane, weight);
        }
        Some(item)
    }

    /// Fails an item before the run is entered (its input could not be made).
    pub fn fail_before_start(&mut self, item: u64, error: NodeError) {
        let _ = self.fail(item, error);
    }

    /// Stores what a collected node delivered for one item (`None`: a sink that is not an
    /// output, which only counts). Items the run does not have are ignored.
    fn deliver(&mut self, item: u64, sink_slot: usize, payload: Option<Payload>) -> Option<usize> {
        let item = item as usize;
        self.update(item, |run| {
            run.outputs[item][sink_slot] = payload;
            run.awaited[item] = run.awaited[item].saturating_sub(1);
        })
    }

    /// A keyed item finished in its own process: settled with the text that came back
    /// (`failed`: its result there was an error, counted in the run's metrics).
    fn finished(&mut self, item: u64, text: String, failed: bool) -> Option<usize> {
        let item = item as usize;
        self.update(item, |run| {
            run.failed += failed as u64;
            if run.finished.is_empty() {
                run.finished = vec![None; run.errors.len()];
            }
            run.finished[item] = Some(text);
            run.awaited[item] = 0;
        })
    }

    /// Records the first error an item meets; later ones (other branches) are dropped.
    fn fail(&mut self, item: u64, error: NodeError) -> Option<usize> {
        self.update(item as usize, |run| run.errors[item as usize] = Some(error))
    }

    /// Takes one item's result out of the run, naming its run (and item, in a batch) in errors.
    fn take_result(&mut self, run: u64, item: usize, output_ids: &[String]) -> ItemResult {
        let items = self.items();
        match self.errors[item].take() {
            Some(mut e) => {
                e.run = Some(run);
                e.item = if items > 1 { Some(item as u64) } else { None };
                Err(e)
            }
            None => {
                if let Some(text) = self.finished.get_mut(item).and_then(Option::take) {
                    return Ok(RunOutput { outputs: Vec::new(), finished: Some(text) });
                }
                Ok(RunOutput::from_slots(std::mem::take(&mut self.outputs[item]), output_ids))
            }
        }
    }
}

/// What settling items led to; acted on by [`Settled::complete`] once the table is unlocked
/// (handlers and replies may take time: writing files, waking a caller).
#[must_use]
pub(crate) struct Settled {
    items: Vec<(ItemHandler, u64, ItemResult)>,
    run: Option<(u64, PendingRun)>,
}

/// The operation named in the error of an item whose run was cancelled before the item
/// reached a node (a cancelled batch's items, an interrupted `run`).
pub const CANCEL_OPERATION: &str = "cancel";

/// The error of an item cancelled before it ran.
pub fn cancelled_error() -> NodeError {
    let mut e = NodeError::permanent("the run was cancelled before this item ran");
    e.operation = CANCEL_OPERATION.into();
    e
}

/// The table of one pipeline's runs in flight, by run id.
pub(crate) struct RunTable {
    runs: Mutex<HashMap<u64, PendingRun>>,
    /// The output nodes' ids, in the order of the first slots of `Installed::collected`: what
    /// each output is keyed by. Slots past them (sinks that are not outputs) keep nothing.
    output_ids: Vec<String>,
    /// Runs cancelled and not yet finished: their items fail at the next node instead of
    /// running. `any_cancelled` keeps the per-call check to one atomic load when there are none.
    cancelled: Mutex<HashSet<u64>>,
    any_cancelled: AtomicUsize,
}

impl RunTable {
    pub fn new(output_ids: Vec<String>) -> RunTable {
        RunTable { runs: Mutex::new(HashMap::new()), output_ids, cancelled: Mutex::new(HashSet::new()), any_cancelled: AtomicUsize::new(0) }
    }

    /// Marks a run cancelled: items of it that have not reached a node yet fail with
    /// [`cancelled_error`] (nodes already running finish). Forgotten when the run finishes.
    pub fn cancel(&self, run: u64) {
        let mut c = self.cancelled.lock().unwrap_or_else(|e| e.into_inner());
        if c.insert(run) {
            self.any_cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }

    pub fn is_cancelled(&self, run: u64) -> bool {
        self.any_cancelled.load(Ordering::Relaxed) > 0 && self.cancelled.lock().unwrap_or_else(|e| e.into_inner()).contains(&run)
    }

    fn forget_cancelled(&self, run: u64) {
        if self.any_cancelled.load(Ordering::Relaxed) > 0 && self.cancelled.lock().unwrap_or_else(|e| e.into_inner()).remove(&run) {
            self.any_cancelled.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, PendingRun>> {
        // A poisoned lock only means a panic elsewhere; the table is still consistent.
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Enters a run; one whose items are all settled already (none, or all failed before
    /// the start) is complete at once, and items failed before the start go to its handler.
    pub fn insert(&self, run: u64, mut pending: PendingRun) -> Settled {
        let mut items = Vec::new();
        if let Some(handler) = pending.on_item.clone() {
            for i in 0..pending.items() {
                if pending.settled[i] {
                    items.push((Arc::clone(&handler), i as u64, pending.take_result(run, i, &self.output_ids)));
                }
            }
        }
        if pending.is_settled() {
            return Settled { items, run: Some((run, pending)) };
        }
        self.lock().insert(run, pending);
        Settled { items, run: None }
    }

    /// A collected node's output for one item of a run (nothing happens for runs no longer in
    /// the table); a sink that is not an output only counts as delivered.
    pub fn deliver(&self, run: u64, item: u64, sink_slot: usize, payload: Option<Payload>) -> Settled {
        let payload = payload.filter(|_| sink_slot < self.output_ids.len());
        self.settle(run, |r| r.deliver(item, sink_slot, payload))
    }

    /// A keyed item finished in its own process (see [`KeyedIo`]).
    pub fn finished(&self, run: u64, item: u64, text: String, failed: bool) -> Settled {
        self.settle(run, |r| r.finished(item, text, failed))
    }

    /// An item's failure (only its first counts).
    pub fn fail(&self, run: u64, item: u64, error: NodeError) -> Settled {
        self.settle(run, |r| r.fail(item, error))
    }

    fn settle(&self, run: u64, change: impl FnOnce(&mut PendingRun) -> Option<usize>) -> Settled {
        let mut runs = self.lock();
        let Some(pending) = runs.get_mut(&run) else { return Settled::none() };
        let item = change(pending).and_then(|i| {
            let handler = pending.on_item.clone()?;
            Some((handler, i as u64, pending.take_result(run, i, &self.output_ids)))
        });
        let done = if pending.is_settled() { runs.remove(&run).map(|r| (run, r)) } else { None };
        Settled { items: item.into_iter().collect(), run: done }
    }

    /// Takes out every run `passed` says is over (timely's frontier has passed it).
    pub fn take_passed(&self, passed: impl Fn(u64) -> bool) -> Vec<(u64, PendingRun)> {
        let mut runs = self.lock();
        let done: Vec<u64> = runs.keys().copied().filter(|&r| passed(r)).collect();
        done.into_iter().filter_map(|r| runs.remove(&r).map(|p| (r, p))).collect()
    }

    /// Takes out every run (the pool is failing them).
    pub fn take_all(&self) -> Vec<PendingRun> {
        self.lock().drain().map(|(_, r)| r).collect()
    }

    /// Hands a completed run over: items not yet handed to its handler first, then the reply.
    /// Records the run's latency into `runs` when it was timed.
    pub fn finish(&self, run: u64, mut pending: PendingRun, runs: Option<&mut NodeStats>) {
        self.forget_cancelled(run);
        if let Some((lanes, per_item)) = pending.held.take() {
            for (item, &(lane, weight)) in per_item.iter().enumerate() {
                if !pending.settled[item] {
                    lanes.release(lane, weight);
                }
            }
        }
        let items = pending.items();
        let mut results = Vec::new();
        for item in 0..items {
            // Items already handed over have neither outputs nor an error left.
            let handed = pending.on_item.is_some() && pending.settled[item];
            if handed {
                continue;
            }
            let result = pending.take_result(run, item, &self.output_ids);
            match &pending.on_item {
                Some(handler) => handler(item as u64, result),
                None => results.push(result),
            }
        }
        if let (Some(t), Some(runs)) = (pending.started, runs) {
            // Every item of a batch counts as one execution with the batch's latency, so total =
            // successful + failed.
            runs.record_items(t.elapsed(), items as u64, pending.failed);
        }
        if let Some(reply) = pending.reply.take() {
            reply(Ok(results));
        }
    }
}

impl Settled {
    /// Nothing to act on.
    pub fn none() -> Settled {
        Settled { items: Vec::new(), run: None }
    }

    /// Calls the items' handler and completes the run, if settling led to either.
    pub fn complete(self, table: &RunTable, runs: Option<&mut NodeStats>) {
        for (handler, item, result) in self.items {
            handler(item, result);
        }
        if let Some((run, pending)) = self.run {
            table.finish(run, pending, runs);
        }
    }
}

/// Fails every run given (the pool died, or the pipeline cannot take them).
pub(crate) fn fail_runs(runs: Vec<PendingRun>, message: &str) {
    for mut run in runs {
        if let Some(reply) = run.reply.take() {
            reply(Err(Error::Engine(message.to_string())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::AudioBuffer;

    fn audio() -> Payload {
        Payload::Audio(AudioBuffer::mono_f32(vec![0.5; 4], 16_000))
    }

    fn replied() -> (Arc<Mutex<Option<Vec<ItemResult>>>>, Reply) {
        let got = Arc::new(Mutex::new(None));
        let to = Arc::clone(&got);
        (got, Box::new(move |r: Result<Vec<ItemResult>, Error>| *to.lock().unwrap() = Some(r.expect("ok"))))
    }

    #[test]
    fn a_run_completes_when_every_item_has_every_sinks_output_or_an_error() {
        // 3 items, 2 sinks: item 0 gets both outputs, item 1 one output and then an error, item 2
        // both outputs last.
        let table = RunTable::new(vec!["a".into(), "b".into()]);
        let (got, reply) = replied();
        table.insert(7, PendingRun::new(3, 2, reply, None, None)).complete(&table, None);
        table.deliver(7, 0, 0, Some(audio())).complete(&table, None);
        table.deliver(7, 0, 1, Some(audio())).complete(&table, None);
        table.deliver(7, 1, 0, Some(audio())).complete(&table, None);
        table.fail(7, 1, NodeError::permanent("branch failed")).complete(&table, None);
        table.fail(7, 1, NodeError::permanent("a second error is dropped")).complete(&table, None);
        table.deliver(7, 2, 0, Some(audio())).complete(&table, None);
        // Items the run does not have are ignored, not counted.
        table.deliver(7, 9, 0, Some(audio())).complete(&table, None);
        assert!(got.lock().unwrap().is_none(), "item 2 still awaits its second sink");
        table.deliver(7, 2, 1, Some(audio())).complete(&table, None);
        let results = got.lock().unwrap().take().expect("completed with its last output");
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].as_ref().unwrap().outputs.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let e = results[1].as_ref().unwrap_err();
        assert_eq!((e.message.as_str(), e.run, e.item), ("branch failed", Some(7), Some(1)));
        assert!(table.take_all().is_empty(), "the run left the table");
    }

    #[test]
    fn a_run_with_a_handler_hands_over_each_item_as_it_settles() {
        let table = RunTable::new(vec!["out".into()]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let to = Arc::clone(&seen);
        let handler: ItemHandler = Arc::new(move |i, r: ItemResult| to.lock().unwrap().push((i, r.is_ok())));
        let (got, reply) = replied();
        table.insert(1, PendingRun::new(3, 1, reply, Some(handler), None)).complete(&table, None);
        table.deliver(1, 2, 0, Some(audio())).complete(&table, None);
        table.fail(1, 0, NodeError::permanent("no")).complete(&table, None);
        assert_eq!(*seen.lock().unwrap(), vec![(2, true), (0, false)], "in the order they settled");
        // The frontier passes the run with item 1 never delivered: it is handed over as it stands.
        for (run, pending) in table.take_passed(|r| r == 1) {
            table.finish(run, pending, None);
        }
        assert_eq!(*seen.lock().unwrap(), vec![(2, true), (0, false), (1, true)]);
        assert_eq!(got.lock().unwrap().take().map(|v| v.len()), Some(0), "nothing repeated in the reply");
    }

    #[test]
    fn settled_items_give_back_their_lane_and_an_empty_run_completes_at_once() {
        let lanes = Arc::new(Lanes::new(2));
        let table = RunTable::new(vec!["out".into()]);
        let (got, reply) = replied();
        let mut run = PendingRun::new(2, 1, reply, None, None);
        let placed: Vec<(u32, u64)> = [500, 300].iter().map(|&w| (lanes.assign(w), w)).collect();
        run.hold(Arc::clone(&lanes), placed);
        table.insert(0, run).complete(&table, None);
        table.deliver(0, 1, 0, Some(audio())).complete(&table, None);
        assert_eq!(lanes.outstanding(), vec![500, 0]);
        table.fail(0, 0, NodeError::permanent("no")).complete(&table, None);
        assert_eq!(lanes.outstanding(), vec![0, 0]);
        assert!(got.lock().unwrap().is_some());
        let (empty, reply) = replied();
        table.insert(1, PendingRun::new(0, 1, reply, None, None)).complete(&table, None);
        assert_eq!(empty.lock().unwrap().take().map(|v| v.len()), Some(0));
    }
}
