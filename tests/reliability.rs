//! Retries, circuit breakers and error context: delays checked against the policy on a fake
//! clock (no sleeping), transient vs permanent failures, the breaker's open -> fail fast ->
//! half-open -> closed cycle, and a retry's wait leaving the worker free for other pipelines.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use remotemedia::data::{AudioBuffer, Payload};
use remotemedia::manifest::{self, RetryPolicy};
use remotemedia::nodes::{Inputs, Node, NodeType, Registry};
use remotemedia::runtime::breaker::{Admission, Breaker, BreakerState};
use remotemedia::runtime::{Clock, FakeClock, RetrySettings};
use remotemedia::{Error, NodeError, NodeErrorKind, WorkerPool};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn audio() -> Payload {
    Payload::Audio(AudioBuffer::mono_f32(vec![0.25, -0.5], 16000))
}

fn settings(policy: RetryPolicy, base: u64, max: u64, jitter: bool) -> RetrySettings {
    RetrySettings { policy, max_retries: 10, base_delay: ms(base), max_delay: ms(max), jitter }
}

// ---------------------------------------------------------------------------------------------
// The policy on its own

#[test]
fn exponential_delays_double_from_the_base_up_to_the_cap() {
    let s = settings(RetryPolicy::Exponential, 100, 10_000, false);
    let got: Vec<Duration> = (1..=5).map(|r| s.delay(r, 0.3)).collect();
    assert_eq!(got, vec![ms(100), ms(200), ms(400), ms(800), ms(1600)]);
    let capped = settings(RetryPolicy::Exponential, 100, 300, false);
    assert_eq!((1..=4).map(|r| capped.delay(r, 0.0)).collect::<Vec<_>>(), vec![ms(100), ms(200), ms(300), ms(300)]);
    // Far-out retries saturate at the cap instead of overflowing.
    assert_eq!(capped.delay(u32::MAX, 0.0), ms(300));
}

#[test]
fn fixed_delays_repeat_the_base_and_none_never_waits() {
    let s = settings(RetryPolicy::Fixed, 250, 10_000, false);
    assert!((1..=6).all(|r| s.delay(r, 0.9) == ms(250)));
    let none = settings(RetryPolicy::None, 250, 10_000, false);
    assert_eq!(none.delay(1, 1.0), Duration::ZERO);
    assert!(!none.allows(0));
}

#[test]
fn jitter_scales_the_delay_by_the_random_unit() {
    let s = settings(RetryPolicy::Exponential, 100, 10_000, true);
    assert_eq!(s.delay(3, 0.5), ms(200));
    assert_eq!(s.delay(3, 0.0), Duration::ZERO);
    assert_eq!(s.delay(3, 1.0), ms(400));
    // Out-of-range units are clamped, never a panic.
    assert_eq!(s.delay(3, 7.0), ms(400));
    assert_eq!(s.delay(3, f64::NAN.max(-1.0)), Duration::ZERO);
}

#[test]
fn max_retries_bounds_the_retries() {
    let s = RetrySettings { max_retries: 3, ..settings(RetryPolicy::Fixed, 1, 1, false) };
    assert!(s.allows(0) && s.allows(2));
    assert!(!s.allows(3));
}

// ---------------------------------------------------------------------------------------------
// The breaker on its own

#[test]
fn breaker_opens_fails_fast_goes_half_open_and_closes() {
    let clock = FakeClock::manual();
    let b = Breaker::new(5, ms(1000));
    for _ in 0..4 {
        assert_eq!(b.admit(clock.now()), Admission::Allowed);
        assert!(!b.on_failure(clock.now(), "boom"));
    }
    assert_eq!(b.state(), BreakerState::Closed);
    assert!(b.on_failure(clock.now(), "boom 5"), "the fifth consecutive failure opens the circuit");
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.admit(clock.now()), Admission::Rejected);
    clock.advance(ms(999));
    assert_eq!(b.admit(clock.now()), Admission::Rejected);
    clock.advance(ms(1));
    assert_eq!(b.admit(clock.now()), Admission::Allowed, "after the cooldown one trial goes through");
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert_eq!(b.admit(clock.now()), Admission::Rejected, "only one trial at a time");
    b.on_success();
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.admit(clock.now()), Admission::Allowed);
    let snap = b.snapshot();
    assert_eq!((snap.opens, snap.rejections, snap.consecutive_failures), (1, 3, 0));
    assert_eq!(b.last_failure().as_deref(), Some("boom 5"));
}

#[test]
fn a_failed_trial_opens_the_circuit_again() {
    let clock = FakeClock::manual();
    let b = Breaker::new(2, ms(50));
    b.on_failure(clock.now(), "a");
    b.on_failure(clock.now(), "b");
    clock.advance(ms(50));
    assert_eq!(b.admit(clock.now()), Admission::Allowed);
    assert!(b.on_failure(clock.now(), "trial failed"));
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.admit(clock.now()), Admission::Rejected, "a new cooldown starts");
    assert_eq!(b.snapshot().opens, 2);
}

#[test]
fn a_success_resets_the_streak_and_threshold_zero_never_opens() {
    let b = Breaker::new(3, ms(10));
    b.on_failure(Duration::ZERO, "x");
    b.on_failure(Duration::ZERO, "x");
    b.on_success();
    b.on_failure(Duration::ZERO, "x");
    b.on_failure(Duration::ZERO, "x");
    assert_eq!(b.state(), BreakerState::Closed, "failures must be consecutive");
    let off = Breaker::new(0, ms(10));
    for _ in 0..100 {
        off.on_failure(Duration::ZERO, "x");
    }
    assert_eq!(off.state(), BreakerState::Closed);
}

// ---------------------------------------------------------------------------------------------
// Through the engine

/// A node that fails `fails` times (transiently or not, as `transient` says) and then passes its
/// input through, recording the clock's time at every call and counting calls.
struct Flaky {
    fails: Arc<AtomicU32>,
    transient: bool,
    calls: Arc<Mutex<Vec<Duration>>>,
    clock: Arc<dyn Clock>,
    called: crossbeam_channel::Sender<()>,
}

impl Node for Flaky {
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        self.calls.lock().unwrap().push(self.clock.now());
        let _ = self.called.try_send(());
        let left = self.fails.load(Ordering::SeqCst);
        if left > 0 {
            self.fails.store(left - 1, Ordering::SeqCst);
            return Err(if self.transient {
                NodeError::transient(format!("timed out ({left} failures left)"))
            } else {
                NodeError::permanent("bad model file")
            });
        }
        inputs.one()
    }
}

struct Harness {
    fails: Arc<AtomicU32>,
    calls: Arc<Mutex<Vec<Duration>>>,
    called: crossbeam_channel::Receiver<()>,
    registry: Registry,
}

fn harness(fails: u32, transient: bool, clock: Arc<dyn Clock>, stateful: bool) -> Harness {
    let fails = Arc::new(AtomicU32::new(fails));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut registry = Registry::builtin();
    let (f, c) = (Arc::clone(&fails), Arc::clone(&calls));
    registry.register(NodeType {
        stateful,
        ..NodeType::new("FlakyNode", "fails a few times, then passes its input on", move |_| {
            Ok(Box::new(Flaky {
                fails: Arc::clone(&f),
                transient,
                calls: Arc::clone(&c),
                clock: Arc::clone(&clock),
                called: tx.clone(),
            }))
        })
    });
    Harness { fails, calls, called: rx, registry }
}

fn manifest_with(config: &str, reliability: &str) -> String {
    let rel = if reliability.is_empty() { String::new() } else { format!(r#","reliability":{reliability}"#) };
    format!(
        r#"{{"version":"1.0","nodes":[{{"id":"flaky","type":"FlakyNode"{rel}}},{{"id":"out","type":"PassthroughNode"}}],
        "edges":[{{"from":"flaky","to":"out"}}],"config":{config}}}"#
    )
}

fn install(h: &Harness, text: &str, clock: Arc<dyn Clock>, pool: &Arc<WorkerPool>) -> remotemedia::Pipeline {
    let graph = manifest::load_str(text, &h.registry).expect("valid manifest");
    pool.install_with(graph, &h.registry, clock).expect("install")
}

fn node_error(r: Result<remotemedia::RunOutput, Error>) -> NodeError {
    match r {
        Err(Error::Node(e)) => e,
        other => panic!("expected a node error, got {other:?}"),
    }
}

#[test]
fn transient_failures_are_retried_at_the_policy_delays() {
    let clock = FakeClock::virtual_time();
    let h = harness(3, true, clock.clone(), false);
    let text = manifest_with(r#"{"retry_policy":"exponential","max_retries":3,"enable_metrics":true}"#, "");
    let p = install(&h, &text, clock.clone(), &WorkerPool::shared(1).unwrap());
    let out = p.run(audio()).expect("the fourth call succeeds");
    assert!(out.get("out").is_some());
    let calls = h.calls.lock().unwrap().clone();
    assert_eq!(calls, vec![ms(0), ms(100), ms(300), ms(700)], "calls at 0, +100, +200, +400 ms");
    assert_eq!(clock.waits(), vec![ms(100), ms(200), ms(400)]);
    let m = p.metrics_json().unwrap();
    let node = &m["node_metrics"][0];
    assert_eq!(node["retry_count"], 3);
    assert_eq!(node["error_count"], 3);
    assert_eq!(node["success_count"], 1);
    assert_eq!(node["circuit_state"], "closed");
    let prom = remotemedia::metrics_prometheus::to_prometheus(&m);
    assert!(prom.contains("# TYPE remotemedia_node_retries_total counter"), "{prom}");
    assert!(prom.lines().any(|l| l.starts_with("remotemedia_node_retries_total{") && l.contains("node_id=\"flaky\"") && l.ends_with(" 3")), "{prom}");
    assert!(prom.lines().any(|l| l.starts_with("remotemedia_node_circuit_state{") && l.contains("node_id=\"flaky\"") && l.ends_with(" 0")), "{prom}");
}

#[test]
fn retries_give_up_after_max_retries_with_full_context() {
    let clock = FakeClock::virtual_time();
    let h = harness(u32::MAX, true, clock.clone(), false);
    let text = manifest_with(r#"{"retry_policy":"fixed","max_retries":2,"retry_base_delay_ms":50,"circuit_breaker_threshold":0}"#, "");
    let p = install(&h, &text, clock.clone(), &WorkerPool::shared(1).unwrap());
    // A first run that succeeds is impossible here; run twice to see the run number advance.
    let first = node_error(p.run(audio()));
    let second = node_error(p.run(audio()));
    assert_eq!(first.kind, NodeErrorKind::Transient);
    assert_eq!(first.retries, 2);
    assert_eq!((first.node_id.as_str(), first.node_type.as_str(), first.operation.as_str()), ("flaky", "FlakyNode", "process"));
    assert_eq!((first.run, second.run), (Some(0), Some(1)));
    assert_eq!(first.item, None, "a single run has no item index");
    assert!(first.to_string().contains("(after 2 retries)"), "{first}");
    assert!(first.to_string().starts_with("node 'flaky' (FlakyNode) failed in process (run 0): timed out"), "{first}");
    assert_eq!(h.calls.lock().unwrap().len(), 6, "three calls per run");
    assert_eq!(clock.waits(), vec![ms(50); 4]);
}

#[test]
fn permanent_failures_are_not_retried() {
    let clock = FakeClock::virtual_time();
    let h = harness(1, false, clock.clone(), false);
    let text = manifest_with(r#"{"retry_policy":"exponential","max_retries":5}"#, "");
    let p = install(&h, &text, clock.clone(), &WorkerPool::shared(1).unwrap());
    let e = node_error(p.run(audio()));
    assert_eq!(e.kind, NodeErrorKind::Permanent);
    assert_eq!(e.retries, 0);
    assert_eq!(h.calls.lock().unwrap().len(), 1);
    assert!(clock.waits().is_empty());
    // The node is not broken for good: the next run succeeds.
    assert!(p.run(audio()).is_ok());
}

#[test]
fn stateful_nodes_ignore_the_pipeline_policy_but_not_their_own() {
    let clock = FakeClock::virtual_time();
    let h = harness(1, true, clock.clone(), true);
    let pool = WorkerPool::shared(1).unwrap();
    let p = install(&h, &manifest_with(r#"{"retry_policy":"fixed","retry_base_delay_ms":5}"#, ""), clock.clone(), &pool);
    assert_eq!(p.graph().nodes[0].node_type.stateful, true);
    let e = node_error(p.run(audio()));
    assert_eq!((e.kind, e.retries), (NodeErrorKind::Transient, 0), "no retry for a stateful node by default");
    h.fails.store(1, Ordering::SeqCst);
    let own = install(&h, &manifest_with("{}", r#"{"retry_policy":"fixed","retry_base_delay_ms":5,"max_retries":1}"#), clock.clone(), &pool);
    assert!(own.run(audio()).is_ok(), "the node's own policy retries it");
    assert_eq!(clock.waits(), vec![ms(5)]);
}

#[test]
fn node_settings_override_the_pipeline_config() {
    let h = harness(0, true, FakeClock::manual(), false);
    let text = manifest_with(
        r#"{"retry_policy":"fixed","max_retries":1,"retry_base_delay_ms":10,"circuit_breaker_threshold":5}"#,
        r#"{"retry_policy":"exponential","max_retries":4,"retry_jitter":true,"circuit_breaker_threshold":2}"#,
    );
    let g = manifest::load_str(&text, &h.registry).unwrap();
    let s = RetrySettings::for_node(&g.config, &g.nodes[0]);
    assert_eq!((s.policy, s.max_retries, s.base_delay, s.jitter), (RetryPolicy::Exponential, 4, ms(10), true));
    let other = RetrySettings::for_node(&g.config, &g.nodes[1]);
    assert_eq!((other.policy, other.max_retries), (RetryPolicy::Fixed, 1));
    // The node entry survives the canonical manifest round trip.
    let again = manifest::validate(&manifest::to_manifest(&g), &h.registry).unwrap();
    assert_eq!(again, g);
}

#[test]
fn the_breaker_fails_fast_then_lets_one_trial_through_after_the_cooldown() {
    let clock = FakeClock::manual();
    let h = harness(u32::MAX, false, clock.clone(), false);
    let text = manifest_with(r#"{"circuit_breaker_threshold":3,"circuit_breaker_cooldown_ms":1000}"#, "");
    let p = install(&h, &text, clock.clone(), &WorkerPool::shared(1).unwrap());
    for _ in 0..3 {
        assert_eq!(node_error(p.run(audio())).kind, NodeErrorKind::Permanent);
    }
    let fast = node_error(p.run(audio()));
    assert_eq!(fast.kind, NodeErrorKind::CircuitOpen);
    assert_eq!(fast.node_id, "flaky");
    assert_eq!(fast.causes, vec!["bad model file".to_string()]);
    assert!(fast.to_string().contains("failed fast (circuit open)"), "{fast}");
    assert_eq!(h.calls.lock().unwrap().len(), 3, "an open circuit does not call the node");
    let m = p.metrics_json().unwrap();
    assert_eq!(m["node_metrics"][0]["circuit_state"], "open");
    assert_eq!(m["node_metrics"][0]["circuit_rejections"], 1);
    assert_eq!(m["node_metrics"][0]["circuit_opens"], 1);

    clock.advance(ms(1000));
    h.fails.store(0, Ordering::SeqCst);
    assert!(p.run(audio()).is_ok(), "the half-open trial succeeds");
    assert_eq!(p.breaker("flaky").unwrap().state(), BreakerState::Closed);
    assert_eq!(h.calls.lock().unwrap().len(), 4);
    assert!(p.run(audio()).is_ok());
}

#[test]
fn a_retry_wait_does_not_stall_other_pipelines_on_the_same_worker() {
    let pool = WorkerPool::new(1).unwrap();
    let clock = FakeClock::manual();
    let h = harness(1, true, clock.clone(), false);
    // A minute's wait on a clock that only moves when the test says so.
    let a = install(&h, &manifest_with(r#"{"retry_policy":"fixed","retry_base_delay_ms":60000,"retry_max_delay_ms":60000}"#, ""), clock.clone(), &pool);
    let other = harness(0, true, clock.clone(), false);
    let b = pool.install_with(manifest::load_str(&manifest_with("{}", ""), &other.registry).unwrap(), &other.registry, clock.clone()).unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1);
    a.submit(vec![audio().into()], Box::new(move |r| {
        let _ = tx.send(r);
    }))
    .unwrap();
    h.called.recv_timeout(Duration::from_secs(30)).expect("A's node was called");
    // A now waits for its retry; B runs on the same single worker, to completion, several times.
    for _ in 0..3 {
        assert!(b.run(audio()).is_ok());
    }
    assert!(rx.try_recv().is_err(), "A must still be waiting for its retry");
    assert_eq!(h.calls.lock().unwrap().len(), 1);
    clock.advance(ms(60_000));
    let results = rx.recv_timeout(Duration::from_secs(30)).expect("A completes once the delay has passed").unwrap();
    assert!(results[0].is_ok());
    assert_eq!(h.calls.lock().unwrap().len(), 2);
}

#[test]
fn closing_a_pipeline_fails_items_waiting_for_a_retry() {
    let pool = WorkerPool::new(1).unwrap();
    let clock = FakeClock::manual();
    let h = harness(1, true, clock.clone(), false);
    let a = install(&h, &manifest_with(r#"{"retry_policy":"fixed","retry_base_delay_ms":60000,"retry_max_delay_ms":60000}"#, ""), clock.clone(), &pool);
    let (tx, rx) = crossbeam_channel::bounded(1);
    a.submit(vec![audio().into()], Box::new(move |r| {
        let _ = tx.send(r);
    }))
    .unwrap();
    h.called.recv_timeout(Duration::from_secs(30)).unwrap();
    drop(a);
    let results = rx.recv_timeout(Duration::from_secs(30)).expect("the waiting item is failed on close").unwrap();
    let e = results[0].as_ref().unwrap_err();
    assert_eq!(e.retries, 1);
    assert!(e.message.contains("closed while a retry was waiting"), "{e}");
}

#[test]
fn node_reliability_entries_are_validated() {
    let h = harness(0, true, FakeClock::manual(), false);
    let bad = manifest_with(
        r#"{"retry_base_delay_ms":500}"#,
        r#"{"retry_polcy":"fixed","max_retries":101,"retry_jitter":"yes","retry_max_delay_ms":200}"#,
    );
    let err = manifest::load_str(&bad, &h.registry).unwrap_err();
    let Error::Manifest(m) = err else { panic!("expected a manifest error") };
    let lines: Vec<String> = m.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        lines,
        vec![
            "nodes[0].reliability.retry_polcy: expected one of the fields of a node's reliability settings: retry_policy, max_retries, retry_base_delay_ms, retry_max_delay_ms, retry_jitter, circuit_breaker_threshold, circuit_breaker_cooldown_ms (did you mean \"retry_policy\"?), found the unknown field \"retry_polcy\"",
            "nodes[0].reliability.max_retries: expected an integer from 0 to 100, found 101",
            "nodes[0].reliability.retry_jitter: expected true or false, found the string \"yes\"",
            "nodes[0].reliability.retry_max_delay_ms: expected at least retry_base_delay_ms (500), found 200",
        ]
    );
    let not_object = manifest_with("{}", "5");
    let Error::Manifest(m) = manifest::load_str(&not_object, &h.registry).unwrap_err() else { panic!() };
    assert_eq!(m.problems[0].to_string(), "nodes[0].reliability: expected an object of retry and circuit-breaker settings, found 5");
}

#[test]
fn only_the_transient_kind_is_retryable() {
    // Only the Transient kind is retried; invalid input and panics fail at once like permanent errors.
    assert!(NodeError::transient("t").is_transient());
    for e in [NodeError::permanent("p"), NodeError::invalid_input("i"), NodeError::panic("x"), NodeError::circuit_open("c")] {
        assert!(!e.is_transient(), "{e:?}");
    }
}

#[test]
fn rejected_input_does_not_count_towards_the_breaker() {
    // GainNode rejects a text payload; a hundred of those leave its circuit closed.
    let text = r#"{"version":"1.0","nodes":[{"id":"g","type":"GainNode","params":{"gain_db":0}}],
        "config":{"circuit_breaker_threshold":2}}"#;
    let p = WorkerPool::shared(1).unwrap().install(manifest::load_str(text, &Registry::builtin()).unwrap()).unwrap();
    for _ in 0..5 {
        let e = node_error(p.run(Payload::Json(serde_json::json!("not audio"))));
        assert_eq!(e.kind, NodeErrorKind::InvalidInput);
    }
    assert_eq!(p.breaker("g").unwrap().state(), BreakerState::Closed);
    assert!(p.run(audio()).is_ok());
}
