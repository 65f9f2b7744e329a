//! The Python extension module `remotemedia._native` (cargo feature `python`): pipelines compiled
//! and run by the Rust engine, called from the `remotemedia` package.

mod audio_file;
mod cli;
mod clock;
mod convert;
mod errors;
mod kernels;
mod manifest;
mod pipeline;
mod pynode;

use pyo3::prelude::*;

/// Does nothing: the floor for measuring a call into the extension.
#[pyfunction]
fn noop() {}

/// The extension's version.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The Silero VAD weights embedded in the extension (the pure-Python twin reads them from here
/// when the package is installed without the repository's assets folder).
#[pyfunction]
fn silero_weights(py: Python<'_>) -> Bound<'_, pyo3::types::PyBytes> {
    pyo3::types::PyBytes::new(py, crate::nodes::silero::weights::FILE)
}

/// The built-in node types as JSON (the schema the pure-Python runtime ships a copy of).
#[pyfunction]
fn node_types_json() -> String {
    crate::nodes::Registry::builtin().describe().to_string()
}

/// The engine's limits as JSON (`remotemedia limits`; the pure-Python runtime ships a copy).
#[pyfunction]
fn limits_json() -> String {
    crate::limits::describe().to_string()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(noop, m)?)?;
    m.add_function(wrap_pyfunction!(cli::cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(node_types_json, m)?)?;
    m.add_function(wrap_pyfunction!(limits_json, m)?)?;
    m.add_function(wrap_pyfunction!(silero_weights, m)?)?;
    m.add_function(wrap_pyfunction!(pipeline::validate_manifest, m)?)?;
    m.add_function(wrap_pyfunction!(manifest::check_manifest, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::kernel_times, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::simd_features, m)?)?;
    m.add_function(wrap_pyfunction!(manifest::parse_manifest, m)?)?;
    m.add_function(wrap_pyfunction!(manifest::read_manifest, m)?)?;
    m.add_class::<manifest::CheckedManifest>()?;
    m.add_function(wrap_pyfunction!(convert::register_payload_types, m)?)?;
    m.add_function(wrap_pyfunction!(audio_file::load_audio, m)?)?;
    m.add_function(wrap_pyfunction!(audio_file::save_audio, m)?)?;
    m.add_function(wrap_pyfunction!(audio_file::audio_info, m)?)?;
    m.add_class::<audio_file::NativeAudioReader>()?;
    m.add_class::<audio_file::NativeAudioWriter>()?;
    m.add_class::<pipeline::NativePipeline>()?;
    m.add_class::<pipeline::NativeSession>()?;
    m.add_function(wrap_pyfunction!(pynode::_quiesce, m)?)?;
    // Python nodes still running on workers must return before the interpreter finalizes.
    m.py().import("atexit")?.call_method1("register", (m.getattr("_quiesce")?,))?;
    Ok(())
}
