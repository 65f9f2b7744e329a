#!/usr/bin/env bash
# Runs every test: the Rust suite (cargo test), then builds the Python extension into a local
# virtualenv and runs the pytest suite on both runtimes. Needs only Rust and Python 3.10+;
# installs maturin, numpy, pyyaml and pytest from PyPI into .venv on first use, plus the
# test-only references listed in tests/requirements/ (*.pip into .venv, *.apt from the
# distribution's packages): the product itself never needs them.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each stage says what it does before it starts and how long it took when it ends; a summary of
# the stages closes the run (a cold build takes minutes, and silence looks like a hang).
script_start=$(date +%s)
stage_log=""
stage() {
    local name=$1
    shift
    echo "== $name"
    local t0
    t0=$(date +%s)
    "$@"
    local took=$(( $(date +%s) - t0 ))
    echo "   $name: ${took} s"
    stage_log="$stage_log$(printf '  %6d s  %s' "$took" "$name")"$'\n'
}
summary() {
    echo "== stages"
    printf '%s' "$stage_log"
    echo "  $(printf '%6d' $(( $(date +%s) - script_start ))) s  in all"
}

# Test-only system packages (sox, espeak-ng, ...): installed when missing; a machine where they
# cannot be installed fails here, loudly, rather than skipping the tests that need them.
apt_wanted=$(cat tests/requirements/*.apt 2>/dev/null | sed 's/#.*//' | xargs -r echo)
apt_missing=""
for p in $apt_wanted; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || apt_missing="$apt_missing $p"
done
install_apt() {
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
    if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $apt_missing >/dev/null; }; then
        echo "cannot install the test-only packages:$apt_missing (needs root or passwordless sudo)" >&2
        exit 1
    fi
}
if [ -n "$apt_missing" ]; then
    stage "installing test-only system packages:$apt_missing" install_apt
fi

VENV="${REMOTEMEDIA_VENV:-.venv}"
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
python_deps() {
    if [ ! -x "$PY" ]; then
        python3 -m venv "$VENV"
    fi
    "$PY" -m pip install -q --disable-pip-version-check "maturin>=1.9.4,<2" "numpy>=1.21" "pyyaml>=5.4" "pytest>=7" "${pip_reqs[@]}"
    if [ ${#nodeps_reqs[@]} -gt 0 ]; then
        "$PY" -m pip install -q --disable-pip-version-check --no-deps "${nodeps_reqs[@]}"
    fi
}
stage "Python packages into $VENV (maturin, numpy, pyyaml, pytest, tests/requirements/*.pip)" python_deps

# Built with cargo's progress lines (the first build compiles every dependency: minutes).
stage "building the Rust crate and its tests (cargo test --no-run, debug profile)" cargo test --no-run
stage "running the Rust tests (cargo test)" cargo test --quiet

# A release build: the one users get, and the one benchmarks need (a debug extension is slower
# and would mislead anyone timing code from this .venv).
stage "building the Python extension, release (maturin develop --release)" \
    env VIRTUAL_ENV="$PWD/$VENV" PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/maturin" develop --release

# run_pytest VAR=VALUE: the suite under that switch; a failing pass sets $status and the next one
# still runs, so one run reports both.
run_pytest() {
    set +e
    env -u REMOTEMEDIA_REQUIRE_NATIVE -u REMOTEMEDIA_BLOCK_NATIVE "$@" "$PY" -m pytest tests/python -q
    local code=$?
    set -e
    # pytest exits 5 when it collects nothing: that is a broken suite here, not a pass.
    if [ "$code" -eq 5 ]; then
        echo "pytest collected no tests" >&2
        code=1
    fi
    [ "$code" -eq 0 ] || status=1
}
status=0
stage "pytest (tests/python, both runtimes)" run_pytest REMOTEMEDIA_REQUIRE_NATIVE=1
# The same suite with remotemedia._native unimportable, as where no wheel fits: the pure-numpy
# runtime must pass every test not marked requires_native (those skip; any other skip fails).
stage "pytest without the native extension (tests/python, REMOTEMEDIA_BLOCK_NATIVE=1)" run_pytest REMOTEMEDIA_BLOCK_NATIVE=1
summary
exit "$status"
