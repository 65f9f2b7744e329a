//! Pipeline manifests: reading JSON or YAML into a tree, and the pipeline-wide configuration.
//! `validate` turns a tree into a [`Graph`](crate::graph::Graph) or lists every problem in it.

pub mod nesting;
mod tree;
pub mod validate;

use std::path::Path;

use serde::de::DeserializeSeed;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, ManifestError, Problem};
use crate::graph::Graph;
use crate::limits::{MANIFEST_BYTES, MANIFEST_NESTING, MANIFEST_STRING_BYTES, MANIFEST_VALUES};
use crate::nodes::{InputPorts, Registry};
use tree::{Budget, Crossed, TreeSeed};

pub use validate::validate;

/// The manifest versions this engine reads.
pub const SUPPORTED_VERSIONS: &[&str] = &["1.0"];

/// How failed node executions are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetryPolicy {
    #[default]
    None,
    Fixed,
    Exponential,
}

impl RetryPolicy {
    /// Every policy's manifest name, in declaration order.
    pub const NAMES: &'static [&'static str] = &["none", "fixed", "exponential"];

    /// The name used in manifests.
    pub fn name(self) -> &'static str {
        match self {
            RetryPolicy::None => "none",
            RetryPolicy::Fixed => "fixed",
            RetryPolicy::Exponential => "exponential",
        }
    }

    /// The policy a manifest name stands for.
    pub fn from_name(name: &str) -> Option<RetryPolicy> {
        match name {
            "none" => Some(RetryPolicy::None),
            "fixed" => Some(RetryPolicy::Fixed),
            "exponential" => Some(RetryPolicy::Exponential),
            _ => None,
        }
    }
}

/// The manifest's `config` section. Field docs give the manifest default and the accepted range;
/// `validate` enforces the ranges (`validate::config_fields`), so code reading a validated config
/// can rely on them. Its JSON form is the manifest's, field for field (serde, defaults filled in).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Collect per-node timings and counts (default false).
    pub enable_metrics: bool,
    /// How failed node executions are retried (default none).
    pub retry_policy: RetryPolicy,
    /// Retries per failed execution, 0..=100 (default 3); only used when `retry_policy` is not none.
    pub max_retries: u32,
    /// Timely workers for this pipeline's pool, 1..=256 (default 1).
    pub workers: usize,
    /// Delay before the first retry in ms, 0..=600000 (default 100); `fixed` waits this long
    /// every time, `exponential` doubles it per retry.
    pub retry_base_delay_ms: u64,
    /// Upper bound on any retry delay in ms, 0..=3600000 (default 10000); at least
    /// `retry_base_delay_ms`.
    pub retry_max_delay_ms: u64,
    /// Randomise each delay (uniformly in 0..=delay) so that retries of many items spread out
    /// (default false).
    pub retry_jitter: bool,
    /// Consecutive failures of one node after which its circuit opens and further items fail
    /// fast, 0..=1000000 (default 5; 0 turns the breaker off).
    pub circuit_breaker_threshold: u32,
    /// How long an open circuit stays open before one trial item is let through, in ms,
    /// 0..=3600000 (default 30000).
    pub circuit_breaker_cooldown_ms: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            enable_metrics: false,
            retry_policy: RetryPolicy::None,
            max_retries: 3,
            workers: 1,
            retry_base_delay_ms: 100,
            retry_max_delay_ms: 10_000,
            retry_jitter: false,
            circuit_breaker_threshold: 5,
            circuit_breaker_cooldown_ms: 30_000,
        }
    }
}

impl PipelineConfig {
    /// Every field as the manifest's `config` object (the defaults, for `PipelineConfig::default()`).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a config is plain data")
    }
}

/// A node's own `reliability` entry: any of the retry and circuit-breaker fields of `config`,
/// overriding the pipeline's value for this node only. Absent fields fall back to `config`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeReliability {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_base_delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_max_delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_jitter: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit_breaker_threshold: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit_breaker_cooldown_ms: Option<u64>,
}

impl NodeReliability {
    /// The fields given, as the manifest's JSON object.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("reliability settings are plain data")
    }
}

/// Parses JSON text into a tree; a syntax error becomes a problem with line and column.
///
/// Stricter than `serde_json::from_str::<Value>`: a key repeated within one object is an error
/// (serde_json would silently keep the last one, hiding e.g. a second `params`). Texts beyond the
/// manifest limits (size, nesting, values, string length; see `crate::limits`) are refused
/// before they are parsed, or as soon as the tree being built crosses one.
pub fn parse_json(text: &str) -> Result<Value, ManifestError> {
    check_text(text, nesting::check_json)?;
    let budget = Budget::default();
    let mut de = serde_json::Deserializer::from_str(text);
    let tree = TreeSeed { budget: &budget, depth: 0 }.deserialize(&mut de).and_then(|t| de.end().map(|()| t.0));
    tree.map_err(|e| {
        limit_problem(&budget).unwrap_or_else(|| {
            let found = syntax_message(&e.to_string(), e.line(), e.column());
            // serde_json places a text cut short at its last character (column 0 on an empty
            // last line); the problem is where the text ends, the 1-based column after it, as
            // every other syntax error points at the character it could not take.
            let column = if e.is_eof() { e.column() + 1 } else { e.column() };
            ManifestError { problems: vec![Problem::new(format!("line {}, column {column}", e.line()), "valid JSON", found)] }
        })
    })
}

/// Parses YAML text into a tree; a syntax error becomes a problem with its location.
///
/// Besides syntax, rejects what a JSON tree cannot hold faithfully: repeated keys, keys that are
/// not strings, numbers or booleans, and `.nan`/`.inf` (serde_json would turn those into null);
/// and, as [`parse_json`], texts and trees beyond the manifest limits. YAML aliases count their
/// value again at every use, so an alias bomb is refused after `MANIFEST_VALUES` values.
pub fn parse_yaml(text: &str) -> Result<Value, ManifestError> {
    check_text(text, nesting::check)?;
    unprintable(text)?;
    let budget = Budget::default();
    let tree = TreeSeed { budget: &budget, depth: 0 }.deserialize(serde_norway::Deserializer::from_str(text)).map(|t| t.0);
    tree.map_err(|e| {
        if let Some(limit) = limit_problem(&budget) {
            return limit;
        }
        // serde_norway's own guard against aliases: more alias uses than 100 per event.
        if e.to_string().starts_with("repetition limit exceeded") {
            return limit_error(values_problem("YAML aliases used more than 100 times per event of the document"));
        }
        let (at, found) = match e.location() {
            Some(l) => (format!("line {}, column {}", l.line(), l.column()), syntax_message(&e.to_string(), l.line(), l.column())),
            None => ("document".to_string(), format!("a syntax error: {e}")),
        };
        ManifestError { problems: vec![Problem::new(at, "valid YAML", found)] }
    })
}

/// The limits a text must meet before it is parsed: its size, and how deeply it nests (`scan`:
/// [`nesting::check`] for YAML, [`nesting::check_json`] for JSON).
fn check_text(text: &str, scan: fn(&str, usize) -> Result<(), nesting::TooDeep>) -> Result<(), ManifestError> {
    if text.len() > MANIFEST_BYTES {
        return Err(limit_error(size_problem(text.len())));
    }
    scan(text, MANIFEST_NESTING).map_err(|t| {
        limit_error(nesting_problem(format!("line {}, column {}", t.line, t.column), t.depth))
    })
}

/// The first character YAML does not allow in a document (a control character other than tab,
/// newline and carriage return; a noncharacter), at its line and 1-based column in characters.
/// libyaml reports one as "control characters are not allowed at position N" at line 1, column
/// 1 whatever its place; this says where it is, in the words of `_pure/tree.py` (PyYAML's).
fn unprintable(text: &str) -> Result<(), ManifestError> {
    let printable = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    };
    let Some(at) = text.find(|c| !printable(c)) else { return Ok(()) };
    let bad = text[at..].chars().next().map_or(0, u32::from);
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[..at].matches('\n').count() + 1;
    let column = text[line_start..at].chars().count() + 1;
    let found = format!("a syntax error: unacceptable character #x{bad:04x}: special characters are not allowed");
    Err(ManifestError { problems: vec![Problem::new(format!("line {line}, column {column}"), "valid YAML", found)] })
}

fn limit_error(p: Problem) -> ManifestError {
    ManifestError { problems: vec![p] }
}

/// The problem of a text longer than `MANIFEST_BYTES`.
pub(crate) fn size_problem(bytes: usize) -> Problem {
    Problem::new("manifest", format!("a manifest of at most {MANIFEST_BYTES} bytes"), format!("{bytes} bytes"))
}

/// The problem of a list or mapping nested `depth` deep (more than `MANIFEST_NESTING`) at `path`.
pub(crate) fn nesting_problem(path: impl Into<String>, depth: usize) -> Problem {
    Problem::new(
        path,
        format!("lists and mappings nested at most {MANIFEST_NESTING} deep"),
        format!("a list or mapping nested {depth} deep"),
    )
}

/// The problem of a tree of more than `MANIFEST_VALUES` values (`found` says how it got there).
pub(crate) fn values_problem(found: &str) -> Problem {
    Problem::new(
        "manifest",
        format!("at most {MANIFEST_VALUES} values (lists, mappings and scalars; a YAML alias counts its value at every use)"),
        found,
    )
}

/// The problem of a string of `bytes` bytes (more than `MANIFEST_STRING_BYTES`) starting `head`.
pub(crate) fn string_problem(bytes: usize, head: &str) -> Problem {
    let shown = serde_json::to_string(&format!("{head}…")).unwrap_or_default();
    Problem::new("manifest", format!("strings of at most {MANIFEST_STRING_BYTES} bytes"), format!("a string of {bytes} bytes: {shown}"))
}

/// The limit a tree crossed while it was built, as the manifest's problem.
fn limit_problem(budget: &Budget) -> Option<ManifestError> {
    Some(limit_error(match budget.crossed()? {
        Crossed::Values => values_problem("more values"),
        Crossed::Nesting(depth) => nesting_problem("manifest", depth),
        Crossed::String(bytes, head) => string_problem(bytes, &head),
    }))
}

/// A parser's message without the location the problem's path already gives.
fn syntax_message(message: &str, line: usize, column: usize) -> String {
    let at = format!(" at line {line} column {column}");
    format!("a syntax error: {}", message.replacen(&at, "", 1))
}

/// Parses manifest text, JSON if it starts with `{`, YAML otherwise.
pub fn parse_str(text: &str) -> Result<Value, ManifestError> {
    if text.trim_start().starts_with('{') {
        parse_json(text)
    } else {
        parse_yaml(text)
    }
}

/// Reads a manifest file (`.json`, `.yaml` or `.yml`; other names by their first character, as
/// [`parse_str`]), its text read by [`read_text`].
pub fn read_file(path: &Path) -> Result<Value, Error> {
    let text = read_text(path)?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let tree = match ext.as_str() {
        "json" => parse_json(&text),
        "yaml" | "yml" => parse_yaml(&text),
        _ => parse_str(&text),
    };
    Ok(tree?)
}

/// A manifest file's text. A file larger than `MANIFEST_BYTES` is refused before it is read (and
/// never more than that is read, whatever the file claims), and one that is not UTF-8 says where
/// it stops being so; both as manifest problems, like a path that is not a regular file or cannot
/// be looked at. A missing file is `Error::Io` (NotFound). The one reader of manifest files: the
/// CLI's and the Python package's (`_native.read_manifest`).
pub fn read_text(path: &Path) -> Result<String, Error> {
    use std::io::Read as _;
    let io = |source| Error::Io { context: format!("cannot read manifest {}", path.display()), source };
    // Only a regular file is opened: opening a FIFO or a device for reading can block forever.
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => return Err(limit_error(not_regular_problem(m.is_dir())).into()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(limit_error(Problem::new("manifest", "a readable file", os_reason(&e))).into())
        }
        _ => {}
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let claimed = file.metadata().map_err(io)?.len();
    if claimed > MANIFEST_BYTES as u64 {
        return Err(limit_error(size_problem(claimed.try_into().unwrap_or(usize::MAX))).into());
    }
    let mut bytes = Vec::new();
    file.take(MANIFEST_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() > MANIFEST_BYTES {
        return Err(limit_error(size_problem(bytes.len())).into());
    }
    String::from_utf8(bytes).map_err(|e| limit_error(utf8_problem(e.utf8_error().valid_up_to())).into())
}

/// The system's words for an I/O error, without Rust's " (os error N)": what Python's
/// `strerror` says, so both runtimes word an unreadable path alike.
fn os_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}

/// The problem of a manifest path that is not a regular file.
pub(crate) fn not_regular_problem(directory: bool) -> Problem {
    let found = if directory { "a directory" } else { "a FIFO, socket or device (not opened: reading one can block)" };
    Problem::new("manifest", "a regular file", found)
}

/// The problem of manifest bytes that stop being UTF-8 at byte `at`.
pub(crate) fn utf8_problem(at: usize) -> Problem {
    Problem::new("manifest", "UTF-8 text", format!("bytes that are not UTF-8 (from byte {at})"))
}

/// Reads and validates a manifest file.
pub fn load_file(path: &Path, registry: &Registry) -> Result<Graph, Error> {
    let tree = read_file(path)?;
    Ok(validate(&tree, registry)?)
}

/// Parses and validates manifest text.
pub fn load_str(text: &str, registry: &Registry) -> Result<Graph, Error> {
    let tree = parse_str(text)?;
    Ok(validate(&tree, registry)?)
}

/// The canonical manifest of a validated graph: `version`, every node with `id`, `type`, its
/// params (defaults included, unset optional params left out) and `runtime_hint`, every edge with
/// `from`/`to` and its keys only where they differ from what validation would infer, `outputs`
/// when the manifest declared them, and the full `config`. `validate(&to_manifest(&g), registry)` rebuilds a graph equal to `g`, given a
/// registry holding the same node types.
pub fn to_manifest(graph: &Graph) -> Value {
    use serde_json::{json, Map};
    let nodes: Vec<Value> = graph
        .nodes
        .iter()
        .map(|n| {
            // Declared params validation would fill with null are left out; undeclared ones
            // (open_params types) are kept even when null, since validation keeps them as given.
            let params: Map<String, Value> = n
                .params
                .iter()
                .filter(|(k, v)| !(v.is_null() && n.node_type.param(k).is_some()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut node = json!({
                "id": n.id,
                "type": n.node_type.name,
                "params": params,
                "runtime_hint": n.runtime_hint.name(),
            });
            if let (Some(r), Value::Object(m)) = (&n.reliability, &mut node) {
                m.insert("reliability".into(), r.to_json());
            }
            node
        })
        .collect();
    let edges: Vec<Value> = graph
        .edges
        .iter()
        .map(|e| {
            let mut m = Map::new();
            let (from, to) = (&graph.nodes[e.from], &graph.nodes[e.to]);
            m.insert("from".into(), Value::from(from.id.as_str()));
            m.insert("to".into(), Value::from(to.id.as_str()));
            if let Some(k) = &e.output_key {
                m.insert("output_key".into(), Value::from(k.as_str()));
            }
            let inferred = match &to.node_type.inputs {
                InputPorts::One => true,
                InputPorts::Named(ports) => ports.len() == 1 && ports[0] == e.port,
                InputPorts::Any => e.port == from.id,
            };
            if !inferred {
                m.insert("input_key".into(), Value::from(e.port.as_str()));
            }
            Value::Object(m)
        })
        .collect();
    let c = &graph.config;
    let mut doc = json!({
        "version": SUPPORTED_VERSIONS.last().copied().unwrap_or("1.0"),
        "nodes": nodes,
        "edges": edges,
        "config": c.to_json(),
    });
    if let (Some(list), Value::Object(m)) = (&graph.declared_outputs, &mut doc) {
        let ids: Vec<&str> = list.iter().map(|&i| graph.nodes[i].id.as_str()).collect();
        m.insert("outputs".into(), json!(ids));
    }
    doc
}
