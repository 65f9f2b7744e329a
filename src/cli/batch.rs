//! `remotemedia batch`: runs a manifest over every audio file in a directory, spread over the timely
//! workers (and, with `--processes`, over a process group), writes each item's outputs and a
//! per-item report, shows a progress bar and ends with a summary.
//!
//! The engine's batch scheduler (runtime/batch.rs) runs the items: each file is read and decoded
//! on the worker its item is placed on, and its outputs are encoded and written by the worker
//! that completes it, so file I/O runs in parallel like the nodes do, in a process group too:
//! every process lists the inputs itself, only an item's index goes out to the process that
//! runs it and only its report entry comes back to process 0, which writes `report.json`. Every output's name is planned and checked for collisions
//! (output_plan.rs) before anything is written, and each file is written under a temporary name
//! and renamed (`file_safety::write_atomic`, through cli/outputs.rs), so an interrupted batch
//! never leaves a half-written file. Every input file gets one entry in
//! `report.json`, in sorted file-name order, whatever happened to it: a file that cannot be read,
//! a node that fails, or an output that cannot be written is that item's error, and the other
//! items still complete. Ctrl-C stops handing items over: those in flight finish, the rest are
//! listed as cancelled, and the command exits with code 130.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{json, Value};

use super::interrupt::Interrupt;
use super::output_plan;
use super::outputs::{write_clip_manifests, write_item};
use super::{parse_workers, CliError, EncodeArgs};
use crate::audio_io::OutSpec;
use crate::error::NodeError;
use crate::runtime::batch::{self, BatchDriver, BatchItem, BatchOptions};
use crate::runtime::cluster::ClusterConfig;
use crate::runtime::{ItemInput, ItemResult, KeyedIo, Pipeline, RunInput, RunOutput, WorkerPool, CANCEL_OPERATION, LOAD_OPERATION};

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The pipeline manifest (.json, .yaml or .yml).
    pub manifest: PathBuf,
    /// Directory whose audio files are the items (any readable format, extensions matched
    /// ignoring case; sorted by name; subdirectories are not read).
    pub input_dir: PathBuf,
    /// Directory for the outputs (`NAME.NODE.wav` or `.flac`, `NAME.NODE.npy`, `NAME.NODE.json`, clips
    /// in `NODE/NAME.0001.wav` with `NODE/metadata.jsonl`) and `report.json`; created if missing;
    /// not the input directory.
    #[arg(long, short, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub encode: EncodeArgs,
    /// Timely workers per process (overrides the manifest's config.workers), 1 to 256.
    #[arg(long, short, value_name = "N", value_parser = parse_workers)]
    pub workers: Option<usize>,
    /// Items per epoch at least (0: one per worker in the whole group; parts also carry about
    /// 8 s of audio each, W/2 times that on W > 2 workers).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub chunk: usize,
    /// Do not draw the progress bar (it is never drawn when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Cluster mode: how many processes share the batch (each started with the same arguments
    /// and its own --process-index; see docs/distributed.md).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub processes: u64,
    /// Cluster mode: this process's index, 0 to N-1. Every process reads and writes the items its
    /// workers run (it needs the input and output directories at the same paths); process 0 hands
    /// the items out and writes report.json.
    #[arg(long, value_name = "I", default_value_t = 0)]
    pub process_index: usize,
    /// Cluster mode: file listing every process's host:port, one per line, in process order.
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
    /// Cluster mode: seconds to wait for every peer to connect before failing, e.g. 10 or 0.5.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub connect_timeout: Duration,
    /// Cluster mode: seconds a connected peer may stay silent (frozen, killed, unreachable)
    /// before this process stops with an error naming it (exit code 1), e.g. 10 or 0.5.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub peer_timeout: Duration,
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
    status: Status,
    duration_ms: f64,
}

enum Status {
    Ok(Vec<Value>),
    Failed(Value),
    Cancelled,
}

pub fn run(args: &BatchArgs, out: &mut String) -> Result<(), CliError> {
    let mut graph = super::load_graph(&args.manifest)?;
    if let Some(w) = args.workers {
        graph.config.workers = w;
    }
    let workers = graph.config.workers;
    let output_ids: Vec<String> = graph.output_nodes().into_iter().map(|i| graph.nodes[i].id.clone()).collect();
    let processes = args.processes as usize;
    let pool = if processes > 1 || args.hosts.is_some() {
        let hosts = args.hosts.as_deref().ok_or_else(|| CliError::usage("--processes above 1 needs --hosts FILE"))?;
        let mut config = ClusterConfig::from_hosts_file(hosts, processes, args.process_index, workers, args.connect_timeout)
            .map_err(|e| CliError::usage(e.to_string()))?;
        config.peer_timeout = args.peer_timeout;
        WorkerPool::cluster(&config).map_err(CliError::from_run)?
    } else {
        if args.process_index != 0 {
            return Err(CliError::usage("--process-index needs --processes and --hosts"));
        }
        WorkerPool::new(workers).map_err(CliError::from_run)?
    };
    // A terminal's Ctrl-C reaches every process of a group started by hand: process 0 stops the
    // batch cleanly and the others end with the dataflow, so a first SIGINT/SIGTERM in a process
    // other than 0 is held from the moment the group is connected (dying would cost process 0
    // its report); a second one stops it at once. (Held only after listing the inputs, the signal
    // could land while this process still lists them and process 0 already runs items.)
    let held = (pool.process() != 0).then(Interrupt::catch);
    // Every process lists the inputs and plans the outputs itself: each reads and writes the
    // items its workers run (only the item's index travels out, and its report back).
    let files = Arc::new(list_inputs(&args.input_dir)?);
    output_plan::check_folders(&args.input_dir, &args.out)?;
    output_plan::check_plan(&files, &output_ids)?;
    let spec = args.encode.spec()?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| CliError::failure(format!("cannot create output directory '{}': {e}", args.out.display())))?;
    let io = ItemIo::new(Arc::clone(&files), &args.out, spec);
    let pipeline = pool.install_keyed(graph, io.keyed()).map_err(|e| CliError::failure(format!("cannot install the pipeline: {e}")))?;
    if pool.process() != 0 {
        // This process lends its workers, and reads and writes the items they run: process 0
        // hands the items out and collects their reports. The dataflow ends when process 0
        // closes it; dropping the pool waits for that (with the signal still held, above).
        drop(pipeline);
        drop(pool);
        drop(held);
        return Ok(());
    }
    let total_workers = workers * processes;
    let min_items = if args.chunk == 0 { total_workers } else { args.chunk };
    let bar = progress_bar(files.len() as u64, args.no_progress);
    let started = Instant::now();
    let interrupt = Interrupt::catch();
    let reports = run_items(&pipeline, &io, min_items, &bar, &interrupt)?;
    drop(interrupt);
    bar.finish_and_clear();
    let wall = started.elapsed();
    drop(pipeline);

    let failed: Vec<&ItemReport> = reports.iter().filter(|r| matches!(r.status, Status::Failed(_))).collect();
    let cancelled = reports.iter().filter(|r| matches!(r.status, Status::Cancelled)).count();
    let ok = reports.len() - failed.len() - cancelled;
    let rate = (reports.len() - cancelled) as f64 / wall.as_secs_f64().max(1e-9);
    let doc = json!({
        "manifest": args.manifest.display().to_string(),
        "input_dir": args.input_dir.display().to_string(),
        "out_dir": args.out.display().to_string(),
        "workers": workers,
        "processes": processes,
        "chunk": min_items,
        "items": reports.len(),
        "ok": ok,
        "failed": failed.len(),
        "cancelled": cancelled,
        "wall_s": wall.as_secs_f64(),
        "items_per_s": rate,
        "results": reports.iter().map(item_json).collect::<Vec<_>>(),
    });
    let report_path = args.out.join("report.json");
    let cancelled_note = if cancelled > 0 { format!(", {cancelled} cancelled") } else { String::new() };
    let _ = writeln!(
        out,
        "batch: {} items, {ok} ok, {} failed{cancelled_note} in {:.3} s ({rate:.1} items/s; {} per process x {})",
        reports.len(),
        failed.len(),
        wall.as_secs_f64(),
        super::report::plural(workers, "worker"),
        if processes == 1 { "1 process".to_string() } else { format!("{processes} processes") },
    );
    for r in &failed {
        let message = match &r.status {
            Status::Failed(e) => e.get("message").and_then(Value::as_str).unwrap_or(""),
            _ => "",
        };
        let _ = writeln!(out, "  failed: {}: {message}", r.input);
    }
    let written = reports.iter().filter_map(|r| match &r.status {
        Status::Ok(outputs) => Some(outputs),
        _ => None,
    });
    write_clip_manifests(&args.out, written, out)?;
    super::write_json(&report_path, &doc, out)?;
    if cancelled > 0 {
        return Err(CliError {
            code: 130,
            message: format!("interrupted: {cancelled} of {} items were not run; see {}", reports.len(), report_path.display()),
        });
    }
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

/// The directory's audio files (by extension, any case: see [`crate::audio_io::is_audio_name`]),
/// sorted by name. Special files with such names (a FIFO called `x.wav`) are listed too: reading
/// refuses them per item, without blocking.
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
        .filter(|p| !p.is_dir() && crate::audio_io::is_audio_name(p))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(CliError::usage(format!(
            "no audio files in '{}' (looked for {})",
            dir.display(),
            crate::audio_io::AUDIO_EXTENSIONS.iter().map(|e| format!("*.{e}")).collect::<Vec<_>>().join(", ")
        )));
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

/// What every process of the batch needs to read and finish any item by its index: the sorted
/// input files (each process lists them itself), where the outputs go, and when each item's
/// reading started (in µs since `epoch`, in the process that read it: its duration runs from
/// there to its outputs written, both on the same worker).
struct ItemIo {
    files: Arc<Vec<PathBuf>>,
    out_dir: PathBuf,
    spec: OutSpec,
    starts: Arc<Vec<AtomicU64>>,
    epoch: Instant,
}

impl ItemIo {
    fn new(files: Arc<Vec<PathBuf>>, out_dir: &Path, spec: OutSpec) -> Arc<ItemIo> {
        let starts = Arc::new((0..files.len()).map(|_| AtomicU64::new(0)).collect());
        Arc::new(ItemIo { files, out_dir: out_dir.to_path_buf(), spec, starts, epoch: Instant::now() })
    }

    /// Reads item `index`'s file (on the worker the item is placed on).
    fn load(&self, index: usize) -> Result<RunInput, String> {
        let Some(path) = self.files.get(index) else {
            return Err(format!(
                "this process lists only {} input files, so it has no item {index}: every process must see the same input folder",
                self.files.len()
            ));
        };
        self.starts[index].store(self.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
        crate::audio_io::read(path).map(RunInput::from).map_err(|e| e.to_string())
    }

    /// On the worker that completed item `index`: its outputs written, or its error described,
    /// and how long it took since its file was read.
    fn finish(&self, index: usize, result: ItemResult) -> ItemReport {
        let status = match result {
            Ok(o) => match write_item(&self.files[index], &self.out_dir, self.spec, &o.outputs) {
                Ok(written) => Status::Ok(written),
                Err(e) => Status::Failed(e),
            },
            Err(e) if e.operation == CANCEL_OPERATION && e.node_id.is_empty() => Status::Cancelled,
            Err(e) if e.operation == LOAD_OPERATION && e.node_id.is_empty() => Status::Failed(json!({"stage": "read", "message": e.message})),
            Err(e) => Status::Failed(node_error(&e)),
        };
        let began = Duration::from_micros(self.starts.get(index).map_or(0, |s| s.load(Ordering::Relaxed)));
        let duration_ms = self.epoch.elapsed().saturating_sub(began).as_secs_f64() * 1000.0;
        ItemReport { input: self.files.get(index).map(|p| name_of(p)).unwrap_or_default(), status, duration_ms }
    }

    /// The runtime's side: items made and finished by key (the item's index) in whichever
    /// process runs them; the finished text is the item's report entry, as JSON.
    fn keyed(self: &Arc<Self>) -> KeyedIo {
        let (load, finish) = (Arc::clone(self), Arc::clone(self));
        KeyedIo {
            load: Arc::new(move |key| load.load(key as usize)),
            finish: Arc::new(move |key, result| item_json(&finish.finish(key as usize, result)).to_string()),
        }
    }

    /// Process 0's side: an item finished in its own process arrives as its report entry's text
    /// (checked to name the same input as here); any other result is finished here.
    fn report(&self, index: usize, result: ItemResult) -> ItemReport {
        let text = match result {
            Ok(RunOutput { finished: Some(text), .. }) => text,
            other => return self.finish(index, other),
        };
        let input = name_of(&self.files[index]);
        let engine = |message: String| ItemReport {
            input: input.clone(),
            status: Status::Failed(json!({"stage": "engine", "message": message})),
            duration_ms: 0.0,
        };
        let Ok(entry) = serde_json::from_str::<Value>(&text) else {
            return engine(format!("the process that ran this item sent an unreadable report: {text}"));
        };
        // An empty name: that process has no file at this index (its read error says so).
        let found = entry["input"].as_str().unwrap_or("");
        if !found.is_empty() && found != input {
            return engine(format!(
                "the process that ran this item found {} at its place in the input folder, not '{input}': every process must see the same input files",
                entry["input"]
            ));
        }
        let status = match entry["status"].as_str() {
            Some("ok") => Status::Ok(entry["outputs"].as_array().cloned().unwrap_or_default()),
            Some("cancelled") => Status::Cancelled,
            _ => Status::Failed(entry["error"].clone()),
        };
        ItemReport { input, status, duration_ms: entry["duration_ms"].as_f64().unwrap_or(0.0) }
    }
}

/// The batch's side of the scheduler: hands out one keyed item per file and keeps the reports.
struct FileBatch<'a> {
    files: &'a [PathBuf],
    reports: Vec<Option<ItemReport>>,
    bar: &'a indicatif::ProgressBar,
    interrupt: &'a Interrupt,
}

impl BatchDriver<ItemReport> for FileBatch<'_> {
    fn next_item(&mut self, index: usize) -> Option<ItemInput> {
        let path = self.files.get(index)?;
        // What the file weighs before it is read: its size, about 2 bytes a sample for 16-bit PCM
        // (a compressed file weighs less than it decodes to; placement only needs an estimate).
        let weight = std::fs::metadata(path).map(|m| m.len() / 2).unwrap_or(1);
        Some(ItemInput::Keyed { weight, key: index as u64 })
    }

    fn deliver(&mut self, index: usize, item: BatchItem<ItemReport>) {
        let input = name_of(&self.files[index]);
        let report = match item {
            BatchItem::Done(done) => done,
            BatchItem::Lost(m) => ItemReport { input, status: Status::Failed(json!({"stage": "engine", "message": m})), duration_ms: 0.0 },
            BatchItem::Cancelled => ItemReport { input, status: Status::Cancelled, duration_ms: 0.0 },
        };
        self.reports[index] = Some(report);
        self.bar.inc(1);
    }

    fn cancelled_from(&mut self, from: usize) {
        for index in from..self.files.len() {
            self.deliver(index, BatchItem::Cancelled);
        }
    }

    fn should_cancel(&mut self) -> bool {
        self.interrupt.pressed()
    }
}

/// Runs every file as an item; returns one report per file, in input order.
fn run_items(
    pipeline: &Pipeline,
    io: &Arc<ItemIo>,
    min_items: usize,
    bar: &indicatif::ProgressBar,
    interrupt: &Interrupt,
) -> Result<Vec<ItemReport>, CliError> {
    let workers = pipeline.workers() * pipeline.pool().processes();
    let options = BatchOptions { min_items_per_worker: min_items.div_ceil(workers.max(1)), ..BatchOptions::default() };
    let files = &io.files;
    // On the worker that settled the item: in one process its outputs are written there; in a
    // process group they already were, where it ran, and its report entry came back.
    let finish = {
        let io = Arc::clone(io);
        Arc::new(move |index: usize, result: ItemResult| io.report(index, result))
    };
    let mut driver = FileBatch { files, reports: (0..files.len()).map(|_| None).collect(), bar, interrupt };
    batch::run(pipeline, &mut driver, finish, &options).map_err(|e| CliError::failure(e.to_string()))?;
    // Every entry is filled above; a gap would be a bug, reported rather than dropped.
    Ok(driver
        .reports
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| ItemReport {
                input: name_of(&files[i]),
                status: Status::Failed(json!({"stage": "engine", "message": "no result was recorded for this item"})),
                duration_ms: 0.0,
            })
        })
        .collect())
}

fn name_of(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
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
        Status::Ok(outputs) => json!({"input": r.input, "status": "ok", "outputs": outputs, "duration_ms": r.duration_ms}),
        Status::Failed(error) => json!({"input": r.input, "status": "error", "error": error, "outputs": [], "duration_ms": r.duration_ms}),
        Status::Cancelled => json!({"input": r.input, "status": "cancelled", "outputs": [], "duration_ms": r.duration_ms}),
    }
}
