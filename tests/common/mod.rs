//! What the integration tests of the `remotemedia` binary share: temporary directories, running
//! the binary, and numbered test items.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use remotemedia::audio_io::write_wav;
use remotemedia::data::{AudioBuffer, Samples};

/// int16 -> f32 -> -6 dB: every output sample is the input's f32 value halved (to 1e-3 relative).
pub const CONVERT_GAIN: &str = r#"
version: "1.0"
nodes:
  - {id: to_f32, type: FormatConverterNode, params: {target_format: f32}}
  - {id: gain, type: GainNode, params: {gain_db: -6.0}}
edges:
  - {from: to_f32, to: gain}
"#;

/// A fresh directory for one test, removed when the test ends.
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `remotemedia-<test binary>-<pid>-<name>` under the system's temporary directory.
pub fn temp_dir(name: &str) -> TempDir {
    let suite = env!("CARGO_CRATE_NAME");
    let dir = std::env::temp_dir().join(format!("remotemedia-{suite}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    TempDir(dir)
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Runs the built binary with `args` and waits for it.
pub fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_remotemedia")).args(args).output().expect("start the remotemedia binary")
}

/// Item `k`: 0.1 s of a 16-bit 440 Hz tone whose amplitude encodes `k`, so results can be
/// matched to inputs.
pub fn item_audio(k: usize, rate: u32) -> AudioBuffer {
    let amp = 1000.0 + 500.0 * k as f64;
    let n = rate as usize / 10;
    let samples: Vec<i16> =
        (0..n).map(|i| (amp * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / rate as f64).sin()).round() as i16).collect();
    AudioBuffer::new(Samples::I16(samples.into()), rate, 1).expect("valid audio")
}

/// A folder of 600 items of 2 s at 48 kHz and the CONVERT_GAIN manifest beside it: far more than
/// the parts in flight when a test interrupts or signals a batch.
pub fn long_batch(dir: &Path) -> (PathBuf, PathBuf) {
    let manifest = dir.join("m.yaml");
    std::fs::write(&manifest, CONVERT_GAIN).expect("manifest");
    let inputs = dir.join("in");
    std::fs::create_dir_all(&inputs).expect("in dir");
    let tone: Vec<i16> = (0..96_000).map(|i| ((i % 100) as i16 - 50) * 100).collect();
    let audio = AudioBuffer::new(Samples::I16(tone.into()), 48_000, 1).expect("audio");
    for k in 0..600 {
        write_wav(inputs.join(format!("item_{k:03}.wav")), &audio).expect("input");
    }
    (manifest, inputs)
}
