//! Replays the committed fuzz corpus and every crash reproducer through the same harness
//! functions the cargo-fuzz targets call (`remotemedia::fuzzing`), so a normal `cargo test`
//! checks in seconds that no input that ever crashed (or seeded the fuzzer) crashes again.
//!
//! Layout: `fuzz/corpus/<target>/*` (seeds) and `fuzz/regressions/<target>/*` (reproducers of
//! crashes found and fixed; `fuzz/regressions/README.md` says what each one was).

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    v.retain(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with('.') && n != "README.md"));
    v.sort();
    v
}

fn replay(target: &str, harness: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in [root.join("corpus").join(target), root.join("regressions").join(target)] {
        for path in files(&dir) {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            // A panic here names the file, so the failing input is easy to find.
            let result = std::panic::catch_unwind(|| harness(&data));
            assert!(result.is_ok(), "{} crashed the {target} harness", path.display());
            n += 1;
        }
    }
    n
}

#[test]
fn manifest_corpus_replays_without_a_crash() {
    let n = replay("manifest", remotemedia::fuzzing::fuzz_manifest);
    assert!(n >= 10, "only {n} manifest corpus files found");
}

#[test]
fn node_corpus_replays_without_a_crash() {
    let n = replay("nodes", remotemedia::fuzzing::fuzz_node);
    assert!(n >= 10, "only {n} node corpus files found");
}

#[test]
fn file_corpus_replays_without_a_crash() {
    let n = replay("files", remotemedia::fuzzing::fuzz_file);
    assert!(n >= 16, "only {n} file corpus files found");
}

#[test]
fn empty_and_tiny_inputs_do_not_crash() {
    for data in [&b""[..], b"\0", b"\x05", b"\x06", b"\x07", b"{", b"-", b"\xff\xff\xff\xff"] {
        remotemedia::fuzzing::fuzz_manifest(data);
        remotemedia::fuzzing::fuzz_node(data);
        remotemedia::fuzzing::fuzz_file(data);
    }
}
