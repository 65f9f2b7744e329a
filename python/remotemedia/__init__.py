"""remotemedia: audio and ML preprocessing pipelines, declared as manifests or in Python, run on a
native timely-dataflow engine -- or, where it cannot be imported, on a pure-Python (numpy) runtime
with identical results.

    import numpy as np
    from remotemedia import Pipeline, AudioResampleNode, VADNode

    pipeline = Pipeline([AudioResampleNode(output_rate=16000), VADNode()])
    result = pipeline.run_sync((np.zeros(48000, np.float32), 48000))
"""

from ._runtime import is_rust_runtime_available
from .audio import Audio
from .errors import (
    CircuitOpenError,
    InputError,
    ManifestError,
    NodeError,
    Problem,
    RemoteMediaError,
    RetryableError,
    RuntimeUnavailableError,
)
# Node, register_node, unregister_node, registered_nodes and every built-in node's builder class
# (one per node type of the schema; nodes.pyi types them).
from .nodes import *  # noqa: F401,F403
from .nodes import BUILTIN_TYPES as _BUILTIN_TYPES
from .files import AudioInfo, info, load, save
from .payloads import Clip, Features, VadResult
from .pipeline import Pipeline
from .remote import RemoteError, connect
from .session import Session

__version__ = "0.1.0"

__all__ = [
    "Pipeline",
    "connect",
    "RemoteError",
    "Session",
    "Audio",
    "VadResult",
    "Clip",
    "Features",
    "Node",
    "register_node",
    "unregister_node",
    "registered_nodes",
    *_BUILTIN_TYPES,
    "load",
    "save",
    "info",
    "AudioInfo",
    "is_rust_runtime_available",
    "RemoteMediaError",
    "ManifestError",
    "Problem",
    "NodeError",
    "InputError",
    "RuntimeUnavailableError",
    "RetryableError",
    "CircuitOpenError",
]
