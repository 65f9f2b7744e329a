#!/usr/bin/env bash
# The main job: 48 kHz speech -> f32 -> 16 kHz -> voice activity detection, on the bundled sample.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --quiet -- run dataflows/speech_vad.yaml "$@"
