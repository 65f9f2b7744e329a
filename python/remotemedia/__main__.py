"""``python -m remotemedia``: the command line of the Rust ``remotemedia`` binary, from Python (see cli.py)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
