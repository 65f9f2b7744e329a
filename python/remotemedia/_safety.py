"""File safety for the Python side, the twin of ``src/file_safety.rs``: outputs written under a
temporary name in their folder and renamed into place only when whole; an output that is an input
refused.
"""

from __future__ import annotations

import itertools
import os
from typing import BinaryIO, Iterable, Optional, Union

from .errors import InputError

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["AtomicFile", "same_file", "check_not_input"]

_counter = itertools.count()


def same_file(a: PathLike, b: PathLike) -> bool:
    """True when both paths name the same existing file."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_not_input(output: PathLike, what: str, inputs: Iterable[PathLike]) -> None:
    for i in inputs:
        if same_file(output, i):
            raise InputError(
                f"{what} '{os.fspath(output)}' is the input file '{os.fspath(i)}': writing it would destroy the input; "
                "choose another name"
            )


class AtomicFile:
    """A file written under ``.NAME.PID-N.part`` next to ``target`` and renamed into place by
    :meth:`commit`; :meth:`abort` (or an exception in a ``with`` block) removes it."""

    def __init__(self, target: PathLike):
        self.target = os.fspath(target)
        if os.path.isdir(self.target):
            raise IsADirectoryError(21, f"cannot write '{self.target}': it is a directory", self.target)
        folder, name = os.path.split(self.target)
        self._temp = os.path.join(folder, f".{name}.{os.getpid()}-{next(_counter)}.part")
        self._f: Optional[BinaryIO] = open(self._temp, "xb")

    def write(self, data: bytes) -> None:
        assert self._f is not None
        self._f.write(data)

    def rewrite_start(self, data: bytes) -> None:
        """Writes ``data`` over the first bytes (a header completed at the end)."""
        assert self._f is not None
        self._f.seek(0)
        self._f.write(data)

    def commit(self) -> None:
        assert self._f is not None
        f, self._f = self._f, None
        f.close()
        os.replace(self._temp, self.target)

    def abort(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
            try:
                os.unlink(self._temp)
            except OSError:
                pass

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None and self._f is not None:
            self.commit()
        else:
            self.abort()

