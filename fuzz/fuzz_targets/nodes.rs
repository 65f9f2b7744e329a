//! Fuzz target: every node type with arbitrary params and buffers, and the streaming
//! resampler / VAD APIs (see `remotemedia::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| remotemedia::fuzzing::fuzz_node(data));
