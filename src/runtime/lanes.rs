//! Spreads single runs over a pool's workers by the work each still has outstanding, instead of
//! by item index.
//!
//! Why: with a fixed `item % workers`, a worker that loses part of its CPU (to the caller, to
//! another process) finishes its share late while the others idle, and items of different
//! lengths split unevenly. Worker 0's input operator gives a run's one item to the worker with
//! the fewest samples outstanding; the run's table entry gives them back as it settles. A run of
//! several items (a batch's part) is not placed here at all: its items wait in a queue that free
//! workers take from (`ItemQueue` in installed.rs), which also covers what no count can foresee,
//! such as a worker preempted by the caller's thread.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::data::Payload;

/// How a pool puts the items of its runs on its workers (one process's; a process group always
/// places by index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Item `k` of a run on worker `k % workers` (`REMOTEMEDIA_BALANCE=0`, for comparisons).
    ByIndex,
    /// Each item on the worker with the least work outstanding when its run starts ([`Lanes`]).
    Outstanding,
    /// A run's one item as `Outstanding`; a run of several queued for free workers to take
    /// (`ItemQueue` in installed.rs).
    Taken,
}

impl Placement {
    /// Items are taken where every worker can have a CPU of its own (`cpus`: those this process
    /// may use), placed by outstanding work where the workers outnumber the CPUs. Why: a worker
    /// takes its next items once it has passed the last ones on, which costs timely a round of
    /// scheduling and progress messages to every other worker; where the workers share CPUs,
    /// that woke parked workers over and over (16 workers on 2 cores: about twice the context
    /// switches and 15-35 % more CPU per item than placing), and "the worker that is free"
    /// means little when the kernel time-slices them all anyway.
    pub fn for_pool(balance: bool, workers: usize, cpus: usize) -> Placement {
        match (balance, workers <= cpus) {
            (false, _) => Placement::ByIndex,
            (true, true) => Placement::Taken,
            (true, false) => Placement::Outstanding,
        }
    }
}

/// Outstanding work per worker of one process, in samples.
#[derive(Debug)]
pub(crate) struct Lanes {
    outstanding: Vec<AtomicU64>,
}

impl Lanes {
    pub fn new(workers: usize) -> Lanes {
        Lanes { outstanding: (0..workers).map(|_| AtomicU64::new(0)).collect() }
    }

    /// The worker with the least work outstanding (the lowest index on ties: a lone run stays on
    /// worker 0, next to the input operator), which now holds `weight` more.
    pub fn assign(&self, weight: u64) -> u32 {
        let (lane, _) = self
            .outstanding
            .iter()
            .enumerate()
            .min_by_key(|(i, load)| (load.load(Ordering::Relaxed), *i))
            .expect("a pool has at least one worker");
        self.outstanding[lane].fetch_add(weight, Ordering::Relaxed);
        lane as u32
    }

    /// Gives back what an item held once it is settled.
    pub fn release(&self, lane: u32, weight: u64) {
        if let Some(load) = self.outstanding.get(lane as usize) {
            // Saturating: a release never underflows into a huge load that would starve a lane.
            let _ = load.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(weight)));
        }
    }

    /// Work outstanding per worker (for tests).
    #[cfg(test)]
    pub fn outstanding(&self) -> Vec<u64> {
        self.outstanding.iter().map(|l| l.load(Ordering::Relaxed)).collect()
    }
}

/// What an item weighs: its samples, so that a 10 s recording counts ten times a 1 s one; at
/// least 1, so that items without audio still spread.
pub(crate) fn weight(payload: Option<&Payload>) -> u64 {
    payload.and_then(Payload::audio).map(|a| a.samples.len() as u64).unwrap_or(0).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_takes_items_where_each_worker_can_have_a_cpu() {
        assert_eq!(Placement::for_pool(true, 2, 2), Placement::Taken);
        assert_eq!(Placement::for_pool(true, 16, 2), Placement::Outstanding);
        assert_eq!(Placement::for_pool(false, 2, 2), Placement::ByIndex);
        assert_eq!(Placement::for_pool(false, 16, 2), Placement::ByIndex);
    }

    #[test]
    fn items_go_to_the_worker_with_the_least_outstanding_work() {
        let lanes = Lanes::new(2);
        // Equal items alternate, starting on worker 0.
        assert_eq!((0..4).map(|_| lanes.assign(100)).collect::<Vec<_>>(), vec![0, 1, 0, 1]);
        // Worker 1 finishes both of its items while worker 0 still has its two: the next three go
        // to worker 1 until it holds as much as worker 0.
        lanes.release(1, 100);
        lanes.release(1, 100);
        assert_eq!((0..3).map(|_| lanes.assign(100)).collect::<Vec<_>>(), vec![1, 1, 0]);
        assert_eq!(lanes.outstanding(), vec![300, 200]);
    }

    #[test]
    fn a_long_item_counts_for_its_length() {
        let lanes = Lanes::new(2);
        assert_eq!(lanes.assign(1000), 0);
        assert_eq!((0..3).map(|_| lanes.assign(300)).collect::<Vec<_>>(), vec![1, 1, 1]);
        assert_eq!(lanes.assign(300), 1, "900 < 1000: still worker 1");
        assert_eq!(lanes.assign(300), 0);
    }

    #[test]
    fn releases_never_underflow() {
        let lanes = Lanes::new(2);
        lanes.release(0, 5);
        lanes.release(7, 5); // no such worker: ignored
        assert_eq!(lanes.outstanding(), vec![0, 0]);
    }
}
