//! The newcomer's walk-through with the built binary: a folder of mixed recordings made with sox
//! from the bundled sample (44.1 kHz stereo 24-bit, 11.025 kHz 8-bit, 48 kHz float, 48 kHz
//! 6-channel) through `remotemedia batch dataflows/speech_vad.yaml` gives 16 kHz mono audio, VAD
//! JSON and clips with a JSONL manifest whose rows match the files; plus what `run` says: at most
//! 20 segments unless `--all`, both runs' times, and hints for a misplaced WAV or `--prometheus FILE`.
//! sox is a test-only dependency (tests/requirements/walkthrough.apt): without it these tests fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use remotemedia::audio_io::read_wav;
use serde_json::Value;

mod common;
use common::{cli, s, temp_dir};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn sox(args: &[&str]) {
    let out = Command::new("sox")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("sox is needed for this test (tests/requirements/walkthrough.apt): {e}"));
    assert!(out.status.success(), "sox {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The bundled sample as the four kinds of recording, in `dir/in`.
fn mixed_recordings(dir: &Path) -> PathBuf {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let sample = repo("dataflows/sample_speech.wav");
    let sample = s(&sample);
    let to = |name: &str| s(&input.join(name)).to_string();
    sox(&[sample, "-r", "44100", "-c", "2", "-b", "24", &to("a_stereo_44k_24bit.wav")]);
    sox(&[sample, "-r", "11025", "-c", "1", "-b", "8", "-e", "unsigned-integer", &to("b_mono_11k_8bit.wav")]);
    sox(&[sample, "-r", "48000", "-c", "1", "-b", "32", "-e", "floating-point", &to("c_mono_48k_float.wav")]);
    // Six different channels: the sample at full, half, ... level, so the mean is not any one of them.
    sox(&[sample, "-b", "16", &to("d_6ch_48k.wav"), "remix", "1", "1v0.5", "1v0.25", "1v0.75", "1v0.1", "1v0.9"]);
    input
}

#[test]
fn a_folder_of_mixed_recordings_becomes_16k_mono_audio_vad_json_and_clips() {
    let dir = temp_dir("mixed");
    let input = mixed_recordings(&dir);
    let out_dir = dir.join("out");
    let manifest = repo("dataflows/speech_vad.yaml");
    let out = cli(&["batch", s(&manifest), s(&input), "--out", s(&out_dir), "--no-progress"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("batch: 4 items, 4 ok, 0 failed"), "{stdout}");
    assert!(stdout.contains("clips/metadata.jsonl (12 clips)"), "{stdout}");

    let names = ["a_stereo_44k_24bit", "b_mono_11k_8bit", "c_mono_48k_float", "d_6ch_48k"];
    for name in names {
        let audio = read_wav(out_dir.join(format!("{name}.resample_16k.wav"))).expect("16 kHz audio written");
        assert_eq!((audio.sample_rate, audio.channels), (16000, 1), "{name}");
        assert!((audio.duration_s() - 5.885).abs() < 0.01, "{name}: {} s", audio.duration_s());
        let vad: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join(format!("{name}.vad.json"))).unwrap()).unwrap();
        assert_eq!((vad["kind"].as_str(), vad["sample_rate"].as_u64(), vad["channels"].as_u64()), (Some("vad"), Some(16000), Some(1)));
        assert_eq!(vad["segments"].as_array().map(Vec::len), Some(3), "{name}: {vad}");
    }

    // Every manifest row names a clip file of that length, in input order, inside its source.
    let text = std::fs::read_to_string(out_dir.join("clips/metadata.jsonl")).expect("manifest written");
    let rows: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(rows.len(), 12);
    let mut files: Vec<String> = std::fs::read_dir(out_dir.join("clips"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wav"))
        .collect();
    files.sort();
    let listed: Vec<&str> = rows.iter().map(|r| r["file_name"].as_str().unwrap()).collect();
    assert_eq!(listed, files, "the rows list exactly the clip files, in order");
    for (i, row) in rows.iter().enumerate() {
        let clip = read_wav(out_dir.join("clips").join(row["file_name"].as_str().unwrap())).unwrap();
        assert_eq!((clip.sample_rate, clip.channels), (16000, 1));
        assert_eq!(row["frames"].as_u64(), Some(clip.frames() as u64), "{row}");
        assert_eq!(row["source"].as_str(), Some(format!("{}.wav", names[i / 3]).as_str()));
        assert_eq!(row["segment"].as_u64(), Some((i % 3 + 1) as u64));
        let (start, end, duration) = (row["start"].as_f64().unwrap(), row["end"].as_f64().unwrap(), row["duration"].as_f64().unwrap());
        assert!((end - start - duration).abs() < 1e-9 && (duration - clip.duration_s()).abs() < 1e-9, "{row}");
        assert_eq!(row["start_frame"].as_u64(), Some((start * 16000.0).round() as u64));
        assert!(end <= 5.9 && duration <= 30.0, "{row}");
    }
    let report: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap()).unwrap();
    let kinds: Vec<&str> = report["results"][0]["outputs"].as_array().unwrap().iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["audio", "vad", "clips"]);
}

#[test]
fn run_lists_twenty_segments_unless_all_and_shows_both_runs_times() {
    let dir = temp_dir("long");
    let sample = repo("dataflows/sample_speech.wav");
    let long = dir.join("long.wav");
    // Eight copies: 24 phrases.
    let copies: Vec<&str> = (0..8).map(|_| s(&sample)).collect();
    sox(&[copies.as_slice(), &[s(&long)]].concat());
    let manifest = repo("dataflows/speech_vad.yaml");
    let out = cli(&["run", s(&manifest), "--input", s(&long)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("vad: VAD result, 24 speech segments"), "{stdout}");
    assert!(stdout.contains("  … 4 more segments (--all lists every one)"), "{stdout}");
    assert!(stdout.contains("clips: 24 clips") && stdout.contains("  … 4 more clips (--all lists every one)"), "{stdout}");
    assert!(stdout.contains("first run") && stdout.contains("warm run") && stdout.contains("one-time costs"), "{stdout}");
    let listed = |t: &str| t.lines().filter(|l| l.trim_start().starts_with("24.")).count();
    assert_eq!(listed(&stdout), 0);
    let all = cli(&["run", s(&manifest), "--input", s(&long), "--all", "--once"]);
    let all_out = String::from_utf8_lossy(&all.stdout);
    assert_eq!(listed(&all_out), 2, "segment 24 and clip 24:\n{all_out}");
    assert!(all_out.contains("timing (1 run, 1 worker)") && !all_out.contains("warm run"), "{all_out}");
}

#[test]
fn hints_for_a_wav_given_as_the_manifest_and_a_space_before_a_file_name() {
    let sample = repo("dataflows/sample_speech.wav");
    let out = cli(&["run", s(&sample)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("this looks like an audio file: pass it with --input"), "{err}");

    let manifest = repo("dataflows/speech_vad.yaml");
    let out = cli(&["run", s(&manifest), "--prometheus", "out.prom"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("tip: --prometheus takes its value after '=': --prometheus=out.prom"), "{err}");
}
