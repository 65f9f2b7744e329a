"""The exceptions remotemedia raises, on both runtimes.

The native module imports this module and raises these very classes, so their constructors are
kept small and stable:

* ``ManifestError(problems)`` -- ``problems`` is a list of ``(path, expected, found)`` tuples.
* ``NodeError(message, node_id, node_type, traceback=None)``
* ``InputError(message)`` -- optionally ``node_id=`` / ``node_type=`` when a node rejected its input.
"""

from __future__ import annotations

import traceback as _traceback
from typing import Iterable, List, NamedTuple, Optional, Tuple, Union

__all__ = [
    "RemoteMediaError",
    "Problem",
    "ManifestError",
    "NodeError",
    "InputError",
    "RuntimeUnavailableError",
    "RetryableError",
    "CircuitOpenError",
    "node_error_from_exception",
]


class RemoteMediaError(Exception):
    """Base class of every error remotemedia raises."""


class Problem(NamedTuple):
    """One thing wrong with a manifest: where, what would have been accepted, what is there."""

    path: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"{self.path}: expected {self.expected}, found {self.found}"


class ManifestError(RemoteMediaError, ValueError):
    """A manifest is invalid. ``.problems`` lists every problem found, not just the first."""

    def __init__(self, problems: Iterable[Union[Problem, Tuple[str, str, str]]]):
        self.problems: List[Problem] = [Problem(*p) for p in problems]
        n = len(self.problems)
        lines = [f"invalid manifest ({n} problem{'' if n == 1 else 's'})"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))

    def __reduce__(self):
        return (type(self), ([tuple(p) for p in self.problems],))


class NodeError(RemoteMediaError):
    """A node failed while processing. Names the node; for Python nodes ``.traceback`` holds the
    original formatted traceback and ``__cause__`` is the original exception."""

    def __init__(
        self,
        message: str,
        node_id: str,
        node_type: str,
        traceback: Optional[str] = None,
    ):
        super().__init__(message)
        self.node_id = node_id
        self.node_type = node_type
        self.traceback = traceback

    def __reduce__(self):
        return (type(self), (str(self), self.node_id, self.node_type, self.traceback))


class InputError(RemoteMediaError, ValueError):
    """The data handed to a run (or to a node) is unusable: wrong dtype, shape, rate, NaN...

    The pipeline stays usable; the next run with good data works."""

    def __init__(self, message: str, node_id: Optional[str] = None, node_type: Optional[str] = None):
        super().__init__(message)
        self.node_id = node_id
        self.node_type = node_type

    def __reduce__(self):
        return (type(self), (str(self), self.node_id, self.node_type))


class RuntimeUnavailableError(RemoteMediaError, RuntimeError):
    """The native (Rust) runtime was required (``runtime_hint="rust"`` or
    ``REMOTEMEDIA_RUNTIME=rust``) but ``remotemedia._native`` cannot be imported."""


class RetryableError(RemoteMediaError):
    """Raise from a custom node to say the failure is transient and the call may be retried."""


class CircuitOpenError(RemoteMediaError):
    """A node's circuit breaker is open after repeated failures; calls are refused until it cools down."""


def node_error_from_exception(exc: BaseException, node_id: str, node_type: str, operation: str = "process") -> NodeError:
    """Wraps an exception raised by a Python node into a :class:`NodeError` naming the node, with the
    formatted traceback in ``.traceback`` and the original exception as ``__cause__``."""
    tb = "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    err = NodeError(f"node '{node_id}' ({node_type}) failed in {operation}: {detail}", node_id, node_type, tb)
    err.__cause__ = exc
    return err
