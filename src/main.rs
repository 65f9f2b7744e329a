//! The `remotemedia` command: run, inspect and benchmark pipeline manifests (see docs/cli.md).

fn main() {
    std::process::exit(remotemedia::cli::main_with_args(std::env::args_os()));
}

/// Turns transparent huge pages off (`runtime::no_huge_pages_for_this_process`) before `main`:
/// the loader runs the functions in `.init_array` before the Rust runtime starts, and the
/// runtime's first allocation (before `main`) reserved mimalloc's first memory with huge pages
/// advised and faulted two of them in: 4 MB zeroed at every start, which stayed (`remotemedia
/// serve`'s RSS 16.5 MB with them, 12.5 MB without; a 60-file `remotemedia batch` 22.0-22.3 ms of
/// CPU against 22.6-24.5). Called from `main`, the switch came after them.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static NO_HUGE_PAGES_BEFORE_MAIN: extern "C" fn() = {
    extern "C" fn before_main() {
        remotemedia::runtime::no_huge_pages_for_this_process();
    }
    before_main
};
