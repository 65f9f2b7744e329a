"""VAD quality on the noisy-speech set (tests/python/noisy_speech.py): frame F1 per SNR, the
false-alarm rate and the CPU time per second of audio, for every detector in one run:

* ``VADNode`` (the DSP detector, native; ``--twin`` adds the numpy twin),
* ``SileroVADNode`` raw (p >= 0.5 per chunk) and with silero-vad's timestamps (the defaults),
* onnxruntime running the silero-vad 6.2.3 wheel's model (1 thread), raw and through silero-vad's
  own ``get_speech_timestamps``: the reference implementation,
* webrtcvad mode 2 (30 ms frames),
* with ``--before REF``: ``VADNode`` as it was at git revision ``REF`` (its numpy twin, read
  with ``git show``; the twin gives the native node's decisions), the baseline of a change.

Scoring: 10 ms frames against the set's reference labels; a frame is speech when its centre lies
in a detected segment. F1 per SNR is over all clips and noise kinds at that SNR; the false-alarm
rate is the share of non-speech frames called speech, over every item.

    python benchmarks/vad_quality.py [--clips 6] [--twin] [--before REF] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "python"))
sys.path.insert(0, str(ROOT / "python"))

import noisy_speech as ns  # noqa: E402

RATE = ns.RATE
SNRS = (None, 20, 10, 5, 0)


def runs_to_segments(decisions: np.ndarray, frame_s: float):
    edges = np.flatnonzero(np.diff(np.concatenate([[0], decisions.astype(np.int8), [0]])))
    return [(s * frame_s, e * frame_s) for s, e in zip(edges[::2], edges[1::2])]


def vadnode_at(ref: str) -> Callable[[np.ndarray], list]:
    """VADNode's numpy twin (python/remotemedia/_pure/vad.py, self-contained) at git revision ``ref``."""
    import subprocess
    import types

    src = subprocess.run(["git", "show", f"{ref}:python/remotemedia/_pure/vad.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    mod = types.ModuleType(f"vad_at_{ref}")
    exec(compile(src, f"{ref}:vad.py", "exec"), mod.__dict__)

    def detect(x):
        st = mod.VadState(RATE, 30)
        frames = np.concatenate([st.push(x), st.finish()]).astype(bool)
        return runs_to_segments(frames, 0.03)

    return detect


def detectors(twin: bool, before: str = None) -> Dict[str, Callable[[np.ndarray], list]]:
    from remotemedia import Pipeline, SileroVADNode, VADNode

    def pipeline_detector(node, runtime="rust"):
        pipelines = []  # built on first use, so --only skips the others entirely

        def detect(x):
            if not pipelines:
                pipelines.append(Pipeline([node], runtime_hint=runtime))
            return pipelines[0].run_sync((x, RATE))[node.node_id]["segments"]

        return detect

    out = {
        "VADNode": pipeline_detector(VADNode(node_id="v")),
        "SileroVADNode raw p>=0.5": pipeline_detector(SileroVADNode(mode="raw", node_id="v")),
        "SileroVADNode timestamps": pipeline_detector(SileroVADNode(node_id="v")),
    }
    if before:
        out[f"VADNode at {before} (numpy twin)"] = vadnode_at(before)
    if twin:
        out["VADNode (numpy twin)"] = pipeline_detector(VADNode(node_id="v"), "python")
    try:
        import silero_reference as ref

        ort = ref.OrtSilero()
        out["onnxruntime Silero p>=0.5"] = lambda x: runs_to_segments(ort.probabilities(x, RATE) >= 0.5, 512 / RATE)
        out["onnxruntime get_speech_timestamps"] = lambda x: [
            (d["start"] / RATE, d["end"] / RATE) for d in ref.get_speech_timestamps(x, ort, RATE)
        ]
    except ImportError as e:
        print(f"(onnxruntime / silero-vad not installed: {e}; see tests/requirements/silero*.pip)", file=sys.stderr)
    try:
        import webrtcvad

        vad = webrtcvad.Vad(2)

        def webrtc(x):
            pcm = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)
            n = 480
            d = np.array([vad.is_speech(pcm[i : i + n].tobytes(), RATE) for i in range(0, pcm.size - n + 1, n)])
            return runs_to_segments(d, n / RATE)

        out["webrtcvad mode 2"] = webrtc
    except ImportError:
        print("(webrtcvad not installed: pip install webrtcvad-wheels)", file=sys.stderr)
    return out


def evaluate(items, detect) -> Dict[str, object]:
    per_snr: Dict[object, List[np.ndarray]] = {s: [np.zeros(4, dtype=np.int64)] for s in SNRS}
    total = np.zeros(4, dtype=np.int64)  # tp, fp, fn, negatives
    seconds = 0.0
    audio_s = 0.0
    for it in items:
        t = time.perf_counter()
        segments = detect(it.noisy)
        seconds += time.perf_counter() - t
        audio_s += it.noisy.size / RATE
        d = ns.segments_to_frames(segments, it.clip.labels.size)
        l = it.clip.labels
        counts = np.array([np.sum(d & l), np.sum(d & ~l), np.sum(~d & l), np.sum(~l)])
        per_snr[it.snr_db][0] += counts
        total += counts
    f1 = {}
    for snr, (c,) in per_snr.items():
        tp, fp, fn, _ = c
        f1["clean" if snr is None else f"{snr:g} dB"] = 100.0 * 2 * tp / max(2 * tp + fp + fn, 1)
    return {"f1": f1, "false_alarm": 100.0 * total[1] / max(total[3], 1), "us_per_audio_s": seconds / audio_s * 1e6}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--twin", action="store_true", help="also score VADNode's numpy twin")
    ap.add_argument("--before", metavar="REF", help="also score VADNode as it was at this git revision")
    ap.add_argument("--only", help="score only detectors whose name contains this")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    items = ns.noisy_set(snrs=SNRS, n_clips=args.clips)
    audio_s = sum(it.noisy.size for it in items) / RATE
    print(f"{len(items)} items, {audio_s:.0f} s of audio ({args.clips} clips x clean + 5 noises x 4 SNRs)\n")
    results = {}
    header = "| detector | F1 clean / 20 / 10 / 5 / 0 dB | false alarms | CPU per s of audio |"
    print(header)
    print("|---|---|---|---|")
    for name, detect in detectors(args.twin, args.before).items():
        if args.only and args.only not in name:
            continue
        r = evaluate(items, detect)
        results[name] = r
        f1 = " / ".join(f"{v:.1f}" for v in r["f1"].values())
        print(f"| {name} | {f1} | {r['false_alarm']:.1f} % | {r['us_per_audio_s']:,.0f} µs |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
