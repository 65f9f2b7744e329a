//! `remotemedia bench`: runs a manifest many times on one input and reports per-node and
//! end-to-end latency percentiles; optionally plots them, and writes JSON or Prometheus text.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde_json::json;

use super::report::{input_json, percentile_table};
use super::table::fmt_us;
use super::{parse_workers, CliError};
use crate::data::Payload;
use crate::runtime::RunInput;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The pipeline manifest (.json, .yaml or .yml).
    pub manifest: PathBuf,
    /// Audio file to run on, any readable format (default: the bundled dataflows/sample_speech.wav).
    #[arg(long, short, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Measured runs, 1 to 10 000 000.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub iterations: u64,
    /// Runs before measuring (not counted), to warm caches and allocators.
    #[arg(long, value_name = "K", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub warmup: u64,
    /// Draw the latency distribution of every node and of whole runs to this PNG file.
    #[arg(long, value_name = "FILE.png")]
    pub plot: Option<PathBuf>,
    /// Write the input, the settings and the metrics document to this JSON file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also print the metrics in Prometheus text format (to stdout, or to FILE with --prometheus=FILE).
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true)]
    pub prometheus: Option<Option<PathBuf>>,
    /// Timely workers (overrides the manifest's config.workers), 1 to 256.
    #[arg(long, short, value_name = "N", value_parser = parse_workers)]
    pub workers: Option<usize>,
}

pub fn run(args: &BenchArgs, out: &mut String) -> Result<(), CliError> {
    let (pipeline, input) = super::prepare(&args.manifest, args.input.as_deref(), args.workers, out)?;
    let payload = Payload::Audio(input.audio.clone());
    let run_once = |i: u64, phase: &str| -> Result<(), CliError> {
        // The clone happens before submission, outside the measured latency.
        pipeline
            .run(RunInput::All(payload.clone()))
            .map(|_| ())
            .map_err(|e| CliError::failure(format!("{phase} run {} of the benchmark failed: {e}", i + 1)))
    };
    for i in 0..args.warmup {
        run_once(i, "warm-up")?;
    }
    pipeline.reset_stats().map_err(CliError::from_run)?;
    let started = Instant::now();
    for i in 0..args.iterations {
        run_once(i, "measured")?;
    }
    let wall = started.elapsed();
    let metrics = pipeline.metrics_json().map_err(CliError::from_run)?;

    let per_run_us = wall.as_secs_f64() * 1e6 / args.iterations as f64;
    let audio_s = input.audio.duration_s();
    let _ = writeln!(
        out,
        "\n{} runs after {} warm-up, {} wall time, {} per run{}",
        args.iterations,
        args.warmup,
        fmt_us(wall.as_secs_f64() * 1e6),
        fmt_us(per_run_us),
        if audio_s > 0.0 && per_run_us > 0.0 {
            format!(" ({:.0}× real time)", audio_s * 1e6 / per_run_us)
        } else {
            String::new()
        }
    );
    let _ = writeln!(out, "\nlatency per node and end to end (µs)");
    out.push_str(&percentile_table(&metrics, true));

    if let Some(path) = &args.plot {
        let mut series: Vec<(String, hdrhistogram::Histogram<u64>)> = pipeline
            .node_stats()
            .map_err(CliError::from_run)?
            .into_iter()
            .zip(&pipeline.graph().nodes)
            .map(|((id, s), n)| (format!("{id} ({})", n.node_type.name), s.histogram))
            .collect();
        series.push((super::plot::END_TO_END.into(), pipeline.run_latency().map_err(CliError::from_run)?));
        let title = format!(
            "{}: latency over {} runs",
            args.manifest.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
            args.iterations
        );
        super::plot::latency_plot(path, &title, &series).map_err(CliError::failure)?;
        let _ = writeln!(out, "\nwrote {}", path.display());
    }
    if let Some(path) = &args.json {
        let doc = json!({
            "input": input_json(&input),
            "iterations": args.iterations,
            "warmup": args.warmup,
            "wall_time_us": wall.as_secs_f64() * 1e6,
            "metrics": metrics,
        });
        super::write_json(path, &doc, out)?;
    }
    super::write_prometheus(args.prometheus.as_ref(), &metrics, out)
}
