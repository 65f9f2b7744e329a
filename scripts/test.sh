#!/usr/bin/env bash
# Runs every test: the Rust suite (cargo test), then builds the Python extension into a local
# virtualenv and runs the pytest suite on both runtimes. Needs only Rust and Python 3.9+;
# installs maturin, numpy, pyyaml and pytest from PyPI into .venv on first use, plus the
# test-only references listed in tests/requirements/ (*.pip into .venv, *.apt from the
# distribution's packages): the product itself never needs them.
set -euo pipefail
cd "$(dirname "$0")/.."

# Test-only system packages (sox, espeak-ng, ...): installed when missing; a machine where they
# cannot be installed fails here, loudly, rather than skipping the tests that need them.
apt_wanted=$(cat tests/requirements/*.apt 2>/dev/null | sed 's/#.*//' | xargs -r echo)
apt_missing=""
for p in $apt_wanted; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || apt_missing="$apt_missing $p"
done
if [ -n "$apt_missing" ]; then
    echo "== installing test-only system packages:$apt_missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
    if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $apt_missing >/dev/null; }; then
        echo "cannot install the test-only packages:$apt_missing (needs root or passwordless sudo)" >&2
        exit 1
    fi
fi

VENV="${REMOTEMEDIA_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
pip_reqs=()
nodeps_reqs=()
for f in tests/requirements/*.pip; do
    [ -e "$f" ] || continue
    case "$f" in
        *.nodeps.pip) nodeps_reqs+=(-r "$f") ;;
        *) pip_reqs+=(-r "$f") ;;
    esac
done
"$PY" -m pip install -q --disable-pip-version-check "maturin>=1.9.4,<2" "numpy>=1.21" "pyyaml>=5.4" "pytest>=7" "${pip_reqs[@]}"
if [ ${#nodeps_reqs[@]} -gt 0 ]; then
    "$PY" -m pip install -q --disable-pip-version-check --no-deps "${nodeps_reqs[@]}"
fi

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
