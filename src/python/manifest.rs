//! `remotemedia._native.check_manifest`: with the extension present, the Python package validates
//! every manifest here, once, with no validator of its own on that path (the pure-Python one
//! serves the pure runtime, and names Python values JSON cannot hold).

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::NodeError;
use crate::manifest;
use crate::nodes::{InputPorts, NodeType, Registry};
use crate::python::errors;

/// Reads manifest text (`yaml`: as YAML, else as JSON) into its tree, returned as JSON text, or
/// raises `ManifestError` at the problem's line and column. With the extension present this is
/// the only reader of manifest text (`Pipeline.from_json`/`from_yaml`); `_pure/tree.py` serves
/// the pure runtime, in the same words.
#[pyfunction]
pub fn parse_manifest(py: Python<'_>, text: &str, yaml: bool) -> PyResult<String> {
    let tree = if yaml { manifest::parse_yaml(text) } else { manifest::parse_json(text) };
    Ok(tree.map_err(|e| errors::manifest_error(py, &e))?.to_string())
}

/// Validates a manifest tree (JSON text) against the built-in node types plus `python_types`
/// (type name -> `remotemedia.Node` subclass) and returns the validated manifest
/// (`manifest::to_manifest`: params checked and defaulted) as JSON text, or raises
/// `ManifestError` listing every problem.
#[pyfunction]
#[pyo3(signature = (text, python_types=None))]
pub fn check_manifest(py: Python<'_>, text: &str, python_types: Option<&Bound<'_, PyDict>>) -> PyResult<String> {
    let tree = manifest::parse_json(text).map_err(|e| errors::manifest_error(py, &e))?;
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
    Ok(manifest::to_manifest(&graph).to_string())
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
