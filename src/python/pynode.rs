//! A Python `remotemedia.Node` running inside the native dataflow: each execution takes the GIL
//! only for the call, converts the inputs, calls `node._rm_call(inputs)` and converts the result.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::data::Payload;
use crate::error::NodeError;
use crate::nodes::{Inputs, Node};
use crate::python::convert::{payload_from_py, payload_to_py};

pub struct PyNode {
    pub obj: Arc<Py<PyAny>>,
}

/// Python node calls in progress on worker threads (waiting for the GIL included).
static CALLS: AtomicUsize = AtomicUsize::new(0);
/// Set at interpreter exit: later calls are refused instead of taking the GIL.
static EXITING: AtomicBool = AtomicBool::new(false);

/// Registered with `atexit` by the module: refuses further Python node calls and waits (the GIL
/// released) up to `timeout_s` for those in progress to return. A worker still inside Python
/// when the interpreter finalizes is ended by Python mid-call (pthread_exit through Rust frames),
/// which aborts the process: this is what happened when Ctrl-C left batch items in flight.
#[pyfunction]
#[pyo3(signature = (timeout_s=5.0))]
pub fn _quiesce(py: Python<'_>, timeout_s: f64) {
    EXITING.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs_f64(timeout_s.clamp(0.0, 3600.0));
    py.detach(|| {
        while CALLS.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    });
}

/// Counts a call in progress for [`_quiesce`].
struct InCall;

impl InCall {
    fn enter() -> Option<InCall> {
        CALLS.fetch_add(1, Ordering::SeqCst);
        if EXITING.load(Ordering::SeqCst) {
            CALLS.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(InCall)
    }
}

impl Drop for InCall {
    fn drop(&mut self) {
        CALLS.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Node for PyNode {
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        let Some(_call) = InCall::enter() else {
            return Err(NodeError::permanent("the Python interpreter is exiting: Python nodes no longer run"));
        };
        Python::attach(|py| {
            let call = || -> PyResult<Result<Payload, String>> {
                let audio_class = py.import("remotemedia.audio")?.getattr("Audio")?;
                let d = PyDict::new(py);
                for (port, payload) in inputs.into_entries() {
                    d.set_item(port, as_audio_objects(py, &audio_class, payload_to_py(py, payload)?)?)?;
                }
                let out = self.obj.bind(py).call_method1("_rm_call", (d,))?;
                Ok(payload_from_py(&out))
            };
            match call() {
                Ok(Ok(p)) => Ok(p),
                Ok(Err(msg)) => Err(NodeError::bad_output(msg)),
                Err(e) => Err(from_python_exception(py, e)),
            }
        })
    }
}

/// `(array, rate)` tuples become `remotemedia.Audio`, inside plain dicts too, so Python nodes see
/// the same objects whichever runtime calls them (a no-op once the package has registered its
/// payload classes: the values are then built as those objects).
fn as_audio_objects<'py>(py: Python<'py>, audio: &Bound<'py, PyAny>, v: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(t) = v.cast::<pyo3::types::PyTuple>() {
        if t.len() == 2 && t.get_item(0)?.hasattr("dtype")? {
            return audio.call1((t.get_item(0)?, t.get_item(1)?));
        }
    }
    if let Ok(d) = v.cast_exact::<PyDict>() {
        let out = PyDict::new(py);
        for (k, x) in d.iter() {
            out.set_item(k, as_audio_objects(py, audio, x)?)?;
        }
        return Ok(out.into_any());
    }
    Ok(v)
}

/// A Python exception as a node error: its type and message, its traceback, and whether a retry
/// may help (`TimeoutError`, `ConnectionError`, `remotemedia.RetryableError` are transient).
pub fn from_python_exception(py: Python<'_>, e: PyErr) -> NodeError {
    let value = e.value(py);
    let type_name = value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".into());
    let message = format!("{type_name}: {value}");
    let transient = is_instance_of(py, value, "builtins", "TimeoutError")
        || is_instance_of(py, value, "builtins", "ConnectionError")
        || is_instance_of(py, value, "remotemedia.errors", "RetryableError");
    let mut err = if transient { NodeError::transient(message) } else { NodeError::permanent(message) };
    // The traceback lives in the PyErr until it is restored: pass it explicitly.
    let tb = e.traceback(py);
    err.traceback = py
        .import("traceback")
        .and_then(|m| m.call_method1("format_exception", (value.get_type(), value, tb)))
        .and_then(|lines| lines.extract::<Vec<String>>())
        .map(|lines| lines.concat())
        .ok();
    // The exception's own chain (`raise ... from`, or the exception being handled), outermost first.
    err.causes = py
        .import("remotemedia.errors")
        .and_then(|m| m.call_method1("exception_causes", (value,)))
        .and_then(|c| c.extract::<Vec<String>>())
        .unwrap_or_default();
    err.origin = Some(crate::error::Origin(std::sync::Arc::new(value.clone().into_any().unbind())));
    err
}

fn is_instance_of(py: Python<'_>, value: &Bound<'_, PyAny>, module: &str, class: &str) -> bool {
    py.import(module)
        .and_then(|m| m.getattr(class))
        .and_then(|c| value.is_instance(&c))
        .unwrap_or(false)
}
