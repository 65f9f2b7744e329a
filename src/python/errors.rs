//! Engine errors raised as the `remotemedia.errors` classes, so Python code catches the same
//! exception types whichever runtime ran.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::error::{Error, ManifestError, NodeError, NodeErrorKind};

fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("remotemedia.errors")?.getattr(name)
}

fn instance(py: Python<'_>, name: &str, args: Bound<'_, PyTuple>) -> PyErr {
    match class(py, name).and_then(|c| c.call1(args)) {
        Ok(obj) => PyErr::from_value(obj),
        Err(e) => e,
    }
}

pub fn manifest_error(py: Python<'_>, e: &ManifestError) -> PyErr {
    manifest_error_in(py, e, None)
}

/// `ManifestError` with `.source`: the file whose bytes could not be read as a manifest.
pub fn manifest_error_in(py: Python<'_>, e: &ManifestError, source: Option<&str>) -> PyErr {
    let problems: Vec<(String, String, String)> =
        e.problems.iter().map(|p| (p.path.clone(), p.expected.clone(), p.found.clone())).collect();
    match (problems, source).into_pyobject(py) {
        Ok(args) => instance(py, "ManifestError", args),
        Err(e) => e,
    }
}

/// An error reading the manifest file at `path`: `FileNotFoundError` for a missing file (as
/// `open` raises it), `ManifestError` naming the file for one that is not a readable regular
/// UTF-8 file within the size limit.
pub fn manifest_read_error(py: Python<'_>, e: &Error, path: &str) -> PyErr {
    match e {
        Error::Manifest(m) => manifest_error_in(py, m, Some(path)),
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            pyo3::exceptions::PyFileNotFoundError::new_err((2, "No such file or directory", path.to_string()))
        }
        Error::Io { source, .. } => pyo3::exceptions::PyOSError::new_err((source.raw_os_error().unwrap_or(0), source.to_string(), path.to_string())),
        other => to_py(py, other),
    }
}

pub fn node_error(py: Python<'_>, e: &NodeError) -> PyErr {
    let name = match e.kind {
        NodeErrorKind::InvalidInput => "InputError",
        NodeErrorKind::CircuitOpen => "CircuitOpenError",
        _ => "NodeError",
    };
    if name == "InputError" {
        // The node that rejected the data, as the pure runtime's InputError names it.
        let named = |s: &str| if s.is_empty() { None } else { Some(s.to_string()) };
        let args = (e.to_string(), named(&e.node_id), named(&e.node_type));
        return match args.into_pyobject(py) {
            Ok(t) => instance(py, name, t),
            Err(e) => e,
        };
    }
    let args = (e.to_string(), e.node_id.clone(), e.node_type.clone(), e.traceback.clone());
    // The error's context, as keyword arguments (see remotemedia.errors.NodeError).
    let context = || -> PyResult<Bound<'_, PyDict>> {
        let kw = PyDict::new(py);
        kw.set_item("kind", e.kind.name())?;
        kw.set_item("operation", e.operation.as_str())?;
        kw.set_item("run", e.run)?;
        kw.set_item("item", e.item)?;
        kw.set_item("retries", e.retries)?;
        kw.set_item("causes", e.causes.clone())?;
        Ok(kw)
    };
    let err = match (args.into_pyobject(py), context()) {
        (Ok(t), Ok(kw)) => match class(py, name).and_then(|c| c.call(t, Some(&kw))) {
            Ok(obj) => PyErr::from_value(obj),
            Err(e) => e,
        },
        (Err(e), _) | (_, Err(e)) => return e,
    };
    // The Python exception a Python node raised becomes the cause, as `raise ... from exc` would.
    if let Some(origin) = e.origin.as_ref().and_then(|o| o.0.downcast_ref::<Py<PyAny>>()) {
        err.set_cause(py, Some(PyErr::from_value(origin.bind(py).clone())));
    }
    err
}

/// Any engine error as the matching Python exception.
pub fn to_py(py: Python<'_>, e: &Error) -> PyErr {
    match e {
        Error::Manifest(m) => manifest_error(py, m),
        Error::Node(n) => node_error(py, n),
        Error::Input(msg) => match PyTuple::new(py, [msg.clone()]) {
            Ok(args) => instance(py, "InputError", args),
            Err(e) => e,
        },
        other => match PyTuple::new(py, [other.to_string()]) {
            Ok(args) => instance(py, "RemoteMediaError", args),
            Err(e) => e,
        },
    }
}

/// A Python input error raised from Rust (bad arrays, bad rates).
pub fn input_error(py: Python<'_>, message: String) -> PyErr {
    to_py(py, &Error::Input(message))
}
