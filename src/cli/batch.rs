//! `remotemedia batch`: runs a manifest over every WAV file in a directory, spread over the timely
//! workers (and, with `--processes`, over a process group), writes each item's outputs and a
//! per-item report, shows a progress bar and ends with a summary.
//!
//! Items are submitted in chunks (one epoch each, a few chunks in flight) so that the progress bar
//! moves, the WAV files are read while earlier chunks run, and memory stays bounded. Every input
//! file gets one entry in `report.json`, in sorted file-name order, whatever happened to it: a file
//! that cannot be read, a node that fails, or an output that cannot be written is that item's
//! error, and the other items still complete.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{json, Value};

use super::{parse_workers, CliError};
use crate::data::Payload;
use crate::error::{Error, NodeError};
use crate::runtime::cluster::ClusterConfig;
use crate::runtime::{ItemResult, Pipeline, RunInput, WorkerPool};

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The pipeline manifest (.json, .yaml or .yml).
    pub manifest: PathBuf,
    /// Directory whose *.wav files are the items (sorted by name; subdirectories are not read).
    pub input_dir: PathBuf,
    /// Directory for the outputs (`NAME.NODE.wav`, `NAME.NODE.json`, clips in `NODE/NAME.0001.wav` with
    /// `NODE/metadata.jsonl`) and `report.json`; created if missing.
    #[arg(long, short, value_name = "DIR")]
    pub out: PathBuf,
    /// Timely workers per process (overrides the manifest's config.workers), 1 to 256.
    #[arg(long, short, value_name = "N", value_parser = parse_workers)]
    pub workers: Option<usize>,
    /// Items per epoch (0: four per worker in the whole group).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub chunk: usize,
    /// Do not draw the progress bar (it is never drawn when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Cluster mode: how many processes share the batch (each started with the same arguments
    /// and its own --process-index; see docs/distributed.md).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub processes: u64,
    /// Cluster mode: this process's index, 0 to N-1. Process 0 reads the inputs and writes the outputs.
    #[arg(long, value_name = "I", default_value_t = 0)]
    pub process_index: usize,
    /// Cluster mode: file listing every process's host:port, one per line, in process order.
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
    /// Cluster mode: seconds to wait for every peer to connect before failing, e.g. 10 or 0.5.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub connect_timeout: Duration,
}

pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("expected a number of seconds above 0 (at most 86400), found '{s}'")),
    }
}

/// One item's entry in the report.
struct ItemReport {
    input: String,
    status: Result<Vec<Value>, Value>,
    duration_ms: f64,
}

pub fn run(args: &BatchArgs, out: &mut String) -> Result<(), CliError> {
    let mut graph = super::load_graph(&args.manifest)?;
    if let Some(w) = args.workers {
        graph.config.workers = w;
    }
    let workers = graph.config.workers;
    let processes = args.processes as usize;
    let pool = if processes > 1 || args.hosts.is_some() {
        let hosts = args.hosts.as_deref().ok_or_else(|| CliError::usage("--processes above 1 needs --hosts FILE"))?;
        let config = ClusterConfig::from_hosts_file(hosts, processes, args.process_index, workers, args.connect_timeout)
            .map_err(|e| CliError::usage(e.to_string()))?;
        WorkerPool::cluster(&config).map_err(CliError::from_run)?
    } else {
        if args.process_index != 0 {
            return Err(CliError::usage("--process-index needs --processes and --hosts"));
        }
        WorkerPool::new(workers).map_err(CliError::from_run)?
    };
    let pipeline = pool.install(graph).map_err(|e| CliError::failure(format!("cannot install the pipeline: {e}")))?;
    if pool.process() != 0 {
        // This process only lends its workers: process 0 feeds the items and collects them. The
        // dataflow ends when process 0 closes it; dropping the pool waits for that.
        drop(pipeline);
        drop(pool);
        return Ok(());
    }
    let files = list_inputs(&args.input_dir)?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| CliError::failure(format!("cannot create output directory '{}': {e}", args.out.display())))?;
    let total_workers = workers * processes;
    let chunk = if args.chunk == 0 { 4 * total_workers } else { args.chunk };
    let bar = progress_bar(files.len() as u64, args.no_progress);
    let started = Instant::now();
    let reports = run_items(&pipeline, &files, chunk, &args.out, &bar);
    bar.finish_and_clear();
    let wall = started.elapsed();
    drop(pipeline);

    let failed: Vec<&ItemReport> = reports.iter().filter(|r| r.status.is_err()).collect();
    let ok = reports.len() - failed.len();
    let rate = reports.len() as f64 / wall.as_secs_f64().max(1e-9);
    let doc = json!({
        "manifest": args.manifest.display().to_string(),
        "input_dir": args.input_dir.display().to_string(),
        "out_dir": args.out.display().to_string(),
        "workers": workers,
        "processes": processes,
        "chunk": chunk,
        "items": reports.len(),
        "ok": ok,
        "failed": failed.len(),
        "wall_s": wall.as_secs_f64(),
        "items_per_s": rate,
        "results": reports.iter().map(item_json).collect::<Vec<_>>(),
    });
    let report_path = args.out.join("report.json");
    let _ = writeln!(
        out,
        "batch: {} items, {ok} ok, {} failed in {:.3} s ({rate:.1} items/s; {} per process x {})",
        reports.len(),
        failed.len(),
        wall.as_secs_f64(),
        super::report::plural(workers, "worker"),
        if processes == 1 { "1 process".to_string() } else { format!("{processes} processes") },
    );
    for r in &failed {
        let message = r.status.as_ref().err().and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or("");
        let _ = writeln!(out, "  failed: {}: {message}", r.input);
    }
    super::outputs::write_clip_manifests(&args.out, reports.iter().filter_map(|r| r.status.as_ref().ok()), out)?;
    super::write_json(&report_path, &doc, out)?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::failure(format!(
            "{} of {} items failed; see {}",
            failed.len(),
            reports.len(),
            report_path.display()
        )))
    }
}

/// The directory's `*.wav` files (any case), sorted by name.
pub fn list_inputs(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    if !dir.exists() {
        return Err(CliError::usage(format!("input directory '{}' not found", dir.display())));
    }
    if !dir.is_dir() {
        return Err(CliError::usage(format!("input '{}' is not a directory", dir.display())));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| CliError::usage(format!("cannot list '{}': {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !p.is_dir() && p.extension().and_then(|x| x.to_str()).is_some_and(|x| x.eq_ignore_ascii_case("wav")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(CliError::usage(format!("no WAV files (*.wav) in '{}'", dir.display())));
    }
    Ok(files)
}

fn progress_bar(len: u64, hidden: bool) -> indicatif::ProgressBar {
    if hidden {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} items  {per_sec}  {elapsed_precise} (eta {eta})")
    {
        bar.set_style(style);
    }
    bar
}

/// A chunk submitted and not yet completed.
struct InFlight {
    submitted: Instant,
}

/// Runs every file as an item, `chunk` items per epoch with up to four chunks in flight; returns
/// one report per file, in input order.
fn run_items(pipeline: &Pipeline, files: &[PathBuf], chunk: usize, out_dir: &Path, bar: &indicatif::ProgressBar) -> Vec<ItemReport> {
    let mut reports: Vec<Option<ItemReport>> = (0..files.len()).map(|_| None).collect();
    let (tx, rx) = crossbeam_channel::unbounded::<(usize, Result<Vec<ItemResult>, Error>)>();
    let mut in_flight: VecDeque<(usize, InFlight, Vec<usize>)> = VecDeque::new();
    let mut next = 0usize;
    const WINDOW: usize = 4;
    let mut chunk_id = 0usize;
    loop {
        while in_flight.len() < WINDOW && next < files.len() {
            let end = (next + chunk).min(files.len());
            // Unreadable files are items too: their error is recorded now, the rest are submitted.
            let mut inputs = Vec::new();
            let mut indices = Vec::new();
            for i in next..end {
                match crate::audio_io::read_wav(&files[i]) {
                    Ok(a) => {
                        inputs.push(RunInput::All(Payload::Audio(a)));
                        indices.push(i);
                    }
                    Err(e) => {
                        reports[i] = Some(ItemReport { input: name_of(&files[i]), status: Err(read_error(&e)), duration_ms: 0.0 });
                        bar.inc(1);
                    }
                }
            }
            next = end;
            if indices.is_empty() {
                continue;
            }
            let id = chunk_id;
            chunk_id += 1;
            let reply_tx = tx.clone();
            let submitted = Instant::now();
            match pipeline.submit(inputs, Box::new(move |r| {
                let _ = reply_tx.send((id, r));
            })) {
                Ok(()) => in_flight.push_back((id, InFlight { submitted }, indices)),
                Err(e) => {
                    for i in indices {
                        reports[i] = Some(ItemReport { input: name_of(&files[i]), status: Err(engine_error(&e)), duration_ms: 0.0 });
                        bar.inc(1);
                    }
                }
            }
        }
        if in_flight.is_empty() {
            break;
        }
        let (id, result) = match pipeline.pool.wait(&rx) {
            Ok(v) => v,
            Err(e) => {
                // The pool died: every item still in flight gets its error; nothing is dropped.
                for (_, _, indices) in in_flight.drain(..) {
                    for i in indices {
                        reports[i] = Some(ItemReport { input: name_of(&files[i]), status: Err(engine_error(&e)), duration_ms: 0.0 });
                        bar.inc(1);
                    }
                }
                continue;
            }
        };
        let Some(pos) = in_flight.iter().position(|(c, _, _)| *c == id) else { continue };
        let Some((_, flight, indices)) = in_flight.remove(pos) else { continue };
        let duration_ms = flight.submitted.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(results) => {
                for (i, r) in indices.iter().copied().zip(results) {
                    let status = match r {
                        Ok(o) => super::outputs::write_item(&files[i], out_dir, &o.outputs),
                        Err(e) => Err(node_error(&e)),
                    };
                    reports[i] = Some(ItemReport { input: name_of(&files[i]), status, duration_ms });
                    bar.inc(1);
                }
            }
            Err(e) => {
                for i in indices {
                    reports[i] = Some(ItemReport { input: name_of(&files[i]), status: Err(engine_error(&e)), duration_ms });
                    bar.inc(1);
                }
            }
        }
    }
    // Every slot is filled above; a gap would be a bug, reported rather than dropped.
    reports
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| ItemReport {
                input: name_of(&files[i]),
                status: Err(json!({"stage": "engine", "message": "no result was recorded for this item"})),
                duration_ms: 0.0,
            })
        })
        .collect()
}

fn name_of(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
}

fn read_error(e: &Error) -> Value {
    json!({"stage": "read", "message": e.to_string()})
}

fn engine_error(e: &Error) -> Value {
    json!({"stage": "engine", "message": e.to_string()})
}

fn node_error(e: &NodeError) -> Value {
    // The run and item numbers depend on the chunking; the report is already per input file.
    let mut e = e.clone();
    e.run = None;
    e.item = None;
    json!({
        "stage": "run",
        "message": e.to_string(),
        "node_id": e.node_id,
        "node_type": e.node_type,
        "kind": format!("{:?}", e.kind).to_lowercase(),
        "operation": e.operation,
    })
}

fn item_json(r: &ItemReport) -> Value {
    match &r.status {
        Ok(outputs) => json!({"input": r.input, "status": "ok", "outputs": outputs, "duration_ms": r.duration_ms}),
        Err(error) => json!({"input": r.input, "status": "error", "error": error, "outputs": [], "duration_ms": r.duration_ms}),
    }
}
