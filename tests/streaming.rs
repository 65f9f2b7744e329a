//! Streaming sessions through the timely runtime: chunked resampling and VAD add up to the
//! whole-buffer results at every chunk size, sessions keep their state apart when their pushes
//! interleave or are pushed from 16 threads at once, and session misuse gives errors, not hangs.

use remotemedia::data::{AudioBuffer, Payload, Samples};
use remotemedia::synth::{mix_at_snr, noise, speech_like, NoiseKind};
use remotemedia::{manifest, Error, Registry, RunOutput, WorkerPool};

const MAIN_JOB: &str = r#"{"version":"1.0","nodes":[
  {"id":"resample","type":"AudioResampleNode","params":{"output_rate":16000}},
  {"id":"vad","type":"VADNode"}],
  "edges":[{"from":"resample","to":"vad"}]}"#;

const RESAMPLE_ONLY: &str = r#"{"version":"1.0","nodes":[
  {"id":"resample","type":"AudioResampleNode","params":{"output_rate":16000}}]}"#;

fn install(manifest_json: &str, workers: usize) -> remotemedia::Pipeline {
    let graph = manifest::load_str(manifest_json, &Registry::builtin()).expect("valid manifest");
    WorkerPool::shared(workers).expect("pool").install(graph).expect("install")
}

/// Speech-like sound in pink noise at 10 dB SNR, 48 kHz, with pauses the VAD must find.
fn speech_48k(seconds: f64, seed: u64) -> Vec<f32> {
    let (speech, truth) = speech_like(48000, seconds, seed);
    let n = noise(NoiseKind::Pink, speech.len(), 48000, seed + 1);
    mix_at_snr(&speech, &truth, &n, 10.0)
}

fn audio48(samples: &[f32]) -> Payload {
    Payload::Audio(AudioBuffer::mono_f32(samples.to_vec(), 48000))
}

fn f32_of(p: &Payload) -> Vec<f32> {
    p.audio().and_then(|a| a.as_f32()).expect("f32 audio").to_vec()
}

fn snr_db(reference: &[f32], test: &[f32]) -> f64 {
    let signal: f64 = reference.iter().map(|&x| (x as f64).powi(2)).sum();
    let err: f64 = reference.iter().zip(test).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
    if err == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (signal / err).log10()
    }
}

/// What a session's outputs add up to, per output: resampled samples, VAD frames and segments.
#[derive(Default, Debug, PartialEq)]
struct Collected {
    resampled: Vec<f32>,
    frames: Vec<bool>,
    segments: Vec<(f64, f64)>,
}

impl Collected {
    fn add(&mut self, out: &RunOutput) {
        if let Some(p) = out.get("resample") {
            self.resampled.extend(f32_of(p));
        }
        if let Some(Payload::Vad(v)) = out.get("vad") {
            self.frames.extend(&v.frames);
            self.segments.extend(&v.segments);
            if let Samples::F32(s) = &v.audio.samples {
                self.resampled.extend(s);
            }
        }
    }
}

fn stream(p: &remotemedia::Pipeline, signal: &[f32], chunk: usize) -> Collected {
    let mut session = p.session();
    let mut got = Collected::default();
    for c in signal.chunks(chunk) {
        got.add(&session.push(audio48(c)).expect("push"));
    }
    got.add(&session.close().expect("close"));
    got
}

fn whole(p: &remotemedia::Pipeline, signal: &[f32]) -> Collected {
    let mut got = Collected::default();
    got.add(&p.run(audio48(signal)).expect("run"));
    got
}

#[test]
fn chunked_resampling_concatenates_to_the_whole_buffer_output() {
    let p = install(RESAMPLE_ONLY, 1);
    let signal = speech_48k(1.3, 7);
    let reference = whole(&p, &signal).resampled;
    assert_eq!(reference.len(), (signal.len() as f64 / 3.0).round() as usize);
    for ms in [10, 20, 30, 37] {
        let got = stream(&p, &signal, 48 * ms).resampled;
        assert_eq!(got.len(), reference.len(), "{ms} ms chunks: length");
        let snr = snr_db(&reference, &got);
        assert!(snr >= 100.0, "{ms} ms chunks: {snr:.1} dB against the whole-buffer output");
        // The same filter in another block layout: only float rounding differs.
        let worst = max_abs_diff(&reference, &got);
        assert!(worst <= 1e-5, "{ms} ms chunks: max difference {worst:e}");
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn a_stream_lags_its_input_by_about_one_filter_length() {
    // 48k -> 16k `high`: a 768-tap filter, blocks of 768 input frames (16 ms) and 128 output
    // frames of filter delay: the first 20 ms chunk already yields output.
    let p = install(RESAMPLE_ONLY, 1);
    let signal = speech_48k(0.2, 2);
    let s = p.session();
    let first = s.push(audio48(&signal[..960])).expect("push");
    let out = f32_of(first.get("resample").expect("output"));
    assert_eq!(out.len(), 128, "one block, less the filter delay");
}

#[test]
fn chunked_vad_matches_the_whole_buffer_decisions_and_segments() {
    let p = install(MAIN_JOB, 1);
    let signal = speech_48k(4.0, 11);
    let reference = whole(&p, &signal);
    assert!(!reference.segments.is_empty(), "the signal has speech");
    assert!(reference.frames.iter().any(|f| !f), "the signal has pauses");
    for ms in [10, 20, 30, 37] {
        let got = stream(&p, &signal, 48 * ms);
        assert_eq!(got.frames, reference.frames, "{ms} ms chunks: frame decisions");
        assert_eq!(got.segments, reference.segments, "{ms} ms chunks: segments");
        assert_eq!(got.resampled.len(), reference.resampled.len(), "{ms} ms chunks: the audio passed on");
        assert!(max_abs_diff(&got.resampled, &reference.resampled) <= 1e-5, "{ms} ms chunks: the audio passed on");
    }
}

#[test]
fn interleaved_sessions_keep_their_state_apart() {
    for workers in [1, 2] {
        let p = install(MAIN_JOB, workers);
        let signals: Vec<Vec<f32>> = (0..4).map(|k| speech_48k(1.5, 100 + k)).collect();
        let alone: Vec<Collected> = signals.iter().map(|s| stream(&p, s, 960)).collect();
        let mut sessions: Vec<_> = signals.iter().map(|_| p.session()).collect();
        let mut got: Vec<Collected> = signals.iter().map(|_| Collected::default()).collect();
        let chunks: Vec<Vec<&[f32]>> = signals.iter().map(|s| s.chunks(960).collect()).collect();
        let longest = chunks.iter().map(Vec::len).max().unwrap_or(0);
        for i in 0..longest {
            // Round robin, pushing the later sessions first so arrival order differs from ids.
            for k in (0..signals.len()).rev() {
                if let Some(c) = chunks[k].get(i) {
                    got[k].add(&sessions[k].push(audio48(c)).expect("push"));
                }
            }
        }
        for (k, s) in sessions.iter_mut().enumerate() {
            got[k].add(&s.close().expect("close"));
        }
        for k in 0..signals.len() {
            assert_eq!(got[k], alone[k], "workers={workers}: session {k} interleaved vs alone");
        }
    }
}

#[test]
fn sessions_spread_over_workers_by_id() {
    let with_metrics = MAIN_JOB.replace(r#""edges""#, r#""config":{"enable_metrics":true},"edges""#);
    let p = install(&with_metrics, 2);
    let signal = speech_48k(0.5, 3);
    for _ in 0..4 {
        stream(&p, &signal, 960);
    }
    let per_worker = p.stats_per_worker().expect("stats");
    let vad = 1; // manifest order
    let busy: Vec<u64> = per_worker.iter().map(|w| w.nodes[vad].executions).collect();
    assert!(busy.iter().all(|&n| n > 0), "every worker ran some sessions' VAD: {busy:?}");
}

#[test]
fn pushes_after_close_are_errors_and_the_pipeline_stays_usable() {
    let p = install(MAIN_JOB, 1);
    let signal = speech_48k(0.5, 5);
    let mut s = p.session();
    s.push(audio48(&signal[..4800])).expect("push");
    s.close().expect("close");
    match s.push(audio48(&signal[..4800])) {
        Err(Error::Input(m)) => assert!(m.contains("is closed"), "{m}"),
        other => panic!("expected an input error, got {other:?}"),
    }
    assert!(matches!(s.close(), Err(Error::Input(_))));
    // A dropped open session frees its state; new sessions and whole runs still work.
    {
        let s = p.session();
        s.push(audio48(&signal[..4800])).expect("push");
    }
    let got = stream(&p, &signal, 960);
    assert_eq!(got.frames, whole(&p, &signal).frames);
}

#[test]
fn a_bad_chunk_fails_its_push_and_the_session_continues() {
    let p = install(MAIN_JOB, 1);
    let signal = speech_48k(1.0, 9);
    let reference = stream(&p, &signal, 960);
    let mut s = p.session();
    let mut got = Collected::default();
    for (i, c) in signal.chunks(960).enumerate() {
        if i == 3 {
            let mut bad = c.to_vec();
            bad[10] = f32::NAN;
            match s.push(audio48(&bad)) {
                Err(Error::Node(e)) => {
                    assert_eq!(e.node_id, "resample");
                    assert!(e.message.contains("NaN"), "{}", e.message);
                }
                other => panic!("expected a node error, got {other:?}"),
            }
            // The rejected chunk consumed nothing: pushing the good one continues the stream.
        }
        got.add(&s.push(audio48(c)).expect("push"));
    }
    got.add(&s.close().expect("close"));
    assert_eq!(got, reference);
    // A chunk at another rate cannot continue a stream.
    let s = p.session();
    s.push(audio48(&signal[..960])).expect("push");
    match s.push(Payload::Audio(AudioBuffer::mono_f32(vec![0.0; 441], 44100))) {
        Err(Error::Node(e)) => assert!(e.message.contains("cannot continue it"), "{}", e.message),
        other => panic!("expected a node error, got {other:?}"),
    }
}

/// 16 threads each pushing into a session of their own at once (2 workers, so 8 sessions a
/// worker) give every session exactly what one thread pushing the sessions one after another gets.
#[test]
fn sixteen_threads_pushing_sixteen_sessions_match_one_thread_pushing_each_in_turn() {
    let p = install(MAIN_JOB, 2);
    let signals: Vec<Vec<f32>> = (0..16).map(|k| speech_48k(0.5, 200 + k)).collect();
    let in_turn: Vec<Collected> = signals.iter().map(|s| stream(&p, s, 960)).collect();
    let at_once: Vec<Collected> = std::thread::scope(|scope| {
        let handles: Vec<_> = signals.iter().map(|s| scope.spawn(|| stream(&p, s, 960))).collect();
        handles.into_iter().map(|h| h.join().expect("pushing thread")).collect()
    });
    for k in 0..signals.len() {
        assert!(!in_turn[k].resampled.is_empty(), "session {k} produced audio");
        assert_eq!(at_once[k], in_turn[k], "session {k}: 16 threads at once vs one thread in turn");
    }
}

/// A session driven through `submit_push` / `submit_close` (the caller does not wait), which
/// therefore lives on its worker: the replies, collected in the order they come.
fn stream_on_worker(p: &remotemedia::Pipeline, signal: &[f32], chunk: usize) -> Collected {
    let mut session = p.session();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut sent = 0;
    for c in signal.chunks(chunk) {
        let tx = tx.clone();
        session.submit_push(audio48(c), Box::new(move |r| drop(tx.send(r)))).expect("submit_push");
        sent += 1;
    }
    session.submit_close(Box::new(move |r| drop(tx.send(r)))).expect("submit_close");
    assert!(!session.runs_inline(), "a session first used through submit_push lives on its worker");
    let mut got = Collected::default();
    for _ in 0..=sent {
        let mut items = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("a reply").expect("the chunk ran");
        got.add(&items.pop().expect("one item").expect("the chunk's outputs"));
    }
    got
}

/// Blocking pushes run on the caller's thread (no worker woken); a session fed through the
/// asynchronous calls runs on its worker. Both call the same nodes in the same order, so every
/// output is identical, with one worker or two.
#[test]
fn a_session_on_its_callers_thread_gives_what_one_on_a_worker_gives() {
    let signal = speech_48k(2.0, 11);
    for workers in [1, 2] {
        let p = install(MAIN_JOB, workers);
        let s = p.session();
        s.push(audio48(&signal[..960])).expect("push");
        assert!(s.runs_inline(), "blocking pushes without metrics run on the caller's thread");
        drop(s);
        for chunk in [960, 1440] {
            let inline = stream(&p, &signal, chunk);
            assert!(inline.frames.iter().any(|&f| f) && inline.frames.iter().any(|&f| !f), "the VAD ran and found speech and pauses");
            assert_eq!(stream_on_worker(&p, &signal, chunk), inline, "workers={workers}, {chunk}-sample chunks");
        }
        // Once inline, asynchronous calls run at once on the caller's thread, in order.
        let mut s = p.session();
        let mut got = Collected::default();
        for (i, c) in signal.chunks(960).enumerate() {
            if i % 2 == 0 {
                got.add(&s.push(audio48(c)).expect("push"));
            } else {
                let (tx, rx) = std::sync::mpsc::channel();
                s.submit_push(audio48(c), Box::new(move |r| drop(tx.send(r)))).expect("submit_push");
                let mut items = rx.try_recv().expect("replied before submit_push returned").expect("ran");
                got.add(&items.pop().expect("one item").expect("outputs"));
            }
        }
        got.add(&s.close().expect("close"));
        assert_eq!(got, stream(&p, &signal, 960), "workers={workers}: mixed blocking and async calls");
    }
}

/// 16 threads at once, each with a session on the workers (fed through the asynchronous calls),
/// give what each session gives alone on the caller's thread.
#[test]
fn sixteen_threads_on_worker_sessions_match_the_callers_thread_sessions() {
    let p = install(MAIN_JOB, 2);
    let signals: Vec<Vec<f32>> = (0..16).map(|k| speech_48k(0.5, 300 + k)).collect();
    let alone: Vec<Collected> = signals.iter().map(|s| stream(&p, s, 960)).collect();
    let at_once: Vec<Collected> = std::thread::scope(|scope| {
        let handles: Vec<_> = signals.iter().map(|s| scope.spawn(|| stream_on_worker(&p, s, 960))).collect();
        handles.into_iter().map(|h| h.join().expect("pushing thread")).collect()
    });
    for k in 0..signals.len() {
        assert!(!alone[k].resampled.is_empty(), "session {k} produced audio");
        assert_eq!(at_once[k], alone[k], "session {k}: worker sessions at once vs caller's-thread session alone");
    }
}

/// A session running on its caller's thread refuses pushes once its pipeline has been dropped
/// (closed), with an error instead of running or hanging.
#[test]
fn a_callers_thread_session_fails_cleanly_after_its_pipeline_is_dropped() {
    let p = install(MAIN_JOB, 1);
    let signal = speech_48k(0.2, 41);
    let s = p.session();
    s.push(audio48(&signal[..960])).expect("push");
    drop(p);
    match s.push(audio48(&signal[960..1920])) {
        Err(Error::Engine(m)) => assert!(m.contains("closed"), "{m}"),
        other => panic!("expected an engine error, got {other:?}"),
    }
}
