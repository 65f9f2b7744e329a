#!/usr/bin/env python3
"""Regenerates (or checks) the Silero VAD v6 weights shipped in assets/silero_vad/.

Source: ``silero_vad/data/silero_vad.onnx`` from the ``silero-vad`` 6.2.3 wheel (MIT, Silero
Team). The weights that make onnxruntime's outputs are ``Constant`` nodes inside the graph's
top-level ``If`` on the sample rate (then: 16 kHz, else: 8 kHz); the wheel's
``silero_vad_16k.safetensors`` holds other weights and is not used.

What is written: every learned tensor of both rates, float32, in the safetensors layout (an
8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and byte
range, then the raw data), with the provenance in the header's ``__metadata__``. The STFT basis
is not shipped: it is a periodic Hann window times the DFT, which the engine computes with an
FFT; this script checks that the graph's basis is exactly that (to 1e-6) before writing.

    pip install --no-deps silero-vad==6.2.3 && pip install onnx
    python scripts/silero_weights.py            # writes assets/silero_vad/silero_vad_v6.safetensors
    python scripts/silero_weights.py --check    # exit 1 if the shipped file differs from a regeneration
    python scripts/silero_weights.py --onnx PATH/silero_vad.onnx ...

The file names, the graph's names and our names are listed in ``TENSORS`` below; the Rust
loader (src/nodes/silero/weights.rs) and the numpy twin (python/remotemedia/_pure/silero.py)
read our names.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
from pathlib import Path

import numpy as np

PACKAGE_VERSION = "6.2.3"
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "assets" / "silero_vad" / "silero_vad_v6.safetensors"

#: Our tensor name -> the name inside the ONNX graph (after its branch's inline prefix).
TENSORS = {
    "conv1.weight": "encoder.0.reparam_conv.weight",
    "conv1.bias": "encoder.0.reparam_conv.bias",
    "conv2.weight": "encoder.1.reparam_conv.weight",
    "conv2.bias": "encoder.1.reparam_conv.bias",
    "conv3.weight": "encoder.2.reparam_conv.weight",
    "conv3.bias": "encoder.2.reparam_conv.bias",
    "conv4.weight": "encoder.3.reparam_conv.weight",
    "conv4.bias": "encoder.3.reparam_conv.bias",
    "lstm.weight_ih": "decoder.rnn.weight_ih",
    "lstm.weight_hh": "decoder.rnn.weight_hh",
    "lstm.bias_ih": "decoder.rnn.bias_ih",
    "lstm.bias_hh": "decoder.rnn.bias_hh",
    "out.weight": "decoder.decoder.2.weight",
    "out.bias": "decoder.decoder.2.bias",
}
#: Graph branch of the top-level If (``sr == 16000``) -> our prefix and STFT filter length.
BRANCHES = {"then_branch": ("16k", 256), "else_branch": ("8k", 128)}


def default_onnx() -> Path:
    # Located, not imported: the package imports torch, which this script does not need.
    from importlib.metadata import PackageNotFoundError, version
    from importlib.util import find_spec

    try:
        spec = find_spec("silero_vad")
        installed = version("silero-vad")
    except PackageNotFoundError:
        spec = None
    if spec is None or spec.origin is None:
        sys.exit("silero-vad is not installed: pip install --no-deps silero-vad==6.2.3 (or pass --onnx PATH)")

    if installed != PACKAGE_VERSION:
        sys.exit(f"silero-vad {installed} is installed; these weights come from {PACKAGE_VERSION}")
    return Path(spec.origin).parent / "data" / "silero_vad.onnx"


def constants(graph) -> dict:
    from onnx import numpy_helper

    out = {}
    for node in graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    out[node.output[0]] = numpy_helper.to_array(a.t)
    return out


def hann_dft_basis(n: int) -> np.ndarray:
    """[n+2, 1, n]: rows w·cos(2πkm/n) for k = 0..n/2, then −w·sin(2πkm/n); w = periodic Hann."""
    m = np.arange(n)
    k = np.arange(n // 2 + 1)[:, None]
    w = 0.5 - 0.5 * np.cos(2 * np.pi * m / n)
    ang = 2 * np.pi * k * m / n
    return np.concatenate([w * np.cos(ang), -w * np.sin(ang)])[:, None, :]


def extract(onnx_path: Path) -> dict:
    import onnx

    model = onnx.load(str(onnx_path))
    top = [n for n in model.graph.node if n.op_type == "If"]
    if len(top) != 1:
        sys.exit(f"{onnx_path}: expected one top-level If on the sample rate, found {len(top)}")
    tensors = {}
    for attr in top[0].attribute:
        prefix, n_fft = BRANCHES[attr.name]
        found = constants(attr.g)

        def get(name: str) -> np.ndarray:
            hits = [v for k, v in found.items() if k.endswith("__" + name)]
            if len(hits) != 1:
                sys.exit(f"{onnx_path} {attr.name}: {len(hits)} constants named {name}")
            return hits[0].astype(np.float32)

        basis = get("stft.forward_basis_buffer")
        err = float(np.max(np.abs(basis - hann_dft_basis(n_fft))))
        if basis.shape != (n_fft + 2, 1, n_fft) or err > 1e-6:
            sys.exit(f"{prefix} STFT basis {basis.shape} is not a Hann-windowed DFT of {n_fft} (max error {err:.2e})")
        for ours, theirs in TENSORS.items():
            tensors[f"{prefix}.{ours}"] = np.ascontiguousarray(get(theirs))
    return tensors


def serialise(tensors: dict, metadata: dict) -> bytes:
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        data = tensors[name].astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def build(onnx_path: Path) -> bytes:
    raw = onnx_path.read_bytes()
    metadata = {
        "source": f"silero-vad {PACKAGE_VERSION} (PyPI wheel), silero_vad/data/silero_vad.onnx",
        "source_sha256": hashlib.sha256(raw).hexdigest(),
        "license": "MIT, Copyright (c) 2020-present Silero Team (assets/silero_vad/LICENSE)",
        "generator": "scripts/silero_weights.py",
    }
    return serialise(extract(onnx_path), metadata)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onnx", type=Path, help="silero_vad.onnx to read (default: the installed silero-vad package's)")
    ap.add_argument("--check", action="store_true", help="compare with the shipped file instead of writing it")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    onnx_path = args.onnx or default_onnx()
    data = build(onnx_path)
    if args.check:
        shipped = args.out.read_bytes() if args.out.exists() else b""
        if shipped != data:
            print(f"{args.out} differs from the weights regenerated from {onnx_path}", file=sys.stderr)
            return 1
        print(f"{args.out} matches {onnx_path} (sha256 {hashlib.sha256(onnx_path.read_bytes()).hexdigest()})")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes) from {onnx_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
