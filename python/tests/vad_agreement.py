"""Checks the numpy VAD twin against the native VAD's decisions, and prints frame-level F1 of both.

Run `cargo run --release --example vad_dump -- /tmp/vad_dump` first, then
`python python/tests/vad_agreement.py /tmp/vad_dump`. Exits non-zero if any case agrees on
fewer than 99% of frames.
"""

import importlib.util
import os
import sys

import numpy as np

# Loaded by path: the numpy twin is standalone, and this works with or without the package installed.
_spec = importlib.util.spec_from_file_location(
    "_pure_vad", os.path.join(os.path.dirname(__file__), "..", "remotemedia", "_pure", "vad.py")
)
_vad = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_vad)
VadState, vad = _vad.VadState, _vad.vad


def f1(pred, truth):
    tp = np.sum(pred & truth)
    fp = np.sum(pred & ~truth)
    fn = np.sum(~pred & truth)
    return 2 * tp / max(2 * tp + fp + fn, 1)


def main(folder):
    worst = 1.0
    total = agree = 0
    for name in sorted(f[:-7] for f in os.listdir(folder) if f.endswith(".native")):
        kind, snr, rate, ms = name.split("_")
        rate, ms = int(rate), int(ms)
        signal = f"{kind}_{snr}_{rate}"
        x = np.fromfile(os.path.join(folder, signal + ".f32"), dtype="<f4")
        truth = np.fromfile(os.path.join(folder, signal + ".truth"), dtype=np.uint8).astype(bool)
        native = np.fromfile(os.path.join(folder, name + ".native"), dtype=np.uint8).astype(bool)
        _, frames = vad(x[:, None], rate, ms)
        # Streaming in odd-sized chunks must give the same decisions as the whole buffer.
        st = VadState(rate, ms)
        chunks = [st.push(x[i : i + 777]) for i in range(0, len(x), 777)] + [st.finish()]
        assert np.array_equal(np.concatenate(chunks), frames), name
        fl = rate * ms // 1000
        nf = len(x) // fl
        ft = truth[: nf * fl].reshape(nf, fl).sum(axis=1) * 2 >= fl
        assert len(frames) == len(native) == nf, (name, len(frames), len(native), nf)
        a = float(np.mean(frames == native))
        worst = min(worst, a)
        total += nf
        agree += int(np.sum(frames == native))
        print(f"{name:24s} agreement {a:.4f}  F1 native {f1(native, ft):.3f} numpy {f1(frames, ft):.3f}")
    print(f"overall agreement {agree / total:.5f} over {total} frames; worst case {worst:.4f}")
    return 0 if worst >= 0.99 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/vad_dump"))
