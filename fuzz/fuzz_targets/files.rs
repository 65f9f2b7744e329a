//! Fuzz target: bytes → a file → the audio file readers (see `remotemedia::fuzzing::fuzz_file`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| remotemedia::fuzzing::fuzz_file(data));
