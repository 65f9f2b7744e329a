//! Cluster mode end to end with the built binary on 127.0.0.1: a 2-process batch (through
//! `remotemedia spawn` and through two hand-started processes) gives the same outputs and report
//! as one process, including a failing item's error from whichever process ran it; a peer that
//! never starts gives the timeout error naming it instead of a hang.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use remotemedia::audio_io::{read_wav, write_wav};
use serde_json::Value;

mod common;
use common::{cli, item_audio, s, temp_dir};

/// int16 -> f32 -> (gain, VAD): two sinks, on different branch slots, so items cross processes.
const FANOUT: &str = r#"
version: "1.0"
nodes:
  - {id: to_f32, type: FormatConverterNode, params: {target_format: f32}}
  - {id: gain, type: GainNode, params: {gain_db: -6.0}}
  - {id: vad, type: VADNode, params: {frame_duration_ms: 30}}
edges:
  - {from: to_f32, to: gain}
  - {from: to_f32, to: vad}
"#;

/// Twelve inputs; item 5 is at 22050 Hz, which the VAD refuses (the gain branch still runs).
fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let manifest = dir.join("fanout.yaml");
    std::fs::write(&manifest, FANOUT).expect("manifest");
    let inputs = dir.join("in");
    std::fs::create_dir_all(&inputs).expect("in dir");
    for k in 0..12 {
        let rate = if k == 5 { 22050 } else { 16000 };
        write_wav(inputs.join(format!("item_{k:02}.wav")), &item_audio(k, rate)).expect("write input");
    }
    (manifest, inputs)
}

/// The report's per-item part (durations dropped) and every output file's decoded content.
fn results(out: &Path) -> (Vec<Value>, Vec<(String, String)>) {
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json written");
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    let mut items = doc["results"].as_array().expect("results").clone();
    for item in &mut items {
        if let Some(m) = item.as_object_mut() {
            m.remove("duration_ms");
        }
    }
    let mut files: Vec<(String, String)> = std::fs::read_dir(out)
        .expect("out dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "report.json")
        .map(|n| {
            let content = if n.ends_with(".wav") {
                format!("{:?}", read_wav(out.join(&n)).expect("output WAV"))
            } else {
                std::fs::read_to_string(out.join(&n)).expect("output JSON")
            };
            (n, content)
        })
        .collect();
    files.sort();
    (items, files)
}

fn check_expected(items: &[Value]) {
    assert_eq!(items.len(), 12, "every input is listed");
    for (k, item) in items.iter().enumerate() {
        assert_eq!(item["input"], format!("item_{k:02}.wav"));
        if k == 5 {
            assert_eq!(item["status"], "error");
            assert_eq!(item["error"]["node_id"], "vad");
            assert!(item["error"]["message"].as_str().unwrap_or("").contains("22050 Hz"), "{item}");
        } else {
            assert_eq!(item["status"], "ok", "{item}");
            assert_eq!(item["outputs"].as_array().map(Vec::len), Some(2));
        }
    }
}

fn text(o: &Output) -> String {
    format!("status {:?}\nstdout {}\nstderr {}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn two_processes_give_the_same_results_as_one() {
    let dir = temp_dir("equal");
    let (manifest, inputs) = setup(&dir);
    let one = dir.join("one");
    let o = cli(&["batch", s(&manifest), s(&inputs), "--out", s(&one), "--workers", "1"]);
    assert_eq!(o.status.code(), Some(1), "item 5 fails: {}", text(&o));
    let two = dir.join("two");
    let o = cli(&["spawn", "-n", "2", "--", "batch", s(&manifest), s(&inputs), "--out", s(&two), "--workers", "1", "--connect-timeout", "20"]);
    assert_eq!(o.status.code(), Some(1), "process 0's exit code is passed on: {}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("batch: 12 items, 11 ok, 1 failed"), "{}", text(&o));
    let (items_one, files_one) = results(&one);
    let (items_two, files_two) = results(&two);
    check_expected(&items_one);
    assert_eq!(items_one, items_two, "same report from 1 and 2 processes");
    assert_eq!(files_one.len(), 11 * 2, "gain and VAD outputs for every item but the failed item 5");
    assert_eq!(files_one, files_two, "same output files, byte for byte after decoding");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[test]
fn hand_started_processes_with_two_workers_each_match_one_process() {
    let dir = temp_dir("hand");
    let (manifest, inputs) = setup(&dir);
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port())).expect("hosts");
    let out = dir.join("two");
    let start = |i: &str| {
        Command::new(env!("CARGO_BIN_EXE_remotemedia"))
            .args(["batch", s(&manifest), s(&inputs), "--out", s(&out), "--workers", "2"])
            .args(["--processes", "2", "--process-index", i, "--hosts", s(&hosts), "--connect-timeout", "20"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a process")
    };
    // The higher index first: it must wait for process 0 to come up.
    let p1 = start("1");
    let p0 = start("0");
    let o0 = p0.wait_with_output().expect("process 0");
    let o1 = p1.wait_with_output().expect("process 1");
    assert_eq!(o0.status.code(), Some(1), "{}", text(&o0));
    assert!(o1.status.success(), "{}", text(&o1));
    let single = dir.join("one");
    let o = cli(&["batch", s(&manifest), s(&inputs), "--out", s(&single), "--workers", "1"]);
    assert_eq!(o.status.code(), Some(1));
    let (items, files) = results(&out);
    check_expected(&items);
    assert_eq!(results(&single), (items, files));
}

#[test]
fn a_peer_that_never_starts_gives_the_timeout_error() {
    let dir = temp_dir("missing");
    let (manifest, inputs) = setup(&dir);
    // Nothing listens on process 0's port (bound, then released) and process 1 is never started.
    let (p0, p1) = (free_port(), free_port());
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1:{p0}\n127.0.0.1:{p1}\n")).expect("hosts");
    let out = dir.join("out");
    let base = ["batch", s(&manifest), s(&inputs), "--out", s(&out), "--processes", "2", "--hosts", s(&hosts), "--connect-timeout", "1"];

    // Process 1 cannot reach process 0.
    let o = cli(&[&base[..], &["--process-index", "1"]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(&format!("process 1: timed out after 1.0 s connecting to process 0 at 127.0.0.1:{p0}")),
        "{stderr}"
    );

    // Process 0 waits for process 1, which never connects.
    let o = cli(&[&base[..], &["--process-index", "0"]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(&format!("process 0: timed out after 1.0 s waiting for process 1 (127.0.0.1:{p1}) to connect")),
        "{stderr}"
    );
    assert!(!out.join("report.json").exists(), "nothing ran");
}

#[test]
fn hosts_file_and_index_mistakes_are_usage_errors() {
    let dir = temp_dir("usage");
    let (manifest, inputs) = setup(&dir);
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, "127.0.0.1:1\n").expect("hosts");
    let out = dir.join("out");
    let o = cli(&["batch", s(&manifest), s(&inputs), "--out", s(&out), "--processes", "2", "--hosts", s(&hosts)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--processes is 2 but the hosts file lists 1 host"), "{}", text(&o));
    std::fs::write(&hosts, "127.0.0.1:1\nlocalhost\n").expect("hosts");
    let o = cli(&["batch", s(&manifest), s(&inputs), "--out", s(&out), "--processes", "2", "--hosts", s(&hosts)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 2: expected host:port, found 'localhost'"), "{}", text(&o));
    let o = cli(&["spawn", "-n", "2", "--", "run", s(&manifest)]);
    assert_eq!(o.status.code(), Some(2));
    let o = cli(&["spawn", "-n", "2", "--", "batch", s(&manifest), s(&inputs), "--out", s(&out), "--hosts", "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("spawn sets --hosts itself"));
}
