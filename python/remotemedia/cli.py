"""The ``remotemedia`` command installed by pip (and ``python -m remotemedia``): the Rust command line
(``src/cli/``, docs/cli.md) run through the native module, so there is one implementation of every
subcommand, its output and its exit codes (0 success, 1 the pipeline failed, 2 bad arguments,
manifest or input file).

Without the native extension the command says what is missing and exits 1; the Python API
(:class:`remotemedia.Pipeline`) still runs on the pure-Python runtime.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import List, Optional, Sequence

from . import _runtime

__all__ = ["main"]

#: Exit code when the command cannot run at all (as the Rust CLI's "the pipeline failed").
UNAVAILABLE = 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line on ``argv`` (default ``sys.argv[1:]``), writing to the process's stdout
    and stderr, and returns the exit code."""
    args: List[str] = ["remotemedia", *(sys.argv[1:] if argv is None else argv)]
    native = _runtime.native_module()
    if native is None:
        print(
            "error: the remotemedia command runs the native engine, and remotemedia._native cannot be imported "
            f"here ({_runtime.native_import_error()}); install a wheel built for this platform "
            "(pip install remotemedia) or build it from the source tree (maturin develop). The Python API "
            "(remotemedia.Pipeline) still runs on the pure-Python runtime.",
            file=sys.stderr,
        )
        return UNAVAILABLE
    # Rust writes to the file descriptors directly: what Python buffered goes first.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    # Ctrl-C and SIGTERM as for the Rust binary: the default action (end the process), except
    # where a command catches them itself (`batch` finishes the items in flight).
    # Python's own handler would only run once the call returns. (Handlers belong to the main
    # thread: called from another one, the command runs with the process's handlers as they are.)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, signal.SIG_DFL) for s in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    # `spawn` starts copies of this command line: inside Python that is the interpreter with
    # `-m remotemedia`, not the interpreter alone (src/cli/spawn.rs reads this).
    # Set for this call only: a later subprocess of a program that called main() is not affected.
    saved = os.environ.get("REMOTEMEDIA_SELF_COMMAND")
    os.environ["REMOTEMEDIA_SELF_COMMAND"] = json.dumps([sys.executable, "-m", "remotemedia"])
    try:
        # Called as the command (no argv given), the process is the command's own.
        return int(native.cli_main(args, own_process=argv is None))
    finally:
        if saved is None:
            os.environ.pop("REMOTEMEDIA_SELF_COMMAND", None)
        else:
            os.environ["REMOTEMEDIA_SELF_COMMAND"] = saved
        for s, handler in previous.items():
            if handler is not None:  # None: a handler not installed from Python, which it cannot restore
                signal.signal(s, handler)
