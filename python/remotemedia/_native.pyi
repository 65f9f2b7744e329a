"""Type stubs for the native extension ``remotemedia._native`` (built by maturin from the Rust crate).

Users call it through :class:`remotemedia.Pipeline`; ``tests/python/test_stubs.py`` checks these stubs
against the built module.
"""

from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

AudioTuple = Tuple[np.ndarray, int]

def noop() -> None:
    """Does nothing: the floor for measuring a call into the extension."""

def version() -> str:
    """The extension's version."""

def cli_main(argv: List[str], own_process: bool = False) -> int:
    """Runs the ``remotemedia`` command line (the Rust CLI) on ``argv``, program name first, writing
    to the process's stdout and stderr; returns the exit code. ``own_process``: the process is the
    command's own (the ``remotemedia`` script), set up as the binary sets up its own."""

def silero_weights() -> bytes:
    """The Silero VAD weights file embedded in the extension (safetensors layout)."""

def node_types_json() -> str:
    """The built-in node types (params, ports, outputs) as JSON."""

def limits_json() -> str:
    """The engine's limits (src/limits.rs) as JSON: what ``schema.json``'s ``limits`` holds."""

def register_payload_types(audio: type, vad_result: type, clip: type, features: Optional[type] = None) -> None:
    """Makes the engine build its outputs as the package's objects: audio as ``audio`` (``Audio``,
    filled as ``Audio._trusted`` does), VAD results as ``vad_result`` (``VadResult``), clips as
    ``clip`` (``Clip``), features as ``features`` (``Features``, an ndarray subclass given
    ``frame_rate``).
    ``remotemedia._runtime`` calls it once when it loads this module; the first registration stays."""

def validate_manifest(manifest_text: str, python_nodes: Optional[Dict[str, Any]] = None) -> str:
    """Validates manifest text (JSON or YAML); returns the canonical manifest as JSON or raises
    ``remotemedia.ManifestError`` listing every problem."""

def check_manifest(text: str, python_types: Optional[Dict[str, Any]] = None) -> "CheckedManifest":
    """Validates a manifest tree (JSON text) against the built-in node types plus ``python_types``
    (type name -> Node subclass); returns it checked, for ``NativePipeline`` to install as it is,
    or raises ``remotemedia.ManifestError`` listing every problem."""

def read_manifest(text: Optional[str], yaml: bool, path: Optional[str] = None, overrides: Optional[str] = None,
                  python_types: Optional[Dict[str, Any]] = None) -> "CheckedManifest":
    """``Pipeline.from_json``/``from_yaml``: reads manifest ``text`` (or the file at ``path``), lays
    ``overrides`` (JSON text of config fields) over its ``config`` and validates it as
    ``check_manifest`` does. ``FileNotFoundError`` for a missing file, else ``ManifestError``."""

class CheckedManifest:
    """A validated manifest with the node types it was checked against."""

    def tree(self) -> Any:
        """The manifest tree as read (config overrides laid over), as Python values."""
    def validated(self) -> Dict[str, Any]:
        """The validated manifest (params checked and defaulted), as Python values."""

def kernel_times(manifest_text: str, audio: Any, repeats: int = 100) -> List[Tuple[str, int]]:
    """Each node of a chain of built-in nodes called directly (no engine), in order, ``repeats`` times
    on ``audio``: each node's id with its median call time in ns (benchmarks/python_bench.py)."""

def simd_features() -> Dict[str, Dict[str, bool]]:
    """``{"used": {...}, "hardware": {...}}``: which of ``avx2``, ``fma``, ``avx512f``, ``avx512vl``
    the nodes' own kernels use in this process (none under ``REMOTEMEDIA_NO_SIMD=1``) and which the
    CPU has."""

def parse_manifest(text: Optional[str], yaml: bool, path: Optional[str] = None) -> Any:
    """Reads manifest text (YAML if ``yaml``, else JSON), or the file at ``path``, into its tree
    (Python values), or raises ``remotemedia.ManifestError`` at the problem's line and column."""

def load_audio(path: str, rate: Optional[int] = None, mono: bool = False, dtype: Optional[str] = "float32") -> Any:
    """Decodes an audio file of any supported format into an ``Audio`` (the GIL released);
    ``remotemedia.load`` documents the arguments."""
def save_audio(path: str, audio: Any, format: Optional[str] = None, bits: Optional[int] = None) -> None:
    """Writes WAV or FLAC under a temporary name renamed into place (the GIL released)."""
def audio_info(path: str) -> Dict[str, Any]:
    """What a file holds: container, codec, sample_rate, channels, frames, duration, bits, dtype,
    lossless, file_size."""

class NativeAudioReader:
    """An open audio file decoded chunk by chunk in constant memory."""

    def __init__(self, path: str) -> None: ...
    def info(self) -> Dict[str, Any]: ...
    def read(self, frames: int) -> Optional[Any]:
        """The next ``frames`` frames as an ``Audio`` (fewer at the end), None after the end."""
    def close(self) -> None: ...

class NativeAudioWriter:
    """A WAV or FLAC file written chunk by chunk, renamed into place by ``finish``."""

    def __init__(self, path: str, sample_rate: int, channels: int, dtype: str, format: Optional[str] = None, bits: Optional[int] = None) -> None: ...
    def write(self, audio: Any) -> None: ...
    def finish(self) -> None: ...
    def abort(self) -> None: ...

class NativePipeline:
    """A manifest compiled into a timely dataflow and installed on the shared worker pool."""

    def __init__(self, manifest: Union[str, CheckedManifest], python_nodes: Optional[Dict[str, Any]] = None,
                 clock: Optional[Any] = None, workers: Optional[int] = None) -> None:
        """``manifest``: a ``CheckedManifest`` (installed as it is) or manifest text (read and
        validated here). ``clock``: an object with ``now()`` (and ``sleep()`` if ``virtual``), see
        ``remotemedia.clock``; None for the engine's own monotonic clock. ``workers``: another
        worker count than the manifest's config."""
    def run(self, inputs: Dict[str, AudioTuple]) -> Dict[str, Any]:
        """Runs once (the GIL is released meanwhile); ``inputs`` maps source node ids to
        ``(samples, rate)``, or ``""`` to the input of every source node. Outputs are ``Audio`` /
        ``VadResult`` objects once ``register_payload_types`` was called, plain
        ``(samples, rate)`` tuples and dicts before."""
    def run_plain(self, data: Any) -> Optional[Dict[str, Any]]:
        """``run({"": data})`` for ``data`` that is ``(samples, rate)`` as ``Pipeline.run_sync``
        would pass it on unchanged (a tuple of a C-contiguous, non-empty float32/int16/int32
        ``ndarray``, 1-D or 2-D with up to 8 channels, and an ``int`` rate); None, having done
        nothing, for anything else."""
    def run_batch(self, items: List[Any], convert: Callable[[int, Any], Dict[str, AudioTuple]]) -> List[Union[Dict[str, Any], BaseException]]:
        """Checks every item (``(samples, rate)`` as ``run_plain`` takes it here, anything else after
        ``convert(index, item)`` has made it what ``run`` takes), then runs them in parts of about
        8 s of audio, each one epoch spread over the workers; per item, in input order, its outputs
        or the exception it met."""
    def run_async(self, inputs: Dict[str, AudioTuple], callback: Callable[[Optional[Dict[str, Any]], Optional[BaseException]], None]) -> None:
        """Starts a run; ``callback(outputs, error)`` is called from the completion thread."""
    def stream(self) -> NativeSession:
        """Opens a streaming session on this pipeline."""
    def manifest(self) -> str: ...
    def metrics_json(self) -> str: ...
    def reset_metrics(self) -> None: ...
    @property
    def workers(self) -> int: ...

class NativeSession:
    """A streaming session: chunks in call order, one state per stateful node."""

    def push(self, inputs: Dict[str, AudioTuple]) -> Dict[str, Any]:
        """Pushes one chunk (the GIL is released meanwhile); returns the outputs it completed."""
    def push_async(self, inputs: Dict[str, AudioTuple], callback: Callable[[Optional[Dict[str, Any]], Optional[BaseException]], None]) -> None:
        """Queues one chunk; ``callback(outputs, error)`` is called from the completion thread."""
    def close(self) -> Dict[str, Any]:
        """Ends the session; returns what the nodes still held."""
    def close_async(self, callback: Callable[[Optional[Dict[str, Any]], Optional[BaseException]], None]) -> None:
        """Queues the session's end; ``callback(outputs, error)`` follows."""
    @property
    def closed(self) -> bool: ...
    @property
    def id(self) -> int: ...
