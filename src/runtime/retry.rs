//! Retry policies (how long to wait before the n-th retry of a failed node execution) and the
//! clock the engine reads time from, with a real and a fake implementation so that tests check
//! delays against the policy without sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::graph::GraphNode;
use crate::manifest::{PipelineConfig, RetryPolicy};

/// One node's effective retry settings: the pipeline's `config`, overridden by the node's own
/// `reliability` entry. Stateful (streaming) nodes are not retried unless their own entry asks for
/// it, since a half-done call may already have advanced their state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetrySettings {
    pub policy: RetryPolicy,
    /// Retries after the first attempt (so at most `max_retries + 1` calls per item).
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Draw each delay uniformly from `0..=delay` instead of waiting exactly `delay`.
    pub jitter: bool,
}

impl RetrySettings {
    /// Settings that never retry.
    pub const NONE: RetrySettings = RetrySettings {
        policy: RetryPolicy::None,
        max_retries: 0,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        jitter: false,
    };

    /// The settings a node runs with.
    pub fn for_node(config: &PipelineConfig, node: &GraphNode) -> RetrySettings {
        let own = node.reliability.as_ref();
        let policy = match own.and_then(|r| r.retry_policy) {
            Some(p) => p,
            None if node.node_type.stateful => RetryPolicy::None,
            None => config.retry_policy,
        };
        let ms = Duration::from_millis;
        RetrySettings {
            policy,
            max_retries: own.and_then(|r| r.max_retries).unwrap_or(config.max_retries),
            base_delay: ms(own.and_then(|r| r.retry_base_delay_ms).unwrap_or(config.retry_base_delay_ms)),
            max_delay: ms(own.and_then(|r| r.retry_max_delay_ms).unwrap_or(config.retry_max_delay_ms)),
            jitter: own.and_then(|r| r.retry_jitter).unwrap_or(config.retry_jitter),
        }
    }

    /// Whether a failure after `retries` retries may be retried once more.
    pub fn allows(&self, retries: u32) -> bool {
        self.policy != RetryPolicy::None && retries < self.max_retries
    }

    /// Whether this node retries at all (its inputs must then be kept until it succeeds).
    pub fn enabled(&self) -> bool {
        self.policy != RetryPolicy::None && self.max_retries > 0
    }

    /// The wait before retry number `retry` (1 for the first retry), never above `max_delay`.
    /// `fixed` waits `base_delay` each time; `exponential` waits `base_delay * 2^(retry-1)`
    /// (100, 200, 400 ms for a 100 ms base). With jitter, `unit` (in `0.0..=1.0`, from the
    /// caller's random source) scales the delay; without jitter it is ignored.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let nominal = match self.policy {
            RetryPolicy::None => return Duration::ZERO,
            RetryPolicy::Fixed => self.base_delay,
            RetryPolicy::Exponential => {
                // Doubling past 2^40 only matters as "more than the cap": saturate instead of overflowing.
                let factor = 1u64 << retry.saturating_sub(1).min(40);
                let base_ns = self.base_delay.as_nanos().min(u128::from(u64::MAX)) as u64;
                Duration::from_nanos(base_ns.saturating_mul(factor))
            }
        };
        let capped = nominal.min(self.max_delay);
        if self.jitter {
            capped.mul_f64(unit.clamp(0.0, 1.0))
        } else {
            capped
        }
    }
}

/// Where the engine reads the time from: retry due times and circuit-breaker cooldowns.
pub trait Clock: Send + Sync {
    /// Time elapsed since the clock started.
    fn now(&self) -> Duration;
    /// How long to wait, in real time, before looking again for work due at `due`. A real clock
    /// answers `due - now`; a virtual clock may move its own time to `due` and answer zero.
    fn wait_until(&self, due: Duration) -> Duration;
}

/// The system's monotonic clock.
#[derive(Debug)]
pub struct RealClock {
    start: Instant,
}

impl RealClock {
    pub fn new() -> RealClock {
        RealClock { start: Instant::now() }
    }
}

impl Default for RealClock {
    fn default() -> Self {
        RealClock::new()
    }
}

impl Clock for RealClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn wait_until(&self, due: Duration) -> Duration {
        due.saturating_sub(self.now())
    }
}

/// A clock for tests: time moves only when told to.
///
/// - [`FakeClock::virtual_time`]: when the engine waits for something due, time jumps straight
///   to it (a discrete-event simulation), so retries run at once but at exactly the policy's
///   delays in the clock's time; every jump is recorded.
/// - [`FakeClock::manual`]: time moves only through [`FakeClock::advance`]; the engine looks
///   again every millisecond of real time, so a test decides exactly when a retry becomes due.
#[derive(Debug)]
pub struct FakeClock {
    now_ns: AtomicU64,
    jumps: bool,
    waits: Mutex<Vec<Duration>>,
}

impl FakeClock {
    pub fn virtual_time() -> Arc<FakeClock> {
        Arc::new(FakeClock { now_ns: AtomicU64::new(0), jumps: true, waits: Mutex::new(Vec::new()) })
    }

    pub fn manual() -> Arc<FakeClock> {
        Arc::new(FakeClock { now_ns: AtomicU64::new(0), jumps: false, waits: Mutex::new(Vec::new()) })
    }

    /// Moves time forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.now_ns.fetch_add(d.as_nanos().min(u128::from(u64::MAX)) as u64, Ordering::SeqCst);
    }

    /// The jumps a virtual clock made for the engine, in order.
    pub fn waits(&self) -> Vec<Duration> {
        self.waits.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.now_ns.load(Ordering::SeqCst))
    }

    fn wait_until(&self, due: Duration) -> Duration {
        if !self.jumps {
            return Duration::from_millis(1);
        }
        let due_ns = due.as_nanos().min(u128::from(u64::MAX)) as u64;
        let before = self.now_ns.fetch_max(due_ns, Ordering::SeqCst);
        if due_ns > before {
            self.waits.lock().unwrap_or_else(|e| e.into_inner()).push(Duration::from_nanos(due_ns - before));
        }
        Duration::ZERO
    }
}

/// A small random source for jitter (splitmix64): no dependency, and reproducible from a seed.
#[derive(Clone, Debug)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    pub fn new(seed: u64) -> Jitter {
        Jitter { state: seed }
    }

    /// A uniform value in `0.0..1.0`.
    pub fn unit(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}
