//! `remotemedia._native.cli_main`: the Rust command line run from the pip-installed `remotemedia`
//! command (`python/remotemedia/cli.py`), so there is one implementation of every subcommand.

use pyo3::prelude::*;

/// Runs the command line on `argv` (program name first), printing to the process's own stdout and
/// stderr, and returns the exit code. The GIL is released while it runs.
#[pyfunction]
pub fn cli_main(py: Python<'_>, argv: Vec<String>) -> i32 {
    py.detach(|| crate::cli::main_with_args(argv))
}
