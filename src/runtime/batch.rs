//! The batch scheduler: the one way a batch of items goes through a pipeline, used by
//! `Pipeline::run_batch`, Python's `run_batch`, `remotemedia batch` and process groups alike.
//!
//! Items are handed to the engine in parts (one epoch each: progress messages go to every worker
//! once per part, not per item), a bounded window of them at a time: the next part goes in as
//! soon as earlier items have been delivered, so memory holds only the window, whatever the
//! batch's length. Each item's result is turned into what the caller keeps (`finish`: written to
//! files, or kept as it is) on the worker that completed it, as it completes; the caller receives
//! those in input order. A failed item is that item's result, not the batch's. Cancelling
//! (Ctrl-C) stops handing items over; items already handed over complete and are delivered, the
//! rest are reported as cancelled, and the pipeline is ready for the next batch.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::runtime::lanes;
use crate::runtime::pipeline::{ItemHandler, ItemInput, ItemResult, Pipeline, RunInput};

/// Asks a running batch to stop handing items over. Cloneable; cancel from any thread or a
/// signal handler's watcher.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How much a batch hands over at a time. `part_weight` and `part_items` are for a pool of two
/// workers; a pool of W workers (all processes' together) uses W/2 times as much (see
/// [`part_for`](Self::part_for)).
#[derive(Clone, Debug)]
pub struct BatchOptions {
    /// The work one part carries, in samples (or the items' own weights): 8 s of 48 kHz audio.
    /// A part has at least `min_items_per_worker` items per worker regardless.
    pub part_weight: u64,
    pub min_items_per_worker: usize,
    /// Items one part carries at most (unless `min_items_per_worker` asks for more): with tiny
    /// items, `part_weight` alone let a whole batch of 10,000 into one window, and every item in
    /// flight holds its input, result and bookkeeping (~4 KB each from Python), so memory grew
    /// with the batch. At 256 per part an epoch's fixed cost (~20 µs) is still well under 1 µs
    /// an item.
    pub part_items: usize,
    /// Parts' worth of items (by weight and by count) handed over and not yet delivered, at most.
    pub window_parts: usize,
    pub cancel: CancelToken,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions { part_weight: 8 * 48_000, min_items_per_worker: 1, part_items: 256, window_parts: 3, cancel: CancelToken::new() }
    }
}

impl BatchOptions {
    /// A part's weight and item count for a pool of `workers` workers: the options' own for two
    /// or fewer, proportionally more for more, so that every worker keeps the same share of the
    /// window (and of each epoch) whatever their number. Why: at 16 workers, parts of 8 s and a
    /// window of 24 s left 1-2 items of 1 s per worker in flight and an epoch for every item or
    /// two per worker: a worker that finished its item waited for the caller to wake and hand the
    /// next part over, and every epoch's progress messages went to all 16 workers. Measured on
    /// 2 cores with 16 workers (2,048 items of 1 s): 115-120 µs of CPU per item scaled, against
    /// 166-200 µs unscaled; 2 workers are unchanged (docs/performance.md).
    pub fn part_for(&self, workers: usize) -> (u64, usize) {
        let scale = (workers / 2).max(1);
        (self.part_weight.saturating_mul(scale as u64), self.part_items.max(1).saturating_mul(scale))
    }
}

/// What the caller receives for one item, in input order.
#[derive(Debug)]
pub enum BatchItem<T> {
    /// `finish`'s value for the item's result (its outputs or its node error).
    Done(T),
    /// The batch was cancelled before the item was handed over.
    Cancelled,
    /// The engine failed (its pool died) before the item completed.
    Lost(String),
}

/// The caller's side of a batch.
pub trait BatchDriver<T> {
    /// Item `index` (0, 1, ... in turn), or `None` when there are no more.
    fn next_item(&mut self, index: usize) -> Option<ItemInput>;
    /// One item's outcome; called in input order.
    fn deliver(&mut self, index: usize, item: BatchItem<T>);
    /// Items from `from` on will not be handed over: the batch was cancelled. (Each still to be
    /// reported as cancelled by the driver, which knows how many there are.)
    fn cancelled_from(&mut self, from: usize);
    /// Waits for the next event; the Python binding releases the GIL around this.
    fn wait(&mut self, inbox: &mut Inbox<T>, timeout: Duration) -> Option<Event<T>> {
        inbox.recv(timeout)
    }
    /// Whether a cancelled batch returns at once, leaving the items in flight to complete
    /// unseen (Python raising `KeyboardInterrupt`), instead of delivering them first.
    fn abandon_on_cancel(&self) -> bool {
        false
    }
    /// Called between waits, at least every [`POLL`]: true cancels the batch (a signal).
    fn should_cancel(&mut self) -> bool {
        false
    }
}

/// How often a waiting batch looks at its cancel token, the driver and the pool's health.
pub const POLL: Duration = Duration::from_millis(50);

/// What the workers tell the batch.
pub enum Event<T> {
    Item(usize, T),
    /// The run of the part starting at this index completed (`Err`: the engine failed it).
    Part(usize, Result<(), String>),
}

/// Where the workers' events arrive; `Send`, so it can be waited on without the GIL.
///
/// Why not a channel: a channel wakes its receiver for every event, and a batch's caller was
/// woken once per item (its wait also spun and yielded first: 1,310 `sched_yield` calls in a
/// 2,048-item batch), each wake-up taking a core from a worker for a context switch. Here the
/// workers append to one queue and wake the caller only once `want` events are waiting (the
/// scheduler asks for a third of the items in flight, so the workers still hold two thirds of
/// the window when it wakes), or at once for an event that cannot wait (a part that failed).
/// The caller parks at once, without spinning, and takes every waiting event in one swap.
pub struct Inbox<T> {
    shared: Arc<Mailbox<T>>,
    /// Events taken from the queue, not yet handed to the scheduler.
    local: std::collections::VecDeque<Event<T>>,
    /// Wake up once this many events are waiting (at least 1).
    pub want: usize,
}

/// The queue the workers append to, and the caller waiting on it.
struct Mailbox<T> {
    queue: Mutex<Queue<T>>,
}

struct Queue<T> {
    events: Vec<Event<T>>,
    /// The parked caller and how many events it waits for.
    waiter: Option<(Thread, usize)>,
}

impl<T> Mailbox<T> {
    fn new() -> Mailbox<T> {
        Mailbox { queue: Mutex::new(Queue { events: Vec::new(), waiter: None }) }
    }

    fn lock(&self) -> MutexGuard<'_, Queue<T>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `event`; wakes the caller if it now has what it waits for (or `urgent`).
    fn send(&self, event: Event<T>, urgent: bool) {
        let wake = {
            let mut q = self.lock();
            q.events.push(event);
            let len = q.events.len();
            match &q.waiter {
                Some((_, want)) if urgent || len >= *want => q.waiter.take().map(|(t, _)| t),
                _ => None,
            }
        };
        // Unparked outside the lock, so the caller does not wake into a held lock.
        if let Some(t) = wake {
            t.unpark();
        }
    }
}

impl<T> Inbox<T> {
    fn new() -> (Inbox<T>, Arc<Mailbox<T>>) {
        let shared = Arc::new(Mailbox::new());
        (Inbox { shared: Arc::clone(&shared), local: std::collections::VecDeque::new(), want: 1 }, shared)
    }

    /// An event already taken from the queue, without waiting (and without the lock).
    pub fn take_local(&mut self) -> Option<Event<T>> {
        self.local.pop_front()
    }

    /// The next event: one taken earlier, or else waits (parked) until `want` events are
    /// waiting, a failure arrives, or `timeout` passes; then takes all waiting events.
    pub fn recv(&mut self, timeout: Duration) -> Option<Event<T>> {
        if let Some(e) = self.local.pop_front() {
            return Some(e);
        }
        let deadline = Instant::now() + timeout;
        let want = self.want.max(1);
        loop {
            {
                let mut q = self.shared.lock();
                if q.events.len() >= want || Instant::now() >= deadline {
                    q.waiter = None;
                    self.local.extend(q.events.drain(..));
                    return self.local.pop_front();
                }
                q.waiter = Some((std::thread::current(), want));
            }
            std::thread::park_timeout(deadline.saturating_duration_since(Instant::now()));
            let mut q = self.shared.lock();
            if q.waiter.is_none() {
                // A sender took the waiter: enough events, or an urgent one.
                self.local.extend(q.events.drain(..));
                return self.local.pop_front();
            }
            // Timed out or woke spuriously: look again (the deadline decides).
            q.waiter = None;
        }
    }
}

/// A part in the engine's hands, by its first item's index: how many items it has, and how many
/// have come back. (Its run's reply may overtake its last items' events, which other workers
/// send; the part is over when every item has come back.)
struct Part {
    len: usize,
    received: usize,
    /// Its run's id, to cancel it.
    run: u64,
}

/// The scheduler's state for one batch.
struct Scheduler<T> {
    /// Parts in the engine's hands, by first index.
    parts: BTreeMap<usize, Part>,
    /// Results waiting for earlier ones, by index.
    ready: BTreeMap<usize, BatchItem<T>>,
    /// Weight of each item handed over and not yet delivered, by index.
    undelivered: BTreeMap<usize, u64>,
    held: u64,
    /// Items handed over (or refused) so far, and delivered so far.
    next: usize,
    delivered: usize,
}

impl<T> Scheduler<T> {
    fn received(&mut self, index: usize, item: BatchItem<T>) {
        if let Some((&first, part)) = self.parts.range_mut(..=index).next_back() {
            if index < first + part.len {
                part.received += 1;
                if part.received == part.len {
                    self.parts.remove(&first);
                }
            }
        }
        self.ready.entry(index).or_insert(item);
    }

    /// Every item of the part at `first` that has not come back is lost.
    fn lose(&mut self, first: usize, message: &str) {
        let Some(part) = self.parts.remove(&first) else { return };
        for index in first..first + part.len {
            self.ready.entry(index).or_insert_with(|| BatchItem::Lost(message.to_string()));
        }
    }

    /// How many events to wait for before waking: a third of the items in flight (at least
    /// one), so the workers still hold two thirds of the window when the caller hands the next
    /// part over, and the caller wakes a few times per window instead of once per item.
    fn wake_after(&self) -> usize {
        let in_flight: usize = self.parts.values().map(|p| p.len - p.received).sum();
        (in_flight / 3).max(1)
    }

    fn deliver_ready(&mut self, driver: &mut dyn BatchDriver<T>) {
        while let Some(item) = self.ready.remove(&self.delivered) {
            if let Some(w) = self.undelivered.remove(&self.delivered) {
                self.held -= w;
            }
            driver.deliver(self.delivered, item);
            self.delivered += 1;
        }
    }
}

/// Runs every item `driver` gives through `pipeline`; `finish` turns each item's result into
/// what is delivered, on the worker that completed it. Returns once every item handed over has
/// been delivered (and, if cancelled, the rest reported); an error only when a part could not be
/// handed over at all (an input matched no source node), after the parts in flight completed.
pub fn run<T: Send + 'static>(
    pipeline: &Pipeline,
    driver: &mut dyn BatchDriver<T>,
    finish: Arc<dyn Fn(usize, ItemResult) -> T + Send + Sync>,
    options: &BatchOptions,
) -> Result<(), Error> {
    pipeline.pool().check_not_own_worker()?;
    let (mut inbox, mailbox) = Inbox::<T>::new();
    let workers = pipeline.workers() * pipeline.pool().processes();
    let min_items = workers * options.min_items_per_worker.max(1);
    let (part_weight, part_items) = options.part_for(workers);
    let window = part_weight.saturating_mul(options.window_parts.max(1) as u64);
    let window_items = part_items.saturating_mul(options.window_parts.max(1));
    let mut s = Scheduler { parts: BTreeMap::new(), ready: BTreeMap::new(), undelivered: BTreeMap::new(), held: 0, next: 0, delivered: 0 };
    let mut exhausted = false;
    let mut cancelled = false;
    let mut failure: Option<Error> = None;
    loop {
        // Hand parts over while the window has room.
        while !exhausted
            && !cancelled
            && failure.is_none()
            && ((s.held < window && s.undelivered.len() < window_items) || s.parts.is_empty())
        {
            // The first part fills the window at once (a batch that fits is one epoch, its items
            // all placed knowing of each other); later ones top it up as items are delivered.
            let (target, target_items) = if s.next == 0 { (window, window_items) } else { (part_weight, part_items) };
            let mut items = Vec::new();
            let mut weights = Vec::new();
            let mut weight = 0u64;
            while items.len() < min_items || (weight < target && items.len() < target_items) {
                match driver.next_item(s.next + items.len()) {
                    Some(item) => {
                        let w = item_weight(&item);
                        weight += w;
                        weights.push(w);
                        items.push(item);
                    }
                    None => {
                        exhausted = true;
                        break;
                    }
                }
            }
            if items.is_empty() {
                break;
            }
            let first = s.next;
            let len = items.len();
            s.next += len;
            let to_caller = Arc::clone(&mailbox);
            let finish = Arc::clone(&finish);
            let on_item: ItemHandler = Arc::new(move |i, r| {
                let index = first + i as usize;
                to_caller.send(Event::Item(index, finish(index, r)), false);
            });
            let to_caller = Arc::clone(&mailbox);
            let reply = Box::new(move |r: Result<Vec<ItemResult>, Error>| {
                // A failed part's missing items will never come: the caller must hear at once.
                let failed = r.is_err();
                to_caller.send(Event::Part(first, r.map(|_| ()).map_err(|e| e.to_string())), failed);
            });
            match pipeline.submit_items(items, Some(on_item), reply) {
                Ok(run) => {
                    s.parts.insert(first, Part { len, received: 0, run });
                    for (k, w) in weights.into_iter().enumerate() {
                        s.held += w;
                        s.undelivered.insert(first + k, w);
                    }
                }
                Err(Error::Engine(m)) => {
                    for index in first..first + len {
                        s.ready.insert(index, BatchItem::Lost(m.clone()));
                    }
                }
                Err(e) => {
                    // The part never started: the batch's error, reported once what is in
                    // flight has completed; its items count as cancelled meanwhile.
                    for index in first..first + len {
                        s.ready.insert(index, BatchItem::Cancelled);
                    }
                    failure = Some(e);
                }
            }
        }
        s.deliver_ready(driver);
        if s.parts.is_empty() && s.delivered == s.next && (exhausted || cancelled || failure.is_some()) {
            break;
        }
        if s.parts.is_empty() && s.delivered < s.next {
            // Cannot happen: an item handed over is in a part until it has come back.
            return Err(Error::Engine(format!("batch item {} was lost by the scheduler", s.delivered)));
        }
        inbox.want = s.wake_after();
        match driver.wait(&mut inbox, POLL) {
            Some(Event::Item(index, value)) => s.received(index, BatchItem::Done(value)),
            Some(Event::Part(first, Err(m))) => s.lose(first, &m),
            Some(Event::Part(_, Ok(()))) => {}
            None => {
                if let Err(e) = pipeline.pool().check_alive() {
                    // The pool died: nothing more will come for the parts in flight.
                    let firsts: Vec<usize> = s.parts.keys().copied().collect();
                    for first in firsts {
                        s.lose(first, &e.to_string());
                    }
                }
            }
        }
        if !cancelled && (options.cancel.is_cancelled() || driver.should_cancel()) {
            cancelled = true;
            options.cancel.cancel();
            // Items in flight that have not reached a node yet fail as cancelled at once.
            for part in s.parts.values() {
                pipeline.cancel(part.run);
            }
            if driver.abandon_on_cancel() {
                break;
            }
        }
    }
    if cancelled && !exhausted {
        driver.cancelled_from(s.next);
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What an item weighs for the window and for placement (see lanes.rs).
fn item_weight(item: &ItemInput) -> u64 {
    match item {
        ItemInput::Ready(RunInput::All(p)) => lanes::weight(Some(p)),
        ItemInput::Ready(RunInput::Named(m)) => m.values().map(|p| lanes::weight(Some(p))).sum::<u64>().max(1),
        ItemInput::Load { weight, .. } | ItemInput::Keyed { weight, .. } => (*weight).max(1),
    }
}

pub use crate::runtime::runs::{cancelled_error, CANCEL_OPERATION};

/// A driver over a vector of inputs that keeps every result: what `Pipeline::run_batch` uses.
struct Collect {
    items: std::vec::IntoIter<RunInput>,
    results: Vec<Option<Result<ItemResult, String>>>,
}

impl BatchDriver<ItemResult> for Collect {
    fn next_item(&mut self, _index: usize) -> Option<ItemInput> {
        self.items.next().map(ItemInput::Ready)
    }

    fn deliver(&mut self, index: usize, item: BatchItem<ItemResult>) {
        self.results[index] = Some(match item {
            BatchItem::Done(r) => Ok(r),
            BatchItem::Lost(m) => Err(m),
            BatchItem::Cancelled => Ok(Err(cancelled_error())),
        });
    }

    fn cancelled_from(&mut self, _from: usize) {}
}

impl Pipeline {
    /// Runs a batch through the batch scheduler and waits for it; each item gets its own
    /// result, in input order. Fails as a whole only when the engine does (its pool died) or an
    /// input names no source node.
    pub fn run_batch(&self, items: Vec<RunInput>) -> Result<Vec<ItemResult>, Error> {
        self.run_batch_with(items, &BatchOptions::default())
    }

    /// As [`run_batch`](Self::run_batch), with these options (window, cancellation). Items a
    /// cancelled batch did not run get an error whose operation is [`CANCEL_OPERATION`].
    pub fn run_batch_with(&self, items: Vec<RunInput>, options: &BatchOptions) -> Result<Vec<ItemResult>, Error> {
        let n = items.len();
        let mut driver = Collect { items: items.into_iter(), results: (0..n).map(|_| None).collect() };
        run(self, &mut driver, Arc::new(|_, r| r), options)?;
        driver
            .results
            .into_iter()
            .map(|r| match r {
                Some(Ok(r)) => Ok(r),
                Some(Err(m)) => Err(Error::Engine(m)),
                None => Ok(Err(cancelled_error())),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    //! The scheduler's bookkeeping and its inbox alone: no pipeline, no pool, no timely.
    use super::*;

    /// A driver that records what it is given.
    #[derive(Default)]
    struct Record {
        delivered: Vec<(usize, String)>,
    }

    impl BatchDriver<u32> for Record {
        fn next_item(&mut self, _index: usize) -> Option<ItemInput> {
            None
        }
        fn deliver(&mut self, index: usize, item: BatchItem<u32>) {
            let what = match item {
                BatchItem::Done(v) => format!("done {v}"),
                BatchItem::Cancelled => "cancelled".to_string(),
                BatchItem::Lost(m) => format!("lost: {m}"),
            };
            self.delivered.push((index, what));
        }
        fn cancelled_from(&mut self, _from: usize) {}
    }

    /// Parts are the options' own for one or two workers and grow with the pool beyond that, so
    /// each worker's share of a part (and of the window) stays what it is with two.
    #[test]
    fn parts_grow_with_the_workers_so_each_keeps_the_same_share() {
        let o = BatchOptions::default();
        assert_eq!(o.part_for(1), (o.part_weight, o.part_items));
        assert_eq!(o.part_for(2), (o.part_weight, o.part_items));
        assert_eq!(o.part_for(16), (8 * o.part_weight, 8 * o.part_items));
        assert_eq!(o.part_for(17), (8 * o.part_weight, 8 * o.part_items), "an odd pool rounds down");
        let (weight, _) = o.part_for(16);
        assert_eq!(weight / 16, o.part_weight / 2, "a worker's share of a part is the same at 16 as at 2");
        let tiny = BatchOptions { part_items: 0, ..BatchOptions::default() };
        assert_eq!(tiny.part_for(4).1, 2, "at least one item a part, scaled");
    }

    fn scheduler(parts: &[(usize, usize)]) -> Scheduler<u32> {
        let mut s = Scheduler { parts: BTreeMap::new(), ready: BTreeMap::new(), undelivered: BTreeMap::new(), held: 0, next: 0, delivered: 0 };
        for &(first, len) in parts {
            s.parts.insert(first, Part { len, received: 0, run: first as u64 });
            for i in first..first + len {
                s.undelivered.insert(i, 10);
                s.held += 10;
            }
            s.next = s.next.max(first + len);
        }
        s
    }

    /// Items come back in any order and are delivered in input order, each as soon as every
    /// earlier one is in; a part leaves the books when its last item is in, and the window's
    /// weight is given back as items are delivered.
    #[test]
    fn results_are_delivered_in_input_order_whatever_order_they_arrive_in() {
        let mut s = scheduler(&[(0, 3), (3, 3)]);
        let mut d = Record::default();
        for (index, value) in [(1, 11), (4, 14), (0, 10)] {
            s.received(index, BatchItem::Done(value));
            s.deliver_ready(&mut d);
        }
        assert_eq!(d.delivered, vec![(0, "done 10".to_string()), (1, "done 11".to_string())]);
        assert_eq!(s.held, 40, "two of six items of weight 10 delivered");
        for (index, value) in [(5, 15), (2, 12), (3, 13)] {
            s.received(index, BatchItem::Done(value));
            s.deliver_ready(&mut d);
        }
        let order: Vec<usize> = d.delivered.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(d.delivered[4].1, "done 14");
        assert!(s.parts.is_empty(), "both parts complete");
        assert_eq!((s.held, s.delivered), (0, 6));
    }

    /// A part the engine failed: the items that had come back keep their results, the rest are
    /// lost with the engine's message; the other part is untouched.
    #[test]
    fn a_failed_part_loses_only_its_missing_items() {
        let mut s = scheduler(&[(0, 2), (2, 3)]);
        let mut d = Record::default();
        s.received(3, BatchItem::Done(3));
        s.lose(2, "the pool died");
        s.received(0, BatchItem::Done(0));
        s.received(1, BatchItem::Done(1));
        s.deliver_ready(&mut d);
        let want: Vec<(usize, String)> = vec![
            (0, "done 0".into()),
            (1, "done 1".into()),
            (2, "lost: the pool died".into()),
            (3, "done 3".into()),
            (4, "lost: the pool died".into()),
        ];
        assert_eq!(d.delivered, want);
        assert!(s.parts.is_empty());
    }

    /// The caller asks to be woken after a third of the items in flight (at least one).
    #[test]
    fn the_caller_waits_for_a_third_of_the_items_in_flight() {
        let mut s = scheduler(&[(0, 8), (8, 8), (16, 8)]);
        assert_eq!(s.wake_after(), 8);
        for i in 0..20 {
            s.received(i, BatchItem::Done(i as u32));
        }
        assert_eq!(s.wake_after(), 1, "4 left in flight");
        assert_eq!(scheduler(&[]).wake_after(), 1);
    }

    /// Workers' events reach a waiting caller in one wake-up once `want` are queued; it takes
    /// them all at once, in the order they were sent.
    #[test]
    fn an_inbox_wakes_its_caller_once_enough_events_are_waiting() {
        let (mut inbox, mailbox) = Inbox::<u32>::new();
        inbox.want = 5;
        let sender = std::thread::spawn(move || {
            for k in 0..5u32 {
                std::thread::sleep(Duration::from_millis(2));
                mailbox.send(Event::Item(k as usize, k), false);
            }
        });
        let first = inbox.recv(Duration::from_secs(30));
        sender.join().unwrap();
        assert!(matches!(first, Some(Event::Item(0, 0))));
        let mut rest = Vec::new();
        while let Some(Event::Item(i, _)) = inbox.take_local() {
            rest.push(i);
        }
        assert_eq!(rest, vec![1, 2, 3, 4], "taken in one swap, in order");
    }

    /// A failed part wakes the caller whatever it waits for; with nothing urgent, the timeout
    /// hands over what has arrived, or nothing.
    #[test]
    fn an_urgent_event_wakes_the_caller_and_a_timeout_returns_what_there_is() {
        let (mut inbox, mailbox) = Inbox::<u32>::new();
        inbox.want = 100;
        let to_caller = Arc::clone(&mailbox);
        let started = Instant::now();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            to_caller.send(Event::Part(7, Err("failed".into())), true);
        });
        let got = inbox.recv(Duration::from_secs(30));
        sender.join().unwrap();
        assert!(matches!(got, Some(Event::Part(7, Err(ref m))) if m == "failed"));
        assert!(started.elapsed() < Duration::from_secs(30), "woken by the event, not the timeout");

        assert!(inbox.recv(Duration::from_millis(1)).is_none(), "nothing arrived");
        mailbox.send(Event::Item(1, 1), false);
        assert!(matches!(inbox.recv(Duration::from_millis(1)), Some(Event::Item(1, 1))), "fewer than wanted, after the timeout");
    }
}
