//! Measures the resampler's presets (tone SNR, 10 kHz rejection, passband edge, speed) and writes
//! native outputs for the Python twin's parity check: `cargo run --release --example resample_measure`.

use std::f64::consts::PI;
use std::time::Instant;

use remotemedia::nodes::resample::{output_frames, Quality, Resampler};

fn tone(freq: f64, rate: u32, frames: usize) -> Vec<f32> {
    (0..frames).map(|i| (2.0 * PI * freq * i as f64 / rate as f64).sin() as f32 * 0.5).collect()
}

/// SNR of `out` against the analytic tone, excluding `edge` frames at each end.
fn snr_db(out: &[f32], freq: f64, rate: u32, edge: usize) -> f64 {
    let (mut sig, mut err) = (0.0, 0.0);
    for (k, &y) in out.iter().enumerate().skip(edge).take(out.len().saturating_sub(2 * edge)) {
        let r = 0.5 * (2.0 * PI * freq * k as f64 / rate as f64).sin();
        sig += r * r;
        err += (y as f64 - r) * (y as f64 - r);
    }
    10.0 * (sig / err.max(1e-300)).log10()
}

/// Output RMS relative to input RMS (0.5/sqrt 2), in dB, excluding edges.
fn level_db(out: &[f32], edge: usize) -> f64 {
    let v = &out[edge..out.len() - edge];
    let p: f64 = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>() / v.len() as f64;
    10.0 * (p / 0.125).log10()
}

fn main() {
    let pairs = [(48000, 16000), (16000, 48000), (44100, 16000), (8000, 192000), (192000, 8000), (22050, 48000), (44100, 48000)];
    let qs = [Quality::Low, Quality::Medium, Quality::High, Quality::VeryHigh];
    let secs = 2.0;
    println!("pair            quality    blocks       cutoff_Hz  SNR997  rej10k  -0.1dB_edge  -3dB_edge  edge");
    for &(i, o) in &pairs {
        for &q in &qs {
            let mut r = Resampler::new(i, o, 1, q).unwrap();
            let n = (secs * i as f64) as usize;
            let mut out = Vec::new();
            r.process_interleaved(&tone(997.0, i, n), &mut out).unwrap();
            assert_eq!(out.len(), output_frames(n, i, o));
            let edge = r.block_sizes().unwrap().1;
            let snr = snr_db(&out, 997.0, o, edge);
            let rej = if o < i && o < 20000 {
                r.process_interleaved(&tone(10000.0, i, n), &mut out).unwrap();
                -level_db(&out, edge)
            } else {
                f64::NAN
            };
            // Passband edge: scan frequencies below the lower Nyquist.
            let nyq = o.min(i) as f64 / 2.0;
            let (mut e01, mut e3) = (0.0, 0.0);
            let mut f = nyq * 0.70;
            while f < nyq {
                r.process_interleaved(&tone(f, i, n / 4), &mut out).unwrap();
                let l = level_db(&out, edge);
                if l > -0.1 {
                    e01 = f;
                }
                if l > -3.0 {
                    e3 = f;
                }
                f += nyq * 0.0025;
            }
            println!(
                "{:>6}->{:<6} {:<10} {:>5}/{:<5} {:>9.0} {:>7.1} {:>7.1} {:>11.0} {:>10.0} {:>5}",
                i, o, q.name(), r.block_sizes().unwrap().0, r.block_sizes().unwrap().1,
                r.cutoff_hz().unwrap(), snr, rej, e01, e3, edge
            );
        }
    }

    // Speed: 1 s mono 48k -> 16k, resampler kept, output buffer reused.
    let x = tone(997.0, 48000, 48000);
    for &q in &qs {
        let t0 = Instant::now();
        let mut r = Resampler::new(48000, 16000, 1, q).unwrap();
        let build = t0.elapsed();
        let mut out = Vec::new();
        let mut times = Vec::new();
        for _ in 0..300 {
            let t = Instant::now();
            r.process_interleaved(&x, &mut out).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "speed 48k->16k 1 s mono {:<10} median {:>7.1} us  min {:>7.1} us  build {:>6.0} us",
            q.name(), times[150], times[0], build.as_secs_f64() * 1e6
        );
    }
    for &(i, o) in &[(16000u32, 48000u32), (44100, 16000), (44100, 48000)] {
        let x = tone(997.0, i, i as usize);
        let mut r = Resampler::new(i, o, 1, Quality::High).unwrap();
        let mut out = Vec::new();
        let mut times = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            r.process_interleaved(&x, &mut out).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("speed {i}->{o} 1 s mono high median {:>7.1} us", times[100]);
    }

    // Parity files for the Python twin: /tmp/resample_parity/<name>_{in,out}.f32 + index.
    let dir = std::path::Path::new("/tmp/resample_parity");
    std::fs::create_dir_all(dir).unwrap();
    let mut index = String::new();
    let mut seed = 12345u64;
    let mut noise = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((seed >> 40) as f64 / (1u64 << 24) as f64 - 0.5) as f32 * 0.8
            })
            .collect()
    };
    let cases: Vec<(&str, u32, u32, usize, Vec<f32>)> = vec![
        ("tone", 48000, 16000, 1, tone(997.0, 48000, 48000)),
        ("chirp", 44100, 16000, 1, (0..44100).map(|i| { let t = i as f64 / 44100.0; (2.0 * PI * (100.0 * t + 10000.0 * t * t)).sin() as f32 * 0.7 }).collect()),
        ("noise", 16000, 48000, 1, noise(16000)),
        ("stereo", 22050, 48000, 2, { let a = tone(440.0, 22050, 11025); let b = noise(11025); a.iter().zip(&b).flat_map(|(x, y)| [*x, *y]).collect() }),
        ("short", 48000, 16000, 1, noise(7)),
        ("up8k", 8000, 192000, 1, noise(4000)),
        ("down192k", 192000, 8000, 1, noise(96000)),
    ];
    for (name, i, o, ch, x) in &cases {
        for &q in &qs {
            let mut r = Resampler::new(*i, *o, *ch, q).unwrap();
            let mut out = Vec::new();
            r.process_interleaved(x, &mut out).unwrap();
            let base = format!("{name}_{}", q.name());
            std::fs::write(dir.join(format!("{base}_in.f32")), bytemuck::cast_slice::<f32, u8>(x)).unwrap();
            std::fs::write(dir.join(format!("{base}_out.f32")), bytemuck::cast_slice::<f32, u8>(&out)).unwrap();
            index += &format!("{base} {i} {o} {ch} {}\n", q.name());
        }
    }
    std::fs::write(dir.join("index.txt"), index).unwrap();
    println!("parity files written to {}", dir.display());
}
