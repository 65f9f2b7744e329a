//! Fuzz target: manifest text → parse → validate → compile → run (see `remotemedia::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| remotemedia::fuzzing::fuzz_manifest(data));
