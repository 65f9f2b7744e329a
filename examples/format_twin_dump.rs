//! Writes inputs and the Rust converter's outputs as raw little-endian files, so that
//! `python/tests/check_format_twin.py` can check the numpy twin bit for bit.
//!
//! `cargo run --example format_twin_dump -- /tmp/format_twin`

use remotemedia::data::{SampleFormat, Samples};
use remotemedia::nodes::format::convert;

fn main() -> std::io::Result<()> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "/tmp/format_twin".into()));
    std::fs::create_dir_all(&dir)?;

    let mut rng: u64 = 2024;
    let mut next = move || {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (rng >> 32) as u32
    };

    let i16s: Vec<i16> = (i16::MIN..=i16::MAX).collect();

    // Floats: specials, halves and their neighbours at both scales, random bit patterns.
    let mut f32s = vec![
        0.0f32, -0.0, 1.0, -1.0, 0.5, 2.0, -2.0, 1e30, -1e30, f32::MAX, f32::MIN, f32::MIN_POSITIVE,
        1e-45, -1e-45, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -f32::NAN,
    ];
    for k in -70000i32..70000 {
        for scale in [32768.0f64, 2147483648.0] {
            let h = ((k as f64 + 0.5) / scale) as f32;
            f32s.extend([h, f32::from_bits(h.to_bits() + 1), f32::from_bits(h.to_bits().wrapping_sub(1)), (k as f64 / scale) as f32]);
        }
    }
    for _ in 0..500_000 {
        f32s.push(f32::from_bits(next()));
    }
    for _ in 0..500_000 {
        // Uniform in about [-1.2, 1.2]: ordinary audio plus some clipping.
        f32s.push(((next() as f64 / 4294967296.0 - 0.5) * 2.4) as f32);
    }

    let mut i32s = vec![i32::MIN, i32::MIN + 1, i32::MAX, i32::MAX - 1, 0, 1, -1];
    for k in i16::MIN as i32..=i16::MAX as i32 {
        for off in [0, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF] {
            i32s.push((k << 16).wrapping_add(off));
        }
    }
    for e in 24..31 {
        for d in -3..=3 {
            i32s.extend([(1i32 << e) + d, -(1i32 << e) + d]);
        }
    }
    for _ in 0..500_000 {
        i32s.push(next() as i32);
    }

    let inputs = [("f32", Samples::F32(f32s)), ("i16", Samples::I16(i16s)), ("i32", Samples::I32(i32s))];
    for (name, samples) in &inputs {
        std::fs::write(dir.join(format!("in_{name}.raw")), samples.to_le_bytes())?;
        for target in [SampleFormat::F32, SampleFormat::I16, SampleFormat::I32] {
            let out = convert(samples.clone(), target);
            std::fs::write(dir.join(format!("{name}_to_{}.raw", target.name())), out.to_le_bytes())?;
        }
        println!("{name}: {} samples", samples.len());
    }
    println!("wrote {}", dir.display());
    Ok(())
}
