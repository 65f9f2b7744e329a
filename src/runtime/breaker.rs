//! The per-node circuit breaker: after `threshold` consecutive failed calls it opens and items
//! fail fast without calling the node; after a cooldown one trial call goes through (half-open);
//! its success closes the circuit, its failure opens it again. One breaker is shared by every
//! worker's instance of a node, so its state is behind a mutex; a healthy node's calls only read
//! two atomics (no lock, no clock reading).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::graph::GraphNode;
use crate::manifest::PipelineConfig;

/// Where a circuit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail fast until the cooldown has passed.
    Open,
    /// The cooldown has passed: one trial call is (or may be) in flight.
    HalfOpen,
}

impl BreakerState {
    /// The name used in metrics.
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The number used for the Prometheus gauge: 0 closed, 1 open, 2 half-open.
    pub fn code(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

/// Whether a call may go ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Call the node.
    Allowed,
    /// Fail fast: the circuit is open (or its one trial call is already in flight).
    Rejected,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    consecutive_failures: u32,
    opened_at: Duration,
    trial_in_flight: bool,
    /// The failure that opened the circuit, handed on as the cause of fast failures.
    last_failure: Option<String>,
}

/// One node's circuit breaker plus the reliability counters shown in metrics.
#[derive(Debug)]
pub struct Breaker {
    /// 0 turns the breaker off (it never opens).
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
    /// Whether the circuit is not closed or a failure streak is running: while false, `admit`
    /// and `on_success` have nothing to change and skip the lock.
    unsettled: AtomicBool,
    opens: AtomicU64,
    rejections: AtomicU64,
    retries: AtomicU64,
}

/// What metrics show of a breaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerSnapshot {
    pub state: BreakerState,
    pub consecutive_failures: u32,
    /// Times the circuit opened (a failed half-open trial counts again).
    pub opens: u64,
    /// Calls refused while open.
    pub rejections: u64,
    /// Retries made of failed calls.
    pub retries: u64,
    pub threshold: u32,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            threshold,
            cooldown,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                consecutive_failures: 0,
                opened_at: Duration::ZERO,
                trial_in_flight: false,
                last_failure: None,
            }),
            unsettled: AtomicBool::new(false),
            opens: AtomicU64::new(0),
            rejections: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }

    /// The breaker a node runs with: the pipeline's settings, overridden by the node's own.
    pub fn for_node(config: &PipelineConfig, node: &GraphNode) -> Breaker {
        let own = node.reliability.as_ref();
        Breaker::new(
            own.and_then(|r| r.circuit_breaker_threshold).unwrap_or(config.circuit_breaker_threshold),
            Duration::from_millis(own.and_then(|r| r.circuit_breaker_cooldown_ms).unwrap_or(config.circuit_breaker_cooldown_ms)),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means a panic elsewhere; the counters are still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks whether a call may go ahead at time `now`. An open circuit whose cooldown has passed
    /// turns half-open and admits exactly one trial call until that call reports back.
    pub fn admit(&self, now: Duration) -> Admission {
        self.admit_at(|| now)
    }

    /// As [`admit`](Self::admit), reading the time only when the circuit is not closed.
    pub fn admit_at(&self, now: impl FnOnce() -> Duration) -> Admission {
        if !self.unsettled.load(Ordering::Acquire) {
            return Admission::Allowed;
        }
        let mut s = self.lock();
        let now = now();
        match s.state {
            BreakerState::Closed => Admission::Allowed,
            BreakerState::Open if now.saturating_sub(s.opened_at) >= self.cooldown => {
                s.state = BreakerState::HalfOpen;
                s.trial_in_flight = true;
                Admission::Allowed
            }
            BreakerState::HalfOpen if !s.trial_in_flight => {
                s.trial_in_flight = true;
                Admission::Allowed
            }
            _ => {
                drop(s);
                self.rejections.fetch_add(1, Ordering::Relaxed);
                Admission::Rejected
            }
        }
    }

    /// A call succeeded: the failure streak ends and a half-open circuit closes.
    pub fn on_success(&self) {
        if !self.unsettled.load(Ordering::Acquire) {
            return;
        }
        let mut s = self.lock();
        s.consecutive_failures = 0;
        s.state = BreakerState::Closed;
        s.trial_in_flight = false;
        self.unsettled.store(false, Ordering::Release);
    }

    /// A call failed at time `now`. Returns true if this failure opened the circuit.
    pub fn on_failure(&self, now: Duration, message: &str) -> bool {
        let mut s = self.lock();
        self.unsettled.store(true, Ordering::Release);
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        s.last_failure = Some(message.to_string());
        let open = match s.state {
            BreakerState::HalfOpen => true,
            BreakerState::Closed => self.threshold > 0 && s.consecutive_failures >= self.threshold,
            BreakerState::Open => false,
        };
        s.trial_in_flight = false;
        if open {
            s.state = BreakerState::Open;
            s.opened_at = now;
            self.opens.fetch_add(1, Ordering::Relaxed);
        }
        open
    }

    /// A call ended without saying anything about the node's health (it rejected unusable
    /// input): the streak is unchanged, and a half-open circuit lets its next call be the trial.
    pub fn on_neutral(&self) {
        self.lock().trial_in_flight = false;
    }

    /// Counts one retry (shown in metrics).
    pub fn count_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// How long until an open circuit lets a trial through, at time `now` (zero when not open).
    pub fn remaining_cooldown(&self, now: Duration) -> Duration {
        let s = self.lock();
        match s.state {
            BreakerState::Open => self.cooldown.saturating_sub(now.saturating_sub(s.opened_at)),
            _ => Duration::ZERO,
        }
    }

    /// The failure that last opened (or kept open) the circuit.
    pub fn last_failure(&self) -> Option<String> {
        self.lock().last_failure.clone()
    }

    pub fn state(&self) -> BreakerState {
        self.lock().state
    }

    pub fn snapshot(&self) -> BreakerSnapshot {
        let s = self.lock();
        BreakerSnapshot {
            state: s.state,
            consecutive_failures: s.consecutive_failures,
            opens: self.opens.load(Ordering::Relaxed),
            rejections: self.rejections.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            threshold: self.threshold,
        }
    }

    /// Zeroes the counters shown in metrics (`reset_stats`); the circuit's state is kept, since
    /// it describes the node, not the measurements.
    pub fn reset_counters(&self) {
        self.opens.store(0, Ordering::Relaxed);
        self.rejections.store(0, Ordering::Relaxed);
        self.retries.store(0, Ordering::Relaxed);
    }
}
