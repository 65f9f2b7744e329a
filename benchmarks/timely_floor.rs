//! The floor under the pool's overhead: a bare timely dataflow of the same shape as a 3-node
//! pipeline (an input operator woken from another thread, three pass-through operators, a
//! collector that completes an epoch once the frontier has passed it) on one long-lived worker
//! that polls as the pool's does, driven the cheapest way there is: a queue under a mutex, a
//! `SyncActivator`, and an atomic the caller spins on. No validation, no error or retry paths,
//! no metrics, no payload routing: what remains is timely's own per-epoch work and the two
//! hand-overs between threads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use timely::dataflow::channels::pact::Pipeline as LocalPact;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;
use timely::scheduling::SyncActivator;

type Batch = Vec<(u64, Vec<f32>)>;
type Builder = timely::container::CapacityContainerBuilder<Batch>;

struct Shared {
    /// Submitted epochs with their data, and the next epoch.
    queue: Mutex<(VecDeque<(u64, Vec<f32>)>, u64)>,
    activator: OnceLock<SyncActivator>,
    /// Epochs completed so far (the caller waits for it to pass its own).
    completed: AtomicU64,
    /// Set on drop: the input operator lets its capability go and the dataflow ends.
    closed: AtomicBool,
}

/// A running bare dataflow; `round_trip` submits one epoch and spins until it completes.
pub struct TimelyFloor {
    shared: Arc<Shared>,
    _guards: timely::communication::WorkerGuards<()>,
}

impl TimelyFloor {
    pub fn start(pass_operators: usize, idle_spin: Duration) -> TimelyFloor {
        let shared = Arc::new(Shared { queue: Mutex::new((VecDeque::new(), 0)), activator: OnceLock::new(), completed: AtomicU64::new(0), closed: AtomicBool::new(false) });
        let on_worker = Arc::clone(&shared);
        let (builders, others) = timely::CommunicationConfig::Process(1).try_build().expect("timely");
        let config = timely::WorkerConfig::default().idle_spin(idle_spin);
        let guards = timely::execute::execute_from(builders, others, config, move |worker| {
            let shared = Arc::clone(&on_worker);
            worker.dataflow::<u64, _, _>(|scope| {
                let mut input = OperatorBuilder::new("Input".into(), scope);
                let address = input.operator_info().address;
                let (output, mut stream): (_, Stream<u64, Batch>) = input.new_output::<Batch>();
                let mut output = OutputBuilder::<_, Builder>::from(output);
                let _ = shared.activator.set(scope.worker().sync_activator_for(address.to_vec()));
                let queue = Arc::clone(&shared);
                input.build(move |mut caps| {
                    let mut held: Option<Capability<u64>> = caps.pop();
                    let mut taken = VecDeque::new();
                    move |_| {
                        let Some(cap) = held.as_mut() else { return };
                        let next = {
                            let mut q = queue.queue.lock().expect("queue");
                            std::mem::swap(&mut q.0, &mut taken);
                            q.1
                        };
                        for (epoch, data) in taken.drain(..) {
                            output.activate().session(&cap.delayed(&epoch)).give((epoch, data));
                        }
                        cap.downgrade(&next);
                        if queue.closed.load(Ordering::Acquire) {
                            held = None;
                        }
                    }
                });
                for i in 0..pass_operators {
                    let mut pass = OperatorBuilder::new(format!("Pass{i}"), scope);
                    let mut input = pass.new_input(stream, LocalPact);
                    let (output, next) = pass.new_output::<Batch>();
                    let mut output = OutputBuilder::<_, Builder>::from(output);
                    pass.build(move |_| {
                        move |_| {
                            let mut out = output.activate();
                            input.for_each(|cap, data| out.session(&cap).give_iterator(data.drain(..)));
                        }
                    });
                    stream = next;
                }
                let mut collect = OperatorBuilder::new("Collect".into(), scope);
                let mut input = collect.new_input(stream, LocalPact);
                let done = Arc::clone(&shared);
                collect.build(move |_| {
                    let mut seen: Vec<u64> = Vec::new();
                    move |frontiers| {
                        input.for_each(|_, data| seen.extend(data.drain(..).map(|(epoch, _)| epoch)));
                        seen.retain(|epoch| {
                            let passed = !frontiers[0].less_equal(epoch);
                            if passed {
                                done.completed.fetch_max(epoch + 1, Ordering::Release);
                            }
                            !passed
                        });
                    }
                });
            });
            while worker.step_or_park(None) {}
        })
        .expect("timely worker");
        while shared.activator.get().is_none() {
            std::thread::yield_now();
        }
        TimelyFloor { shared, _guards: guards }
    }

    /// One epoch carrying `data` through the dataflow; returns once it has completed.
    pub fn round_trip(&self, data: Vec<f32>) {
        let epoch = {
            let mut q = self.shared.queue.lock().expect("queue");
            let epoch = q.1;
            q.1 += 1;
            q.0.push_back((epoch, data));
            epoch
        };
        self.shared.activator.get().expect("started").activate().expect("worker alive");
        while self.shared.completed.load(Ordering::Acquire) <= epoch {
            std::hint::spin_loop();
        }
    }
}

impl Drop for TimelyFloor {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        if let Some(a) = self.shared.activator.get() {
            let _ = a.activate();
        }
        // Dropping the guards then joins the worker, whose dataflow has ended.
    }
}
