"""``python -m remotemedia``: the ``remotemedia`` command line (the Rust CLI, through the native module; see cli.py)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
