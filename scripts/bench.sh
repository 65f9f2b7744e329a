#!/usr/bin/env bash
# Runs both benchmarks (Rust engine, then Python package) in release mode; installs python-soxr,
# the peer the Python benchmark measures against, into the same .venv as the tests.
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
