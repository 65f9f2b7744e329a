//! `remotemedia run`: one run of a manifest on an audio file, described for a person (input, every
//! output, time per node), optionally written out as WAV or FLAC, JSON and Prometheus text. With
//! `--stream` the file is decoded and pushed through a streaming session chunk by chunk instead
//! (`stream_file.rs`), in constant memory whatever its length.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use super::report::{describe_payload, first_audio, input_json, payload_json, percentile_table, timing_table};
use super::{parse_workers, CliError, EncodeArgs};
use crate::data::Payload;
use crate::runtime::RunInput;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline manifest (.json, .yaml or .yml).
    pub manifest: PathBuf,
    /// Audio file to run on, any readable format (default: the bundled dataflows/sample_speech.wav).
    #[arg(long, short, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write the first audio output (or the audio a VAD result carries) to this file (WAV, or
    /// FLAC for a .flac name or --out-format flac).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the input, the outputs and the metrics document to this JSON file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also print per-node counts, errors and latency percentiles.
    #[arg(long)]
    pub metrics: bool,
    /// Also print the metrics in Prometheus text format (to stdout, or to FILE with --prometheus=FILE).
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true)]
    pub prometheus: Option<Option<PathBuf>>,
    /// Timely workers (overrides the manifest's config.workers), 1 to 256.
    #[arg(long, short, value_name = "N", value_parser = parse_workers)]
    pub workers: Option<usize>,
    /// Stream FILE (or --input) through a streaming session chunk by chunk, in constant memory
    /// whatever its length; --output is written as the chunks come.
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub stream: Option<Option<PathBuf>>,
    /// Chunk length for --stream, in milliseconds (1 to 600000).
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=600_000))]
    pub chunk_ms: u32,
    #[command(flatten)]
    pub encode: EncodeArgs,
}

/// Refuses, before anything is read or run, output paths that are the input or each other.
pub fn check_outputs(args: &RunArgs, input: &std::path::Path) -> Result<(), CliError> {
    let prometheus = args.prometheus.clone().flatten();
    let outputs = [("--output", args.output.as_ref()), ("--json", args.json.as_ref()), ("--prometheus", prometheus.as_ref())];
    let named: Vec<(&str, &PathBuf)> = outputs.iter().filter_map(|(flag, p)| p.map(|p| (*flag, p))).collect();
    for (flag, p) in &named {
        crate::file_safety::check_not_input(p, flag, &[input]).map_err(|e| CliError::usage(super::plain(&e)))?;
    }
    for (i, (a, pa)) in named.iter().enumerate() {
        for (b, pb) in &named[i + 1..] {
            if crate::file_safety::fold_case(&pa.to_string_lossy()) == crate::file_safety::fold_case(&pb.to_string_lossy())
                || crate::file_safety::same_file(pa, pb)
            {
                return Err(CliError::usage(format!("{a} and {b} name the same file '{}'", pa.display())));
            }
        }
    }
    Ok(())
}

pub fn run(args: &RunArgs, out: &mut String) -> Result<(), CliError> {
    if args.stream.is_some() {
        return super::stream_file::run(args, out);
    }
    let input_path = match &args.input {
        Some(p) => p.clone(),
        None => super::find_sample(&args.manifest)?,
    };
    check_outputs(args, &input_path)?;
    let spec = args.encode.spec()?;
    let (pipeline, mut input) = super::prepare(&args.manifest, args.input.as_deref(), args.workers, out)?;
    let workers = pipeline.workers();
    // The input is described now and moved into the run (no second copy of a long file).
    let input_doc = input_json(&input);
    let audio = std::mem::replace(&mut input.audio, crate::data::AudioBuffer::mono_f32(Vec::new(), 1));
    let result = pipeline.run(RunInput::All(Payload::Audio(audio)));
    let metrics = pipeline.metrics_json().map_err(CliError::from_run)?;
    let outputs = match result {
        Ok(o) => o.outputs,
        Err(e) => {
            // What did run is still worth seeing next to the error.
            let _ = writeln!(out, "\ntiming (failed run)");
            out.push_str(&timing_table(&metrics));
            return Err(CliError::from_run(e));
        }
    };

    let _ = writeln!(out, "\noutputs");
    if outputs.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for (id, p) in &outputs {
        describe_payload(out, id, p, 2);
    }
    let _ = writeln!(out, "\ntiming (1 run, {workers} worker{})", if workers == 1 { "" } else { "s" });
    out.push_str(&timing_table(&metrics));
    if args.metrics {
        let _ = writeln!(out, "\nmetrics");
        out.push_str(&percentile_table(&metrics, false));
    }

    if let Some(path) = &args.output {
        write_first_audio(path, &outputs, spec, out)?;
    }
    if let Some(path) = &args.json {
        let doc = run_json(input_doc, &outputs, metrics.clone());
        super::write_json(path, &doc, out)?;
    }
    super::write_prometheus(args.prometheus.as_ref(), &metrics, out)
}

/// The `--json` document: `{"input": {...}, "outputs": {node_id: {...}}, "metrics": {...}}`.
pub fn run_json(input: Value, outputs: &[(String, Payload)], metrics: Value) -> Value {
    let outs: serde_json::Map<String, Value> = outputs.iter().map(|(id, p)| (id.clone(), payload_json(p))).collect();
    json!({"input": input, "outputs": outs, "metrics": metrics})
}

/// `--output`: writes the first audio among the outputs (a VAD result's audio counts) as WAV or
/// FLAC (`spec`, else the file's extension).
pub fn write_first_audio(
    path: &std::path::Path,
    outputs: &[(String, Payload)],
    spec: crate::audio_io::OutSpec,
    out: &mut String,
) -> Result<(), CliError> {
    let (name, audio) = first_audio(outputs)
        .ok_or_else(|| CliError::failure(format!("--output {}: no output carries audio", path.display())))?;
    crate::audio_io::write(path, audio, spec).map_err(|e| CliError::failure(super::plain(&e)))?;
    let _ = writeln!(out, "\nwrote {} (output '{name}')", path.display());
    Ok(())
}
