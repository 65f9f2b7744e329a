//! Pins each worker of a multi-worker pool to a CPU of its own.
//!
//! Why: a batch starts with the workers parked. The caller wakes worker 0, which hands worker 1
//! its share and wakes it; at that moment the caller is still running on the other CPU, so Linux
//! often queues worker 1 on worker 0's CPU. The idle CPU does not pull either back for
//! milliseconds (recently run threads count as cache-hot), and the two workers then run one
//! after the other. Measured with a per-worker timeline of node calls on a 2-core VM (64 items
//! of 1 s, 2 workers): in about half the batches one worker began only when the other was done
//! (first call at 2.8-3.7 ms instead of 0.1 ms), and the 2-worker pool ran 1.06-1.33x the
//! 1-worker one while plain threads on the same items ran 1.57-1.91x. Pinned: every batch's
//! workers started within 0.4 ms of each other and the pool ran at that thread ceiling.
//!
//! A pool is pinned when it has at least two workers and no more workers than the CPUs this
//! process may use; each new pool (and, in a process group, each process) starts at the next CPU,
//! so that pools and local processes spread out. `REMOTEMEDIA_PIN_WORKERS=0` turns pinning off,
//! `=1` pins single-worker pools too. Where pinning fails or is unsupported, workers run unpinned.

use std::sync::atomic::{AtomicUsize, Ordering};

pub use crate::tuning::PinSetting;

/// Whether a pool of `workers` workers is pinned, given `cpus` usable CPUs: pinned threads
/// sharing a CPU could not move off it, so a pool with more workers than CPUs never is.
fn pins(setting: PinSetting, workers: usize, cpus: usize) -> bool {
    let wanted = match setting {
        PinSetting::Off => false,
        PinSetting::Auto => workers >= 2,
        PinSetting::Always => workers >= 1,
    };
    wanted && workers <= cpus
}

/// The CPU for each of `workers` workers, starting at position `start` of `allowed` and wrapping,
/// or `None` when the pool is not to be pinned.
pub fn plan(allowed: &[usize], workers: usize, start: usize, setting: PinSetting) -> Option<Vec<usize>> {
    if !pins(setting, workers, allowed.len()) {
        return None;
    }
    Some((0..workers).map(|i| allowed[(start + i) % allowed.len()]).collect())
}

/// The CPUs for a new pool of `workers` workers, process `process` of its group (0 alone).
/// Successive pinned pools in a process start where the previous one ended.
pub fn for_new_pool(workers: usize, process: usize, setting: PinSetting) -> Option<Vec<usize>> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let allowed = allowed_cpus();
    if !pins(setting, workers, allowed.len()) {
        return None;
    }
    let start = NEXT.fetch_add(workers, Ordering::Relaxed) + process * workers;
    plan(&allowed, workers, start, setting)
}

/// The CPUs the calling thread may run on, in ascending order (empty where that cannot be read).
/// On a thread that was never pinned: the process's CPUs (its cpuset or `taskset` mask).
pub fn allowed_cpus() -> Vec<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity writes at most its size.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                return Vec::new();
            }
            (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        Vec::new()
    }
}

/// Pins the calling thread to `cpu`; `false` where that failed or is unsupported.
pub fn pin_current_thread(cpu: usize) -> bool {
    #[cfg(target_os = "linux")]
    {
        if cpu >= libc::CPU_SETSIZE as usize {
            return false;
        }
        // SAFETY: the set is a valid cpu_set_t with one CPU; pid 0 is the calling thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpu;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_pins_pools_of_two_or_more_that_fit_the_cpus() {
        assert_eq!(plan(&[0, 1], 2, 0, PinSetting::Auto), Some(vec![0, 1]));
        assert_eq!(plan(&[0, 1, 2, 3], 3, 0, PinSetting::Auto), Some(vec![0, 1, 2]));
        assert_eq!(plan(&[0, 1], 1, 0, PinSetting::Auto), None, "one worker: nothing to spread");
        assert_eq!(plan(&[0, 1], 3, 0, PinSetting::Auto), None, "more workers than CPUs");
        assert_eq!(plan(&[], 2, 0, PinSetting::Auto), None, "affinity unknown");
    }

    #[test]
    fn settings_turn_pinning_off_or_on_for_single_workers() {
        assert_eq!(plan(&[0, 1], 2, 0, PinSetting::Off), None);
        assert_eq!(plan(&[0, 1], 1, 0, PinSetting::Always), Some(vec![0]));
        assert_eq!(plan(&[0, 1], 3, 0, PinSetting::Always), None);
    }

    #[test]
    fn later_pools_and_processes_start_at_the_next_cpu_of_the_allowed_set() {
        // Only CPUs 2, 5 and 7 allowed (a cpuset): positions wrap over that list, not over 0..n.
        assert_eq!(plan(&[2, 5, 7], 2, 0, PinSetting::Auto), Some(vec![2, 5]));
        assert_eq!(plan(&[2, 5, 7], 2, 2, PinSetting::Auto), Some(vec![7, 2]));
        assert_eq!(plan(&[2, 5, 7], 3, 4, PinSetting::Auto), Some(vec![5, 7, 2]));
    }
}
