"""Which runtime runs a pipeline: the native engine (``remotemedia._native``) or the pure-Python one.

* ``is_rust_runtime_available()`` tries ``from remotemedia import _native`` once per process.
* ``REMOTEMEDIA_RUNTIME`` = ``auto`` (default) | ``rust`` | ``python`` sets the choice for pipelines
  whose ``runtime_hint`` is ``"auto"``; an explicit ``runtime_hint`` wins over the variable.
* Falling back to Python (native module missing, or the variable says ``python``) warns ONCE per
  process with a ``RuntimeWarning`` saying why. Requiring ``rust`` when the native module is
  missing raises :class:`RuntimeUnavailableError`.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from typing import Any, Optional

from .errors import RemoteMediaError, RuntimeUnavailableError

__all__ = ["is_rust_runtime_available", "native_module", "native_import_error", "select_runtime", "ENV_VAR"]

ENV_VAR = "REMOTEMEDIA_RUNTIME"
_CHOICES = ("auto", "rust", "python")

_lock = threading.Lock()
_probed = False
_native: Any = None
_import_error: Optional[str] = None
_warned = False


def _probe() -> None:
    global _probed, _native, _import_error
    with _lock:
        if _probed:
            return
        try:
            from . import _native as mod  # type: ignore[attr-defined]
            from .audio import Audio
            from .payloads import Clip, Features, VadResult

            # The engine then builds its outputs as these objects itself (one pass, no Python
            # conversion afterwards).
            mod.register_payload_types(Audio, VadResult, Clip, Features)
            _native = mod
        except ImportError as e:
            _import_error = f"{type(e).__name__}: {e}"
        _probed = True


def is_rust_runtime_available() -> bool:
    """Whether the native engine can be used in this process (computed once, then cached)."""
    _probe()
    return _native is not None


def native_module() -> Any:
    """The imported ``remotemedia._native`` module, or None."""
    _probe()
    return _native


def native_import_error() -> Optional[str]:
    """Why ``remotemedia._native`` could not be imported, or None."""
    _probe()
    return _import_error


def _warn_once(reason: str) -> None:
    global _warned
    with _lock:
        if _warned:
            return
        _warned = True
    warnings.warn(
        f"remotemedia is using the pure-Python runtime (numpy): {reason}. "
        "Results are the same as the native engine's, but slower.",
        RuntimeWarning,
        stacklevel=_user_stacklevel(),
    )


def _user_stacklevel() -> int:
    """The stacklevel that points the warning at the first frame outside this package."""
    here = os.path.dirname(os.path.abspath(__file__))
    level, frame = 1, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(here + os.sep):
        frame = frame.f_back
        level += 1
    return level


def select_runtime(hint: str = "auto") -> str:
    """``"rust"`` or ``"python"`` for a pipeline with this ``runtime_hint``; warns or raises as documented."""
    if hint not in _CHOICES:
        raise RemoteMediaError(f"runtime_hint must be one of auto, rust, python; found {hint!r}")
    env = os.environ.get(ENV_VAR, "").strip().lower() or "auto"
    if env not in _CHOICES:
        raise RemoteMediaError(f"{ENV_VAR} must be one of auto, rust, python; found {os.environ[ENV_VAR]!r}")
    choice = hint if hint != "auto" else env
    if choice == "python":
        if hint == "auto":  # chosen by the environment, not by the code: say so
            _warn_once(f"{ENV_VAR}=python")
        return "python"
    if is_rust_runtime_available():
        return "rust"
    if choice == "rust":
        source = 'runtime_hint="rust"' if hint == "rust" else f"{ENV_VAR}=rust"
        raise RuntimeUnavailableError(
            f"{source} requires the native engine, but remotemedia._native cannot be imported "
            f"({_import_error}). Reinstall remotemedia from a wheel for this platform, or build it "
            "with `maturin develop --release`; or use runtime_hint=\"auto\" to fall back to Python."
        )
    _warn_once(f"the native engine could not be imported ({_import_error})")
    return "python"
