#!/usr/bin/env bash
# Packs the scaling sweep (benchmarks/scaling_bench.py) for another machine, one with more cores
# and no Rust: the abi3 wheel, the command-line binary and the Rust streaming benchmark, built
# here in release mode, with the three benchmark scripts and a run.sh. Why: the "every core"
# targets are set on 16 cores and our machines have 2; whoever has a bigger machine (or lends one
# for minutes) should need one copy and one command, not a build there.
#
#   bash scripts/scaling_bundle.sh [DIR]     # default dist/scaling (~35 MB; ~100 MB without `strip`)
#   # copy DIR to the other machine (same OS and CPU architecture, glibc at least this one's), then:
#   bash DIR/run.sh [OUT]                    # needs python3 (3.10+) with numpy and pip; OUT default /tmp/scaling-out
#
# run.sh prints the machine, runs the sweep up to every usable core (ROUNDS, default 7; ARGS are
# passed on, e.g. ARGS="--items 512 --workers 1,2"), then diagnostics on the largest worker counts
# (DIAG, default 8,16): run_batch thread by thread (benchmarks/batch_threads.py: what each thread
# ran, waited for a CPU, parked), with the workers unpinned, with items placed by index instead of
# taken (REMOTEMEDIA_BALANCE=0), and on 8,192 items. Everything it prints lands in OUT as .txt and
# .json (eleven files; where fewer may come back, `tar czf FILE -C OUT .` after it). Each part has its own time limit (PART_LIMIT, default 300 s), so
# one that hangs costs that part, not the run; on 2 cores the whole run takes ~4 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-dist/scaling}"
VENV="${REMOTEMEDIA_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.9.4,<2"
rm -rf "$DIR"
mkdir -p "$DIR/benchmarks"

echo "== the wheel (release, stripped)"
VIRTUAL_ENV="$PWD/$VENV" PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/maturin" build --release --strip --quiet -o "$DIR"

echo "== the command line and the Rust streaming benchmark (release)"
cargo build --release --quiet --bin remotemedia
# The bench executable's path, as cargo reports it (its name carries a hash).
stream=$(cargo bench --quiet --bench stream_scaling --no-run --message-format=json \
    | "$VENV/bin/python" -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "stream_scaling" and m.get("executable"):
        print(m["executable"])')
[ -n "$stream" ] || { echo "cargo reported no stream_scaling executable" >&2; exit 1; }
copy() { if command -v strip >/dev/null; then strip -o "$2" "$1"; else cp "$1" "$2"; fi; }
copy target/release/remotemedia "$DIR/remotemedia"
copy "$stream" "$DIR/stream_scaling"
cp benchmarks/scaling_bench.py benchmarks/batch_bench.py benchmarks/streaming_bench.py benchmarks/batch_threads.py "$DIR/benchmarks/"

cat > "$DIR/run.sh" <<'RUN'
#!/usr/bin/env bash
# The scaling sweep on this machine, from the bundle scripts/scaling_bundle.sh made (see there).
set -uo pipefail
B="$(cd "$(dirname "$0")" && pwd)"
OUT="$(mkdir -p "${1:-/tmp/scaling-out}" && cd "${1:-/tmp/scaling-out}" && pwd)"
PY="${PY:-python3}"
{
    echo "== machine"
    nproc; lscpu 2>/dev/null | grep -E '^Model name|^CPU\(s\)|^Thread|^Core|^Socket|^NUMA node|MHz'
    free -g 2>/dev/null | head -2; uname -r
    echo "transparent huge pages: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
} 2>&1 | tee "$OUT/machine.txt"
# What the bundle needs of this machine, said plainly rather than as pip's "not a supported wheel".
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null \
    || { echo "run.sh needs Python 3.10 or newer as \$PY (now: $("$PY" --version 2>&1))" >&2; exit 1; }
"$PY" -c 'import numpy' 2>/dev/null || { echo "run.sh needs numpy in $PY ($PY -m pip install numpy)" >&2; exit 1; }
"$PY" -m pip --version >/dev/null 2>&1 || { echo "run.sh needs pip in $PY, to unpack the wheel" >&2; exit 1; }
# The package goes into the bundle's own folder, not into this Python's site-packages.
rm -rf "$B/site"
"$PY" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check --target "$B/site" "$B"/*.whl || exit 1
export PYTHONPATH="$B/site" PYTHONUNBUFFERED=1
"$PY" -c "import numpy, remotemedia, remotemedia._native as n; print('numpy', numpy.__version__, remotemedia.__file__, 'simd', n.simd_features()['used'])" || exit 1
SCRATCH=/dev/shm; [ -d /dev/shm ] && [ -w /dev/shm ] || SCRATCH=/tmp
cd "$B"
LIMIT="${PART_LIMIT:-300}"
DIAG="${DIAG:-8,16}"
# Each part under its own limit; a part that ran out of time says so and the next one runs.
part() {
    local name="$1"; shift
    echo "== $name"
    timeout "$LIMIT" "$@" 2>&1 | tee "$OUT/$name.txt"
    local rc=${PIPESTATUS[0]}
    [ "$rc" = 124 ] && echo "== $name: stopped after $LIMIT s (PART_LIMIT)" | tee -a "$OUT/$name.txt"
    return 0
}
part scaling "$PY" benchmarks/scaling_bench.py --binary "$B/remotemedia" --stream-binary "$B/stream_scaling" --scratch "$SCRATCH" \
    --rounds "${ROUNDS:-7}" ${ARGS:-} --json "$OUT/scaling.json"
part threads "$PY" benchmarks/batch_threads.py --workers "2,$DIAG" --json "$OUT/threads.json"
REMOTEMEDIA_PIN_WORKERS=0 part unpinned "$PY" benchmarks/scaling_bench.py --workers "$DIAG" --rounds 5 --skip cli,pystream,rsstream \
    --json "$OUT/unpinned.json"
REMOTEMEDIA_BALANCE=0 part by_index "$PY" benchmarks/scaling_bench.py --workers "$DIAG" --rounds 5 --skip cli,pystream,rsstream \
    --json "$OUT/by_index.json"
part items8k "$PY" benchmarks/scaling_bench.py --workers "$DIAG" --items 8192 --rounds 3 --skip cli,pystream,rsstream \
    --json "$OUT/items8k.json"
echo "== done: $OUT"
RUN
chmod +x "$DIR/run.sh"
du -sh "$DIR"
echo "bundle: $DIR (run it elsewhere with: bash $DIR/run.sh [OUT])"
