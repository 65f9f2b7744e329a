//! Writes synthetic noisy speech and the native VAD's decisions to a folder, so the numpy twin in
//! `python/remotemedia/_pure/vad.py` can be checked against the native VAD
//! (`python/tests/vad_agreement.py` reads the folder).
//!
//! Usage: `cargo run --release --example vad_dump -- /tmp/vad_dump`
//! Files per signal `{noise}_{snr}_{rate}`: `.f32` (raw little-endian mono samples), `.truth`
//! (one byte per sample, 0/1); per frame length `{noise}_{snr}_{rate}_{ms}.native` (one byte per
//! frame, 0/1; default parameters). 30 s of speech-like signal per case, seed 11.
use std::io::Write;

use remotemedia::nodes::vad::{detect, VadConfig};
use remotemedia::synth::{self, NoiseKind};

fn write(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::File::create(path)?.write_all(bytes)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "/tmp/vad_dump".into()));
    std::fs::create_dir_all(&dir)?;
    for rate in [16000u32, 8000, 48000] {
        let (speech, truth) = synth::speech_like(rate, 30.0, 11);
        for kind in [NoiseKind::White, NoiseKind::Pink, NoiseKind::Hum50] {
            for snr in [20, 10, 5, 0] {
                let nz = synth::noise(kind, speech.len(), rate, 100 + snr as u64);
                let mix = synth::mix_at_snr(&speech, &truth, &nz, snr as f64);
                let name = format!("{}_{}_{}", kind.name(), snr, rate);
                let bytes: Vec<u8> = mix.iter().flat_map(|x| x.to_le_bytes()).collect();
                write(&dir.join(format!("{name}.f32")), &bytes)?;
                let t: Vec<u8> = truth.iter().map(|t| *t as u8).collect();
                write(&dir.join(format!("{name}.truth")), &t)?;
                for ms in [10, 20, 30] {
                    let (_, frames) = detect(&mix, VadConfig::new(rate, ms))?;
                    let f: Vec<u8> = frames.iter().map(|t| *t as u8).collect();
                    write(&dir.join(format!("{name}_{ms}.native")), &f)?;
                }
            }
        }
    }
    Ok(())
}
