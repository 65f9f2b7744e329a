//! The manifest's `outputs`: a run returns exactly the declared nodes' outputs, in their order,
//! including nodes with downstream nodes; sinks left out still run (their errors still fail the
//! item) but return nothing; without the section the sinks are the outputs, as before. The same on
//! 1 and 2 workers, in streaming sessions, in the canonical manifest, in a batch spread over two
//! processes, and in every problem's words.

use remotemedia::data::{AudioBuffer, Payload};
use remotemedia::manifest;
use remotemedia::nodes::Registry;
use remotemedia::{RunInput, WorkerPool};

mod common;
use common::{cli, s, temp_dir};

/// to_f32 -> gain -> (quiet, loud): `gain` has downstream nodes, `quiet` and `loud` are sinks.
fn manifest_with(outputs: &str) -> String {
    format!(
        r#"
version: "1.0"
nodes:
  - {{id: gain, type: GainNode, params: {{gain_db: -6.0}}}}
  - {{id: quiet, type: GainNode, params: {{gain_db: -20.0}}}}
  - {{id: loud, type: GainNode, params: {{gain_db: 20.0}}}}
edges:
  - {{from: gain, to: quiet}}
  - {{from: gain, to: loud}}
{outputs}
"#
    )
}

fn input() -> RunInput {
    RunInput::All(Payload::Audio(AudioBuffer::mono_f32(vec![0.5, -0.25, 0.125], 16000)))
}

fn ids(o: &remotemedia::RunOutput) -> Vec<&str> {
    o.outputs.iter().map(|(id, _)| id.as_str()).collect()
}

#[test]
fn a_run_returns_the_declared_outputs_in_their_order_on_one_and_two_workers() {
    for workers in [1, 2] {
        let mut graph = manifest::load_str(&manifest_with("outputs: [loud, gain]"), &Registry::builtin()).unwrap();
        graph.config.workers = workers;
        let pipeline = WorkerPool::shared(workers).unwrap().install(graph).unwrap();
        for _ in 0..3 {
            let out = pipeline.run(input()).expect("run");
            assert_eq!(ids(&out), ["loud", "gain"], "{workers} workers");
            let Some(Payload::Audio(g)) = out.get("gain") else { panic!("gain is audio") };
            assert_eq!(g.as_f32().unwrap()[0], 0.5 * 10f32.powf(-6.0 / 20.0));
        }
        let batch = pipeline.run_batch((0..5).map(|_| input()).collect()).unwrap();
        assert!(batch.iter().all(|r| r.as_ref().map(|o| ids(o) == ["loud", "gain"]).unwrap_or(false)));
        // A session's pushes return the declared outputs too (its close: what nodes still held,
        // nothing for gains).
        let mut session = pipeline.session();
        assert_eq!(ids(&session.push(input()).unwrap()), ["loud", "gain"]);
        assert!(ids(&session.close().unwrap()).is_empty());
    }
}

#[test]
fn without_the_section_the_sinks_are_the_outputs() {
    let graph = manifest::load_str(&manifest_with(""), &Registry::builtin()).unwrap();
    assert_eq!(graph.declared_outputs, None);
    let pipeline = WorkerPool::shared(1).unwrap().install(graph).unwrap();
    assert_eq!(ids(&pipeline.run(input()).unwrap()), ["quiet", "loud"]);
}

#[test]
fn a_sink_left_out_still_runs_and_its_error_fails_the_item() {
    // `bad` refuses i16 audio; it is not an output, but the run must not pretend all went well.
    let text = r#"
version: "1.0"
nodes:
  - {id: src, type: PassthroughNode}
  - {id: to_f32, type: FormatConverterNode, params: {target_format: f32}}
  - {id: bad, type: GainNode}
edges:
  - {from: src, to: to_f32}
  - {from: src, to: bad}
outputs: [to_f32]
"#;
    let pipeline = WorkerPool::shared(1).unwrap().install(manifest::load_str(text, &Registry::builtin()).unwrap()).unwrap();
    let i16_input = RunInput::All(Payload::Audio(
        AudioBuffer::new(remotemedia::Samples::I16(vec![1, 2].into()), 8000, 1).unwrap(),
    ));
    let e = pipeline.run(i16_input).unwrap_err().to_string();
    assert!(e.contains("node 'bad' (GainNode)"), "{e}");
    assert_eq!(ids(&pipeline.run(input()).unwrap()), ["to_f32"]);
}

#[test]
fn the_canonical_manifest_keeps_the_section() {
    let reg = Registry::builtin();
    let graph = manifest::load_str(&manifest_with("outputs: [loud, gain]"), &reg).unwrap();
    let tree = manifest::to_manifest(&graph);
    assert_eq!(tree["outputs"], serde_json::json!(["loud", "gain"]));
    assert_eq!(manifest::validate(&tree, &reg).unwrap(), graph);
    let plain = manifest::load_str(&manifest_with(""), &reg).unwrap();
    assert!(manifest::to_manifest(&plain).get("outputs").is_none());
    assert!(graph.to_dot().contains("  n2 -> output;\n  n0 -> output;\n"), "{}", graph.to_dot());
}

#[test]
fn every_problem_of_the_section_has_its_path() {
    let reg = Registry::builtin();
    let problems = |outputs: &str| -> Vec<String> {
        match manifest::load_str(&manifest_with(outputs), &reg) {
            Err(remotemedia::Error::Manifest(m)) => m.problems.iter().map(|p| p.to_string()).collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    };
    assert_eq!(problems("outputs: gain"), [
        "outputs: expected a list of node ids (the nodes whose outputs a run returns), found the string \"gain\""
    ]);
    assert_eq!(problems("outputs: []"), [
        "outputs: expected a list of at least one node id (or no outputs section: the sinks are the outputs), found an empty list"
    ]);
    assert_eq!(problems("outputs: [gian, 3, loud, loud]"), [
        "outputs[0]: expected the id of a node (did you mean \"gain\"?), found \"gian\", which is no node's id",
        "outputs[1]: expected the id of a node (a string), found 3",
        "outputs[3]: expected each node listed once, found \"loud\", already outputs[2]",
    ]);
}

/// A non-sink VAD output and clips, in a batch spread over two processes: the clips and the VAD
/// results cross to process 0 (serde) and the files and the JSONL manifest are those of one process.
#[test]
fn declared_outputs_and_clips_cross_processes() {
    use remotemedia::audio_io::write_wav;

    let dir = temp_dir("clips-cluster");
    let manifest = dir.join("clips.yaml");
    std::fs::write(
        &manifest,
        "version: \"1.0\"\nnodes:\n  - {id: to_f32, type: FormatConverterNode, params: {target_format: f32}}\n  \
         - {id: vad, type: VADNode}\n  - {id: clips, type: SegmentNode, params: {pad_ms: 50}}\n\
         edges:\n  - {from: to_f32, to: vad}\n  - {from: vad, to: clips}\noutputs: [vad, clips]\n",
    )
    .unwrap();
    let inputs = dir.join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    for k in 0..6usize {
        // Tone bursts at item-dependent places: 0.4 s from 0.3 + 0.1k s, 0.5 s from 1.8 s (pauses of
        // 0.6 s or more: longer than VADNode's bridge, so every item has two segments).
        let v: Vec<i16> = (0..40_000)
            .map(|i| {
                let t = i as f64 / 16_000.0;
                let on = (0.3 + 0.1 * k as f64..0.7 + 0.1 * k as f64).contains(&t) || (1.8..2.3).contains(&t);
                if on { (8000.0 * (2.0 * std::f64::consts::PI * 300.0 * t).sin()) as i16 } else { 0 }
            })
            .collect();
        let a = AudioBuffer::new(remotemedia::Samples::I16(v.into()), 16_000, 1).unwrap();
        write_wav(inputs.join(format!("item_{k}.wav")), &a).unwrap();
    }
    let (one, two) = (dir.join("one"), dir.join("two"));
    let o = cli(&["batch", s(&manifest), s(&inputs), "--out", s(&one), "--no-progress"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = cli(&["spawn", "-n", "2", "--", "batch", s(&manifest), s(&inputs), "--out", s(&two), "--connect-timeout", "20"]);
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let manifest_one = std::fs::read_to_string(one.join("clips/metadata.jsonl")).unwrap();
    assert_eq!(manifest_one.lines().count(), 12, "two clips per item:\n{manifest_one}");
    assert_eq!(std::fs::read_to_string(two.join("clips/metadata.jsonl")).unwrap(), manifest_one);
    for k in 0..6 {
        for f in [format!("item_{k}.vad.json"), format!("clips/item_{k}.0001.wav"), format!("clips/item_{k}.0002.wav")] {
            assert_eq!(std::fs::read(one.join(&f)).unwrap(), std::fs::read(two.join(&f)).unwrap(), "{f}");
        }
    }
}
