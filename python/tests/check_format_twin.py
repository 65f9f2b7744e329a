"""Checks that remotemedia._pure.format.convert is bit-exact with the Rust kernels.

Run `cargo run --example format_twin_dump -- /tmp/format_twin` first, then
`python python/tests/check_format_twin.py /tmp/format_twin` (from the repository root).
"""

import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from remotemedia._pure.format import FORMATS, convert  # noqa: E402

d = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/format_twin")
failures = 0
for src, sdt in FORMATS.items():
    x = np.fromfile(d / f"in_{src}.raw", dtype=sdt.newbyteorder("<"))
    for dst, ddt in FORMATS.items():
        want = np.fromfile(d / f"{src}_to_{dst}.raw", dtype=ddt.newbyteorder("<"))
        got = convert(x, dst)
        # Compare raw bytes: NaN payloads, signed zeros and all.
        same = got.dtype == ddt and got.tobytes() == want.tobytes()
        if not same:
            # NaN != NaN, so compare bit patterns as unsigned integers of the same width.
            u = np.dtype(f"<u{ddt.itemsize}")
            bad = np.flatnonzero(got.astype(ddt).view(u) != want.view(u)) if got.shape == want.shape else np.arange(5)
            failures += 1
            print(f"MISMATCH {src}->{dst}: {len(bad)} values differ, first inputs {x[bad[:5]]!r}, "
                  f"rust {want[bad[:5]]!r}, python {got[bad[:5]]!r}")
        else:
            print(f"ok {src}->{dst}: {len(x)} samples bit-identical")
sys.exit(1 if failures else 0)
