"""The exceptions remotemedia raises, on both runtimes.

The native module imports this module and raises these very classes, so their constructors are
kept small and stable:

* ``ManifestError(problems, source=None)`` -- ``problems`` is a list of ``(path, expected, found)``
  tuples; ``source`` the manifest file that could not be read.
* ``NodeError(message, node_id, node_type, traceback=None, *, kind=, operation=, run=, item=,
  retries=, causes=)`` (``CircuitOpenError`` the same)
* ``InputError(message)`` -- optionally ``node_id=`` / ``node_type=`` when a node rejected its input.
"""

from __future__ import annotations

import traceback as _traceback
from typing import Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

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
    """A manifest is invalid. ``.problems`` lists every problem found, not just the first;
    ``.source`` is the file's path when the file itself could not be read as a manifest (a
    directory, a FIFO, too large, not UTF-8...), named in the message; None otherwise."""

    def __init__(self, problems: Iterable[Union[Problem, Tuple[str, str, str]]], source: Optional[str] = None):
        self.problems: List[Problem] = [Problem(*p) for p in problems]
        self.source = source
        n = len(self.problems)
        where = f" '{source}'" if source is not None else ""
        lines = [f"invalid manifest{where} ({n} problem{'' if n == 1 else 's'})"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))

    def __reduce__(self):
        return (type(self), ([tuple(p) for p in self.problems], self.source))


class NodeError(RemoteMediaError):
    """A node failed while processing. The context says where and when:

    * ``node_id``, ``node_type`` -- the node;
    * ``operation`` -- what failed (``"process"``, ``"initialize"``, ``"construction"``);
    * ``run`` -- the run it happened in (the engine's epoch; on the pure runtime the pipeline's
      run counter), ``item`` -- the item within a batch, or None;
    * ``retries`` -- retries made before giving up (0 when the error was not retried);
    * ``causes`` -- the chain of underlying errors as strings, outermost first;
    * ``kind`` -- ``"permanent"``, ``"transient"``, ``"panic"`` or ``"circuit_open"``;
    * ``traceback`` -- for Python nodes, the original formatted traceback; ``__cause__`` is the
      original exception.
    """

    def __init__(
        self,
        message: str,
        node_id: str,
        node_type: str,
        traceback: Optional[str] = None,
        *,
        kind: str = "permanent",
        operation: str = "process",
        run: Optional[int] = None,
        item: Optional[int] = None,
        retries: int = 0,
        causes: Sequence[str] = (),
    ):
        super().__init__(message)
        self.node_id = node_id
        self.node_type = node_type
        self.traceback = traceback
        self.kind = kind
        self.operation = operation
        self.run = run
        self.item = item
        self.retries = retries
        self.causes: List[str] = list(causes)

    @property
    def transient(self) -> bool:
        """Whether a retry could have helped (``TimeoutError``, ``ConnectionError``, ``RetryableError``)."""
        return self.kind == "transient"

    def __reduce__(self):
        return (type(self), (str(self), self.node_id, self.node_type, self.traceback), dict(self.__dict__))


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
    """Raise from a custom node to say the failure is transient and the call may be retried
    (as ``TimeoutError`` and ``ConnectionError`` are); every other exception fails at once."""


class CircuitOpenError(NodeError):
    """A node's circuit breaker is open after repeated failures: the node was not called, and is
    not until the cooldown has passed (then one trial call goes through). ``causes`` holds the
    failure that opened it."""


#: Exceptions from Python nodes that a retry policy retries.
TRANSIENT_EXCEPTIONS = (TimeoutError, ConnectionError, RetryableError)


def is_transient(exc: BaseException) -> bool:
    """Whether a retry policy may retry a call that raised ``exc``."""
    return isinstance(exc, TRANSIENT_EXCEPTIONS)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def exception_causes(exc: BaseException) -> List[str]:
    """The chain under ``exc`` (``raise ... from`` causes, else implicit contexts), outermost first."""
    out: List[str] = []
    seen = {id(exc)}
    cur: Optional[BaseException] = exc
    while cur is not None:
        nxt = cur.__cause__ if cur.__cause__ is not None else (None if cur.__suppress_context__ else cur.__context__)
        if nxt is None or id(nxt) in seen:
            break
        seen.add(id(nxt))
        out.append(_describe(nxt))
        cur = nxt
    return out


def node_error_from_exception(
    exc: BaseException,
    node_id: str,
    node_type: str,
    operation: str = "process",
    *,
    retries: int = 0,
    run: Optional[int] = None,
    item: Optional[int] = None,
) -> NodeError:
    """Wraps an exception raised by a Python node into a :class:`NodeError` naming the node, with the
    formatted traceback in ``.traceback`` and the original exception as ``__cause__``."""
    tb = "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
    message = f"node '{node_id}' ({node_type}) failed in {operation}: {_describe(exc)}"
    if retries > 0:
        message += f" (after {retries} retries)"
    causes = exception_causes(exc)
    for c in causes:
        message += f"\n  caused by: {c}"
    err = NodeError(
        message,
        node_id,
        node_type,
        tb,
        kind="transient" if is_transient(exc) else "permanent",
        operation=operation,
        run=run,
        item=item,
        retries=retries,
        causes=causes,
    )
    err.__cause__ = exc
    return err
