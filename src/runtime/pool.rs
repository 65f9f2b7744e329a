//! The worker pool: long-lived timely workers (threads, pinned to CPUs of their own) that park
//! when idle, build an installed pipeline's dataflow on request (every worker the same operators,
//! in the same order), run it until it is dropped, and turn a panic outside node code into a
//! failed pool instead of a hang. Run handles (pipeline.rs) sit above it; it knows the dataflow
//! it builds (dataflow.rs) and nothing above.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use timely::execute::execute_from;

use crate::error::{Error, NodeError};
use crate::metrics::WorkerStats;
use crate::runtime::dataflow;
use crate::runtime::installed::Installed;
use crate::runtime::lanes::Placement;
use crate::runtime::panic::{is_worker_of, register_worker};
use crate::tuning::Tuning;

/// A message from the pool's owner to its workers.
enum Control {
    Install { installed: Arc<Installed>, ack: Sender<Result<(), NodeError>> },
    /// Send a copy of this worker's records for a pipeline.
    Snapshot { pipeline: u64, reply: Sender<(usize, WorkerStats)> },
    ResetStats { pipeline: u64, ack: Sender<(usize, ())> },
    /// The pipeline was dropped: let its records go.
    Forget { pipeline: u64 },
    Shutdown,
}

/// State shared by the pool's handle, its workers and the panic hook.
pub(crate) struct PoolState {
    poisoned: AtomicBool,
    reason: Mutex<Option<String>>,
    threads: OnceLock<Vec<Thread>>,
    /// Pipelines installed on this pool, so a dying pool can fail their runs.
    pipelines: Mutex<Vec<Weak<Installed>>>,
}

impl PoolState {
    /// Marks the pool dead (a worker panicked outside node code) and wakes every worker.
    pub(crate) fn poison(&self, reason: String) {
        let mut r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        drop(r);
        self.poisoned.store(true, Ordering::SeqCst);
        self.wake_all();
    }

    fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::SeqCst)
    }

    fn reason(&self) -> String {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "the worker pool has shut down".into())
    }

    fn wake_all(&self) {
        if let Some(threads) = self.threads.get() {
            threads.iter().for_each(Thread::unpark);
        }
    }

    fn fail_pipelines(&self) {
        let reason = self.reason();
        let pipelines = std::mem::take(&mut *self.pipelines.lock().unwrap_or_else(|e| e.into_inner()));
        for p in pipelines.iter().filter_map(Weak::upgrade) {
            p.fail_all(&reason);
        }
    }
}

/// A pool of timely workers in this process (and, in cluster mode, its peers in other processes).
pub struct WorkerPool {
    workers: usize,
    /// In cluster mode, this process's index and the number of processes; `(0, 1)` otherwise.
    process: usize,
    processes: usize,
    control: Vec<Sender<Control>>,
    state: Arc<PoolState>,
    /// Keeps installs in the same order on every worker.
    install_lock: Mutex<()>,
    next_pipeline: AtomicU64,
    guards: Mutex<Option<timely::communication::WorkerGuards<()>>>,
    /// How long a caller polls for its reply before blocking, and how many callers may poll at
    /// once (the cores the workers leave free); `REMOTEMEDIA_REPLY_SPIN_US` (tuning.rs) sets the first.
    reply_spin: Duration,
    /// How items are put on the workers (lanes.rs): from `REMOTEMEDIA_BALANCE`, read with the
    /// pool's other switches when it started, and whether each worker can have a CPU.
    pub(crate) placement: Placement,
    spin_slots: usize,
    spinning: AtomicUsize,
    /// The CPU each of this process's workers is pinned to, if it is (see affinity.rs).
    pinned: Vec<Option<usize>>,
    /// Join the workers off the dropping thread (shared pools, dropped from Python with the GIL
    /// held); other pools join before their drop returns, so a process group's peer stays up
    /// until its dataflows have ended.
    join_in_background: AtomicBool,
}

impl WorkerPool {
    /// Starts `workers` timely workers (threads) that park until there is work.
    pub fn new(workers: usize) -> Result<Arc<WorkerPool>, Error> {
        let tuning = Tuning::from_env()?;
        crate::runtime::alloc::tune();
        if workers == 0 {
            return Err(Error::Engine("a worker pool needs at least one worker".into()));
        }
        let (builders, others) = timely::CommunicationConfig::Process(workers)
            .try_build()
            .map_err(|e| Error::Engine(format!("cannot start timely workers: {e}")))?;
        Self::start(workers, 0, 1, builders, others, tuning)
    }

    /// Starts this process's share of a process group (see [`crate::runtime::cluster`]): connects
    /// to every peer within the configured timeout, then starts `config.workers` workers whose
    /// dataflows span every process. Every process must install the same pipelines in the same
    /// order; items submitted on process 0 are spread over all workers and collected there (a
    /// keyed item is loaded and finished by its worker's own process: `install_keyed`).
    pub fn cluster(config: &crate::runtime::cluster::ClusterConfig) -> Result<Arc<WorkerPool>, Error> {
        let tuning = Tuning::from_env()?;
        crate::runtime::alloc::tune();
        config.check(config.processes())?;
        let (builders, others) = crate::runtime::cluster::connect(config)?;
        Self::start(config.workers, config.process, config.processes(), builders, others, tuning)
    }

    fn start(
        workers: usize,
        process: usize,
        processes: usize,
        builders: Vec<timely::communication::AllocatorBuilder>,
        others: Box<dyn std::any::Any + Send>,
        tuning: Tuning,
    ) -> Result<Arc<WorkerPool>, Error> {
        // Timely numbers workers across the whole group; the control channels are this process's.
        let first = process * workers;
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..workers).map(|_| crossbeam_channel::unbounded()).unzip();
        let receivers: Arc<Vec<Receiver<Control>>> = Arc::new(receivers);
        let state = Arc::new(PoolState {
            poisoned: AtomicBool::new(false),
            reason: Mutex::new(None),
            threads: OnceLock::new(),
            pipelines: Mutex::new(Vec::new()),
        });
        let (thread_tx, thread_rx) = crossbeam_channel::bounded::<(usize, Thread, Option<usize>)>(workers);
        let worker_state = Arc::clone(&state);
        let cpus = crate::runtime::affinity::for_new_pool(workers, process, tuning.pin);
        let worker_config = timely::WorkerConfig::default().idle_spin(tuning.idle_spin.unwrap_or_else(|| idle_spin(workers)));
        let guards = execute_from(builders, others, worker_config, move |worker| {
            let index = worker.index() - first;
            // Each worker on a CPU of its own, so that a batch's workers never queue on one CPU
            // while another idles (see affinity.rs).
            let pinned = cpus.as_ref().map(|c| c[index]).filter(|&cpu| crate::runtime::affinity::pin_current_thread(cpu));
            let rx = receivers[index].clone();
            let state = Arc::clone(&worker_state);
            register_worker(Arc::clone(&state));
            let _ = thread_tx.send((index, std::thread::current(), pinned));
            // This worker's own metrics records, per installed pipeline: its operators write them
            // without locks; copies leave only through the control channel.
            let mut stats: HashMap<u64, Rc<RefCell<WorkerStats>>> = HashMap::new();
            loop {
                while let Ok(cmd) = rx.try_recv() {
                    match cmd {
                        Control::Install { installed, ack } => {
                            // Per-node records (a latency histogram each) only when metrics are
                            // on: node runners record nothing otherwise, and a snapshot of a
                            // pipeline without them is built empty when asked for.
                            let nodes = if installed.nodes.metrics { installed.graph().nodes.len() } else { 0 };
                            let local = Rc::new(RefCell::new(WorkerStats::new(nodes)));
                            stats.insert(installed.id, Rc::clone(&local));
                            let _ = ack.send(dataflow::build(worker, &installed, local));
                        }
                        Control::Snapshot { pipeline, reply } => {
                            let copy = stats.get(&pipeline).map(|s| s.borrow().clone()).unwrap_or_default();
                            let _ = reply.send((index, copy));
                        }
                        Control::ResetStats { pipeline, ack } => {
                            if let Some(s) = stats.get(&pipeline) {
                                let nodes = s.borrow().nodes.len();
                                *s.borrow_mut() = WorkerStats::new(nodes);
                            }
                            let _ = ack.send((index, ()));
                        }
                        Control::Forget { pipeline } => {
                            stats.remove(&pipeline);
                        }
                        Control::Shutdown => return,
                    }
                }
                if state.is_poisoned() {
                    if index == 0 {
                        state.fail_pipelines();
                    }
                    for id in worker.installed_dataflows() {
                        worker.drop_dataflow(id);
                    }
                    return;
                }
                worker.step_or_park(None);
            }
        })
        .map_err(|e| Error::Engine(format!("cannot start timely workers: {e}")))?;
        let mut threads: Vec<Option<Thread>> = vec![None; workers];
        let mut pinned = vec![None; workers];
        for _ in 0..workers {
            let (i, t, cpu) = thread_rx
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| Error::Engine("timely workers did not start within 10 s".into()))?;
            threads[i] = Some(t);
            pinned[i] = cpu;
        }
        let _ = state.threads.set(threads.into_iter().flatten().collect());
        Ok(Arc::new(WorkerPool {
            workers,
            process,
            processes,
            control: senders,
            state,
            install_lock: Mutex::new(()),
            next_pipeline: AtomicU64::new(0),
            guards: Mutex::new(Some(guards)),
            // 100 µs unless REMOTEMEDIA_REPLY_SPIN_US says otherwise (0 turns polling off).
            reply_spin: tuning.reply_spin.unwrap_or(Duration::from_micros(100)),
            placement: Placement::for_pool(tuning.balance, workers, available_cpus()),
            spin_slots: free_cores(workers),
            spinning: AtomicUsize::new(0),
            pinned,
            join_in_background: AtomicBool::new(false),
        }))
    }

    /// The process-wide pool with this many workers, started on first use and shared by every
    /// pipeline installed with that count while any of them lives: the map holds it weakly, so
    /// the pool (its threads and memory) is released when its last pipeline is dropped, and a
    /// later install starts a fresh one. A pool that has died is replaced.
    pub fn shared(workers: usize) -> Result<Arc<WorkerPool>, Error> {
        static POOLS: OnceLock<Mutex<HashMap<usize, Weak<WorkerPool>>>> = OnceLock::new();
        let mut pools = POOLS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        pools.retain(|_, p| p.strong_count() > 0);
        if let Some(p) = pools.get(&workers).and_then(Weak::upgrade) {
            if !p.state.is_poisoned() {
                return Ok(p);
            }
        }
        let pool = WorkerPool::new(workers)?;
        pool.join_in_background.store(true, Ordering::Relaxed);
        pools.insert(workers, Arc::downgrade(&pool));
        Ok(pool)
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// How this pool puts the items of its runs on its workers (see lanes.rs).
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// The CPU each of this process's workers is pinned to (`None`: not pinned).
    pub fn pinned_cpus(&self) -> &[Option<usize>] {
        &self.pinned
    }

    /// This process's index in its process group (0 outside cluster mode).
    pub fn process(&self) -> usize {
        self.process
    }

    /// How many processes the pool's dataflows span (1 outside cluster mode).
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// Fails with the reason if the pool has died.
    pub fn check_alive(&self) -> Result<(), Error> {
        if self.state.is_poisoned() {
            Err(Error::Engine(self.state.reason()))
        } else {
            Ok(())
        }
    }

    /// Fails if the calling thread is one of this pool's workers: a node that waits for a run on
    /// its own pool would wait for itself (the worker it occupies may be the one the run needs),
    /// so every blocking call checks this first and refuses with a clear error instead of hanging.
    pub fn check_not_own_worker(&self) -> Result<(), Error> {
        if is_worker_of(&self.state) {
            return Err(Error::Engine(format!(
                "a node called a blocking method of a pipeline on its own worker pool ({} workers) and would wait for itself; \
                 use a pipeline with another worker count, or the async methods (run_async, push_async)",
                self.workers
            )));
        }
        Ok(())
    }

    /// A new pipeline id, unique in this pool.
    pub(crate) fn next_pipeline_id(&self) -> u64 {
        self.next_pipeline.fetch_add(1, Ordering::Relaxed)
    }

    /// Builds `installed`'s dataflow on every worker and waits until all have. Fails with the
    /// first node that could not be constructed; the caller then closes the pipeline again.
    pub(crate) fn install_dataflow(&self, installed: &Arc<Installed>) -> Result<(), Error> {
        self.check_alive()?;
        self.check_not_own_worker()?;
        let (ack_tx, ack_rx) = crossbeam_channel::bounded(self.workers);
        {
            let _order = self.install_lock.lock().unwrap_or_else(|e| e.into_inner());
            for tx in &self.control {
                tx.send(Control::Install { installed: Arc::clone(installed), ack: ack_tx.clone() })
                    .map_err(|_| Error::Engine("the worker pool is no longer running".into()))?;
            }
        }
        self.state.wake_all();
        self.state.pipelines.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::downgrade(installed));
        let mut first_error = None;
        for _ in 0..self.workers {
            if let Err(e) = self.wait(&ack_rx)? {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(Error::Node(e)),
            None => Ok(()),
        }
    }

    /// Sends `make(reply)` to every worker and collects one answer from each, by worker index.
    fn ask_all<T>(&self, make: impl Fn(Sender<(usize, T)>) -> Control) -> Result<Vec<T>, Error> {
        self.check_not_own_worker()?;
        let (tx, rx) = crossbeam_channel::bounded(self.workers);
        for c in &self.control {
            c.send(make(tx.clone())).map_err(|_| Error::Engine("the worker pool is no longer running".into()))?;
        }
        self.state.wake_all();
        let mut answers: Vec<Option<T>> = (0..self.workers).map(|_| None).collect();
        for _ in 0..self.workers {
            let (i, v) = self.wait(&rx)?;
            answers[i] = Some(v);
        }
        Ok(answers.into_iter().flatten().collect())
    }

    /// A copy of every worker's metrics records for one pipeline, by worker index. Each worker
    /// answers between two scheduling steps, so a node running a long item delays the answer.
    pub(crate) fn snapshot(&self, pipeline: u64, nodes: usize) -> Result<Vec<WorkerStats>, Error> {
        let mut all = self.ask_all(|reply| Control::Snapshot { pipeline, reply })?;
        for w in &mut all {
            if w.nodes.len() != nodes {
                *w = WorkerStats::new(nodes); // not installed there (yet): nothing recorded
            }
        }
        Ok(all)
    }

    pub(crate) fn reset_stats(&self, pipeline: u64) -> Result<(), Error> {
        self.ask_all(|ack| Control::ResetStats { pipeline, ack }).map(|_| ())
    }

    pub(crate) fn forget(&self, pipeline: u64) {
        for c in &self.control {
            let _ = c.send(Control::Forget { pipeline });
        }
        self.state.wake_all();
    }

    /// Waits for a message from the workers, failing instead of hanging if the pool dies.
    pub(crate) fn wait<T>(&self, rx: &Receiver<T>) -> Result<T, Error> {
        if let Some(v) = self.poll_reply(|| rx.try_recv().ok()) {
            return Ok(v);
        }
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(v) => return Ok(v),
                Err(RecvTimeoutError::Timeout) => self.check_alive()?,
                Err(RecvTimeoutError::Disconnected) => {
                    self.check_alive()?;
                    return Err(Error::Engine("the worker pool dropped a reply".into()));
                }
            }
        }
    }
}

impl WorkerPool {
    /// Polls for a reply for up to `reply_spin` when a core is free for it: a reply usually
    /// comes within tens of µs, and a blocked caller pays its own wake-up (50-100 µs on the
    /// machines we measured) on top. Callers beyond the free cores block at once, so polling
    /// never takes a core from a worker.
    pub(crate) fn poll_reply<T>(&self, mut attempt: impl FnMut() -> Option<T>) -> Option<T> {
        if self.reply_spin.is_zero() || self.spinning.fetch_add(1, Ordering::AcqRel) >= self.spin_slots {
            self.spinning.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let start = Instant::now();
        let got = loop {
            if let Some(v) = attempt() {
                break Some(v);
            }
            if start.elapsed() >= self.reply_spin {
                break None;
            }
            std::hint::spin_loop();
        };
        self.spinning.fetch_sub(1, Ordering::AcqRel);
        got
    }
}

/// The CPUs this process may run on.
fn available_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Cores left over when every worker has one.
fn free_cores(workers: usize) -> usize {
    available_cpus().saturating_sub(workers)
}

/// How long an idle worker polls before parking. Waking a parked thread costs 50-100 µs on the
/// virtual machines we measured (versus ~7 µs for a whole 3-node run when the worker is still
/// polling), so a worker that has a core to itself polls for 100 µs: back-to-back runs then never
/// pay for a wake-up, and an idle pool still parks after 100 µs. A worker that shares cores keeps
/// timely's 10 µs, since its polling would take the core from the thread that has work.
/// `REMOTEMEDIA_IDLE_SPIN_US` overrides both (see `start`).
fn idle_spin(workers: usize) -> Duration {
    if free_cores(workers) > 0 {
        Duration::from_micros(100)
    } else {
        Duration::from_micros(timely::WorkerConfig::DEFAULT_IDLE_SPIN_MICROS)
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        for tx in &self.control {
            let _ = tx.send(Control::Shutdown);
        }
        self.state.wake_all();
        if let Some(guards) = self.guards.lock().unwrap_or_else(|e| e.into_inner()).take() {
            if is_worker_of(&self.state) {
                // Dropped by one of its own workers (a node let go of the last pipeline): that
                // worker cannot join itself; the threads end on their own after Shutdown.
                std::mem::forget(guards);
            } else if self.join_in_background.load(Ordering::Relaxed) {
                // Joined off the caller's thread: a worker may be finishing a Python node call
                // that needs the GIL the dropping thread holds.
                let _ = std::thread::Builder::new().name("remotemedia:pool-join".into()).spawn(move || drop(guards));
            } else {
                drop(guards); // joins the worker threads
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The pool with the operators below it, without run handles (pipeline.rs) or the batch
    //! scheduler: a dataflow installed straight from an `Installed`, items submitted to it.
    use super::*;
    use crate::data::{AudioBuffer, Payload};
    use crate::nodes::Registry;
    use crate::runtime::retry::RealClock;
    use crate::runtime::runner::{Factories, NodeTable};
    use crate::runtime::runs::{ItemInput, ItemResult, RunInput};

    fn installed(pool: &WorkerPool, manifest: &str) -> Arc<Installed> {
        let registry = Registry::builtin();
        let graph = crate::manifest::load_str(manifest, &registry).expect("manifest");
        let factories = Factories::resolve(&graph, &registry).expect("factories");
        let id = pool.next_pipeline_id();
        let nodes = NodeTable::new(graph, factories, Arc::new(RealClock::new()), id);
        Arc::new(Installed::new(id, nodes, pool.workers(), pool.process(), pool.processes(), pool.placement, None))
    }

    /// Two workers build the dataflow; a run of eight items through a gain node comes back whole,
    /// each item scaled, and after the pipeline is closed and forgotten the pool takes another.
    #[test]
    fn a_pool_runs_an_installed_dataflow_and_takes_the_next_one() {
        let pool = WorkerPool::new(2).expect("pool");
        assert_eq!(pool.workers(), 2);
        assert!(pool.check_alive().is_ok());
        assert!(pool.check_not_own_worker().is_ok(), "a test thread is none of the pool's workers");
        let text = r#"{"version":"1.0","nodes":[{"id":"g","type":"GainNode","params":{"gain_db":-6.0206}}]}"#;
        for round in 0..2 {
            let inst = installed(&pool, text);
            pool.install_dataflow(&inst).expect("install");
            let items: Vec<ItemInput> = (0..8)
                .map(|k| ItemInput::Ready(RunInput::All(Payload::Audio(AudioBuffer::mono_f32(vec![k as f32 * 0.1; 4], 8000)))))
                .collect();
            let (tx, rx) = crossbeam_channel::bounded::<Result<Vec<ItemResult>, Error>>(1);
            inst.submit(items, Box::new(move |r| {
                let _ = tx.send(r);
            }), None, false)
            .expect("submit");
            let results = pool.wait(&rx).expect("reply").expect("run");
            assert_eq!(results.len(), 8, "round {round}");
            for (k, r) in results.iter().enumerate() {
                let out = r.as_ref().expect("item ok");
                let a = out.get("g").and_then(Payload::audio).expect("audio");
                let want = k as f32 * 0.1 * 0.5;
                let got = a.as_f32().expect("f32");
                assert!(got.len() == 4 && got.iter().all(|&v| (v - want).abs() < 1e-4), "item {k}: {got:?}");
            }
            inst.close();
            pool.forget(inst.id);
        }
    }

    #[test]
    fn a_pool_needs_a_worker() {
        let e = WorkerPool::new(0).err().expect("refused");
        assert_eq!(e.to_string(), Error::Engine("a worker pool needs at least one worker".into()).to_string());
    }
}
