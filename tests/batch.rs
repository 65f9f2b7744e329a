//! Batches: `Pipeline::run_batch` (results in input order, the same for 1 and 2 workers, a failing
//! item reported while the others complete) and `remotemedia batch` end to end (outputs, the
//! per-item report listing every input, unreadable files as item errors, exit codes).

use std::path::Path;

use remotemedia::audio_io::{read_wav, write_wav};
use remotemedia::data::{AudioBuffer, Samples};
use remotemedia::{NodeErrorKind, Payload, RunInput, WorkerPool};
use serde_json::Value;

mod common;
use common::{cli, item_audio, long_batch, s, temp_dir, CONVERT_GAIN};

/// VAD straight on the input: a rate that is not a multiple of 100 Hz is refused by the VAD node.
const CONVERT_VAD: &str = r#"
version: "1.0"
nodes:
  - {id: to_f32, type: FormatConverterNode, params: {target_format: f32}}
  - {id: vad, type: VADNode, params: {frame_duration_ms: 30}}
edges:
  - {from: to_f32, to: vad}
"#;

fn graph(text: &str) -> remotemedia::Graph {
    let tree = remotemedia::manifest::parse_str(text).expect("parse");
    remotemedia::manifest::validate(&tree, &remotemedia::Registry::builtin()).expect("valid manifest")
}

fn gain_samples(p: &Payload) -> Vec<f32> {
    match p {
        Payload::Audio(a) => match &a.samples {
            Samples::F32(v) => v.to_vec(),
            other => panic!("expected f32 audio, found {}", other.format().name()),
        },
        other => panic!("expected audio, found {}", other.kind()),
    }
}

fn peak(v: &[f32]) -> f32 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

#[test]
fn batch_results_are_in_input_order_and_equal_for_one_and_two_workers() {
    let items: Vec<RunInput> = (0..24).map(|k| RunInput::All(Payload::Audio(item_audio(k, 16000)))).collect();
    let mut per_workers = Vec::new();
    for workers in [1, 2] {
        let pool = WorkerPool::new(workers).expect("pool");
        let pipeline = pool.install(graph(CONVERT_GAIN)).expect("install");
        let results = pipeline.run_batch(items.clone()).expect("batch runs");
        assert_eq!(results.len(), items.len());
        let outs: Vec<Vec<f32>> =
            results.iter().map(|r| gain_samples(r.as_ref().expect("item ok").get("gain").expect("gain output"))).collect();
        for (k, out) in outs.iter().enumerate() {
            // -6 dB of the item's int16 peak over 32768: the amplitude identifies the item.
            let expected = (1000.0 + 500.0 * k as f32) / 32768.0 * 10f32.powf(-6.0 / 20.0);
            assert!((peak(out) - expected).abs() < 1e-3 * expected + 1e-6, "item {k}: peak {} vs {expected}", peak(out));
        }
        per_workers.push(outs);
    }
    assert_eq!(per_workers[0], per_workers[1], "1 and 2 workers give identical results");
}

/// A pool of several workers puts each on a CPU of its own (unless told not to), so that a batch's
/// workers cannot end up queued on one CPU; a pool with more workers than CPUs stays unpinned.
#[test]
fn multi_worker_pools_pin_each_worker_to_its_own_allowed_cpu() {
    use remotemedia::runtime::affinity::{allowed_cpus, PinSetting};
    use remotemedia::tuning::Tuning;
    let allowed = allowed_cpus();
    let pool = WorkerPool::new(2).expect("pool");
    if allowed.len() < 2 || Tuning::from_env().expect("valid switches").pin == PinSetting::Off {
        assert_eq!(pool.pinned_cpus(), &[None, None], "nothing to spread over, or pinning turned off");
    } else {
        let cpus: Vec<usize> = pool.pinned_cpus().iter().map(|c| c.expect("every worker pinned")).collect();
        assert_ne!(cpus[0], cpus[1], "two workers, two CPUs");
        assert!(cpus.iter().all(|c| allowed.contains(c)), "{cpus:?} within the allowed {allowed:?}");
    }
    // Pinned or not, the pool runs a batch.
    let pipeline = pool.install(graph(CONVERT_GAIN)).expect("install");
    let results = pipeline.run_batch((0..4).map(|k| RunInput::All(Payload::Audio(item_audio(k, 16000)))).collect()).expect("batch");
    assert!(results.iter().all(|r| r.is_ok()));
    let crowded = WorkerPool::new(allowed.len().max(1) + 1).expect("pool");
    assert!(crowded.pinned_cpus().iter().all(Option::is_none), "more workers than CPUs: none pinned");
}

/// Answers with the index of the worker it runs on, as a one-sample buffer; an input whose first
/// sample is 1.0 holds it for 0.5 s first (a slow item, marked).
struct Where(usize);

impl remotemedia::Node for Where {
    fn process(&mut self, inputs: remotemedia::nodes::Inputs) -> Result<Payload, remotemedia::NodeError> {
        let a = remotemedia::nodes::expect_audio(inputs.one()?)?;
        if a.as_f32().and_then(|x| x.first()) == Some(&1.0) {
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        Ok(Payload::Audio(AudioBuffer::mono_f32(vec![self.0 as f32], 16000)))
    }
}

/// A one-node pipeline of [`Where`] (node id `where`) on `pool`.
fn where_pipeline(pool: &std::sync::Arc<WorkerPool>) -> remotemedia::Pipeline {
    let mut registry = remotemedia::Registry::builtin();
    registry.register(remotemedia::NodeType::new("WhereNode", "which worker ran the item", |c| Ok(Box::new(Where(c.worker)))));
    let text = "version: \"1.0\"\nnodes:\n  - {id: where, type: WhereNode}\n";
    let graph = remotemedia::manifest::validate(&remotemedia::manifest::parse_str(text).expect("parse"), &registry).expect("valid");
    pool.install_with(graph, &registry, std::sync::Arc::new(remotemedia::runtime::RealClock::new())).expect("install")
}

/// The worker each item of a batch on a [`where_pipeline`] ran on, in input order.
fn workers_that_ran(pipeline: &remotemedia::Pipeline, items: &[RunInput]) -> Vec<usize> {
    pipeline
        .run_batch(items.to_vec())
        .expect("batch")
        .iter()
        .map(|r| {
            let out = r.as_ref().expect("item ok").get("where").expect("output");
            out.audio().and_then(|a| a.as_f32()).expect("f32 audio")[0] as usize
        })
        .collect()
}

/// A batch's items are taken by whichever worker is free, not placed on workers when the batch
/// starts: with 2 workers, an item that holds its worker for half a second (the first, marked
/// by its first sample) leaves the other 20 to the other worker, but for the one its worker
/// took while its node ran the first (a worker's loader takes its next item while its nodes run
/// the one before). Placed in turn, or by the audio each worker holds, 10 of them would wait
/// behind it. (A pool with more workers than CPUs places items instead, see lanes.rs: on one
/// CPU the test checks that and stops.)
#[test]
fn batch_items_go_to_whichever_worker_is_free() {
    let pool = WorkerPool::new(2).expect("pool");
    let by_index = remotemedia::tuning::Tuning::from_env().is_ok_and(|t| !t.balance);
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    assert_eq!(pool.placement(), remotemedia::runtime::Placement::for_pool(!by_index, 2, cpus));
    if pool.placement() != remotemedia::runtime::Placement::Taken {
        eprintln!("batch_items_go_to_whichever_worker_is_free: {cpus} CPU(s), REMOTEMEDIA_BALANCE off: {by_index}; items are placed, not taken");
        return;
    }
    let pipeline = where_pipeline(&pool);
    // 1 s at 48 kHz each: heavy enough that a worker takes them one at a time.
    let item = |first: f32| {
        let mut x = vec![0.1f32; 48000];
        x[0] = first;
        RunInput::All(Payload::Audio(AudioBuffer::mono_f32(x, 48000)))
    };
    let items: Vec<RunInput> = std::iter::once(item(1.0)).chain((0..20).map(|_| item(0.1))).collect();
    for round in 0..3 {
        let ran_on = workers_that_ran(&pipeline, &items);
        let with_slow = ran_on[1..].iter().filter(|&&w| w == ran_on[0]).count();
        assert!(with_slow <= 1, "round {round}: {with_slow} items waited behind the slow one: {ran_on:?}");
    }
}

/// A pool with more workers than CPUs places items instead (taking them there woke parked
/// workers over and over; lanes.rs): on the worker with the least audio outstanding, not by
/// index. One 20 s item and twenty 1 s items put the long one on worker 0 and every short one
/// elsewhere, since no other worker reaches 20 s (placing by index would give worker 0 the long
/// item and a share of the short ones).
#[test]
fn a_crowded_pool_places_batch_items_by_the_audio_each_worker_has_outstanding() {
    use remotemedia::runtime::Placement;
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let pool = WorkerPool::new(cpus + 1).expect("pool");
    let by_index = remotemedia::tuning::Tuning::from_env().is_ok_and(|t| !t.balance);
    assert_eq!(pool.placement(), if by_index { Placement::ByIndex } else { Placement::Outstanding });
    let pipeline = where_pipeline(&pool);
    let second = |seconds: usize| RunInput::All(Payload::Audio(AudioBuffer::mono_f32(vec![0.1; 16000 * seconds], 16000)));
    let items: Vec<RunInput> = std::iter::once(second(20)).chain((0..20).map(|_| second(1))).collect();
    for round in 0..3 {
        let placed = workers_that_ran(&pipeline, &items);
        if by_index {
            // `REMOTEMEDIA_BALANCE=0`: item k on worker k % workers.
            assert_eq!(placed, (0..items.len()).map(|k| k % (cpus + 1)).collect::<Vec<_>>(), "round {round}");
            continue;
        }
        assert_eq!(placed[0], 0, "round {round}: the long item goes first, to worker 0");
        let short_on_0 = placed[1..].iter().filter(|&&w| w == 0).count();
        // The 20 short items fill the other workers, none of which reaches worker 0's 20 s; a
        // tie may send the last to 0.
        assert!(short_on_0 <= 1, "round {round}: {short_on_0} short items joined the long one: {placed:?}");
    }
}

#[test]
fn a_failing_item_is_reported_while_the_others_complete() {
    let pool = WorkerPool::new(2).expect("pool");
    let pipeline = pool.install(graph(CONVERT_VAD)).expect("install");
    let rates = [16000, 22050, 8000, 16000, 22050, 48000];
    let items: Vec<RunInput> = rates.iter().enumerate().map(|(k, &r)| RunInput::All(Payload::Audio(item_audio(k, r)))).collect();
    let results = pipeline.run_batch(items).expect("batch runs");
    assert_eq!(results.len(), rates.len());
    for (k, (r, rate)) in results.iter().zip(rates).enumerate() {
        if rate % 100 == 0 {
            let vad = r.as_ref().unwrap_or_else(|e| panic!("item {k} ({rate} Hz) failed: {e}"));
            match vad.get("vad") {
                Some(Payload::Vad(v)) => assert_eq!(v.frames.len(), 100 / 30, "item {k}: 0.1 s in 30 ms frames"),
                other => panic!("item {k}: expected a VAD result, found {other:?}"),
            }
        } else {
            let e = r.as_ref().expect_err("22050 Hz is refused by the VAD");
            assert_eq!(e.node_id, "vad");
            assert_eq!(e.kind, NodeErrorKind::InvalidInput);
            assert_eq!(e.item, Some(k as u64));
            assert!(e.message.contains("received 22050 Hz"), "{}", e.message);
        }
    }
}

fn write_inputs(dir: &Path, rates: &[u32]) -> Vec<String> {
    rates
        .iter()
        .enumerate()
        .map(|(k, &r)| {
            let name = format!("item_{k:02}.wav");
            write_wav(dir.join(&name), &item_audio(k, r)).expect("write input");
            name
        })
        .collect()
}

fn report(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report is JSON")
}

#[test]
fn cli_batch_writes_outputs_in_order_and_the_same_for_one_and_two_workers() {
    let dir = temp_dir("cli-equal");
    let manifest = dir.join("m.yaml");
    std::fs::write(&manifest, CONVERT_GAIN).expect("manifest");
    let inputs = dir.join("in");
    std::fs::create_dir_all(&inputs).expect("in dir");
    let names = write_inputs(&inputs, &[16000; 10]);
    std::fs::write(inputs.join("notes.txt"), "not an input").expect("other file");
    let mut outputs = Vec::new();
    for workers in ["1", "2"] {
        let out = dir.join(format!("out{workers}"));
        let o = cli(&["batch", s(&manifest), s(&inputs), "--out", s(&out), "--workers", workers]);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "stdout {stdout}\nstderr {}", String::from_utf8_lossy(&o.stderr));
        assert!(stdout.contains("batch: 10 items, 10 ok, 0 failed"), "{stdout}");
        let r = report(&out);
        let listed: Vec<&str> = r["results"].as_array().expect("results").iter().map(|x| x["input"].as_str().unwrap_or("")).collect();
        assert_eq!(listed, names.iter().map(String::as_str).collect::<Vec<_>>(), "every input, in sorted order");
        assert_eq!(r["ok"], 10);
        let audio: Vec<AudioBuffer> = names
            .iter()
            .map(|n| read_wav(out.join(n.replace(".wav", ".gain.wav"))).expect("output WAV written"))
            .collect();
        for (k, a) in audio.iter().enumerate() {
            let expected = (1000.0 + 500.0 * k as f32) / 32768.0 * 10f32.powf(-6.0 / 20.0);
            assert!((peak(&gain_samples(&Payload::Audio(a.clone()))) - expected).abs() < 1e-3 * expected);
        }
        outputs.push(audio);
    }
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn cli_batch_reports_bad_files_and_failing_items_and_completes_the_rest() {
    let dir = temp_dir("cli-fail");
    let manifest = dir.join("m.yaml");
    std::fs::write(&manifest, CONVERT_VAD).expect("manifest");
    let inputs = dir.join("in");
    std::fs::create_dir_all(&inputs).expect("in dir");
    write_inputs(&inputs, &[16000, 22050, 8000]);
    std::fs::write(inputs.join("item_03.wav"), b"RIFF but not really").expect("bad wav");
    let out = dir.join("out");
    let o = cli(&["batch", s(&manifest), s(&inputs), "--out", s(&out), "--workers", "2"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "some items failed: exit 1\n{stdout}\n{stderr}");
    assert!(stdout.contains("batch: 4 items, 2 ok, 2 failed"), "{stdout}");
    assert!(stderr.contains("2 of 4 items failed"), "{stderr}");
    let r = report(&out);
    let results = r["results"].as_array().expect("results");
    let status: Vec<&str> = results.iter().map(|x| x["status"].as_str().unwrap_or("")).collect();
    assert_eq!(status, ["ok", "error", "ok", "error"]);
    assert_eq!(results[1]["error"]["node_id"], "vad");
    assert_eq!(results[1]["error"]["kind"], "invalidinput");
    assert!(results[1]["error"]["message"].as_str().unwrap_or("").contains("22050 Hz"));
    assert_eq!(results[3]["error"]["stage"], "read");
    assert!(results[3]["error"]["message"].as_str().unwrap_or("").contains("item_03.wav"));
    for (k, name) in [(0, "item_00.vad.json"), (2, "item_02.vad.json")] {
        assert_eq!(results[k]["outputs"][0]["file"], name);
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(out.join(name)).expect("VAD JSON")).expect("JSON");
        assert_eq!(doc["kind"], "vad");
        assert_eq!(doc["frames"], 3);
    }
    assert!(!out.join("item_01.vad.json").exists());
}

#[test]
fn cli_batch_usage_errors() {
    let dir = temp_dir("cli-usage");
    let manifest = dir.join("m.yaml");
    std::fs::write(&manifest, CONVERT_GAIN).expect("manifest");
    let o = cli(&["batch", s(&manifest), s(&dir.join("missing")), "--out", s(&dir.join("o"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("input directory"), "{}", String::from_utf8_lossy(&o.stderr));
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).expect("dir");
    let o = cli(&["batch", s(&manifest), s(&empty), "--out", s(&dir.join("o"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no audio files"));
    let o = cli(&["batch", s(&manifest), s(&empty), "--out", s(&dir.join("o")), "--processes", "2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--processes above 1 needs --hosts FILE"));
}

/// Cancelling a batch stops handing items over: every item is either complete with its right
/// output or reported as cancelled, those before the cancel point all completed, and the same
/// pipeline then runs the next batch whole.
#[test]
fn a_cancelled_batch_completes_what_it_started_and_the_pipeline_runs_the_next() {
    use remotemedia::nodes::{expect_audio, Inputs, Node};
    use remotemedia::runtime::{BatchOptions, CancelToken};
    use remotemedia::{NodeError, NodeType};
    /// Halves its input; cancels the batch when it sees item 3 (first sample 3.0).
    struct HalveAndCancel(CancelToken);
    impl Node for HalveAndCancel {
        fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
            let a = expect_audio(inputs.one()?)?;
            let v = a.as_f32().expect("f32");
            if v[0] == 3.0 {
                self.0.cancel();
            }
            Ok(Payload::Audio(AudioBuffer::mono_f32(v.iter().map(|x| x / 2.0).collect(), a.sample_rate)))
        }
    }
    let token = CancelToken::new();
    let mut registry = remotemedia::Registry::builtin();
    let t = token.clone();
    registry.register(NodeType::new("HalveAndCancel", "halves; cancels at item 3", move |_| Ok(Box::new(HalveAndCancel(t.clone())))));
    let text = "version: \"1.0\"\nnodes:\n  - {id: halve, type: HalveAndCancel}\n";
    let graph = remotemedia::manifest::validate(&remotemedia::manifest::parse_str(text).expect("parse"), &registry).expect("valid");
    let pool = WorkerPool::new(2).expect("pool");
    let pipeline = pool.install_with(graph, &registry, std::sync::Arc::new(remotemedia::runtime::RealClock::new())).expect("install");
    let item = |k: usize| RunInput::All(Payload::Audio(AudioBuffer::mono_f32(vec![k as f32; 1600], 16000)));
    // One item per worker per part and a window of one part: items go over a few at a time.
    let options = BatchOptions { part_weight: 1600, window_parts: 1, cancel: token.clone(), ..BatchOptions::default() };
    let results = pipeline.run_batch_with((0..200).map(item).collect(), &options).expect("a cancelled batch still returns");
    assert_eq!(results.len(), 200, "every item is reported");
    let mut cancelled = 0;
    for (k, r) in results.iter().enumerate() {
        match r {
            Ok(o) => {
                let out = o.get("halve").and_then(Payload::audio).and_then(|a| a.as_f32()).expect("f32 output");
                assert_eq!(out, vec![k as f32 / 2.0; 1600].as_slice(), "item {k} is whole and its own");
            }
            Err(e) => {
                // Items 0 and 1 completed before item 3 was handed over; item 3 was running.
                assert!(k == 2 || k > 3, "item {k} ran before the cancel and must complete: {e}");
                assert_eq!(e.operation, remotemedia::runtime::batch::CANCEL_OPERATION, "item {k}: {e}");
                cancelled += 1;
            }
        }
    }
    assert!(cancelled > 150, "only the items in flight when item 3 ran completed ({cancelled} cancelled)");
    // The window holds two parts of two items at most: none from item 8 on was handed over.
    assert!(results[8..].iter().all(|r| r.is_err()), "items never handed over are cancelled");
    // The pool and the pipeline survive: the next batch (token fresh) runs whole.
    let again = pipeline.run_batch((10..20).map(item).collect()).expect("next batch");
    for (k, r) in (10..20).zip(&again) {
        let out = r.as_ref().expect("ok").get("halve").and_then(Payload::audio).and_then(|a| a.as_f32()).expect("f32").to_vec();
        assert_eq!(out, vec![k as f32 / 2.0; 1600]);
    }
}

/// Ctrl-C (SIGINT) during `remotemedia batch`: the items in flight finish, the rest are listed
/// as cancelled in the report, every output file is whole (no temporary files left), and the
/// command exits with 130. SIGTERM does the same.
#[cfg(unix)]
#[test]
fn cli_batch_stops_cleanly_on_sigint_and_sigterm() {
    for (signal, name) in [(libc::SIGINT, "int"), (libc::SIGTERM, "term")] {
        let dir = temp_dir(&format!("cli-sig{name}"));
        let (manifest, inputs) = long_batch(&dir);
        let out = dir.join("out");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_remotemedia"))
            .args(["batch", s(&manifest), s(&inputs), "--out", s(&out), "--workers", "2", "--no-progress"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start the binary");
        // Signal once the first output exists: the batch is under way.
        let start = std::time::Instant::now();
        while !out.join("item_000.gain.wav").exists() {
            assert!(start.elapsed().as_secs() < 60, "no output within 60 s");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let o = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&o.stderr);
        let r = report(&out);
        let results = r["results"].as_array().expect("results");
        assert_eq!(results.len(), 600, "every input is listed");
        let cancelled = results.iter().filter(|x| x["status"] == "cancelled").count();
        assert!(cancelled > 0, "{name}: the signal came with most items left: {cancelled} cancelled\n{stderr}");
        assert_eq!(o.status.code(), Some(130), "{name}: interrupted exit code\n{stderr}");
        assert_eq!(r["cancelled"], cancelled);
        for (k, x) in results.iter().enumerate() {
            let file = out.join(format!("item_{k:03}.gain.wav"));
            match x["status"].as_str() {
                Some("ok") => assert_eq!(read_wav(&file).expect("whole output").frames(), 96_000, "item {k}"),
                Some("cancelled") => assert!(!file.exists(), "item {k} was cancelled but has an output"),
                other => panic!("item {k}: unexpected status {other:?}"),
            }
        }
        let stray: Vec<_> = std::fs::read_dir(&out)
            .expect("out dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(stray.is_empty(), "temporary files left: {stray:?}");
    }
}

/// Keyed items in one process: each is made by the pipeline's own `KeyedIo::load` from its key
/// on the worker it runs on (item k is k/10 everywhere, so the gain's output is k/10 x 10^(-6/20)),
/// a key the loader refuses is that item's load error, and a pipeline installed without a
/// `KeyedIo` refuses keyed items with an error saying what it needs.
#[test]
fn keyed_items_are_made_by_the_pipelines_keyed_loader() {
    use remotemedia::runtime::{ItemInput, KeyedIo, LOAD_OPERATION};
    use std::sync::{mpsc, Arc};
    let io = KeyedIo {
        load: Arc::new(|key| match key {
            9 => Err("no item 9 here".to_string()),
            k => Ok(RunInput::from(AudioBuffer::mono_f32(vec![k as f32 / 10.0; 160], 16_000))),
        }),
        finish: Arc::new(|_, _| String::new()),
    };
    for workers in [1, 2] {
        let pool = WorkerPool::new(workers).expect("pool");
        let pipeline = pool.install_keyed(graph(CONVERT_GAIN), io.clone()).expect("install");
        let items = [0u64, 3, 9, 5].iter().map(|&key| ItemInput::Keyed { weight: 160, key }).collect();
        let (tx, rx) = mpsc::channel();
        pipeline.submit_items(items, None, Box::new(move |r| tx.send(r).expect("send"))).expect("submit");
        let results = rx.recv().expect("reply").expect("run");
        let gain = 10f32.powf(-6.0 / 20.0);
        for (i, key) in [0u64, 3, 5].iter().enumerate() {
            let index = if i == 2 { 3 } else { i };
            let out = results[index].as_ref().expect("ok");
            assert!(out.finished.is_none(), "one process hands the outputs over, unfinished");
            let v = gain_samples(out.get("gain").expect("gain"));
            assert!(v.iter().all(|x| (x - *key as f32 / 10.0 * gain).abs() < 1e-6), "item with key {key}: {:?}", &v[..2]);
        }
        let e = results[2].as_ref().expect_err("key 9 fails");
        assert_eq!((e.operation.as_str(), e.message.as_str(), e.kind), (LOAD_OPERATION, "no item 9 here", NodeErrorKind::InvalidInput));
        let plain = pool.install(graph(CONVERT_GAIN)).expect("install");
        let refused = plain.submit_items(vec![ItemInput::Keyed { weight: 1, key: 0 }], None, Box::new(|_| {})).err().expect("refused");
        assert_eq!(refused.to_string(), "engine error: keyed items need a pipeline installed with a keyed loader (install_keyed)");
    }
}
