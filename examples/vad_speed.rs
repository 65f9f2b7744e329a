//! Measures the native VAD's cost per frame (release build):
//! `cargo run --release --example vad_speed`. Prints µs per frame for each rate and frame length.
use std::time::Instant;

use remotemedia::nodes::vad::{VadConfig, VadState};
use remotemedia::synth::{self, NoiseKind};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Reference floor: a bare 512-point real FFT plus power spectrum, as the stack notes measure it.
    {
        let fft = realfft::RealFftPlanner::<f32>::new().plan_fft_forward(512);
        let (mut input, mut spec, mut scratch) = (fft.make_input_vec(), fft.make_output_vec(), fft.make_scratch_vec());
        let mut power = vec![0f32; spec.len()];
        let mut best = f64::INFINITY;
        for _ in 0..30 {
            let t = Instant::now();
            let src: Vec<f32> = (0..512).map(|k| ((k * 7919) % 13) as f32).collect();
            for _ in 0..1000 {
                input.copy_from_slice(&src);
                fft.process_with_scratch(&mut input, &mut spec, &mut scratch)?;
                power.iter_mut().zip(&spec).for_each(|(p, c)| *p = c.norm_sqr());
            }
            best = best.min(t.elapsed().as_secs_f64() / 1000.0);
            std::hint::black_box(&power);
        }
        println!("reference: 512-point r2c + power spectrum: {:.3} us", best * 1e6);
    }
    for rate in [8000u32, 16000, 32000, 48000] {
        let (speech, truth) = synth::speech_like(rate, 10.0, 5);
        let nz = synth::noise(NoiseKind::Pink, speech.len(), rate, 6);
        let x = synth::mix_at_snr(&speech, &truth, &nz, 10.0);
        for ms in [10u32, 20, 30] {
            let mut state = VadState::new(VadConfig::new(rate, ms))?;
            let mut out = Vec::with_capacity(2000);
            let mut best = f64::INFINITY;
            let mut frames = 0;
            for _ in 0..30 {
                state.reset();
                out.clear();
                let t = Instant::now();
                state.push_into(&x, &mut out)?;
                let dt = t.elapsed().as_secs_f64();
                frames = out.len();
                best = best.min(dt / frames as f64);
            }
            let speech_frames = out.iter().filter(|d| **d).count();
            println!(
                "{rate:>5} Hz {ms:>2} ms: {:.3} us/frame (best of 30 runs over {frames} frames; {speech_frames} speech)",
                best * 1e6
            );
        }
    }
    Ok(())
}
