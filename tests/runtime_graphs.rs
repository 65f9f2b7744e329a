//! Graph shapes through the timely runtime: linear, fan-out, diamond, multi-input; the same
//! outputs on 1 and 2 workers; node failures and panics reported per run on a pool that stays usable.

use std::collections::BTreeMap;
use std::sync::Arc;

use remotemedia::data::{AudioBuffer, Payload};
use remotemedia::nodes::{expect_audio, InputPorts, Inputs, Node, NodeType, Registry};
use remotemedia::runtime::RealClock;
use remotemedia::{manifest, Error, NodeError, NodeErrorKind, RunInput, WorkerPool};

fn audio(samples: Vec<f32>) -> Payload {
    Payload::Audio(AudioBuffer::mono_f32(samples, 16000))
}

fn samples(p: &Payload) -> Vec<f32> {
    p.audio().and_then(|a| a.as_f32()).expect("f32 audio").to_vec()
}

fn db(gain_db: f64) -> f32 {
    10f64.powf(gain_db / 20.0) as f32
}

/// Test-only nodes: one that panics on a marker value, one that fails on another.
fn test_registry() -> Registry {
    struct Trap;
    impl Node for Trap {
        fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
            let a = expect_audio(inputs.one()?)?;
            match a.as_f32().and_then(|s| s.first()).copied() {
                Some(x) if x == 666.0 => panic!("trap sprung at sample {x}"),
                Some(x) if x == 13.0 => Err(NodeError::permanent("unlucky input")),
                _ => Ok(Payload::Audio(a)),
            }
        }
    }
    /// Concatenates its named ports `first` then `second`.
    struct Concat;
    impl Node for Concat {
        fn process(&mut self, mut inputs: Inputs) -> Result<Payload, NodeError> {
            let a = expect_audio(inputs.take("first").ok_or_else(|| NodeError::invalid_input("no first"))?)?;
            let b = expect_audio(inputs.take("second").ok_or_else(|| NodeError::invalid_input("no second"))?)?;
            let mut v = a.as_f32().unwrap_or_default().to_vec();
            v.extend_from_slice(b.as_f32().unwrap_or_default());
            Ok(audio(v))
        }
    }
    let mut r = Registry::builtin();
    r.register(NodeType::new("TrapNode", "panics on 666, fails on 13", |_| Ok(Box::new(Trap))));
    r.register(NodeType {
        inputs: InputPorts::Named(vec!["first".into(), "second".into()]),
        ..NodeType::new("ConcatNode", "concatenates first and second", |_| Ok(Box::new(Concat)))
    });
    r
}

fn install(manifest_json: &str, workers: usize) -> remotemedia::Pipeline {
    let registry = test_registry();
    let graph = manifest::load_str(manifest_json, &registry).expect("valid manifest");
    WorkerPool::shared(workers).expect("pool").install_with(graph, &registry, Arc::new(RealClock::new())).expect("install")
}

const LINEAR: &str = r#"{"version":"1.0","nodes":[
  {"id":"a","type":"GainNode","params":{"gain_db":6}},
  {"id":"b","type":"GainNode","params":{"gain_db":-20}},
  {"id":"c","type":"PassthroughNode"}],
  "edges":[{"from":"a","to":"b"},{"from":"b","to":"c"}]}"#;

#[test]
fn linear_chain_applies_each_node_in_order() {
    let p = install(LINEAR, 1);
    let out = p.run(audio(vec![1.0, -0.5, 0.25])).expect("run");
    assert_eq!(out.outputs.len(), 1);
    let got = samples(out.get("c").expect("sink c"));
    let want: Vec<f32> = [1.0f32, -0.5, 0.25].iter().map(|x| x * db(6.0) * db(-20.0)).collect();
    assert_eq!(got, want);
}

const FANOUT: &str = r#"{"version":"1.0","nodes":[
  {"id":"src","type":"PassthroughNode"},
  {"id":"loud","type":"GainNode","params":{"gain_db":20}},
  {"id":"quiet","type":"GainNode","params":{"gain_db":-20}}],
  "edges":[{"from":"src","to":"loud"},{"from":"src","to":"quiet"}]}"#;

#[test]
fn fan_out_gives_every_branch_the_same_input() {
    let p = install(FANOUT, 1);
    let out = p.run(audio(vec![0.5, 0.25])).expect("run");
    let ids: Vec<&str> = out.outputs.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["loud", "quiet"], "outputs keyed by sink id, manifest order");
    assert_eq!(samples(out.get("loud").unwrap()), vec![0.5 * db(20.0), 0.25 * db(20.0)]);
    assert_eq!(samples(out.get("quiet").unwrap()), vec![0.5 * db(-20.0), 0.25 * db(-20.0)]);
}

const DIAMOND: &str = r#"{"version":"1.0","nodes":[
  {"id":"top","type":"PassthroughNode"},
  {"id":"left","type":"GainNode","params":{"gain_db":0}},
  {"id":"right","type":"GainNode","params":{"gain_db":-6.020599913279624}},
  {"id":"bottom","type":"MixNode"}],
  "edges":[{"from":"top","to":"left"},{"from":"top","to":"right"},
           {"from":"left","to":"bottom"},{"from":"right","to":"bottom"}]}"#;

#[test]
fn diamond_joins_both_branches_of_the_same_run() {
    for workers in [1, 2] {
        let p = install(DIAMOND, workers);
        for k in 0..20 {
            let x = k as f32 / 10.0;
            let out = p.run(audio(vec![x, 2.0 * x])).expect("run");
            let got = samples(out.get("bottom").unwrap());
            // left + right = x + x/2
            let want = [x + x * db(-6.020599913279624), 2.0 * x + 2.0 * x * db(-6.020599913279624)];
            assert_eq!(got, want, "workers={workers}, run {k}");
        }
    }
}

#[test]
fn named_ports_receive_the_inputs_of_the_same_epoch() {
    let m = r#"{"version":"1.0","nodes":[
      {"id":"x","type":"PassthroughNode"},{"id":"y","type":"GainNode","params":{"gain_db":20}},
      {"id":"cat","type":"ConcatNode"}],
      "edges":[{"from":"y","to":"cat","input_key":"second"},{"from":"x","to":"cat","input_key":"first"}]}"#;
    let p = install(m, 2);
    for k in 0..10 {
        let mut named = BTreeMap::new();
        named.insert("x".to_string(), audio(vec![k as f32]));
        named.insert("y".to_string(), audio(vec![1.0, 2.0]));
        let out = p.run(RunInput::Named(named)).expect("run");
        assert_eq!(samples(out.get("cat").unwrap()), vec![k as f32, db(20.0), 2.0 * db(20.0)]);
    }
}

#[test]
fn named_inputs_must_match_the_source_nodes() {
    let p = install(FANOUT, 1);
    let mut named = BTreeMap::new();
    named.insert("nope".to_string(), audio(vec![1.0]));
    match p.run(RunInput::Named(named)) {
        Err(Error::Input(msg)) => assert!(msg.contains("'src'"), "{msg}"),
        other => panic!("expected an input error, got {other:?}"),
    }
    assert!(p.run(audio(vec![1.0])).is_ok(), "the next good run works");
}

#[test]
fn one_and_two_workers_give_identical_outputs() {
    let inputs: Vec<RunInput> = (0..64).map(|i| RunInput::All(audio((0..32).map(|j| ((i * j) as f32).sin()).collect()))).collect();
    let mut results = Vec::new();
    for workers in [1, 2] {
        let p = install(DIAMOND, workers);
        let batch = p.run_batch(inputs.clone()).expect("batch");
        let outs: Vec<_> = batch.into_iter().map(|r| r.expect("item ok")).collect();
        let single: Vec<_> = inputs.iter().take(4).map(|i| p.run(i.clone()).expect("run")).collect();
        assert_eq!(&outs[..4], &single[..], "batch items equal single runs");
        results.push(outs);
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn a_panicking_node_fails_its_run_and_the_pool_stays_usable() {
    let m = r#"{"version":"1.0","nodes":[{"id":"pre","type":"PassthroughNode"},{"id":"trap","type":"TrapNode"}],
                "edges":[{"from":"pre","to":"trap"}]}"#;
    for workers in [1, 2] {
        let p = install(m, workers);
        let err = p.run(audio(vec![666.0])).expect_err("the node panics");
        match err {
            Error::Node(e) => {
                assert_eq!(e.kind, NodeErrorKind::Panic);
                assert_eq!(e.node_id, "trap");
                assert_eq!(e.node_type, "TrapNode");
                assert!(e.message.contains("trap sprung at sample 666"), "{}", e.message);
                assert!(e.to_string().contains("node 'trap' (TrapNode) panicked"), "{e}");
            }
            other => panic!("expected a node error, got {other:?}"),
        }
        let ok = p.run(audio(vec![1.0, 2.0])).expect("next run succeeds");
        assert_eq!(samples(ok.get("trap").unwrap()), vec![1.0, 2.0]);
        // A failing item in a batch leaves the others intact.
        let batch = p
            .run_batch(vec![audio(vec![1.0]).into(), audio(vec![13.0]).into(), audio(vec![666.0]).into(), audio(vec![3.0]).into()])
            .expect("batch");
        assert!(batch[0].is_ok() && batch[3].is_ok());
        assert_eq!(batch[1].as_ref().unwrap_err().message, "unlucky input");
        assert_eq!(batch[1].as_ref().unwrap_err().item, Some(1));
        assert_eq!(batch[2].as_ref().unwrap_err().kind, NodeErrorKind::Panic);
    }
}

#[test]
fn a_failed_branch_does_not_block_the_join() {
    // One branch fails; the multi-input node never fires for that run, and the run still ends.
    let m = r#"{"version":"1.0","nodes":[{"id":"a","type":"PassthroughNode"},{"id":"t","type":"TrapNode"},
      {"id":"g","type":"GainNode"},{"id":"mix","type":"MixNode"}],
      "edges":[{"from":"a","to":"t"},{"from":"a","to":"g"},{"from":"t","to":"mix"},{"from":"g","to":"mix"}]}"#;
    let p = install(m, 2);
    let err = p.run(audio(vec![13.0])).expect_err("trap fails");
    assert!(err.to_string().contains("node 't' (TrapNode) failed"), "{err}");
    assert_eq!(samples(p.run(audio(vec![1.0])).unwrap().get("mix").unwrap()), vec![2.0]);
}

#[test]
fn pipelines_share_a_pool_and_can_be_dropped() {
    let pool = WorkerPool::new(2).expect("pool");
    let g = manifest::load_str(LINEAR, &test_registry()).unwrap();
    for _ in 0..20 {
        let p = pool.install(g.clone()).expect("install");
        assert!(p.run(audio(vec![1.0])).is_ok());
    }
    let p1 = Arc::new(pool.install(g.clone()).unwrap());
    let p2 = Arc::new(pool.install(manifest::load_str(FANOUT, &test_registry()).unwrap()).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (p1, p2) = (Arc::clone(&p1), Arc::clone(&p2));
            std::thread::spawn(move || {
                for k in 0..200 {
                    let x = (t * 1000 + k) as f32;
                    let a = p1.run(audio(vec![x])).unwrap();
                    assert_eq!(samples(a.get("c").unwrap()), vec![x * db(6.0) * db(-20.0)]);
                    let b = p2.run(audio(vec![x])).unwrap();
                    assert_eq!(samples(b.get("loud").unwrap()), vec![x * db(20.0)]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
}

#[test]
fn a_node_that_cannot_be_built_fails_the_install() {
    let mut r = test_registry();
    r.register(NodeType::new("Broken", "never builds", |_| Err(NodeError::permanent("no model file"))));
    let g = manifest::load_str(r#"{"version":"1.0","nodes":[{"id":"b","type":"Broken"}]}"#, &r).unwrap();
    let pool = WorkerPool::shared(1).unwrap();
    match pool.install_with(g, &r, Arc::new(RealClock::new())) {
        Err(Error::Node(e)) => {
            assert_eq!(e.node_id, "b");
            assert_eq!(e.operation, "initialize");
        }
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("install should fail"),
    }
    assert!(install(LINEAR, 1).run(audio(vec![1.0])).is_ok());
}
