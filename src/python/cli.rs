//! `remotemedia._native.cli_main`: the Rust command line run from the pip-installed `remotemedia`
//! command (`python/remotemedia/cli.py`), so there is one implementation of every subcommand.

use pyo3::prelude::*;

/// Runs the command line on `argv` (program name first), printing to the process's own stdout and
/// stderr, and returns the exit code. The GIL is released while it runs. `own_process`: the
/// process is the command's (the `remotemedia` script, `python -m remotemedia`), so it is set up
/// as the binary sets up its own (no transparent huge pages); not for a call from someone's
/// program, whose process is theirs.
#[pyfunction]
#[pyo3(signature = (argv, own_process=false))]
pub fn cli_main(py: Python<'_>, argv: Vec<String>, own_process: bool) -> i32 {
    if own_process {
        crate::runtime::no_huge_pages_for_this_process();
    }
    py.detach(|| crate::cli::main_with_args(argv))
}
