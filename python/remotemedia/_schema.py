"""The engine's facts, read once from ``schema.json`` (``remotemedia schema``'s output, checked in):
limits, manifest and config fields, error kinds and node types. The Python tables, the stubs and
the docs tables are read or generated from it (``scripts/gen.py``; docs/architecture.md)."""

from __future__ import annotations

import json
import os
from typing import Any, Dict

__all__ = ["SCHEMA", "PATH"]

#: Where the checked-in document lives.
PATH = os.path.join(os.path.dirname(__file__), "schema.json")

with open(PATH, encoding="utf-8") as _f:
    #: The whole document, as ``remotemedia schema`` prints it.
    SCHEMA: Dict[str, Any] = json.load(_f)
