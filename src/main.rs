//! The `remotemedia` command: run, inspect and benchmark pipeline manifests (see docs/cli.md).

fn main() {
    std::process::exit(remotemedia::cli::main_with_args(std::env::args_os()));
}
