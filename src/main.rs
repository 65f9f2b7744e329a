//! The `remotemedia` command: run, inspect and benchmark pipeline manifests (see docs/cli.md).

fn main() {
    remotemedia::runtime::no_huge_pages_for_this_process();
    std::process::exit(remotemedia::cli::main_with_args(std::env::args_os()));
}
