//! Audio files end to end through the binary: every format in (`info`, `run`, `batch` over a mixed
//! folder), WAV and FLAC out (`--out-format`, `--out-bits`), `run --stream` in constant memory,
//! and the file-safety rules: special files and link loops refused without blocking, outputs that
//! would collide or overwrite an input refused before anything is written, node ids that cannot
//! leave `--out`. Lossy and foreign files are made by ffmpeg (tests/requirements/files.apt).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use remotemedia::audio_io::{self, OutFormat, OutSpec};
use remotemedia::data::{AudioBuffer, Samples};
use serde_json::Value;

mod common;
use common::{cli, s, temp_dir, CONVERT_GAIN};

const RESAMPLE_VAD: &str = r#"
version: "1.0"
nodes:
  - {id: resample, type: AudioResampleNode, params: {output_rate: 16000}}
  - {id: vad, type: VADNode, params: {}}
edges:
  - {from: resample, to: vad}
"#;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

/// 0.5 s of two tones, 16-bit stereo at 44.1 kHz.
fn stereo_i16() -> AudioBuffer {
    let n = 22050;
    let mut v = Vec::with_capacity(n * 2);
    for i in 0..n {
        let t = i as f64 / 44100.0;
        v.push((12000.0 * (2.0 * std::f64::consts::PI * 330.0 * t).sin()).round() as i16);
        v.push((9000.0 * (2.0 * std::f64::consts::PI * 1250.0 * t).sin()).round() as i16);
    }
    AudioBuffer::new(Samples::I16(v.into()), 44100, 2).expect("audio")
}

fn ffmpeg(src: &Path, dst: &Path, args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i", s(src)])
        .args(args)
        .arg(s(dst))
        .status()
        .expect("ffmpeg is installed (tests/requirements/files.apt)");
    assert!(status.success(), "ffmpeg failed for {}", dst.display());
}

#[test]
fn flac_written_here_reads_back_bit_exact_and_info_describes_it() {
    let dir = temp_dir("flac");
    let a = stereo_i16();
    let flac = dir.join("a.flac");
    audio_io::write(&flac, &a, OutSpec::default()).expect("write flac");
    assert_eq!(audio_io::read(&flac).expect("read flac"), a);
    // 24-bit: i32 audio keeps its top 24 bits exactly.
    let i24: Vec<i32> = (0..4096).map(|i| ((i * 2654435761u64 as i64) % (1 << 23)) as i32 * 256).collect();
    let b = AudioBuffer::new(Samples::I32(i24.into()), 96000, 1).expect("audio");
    let flac24 = dir.join("b.flac");
    audio_io::write(&flac24, &b, OutSpec::default()).expect("write flac 24");
    assert_eq!(audio_io::read(&flac24).expect("read"), b);
    // ffmpeg decodes our FLAC to the same samples.
    let wav = dir.join("back.wav");
    ffmpeg(&flac, &wav, &["-c:a", "pcm_s16le"]);
    assert_eq!(audio_io::read(&wav).expect("read ffmpeg output"), a);

    let out = cli(&["info", s(&flac), s(&flac24)]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("FLAC / Free Lossless Audio Codec") && stdout.contains("44100") && stdout.contains("16-bit"), "{stdout}");
    assert!(stdout.contains("00:00:00.50") && stdout.contains("22050"), "{stdout}");
    assert!(stdout.contains("96000") && stdout.contains("24-bit") && stdout.contains("4096"), "{stdout}");
    let out = cli(&["info", "--json", s(&flac)]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("info --json");
    assert_eq!(doc[0]["frames"], 22050);
    assert_eq!(doc[0]["bits"], 16);
    assert_eq!(doc[0]["dtype"], "int16");
}

#[test]
fn run_reads_any_format_and_writes_wav_or_flac_as_asked() {
    let dir = temp_dir("run-formats");
    let manifest = write(&dir, "gain.yaml", CONVERT_GAIN);
    let a = stereo_i16();
    let wav = dir.join("in.wav");
    audio_io::write_wav(&wav, &a).expect("write");
    let mp3 = dir.join("in.mp3");
    ffmpeg(&wav, &mp3, &["-c:a", "libmp3lame", "-b:a", "128k"]);
    for input in [&wav, &mp3] {
        let out_flac = dir.join("out.flac");
        let o = cli(&["run", s(&manifest), "--input", s(input), "--output", s(&out_flac), "--out-bits", "24"]);
        assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
        let back = audio_io::read(&out_flac).expect("FLAC output reads");
        assert_eq!((back.sample_rate, back.channels, back.samples.format().name()), (44100, 2, "i32"));
        let info = audio_io::info(&out_flac).expect("info");
        assert_eq!((info.container.as_str(), info.bits), ("FLAC", Some(24)));
    }
    // --out-format wav --out-bits 16 writes 16-bit PCM whatever the extension says.
    let out_wav = dir.join("out.audio");
    let o = cli(&["run", s(&manifest), "--input", s(&wav), "--output", s(&out_wav), "--out-format", "wav", "--out-bits", "16"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(audio_io::info(&out_wav).expect("info").codec, "PCM 16-bit integer");
    // A format we only read is refused by name, before the run.
    let o = cli(&["run", s(&manifest), "--input", s(&wav), "--output", s(&dir.join("x.mp3"))]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("writes WAV and FLAC, not .mp3"), "{}", text(&o.stderr));
    let o = cli(&["run", s(&manifest), "--input", s(&wav), "--out-bits", "12"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let o = cli(&["run", s(&manifest), "--input", s(&wav), "--out-format", "flac", "--out-bits", "32"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("FLAC holds integer samples"), "{}", text(&o.stderr));
}

#[test]
fn run_never_writes_over_its_input() {
    let dir = temp_dir("run-self");
    let manifest = write(&dir, "gain.yaml", CONVERT_GAIN);
    let wav = dir.join("in.wav");
    audio_io::write_wav(&wav, &stereo_i16()).expect("write");
    let before = std::fs::read(&wav).expect("read");
    for flag in ["--output", "--json"] {
        let o = cli(&["run", s(&manifest), "--input", s(&wav), flag, s(&wav)]);
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains("is the input file"), "{}", text(&o.stderr));
        let o = cli(&["run", s(&manifest), "--stream", s(&wav), flag, s(&wav)]);
        assert_eq!(o.status.code(), Some(2), "{flag} --stream: {}", text(&o.stderr));
        let o = cli(&["stream", s(&manifest), "--input", s(&wav), flag, s(&wav)]);
        assert_eq!(o.status.code(), Some(2), "{flag} stream: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains("is the input file"), "{}", text(&o.stderr));
    }
    let o = cli(&["run", s(&manifest), "--input", s(&wav), "--output", s(&dir.join("o.json")), "--json", s(&dir.join("O.JSON"))]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert_eq!(std::fs::read(&wav).expect("read"), before, "the input changed");
}

#[test]
fn run_stream_writes_what_the_stream_command_computes() {
    let dir = temp_dir("run-stream");
    let manifest = write(&dir, "rv.yaml", RESAMPLE_VAD);
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("dataflows/sample_speech.wav");
    let flac = dir.join("speech.flac");
    audio_io::write(&flac, &audio_io::read(&sample).expect("sample"), OutSpec::default()).expect("flac");
    let (a, b, j) = (dir.join("a.wav"), dir.join("b.wav"), dir.join("a.json"));
    let o = cli(&["run", s(&manifest), "--stream", s(&flac), "--output", s(&a), "--json", s(&j)]);
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}{}", text(&o.stderr));
    assert!(stdout.contains("FLAC / Free Lossless Audio Codec, 16-bit") && stdout.contains("streamed 6 chunks of 1000 ms"), "{stdout}");
    let o = cli(&["stream", s(&manifest), "--input", s(&flac), "--chunk-ms", "1000", "--output", s(&b)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // The same chunks through the same session give the same samples.
    let (sa, sb) = (audio_io::read(&a).expect("a"), audio_io::read(&b).expect("b"));
    assert_eq!(sa, sb);
    assert_eq!((sa.sample_rate, sa.frames()), (16000, 94166));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&j).expect("json")).expect("json");
    assert_eq!(doc["outputs"]["vad"]["kind"], "vad result");
    assert_eq!(doc["outputs"]["vad"]["segments"].as_array().map(Vec::len), Some(3), "{doc}");
    assert_eq!(doc["input"]["container"], "FLAC");
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(s(path)).status().expect("mkfifo");
    assert!(status.success());
}

#[cfg(unix)]
#[test]
fn special_files_and_link_loops_are_refused_at_once() {
    let dir = temp_dir("special");
    let manifest = write(&dir, "gain.yaml", CONVERT_GAIN);
    let fifo = dir.join("pipe.wav");
    mkfifo(&fifo);
    let (a, b) = (dir.join("a.wav"), dir.join("b.wav"));
    std::os::unix::fs::symlink(&b, &a).expect("link");
    std::os::unix::fs::symlink(&a, &b).expect("link");
    for (input, says) in [(&fifo, "is a FIFO (named pipe), not a regular file"), (&a, "symbolic link loop")] {
        let started = Instant::now();
        let o = cli(&["run", s(&manifest), "--input", s(input)]);
        assert!(started.elapsed() < Duration::from_secs(20));
        assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
        assert!(text(&o.stderr).contains(says), "{}", text(&o.stderr));
        let o = cli(&["info", s(input)]);
        assert!(text(&o.stdout).contains(says), "{}", text(&o.stdout));
    }
}

#[test]
fn batch_takes_a_folder_of_mixed_formats_and_reports_every_item() {
    let dir = temp_dir("batch-mixed");
    let manifest = write(&dir, "gain.yaml", CONVERT_GAIN);
    let inputs = dir.join("in");
    std::fs::create_dir_all(&inputs).expect("in");
    let a = stereo_i16();
    audio_io::write_wav(inputs.join("a.wav"), &a).expect("wav");
    audio_io::write(&inputs.join("b.FLAC"), &a, OutSpec::default()).expect("flac");
    ffmpeg(&inputs.join("a.wav"), &inputs.join("c.mp3"), &["-c:a", "libmp3lame"]);
    ffmpeg(&inputs.join("a.wav"), &inputs.join("d.ogg"), &["-c:a", "libvorbis"]);
    ffmpeg(&inputs.join("a.wav"), &inputs.join("e.m4a"), &["-c:a", "aac"]);
    ffmpeg(&inputs.join("a.wav"), &inputs.join("f.opus"), &["-c:a", "libopus"]);
    let wav_bytes = std::fs::read(inputs.join("a.wav")).expect("read");
    std::fs::write(inputs.join("g.wav"), &wav_bytes[..wav_bytes.len() / 2]).expect("truncated");
    std::fs::write(inputs.join("notes.txt"), "not audio").expect("txt");
    #[cfg(unix)]
    mkfifo(&inputs.join("h.wav"));
    let out = dir.join("out");
    let started = Instant::now();
    let o = cli(&["batch", s(&manifest), s(&inputs), "--out", s(&out), "--out-format", "flac", "--no-progress"]);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(o.status.code(), Some(1), "{}{}", text(&o.stdout), text(&o.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("report")).expect("json");
    let results = report["results"].as_array().expect("results");
    let by_name = |n: &str| results.iter().find(|r| r["input"] == n).unwrap_or_else(|| panic!("{n} not in {report}"));
    for ok in ["a.wav", "b.FLAC", "c.mp3", "d.ogg", "e.m4a"] {
        let r = by_name(ok);
        assert_eq!(r["status"], "ok", "{r}");
        let file = r["outputs"][0]["file"].as_str().expect("file");
        assert!(file.ends_with(".gain.flac"), "{file}");
        let back = audio_io::read(&out.join(file)).expect("output reads");
        assert_eq!((back.sample_rate, back.channels), (44100, 2));
    }
    assert!(by_name("f.opus")["error"]["message"].as_str().unwrap_or("").contains("Opus audio, which remotemedia cannot decode"));
    assert!(by_name("g.wav")["error"]["message"].as_str().unwrap_or("").contains("is truncated"));
    #[cfg(unix)]
    assert!(by_name("h.wav")["error"]["message"].as_str().unwrap_or("").contains("FIFO"));
    assert!(results.iter().all(|r| r["input"] != "notes.txt"));
    // No temporary file is left behind.
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn batch_refuses_colliding_or_self_overwriting_outputs_before_writing() {
    let dir = temp_dir("batch-safety");
    let manifest = write(&dir, "gain.yaml", CONVERT_GAIN);
    let inputs = dir.join("in");
    std::fs::create_dir_all(&inputs).expect("in");
    let a = stereo_i16();
    audio_io::write_wav(inputs.join("x.wav"), &a).expect("wav");
    audio_io::write(&inputs.join("x.flac"), &a, OutSpec { format: Some(OutFormat::Flac), bits: None }).expect("flac");
    let out = dir.join("out");
    let o = cli(&["batch", s(&manifest), s(&inputs), "--out", s(&out), "--no-progress"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("x.flac and x.wav would both write x.gain.*"), "{}", text(&o.stderr));
    assert!(!out.exists(), "nothing may be written");
    // --out equal to the input folder.
    std::fs::remove_file(inputs.join("x.flac")).expect("rm");
    let before = std::fs::read(inputs.join("x.wav")).expect("read");
    let o = cli(&["batch", s(&manifest), s(&inputs), "--out", s(&inputs.join(".")), "--no-progress"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("is the input folder"), "{}", text(&o.stderr));
    assert_eq!(std::fs::read(inputs.join("x.wav")).expect("read"), before);
    assert_eq!(std::fs::read_dir(&inputs).expect("list").count(), 1);
}

#[test]
fn crafted_node_ids_stay_inside_the_output_folder() {
    let dir = temp_dir("batch-ids");
    let manifest = write(
        &dir,
        "evil.yaml",
        "version: \"1.0\"\nnodes:\n  - {id: \"../../escaped\", type: PassthroughNode}\n",
    );
    let inputs = dir.join("in");
    std::fs::create_dir_all(&inputs).expect("in");
    audio_io::write_wav(inputs.join("x.wav"), &stereo_i16()).expect("wav");
    let out = dir.join("deep").join("out");
    let o = cli(&["batch", s(&manifest), s(&inputs), "--out", s(&out), "--no-progress"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(out.join("x._._.._escaped.wav").is_file(), "{:?}", std::fs::read_dir(&out).map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect::<Vec<_>>()));
    assert!(!dir.join("escaped.wav").exists() && !dir.join("x.escaped.wav").exists());
}
