"""The engine's limits on what it is handed (docs/reliability.md has what each one bounds and what
a user sees when it is exceeded). Written once, in the Rust source (``src/limits.rs``);
``remotemedia schema`` prints them in ``schema.json``, read here, so both runtimes refuse the same
inputs."""

from __future__ import annotations

from typing import Dict

from ._schema import SCHEMA

__all__ = [
    "LIMITS",
    "MANIFEST_BYTES",
    "MANIFEST_NESTING",
    "MANIFEST_VALUES",
    "MANIFEST_STRING_BYTES",
    "MANIFEST_NODES",
    "MANIFEST_EDGES",
    "WORKERS",
    "VALUE_NESTING",
    "VALUE_ITEMS",
    "RESAMPLER_BLOCK_FRAMES",
    "RESAMPLER_BLOCK_SAMPLES",
    "STREAM_SESSIONS",
]

#: Every limit by name, as ``remotemedia limits`` prints it.
LIMITS: Dict[str, int] = SCHEMA["limits"]

#: Largest manifest text or file, in bytes (UTF-8).
MANIFEST_BYTES: int = LIMITS["manifest_bytes"]
#: Deepest nesting of lists and mappings in a manifest (the top-level mapping is level 1).
MANIFEST_NESTING: int = LIMITS["manifest_nesting"]
#: Most values in a manifest tree (a YAML alias counts its value at every use).
MANIFEST_VALUES: int = LIMITS["manifest_values"]
#: Longest string (key or value) in a manifest, in bytes (UTF-8).
MANIFEST_STRING_BYTES: int = LIMITS["manifest_string_bytes"]
#: Most nodes in a manifest.
MANIFEST_NODES: int = LIMITS["manifest_nodes"]
#: Most edges in a manifest.
MANIFEST_EDGES: int = LIMITS["manifest_edges"]
#: Most timely workers a pipeline may ask for.
WORKERS: int = LIMITS["workers"]
#: Deepest nesting of lists, tuples and dicts in a value a Python node returns.
VALUE_NESTING: int = LIMITS["value_nesting"]
#: Most values (numpy array elements included) in one value a Python node returns.
VALUE_ITEMS: int = LIMITS["value_items"]
#: Longest FFT block a resampler may need, in frames.
RESAMPLER_BLOCK_FRAMES: int = LIMITS["resampler_block_frames"]
#: Most samples (block frames times channels) a resampler's blocks may hold.
RESAMPLER_BLOCK_SAMPLES: int = LIMITS["resampler_block_samples"]
#: Most streaming sessions open at once on one pipeline.
STREAM_SESSIONS: int = LIMITS["stream_sessions"]
