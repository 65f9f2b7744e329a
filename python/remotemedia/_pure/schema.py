"""Node type schemas: what params, inputs and outputs each node type has, as the validator sees them.

The built-in schemas come from ``node_types.json``, generated from the Rust registry so both
runtimes accept exactly the same manifests. Custom Python node types add open schemas.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Dict, List, Optional

__all__ = ["ParamSpec", "NodeTypeSpec", "builtin_types", "describe_kind", "describe_value"]


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: str  # int | float | choice | int_choice | bool | any
    min: Optional[float] = None
    max: Optional[float] = None
    choices: Optional[tuple] = None
    required: bool = False
    default: Any = None
    doc: str = ""


@dataclass
class NodeTypeSpec:
    name: str
    doc: str = ""
    params: List[ParamSpec] = field(default_factory=list)
    inputs: str = "one"  # one | named | any
    ports: List[str] = field(default_factory=list)
    outputs: List[str] = field(default_factory=list)
    open_params: bool = False
    open_outputs: bool = False
    stateful: bool = False
    #: The Node subclass for custom Python types; None for built-ins.
    python_class: Any = None

    def param(self, name: str) -> Optional[ParamSpec]:
        return next((p for p in self.params if p.name == name), None)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "NodeTypeSpec":
        inputs = d.get("inputs") or {"kind": "one"}
        params = [
            ParamSpec(
                name=p["name"],
                kind=p["kind"],
                min=p.get("min"),
                max=p.get("max"),
                choices=tuple(p["choices"]) if p.get("choices") is not None else None,
                required=bool(p.get("required", False)),
                default=p.get("default"),
                doc=p.get("doc", ""),
            )
            for p in d.get("params", [])
        ]
        return cls(
            name=d["name"],
            doc=d.get("doc", ""),
            params=params,
            inputs=inputs["kind"],
            ports=list(inputs.get("ports", [])),
            outputs=list(d.get("outputs", [])),
            open_params=bool(d.get("open_params", False)),
            open_outputs=bool(d.get("open_outputs", False)),
            stateful=bool(d.get("stateful", False)),
            python_class=d.get("python_class"),
        )


@lru_cache(maxsize=1)
def builtin_types() -> Dict[str, NodeTypeSpec]:
    """The built-in node types, by name, from ``node_types.json``."""
    path = os.path.join(os.path.dirname(__file__), "node_types.json")
    with open(path, encoding="utf-8") as f:
        return {d["name"]: NodeTypeSpec.from_dict(d) for d in json.load(f)}


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def describe_kind(p: ParamSpec) -> str:
    """What a param accepts, in the engine's words (``an integer from 8000 to 192000``)."""
    if p.kind == "int":
        if p.min is None or p.max is None:
            return "an integer"
        return f"an integer from {_num(p.min)} to {_num(p.max)}"
    if p.kind == "float":
        if p.min is None or p.max is None:
            return "a finite number"
        return f"a number from {_num(p.min)} to {_num(p.max)}"
    if p.kind == "choice":
        return "one of " + ", ".join(json.dumps(c) for c in p.choices or ())
    if p.kind == "int_choice":
        return "one of " + ", ".join(str(c) for c in p.choices or ())
    if p.kind == "bool":
        return "true or false"
    return "any value"


def describe_value(v: Any) -> str:
    """A manifest value as error messages show it."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "infinity" if v > 0 else "-infinity"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "an empty list" if not v else "a list"
    if isinstance(v, dict):
        return "an object"
    return f"a Python {type(v).__name__} (not a JSON value)"
