//! Pipeline manifests: reading JSON or YAML into a tree, and the pipeline-wide configuration.
//! `validate` turns a tree into a [`Graph`](crate::graph::Graph) or lists every problem in it.

pub mod validate;

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, ManifestError, Problem};
use crate::graph::Graph;
use crate::nodes::Registry;

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

/// The manifest's `config` section.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineConfig {
    pub enable_metrics: bool,
    pub retry_policy: RetryPolicy,
    pub max_retries: u32,
    /// Timely workers for this pipeline's pool.
    pub workers: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig { enable_metrics: false, retry_policy: RetryPolicy::None, max_retries: 3, workers: 1 }
    }
}

/// Parses JSON text into a tree; a syntax error becomes a problem with line and column.
pub fn parse_json(text: &str) -> Result<Value, ManifestError> {
    serde_json::from_str(text).map_err(|e| ManifestError {
        problems: vec![Problem::new(
            format!("line {}, column {}", e.line(), e.column()),
            "valid JSON",
            e.to_string(),
        )],
    })
}

/// Parses YAML text into a tree; a syntax error becomes a problem with its location.
pub fn parse_yaml(text: &str) -> Result<Value, ManifestError> {
    serde_norway::from_str::<Value>(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!("line {}, column {}", l.line(), l.column()))
            .unwrap_or_else(|| "document".to_string());
        ManifestError { problems: vec![Problem::new(at, "valid YAML", e.to_string())] }
    })
}

/// Parses manifest text, JSON if it starts with `{`, YAML otherwise.
pub fn parse_str(text: &str) -> Result<Value, ManifestError> {
    if text.trim_start().starts_with('{') {
        parse_json(text)
    } else {
        parse_yaml(text)
    }
}

/// Reads a manifest file (`.json`, `.yaml` or `.yml`).
pub fn read_file(path: &Path) -> Result<Value, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| Error::Io { context: format!("cannot read manifest {}", path.display()), source })?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let tree = match ext.as_str() {
        "json" => parse_json(&text),
        "yaml" | "yml" => parse_yaml(&text),
        _ => parse_str(&text),
    };
    Ok(tree?)
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

/// The graph as a canonical manifest (interim: the full version comes with the validator).
pub fn to_manifest(graph: &Graph) -> Value {
    let nodes: Vec<Value> = graph
        .nodes
        .iter()
        .map(|n| serde_json::json!({"id": n.id, "type": n.node_type.name, "params": n.params, "runtime_hint": n.runtime_hint.name()}))
        .collect();
    let edges: Vec<Value> = graph
        .edges
        .iter()
        .map(|e| serde_json::json!({"from": graph.nodes[e.from].id, "to": graph.nodes[e.to].id, "output_key": e.output_key, "input_key": e.port}))
        .collect();
    serde_json::json!({"version": "1.0", "nodes": nodes, "edges": edges,
        "config": {"enable_metrics": graph.config.enable_metrics, "workers": graph.config.workers}})
}
