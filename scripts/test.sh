#!/usr/bin/env bash
# Runs every test: the Rust suite (cargo test), then builds the Python extension into a local
# virtualenv and runs the pytest suite on both runtimes. Needs only Rust and Python 3.9+;
# installs maturin, numpy, pyyaml and pytest from PyPI into .venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${REMOTEMEDIA_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install -q --disable-pip-version-check "maturin>=1.9.4,<2" "numpy>=1.21" "pyyaml>=5.4" "pytest>=7"

echo "== cargo test"
cargo test --quiet

echo "== building the Python extension (maturin develop)"
VIRTUAL_ENV="$PWD/$VENV" PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/maturin" develop --quiet

echo "== pytest"
set +e
REMOTEMEDIA_REQUIRE_NATIVE=1 "$PY" -m pytest tests/python -q
status=$?
set -e
# pytest exits 5 when it collects nothing: that is a broken suite here, not a pass.
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests" >&2
    exit 1
fi
exit "$status"
