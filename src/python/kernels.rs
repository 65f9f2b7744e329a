//! `_native.kernel_times`: a chain's node kernels called directly, one after another on the same
//! input, each timed alone: the floor `run_sync` is measured against (benchmarks/python_bench.py);
//! and which instructions those kernels use in this process (`_native.simd_features`).

use std::time::Instant;

use pyo3::prelude::*;

use crate::data::Payload;
use crate::error::Error;
use crate::manifest;
use crate::nodes::{Inputs, NodeConfig, Registry};
use crate::python::convert::check_audio;
use crate::python::errors;

/// Builds every node of `manifest_text` (built-in types, a chain: each node one input) and calls
/// their `process` directly, `repeats` times, in the graph's order on `audio` (`(samples, rate)`
/// or an `Audio`), each call timed on its own (the input's copy untimed). Returns each node's id
/// with its median call time in ns. Why a helper: the per-call cost of `run_sync` is judged
/// against what the kernels alone cost on the same input, measured in the same run, and only
/// Rust can call the kernels without the engine around them.
#[pyfunction]
#[pyo3(signature = (manifest_text, audio, repeats=100))]
pub fn kernel_times(py: Python<'_>, manifest_text: &str, audio: &Bound<'_, PyAny>, repeats: usize) -> PyResult<Vec<(String, u64)>> {
    let registry = Registry::builtin();
    let graph = manifest::load_str(manifest_text, &registry).map_err(|e| errors::to_py(py, &e))?;
    if let Some(n) = graph.nodes.iter().find(|n| n.inputs.len() > 1) {
        return Err(errors::input_error(py, format!("kernel_times: node '{}' has several inputs; only a chain can be timed", n.id)));
    }
    let input = check_audio(audio, "audio").and_then(|a| a.copy()).map_err(|m| errors::input_error(py, m))?;
    let mut nodes = Vec::with_capacity(graph.order.len());
    for &n in &graph.order {
        let gn = &graph.nodes[n];
        let ty = registry.get(&gn.node_type.name).ok_or_else(|| errors::input_error(py, format!("kernel_times: '{}' is not a built-in type", gn.node_type.name)))?;
        let node = (ty.factory)(&NodeConfig { id: &gn.id, params: &gn.params, worker: 0 }).map_err(|e| errors::to_py(py, &Error::Engine(e.to_string())))?;
        nodes.push((gn.id.clone(), node));
    }
    let timed = py.detach(move || -> Result<Vec<(String, u64)>, String> {
        let mut times: Vec<Vec<u64>> = vec![Vec::with_capacity(repeats); nodes.len()];
        for _ in 0..repeats.max(1) {
            let mut p = Payload::Audio(input.clone());
            for (k, (id, node)) in nodes.iter_mut().enumerate() {
                let t = Instant::now();
                p = node.process(Inputs::single(p)).map_err(|e| format!("node '{id}': {e}"))?;
                times[k].push(t.elapsed().as_nanos() as u64);
            }
            drop(p);
        }
        Ok(nodes
            .iter()
            .zip(times)
            .map(|((id, _), mut t)| {
                t.sort_unstable();
                (id.clone(), t[t.len() / 2])
            })
            .collect())
    });
    timed.map_err(|m| errors::to_py(py, &Error::Engine(m)))
}

/// The instructions the nodes' own kernels use in this process (`nodes::cpu::simd`: none under
/// `REMOTEMEDIA_NO_SIMD=1`) and what the hardware has, as `{"used": {...}, "hardware": {...}}`
/// with `avx2`, `fma`, `avx512f` and `avx512vl` flags: for bug reports, and for the tests that
/// compare the portable paths with the vector ones.
#[pyfunction]
pub fn simd_features(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    use crate::nodes::cpu::{hardware, simd, Features};
    let flags = |f: Features| -> PyResult<Bound<'_, pyo3::types::PyDict>> {
        let d = pyo3::types::PyDict::new(py);
        for (name, on) in [("avx2", f.avx2), ("fma", f.fma), ("avx512f", f.avx512f), ("avx512vl", f.avx512vl)] {
            d.set_item(name, on)?;
        }
        Ok(d)
    };
    let out = pyo3::types::PyDict::new(py);
    out.set_item("used", flags(simd())?)?;
    out.set_item("hardware", flags(hardware())?)?;
    Ok(out)
}
