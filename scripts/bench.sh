#!/usr/bin/env bash
# Runs the benchmarks (Rust engine, Python package, batch and cluster, Silero VAD and VAD quality) in
# release mode; installs python-soxr (the Python benchmark's peer) and the Silero references
# (tests/requirements/silero*.pip) into the same .venv as the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${REMOTEMEDIA_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.9.4,<2" "numpy>=1.21" "pyyaml>=5.4" soxr
echo "== engine benchmark (cargo bench)"
cargo bench --quiet --bench engine -- "$@"
echo "== Python benchmark (release build of the extension)"
VIRTUAL_ENV="$PWD/$VENV" PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/maturin" develop --release --quiet
"$VENV/bin/python" benchmarks/python_bench.py "$@"
echo "== streaming benchmark (session.push of 20 ms chunks through resample + VAD)"
"$VENV/bin/python" benchmarks/streaming_bench.py "$@"
echo "== feature nodes vs HF WhisperFeatureExtractor / kaldi-native-fbank (and torch if installed)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements/features.pip
"$VENV/bin/python" benchmarks/features_bench.py "$@"
echo "== batch and cluster benchmark (run_batch 1 vs 2 workers; remotemedia batch 1 vs 2 processes)"
cargo build --release --quiet --bin remotemedia
"$VENV/bin/python" benchmarks/batch_bench.py --binary target/release/remotemedia "$@"
echo "== scaling sweep (1, 2, 4, ... workers up to the usable cores: run_batch and its pinned-process ceiling, remotemedia batch, spawn, streaming from Python and Rust threads)"
cargo bench --quiet --bench stream_scaling --no-run
"$VENV/bin/python" benchmarks/scaling_bench.py --binary target/release/remotemedia
echo "== audio files (decode vs soundfile; batch of 1,000 mixed files; run --stream memory 1 min vs 2 h)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements/files.pip
"$VENV/bin/python" benchmarks/decode_bench.py --binary target/release/remotemedia
echo "== Silero VAD benchmark (SileroVADNode vs onnxruntime with 1 thread; run_batch scaling)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements/silero.pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r tests/requirements/silero.nodeps.pip
"$VENV/bin/python" benchmarks/silero_bench.py "$@"
echo "== VAD quality on the noisy-speech set (needs espeak-ng: tests/requirements/speech.apt)"
"$VENV/bin/python" benchmarks/vad_quality.py
