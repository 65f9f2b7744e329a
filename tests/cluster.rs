//! Cluster mode end to end with the built binary on 127.0.0.1: a 2-process batch (through
//! `remotemedia spawn` and through two hand-started processes) gives the same outputs and report
//! as one process, including a failing item's error from whichever process ran it; a peer that
//! never starts gives the timeout error naming it instead of a hang; a peer frozen (SIGSTOP) or
//! killed mid-batch is detected by the heartbeat and the survivor exits with code 1 and a message
//! naming it, within the peer timeout; SIGTERM or SIGINT to `spawn` stops its processes cleanly
//! (report written, exit 130) and leaves none running.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use remotemedia::audio_io::{read_wav, write_wav};
use serde_json::Value;

mod common;
use common::{cli, item_audio, long_batch, s, temp_dir};

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
    (items, output_files(out))
}

/// Every output file in `out` (report.json left out) with its decoded content, sorted by name.
fn output_files(out: &Path) -> Vec<(String, String)> {
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
    files
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

/// A two-process group's hosts file in `dir`, on two free local ports.
fn two_hosts(dir: &Path) -> PathBuf {
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port())).expect("hosts");
    hosts
}

/// Process `index` of the group in `hosts`, started by hand: `batch` of `manifest` over `input`
/// into `out` with `workers` workers, then `more` flags.
fn member(manifest: &Path, input: &Path, out: &Path, hosts: &Path, index: &str, workers: &str, more: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_remotemedia"))
        .args(["batch", s(manifest), s(input), "--out", s(out), "--workers", workers])
        .args(["--processes", "2", "--process-index", index, "--hosts", s(hosts), "--connect-timeout", "20"])
        .args(more)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a process")
}

/// Both processes of a pair run to the end, process 1 started first (it must wait for process
/// 0 to come up); their outputs, process 0's first.
fn run_pair(start: impl Fn(&str) -> Child) -> (Output, Output) {
    let p1 = start("1");
    let p0 = start("0");
    (p0.wait_with_output().expect("process 0"), p1.wait_with_output().expect("process 1"))
}

/// A copy of the input folder `from` at `to`, without the file named `except`.
fn copy_inputs(from: &Path, to: &Path, except: Option<&str>) {
    std::fs::create_dir_all(to).expect("input copy");
    for e in std::fs::read_dir(from).expect("inputs").filter_map(|e| e.ok()) {
        if except.is_none_or(|x| e.file_name() != x) {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy input");
        }
    }
}

#[test]
fn hand_started_processes_with_two_workers_each_match_one_process() {
    let dir = temp_dir("hand");
    let (manifest, inputs) = setup(&dir);
    let hosts = two_hosts(&dir);
    let out = dir.join("two");
    let (o0, o1) = run_pair(|i| member(&manifest, &inputs, &out, &hosts, i, "2", &[]));
    assert_eq!(o0.status.code(), Some(1), "{}", text(&o0));
    assert!(o1.status.success(), "{}", text(&o1));
    let single = dir.join("one");
    let o = cli(&["batch", s(&manifest), s(&inputs), "--out", s(&single), "--workers", "1"]);
    assert_eq!(o.status.code(), Some(1));
    let (items, files) = results(&out);
    check_expected(&items);
    assert_eq!(results(&single), (items, files));
}

/// Two hand-started processes, one worker each, given different input and output folders that
/// hold the same file names: an item is read and written by the process whose worker runs it
/// (one part of 12 items: item k on worker k % 2, which is process k % 2), so each folder of
/// outputs holds its own process's items, equal to one process's outputs, and the copy of
/// item 3 that only process 1 sees (corrupt) is item 3's read error in process 0's report.
#[test]
fn each_process_reads_and_writes_the_items_its_worker_runs() {
    let dir = temp_dir("own_io");
    let (manifest, inputs) = setup(&dir);
    let inputs1 = dir.join("in1");
    copy_inputs(&inputs, &inputs1, None);
    std::fs::write(inputs1.join("item_03.wav"), b"RIFF not really a wave file").expect("corrupt copy");
    let hosts = two_hosts(&dir);
    let (out0, out1) = (dir.join("out0"), dir.join("out1"));
    let (o0, o1) = run_pair(|i| {
        let (input, out) = if i == "0" { (&inputs, &out0) } else { (&inputs1, &out1) };
        member(&manifest, input, out, &hosts, i, "1", &[])
    });
    assert_eq!(o0.status.code(), Some(1), "items 3 and 5 fail: {}", text(&o0));
    assert!(o1.status.success(), "{}", text(&o1));
    assert!(String::from_utf8_lossy(&o0.stdout).contains("batch: 12 items, 10 ok, 2 failed"), "{}", text(&o0));
    let (items, files0) = results(&out0);
    let item3 = &items[3];
    assert_eq!((item3["status"].as_str(), item3["error"]["stage"].as_str()), (Some("error"), Some("read")), "{item3}");
    assert_eq!(items[5]["error"]["node_id"], "vad", "{}", items[5]);
    assert_eq!(items.iter().filter(|i| i["status"] == "ok").count(), 10);
    let one = dir.join("one");
    let o = cli(&["batch", s(&manifest), s(&inputs), "--out", s(&one), "--workers", "1"]);
    assert_eq!(o.status.code(), Some(1), "item 5 fails: {}", text(&o));
    let (items_one, files_one) = results(&one);
    for (k, (two, one)) in items.iter().zip(&items_one).enumerate() {
        if k != 3 {
            assert_eq!(two, one, "item {k}: the same report entry as from one process");
        }
    }
    let of_item = |files: &[(String, String)], parity: usize| -> Vec<(String, String)> {
        files.iter().filter(|(n, _)| n[5..7].parse::<usize>().map(|k| k % 2 == parity).unwrap_or(false)).cloned().collect()
    };
    let files1 = output_files(&out1);
    assert_eq!(files0, of_item(&files_one, 0), "process 0 wrote the even items, the same as one process");
    assert_eq!(files1, of_item(&files_one, 1).into_iter().filter(|(n, _)| !n.starts_with("item_03")).collect::<Vec<_>>(), "process 1 wrote the odd items but its unreadable item 3");
    assert!(files0.iter().all(|(n, _)| n[5..7].parse::<usize>().map(|k| k % 2 == 0).unwrap_or(false)), "{files0:?}");
}

/// Processes that list different input files (a name missing in one of them) report the items
/// whose names disagree as engine errors naming both, instead of writing one file's outputs
/// under another's name.
#[test]
fn processes_that_see_different_input_files_say_so() {
    let dir = temp_dir("listing");
    let (manifest, inputs) = setup(&dir);
    let inputs1 = dir.join("in1");
    copy_inputs(&inputs, &inputs1, Some("item_00.wav"));
    let hosts = two_hosts(&dir);
    let out = dir.join("out");
    let (o0, o1) = run_pair(|i| member(&manifest, if i == "0" { &inputs } else { &inputs1 }, &out, &hosts, i, "1", &[]));
    assert_eq!(o0.status.code(), Some(1), "{}", text(&o0));
    assert!(o1.status.success(), "{}", text(&o1));
    let (items, _) = results(&out);
    // Process 1 runs the odd items; its item 1 is item_02.wav, ... and it has no item 11.
    assert_eq!(items[1]["error"]["stage"], "engine", "{}", items[1]);
    let message = items[1]["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("found \"item_02.wav\"") && message.contains("not 'item_01.wav'") && message.contains("every process must see the same input files"), "{message}");
    assert_eq!(items[11]["error"]["stage"], "read", "{}", items[11]);
    assert!(items[11]["error"]["message"].as_str().unwrap_or("").contains("this process lists only 11 input files, so it has no item 11"), "{}", items[11]);
    assert_eq!(items[0]["status"], "ok", "process 0's own items are untouched: {}", items[0]);
    assert!(!out.join("item_01.gain.wav").exists() && !out.join("item_01.vad.json").exists(), "item 1 was read by no process");
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

/// Waits until `path` exists (the batch is under way), failing after 60 s.
fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "{} did not appear within 60 s", path.display());
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The child's output once it has exited, and how long that took; killed (and the test failed)
/// after `limit`.
fn finish_within(mut child: Child, limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return (child.wait_with_output().expect("output"), start.elapsed());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let o = child.wait_with_output().expect("output");
            panic!("still running after {limit:?}: {}", text(&o));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: signalling a child of this test that has not been reaped yet.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

/// Two hand-started processes with `--peer-timeout 1`; returns (process 0, process 1, out dir).
fn start_pair(dir: &Path, manifest: &Path, inputs: &Path) -> (Child, Child, PathBuf) {
    let hosts = two_hosts(dir);
    let out = dir.join("out");
    let start = |i: &str| member(manifest, inputs, &out, &hosts, i, "1", &["--no-progress", "--peer-timeout", "1"]);
    let p1 = start("1");
    let p0 = start("0");
    (p0, p1, out)
}

#[cfg(unix)]
#[test]
fn a_frozen_peer_is_detected_within_the_peer_timeout() {
    let dir = temp_dir("frozen");
    let (manifest, inputs) = long_batch(&dir);
    let (p0, p1, out) = start_pair(&dir, &manifest, &inputs);
    wait_for(&out.join("item_000.gain.wav"));
    signal(p1.id(), libc::SIGSTOP);
    // The timeout is 1 s; 20 s allows for a loaded machine, where a hang would be forever.
    let (o0, took) = finish_within(p0, Duration::from_secs(20));
    signal(p1.id(), libc::SIGCONT);
    let (o1, _) = finish_within(p1, Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&o0.stderr);
    assert_eq!(o0.status.code(), Some(1), "{}", text(&o0));
    assert!(
        stderr.contains("error: process 0: lost process 1 at 127.0.0.1:")
            && stderr.contains("it sent nothing for 1.0 s (--peer-timeout): it is frozen, overloaded or unreachable"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(took >= Duration::from_millis(900), "waited the peer timeout, not less: {took:?}");
    // Resumed, process 1 finds process 0 gone and stops with the same kind of message.
    assert_eq!(o1.status.code(), Some(1), "{}", text(&o1));
    assert!(String::from_utf8_lossy(&o1.stderr).contains("error: process 1: lost process 0 at 127.0.0.1:"), "{}", text(&o1));
}

#[cfg(unix)]
#[test]
fn a_killed_peer_ends_the_survivor_with_exit_code_1_not_an_abort() {
    let dir = temp_dir("killed");
    let (manifest, inputs) = long_batch(&dir);
    let (p0, mut p1, out) = start_pair(&dir, &manifest, &inputs);
    wait_for(&out.join("item_000.gain.wav"));
    p1.kill().expect("kill process 1");
    let _ = p1.wait();
    let (o0, _) = finish_within(p0, Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&o0.stderr);
    assert_eq!(o0.status.code(), Some(1), "exit 1, not SIGABRT: {}", text(&o0));
    assert!(stderr.starts_with("error: process 0: lost process 1 at 127.0.0.1:"), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "no panic traces: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line saying what happened: {stderr}");
}

/// The pids of `parent`'s children, from /proc.
#[cfg(target_os = "linux")]
fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
            stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok()) == Some(parent)
        })
        .collect()
}

#[cfg(target_os = "linux")]
fn alive(pid: u32) -> bool {
    // A zombie has exited; only its parent's wait is missing.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().chars().next() != Some('Z')))
        .unwrap_or(false)
}

#[cfg(target_os = "linux")]
#[test]
fn spawn_stops_its_processes_on_sigterm_and_sigint_and_leaves_none_running() {
    for (sig, name) in [(libc::SIGTERM, "term"), (libc::SIGINT, "int")] {
        let dir = temp_dir(&format!("spawn-{name}"));
        let (manifest, inputs) = long_batch(&dir);
        let out = dir.join("out");
        let spawn = Command::new(env!("CARGO_BIN_EXE_remotemedia"))
            .args(["spawn", "-n", "2", "--", "batch", s(&manifest), s(&inputs), "--out", s(&out), "--workers", "1", "--no-progress"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start spawn");
        wait_for(&out.join("item_000.gain.wav"));
        let kids = children_of(spawn.id());
        assert_eq!(kids.len(), 2, "{name}: two processes running: {kids:?}");
        signal(spawn.id(), sig);
        let (o, _) = finish_within(spawn, Duration::from_secs(60));
        assert_eq!(o.status.code(), Some(130), "{name}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("spawn: interrupted; process 0 exited with code 130"), "{}", text(&o));
        let left: Vec<u32> = kids.iter().copied().filter(|&k| alive(k)).collect();
        assert!(left.is_empty(), "{name}: processes left running: {left:?}");
        // Process 0's report lists every item: written whole, or cancelled with no output.
        let report: Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("report")).expect("JSON");
        let results = report["results"].as_array().expect("results");
        assert_eq!(results.len(), 600);
        let cancelled = results.iter().filter(|x| x["status"] == "cancelled").count();
        assert!(cancelled > 0, "{name}: the signal came with most items left");
        for (k, x) in results.iter().enumerate() {
            let file = out.join(format!("item_{k:03}.gain.wav"));
            match x["status"].as_str() {
                Some("ok") => assert_eq!(read_wav(&file).expect("whole output").frames(), 96_000, "item {k}"),
                Some("cancelled") => assert!(!file.exists(), "item {k} was cancelled but has an output"),
                other => panic!("item {k}: unexpected status {other:?}"),
            }
        }
    }
}

#[cfg(target_os = "linux")]
fn process_index_of(pid: u32) -> Option<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = cmdline.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let at = args.iter().position(|a| a == "--process-index")?;
    args.get(at + 1).cloned()
}

/// A frozen process under `spawn`: process 0 notices within the peer timeout and exits 1, and
/// `spawn` stops the frozen one (SIGKILL works on a stopped process) and exits 1 instead of
/// waiting forever.
#[cfg(target_os = "linux")]
#[test]
fn spawn_ends_when_one_of_its_processes_freezes() {
    let dir = temp_dir("spawn-frozen");
    let (manifest, inputs) = long_batch(&dir);
    let out = dir.join("out");
    let spawn = Command::new(env!("CARGO_BIN_EXE_remotemedia"))
        .args(["spawn", "-n", "2", "--", "batch", s(&manifest), s(&inputs), "--out", s(&out), "--workers", "1", "--no-progress"])
        .args(["--peer-timeout", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start spawn");
    wait_for(&out.join("item_000.gain.wav"));
    let kids = children_of(spawn.id());
    let frozen = *kids.iter().find(|&&k| process_index_of(k).as_deref() == Some("1")).expect("process 1 among the children");
    signal(frozen, libc::SIGSTOP);
    // 1 s peer timeout, then spawn's 3 s grace for the rest; 30 s allows for a loaded machine.
    let (o, _) = finish_within(spawn, Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("error: process 0: lost process 1 at 127.0.0.1:") && stderr.contains("it sent nothing for 1.0 s"), "{stderr}");
    assert!(stderr.contains("spawn: process 0 exited with code 1, process 1 was stopped"), "{stderr}");
    let left: Vec<u32> = kids.iter().copied().filter(|&k| alive(k)).collect();
    assert!(left.is_empty(), "processes left running: {left:?}");
}

/// Ctrl-C in a terminal reaches every process of a group started by hand: process 0 stops the
/// batch cleanly (report written, exit 130) and process 1 ends with the group's dataflow (exit 0)
/// instead of dying and costing process 0 its report.
#[cfg(unix)]
#[test]
fn ctrl_c_to_a_hand_started_group_stops_it_cleanly() {
    let dir = temp_dir("group-sigint");
    let (manifest, inputs) = long_batch(&dir);
    let (p0, p1, out) = start_pair(&dir, &manifest, &inputs);
    wait_for(&out.join("item_000.gain.wav"));
    signal(p1.id(), libc::SIGINT);
    signal(p0.id(), libc::SIGINT);
    let (o0, _) = finish_within(p0, Duration::from_secs(60));
    let (o1, _) = finish_within(p1, Duration::from_secs(60));
    assert_eq!(o0.status.code(), Some(130), "{}", text(&o0));
    assert!(o1.status.success(), "{}", text(&o1));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("report")).expect("JSON");
    let results = report["results"].as_array().expect("results");
    assert_eq!(results.len(), 600);
    assert!(results.iter().any(|x| x["status"] == "cancelled"), "the signal came with most items left");
    assert!(results.iter().all(|x| x["status"] == "cancelled" || x["status"] == "ok"));
}
