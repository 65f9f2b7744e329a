//! The `remotemedia` command line: argument parsing (clap derive), the subcommands (one module
//! each), and the rules every subcommand shares: how manifests and input audio files are loaded,
//! where the bundled sample is found, and which exit code an error gets.
//!
//! Exit codes: 0 success; 2 for usage errors and for anything wrong with what the user pointed us
//! at (unknown flags, a missing or invalid manifest, a missing or non-WAV input file); 1 when the
//! pipeline itself fails (a node error, a node that cannot be constructed, an engine fault) or an
//! output file cannot be written. Nothing here panics on user input.

pub mod batch;
pub mod bench;
pub mod graph;
pub mod info;
pub mod interrupt;
pub mod limits;
pub mod node_types;
pub mod output_plan;
pub mod outputs;
pub mod plot;
pub mod report;
pub mod run;
pub mod schema;
#[cfg(feature = "serve")]
pub mod serve;
pub mod spawn;
pub mod stream;
pub mod stream_file;
pub mod table;

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::data::AudioBuffer;
use crate::error::Error;
use crate::graph::Graph;
use crate::nodes::Registry;

/// File name of the bundled speech sample, used when a command is given no `--input`.
pub const SAMPLE_NAME: &str = "sample_speech.wav";

#[derive(Debug, Parser)]
#[command(
    name = "remotemedia",
    version,
    about = "Run, inspect and benchmark remotemedia pipeline manifests",
    long_about = "Run, inspect and benchmark remotemedia pipeline manifests (JSON or YAML).\n\n\
                  Exit codes: 0 success, 1 the pipeline failed, 2 bad arguments, manifest or input file."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a manifest once on an audio file (the bundled speech sample by default) and describe
    /// every output and how long each node took.
    Run(run::RunArgs),
    /// Push an audio file through a streaming session chunk by chunk (as a live source would) and
    /// report VAD segments as they close, the concatenated outputs and the per-push latency.
    Stream(stream::StreamArgs),
    /// Print the validated pipeline graph as Graphviz DOT (`| dot -Tpng -o graph.png`).
    Graph(graph::GraphArgs),
    /// Run a manifest many times on the same input and report per-node latency percentiles.
    Bench(bench::BenchArgs),
    /// Print every built-in node type (params, ports, outputs) as JSON.
    NodeTypes(node_types::NodeTypesArgs),
    /// Print the engine's limits (manifest size and shape, worker count, values passed between
    /// Python nodes, resampler state) as JSON.
    Limits(limits::LimitsArgs),
    /// Print the engine's facts as one JSON document: manifest and config fields (kind, range,
    /// default), limits, error kinds, versions and every node type (the source of the generated files).
    Schema(schema::SchemaArgs),
    /// Run a manifest over every audio file in a directory, spread over the workers (and, with
    /// --processes, over several processes); writes the outputs and a per-item report.json.
    Batch(batch::BatchArgs),
    /// Start N local processes that run one `batch` together: `spawn -n 2 -- batch M DIR --out OUT`.
    Spawn(spawn::SpawnArgs),
    /// Describe audio files (format, codec, channels, rate, precision, duration), like soxi.
    Info(info::InfoArgs),
    /// Serve pipelines over HTTP and WebSocket: streaming sessions, whole-file runs, health and
    /// Prometheus metrics (see docs/serving.md).
    #[cfg(feature = "serve")]
    Serve(serve::ServeArgs),
}

/// How audio outputs are encoded: `--out-format` and `--out-bits` (run, stream, batch).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EncodeArgs {
    /// Audio output format: wav or flac (default: from --output's extension, else wav).
    #[arg(long, value_name = "FORMAT", value_parser = ["wav", "flac"])]
    pub out_format: Option<String>,
    /// Sample width of audio outputs: 16 or 24 (integer PCM) or 32 (32-bit float, WAV only);
    /// default: WAV keeps the audio's own format, FLAC takes 16 bits for i16 audio and 24 otherwise.
    #[arg(long, value_name = "BITS", value_parser = parse_bits)]
    pub out_bits: Option<u16>,
}

impl EncodeArgs {
    pub fn spec(&self) -> Result<crate::audio_io::OutSpec, CliError> {
        let format = self.out_format.as_deref().and_then(crate::audio_io::OutFormat::parse);
        crate::audio_io::OutSpec::new(format, self.out_bits).map_err(|e| CliError::usage(format!("--out-bits: {}", plain(&e))))
    }
}

fn parse_bits(s: &str) -> Result<u16, String> {
    match s {
        "16" => Ok(16),
        "24" => Ok(24),
        "32" => Ok(32),
        _ => Err(format!("expected {}, found '{s}'", crate::audio_io::BITS_CHOICES)),
    }
}

/// An error's message without the "invalid input: " that `Error::Input` displays.
pub fn plain(e: &Error) -> String {
    match e {
        Error::Input(m) => m.clone(),
        other => other.to_string(),
    }
}

/// A failure to report: a message for stderr and the process exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub message: String,
}

impl CliError {
    /// Bad arguments, manifest or input file: exit code 2.
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError { code: 2, message: message.into() }
    }

    /// The pipeline failed or an output could not be written: exit code 1.
    pub fn failure(message: impl Into<String>) -> CliError {
        CliError { code: 1, message: message.into() }
    }

    /// The same error with `what` (the chunk, the step) in front of its message.
    pub fn with_prefix(self, what: &str) -> CliError {
        CliError { code: self.code, message: format!("{what}: {}", self.message) }
    }

    /// An engine error met while running: manifest and input problems stay usage errors.
    pub fn from_run(e: Error) -> CliError {
        match e {
            Error::Manifest(_) => CliError::usage(e.to_string()),
            other => CliError::failure(other.to_string()),
        }
    }
}

/// Parses `args` (program name first), runs the subcommand, prints its output to stdout and any
/// error to stderr, and returns the exit code.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout and errors (with usage) to stderr.
            let _ = e.print();
            if !e.use_stderr() {
                return 0;
            }
            if let Some(tip) = equals_tip(&args) {
                eprintln!("\n{tip}");
            }
            return 2;
        }
    };
    let mut out = String::new();
    let result = execute(cli.command, &mut out);
    // Whatever was produced before a failure is still shown, then the error.
    print_stdout(&out);
    match result {
        Ok(()) => 0,
        Err(e) => {
            // Not eprintln!: it panics when stderr is a closed pipe, and the exit code would be
            // 101 instead of the error's own.
            let _ = writeln!(std::io::stderr().lock(), "error: {}", e.message);
            e.code
        }
    }
}

/// Runs one subcommand, appending what it prints to `out`.
pub fn execute(command: Command, out: &mut String) -> Result<(), CliError> {
    match command {
        Command::Run(a) => run::run(&a, out),
        Command::Stream(a) => stream::run(&a, out),
        Command::Graph(a) => graph::run(&a, out),
        Command::Bench(a) => bench::run(&a, out),
        Command::NodeTypes(a) => node_types::run(&a, out),
        Command::Limits(a) => limits::run(&a, out),
        Command::Schema(a) => schema::run(&a, out),
        Command::Batch(a) => batch::run(&a, out),
        Command::Spawn(a) => spawn::run(&a, out),
        Command::Info(a) => info::run(&a, out),
        #[cfg(feature = "serve")]
        Command::Serve(a) => serve::run(&a, out),
    }
}

/// Appends `value` as pretty JSON and a newline (`node-types`, `limits`, `schema`).
pub fn push_json(out: &mut String, value: &serde_json::Value, what: &str) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::failure(format!("cannot encode {what}: {e}")))?;
    out.push_str(&text);
    out.push('\n');
    Ok(())
}

/// Writes to stdout, ignoring a closed pipe (`remotemedia node-types | head`) instead of panicking
/// as `print!` would.
fn print_stdout(text: &str) {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let _ = lock.write_all(text.as_bytes());
    let _ = lock.flush();
}

/// A hint for a failed parse where an option that takes its value only after `=`
/// (`--prometheus=FILE`) was given one after a space: clap then reports the value as an
/// unexpected argument, which does not say what to do.
pub fn equals_tip(args: &[OsString]) -> Option<String> {
    use clap::CommandFactory;
    let command = Cli::command();
    let mut names: Vec<String> = Vec::new();
    for sub in command.get_subcommands() {
        for arg in sub.get_arguments().filter(|a| a.is_require_equals_set()) {
            if let Some(long) = arg.get_long() {
                names.push(format!("--{long}"));
            }
        }
    }
    args.windows(2).find_map(|w| {
        let (flag, value) = (w[0].to_str()?, w[1].to_str()?);
        (names.iter().any(|n| n == flag) && !value.starts_with('-'))
            .then(|| format!("tip: {flag} takes its value after '=': {flag}={value} (a bare {flag} prints to stdout)"))
    })
}

/// Audio formats by their first bytes (WAV, FLAC, Ogg, MP3 with an ID3 tag) or file extension.
/// Only a regular file is looked at: opening a FIFO would block (`read_file` refuses the others).
fn looks_like_audio(path: &Path) -> bool {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = [0u8; 12];
    let n = std::fs::File::open(path).and_then(|mut f| std::io::Read::read(&mut f, &mut head)).unwrap_or(0);
    let head = &head[..n];
    let magic = (head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WAVE")
        || head.starts_with(b"fLaC")
        || head.starts_with(b"OggS")
        || head.starts_with(b"ID3");
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    magic || ["wav", "wave", "flac", "ogg", "opus", "mp3", "m4a", "aac", "aif", "aiff"].contains(&ext.as_str())
}

/// Reads and validates a manifest with the built-in node types, listing every problem on failure.
pub fn load_graph(path: &Path) -> Result<Graph, CliError> {
    // Not `exists()`: a symlink loop or an unreadable directory is not "not found".
    if let Err(e) = std::fs::metadata(path) {
        if e.kind() == std::io::ErrorKind::NotFound {
            return Err(CliError::usage(format!("manifest '{}' not found", path.display())));
        }
    }
    if looks_like_audio(path) {
        return Err(CliError::usage(format!(
            "manifest '{0}': this looks like an audio file: pass it with --input (remotemedia run MANIFEST --input {0}); \
             the first argument is the pipeline manifest (.yaml or .json)",
            path.display()
        )));
    }
    let tree = crate::manifest::read_file(path).map_err(|e| manifest_error(path, e))?;
    crate::manifest::validate(&tree, &Registry::builtin()).map_err(|e| manifest_error(path, Error::Manifest(e)))
}

fn manifest_error(path: &Path, e: Error) -> CliError {
    match e {
        // "invalid manifest (2 problems)" followed by one line per problem.
        Error::Manifest(m) => CliError::usage(format!("{}: {m}", path.display())),
        other => CliError::usage(other.to_string()),
    }
}

/// Where an input comes from, for reports.
#[derive(Clone, Debug)]
pub struct InputFile {
    pub path: PathBuf,
    /// True when no `--input` was given and the bundled sample was used.
    pub bundled: bool,
    pub audio: AudioBuffer,
}

/// Reads `--input`, or the bundled sample when it is absent.
/// What `run` and `bench` share: the manifest validated with metrics on (and the workers
/// override), the input read, a header describing both written to `out`, and the pipeline
/// installed on the shared pool.
pub fn prepare(
    manifest: &Path,
    input: Option<&Path>,
    workers: Option<usize>,
    out: &mut String,
) -> Result<(crate::runtime::Pipeline, InputFile), CliError> {
    use std::fmt::Write as _;
    let mut graph = load_graph(manifest)?;
    let input = load_input(input, manifest)?;
    // Always measured: both commands report each node's time.
    graph.config.enable_metrics = true;
    if let Some(w) = workers {
        graph.config.workers = w;
    }
    let workers = graph.config.workers;
    let _ = writeln!(
        out,
        "manifest {} ({}, {}, {})",
        manifest.display(),
        report::plural(graph.nodes.len(), "node"),
        report::plural(graph.edges.len(), "edge"),
        report::plural(workers, "worker")
    );
    out.push_str(&report::describe_input(&input));
    let pool = crate::runtime::WorkerPool::shared(workers).map_err(CliError::from_run)?;
    let pipeline = pool.install(graph).map_err(|e| CliError::failure(format!("cannot install the pipeline: {e}")))?;
    Ok((pipeline, input))
}

pub fn load_input(input: Option<&Path>, manifest: &Path) -> Result<InputFile, CliError> {
    let (path, bundled) = match input {
        Some(p) => (p.to_path_buf(), false),
        None => (find_sample(manifest)?, true),
    };
    let audio = crate::audio_io::read(&path).map_err(input_error)?;
    Ok(InputFile { path, bundled, audio })
}

/// An input file that cannot be read: exit code 2, with the reader's message ("not found", "is a
/// FIFO", "is a symbolic link loop", "is truncated: ...").
pub fn input_error(e: Error) -> CliError {
    match e {
        Error::Io { context, source } if source.kind() == std::io::ErrorKind::NotFound => {
            CliError::usage(format!("input file {context}"))
        }
        other => CliError::usage(other.to_string()),
    }
}

/// The places the bundled sample is looked for, in order: next to the manifest (and in a
/// `dataflows/` folder there), in the source tree this binary was built from, in the current
/// directory.
pub fn sample_candidates(manifest: &Path) -> Vec<PathBuf> {
    let mut c = Vec::new();
    let dir = manifest.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    c.push(dir.join(SAMPLE_NAME));
    c.push(dir.join("dataflows").join(SAMPLE_NAME));
    c.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("dataflows").join(SAMPLE_NAME));
    c.push(PathBuf::from("dataflows").join(SAMPLE_NAME));
    c.push(PathBuf::from(SAMPLE_NAME));
    c
}

/// The first existing candidate from [`sample_candidates`].
pub fn find_sample(manifest: &Path) -> Result<PathBuf, CliError> {
    let candidates = sample_candidates(manifest);
    if let Some(p) = candidates.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    let tried: Vec<String> = candidates.iter().map(|p| format!("  {}", p.display())).collect();
    Err(CliError::usage(format!(
        "no --input given and the bundled sample {SAMPLE_NAME} was not found; looked in:\n{}\npass --input FILE.wav",
        tried.join("\n")
    )))
}

/// Parses `--workers`: 1..=`limits::WORKERS`, as the manifest's `config.workers` allows.
fn parse_workers(s: &str) -> Result<usize, String> {
    let max = crate::limits::WORKERS;
    match s.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a worker count from 1 to {max}, found '{s}'")),
    }
}

/// Writes a text file, naming it in the error.
/// Writes a JSON document (pretty, with a final newline) and says so in `out`.
pub fn write_json(path: &Path, doc: &serde_json::Value, out: &mut String) -> Result<(), CliError> {
    use std::fmt::Write as _;
    let text = serde_json::to_string_pretty(doc).map_err(|e| CliError::failure(format!("cannot encode JSON: {e}")))?;
    write_text(path, &(text + "\n"))?;
    let _ = writeln!(out, "wrote {}", path.display());
    Ok(())
}

/// `--prometheus` (to `out`) or `--prometheus=FILE`: the metrics document as Prometheus text.
pub fn write_prometheus(target: Option<&Option<PathBuf>>, metrics: &serde_json::Value, out: &mut String) -> Result<(), CliError> {
    use std::fmt::Write as _;
    let Some(target) = target else { return Ok(()) };
    let text = crate::metrics_prometheus::to_prometheus(metrics);
    match target {
        Some(path) => {
            write_text(path, &text)?;
            let _ = writeln!(out, "wrote {}", path.display());
        }
        None => {
            let _ = writeln!(out, "\n# prometheus");
            out.push_str(&text);
        }
    }
    Ok(())
}

/// Writes a text file under a temporary name and renames it into place (never half-written).
pub fn write_text(path: &Path, text: &str) -> Result<(), CliError> {
    crate::file_safety::write_atomic(path, text.as_bytes()).map_err(|e| CliError::failure(plain(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_flags_exit_2_and_help_exits_0() {
        // clap's exit code is what `main_with_args` returns; checked without printing.
        let code = |args: &[&str]| Cli::try_parse_from(args).err().map(|e| if e.use_stderr() { 2 } else { 0 });
        assert_eq!(code(&["remotemedia", "run"]), Some(2));
        assert_eq!(code(&["remotemedia", "frobnicate"]), Some(2));
        assert_eq!(code(&["remotemedia", "bench", "x.yaml", "--workers", "0"]), Some(2));
        assert_eq!(code(&["remotemedia", "bench", "x.yaml", "--iterations", "0"]), Some(2));
        assert_eq!(code(&["remotemedia", "--help"]), Some(0));
        assert_eq!(code(&["remotemedia", "run", "x.yaml", "--workers", "3"]), None);
    }

    #[test]
    fn a_space_where_an_equals_sign_belongs_gets_a_tip() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        let tip = equals_tip(&args(&["remotemedia", "run", "m.yaml", "--prometheus", "out.prom"])).expect("a tip");
        assert_eq!(tip, "tip: --prometheus takes its value after '=': --prometheus=out.prom (a bare --prometheus prints to stdout)");
        assert_eq!(equals_tip(&args(&["remotemedia", "run", "m.yaml", "--prometheus", "--metrics"])), None);
        assert_eq!(equals_tip(&args(&["remotemedia", "run", "m.yaml", "--output", "x.wav"])), None);
    }

    #[test]
    fn sample_is_looked_for_next_to_the_manifest_first() {
        let c = sample_candidates(Path::new("some/dir/m.yaml"));
        assert_eq!(c[0], Path::new("some/dir").join(SAMPLE_NAME));
        // The source tree's copy is found from anywhere.
        assert!(find_sample(Path::new("/nonexistent/m.yaml")).is_ok());
    }
}
