//! The node runner: builds a graph's nodes from their factories and calls them, one call at a
//! time, through each node's circuit breaker and retry policy, catching panics and recording
//! per-node metrics. It knows nothing of timely, runs or sessions: the operators (dataflow.rs)
//! and the session executor (sessions.rs) decide what is called with what, and where the result
//! goes.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::data::Payload;
use crate::error::{Error, NodeError, NodeErrorKind};
use crate::graph::Graph;
use crate::metrics::WorkerStats;
use crate::nodes::{Factory, Inputs, Node, NodeConfig, Registry};
use crate::runtime::breaker::{Admission, Breaker};
use crate::runtime::panic::catch_node_panic;
use crate::runtime::retry::{Clock, Jitter, RetrySettings};

/// The factory of every node of one graph, by node index: looked up by type name when the graph
/// is installed, so the graph itself stays symbolic. A node id may be given its own factory (a
/// Python node instance, a test double) in place of its type's.
#[derive(Clone)]
pub struct Factories {
    by_node: Vec<Factory>,
    /// Some node is built by a factory given with [`set`](Self::set) (a Python node, a test
    /// double) instead of its type's.
    replaced: bool,
}

impl Factories {
    /// Each node's factory from `registry`; fails naming the first node whose type it lacks.
    pub fn resolve(graph: &Graph, registry: &Registry) -> Result<Factories, Error> {
        let by_node = graph
            .nodes
            .iter()
            .map(|n| {
                registry.get(&n.node_type.name).map(|t| Arc::clone(&t.factory)).ok_or_else(|| {
                    Error::Engine(format!(
                        "node '{}' has type '{}', which the registry given to install does not have",
                        n.id, n.node_type.name
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Factories { by_node, replaced: false })
    }

    /// Builds node `node` with `factory` instead of its type's.
    pub fn set(&mut self, node: usize, factory: Factory) {
        self.by_node[node] = factory;
        self.replaced = true;
    }
}

/// What every runner of one installed graph shares: the graph, each node's factory, retry
/// settings and circuit breaker (one per node, shared by its instances on every worker), the
/// clock and whether metrics are recorded.
pub struct NodeTable {
    pub graph: Arc<Graph>,
    factories: Vec<Factory>,
    pub retry: Vec<RetrySettings>,
    pub breakers: Vec<Arc<Breaker>>,
    /// Time for retry delays and breaker cooldowns (a fake one in tests).
    pub clock: Arc<dyn Clock>,
    pub metrics: bool,
    /// Some node's factory was given in place of its type's (see [`Factories::set`]): such a
    /// node may need more than the calling thread offers (a Python node takes the GIL), so whole
    /// runs of this graph stay on the workers (see `Pipeline::run_here`).
    pub replaced: bool,
    /// Seeds each runner's jitter, so that pipelines, nodes and workers draw differently.
    seed: u64,
}

impl NodeTable {
    pub fn new(graph: Graph, factories: Factories, clock: Arc<dyn Clock>, seed: u64) -> NodeTable {
        let retry = graph.nodes.iter().map(|n| RetrySettings::for_node(&graph.config, n)).collect();
        let breakers = graph.nodes.iter().map(|n| Arc::new(Breaker::for_node(&graph.config, n))).collect();
        let metrics = graph.config.enable_metrics;
        NodeTable { graph: Arc::new(graph), factories: factories.by_node, replaced: factories.replaced, retry, breakers, clock, metrics, seed }
    }

    /// A new instance of node `n` for `worker`: a factory's error or panic becomes the node's
    /// `initialize` error.
    pub fn build(&self, n: usize, worker: usize) -> Result<Box<dyn Node>, NodeError> {
        let gn = &self.graph.nodes[n];
        catch_node_panic(|| (self.factories[n])(&NodeConfig { id: &gn.id, params: &gn.params, worker })).map_err(|mut e| {
            e.operation = "initialize".into();
            e.at_node(&gn.id, &gn.node_type.name)
        })
    }
}

/// Which of a node's methods a call uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// A whole item: `Node::process`.
    Process,
    /// A streaming session's chunk: `Node::push`.
    Push,
    /// A streaming session's end: `Node::finish`.
    Finish,
}

/// A call that failed transiently and may be made again at `due` (on the table's clock).
pub struct Retry {
    pub due: Duration,
    /// Retries made so far, this one included.
    pub retries: u32,
    pub inputs: Option<Inputs>,
}

/// What became of one call.
pub enum Outcome {
    /// The node's output (none: a session's end with nothing left to flush).
    Done(Option<Payload>),
    /// The call failed for good; the error names the node and counts the retries made.
    Failed(NodeError),
    /// Call again at `due` with the inputs kept here.
    Retry(Retry),
}

/// Runs one node of a graph on one worker.
pub struct NodeRunner {
    table: Arc<NodeTable>,
    n: usize,
    worker: usize,
    /// The worker's own instance, built on first use (a runner serving only sessions' own
    /// instances of a stateful node never builds one).
    node: Option<Result<Box<dyn Node>, NodeError>>,
    /// This worker's own records (no lock: only this thread touches them).
    stats: Rc<RefCell<WorkerStats>>,
    retry: RetrySettings,
    breaker: Arc<Breaker>,
    jitter: Jitter,
}

impl NodeRunner {
    /// A runner for node `n` on `worker`; its instance is built when first needed.
    pub fn new(table: Arc<NodeTable>, n: usize, worker: usize, stats: Rc<RefCell<WorkerStats>>) -> NodeRunner {
        let retry = table.retry[n];
        let breaker = Arc::clone(&table.breakers[n]);
        let seed = (table.seed << 32) ^ ((n as u64) << 16) ^ worker as u64 ^ 0x5EED;
        NodeRunner { table, n, worker, node: None, stats, retry, breaker, jitter: Jitter::new(seed) }
    }

    /// Builds the worker's instance now; its error, if any (the pipeline then fails to install).
    pub fn build_now(&mut self) -> Option<&NodeError> {
        self.instance().err()
    }

    fn instance(&mut self) -> Result<&mut Box<dyn Node>, &NodeError> {
        let (table, n, worker) = (&self.table, self.n, self.worker);
        self.node.get_or_insert_with(|| table.build(n, worker)).as_mut().map_err(|e| &*e)
    }

    /// A new instance of this node, for one streaming session.
    pub fn session_instance(&self) -> Result<Box<dyn Node>, NodeError> {
        self.table.build(self.n, self.worker)
    }

    /// Whether the node may be retried (its inputs must then be kept until it succeeds).
    pub fn retries(&self) -> bool {
        self.retry.enabled()
    }

    pub fn stateful(&self) -> bool {
        self.table.graph.nodes[self.n].node_type.stateful
    }

    /// The error of a call whose retry can no longer be made (the pipeline was closed meanwhile).
    pub fn given_up(&self, retries: u32) -> NodeError {
        let mut e = NodeError::permanent("the pipeline was closed while a retry was waiting");
        e.retries = retries;
        self.named(e)
    }

    fn named(&self, e: NodeError) -> NodeError {
        let gn = &self.table.graph.nodes[self.n];
        e.at_node(&gn.id, &gn.node_type.name)
    }

    /// One call, after `retries` earlier failed calls of it: on `session`'s own instance when
    /// given (a stateful node in a streaming session), else on the worker's. `inputs` is `None`
    /// only for a session's end whose upstream nodes had nothing left.
    pub fn call(&mut self, call: Call, inputs: Option<Inputs>, retries: u32, session: Option<&mut Box<dyn Node>>) -> Outcome {
        // The table's clock is borrowed where needed, not cloned up front: the clone's two atomic
        // counts were ~10 ns of each node call of a run.
        if self.breaker.admit_at(|| self.table.clock.now()) == Admission::Rejected {
            let snapshot = self.breaker.snapshot();
            let wait = self.breaker.remaining_cooldown(self.table.clock.now());
            let mut e = NodeError::circuit_open(format!(
                "the circuit breaker is open after {} consecutive failures; the node is not called for another {} ms",
                snapshot.consecutive_failures,
                wait.as_millis()
            ));
            e.retries = retries;
            e.causes = self.breaker.last_failure().into_iter().collect();
            return Outcome::Failed(self.named(e));
        }
        // A retry needs the inputs again: keep a copy only when one may follow.
        let backup = if self.retry.allows(retries) { Some(inputs.clone()) } else { None };
        let started = if self.table.metrics { Some(Instant::now()) } else { None };
        let node = match session {
            Some(node) => Ok(node),
            None => self.instance().map_err(Clone::clone),
        };
        let result = match node {
            Err(e) => return Outcome::Failed(e),
            Ok(node) => match (call, inputs) {
                (Call::Process, Some(inputs)) => catch_node_panic(|| node.process(inputs)).map(Some),
                (Call::Push, Some(inputs)) => catch_node_panic(|| node.push(inputs)).map(Some),
                (Call::Finish, inputs) => catch_node_panic(|| node.finish(inputs)),
                (_, None) => Ok(None),
            },
        };
        if let Some(t) = started {
            let samples = match &result {
                Ok(Some(p)) => p.audio().map(|a| a.samples.len() as u64).unwrap_or(0),
                _ => 0,
            };
            self.stats.borrow_mut().nodes[self.n].record(t.elapsed(), result.is_ok(), samples);
        }
        match result {
            Ok(p) => {
                self.breaker.on_success();
                Outcome::Done(p)
            }
            Err(mut e) => {
                let now = self.table.clock.now();
                // Unusable input is the caller's fault, not a sign of an unhealthy node.
                let opened = if e.kind == NodeErrorKind::InvalidInput {
                    self.breaker.on_neutral();
                    false
                } else {
                    self.breaker.on_failure(now, &e.message)
                };
                if let (true, false, Some(inputs)) = (e.is_transient(), opened, backup) {
                    let next = retries + 1;
                    self.breaker.count_retry();
                    let delay = self.retry.delay(next, self.jitter.unit());
                    return Outcome::Retry(Retry { due: now + delay, retries: next, inputs });
                }
                e.retries = retries;
                Outcome::Failed(self.named(e))
            }
        }
    }
}

/// The part of `payload` an edge from node `from` takes (`key`; all of it when `None`), for
/// node `to`. A missing part is the producing node's failure (its output lacks what the manifest
/// promised), so the error names that node.
pub fn select_output(graph: &Graph, payload: Payload, key: Option<&str>, from: Option<usize>, to: usize) -> Result<Payload, NodeError> {
    let Some(key) = key else { return Ok(payload) };
    payload.output(key).ok_or_else(|| {
        let consumer = &graph.nodes[to];
        let producer = from.map(|f| &graph.nodes[f]).unwrap_or(consumer);
        let keys = match &payload {
            Payload::Map(m) => format!("its output has the keys {:?}", m.keys().collect::<Vec<_>>()),
            other => format!("its output is {}", other.kind()),
        };
        NodeError::permanent(format!("no output named '{key}' for the edge to '{}'; {keys}", consumer.id))
            .at_node(&producer.id, &producer.node_type.name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::AudioBuffer;
    use crate::nodes::NodeType;
    use crate::runtime::retry::FakeClock;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Fails its first `fails` calls transiently, then doubles its input; panics on a 3.0 sample.
    struct Flaky {
        fails: Arc<AtomicU32>,
        sum: f32,
    }

    impl Node for Flaky {
        fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
            if self.fails.load(Ordering::SeqCst) > 0 {
                self.fails.fetch_sub(1, Ordering::SeqCst);
                return Err(NodeError::transient("not yet"));
            }
            let a = crate::nodes::expect_audio(inputs.one()?)?;
            let v = a.as_f32().unwrap_or(&[]).to_vec();
            assert!(v.first() != Some(&3.0), "three is not allowed");
            Ok(Payload::Audio(AudioBuffer::mono_f32(v.iter().map(|x| x * 2.0).collect(), a.sample_rate)))
        }

        fn push(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
            let a = crate::nodes::expect_audio(inputs.one()?)?;
            self.sum += a.as_f32().unwrap_or(&[]).iter().sum::<f32>();
            Ok(Payload::Audio(AudioBuffer::mono_f32(vec![self.sum], a.sample_rate)))
        }
    }

    fn table(fails: Arc<AtomicU32>, config: &str, clock: Arc<dyn Clock>) -> Arc<NodeTable> {
        let mut registry = Registry::empty();
        registry.register(NodeType {
            stateful: true,
            ..NodeType::new("FlakyNode", "test", move |_| Ok(Box::new(Flaky { fails: Arc::clone(&fails), sum: 0.0 })))
        });
        let text = format!(r#"{{"version":"1.0","nodes":[{{"id":"f","type":"FlakyNode","reliability":{config}}}]}}"#);
        let graph = crate::manifest::load_str(&text, &registry).expect("valid");
        let factories = Factories::resolve(&graph, &registry).expect("resolved");
        Arc::new(NodeTable::new(graph, factories, clock, 1))
    }

    fn audio(v: f32) -> Option<Inputs> {
        Some(Inputs::single(Payload::Audio(AudioBuffer::mono_f32(vec![v], 16_000))))
    }

    fn stats() -> Rc<RefCell<WorkerStats>> {
        Rc::new(RefCell::new(WorkerStats::new(1)))
    }

    #[test]
    fn a_transient_failure_is_handed_back_for_a_retry_with_its_inputs_and_due_time() {
        let clock = FakeClock::manual();
        let fails = Arc::new(AtomicU32::new(1));
        let t = table(Arc::clone(&fails), r#"{"retry_policy":"fixed","max_retries":2,"retry_base_delay_ms":40}"#, clock.clone());
        let mut r = NodeRunner::new(t, 0, 0, stats());
        let retry = match r.call(Call::Process, audio(1.5), 0, None) {
            Outcome::Retry(retry) => retry,
            _ => panic!("expected a retry"),
        };
        assert_eq!((retry.due, retry.retries), (Duration::from_millis(40), 1));
        match r.call(Call::Process, retry.inputs, retry.retries, None) {
            Outcome::Done(Some(Payload::Audio(a))) => assert_eq!(a.as_f32(), Some(&[3.0f32][..])),
            _ => panic!("the retry succeeds"),
        }
    }

    #[test]
    fn failures_name_the_node_and_panics_are_caught() {
        let t = table(Arc::new(AtomicU32::new(0)), "{}", FakeClock::manual());
        let s = stats();
        let mut r = NodeRunner::new(t, 0, 0, Rc::clone(&s));
        match r.call(Call::Process, audio(3.0), 0, None) {
            Outcome::Failed(e) => {
                assert_eq!((e.kind, e.node_id.as_str(), e.node_type.as_str()), (NodeErrorKind::Panic, "f", "FlakyNode"));
                assert!(e.message.contains("three is not allowed"), "{}", e.message);
            }
            _ => panic!("expected the panic as an error"),
        }
        // Still usable; metrics off: nothing recorded.
        assert!(matches!(r.call(Call::Process, audio(1.0), 0, None), Outcome::Done(Some(_))));
        assert_eq!(s.borrow().nodes[0].executions, 0);
    }

    #[test]
    fn a_session_instance_carries_its_own_state() {
        let t = table(Arc::new(AtomicU32::new(0)), "{}", FakeClock::manual());
        let mut r = NodeRunner::new(t, 0, 0, stats());
        assert!(r.stateful());
        let (mut a, mut b) = (r.session_instance().expect("built"), r.session_instance().expect("built"));
        let sum = |o: Outcome| match o {
            Outcome::Done(Some(Payload::Audio(x))) => x.as_f32().expect("f32")[0],
            _ => panic!("expected audio"),
        };
        assert_eq!(sum(r.call(Call::Push, audio(1.0), 0, Some(&mut a))), 1.0);
        assert_eq!(sum(r.call(Call::Push, audio(5.0), 0, Some(&mut b))), 5.0);
        assert_eq!(sum(r.call(Call::Push, audio(2.0), 0, Some(&mut a))), 3.0);
        // The end with nothing from upstream flushes nothing (the default `finish`).
        assert!(matches!(r.call(Call::Finish, None, 0, Some(&mut a)), Outcome::Done(None)));
        assert_eq!(r.given_up(2).to_string(), "node 'f' (FlakyNode) failed in process: the pipeline was closed while a retry was waiting (after 2 retries)");
    }

    #[test]
    fn unknown_types_are_named_when_factories_are_resolved() {
        let graph = crate::manifest::load_str(
            r#"{"version":"1.0","nodes":[{"id":"g","type":"GainNode"}]}"#,
            &Registry::builtin(),
        )
        .expect("valid");
        let e = Factories::resolve(&graph, &Registry::empty()).err().expect("GainNode is missing");
        assert_eq!(e.to_string(), "engine error: node 'g' has type 'GainNode', which the registry given to install does not have");
    }
}
