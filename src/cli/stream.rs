//! `remotemedia stream`: a WAV file pushed through a streaming session chunk by chunk, as a live
//! source would push it; prints VAD segments as the chunk that closes them arrives, then what the
//! chunks added up to and the per-push latency.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde_json::{json, Value};

use super::report::{describe_payload, input_json, payload_json};
use super::{parse_workers, CliError};
use crate::data::{AudioBuffer, Clip, Features, Payload, VadResult};
use crate::runtime::RunOutput;

#[derive(Debug, Args)]
pub struct StreamArgs {
    /// The pipeline manifest (.json, .yaml or .yml).
    pub manifest: PathBuf,
    /// Audio file to stream, any readable format (default: the bundled dataflows/sample_speech.wav).
    #[arg(long, short, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Chunk length in milliseconds, 1 to 10000.
    #[arg(long, value_name = "MS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub chunk_ms: u32,
    /// Write the first audio output, all chunks concatenated, to this file (WAV, or FLAC).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the input, the concatenated outputs and the per-push latencies to this JSON file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Timely workers (overrides the manifest's config.workers), 1 to 256.
    #[arg(long, short, value_name = "N", value_parser = parse_workers)]
    pub workers: Option<usize>,
    #[command(flatten)]
    pub encode: super::EncodeArgs,
    /// List every speech segment and clip in the summary (default: the first 20 of each output).
    #[arg(long)]
    pub all: bool,
}

/// What a sink's outputs over a session add up to.
enum Sum {
    Audio(AudioBuffer),
    Vad(VadResult),
    Clips(Vec<Clip>),
    Features(Features),
    /// Anything else: the last value seen.
    Last(Payload),
}

impl Sum {
    fn add(slot: &mut Option<Sum>, p: Payload) -> Result<(), String> {
        match (slot.as_mut(), p) {
            (None, Payload::Audio(a)) => *slot = Some(Sum::Audio(a)),
            (None, Payload::Vad(v)) => *slot = Some(Sum::Vad(*v)),
            (None, Payload::Clips(c)) => *slot = Some(Sum::Clips(c)),
            (Some(Sum::Clips(acc)), Payload::Clips(c)) => acc.extend(c),
            (None, Payload::Features(f)) => *slot = Some(Sum::Features(f)),
            (Some(Sum::Features(acc)), Payload::Features(f)) => acc.append(&f)?,
            (Some(Sum::Audio(acc)), Payload::Audio(a)) => acc.append(&a)?,
            (Some(Sum::Vad(acc)), Payload::Vad(v)) => {
                acc.frames.extend(v.frames);
                acc.probabilities.extend(v.probabilities);
                acc.segments.extend(v.segments);
                acc.audio.append(&v.audio)?;
            }
            (_, other) => *slot = Some(Sum::Last(other)),
        }
        Ok(())
    }

    fn into_payload(self) -> Payload {
        match self {
            Sum::Audio(a) => Payload::Audio(a),
            Sum::Vad(v) => Payload::Vad(Box::new(v)),
            Sum::Clips(c) => Payload::Clips(c),
            Sum::Features(f) => Payload::Features(f),
            Sum::Last(p) => p,
        }
    }
}

pub fn run(args: &StreamArgs, out: &mut String) -> Result<(), CliError> {
    // Outputs that are the input, or each other, are refused before anything is read or run.
    let spec = args.encode.spec()?;
    let input_path = match &args.input {
        Some(p) => p.clone(),
        None => super::find_sample(&args.manifest)?,
    };
    let named: Vec<(&str, &std::path::PathBuf)> =
        [("--output", args.output.as_ref()), ("--json", args.json.as_ref())].into_iter().filter_map(|(f, p)| p.map(|p| (f, p))).collect();
    for (flag, p) in &named {
        crate::file_safety::check_not_input(p, flag, &[&input_path]).map_err(|e| CliError::usage(super::plain(&e)))?;
    }
    if let [(a, pa), (b, pb)] = named[..] {
        if crate::file_safety::fold_case(&pa.to_string_lossy()) == crate::file_safety::fold_case(&pb.to_string_lossy())
            || crate::file_safety::same_file(pa, pb)
        {
            return Err(CliError::usage(format!("{a} and {b} name the same file '{}'", pa.display())));
        }
    }
    let (pipeline, input) = super::prepare(&args.manifest, args.input.as_deref(), args.workers, out)?;
    let audio = &input.audio;
    let chunk = ((audio.sample_rate as u64 * args.chunk_ms as u64) / 1000).max(1) as usize;
    let chunks = audio.frames().div_ceil(chunk);
    let _ = writeln!(out, "\nstreaming {chunks} chunks of {} ms ({chunk} frames)", args.chunk_ms);
    let mut session = pipeline.session();
    let mut sums: BTreeMap<String, Option<Sum>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut push_ns: Vec<u64> = Vec::with_capacity(chunks);
    let mut absorb = |outputs: RunOutput, at_s: f64, out: &mut String| -> Result<(), CliError> {
        for (id, p) in outputs.outputs {
            if let Payload::Vad(v) = &p {
                for (s, e) in &v.segments {
                    let _ = writeln!(out, "  {at_s:>7.2} s  {id}: speech {s:.2}-{e:.2} s");
                }
            }
            if !sums.contains_key(&id) {
                order.push(id.clone());
            }
            Sum::add(sums.entry(id.clone()).or_default(), p).map_err(|m| CliError::failure(format!("output '{id}': {m}")))?;
        }
        Ok(())
    };
    for k in 0..chunks {
        let piece = audio.frame_range(k * chunk, (k + 1) * chunk);
        let t = Instant::now();
        let result = session.push(Payload::Audio(piece));
        push_ns.push(t.elapsed().as_nanos() as u64);
        let outputs = result.map_err(|e| CliError::from_run(e).with_prefix(&format!("chunk {k}")))?;
        absorb(outputs, ((k + 1) * chunk).min(audio.frames()) as f64 / audio.sample_rate as f64, out)?;
    }
    let t = Instant::now();
    let flushed = session.close().map_err(|e| CliError::from_run(e).with_prefix("close"))?;
    let close_ns = t.elapsed().as_nanos() as u64;
    absorb(flushed, audio.duration_s(), out)?;

    let outputs: Vec<(String, Payload)> = order
        .iter()
        .filter_map(|id| sums.remove(id).flatten().map(|s| (id.clone(), s.into_payload())))
        .collect();
    let _ = writeln!(out, "\noutputs (all chunks)");
    for (id, p) in &outputs {
        describe_payload(out, id, p, 2, args.all);
    }
    let (median, p99) = percentiles(&push_ns);
    let _ = writeln!(
        out,
        "\nper push: median {:.1} µs, p99 {:.1} µs over {chunks} pushes; close {:.1} µs",
        median / 1e3,
        p99 / 1e3,
        close_ns as f64 / 1e3
    );
    if let Some(path) = &args.output {
        super::run::write_first_audio(path, &outputs, spec, out)?;
    }
    if let Some(path) = &args.json {
        let outs: serde_json::Map<String, Value> = outputs.iter().map(|(id, p)| (id.clone(), payload_json(p))).collect();
        let doc = json!({
            "input": input_json(&input),
            "chunk_ms": args.chunk_ms,
            "chunks": chunks,
            "outputs": outs,
            "push_latency_us": {"median": median / 1e3, "p99": p99 / 1e3},
            "close_latency_us": close_ns as f64 / 1e3,
        });
        super::write_json(path, &doc, out)?;
    }
    Ok(())
}

/// Median and p99 (nearest rank) of `ns`.
fn percentiles(ns: &[u64]) -> (f64, f64) {
    if ns.is_empty() {
        return (0.0, 0.0);
    }
    let mut v = ns.to_vec();
    v.sort_unstable();
    let at = |q: f64| v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)] as f64;
    (at(0.5), at(0.99))
}
