"""``python -m remotemedia``: the ``remotemedia`` command line (``src/cli/``) for Python users, with the
same commands, flags, output layout and exit codes, running on either runtime.

    python -m remotemedia run MANIFEST [--input FILE.wav] [--output FILE.wav] [--json FILE]
                              [--metrics] [--prometheus[=FILE]] [--workers N] [--runtime auto|rust|python]
    python -m remotemedia graph MANIFEST
    python -m remotemedia node-types
    python -m remotemedia limits
    python -m remotemedia batch MANIFEST INPUT_DIR --out DIR [--workers N] [--chunk N] [--runtime ...]

Exit codes (as the Rust CLI): 0 success; 2 bad arguments or a problem with what the user pointed at
(missing or invalid manifest, missing or non-WAV input file); 1 the pipeline failed (a node error,
a node that cannot be constructed, the requested runtime is unavailable) or an output file could
not be written. Errors go to stderr prefixed ``error:``; what was printed before a failure stays on
stdout. No traceback reaches the user.

Standard library and numpy only (PyYAML is needed for YAML manifests, as for ``Pipeline.from_yaml``).
"""

from __future__ import annotations

import argparse
import decimal
import json
import math
import os
import struct
import sys
import time
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["main", "CliError", "SAMPLE_NAME"]

#: File name of the bundled speech sample, used when ``run`` is given no ``--input``.
SAMPLE_NAME = "sample_speech.wav"

#: Longest compact JSON shown inline; longer values are cut (the ``--json`` file has them whole).
MAX_INLINE_JSON = 160

#: Segments or clips listed per output unless ``--all`` (a 10-minute recording has hundreds).
MAX_LISTED = 20

#: The JSONL manifest written into each clips output's folder by ``batch``.
CLIP_MANIFEST = "metadata.jsonl"

_RUNTIME_NAMES = {"rust": "rust (native engine)", "python": "python (pure-Python runtime, numpy)"}


class CliError(Exception):
    """A failure to report: a message for stderr and the exit code (2 usage, 1 failure)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _usage(message: str) -> CliError:
    return CliError(2, message)


def _failure(message: str) -> CliError:
    return CliError(1, message)


# ---- arguments ----


def _workers(s: str) -> int:
    n = int(s) if s.isdigit() else 0
    if not 1 <= n <= 256:
        raise argparse.ArgumentTypeError(f"expected a worker count from 1 to 256, found '{s}'")
    return n


def _chunk_ms(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value '{s}': expected an integer from 1 to 10000") from None
    if not 1 <= v <= 10000:
        raise argparse.ArgumentTypeError(f"{v} is not in 1..=10000")
    return v


def _manifest_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("manifest", metavar="MANIFEST", help="the pipeline manifest (.json, .yaml or .yml)")


def _workers_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("-w", "--workers", metavar="N", type=_workers,
                   help="timely workers (overrides the manifest's config.workers), 1 to 256")


def _all_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--all", action="store_true",
                   help=f"list every speech segment and clip (default: the first {MAX_LISTED} of each output)")


def _runtime_arg(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--runtime", choices=("auto", "rust", "python"), default="auto", help=help)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m remotemedia",
        description="Run and inspect remotemedia pipeline manifests (JSON or YAML).",
        epilog="Exit codes: 0 success, 1 the pipeline failed, 2 bad arguments, manifest or input file.",
        allow_abbrev=False,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser(
        "run",
        usage="%(prog)s MANIFEST [-i FILE.wav] [-o FILE.wav] [--json FILE] [--metrics]\n"
        "       [--prometheus[=FILE]] [-w N] [--once] [--all] [--runtime auto|rust|python]",
        help="run a manifest once on a WAV file and describe every output and each node's time",
        description="Run a manifest once on a WAV file (the bundled speech sample by default) and "
        "describe every output and how long each node took.",
        allow_abbrev=False,
    )
    _manifest_arg(run)
    run.add_argument("-i", "--input", metavar="FILE.wav", help="WAV file to run on (default: the bundled sample_speech.wav)")
    run.add_argument("-o", "--output", metavar="FILE.wav",
                     help="write the first audio output (or the audio a VAD result carries) to this WAV file")
    run.add_argument("--json", metavar="FILE", help="write the input, the outputs and the metrics document to this JSON file")
    run.add_argument("--metrics", action="store_true", help="also print per-node counts, errors and latency percentiles")
    # `--prometheus` alone prints; `--prometheus=FILE` writes (the `=` is required, as in the Rust
    # CLI, so that `--prometheus MANIFEST` never takes the manifest for a file name): see main().
    run.add_argument("--prometheus", metavar="FILE", nargs="?", const="", default=None,
                     help="also print the metrics in Prometheus text format (or write them to FILE with --prometheus=FILE)")
    _workers_arg(run)
    run.add_argument("--once", action="store_true",
                     help="run once: no second, warm run (node times then include one-time costs)")
    _all_arg(run)
    _runtime_arg(run, "which runtime runs the pipeline; auto (default) follows REMOTEMEDIA_RUNTIME, "
                      "else the native engine when it can be imported")

    stream = sub.add_parser(
        "stream",
        usage="%(prog)s MANIFEST [-i FILE.wav] [--chunk-ms MS] [-o FILE.wav] [--json FILE] [-w N]\n"
        "       [--all] [--runtime auto|rust|python]",
        help="push a WAV file through a streaming session chunk by chunk and report what came out",
        description="Push a WAV file through a streaming session chunk by chunk (as a live source would) "
        "and report VAD segments as they close, the concatenated outputs and the per-push latency.",
        allow_abbrev=False,
    )
    _manifest_arg(stream)
    stream.add_argument("-i", "--input", metavar="FILE.wav", help="WAV file to stream (default: the bundled sample_speech.wav)")
    stream.add_argument("--chunk-ms", metavar="MS", type=_chunk_ms, default=20, help="chunk length in milliseconds, 1 to 10000 (default 20)")
    stream.add_argument("-o", "--output", metavar="FILE.wav", help="write the first audio output, all chunks concatenated, to this WAV file")
    stream.add_argument("--json", metavar="FILE", help="write the input, the concatenated outputs and the per-push latencies to this JSON file")
    _workers_arg(stream)
    _all_arg(stream)
    _runtime_arg(stream, "which runtime runs the pipeline (default auto)")

    graph = sub.add_parser("graph", help="print the validated pipeline graph as Graphviz DOT",
                           description="Print the validated pipeline graph as Graphviz DOT (| dot -Tpng -o graph.png).",
                           allow_abbrev=False)
    _manifest_arg(graph)

    sub.add_parser("node-types", help="print every built-in node type (params, ports, outputs) as JSON",
                   description="Print every built-in node type (params, ports, outputs) as JSON.",
                   allow_abbrev=False)

    sub.add_parser("limits", help="print the engine's limits (manifests, workers, node outputs, resampler, sessions) as JSON",
                   description="Print the engine's limits (docs/reliability.md) as JSON.", allow_abbrev=False)

    batch = sub.add_parser(
        "batch",
        help="run a manifest over every audio file in a directory; write the outputs and report.json",
        description="Run a manifest over every audio file in a directory (any readable format, extensions matched ignoring case; sorted by name), spread over the "
        "workers; write NAME.NODE.wav / NAME.NODE.json outputs (clips as NODE/NAME.0001.wav with "
        "NODE/metadata.jsonl) and a report.json listing every input. "
        "Cluster mode (--processes) is the native CLI's: see docs/distributed.md.",
        allow_abbrev=False,
    )
    _manifest_arg(batch)
    batch.add_argument("input_dir", metavar="INPUT_DIR", help="directory whose audio files are the items")
    batch.add_argument("-o", "--out", metavar="DIR", required=True, help="directory for the outputs and report.json")
    _workers_arg(batch)
    batch.add_argument("--chunk", metavar="N", type=int, default=0,
                       help="items per engine batch (0: four per worker)")
    batch.add_argument("--no-progress", action="store_true", help="accepted for parity; this CLI draws no bar")
    _runtime_arg(batch, "which runtime runs the pipeline (the pure-Python one runs items one after another)")

    info = sub.add_parser("info", help="describe audio files (format, channels, rate, precision, duration), like soxi",
                          description="Describe audio files, like soxi: one row per file; an unreadable file "
                          "gets its error while the others are still described (exit 2).", allow_abbrev=False)
    info.add_argument("files", metavar="FILE", nargs="+", help="audio files (WAV on the pure runtime; any format natively)")
    info.add_argument("--json", action="store_true", help="print one JSON list, one object per file")
    _runtime_arg(info, "which runtime reads the files")
    return p


def _require_equals(argv: Sequence[str]) -> List[str]:
    """``--prometheus FILE`` must not take FILE as its value: a bare ``--prometheus`` becomes
    ``--prometheus=`` (the empty value means stdout); ``--prometheus=FILE`` stays as it is."""
    out: List[str] = []
    rest = False
    for a in argv:
        if a == "--":
            rest = True
        out.append("--prometheus=" if (a == "--prometheus" and not rest) else a)
    return out


def equals_tip(argv: Sequence[str]) -> Optional[str]:
    """A hint for ``--prometheus FILE``, which must be ``--prometheus=FILE`` (``equals_tip`` in Rust)."""
    for flag, value in zip(argv, argv[1:]):
        if flag == "--prometheus" and not value.startswith("-"):
            return f"tip: {flag} takes its value after '=': {flag}={value} (a bare {flag} prints to stdout)"
    return None


# ---- entry point ----


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parses ``argv`` (default ``sys.argv[1:]``), runs the command, prints its output to stdout and
    any error to stderr, and returns the exit code."""
    raw = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(_require_equals(raw))
    except SystemExit as e:
        tip = equals_tip(raw) if e.code == 2 else None
        if tip is not None:
            print(f"\n{tip}", file=sys.stderr)
        raise
    if getattr(args, "prometheus", None) == "" and "--prometheus=" in raw:
        # `--prometheus=` typed with nothing after it: clap refuses an empty value too.
        _parser()._subparsers._group_actions[0].choices["run"].error("argument --prometheus: a value is required after '=' (or leave out the '=')")
    out: List[str] = []
    code = 0
    try:
        with warnings.catch_warnings():  # restores showwarning when main() is called in-process
            warnings.showwarning = _show_warning
            if args.command == "run":
                _run(args, out)
            elif args.command == "stream":
                _stream(args, out)
            elif args.command == "graph":
                _graph(args, out)
            elif args.command == "batch":
                _batch(args, out)
            elif args.command == "info":
                _info(args, out)
            elif args.command == "limits":
                _limits(out)
            else:
                _node_types(out)
    except CliError as e:
        code = e.code
        error = e.message
    except KeyboardInterrupt:
        _print_stdout("".join(out))
        return 130
    except Exception as e:  # never a traceback: say what broke
        code = 1
        error = f"internal error: {type(e).__name__}: {e}"
    # Whatever was produced before a failure is still shown, then the error.
    _print_stdout("".join(out))
    if code:
        _print_stderr(f"error: {error}")
    return code


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    _print_stderr(f"warning: {message}")


def _print_stderr(text: str) -> None:
    """Writes a line to stderr; a closed stderr (its reader gone) loses the text, not the exit
    code (an exception here would turn every error's code into 1)."""
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        try:
            sys.stderr = open(os.devnull, "w")  # nothing left to flush at exit
        except OSError:
            pass


def _print_stdout(text: str) -> None:
    """Writes to stdout, ignoring a closed pipe (``python -m remotemedia node-types | head``)."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would complain again when flushing stdout at exit: point it at /dev/null.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass


# ---- loading ----


def _load_tree(path: str) -> Any:
    """The manifest tree of ``path`` (JSON for .json, YAML for .yaml/.yml, else by its first character)."""
    from .errors import ManifestError

    from ._pure.tree import read_file

    if _looks_like_audio(path):
        raise _usage(f"manifest '{path}': this looks like an audio file: pass it with --input "
                     f"(remotemedia run MANIFEST --input {path}); the first argument is the pipeline manifest "
                     "(.yaml or .json)")
    try:
        text = read_file(path)  # a regular file only, within the size limit, UTF-8
    except FileNotFoundError:
        raise _usage(f"manifest '{path}' not found") from None
    except ManifestError as e:
        raise _usage(str(e) if e.source is not None else f"{path}: {e}") from None
    except OSError as e:
        raise _usage(f"cannot read manifest {path}: {e}") from None
    ext = os.path.splitext(path)[1].lower()
    as_json = ext == ".json" or (ext not in (".yaml", ".yml") and text.lstrip().startswith("{"))
    # Read as strictly as the native CLI reads it: repeated keys and non-finite numbers are problems.
    from ._pure.tree import parse_json, parse_yaml

    try:
        if as_json:
            return parse_json(text)
        try:
            import yaml  # noqa: F401
        except ImportError:
            raise _usage(f"{path}: reading YAML manifests needs PyYAML (pip install pyyaml), or use a JSON manifest") from None
        return parse_yaml(text)
    except ManifestError as e:
        raise _usage(f"{path}: {e}") from None


def _looks_like_audio(path: str) -> bool:
    """Audio by its first bytes (WAV, FLAC, Ogg, MP3 with an ID3 tag) or extension (``looks_like_audio`` in Rust).
    Only a regular file is looked at: opening a FIFO would block (the reader refuses the others)."""
    if not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        head = b""
    magic = (len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE") or head.startswith((b"fLaC", b"OggS", b"ID3"))
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    return magic or ext in ("wav", "wave", "flac", "ogg", "opus", "mp3", "m4a", "aac", "aif", "aiff")


def _load_graph(path: str) -> Tuple[Any, Any]:
    """The manifest tree and its validated graph (built-in node types); every problem listed on failure."""
    from .errors import ManifestError
    from ._pure.schema import builtin_types
    from ._pure.validate import validate

    tree = _load_tree(path)
    try:
        return tree, validate(tree, builtin_types())
    except ManifestError as e:
        # "invalid manifest (2 problems)" followed by one line per problem.
        raise _usage(f"{path}: {e}") from None


def sample_candidates(manifest: str) -> List[str]:
    """Where the bundled sample is looked for, in order: next to the manifest (and in a ``dataflows/``
    folder there), in the source tree this package lives in, in ``./dataflows/`` and in ``.``."""
    d = os.path.dirname(manifest) or "."
    source_tree = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return [
        os.path.join(d, SAMPLE_NAME),
        os.path.join(d, "dataflows", SAMPLE_NAME),
        os.path.join(source_tree, "dataflows", SAMPLE_NAME),
        os.path.join("dataflows", SAMPLE_NAME),
        SAMPLE_NAME,
    ]


def _find_sample(manifest: str) -> str:
    candidates = sample_candidates(manifest)
    for c in candidates:
        if os.path.isfile(c):
            return c
    tried = "\n".join(f"  {c}" for c in candidates)
    raise _usage(f"no --input given and the bundled sample {SAMPLE_NAME} was not found; looked in:\n{tried}\npass --input FILE.wav")


def _load_input(input_path: Optional[str], manifest: str) -> Tuple[str, bool, Any]:
    """``(path, bundled, Audio)`` for ``--input``, or for the bundled sample when it is absent."""
    from .errors import InputError, RuntimeUnavailableError
    from .files import load

    bundled = input_path is None
    path = _find_sample(manifest) if input_path is None else input_path
    try:
        # Any readable format (native), WAV on the pure runtime; regular files only (a FIFO is
        # refused without blocking), as src/cli/mod.rs::load_input.
        audio = load(path, dtype=None)
    except FileNotFoundError as e:
        raise _usage(f"input file {e.strerror}") from None
    except (InputError, RuntimeUnavailableError) as e:
        raise _usage(f"invalid input: {e}") from None
    except OSError as e:
        raise _usage(f"invalid input: cannot read '{path}': {e.strerror or e}") from None
    except struct.error:
        raise _usage(f"invalid input: '{path}' is not a WAV file: its fmt chunk is cut short") from None
    return path, bundled, audio


# ---- describing audio and outputs (src/cli/report.rs) ----


def _format_name(samples: np.ndarray) -> str:
    return {"float32": "f32", "int16": "i16", "int32": "i32"}.get(samples.dtype.name, samples.dtype.name)


def peak(audio: Any) -> float:
    """The largest absolute sample relative to full scale (f32 as is, integers divided by 2^15 or
    2^31); NaN samples are ignored."""
    x = np.asarray(audio.samples)
    if x.size == 0:
        return 0.0
    if x.dtype.kind == "f":
        a = np.abs(x[~np.isnan(x)])
        return float(a.max()) if a.size else 0.0
    m = float(np.abs(x.astype(np.int64)).max())
    return m / (32768.0 if x.dtype == np.int16 else 2147483648.0)


def _fmt_peak(p: float) -> str:
    if not p > 0.0:
        return "peak 0 (silent)"
    return f"peak {p:.3f} ({20.0 * math.log10(p):.1f} dBFS)"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _duration(audio: Any) -> float:
    return audio.frames / audio.sample_rate


def describe_audio(a: Any) -> str:
    """``shape (frames, channels), 48000 Hz, i16, 5.885 s, peak 0.708 (-3.0 dBFS)``."""
    return (f"shape ({a.frames}, {a.channels}), {a.sample_rate} Hz, {_format_name(a.samples)}, "
            f"{_duration(a):.3f} s, {_fmt_peak(peak(a))}")


def describe_input(path: str, bundled: bool, a: Any) -> str:
    return (f"input    {path}{' (bundled sample)' if bundled else ''}\n"
            f"         {_duration(a):.3f} s, {a.sample_rate} Hz, {plural(a.channels, 'channel')}, "
            f"{_format_name(a.samples)}, {a.frames} frames, {_fmt_peak(peak(a))}\n")


def input_json(path: str, bundled: bool, a: Any) -> Dict[str, Any]:
    return {
        "path": path,
        "bundled_sample": bundled,
        "sample_rate": a.sample_rate,
        "channels": a.channels,
        "format": _format_name(a.samples),
        "frames": a.frames,
        "duration_s": _duration(a),
        "peak": peak(a),
    }


def _vad_stats(v: Any) -> Tuple[int, float]:
    frames = np.asarray(v["frames"], dtype=bool)
    speech = int(np.count_nonzero(frames))
    return speech, (speech / frames.size if frames.size else 0.0)


def _vad_frame_ms(v: Any, frame_ms: Optional[int]) -> int:
    """The VAD frame length: the node's param when known, else the carried audio's duration per frame."""
    if frame_ms is not None:
        return int(frame_ms)
    n = len(v["frames"])
    return int(round(_duration(v["audio"]) * 1000.0 / n)) if n else 0


class _ClipList(list):
    """A SegmentNode's output, so that no clips still reads as clips (an empty list is otherwise
    just JSON)."""


def _with_clip_lists(graph: Any, outputs: Dict[str, Any]) -> Dict[str, Any]:
    """``outputs`` with each SegmentNode's list marked as clips."""
    segment_ids = {n.id for n in graph.nodes if n.type.name == "SegmentNode"}
    return {k: _ClipList(v) if k in segment_ids and isinstance(v, list) else v for k, v in outputs.items()}


def _vad_frame_ms_by_node(graph: Any) -> Dict[str, Optional[int]]:
    """The frame length of each VAD node's results: VADNode's param, SileroVADNode's chunk."""
    from ._pure.silero import FRAME_MS

    out: Dict[str, Optional[int]] = {}
    for n in graph.nodes:
        if n.type.name == "VADNode":
            out[n.id] = n.params.get("frame_duration_ms")
        elif n.type.name == "SileroVADNode":
            out[n.id] = FRAME_MS
    return out


def _kind(p: Any) -> str:
    from .audio import Audio
    from .payloads import Clip, Features, VadResult

    if isinstance(p, _ClipList) or (isinstance(p, list) and p and all(isinstance(c, Clip) for c in p)):
        return "clips"
    if isinstance(p, Audio):
        return "audio"
    if isinstance(p, VadResult):
        return "vad"
    if isinstance(p, Features):
        return "features"
    if isinstance(p, dict):
        return "map"
    return "json"


def _list_spans(out: List[str], pad: str, spans: Sequence[Tuple[float, float]], what: str, show_all: bool) -> None:
    """Lines ``start – end s (duration)``, numbered from 1, at most MAX_LISTED unless ``show_all``."""
    shown = len(spans) if show_all else min(len(spans), MAX_LISTED)
    for i, (s, e) in enumerate(spans[:shown]):
        out.append(f"{pad}  {i + 1:>2}. {s:>7.2f} – {e:>7.2f} s  ({e - s:.2f} s)\n")
    if shown < len(spans):
        n = len(spans) - shown
        out.append(f"{pad}  … {n} more {what}{'' if n == 1 else 's'} (--all lists every one)\n")


def describe_payload(out: List[str], name: str, p: Any, indent: int, frame_ms: Optional[int] = None,
                     show_all: bool = False) -> None:
    """One output, as lines indented by ``indent`` spaces, starting with ``name: ``; segment and
    clip lists are cut at MAX_LISTED lines unless ``show_all``."""
    pad = " " * indent
    kind = _kind(p)
    if kind == "audio":
        out.append(f"{pad}{name}: audio, {describe_audio(p)}\n")
    elif kind == "vad":
        speech, fraction = _vad_stats(p)
        segments = list(p["segments"])
        out.append(f"{pad}{name}: VAD result, {plural(len(segments), 'speech segment')}, speech in "
                   f"{fraction * 100.0:.1f}% of {len(p['frames'])} frames of {_vad_frame_ms(p, frame_ms)} ms "
                   f"({speech} frames)\n")
        _list_spans(out, pad, segments, "segment", show_all)
        out.append(f"{pad}  audio: {describe_audio(p['audio'])}\n")
    elif kind == "clips":
        total = sum((_duration(c) for c in p), 0.0)
        shape = (f", {p[0].sample_rate} Hz, {plural(p[0].channels, 'channel')}, {_format_name(p[0].samples)}"
                 if p else "")
        out.append(f"{pad}{name}: {plural(len(p), 'clip')}, {total:.2f} s in all{shape}\n")
        _list_spans(out, pad, [(c.start, c.end) for c in p], "clip", show_all)
    elif kind == "features":
        lo, hi = _value_range(p)
        out.append(f"{pad}{name}: features, {plural(p.frames, 'frame')} x {p.bins} bins at {p.frame_rate:g} frames/s "
                   f"({p.frames / p.frame_rate:.2f} s), values {lo:.3f} to {hi:.3f}\n")
    elif kind == "map":
        keys = sorted(p)
        n = len(keys)
        out.append(f"{pad}{name}: map of {n} {'entry' if n == 1 else 'entries'} ({', '.join(keys)})\n")
        for k in keys:
            describe_payload(out, k, p[k], indent + 2, show_all=show_all)
    else:
        text = _json_compact(p)
        if len(text) > MAX_INLINE_JSON:
            text = text[:MAX_INLINE_JSON] + " …"
        out.append(f"{pad}{name}: json {text}\n")


def _value_range(f: Any) -> Tuple[float, float]:
    return (float(f.min()), float(f.max())) if f.size else (0.0, 0.0)


def _audio_fields(a: Any) -> Dict[str, Any]:
    return {
        "shape": [a.frames, a.channels],
        "channels": a.channels,
        "sample_rate": a.sample_rate,
        "format": _format_name(a.samples),
        "duration_s": _duration(a),
        "peak": peak(a),
    }


def payload_json(p: Any, frame_ms: Optional[int] = None) -> Dict[str, Any]:
    """One output as JSON: ``kind`` plus what describes it (docs/cli.md)."""
    kind = _kind(p)
    if kind == "audio":
        return {"kind": "audio", **_audio_fields(p), "frames": p.frames}
    if kind == "vad":
        speech, fraction = _vad_stats(p)
        # Audio fields describe the audio the result carries; `frames` counts VAD frames.
        return {
            "kind": "vad",
            **_audio_fields(p["audio"]),
            "segments": [[float(s), float(e)] for s, e in p["segments"]],
            "frames": len(p["frames"]),
            "frames_speech": speech,
            "frame_duration_ms": _vad_frame_ms(p, frame_ms),
            "speech_fraction": fraction,
        }
    if kind == "clips":
        first = p[0] if p else None
        return {
            "kind": "clips",
            "count": len(p),
            "duration_s": sum((_duration(c) for c in p), 0.0),
            "sample_rate": first.sample_rate if first is not None else None,
            "channels": first.channels if first is not None else None,
            "format": _format_name(first.samples) if first is not None else None,
            "clips": [clip_json(c) for c in p],
        }
    if kind == "features":
        lo, hi = _value_range(p)
        return {"kind": "features", "shape": [p.frames, p.bins], "frames": p.frames, "bins": p.bins,
                "frame_rate": p.frame_rate, "duration_s": p.frames / p.frame_rate, "min": lo, "max": hi}
    if kind == "map":
        return {"kind": "map", "entries": {k: payload_json(p[k]) for k in sorted(p)}}
    return {"kind": "json", "value": _plain(p)}


def clip_json(c: Any) -> Dict[str, Any]:
    """Where one clip lies in its recording (``clip_json`` in Rust)."""
    return {"start_s": c.start, "end_s": c.end, "duration_s": _duration(c), "start_frame": c.start_frame,
            "frames": c.frames}


def first_audio(outputs: Sequence[Tuple[str, Any]]) -> Optional[Tuple[str, Any]]:
    """The first audio among the outputs (a VAD result's audio counts, maps are searched in key
    order), with the name of the output it came from."""

    def find(name: str, p: Any) -> Optional[Tuple[str, Any]]:
        kind = _kind(p)
        if kind == "audio":
            return name, p
        if kind == "vad":
            return name, p["audio"]
        if kind == "map":
            for k in sorted(p):
                hit = find(f"{name}.{k}", p[k])
                if hit is not None:
                    return hit
        return None

    for name, p in outputs:
        hit = find(name, p)
        if hit is not None:
            return hit
    return None


# ---- JSON text as serde_json writes it ----


def _plain(v: Any) -> Any:
    """A JSON-ready copy: numpy scalars and arrays to Python values, tuples to lists, non-finite
    floats to None (serde_json writes them as null)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, np.generic):
        return _plain(v.item())
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _float_text(x: float) -> str:
    """A float as serde_json (ryu) writes it: shortest round-trip digits, ``1e16``, ``1e-7``, ``0.0001``."""
    if x == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    t = decimal.Decimal(repr(abs(x))).normalize().as_tuple()
    d = "".join(str(c) for c in t.digits)
    e = int(t.exponent)  # value = d * 10^e
    kk = len(d) + e  # position of the decimal point from the first digit
    if 0 <= e and kk <= 16:
        s = d + "0" * e + ".0"
    elif 0 < kk <= 16:
        s = d[:kk] + "." + d[kk:]
    elif -5 < kk <= 0:
        s = "0." + "0" * (-kk) + d
    elif len(d) == 1:
        s = f"{d}e{kk - 1}"
    else:
        s = f"{d[0]}.{d[1:]}e{kk - 1}"
    return sign + s


def _json_compact(v: Any) -> str:
    """Compact JSON as serde_json's ``to_string`` writes it (keys sorted, floats as ryu, no ASCII escaping)."""
    v = _plain(v)
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _float_text(v)
    if isinstance(v, list):
        return "[" + ",".join(_json_compact(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _json_compact(v[k]) for k in sorted(v)) + "}"
    return json.dumps(str(v), ensure_ascii=False)


# ---- tables (src/cli/table.rs) ----


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right_from: int, indent: int = 2) -> str:
    """A header, a rule and aligned columns (from ``right_from`` on right-aligned), widths in characters."""
    n = len(headers)
    rows = [list(r)[:n] + [""] * (n - len(r)) for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, r)]

    def line(cells: Sequence[str]) -> str:
        s = " " * indent
        for i, c in enumerate(cells):
            pad = max(0, widths[i] - len(c))
            last = i + 1 == n
            if i >= right_from:
                s += " " * pad + c
            else:
                s += c if last else c + " " * pad
            if not last:
                s += "  "
        return s.rstrip() + "\n"

    out = line(headers)
    out += " " * indent + "-" * (sum(widths) + 2 * max(0, n - 1)) + "\n"
    for r in rows:
        out += line(r)
    return out


def fmt_us(us: float) -> str:
    """Microseconds in a readable unit: ``812.4 µs``, ``3.21 ms``, ``1.204 s``."""
    if not math.isfinite(us):
        return "-"
    if us < 1000.0:
        return f"{us:.1f} µs"
    if us < 1_000_000.0:
        return f"{us / 1000.0:.2f} ms"
    return f"{us / 1_000_000.0:.3f} s"


def fmt_us_plain(us: float) -> str:
    """Plain microseconds for percentile columns: one decimal below 10 000, none above."""
    if not math.isfinite(us):
        return "-"
    return f"{us:.1f}" if us < 10_000.0 else f"{us:.0f}"


def _num(v: Dict[str, Any], key: str) -> float:
    x = v.get(key)
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return math.nan
    return float(x)


def _count(v: Dict[str, Any], key: str) -> str:
    x = v.get(key)
    if isinstance(x, bool) or not isinstance(x, int) or x < 0:
        return "-"
    return str(x)


def _node_list(metrics: Dict[str, Any]) -> List[Dict[str, Any]]:
    nodes = metrics.get("node_metrics")
    return [n for n in nodes if isinstance(n, dict)] if isinstance(nodes, list) else []


def _node_time(n: Optional[Dict[str, Any]]) -> str:
    """A node's total time in a run, or "did not run"."""
    if n is None or not _num(n, "execution_count") > 0:
        return "did not run"
    return fmt_us(_num(n, "total_duration_us"))


def timing_table(metrics: Dict[str, Any]) -> str:
    """Time per node for a single run, plus the end-to-end latency."""
    rows = [[str(n.get("node_id", "?")), str(n.get("node_type", "?")), _node_time(n)] for n in _node_list(metrics)]
    rows.append(["(end to end)", "", fmt_us(_num(metrics, "total_duration_us"))])
    return render_table(["node", "type", "time"], rows, right_from=2)


def timing_table_pair(first: Dict[str, Any], warm: Dict[str, Any]) -> str:
    """Time per node for a first run and a warm one, side by side, plus the end-to-end latencies."""
    warm_nodes = _node_list(warm)
    rows = [[str(n.get("node_id", "?")), str(n.get("node_type", "?")), _node_time(n),
             _node_time(warm_nodes[i] if i < len(warm_nodes) else None)] for i, n in enumerate(_node_list(first))]
    rows.append(["(end to end)", "", fmt_us(_num(first, "total_duration_us")), fmt_us(_num(warm, "total_duration_us"))])
    return render_table(["node", "type", "first run", "warm run"], rows, right_from=2)


def percentile_table(metrics: Dict[str, Any], p999: bool = False) -> str:
    """Per-node counts and latency percentiles in µs (``p999`` adds the 99.9th percentile and the
    mean), with an end-to-end row."""
    headers = ["node", "type", "count", "errors"] + (["mean µs"] if p999 else []) + ["p50 µs", "p90 µs", "p99 µs"]
    headers += (["p99.9 µs"] if p999 else []) + ["max µs"]

    def row(ident: str, ty: str, v: Dict[str, Any], prefix: str, count_key: str, errors_key: str) -> List[str]:
        cells = [ident, ty, _count(v, count_key), _count(v, errors_key)]
        if p999:
            cells.append(fmt_us_plain(_num(v, "avg_duration_us")))
        cells += [fmt_us_plain(_num(v, f"{prefix}{q}_us")) for q in ("p50", "p90", "p99")]
        if p999:
            cells.append(fmt_us_plain(_num(v, f"{prefix}p999_us")))
        cells.append(fmt_us_plain(_num(v, "max_duration_us")))
        return cells

    rows = [row(str(n.get("node_id", "?")), str(n.get("node_type", "?")), n, "", "execution_count", "error_count")
            for n in _node_list(metrics)]
    rows.append(row("(end to end)", "", metrics, "latency_", "total_executions", "failed_executions"))
    return render_table(headers, rows, right_from=2)


# ---- commands ----


def _write_npy(path: str, features: Any) -> None:
    """Features as ``.npy`` (float32, (frames, bins)), whole or not at all, as ``src/npy.rs``."""
    import io

    from ._safety import write_atomic

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(features, dtype="<f4").view(np.ndarray))
    write_atomic(path, buf.getvalue())


def _write_text(path: str, text: str) -> None:
    """Writes under a temporary name and renames into place (never half-written)."""
    from ._safety import write_atomic

    try:
        write_atomic(path, text.encode("utf-8"))
    except OSError as e:
        raise _failure(f"cannot write '{path}': {e.strerror or e}") from None


def _prepare(args: argparse.Namespace, out: List[str]) -> Tuple[Any, Any, str, bool, Any]:
    """What run and stream share: the manifest validated with metrics on, the input read, the
    pipeline built on the chosen runtime. Returns (pipeline, graph, input path, bundled, audio)."""
    from .errors import ManifestError, NodeError, RemoteMediaError, RuntimeUnavailableError
    from .pipeline import Pipeline

    tree, graph = _load_graph(args.manifest)
    path, bundled, audio = _load_input(args.input, args.manifest)
    # Always measured: the report shows each node's time.
    config = dict(tree.get("config") or {})
    config["enable_metrics"] = True
    if args.workers is not None:
        config["workers"] = args.workers
    tree = dict(tree, config=config)
    workers = int(config.get("workers", 1))
    out.append(f"manifest {args.manifest} ({plural(len(graph.nodes), 'node')}, "
               f"{plural(len(graph.edges), 'edge')}, {plural(workers, 'worker')})\n")
    out.append(describe_input(path, bundled, audio))

    try:
        pipeline = Pipeline.from_dict(tree, runtime_hint=args.runtime)
    except ManifestError as e:
        raise _usage(f"{args.manifest}: {e}") from None
    except RuntimeUnavailableError as e:
        raise _failure(str(e)) from None
    except NodeError as e:
        raise _failure(f"cannot install the pipeline: {e}") from None
    except RemoteMediaError as e:  # e.g. REMOTEMEDIA_RUNTIME set to something unknown
        raise _usage(str(e)) from None
    except Exception as e:
        raise _failure(f"cannot install the pipeline: {type(e).__name__}: {e}") from None
    runtime = pipeline.runtime
    out.append(f"runtime  {_RUNTIME_NAMES.get(runtime, runtime)}\n")
    return pipeline, graph, path, bundled, audio


def _run_once(pipeline: Any, audio: Any) -> Tuple[Dict[str, Any], Optional[CliError], Dict[str, Any]]:
    """One run: ``(outputs, error, metrics)``."""
    from .errors import RemoteMediaError

    try:
        result, error = pipeline.run_sync(audio), None
    except RemoteMediaError as e:
        # The input already passed read_wav's checks: an InputError here is a node rejecting its input.
        result, error = {}, _failure(str(e))
    except Exception as e:
        result, error = {}, _failure(f"{type(e).__name__}: {e}")
    try:
        metrics = pipeline.get_metrics()
    except Exception:
        metrics = {}
    return result, error, metrics


def _run(args: argparse.Namespace, out: List[str]) -> None:
    """``run`` (src/cli/run.rs): a first run, then the same again warm unless ``--once``; the time
    table shows both, the outputs and metrics are the warm run's."""
    pipeline, graph, path, bundled, audio = _prepare(args, out)
    workers = int((pipeline.manifest.get("config") or {}).get("workers", 1))

    result, error, first_metrics = _run_once(pipeline, audio)
    warm_metrics: Optional[Dict[str, Any]] = None
    if error is None and not args.once:
        result = {}  # dropped before the second run makes the same again
        pipeline.reset_metrics()
        result, error, warm_metrics = _run_once(pipeline, audio)
    metrics = warm_metrics if warm_metrics is not None else first_metrics
    if error is not None:
        # What did run is still worth seeing next to the error.
        out.append("\ntiming (failed run)\n")
        out.append(timing_table(metrics))
        raise error

    # Outputs in the graph's output order (the manifest's `outputs`, else the sinks).
    output_ids = [graph.nodes[i].id for i in graph.output_nodes()]
    result = _with_clip_lists(graph, result)
    order = [k for k in output_ids if k in result] + [k for k in result if k not in output_ids]
    outputs = [(k, result[k]) for k in order]
    frame_ms = _vad_frame_ms_by_node(graph)

    out.append("\noutputs\n")
    if not outputs:
        out.append("  (none)\n")
    for ident, p in outputs:
        describe_payload(out, ident, p, 2, frame_ms.get(ident), show_all=args.all)
    ran_on = metrics.get("workers", workers) if isinstance(metrics.get("workers"), int) else workers
    if warm_metrics is None:
        out.append(f"\ntiming (1 run, {plural(ran_on, 'worker')})\n")
        out.append(timing_table(first_metrics))
    else:
        out.append(f"\ntiming (a first run, then the same again warm; {plural(ran_on, 'worker')})\n")
        out.append(timing_table_pair(first_metrics, warm_metrics))
        out.append("  the first run includes one-time costs (fresh buffers' page faults, FFT plans, resampler set-up)\n")
    if args.metrics:
        out.append("\nmetrics\n")
        out.append(percentile_table(metrics, p999=False))

    if args.output is not None:
        _write_first_audio(args.output, outputs, out)
    if args.json is not None:
        doc = {
            "input": input_json(path, bundled, audio),
            "outputs": {k: payload_json(p, frame_ms.get(k)) for k, p in outputs},
            "metrics": metrics,
        }
        if warm_metrics is not None:
            doc["first_run_metrics"] = first_metrics
        _write_text(args.json, json.dumps(_plain(doc), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        out.append(f"wrote {args.json}\n")
    if args.prometheus is not None:
        from .prometheus import to_prometheus

        text = to_prometheus(metrics)
        if args.prometheus:
            _write_text(args.prometheus, text)
            out.append(f"wrote {args.prometheus}\n")
        else:
            out.append("\n# prometheus\n")
            out.append(text)


def _stream(args: argparse.Namespace, out: List[str]) -> None:
    from .audio import Audio
    from .errors import RemoteMediaError
    from .payloads import VadResult

    pipeline, graph, path, bundled, audio = _prepare(args, out)
    rate = audio.sample_rate
    chunk = max(1, rate * args.chunk_ms // 1000)
    samples = audio.samples
    n = samples.shape[0]
    chunks = -(-n // chunk)
    out.append(f"\nstreaming {chunks} chunks of {args.chunk_ms} ms ({chunk} frames)\n")
    sums: Dict[str, Any] = {}
    push_ns: List[int] = []

    def absorb(outputs: Dict[str, Any], at_s: float) -> None:
        for ident, p in outputs.items():
            if isinstance(p, VadResult):
                for s0, s1 in p["segments"]:
                    out.append(f"  {at_s:>7.2f} s  {ident}: speech {s0:.2f}-{s1:.2f} s\n")
            sums.setdefault(ident, []).append(p)

    session = pipeline.stream()
    try:
        for k in range(chunks):
            piece = Audio(samples[k * chunk : (k + 1) * chunk], rate)
            t = time.perf_counter_ns()
            got = session.push(piece)
            push_ns.append(time.perf_counter_ns() - t)
            absorb(got, min((k + 1) * chunk, n) / rate)
        t = time.perf_counter_ns()
        flushed = session.close()
        close_ns = time.perf_counter_ns() - t
        absorb(flushed, n / rate)
    except RemoteMediaError as e:
        raise _failure(f"chunk {len(push_ns)}: {e}") from None

    outputs = list(_with_clip_lists(graph, {k: _concatenated(v) for k, v in sums.items()}).items())
    frame_ms = _vad_frame_ms_by_node(graph)
    out.append("\noutputs (all chunks)\n")
    for ident, p in outputs:
        describe_payload(out, ident, p, 2, frame_ms.get(ident), show_all=args.all)
    ns = np.sort(np.asarray(push_ns, dtype=np.float64))
    median = float(np.median(ns)) if ns.size else 0.0
    p99 = float(ns[int(round(0.99 * (ns.size - 1)))]) if ns.size else 0.0
    out.append(f"\nper push: median {median / 1e3:.1f} µs, p99 {p99 / 1e3:.1f} µs over {chunks} pushes; "
               f"close {close_ns / 1e3:.1f} µs\n")
    if args.output is not None:
        _write_first_audio(args.output, outputs, out)
    if args.json is not None:
        doc = {
            "input": input_json(path, bundled, audio),
            "chunk_ms": args.chunk_ms,
            "chunks": chunks,
            "outputs": {k: payload_json(p, frame_ms.get(k)) for k, p in outputs},
            "push_latency_us": {"median": median / 1e3, "p99": p99 / 1e3},
            "close_latency_us": close_ns / 1e3,
        }
        _write_text(args.json, json.dumps(_plain(doc), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        out.append(f"wrote {args.json}\n")


def _write_first_audio(path: str, outputs: Sequence[Tuple[str, Any]], out: List[str]) -> None:
    """``--output``: writes the first audio among the outputs (a VAD result's audio counts) as WAV."""
    from .wav import write_wav

    found = first_audio(outputs)
    if found is None:
        raise _failure(f"--output {path}: no output carries audio")
    name, a = found
    try:
        write_wav(path, a)
    except OSError as e:
        raise _failure(f"cannot write WAV file '{path}': {e.strerror or e}") from None
    except KeyError:
        raise _failure(f"cannot write '{path}': {a.samples.dtype} samples have no WAV encoding here") from None
    out.append(f"\nwrote {path} (output '{name}')\n")


def _concatenated(parts: List[Any]) -> Any:
    """A sink's outputs over a session, added up: audio concatenated, VAD frames, segments and audio
    concatenated, lists of clips joined; anything else, the last value."""
    from .audio import Audio
    from .payloads import Clip, VadResult

    if all(isinstance(p, list) and all(isinstance(c, Clip) for c in p) for p in parts):
        return [c for p in parts for c in p]
    if all(isinstance(p, Audio) for p in parts):
        return Audio._trusted(np.concatenate([p.samples for p in parts]), parts[-1].sample_rate)
    if all(isinstance(p, VadResult) for p in parts):
        audio = Audio._trusted(np.concatenate([p["audio"].samples for p in parts]), parts[-1]["audio"].sample_rate)
        return VadResult(
            segments=[tuple(s) for p in parts for s in p["segments"]],
            frames=np.concatenate([np.asarray(p["frames"], dtype=bool) for p in parts]),
            probabilities=np.concatenate([np.asarray(p["probabilities"], dtype=np.float32) for p in parts]),
            audio=audio,
        )
    return parts[-1]


def _batch(args: argparse.Namespace, out: List[str]) -> None:
    """``batch``: as ``remotemedia batch`` (src/cli/batch.rs), on either runtime."""
    import time

    from .errors import InputError, ManifestError, NodeError, RemoteMediaError, RuntimeUnavailableError
    from .pipeline import Pipeline

    tree, graph = _load_graph(args.manifest)
    d = args.input_dir
    if not os.path.exists(d):
        raise _usage(f"input directory '{d}' not found")
    if not os.path.isdir(d):
        raise _usage(f"input '{d}' is not a directory")
    from ._safety import collisions, safe_component, same_file
    from .files import AUDIO_EXTENSIONS, load

    files = sorted(
        n for n in os.listdir(d)
        if os.path.splitext(n)[1][1:].lower() in AUDIO_EXTENSIONS and not os.path.isdir(os.path.join(d, n))
    )
    if not files:
        raise _usage(f"no audio files in '{d}' (looked for {', '.join('*.' + e for e in AUDIO_EXTENSIONS)})")
    # Planned before anything is written (src/cli/output_plan.rs): not into the input folder, no two
    # items writing the same name ignoring case, node ids made safe for file names.
    if same_file(d, args.out):
        raise _usage(f"--out '{args.out}' is the input folder: outputs would overwrite inputs and be read as inputs by "
                     "the next run; choose another folder")
    # Per output: STEM.NODE.*, and NODE/STEM.* for the clips it may turn out to hold.
    output_ids = [graph.nodes[i].id for i in graph.output_nodes()]
    plan = [
        entry
        for n in files
        for s in output_ids
        for entry in ((f"{os.path.splitext(n)[0]}.{safe_component(s)}.*", n),
                      (f"{safe_component(s)}/{os.path.splitext(n)[0]}.*", n))
    ]
    # A pair whose file names collide has colliding clip names too: name it once.
    pairs: set = set()
    found = [c for c in collisions(plan) if (c[0], c[1]) not in pairs and not pairs.add((c[0], c[1]))]
    if found:
        shown = "\n".join(f"  {a} and {b} would both write {name}" for a, b, name in found[:10])
        more = f"\n  ... and {len(found) - 10} more" if len(found) > 10 else ""
        raise _usage(f"output names collide (compared ignoring case; nothing was written):\n{shown}{more}\n"
                     "rename the inputs so their names differ by more than case or extension")
    config = dict(tree.get("config") or {})
    if args.workers is not None:
        config["workers"] = args.workers
    tree = dict(tree, config=config)
    workers = int(config.get("workers", 1))
    try:
        pipeline = Pipeline.from_dict(tree, runtime_hint=args.runtime)
    except ManifestError as e:
        raise _usage(f"{args.manifest}: {e}") from None
    except RuntimeUnavailableError as e:
        raise _failure(str(e)) from None
    except NodeError as e:
        raise _failure(f"cannot install the pipeline: {e}") from None
    except RemoteMediaError as e:
        raise _usage(str(e)) from None
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        raise _failure(f"cannot create output directory '{args.out}': {e.strerror or e}") from None
    chunk = args.chunk if args.chunk > 0 else 4 * workers
    results: List[Dict[str, Any]] = [{} for _ in files]
    started = time.perf_counter()
    for first in range(0, len(files), chunk):
        names = files[first:first + chunk]
        audio: List[Any] = []
        indices: List[int] = []
        for i, name in enumerate(names, start=first):
            path = os.path.join(d, name)
            try:
                audio.append(load(path, dtype=None, runtime_hint=args.runtime))
                indices.append(i)
            except (InputError, RuntimeUnavailableError, OSError, ValueError) as e:
                msg = str(e) if isinstance(e, (InputError, RuntimeUnavailableError)) else f"cannot read '{path}': {e}"
                results[i] = _batch_item(name, error={"stage": "read", "message": msg})
        t0 = time.perf_counter()
        try:
            outcome = pipeline.run_batch(audio) if audio else []
        except RemoteMediaError as e:
            outcome = [e] * len(audio)
        ms = (time.perf_counter() - t0) * 1000.0
        for i, r in zip(indices, outcome):
            name = files[i]
            if isinstance(r, BaseException):
                err = {"stage": "run", "message": str(r)}
                if getattr(r, "node_id", None) is not None:
                    err["node_id"] = r.node_id
                    err["node_type"] = r.node_type
                results[i] = _batch_item(name, error=err, ms=ms)
                continue
            try:
                written = _write_item(name, args.out, list(_with_clip_lists(graph, r).items()))
            except CliError as e:
                results[i] = _batch_item(name, error={"stage": "write", "message": e.message}, ms=ms)
                continue
            results[i] = _batch_item(name, outputs=written, ms=ms)
    wall = time.perf_counter() - started
    failed = [r for r in results if r["status"] == "error"]
    ok = len(results) - len(failed)
    rate = len(results) / max(wall, 1e-9)
    doc = {
        "manifest": args.manifest, "input_dir": d, "out_dir": args.out, "workers": workers, "processes": 1,
        "chunk": chunk, "items": len(results), "ok": ok, "failed": len(failed), "wall_s": wall,
        "items_per_s": rate, "runtime": pipeline.runtime, "results": results,
    }
    out.append(f"batch: {len(results)} items, {ok} ok, {len(failed)} failed in {wall:.3f} s "
               f"({rate:.1f} items/s; {plural(workers, 'worker')} per process x 1 process)\n")
    for r in failed:
        out.append(f"  failed: {r['input']}: {r['error']['message']}\n")
    report = os.path.join(args.out, "report.json")
    _write_clip_manifests(args.out, [r["outputs"] for r in results if r["status"] == "ok"], out)
    _write_text(report, json.dumps(_plain(doc), indent=2, ensure_ascii=False) + "\n")
    out.append(f"wrote {report}\n")
    if failed:
        raise _failure(f"{len(failed)} of {len(results)} items failed; see {report}")


def _clock(seconds: float) -> str:
    """``hh:mm:ss.ss``, as soxi prints durations (``cli::info::clock``)."""
    t = max(0.0, seconds)
    h = int(t // 3600)
    m = int((t - h * 3600) // 60)
    return f"{h:02}:{m:02}:{t - h * 3600 - m * 60:05.2f}"


def _size(n: int) -> str:
    for unit, scale, fmt in (("GB", 1e9, "{:.1f}"), ("MB", 1e6, "{:.1f}"), ("kB", 1e3, "{:.0f}")):
        if n >= scale:
            return f"{fmt.format(n / scale)} {unit}"
    return f"{n} B"


def _info(args: argparse.Namespace, out: List[str]) -> None:
    """``info``: as ``remotemedia info`` (src/cli/info.rs), on either runtime."""
    from .errors import InputError, RuntimeUnavailableError
    from .files import info

    rows, docs, failed = [], [], []
    for path in args.files:
        try:
            i = info(path, runtime_hint=args.runtime)
        except (InputError, RuntimeUnavailableError, OSError) as e:
            message = str(e) if not isinstance(e, OSError) else (e.strerror or str(e))
            rows.append([path, f"error: {message}"])
            docs.append({"path": path, "error": message})
            failed.append(path)
            continue
        d = i.duration
        rows.append([
            path, f"{i.container} / {i.codec}", str(i.channels), str(i.sample_rate),
            f"{i.bits}-bit" if i.bits is not None else "lossy", _clock(d) if d is not None else "?",
            str(i.frames) if i.frames is not None else "?", _size(i.file_size),
            f"{i.file_size * 8 / d / 1000:.0f}k" if d else "-",
        ])
        doc = {k: v for k, v in vars(i).items() if k != "path"}
        doc["path"] = path
        docs.append(doc)
    if args.json:
        out.append(json.dumps(docs, indent=2, ensure_ascii=False) + "\n")
    else:
        out.append(render_table(["file", "format", "channels", "rate", "precision", "duration", "frames", "size", "bit rate"],
                                rows, right_from=2))
    if failed:
        raise _usage(f"{len(failed)} of {len(args.files)} files could not be read: {', '.join(failed)}")


def _write_item(name: str, out_dir: str, outputs: Sequence[Tuple[str, Any]]) -> List[Dict[str, Any]]:
    """One item's outputs (``write_item`` in src/cli/outputs.rs): audio as NAME.NODE.wav, features as
    NAME.NODE.npy, clips as NODE/NAME.0001.wav ..., anything else as NAME.NODE.json; their report
    entries. Every file is written under a temporary name and renamed into place."""
    from ._safety import safe_component, write_atomic
    from .errors import InputError
    from .wav import write_wav

    stem = os.path.splitext(name)[0]
    written: List[Dict[str, Any]] = []
    for node, p in outputs:
        part = safe_component(node)
        kind = _kind(p)
        try:
            if kind == "audio":
                fname = f"{stem}.{part}.wav"
                write_wav(os.path.join(out_dir, fname), p)
                written.append({"node": node, "kind": kind, "file": fname})
            elif kind == "features":
                fname = f"{stem}.{part}.npy"
                _write_npy(os.path.join(out_dir, fname), p)
                written.append({"node": node, "kind": kind, "file": fname})
            elif kind == "clips":
                folder = os.path.join(out_dir, part)
                os.makedirs(folder, exist_ok=True)
                rows = []
                for k, c in enumerate(p, start=1):
                    fname = f"{stem}.{k:04d}.wav"
                    write_wav(os.path.join(folder, fname), c)
                    rows.append({"file_name": fname, "source": name, "segment": k, "start": c.start, "end": c.end,
                                 "duration": _duration(c), "start_frame": c.start_frame, "frames": c.frames,
                                 "sample_rate": c.sample_rate, "channels": c.channels})
                written.append({"node": node, "kind": kind, "dir": part, "clips": rows})
            else:
                fname = f"{stem}.{part}.json"
                text = json.dumps(_plain(payload_json(p)), indent=2, ensure_ascii=False) + "\n"
                write_atomic(os.path.join(out_dir, fname), text.encode("utf-8"))
                written.append({"node": node, "kind": kind, "file": fname})
        except (OSError, KeyError, InputError) as e:
            raise _failure(f"cannot write output '{node}': {e}") from None
    return written


def _write_clip_manifests(out_dir: str, items: Sequence[Sequence[Dict[str, Any]]], out: List[str]) -> None:
    """NODE/metadata.jsonl per clips output (``write_clip_manifests`` in Rust), written whole then renamed."""
    manifests: Dict[str, List[str]] = {}
    for entries in items:
        for e in entries:
            if e.get("kind") == "clips":
                lines = manifests.setdefault(e["dir"], [])
                lines.extend(_json_compact(row) + "\n" for row in e["clips"])
    for folder, lines in manifests.items():
        path = os.path.join(out_dir, folder, CLIP_MANIFEST)
        _write_text(path, "".join(lines))
        out.append(f"wrote {path} ({plural(len(lines), 'clip')})\n")


def _batch_item(name: str, outputs: Optional[List[Any]] = None, error: Optional[Dict[str, Any]] = None, ms: float = 0.0) -> Dict[str, Any]:
    if error is not None:
        return {"input": name, "status": "error", "error": error, "outputs": [], "duration_ms": ms}
    return {"input": name, "status": "ok", "outputs": outputs or [], "duration_ms": ms}


def _graph(args: argparse.Namespace, out: List[str]) -> None:
    tree, graph = _load_graph(args.manifest)
    out.append(to_dot(graph, tree))


def _node_types(out: List[str]) -> None:
    # node_types.json is generated from the Rust CLI's own `node-types`; written back the way
    # serde_json pretty-prints it (two-space indent, non-ASCII as is) it is that output again.
    from ._pure import schema

    path = os.path.join(os.path.dirname(schema.__file__), "node_types.json")
    try:
        with open(path, encoding="utf-8") as f:
            types = json.load(f)
    except (OSError, ValueError) as e:
        raise _failure(f"cannot read the node types ({path}): {e}") from None
    out.append(json.dumps(types, indent=2, ensure_ascii=False) + "\n")


def _limits(out: List[str]) -> None:
    # limits.json is `remotemedia limits`'s output; printed the way serde_json pretty-prints it.
    from .limits import LIMITS

    out.append(json.dumps(LIMITS, indent=2, sort_keys=True) + "\n")


# ---- DOT (src/graph.rs `to_dot`) ----


def _dot_escape(s: str) -> str:
    """Text inside a DOT double-quoted string: backslashes and quotes escaped, line breaks as ``\\n``."""
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n")


def _comment_safe(s: str) -> str:
    """An id inside a ``//`` comment: line breaks would end the comment, so they are shown as ``\\n``."""
    return s.replace("\r", "\\r").replace("\n", "\\n")


def _given_params(tree: Any, i: int) -> Dict[str, Any]:
    """The params node ``i`` has in the manifest tree, or {}."""
    try:
        params = tree["nodes"][i].get("params")
    except (TypeError, KeyError, IndexError, AttributeError):
        return {}
    return params if isinstance(params, dict) else {}


def to_dot(graph: Any, tree: Any = None) -> str:
    """The validated graph as Graphviz DOT: nodes ``n0``, ``n1``... in manifest order labelled
    ``id\\ntype\\nparams``, edges with their output key and ``→port``, ``input``/``output`` markers.

    With the manifest ``tree``, a param is shown as the manifest wrote it (``12``, not the ``12.0``
    the Python validator turns a float param into), as the Rust engine keeps it."""
    lines = [
        "digraph pipeline {",
        "  rankdir=LR;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
        '  input [shape=oval, label="input"];',
        '  output [shape=oval, label="outputs"];',
    ]
    for i, n in enumerate(graph.nodes):
        given = _given_params(tree, i)
        shown = {k: (given[k] if k in given and type(given[k]) is not bool and given[k] == v else v) for k, v in n.params.items()}
        params = sorted(f"{k}={_json_compact(v).replace(chr(34), '')}" for k, v in shown.items() if v is not None)
        label = f"{_dot_escape(n.id)}\\n{_dot_escape(n.type.name)}"
        if params:
            label += "\\n" + _dot_escape(", ".join(params))
        lines.append(f'  n{i} [label="{label}"];')
    for i in graph.sources():
        lines.append(f"  input -> n{i};")
    for e in graph.edges:
        label = []
        if e.output_key is not None:
            label.append(e.output_key)
        if e.port != "in":
            label.append(f"→{e.port}")
        attrs = f' [label="{_dot_escape(" ".join(label))}"]' if label else ""
        lines.append(f"  n{e.src} -> n{e.dst}{attrs}; // {_comment_safe(graph.nodes[e.src].id)} -> "
                     f"{_comment_safe(graph.nodes[e.dst].id)}")
    for i in graph.output_nodes():
        lines.append(f"  n{i} -> output;")
    lines.append("}")
    return "\n".join(lines) + "\n"
