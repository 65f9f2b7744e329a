//! `remotemedia run`: one run of a manifest on an audio file, described for a person (input, every
//! output, time per node), optionally written out as WAV or FLAC, JSON and Prometheus text. With
//! `--stream` the file is decoded and pushed through a streaming session chunk by chunk instead
//! (`stream_file.rs`), in constant memory whatever its length.
//!
//! The pipeline runs twice unless `--once`: a first run pays one-time costs (page faults in
//! fresh buffers, FFT plans, resampler set-up) that a batch pays once per worker, so its node
//! times alone would point at the wrong bottleneck. The time table shows both runs side by side;
//! the outputs, `--json` metrics and Prometheus text are the warm run's.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use super::report::{describe_payload, first_audio, input_json, payload_json, percentile_table, timing_table, timing_table_pair};
use super::{parse_workers, CliError, EncodeArgs};
use crate::data::{AudioBuffer, Payload, Samples};
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
    /// Draw the input waveform and, under it, each features output as an image, to this PNG file.
    #[arg(long, value_name = "FILE.png")]
    pub plot: Option<PathBuf>,
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
    /// Run once: no second, warm run (node times then include one-time costs).
    #[arg(long)]
    pub once: bool,
    /// List every speech segment and clip (default: the first 20 of each output).
    #[arg(long)]
    pub all: bool,
}

/// Refuses, before anything is read or run, output paths that are the input or each other.
pub fn check_outputs(args: &RunArgs, input: &std::path::Path) -> Result<(), CliError> {
    let prometheus = args.prometheus.clone().flatten();
    let outputs = [
        ("--output", args.output.as_ref()),
        ("--plot", args.plot.as_ref()),
        ("--json", args.json.as_ref()),
        ("--prometheus", prometheus.as_ref()),
    ];
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
    let input_doc = input_json(&input);
    // Memory: without --plot nothing needs the input after a run, so the first run takes the
    // decoded buffer itself (the resampler converts it to f32 in place) and the warm run reads the
    // file again; the decoded audio never exists twice. With --plot the waveform is drawn after
    // the runs, so each run gets a copy.
    let mut moved = if args.plot.is_some() {
        None
    } else {
        let empty = AudioBuffer { samples: Samples::F32(Vec::new().into()), ..input.audio };
        Some(std::mem::replace(&mut input.audio, empty))
    };
    let mut run_once = || {
        let audio = match moved.take() {
            Some(a) => a,
            None if args.plot.is_some() => input.audio.clone(),
            None => crate::audio_io::read(&input.path).map_err(super::input_error)?,
        };
        Ok::<_, CliError>(pipeline.run(RunInput::All(Payload::Audio(audio))))
    };
    let failed = |e, metrics: &Value, out: &mut String| {
        // What did run is still worth seeing next to the error.
        let _ = writeln!(out, "\ntiming (failed run)");
        out.push_str(&timing_table(metrics));
        CliError::from_run(e)
    };
    let first = run_once()?;
    let first_metrics = pipeline.metrics_json().map_err(CliError::from_run)?;
    let (outputs, warm_metrics) = match first {
        Err(e) => return Err(failed(e, &first_metrics, out)),
        Ok(o) if args.once => (o.outputs, None),
        Ok(o) => {
            // The first run's outputs are dropped before the second makes the same again.
            drop(o);
            pipeline.reset_stats().map_err(CliError::from_run)?;
            let warm = run_once()?;
            let metrics = pipeline.metrics_json().map_err(CliError::from_run)?;
            match warm {
                Ok(o) => (o.outputs, Some(metrics)),
                Err(e) => return Err(failed(e, &metrics, out)),
            }
        }
    };
    let metrics = warm_metrics.clone().unwrap_or_else(|| first_metrics.clone());

    let _ = writeln!(out, "\noutputs");
    if outputs.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for (id, p) in &outputs {
        describe_payload(out, id, p, 2, args.all);
    }
    let on = format!("{workers} worker{}", if workers == 1 { "" } else { "s" });
    match &warm_metrics {
        None => {
            let _ = writeln!(out, "\ntiming (1 run, {on})");
            out.push_str(&timing_table(&first_metrics));
        }
        Some(warm) => {
            let _ = writeln!(out, "\ntiming (a first run, then the same again warm; {on})");
            out.push_str(&timing_table_pair(&first_metrics, warm));
            let _ = writeln!(
                out,
                "  the first run includes one-time costs (fresh buffers' page faults, FFT plans, resampler set-up)"
            );
        }
    }
    if args.metrics {
        let _ = writeln!(out, "\nmetrics");
        out.push_str(&percentile_table(&metrics, false));
    }

    if let Some(path) = &args.output {
        write_first_audio(path, &outputs, spec, out)?;
    }
    if let Some(path) = &args.plot {
        plot_features(path, &input, &outputs, out)?;
    }
    if let Some(path) = &args.json {
        let mut doc = run_json(input_doc, &outputs, metrics.clone());
        if warm_metrics.is_some() {
            doc["first_run_metrics"] = first_metrics;
        }
        super::write_json(path, &doc, out)?;
    }
    super::write_prometheus(args.prometheus.as_ref(), &metrics, out)
}

/// The `--json` document: `{"input": {...}, "outputs": {node_id: {...}}, "metrics": {...}}`.
pub fn run_json(input: Value, outputs: &[(String, Payload)], metrics: Value) -> Value {
    let outs: serde_json::Map<String, Value> = outputs.iter().map(|(id, p)| (id.clone(), payload_json(p))).collect();
    json!({"input": input, "outputs": outs, "metrics": metrics})
}

/// `--plot`: the input waveform; under it every audio output that differs from the input (before
/// and after: waveforms and average spectra), then every features output (maps searched too).
fn plot_features(path: &std::path::Path, input: &super::InputFile, outputs: &[(String, Payload)], out: &mut String) -> Result<(), CliError> {
    fn find<'a>(
        name: String,
        p: &'a Payload,
        features: &mut Vec<(String, &'a crate::data::Features)>,
        audio: &mut Vec<(String, &'a crate::data::AudioBuffer)>,
    ) {
        match p {
            Payload::Features(f) => features.push((name, f)),
            Payload::Map(m) => m.iter().for_each(|(k, v)| find(format!("{name}.{k}"), v, features, audio)),
            other => {
                if let Some(a) = other.audio() {
                    audio.push((name, a));
                }
            }
        }
    }
    let (mut features, mut audio) = (Vec::new(), Vec::new());
    outputs.iter().for_each(|(id, p)| find(id.clone(), p, &mut features, &mut audio));
    // Only outputs a node changed: an unchanged pass-through (a measurement) adds nothing to see.
    audio.retain(|(_, a)| **a != input.audio);
    let title = format!("{}: before and after, features", input.path.display());
    super::plot::features_plot(path, &title, &input.audio, &audio, &features).map_err(CliError::failure)?;
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let _ = writeln!(
        out,
        "\nwrote {} (input waveform, {} changed audio output{} with spectra, {} features output{})",
        path.display(),
        audio.len(),
        plural(audio.len()),
        features.len(),
        plural(features.len())
    );
    Ok(())
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
