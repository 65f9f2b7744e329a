//! Ad-hoc timing of the format kernels against memcpy of the same output size (1M samples).
//!
//! `cargo run --release --example format_speed`. Prints medians over many iterations; the first
//! iteration of each (fresh pages from the OS) is printed separately.

use std::hint::black_box;
use std::time::Instant;

use remotemedia::nodes::format::*;

const N: usize = 1 << 20;
const ITERS: usize = 301;

fn time<T>(name: &str, mut f: impl FnMut() -> T) -> f64 {
    let mut ts = Vec::with_capacity(ITERS);
    for _ in 0..ITERS {
        let t = Instant::now();
        black_box(f());
        ts.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let first = ts[0];
    ts.sort_by(|a, b| a.total_cmp(b));
    let med = ts[ITERS / 2];
    println!("{name:44} median {med:8.1} us   p10 {:8.1}   first {first:8.1}", ts[ITERS / 10]);
    med
}

fn main() {
    let i16s: Vec<i16> = (0..N).map(|i| (i as i32 * 7919 % 65536 - 32768) as i16).collect();
    let i32s: Vec<i32> = i16s.iter().map(|&x| (x as i32) << 16 | 0x1234).collect();
    let f32s: Vec<f32> = i16_to_f32(&i16s);
    let f32_4mb = f32s.clone();
    let i16_2mb = i16s.clone();

    println!("-- fresh output Vec per call (what the node does) --");
    let m4 = time("memcpy 4 MB (f32 to_vec)", || f32_4mb.to_vec());
    let a = time("i16_to_f32 (4 MB out)", || i16_to_f32(&i16s));
    time("i32_to_f32 (4 MB out)", || i32_to_f32(&i32s));
    time("f32_to_i32 (4 MB out)", || f32_to_i32(&f32s));
    time("i16_to_i32 (4 MB out)", || i16_to_i32(&i16s));
    let m2 = time("memcpy 2 MB (i16 to_vec)", || i16_2mb.to_vec());
    let b = time("f32_to_i16 (2 MB out)", || f32_to_i16(&f32s));
    time("i32_to_i16 (2 MB out)", || i32_to_i16(&i32s));
    println!("ratio i16->f32 / memcpy4MB = {:.2}, f32->i16 / memcpy2MB = {:.2}", a / m4, b / m2);

    println!("-- reused output buffer --");
    let mut d4 = vec![0f32; N];
    let mut d2: Vec<i16> = Vec::with_capacity(N);
    let mut d4f: Vec<f32> = Vec::with_capacity(N);
    let m4r = time("memcpy 4 MB (copy_from_slice)", || {
        black_box(&mut d4).copy_from_slice(black_box(&f32_4mb));
        black_box(d4[N / 2])
    });
    let ar = time("i16_to_f32_into", || i16_to_f32_into(black_box(&i16s), &mut d4f));
    let br = time("f32_to_i16_into", || f32_to_i16_into(black_box(&f32s), &mut d2));
    println!("ratio i16->f32 / memcpy4MB (reused) = {:.2}; f32->i16 {br:.1} us", ar / m4r);

    // The machine is shared, so medians taken minutes apart drift; alternate the two operations
    // and take the median of the per-pair ratios as well.
    println!("-- paired: memcpy 4 MB then i16_to_f32, fresh Vecs, alternating --");
    let mut ratios = Vec::with_capacity(ITERS);
    let (mut tm, mut tc) = (Vec::new(), Vec::new());
    for _ in 0..ITERS {
        let t = Instant::now();
        black_box(f32_4mb.to_vec());
        let m = t.elapsed().as_secs_f64();
        let t = Instant::now();
        black_box(i16_to_f32(black_box(&i16s)));
        let c = t.elapsed().as_secs_f64();
        ratios.push(c / m);
        tm.push(m * 1e6);
        tc.push(c * 1e6);
    }
    for v in [&mut ratios, &mut tm, &mut tc] {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    println!(
        "memcpy median {:.1} us, i16_to_f32 median {:.1} us, median ratio {:.2} (p25 {:.2}, p75 {:.2})",
        tm[ITERS / 2],
        tc[ITERS / 2],
        ratios[ITERS / 2],
        ratios[ITERS / 4],
        ratios[3 * ITERS / 4]
    );
}
