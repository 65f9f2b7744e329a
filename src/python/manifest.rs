//! Manifests read and validated for the Python package: with the extension present this is the
//! only reader of manifest files and text and the only validator on that path. What it returns,
//! a [`CheckedManifest`], is what `NativePipeline` installs as it is (nothing read or checked
//! twice); the pure-Python reader and validator serve the pure runtime, and name Python values
//! JSON cannot hold.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;

use crate::error::NodeError;
use crate::graph::Graph;
use crate::manifest;
use crate::nodes::{InputPorts, NodeType, Registry};
use crate::python::convert::json_to_py;
use crate::python::errors;

/// A validated manifest with the node types it was checked against (the built-ins plus the
/// Python node classes given): the graph `NativePipeline` installs, and the tree it came from.
#[pyclass(frozen, module = "remotemedia._native")]
pub struct CheckedManifest {
    pub(crate) graph: Graph,
    pub(crate) registry: Registry,
    tree: Value,
}

#[pymethods]
impl CheckedManifest {
    /// The manifest tree as read (config overrides laid over), as Python values.
    fn tree<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.tree)
    }

    /// The validated manifest (`manifest::to_manifest`: params checked and defaulted), as Python
    /// values.
    fn validated<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &manifest::to_manifest(&self.graph))
    }
}

/// Reads manifest text (`yaml`: as YAML, else as JSON), or the file at `path` instead, into its
/// tree (Python values), or raises `ManifestError` at the problem's line and column
/// (`FileNotFoundError` for a missing file). `_pure/tree.py` reads the same, in the same words.
#[pyfunction]
#[pyo3(signature = (text, yaml, path=None))]
pub fn parse_manifest<'py>(py: Python<'py>, text: Option<&str>, yaml: bool, path: Option<PathBuf>) -> PyResult<Bound<'py, PyAny>> {
    json_to_py(py, &read_tree(py, text, yaml, path)?)
}

fn read_tree(py: Python<'_>, text: Option<&str>, yaml: bool, path: Option<PathBuf>) -> PyResult<Value> {
    let file;
    let text = match (text, &path) {
        (Some(t), _) => t,
        (None, Some(p)) => {
            let shown = p.to_string_lossy();
            file = manifest::read_text(p).map_err(|e| errors::manifest_read_error(py, &e, &shown))?;
            &file
        }
        (None, None) => return Err(pyo3::exceptions::PyTypeError::new_err("parse_manifest: give text or path")),
    };
    let tree = if yaml { manifest::parse_yaml(text) } else { manifest::parse_json(text) };
    tree.map_err(|e| errors::manifest_error(py, &e))
}

/// `Pipeline.from_json` / `from_yaml`: reads the manifest (text, or the file at `path`), lays
/// `overrides` (JSON text of config fields) over its `config` (left as it is when not a
/// mapping, for the validator to name) and validates it as [`check_manifest`] does.
#[pyfunction]
#[pyo3(signature = (text, yaml, path=None, overrides=None, python_types=None))]
pub fn read_manifest(
    py: Python<'_>,
    text: Option<&str>,
    yaml: bool,
    path: Option<PathBuf>,
    overrides: Option<&str>,
    python_types: Option<&Bound<'_, PyDict>>,
) -> PyResult<CheckedManifest> {
    let mut tree = read_tree(py, text, yaml, path)?;
    if let Some(fields) = overrides {
        let fields = manifest::parse_json(fields).map_err(|e| errors::manifest_error(py, &e))?;
        if let (Value::Object(top), Value::Object(fields)) = (&mut tree, fields) {
            let config = top.entry("config").or_insert_with(|| Value::Object(Default::default()));
            if config.is_null() {
                *config = Value::Object(Default::default());
            }
            if let Value::Object(config) = config {
                config.extend(fields);
            }
        }
    }
    checked(py, tree, python_types)
}

/// Validates a manifest tree (JSON text) against the built-in node types plus `python_types`
/// (type name -> `remotemedia.Node` subclass); returns it checked, or raises `ManifestError`
/// listing every problem.
#[pyfunction]
#[pyo3(signature = (text, python_types=None))]
pub fn check_manifest(py: Python<'_>, text: &str, python_types: Option<&Bound<'_, PyDict>>) -> PyResult<CheckedManifest> {
    let tree = manifest::parse_json(text).map_err(|e| errors::manifest_error(py, &e))?;
    checked(py, tree, python_types)
}

fn checked(py: Python<'_>, tree: Value, python_types: Option<&Bound<'_, PyDict>>) -> PyResult<CheckedManifest> {
    let mut registry = Registry::builtin();
    if let Some(types) = python_types {
        for (name, cls) in types.iter() {
            let name: String = name.extract()?;
            if registry.get(&name).is_none() {
                registry.register(python_node_type(name, &cls));
            }
        }
    }
    let graph = manifest::validate(&tree, &registry).map_err(|e| errors::manifest_error(py, &e))?;
    Ok(CheckedManifest { graph, registry, tree })
}

/// The node type of a Python node class or instance: open params and outputs, its declared
/// inputs and statefulness; built only as a call of a Python instance.
pub fn python_node_type(name: String, obj: &Bound<'_, PyAny>) -> NodeType {
    NodeType {
        open_params: true,
        open_outputs: true,
        inputs: python_inputs(obj),
        // A streaming node's state would be corrupted by a retry: see docs/reliability.md.
        stateful: obj.getattr("stateful").and_then(|v| v.is_truthy()).unwrap_or(false),
        ..NodeType::new(name, "a Python node", |cfg| {
            Err(NodeError::permanent(format!("no Python instance was given for node '{}'", cfg.id)))
        })
    }
}

/// How a Python node declares its inputs: `inputs = None` (one), a list of port names, or `"any"`.
fn python_inputs(obj: &Bound<'_, PyAny>) -> InputPorts {
    match obj.getattr("inputs") {
        Ok(v) if v.is_none() => InputPorts::One,
        Ok(v) => match v.extract::<String>() {
            Ok(s) if s == "any" || s == "*" => InputPorts::Any,
            _ => match v.extract::<Vec<String>>() {
                Ok(ports) if !ports.is_empty() => InputPorts::Named(ports),
                _ => InputPorts::One,
            },
        },
        Err(_) => InputPorts::One,
    }
}
