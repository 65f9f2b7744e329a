"""With ``REMOTEMEDIA_BLOCK_NATIVE=1``, makes ``remotemedia._native`` unimportable in this interpreter,
as on a platform without a wheel, so the package runs on its pure-numpy runtime.

The one mechanism behind the switch: tests/python/conftest.py runs this file in the pytest process
and puts this folder first on ``PYTHONPATH``, where Python imports ``sitecustomize`` at start-up, so
the Python subprocesses tests start (``python -c``, ``python -m remotemedia``) are blocked the same
way whenever the variable reaches them. Without the variable it does nothing.
"""

import os
import sys


class BlockNative:
    """A meta path finder that refuses ``remotemedia._native`` before any other finder looks for it."""

    def find_spec(self, name, path=None, target=None):
        if name == "remotemedia._native":
            raise ImportError("blocked by the test")
        return None


if os.environ.get("REMOTEMEDIA_BLOCK_NATIVE") == "1" and not any(type(f).__name__ == "BlockNative" for f in sys.meta_path):
    if "remotemedia._native" in sys.modules:
        raise RuntimeError("REMOTEMEDIA_BLOCK_NATIVE=1, but remotemedia._native was imported before the block")
    sys.meta_path.insert(0, BlockNative())
