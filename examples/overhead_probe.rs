use remotemedia::{manifest, data::{AudioBuffer, Payload}, Registry, WorkerPool};
use std::time::Instant;
fn main() {
    let m = r#"{"version":"1.0","nodes":[{"id":"a","type":"PassthroughNode"},{"id":"b","type":"PassthroughNode"},{"id":"c","type":"PassthroughNode"}],"edges":[{"from":"a","to":"b"},{"from":"b","to":"c"}]}"#;
    for w in [1usize, 2] {
        let p = WorkerPool::shared(w).unwrap().install(manifest::load_str(m, &Registry::builtin()).unwrap()).unwrap();
        let input = Payload::Audio(AudioBuffer::mono_f32(vec![0.0; 480], 48000));
        let mut t = Vec::new();
        for _ in 0..20000 { let s = Instant::now(); p.run(input.clone()).unwrap(); t.push(s.elapsed().as_nanos() as u64); }
        t.sort(); println!("workers {w}: median {} ns p99 {} ns", t[t.len()/2], t[t.len()*99/100]);
    }
}
